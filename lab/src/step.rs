//! One measured load step: what the capacity search, the diagnosis and the
//! reports all read. It sits below all three (the diagnosis is computed from
//! steps, the report holds both), so no layer imports one above it.

use serde::{Deserialize, Serialize};

use crate::cgroup::Throttle;
use crate::load::StepSummary;
use crate::procstat::{HostUsage, ProcUsage};
use crate::status::ShareDelta;

/// One load step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based step number within the run.
    pub number: u32,
    /// Users or iterations/s.
    pub load: u32,
    /// What the load generator measured.
    pub summary: StepSummary,
    /// A confirmation (`--confirm`): the capacity measured again after the
    /// search, over a longer window, rather than a step of the search.
    #[serde(default)]
    pub confirmation: bool,
    /// Whether the objective held.
    pub kept: bool,
    /// Why not, if it did not; for a growth step that kept it under strain,
    /// why the search stopped growing there (`but … waited …`).
    pub verdict: String,
    /// Seconds from the start of the step's ramp to its measurement window
    /// (ramp + warm-up; not measured).
    #[serde(default)]
    pub warmup_s: f64,
    /// CPU and memory of the processes involved (replicas, balancer, load generator).
    pub processes: Vec<ProcUsage>,
    /// CPU of every lab process over the window (both sides' replicas, the
    /// balancer, the load generator), % of a core: with CPU budgets the
    /// other side runs in the same window, and it is not outside noise.
    #[serde(default)]
    pub lab_cpu_percent: f64,
    /// The machine.
    pub host: HostUsage,
    /// Fraction of scheduler periods each budgeted replica was throttled in.
    pub throttled: Vec<(String, f64)>,
    /// The balancer's per-replica shares (group only).
    pub shares: Option<ShareDelta>,
}

impl StepRecord {
    /// Its name in tables and charts: `4`, or `8 (confirmation)`.
    pub fn label(&self) -> String {
        if self.confirmation {
            format!("{} (confirmation)", self.number)
        } else {
            self.number.to_string()
        }
    }

    /// The verdict in words: `kept the objective` (with why growth stopped
    /// there, for a step kept under strain) or `broke it: why`.
    pub fn outcome(&self) -> String {
        match (self.kept, self.verdict.is_empty()) {
            (true, true) => "kept the objective".to_string(),
            (true, false) => format!("kept the objective, {}", self.verdict),
            (false, _) => format!("broke it: {}", self.verdict),
        }
    }

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
