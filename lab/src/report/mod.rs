//! The lab's results and how they are shown.
//!
//! This module holds the data model every output is made from
//! ([`LabReport`] → [`RunResult`] → [`StepRecord`]); [`terminal`] prints the
//! aligned table and the plain-words conclusions, [`html`] writes the
//! self-contained side-by-side report, and [`write_all`] puts the JSON, the
//! HTML and the Locust-style CSVs into the run folder.

pub mod html;
pub mod terminal;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capacity::Slo;
use crate::cgroup::Throttle;
use crate::diagnosis::Diagnosis;
use crate::load::StepSummary;
use crate::procstat::{HostUsage, ProcUsage};
use crate::status::ShareDelta;
use crate::Error;

/// The plain-words capacity model printed with every comparison.
pub const CAPACITY_MODEL: &str = "On one machine the replicas share the same cores, so a balancer alone adds no capacity: \
N replicas on 2 cores can at best do what one process using both cores does. \
To model N separate servers, each replica gets a CPU budget (a cgroup CPU quota, --replica-cpus, default 0.25 of a core); \
the single server gets the same budget, so the comparison is one small server against N small servers. \
With --replica-cpus none you see the honest single-box result.";

/// Everything one `lab compare` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabReport {
    /// When the comparison started (RFC 3339, UTC).
    pub started: String,
    /// The command line, for the record.
    pub command: String,
    /// Replicas behind the balancer.
    pub replicas: u16,
    /// Balancing algorithm.
    pub algorithm: String,
    /// CPU budget per replica asked for (`none` or cores).
    pub budget_requested: String,
    /// CPU budget in force (`none` if it could not be applied).
    pub budget_applied: String,
    /// A sentence on the budget situation.
    pub budget_note: String,
    /// The capacity model in words.
    pub capacity_model: String,
    /// Cores of this machine.
    pub host_cores: usize,
    /// The objective.
    pub slo: Slo,
    /// `closed` (users) or `open` (iterations/s).
    pub model: String,
    /// Unit of the load figures (`users` or `it/s`).
    pub load_unit: String,
    /// Scenario used.
    pub scenario: String,
    /// Seconds per step.
    pub step_seconds: f64,
    /// One replica, directly.
    pub single: RunResult,
    /// N replicas through the balancer.
    pub group: RunResult,
    /// group capacity / single capacity (load).
    pub speedup: Option<f64>,
    /// group req/s at capacity / single req/s at capacity.
    pub rps_speedup: Option<f64>,
    /// speedup / N.
    pub efficiency: Option<f64>,
    /// The conclusion in words.
    pub conclusion: String,
    /// Files written, relative to the run folder.
    pub files: Vec<String>,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `single` or `group`.
    pub name: String,
    /// What the load generator was pointed at.
    pub target: String,
    /// Every step, in the order run.
    pub steps: Vec<StepRecord>,
    /// Index into `steps` of the highest load that kept the objective.
    pub capacity_step: Option<usize>,
    /// The lowest load that broke the objective, if any did.
    pub broken_at: Option<u32>,
    /// Whether the search stopped at --max-load with the objective kept.
    pub hit_ceiling: bool,
    /// What limited it.
    pub diagnosis: Diagnosis,
}

impl RunResult {
    /// The step at capacity.
    pub fn capacity(&self) -> Option<&StepRecord> {
        self.capacity_step.and_then(|i| self.steps.get(i))
    }

    /// The step the diagnosis is about: the first that broke the objective at
    /// the lowest load, else the highest step.
    pub fn limiting_step(&self) -> Option<&StepRecord> {
        self.steps
            .iter()
            .filter(|s| !s.kept)
            .min_by_key(|s| s.load)
            .or_else(|| self.steps.iter().max_by_key(|s| s.load))
    }
}

/// One load step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based step number within the run.
    pub number: u32,
    /// Users or iterations/s.
    pub load: u32,
    /// What the load generator measured.
    pub summary: StepSummary,
    /// Whether the objective held.
    pub kept: bool,
    /// Why not, if it did not.
    pub verdict: String,
    /// Seconds from the start of the step's ramp to its measurement window
    /// (ramp + warm-up; not measured).
    #[serde(default)]
    pub warmup_s: f64,
    /// CPU and memory of the processes involved (replicas, balancer, load generator).
    pub processes: Vec<ProcUsage>,
    /// The machine.
    pub host: HostUsage,
    /// Fraction of scheduler periods each budgeted replica was throttled in.
    pub throttled: Vec<(String, f64)>,
    /// The balancer's per-replica shares (group only).
    pub shares: Option<ShareDelta>,
}

impl StepRecord {
    /// Fraction of periods a replica was throttled, from two cgroup readings.
    pub fn throttle_ratio(before: Throttle, after: Throttle) -> f64 {
        let periods = after.periods.saturating_sub(before.periods);
        if periods == 0 {
            0.0
        } else {
            after.throttled.saturating_sub(before.throttled) as f64 / periods as f64
        }
    }
}

/// Writes `report.json` and (unless `html` is false) `report.html` into `dir`;
/// returns the paths written.
pub fn write_all(report: &mut LabReport, dir: &Path, html: bool) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    let json_path = dir.join("report.json");
    let html_path = dir.join("report.html");
    report.files.push("report.json".into());
    if html {
        report.files.push("report.html".into());
    }
    report.files.sort();
    report.files.dedup();
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::io(&json_path, std::io::Error::other(e)))?;
    std::fs::write(&json_path, json).map_err(|e| Error::io(&json_path, e))?;
    written.push(json_path);
    if html {
        std::fs::write(&html_path, html::render(report)).map_err(|e| Error::io(&html_path, e))?;
        written.push(html_path);
    }
    Ok(written)
}
