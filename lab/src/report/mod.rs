//! The lab's results and how they are shown.
//!
//! This module holds the data model every output is made from
//! ([`LabReport`] → [`RunResult`] → [`StepRecord`]); [`terminal`] prints the
//! aligned table and the plain-words conclusions, [`html`] writes the
//! self-contained side-by-side report, and [`write_all`] puts the JSON, the
//! HTML and the Locust-style CSVs into the run folder.

pub mod html;
pub mod scale;
pub mod terminal;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capacity::Slo;
use crate::diagnosis::Diagnosis;
use crate::knee::Knee;
pub use crate::step::StepRecord;
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
    /// Whether the load generator and the balancer ran on CPUs of their own
    /// ([`crate::affinity`]).
    #[serde(default)]
    pub cpus_apart: bool,
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
    /// group capacity / single capacity (load); `None` when not measured
    /// (a side kept nothing, or neither side found its limit).
    pub speedup: Option<f64>,
    /// group req/s at capacity / single req/s at capacity.
    pub rps_speedup: Option<f64>,
    /// group goodput (successful req/s) at capacity / single goodput at capacity.
    #[serde(default)]
    pub goodput_speedup: Option<f64>,
    /// speedup / N.
    pub efficiency: Option<f64>,
    /// Every repeat's figures (`--repeat K`), in the order run.
    #[serde(default)]
    pub repeats: Vec<RepeatFigures>,
    /// Median and range of the speed-ups over the repeats.
    #[serde(default)]
    pub spread: SpeedupSpread,
    /// Which repeat (from 1) the detailed figures come from: the one at the
    /// median speed-up; `None` with one repeat.
    #[serde(default)]
    pub repeat_shown: Option<u32>,
    /// How to read the three figures above: `exact`; `at_least` when the
    /// group never broke the objective (its capacity, so the speed-up, is a
    /// lower bound); `at_most` when only the single server never broke it;
    /// `not_measured` when neither did (the figures are then `null`).
    #[serde(default)]
    pub speedup_bound: Bound,
    /// Whether the speed-ups compare the sides' knees ([`RunResult::knee`])
    /// rather than their highest loads kept (a side without a knee).
    #[serde(default)]
    pub speedup_at_knees: bool,
    /// Ctrl-C or SIGTERM stopped the run: the figures cover the steps
    /// finished before it.
    #[serde(default)]
    pub interrupted: bool,
    /// Where the CPU per request goes (per side) and the measured causes of
    /// the efficiency gap, each marked as an artefact of one box or not.
    #[serde(default)]
    pub explained: Vec<String>,
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
    /// Number (`steps[].number`, from 1) of the step that measured the
    /// capacity: the last confirmation (`--confirm`, flagged `confirmation`)
    /// when there is one, else the search's step with the highest load that
    /// kept the objective.
    pub capacity_step: Option<u32>,
    /// The lowest load that broke the objective, if any did.
    pub broken_at: Option<u32>,
    /// Whether the search stopped at --max-load with the objective kept.
    pub hit_ceiling: bool,
    /// The objective never broke, so the capacity is only a lower bound:
    /// the search stopped (see `search_ended`) before finding the limit.
    #[serde(default)]
    pub capacity_is_lower_bound: bool,
    /// Why the search stopped.
    #[serde(default)]
    pub search_ended: SearchEnd,
    /// For a capacity that is only a lower bound: why the search stopped
    /// and which flag to raise (empty otherwise).
    #[serde(default)]
    pub limit_note: String,
    /// What limited it.
    pub diagnosis: Diagnosis,
    /// Where the objective breaks, fitted to every window ([`crate::knee`]);
    /// `None` unless some window kept it and some broke it.
    #[serde(default)]
    pub knee: Option<Knee>,
}

/// Why a side's search stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchEnd {
    /// It found the load that breaks the objective (and refined below it).
    #[default]
    Broke,
    /// It reached --max-load with the objective kept.
    MaxLoad,
    /// It used its --max-steps with the objective kept.
    MaxSteps,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl SearchEnd {
    /// What to do to find the limit, in a few words.
    pub fn advice(self) -> &'static str {
        match self {
            SearchEnd::Broke => "",
            SearchEnd::MaxLoad => "raise --max-load",
            SearchEnd::MaxSteps => "raise --max-steps",
            SearchEnd::Interrupted => "the run was interrupted",
        }
    }

    /// Why the search stopped and what to change, for a side that never
    /// broke the objective; `max_load`/`max_steps` are the flags' values.
    pub fn hint(self, max_load: u32, max_steps: u32, unit: &str) -> String {
        match self {
            SearchEnd::Broke => String::new(),
            SearchEnd::MaxLoad => format!(
                "the search stopped at --max-load {max_load} {unit} before the objective broke: raise --max-load to find the limit"
            ),
            SearchEnd::MaxSteps => format!(
                "the search stopped after --max-steps {max_steps} before the objective broke: raise --max-steps (or --start-load) to find the limit"
            ),
            SearchEnd::Interrupted => {
                "the run was interrupted before the objective broke".to_string()
            }
        }
    }
}

/// Whether a figure is exact or a bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Both sides found their limit.
    #[default]
    Exact,
    /// At least this much (the group never broke the objective).
    AtLeast,
    /// At most this much (the single server never broke it).
    AtMost,
    /// Neither side found its limit: no figure.
    NotMeasured,
}

impl Bound {
    /// `≥ `, `≤ ` or nothing, to put before a figure.
    pub fn sign(self) -> &'static str {
        match self {
            Bound::AtLeast => "≥ ",
            Bound::AtMost => "≤ ",
            Bound::Exact | Bound::NotMeasured => "",
        }
    }
}

/// The speed-up figures of a comparison: at the two sides' knees when both
/// have one, else at their capacities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speedup {
    /// group load / single load.
    pub load: Option<f64>,
    /// group req/s / single req/s.
    pub rps: Option<f64>,
    /// group goodput / single goodput.
    pub goodput: Option<f64>,
    /// Requests/s speed-up / replicas (the load speed-up when req/s are
    /// unknown). Throughput is what replicas add; the user count can grow
    /// faster than it in a closed model, because at the group's capacity
    /// each user waits longer per request (efficiency "200%" by users would
    /// mislead).
    pub efficiency: Option<f64>,
    /// How to read them.
    pub bound: Bound,
    /// Whether the figures are the two sides' knees ([`crate::knee`])
    /// rather than their highest loads kept.
    pub at_knees: bool,
}

impl Speedup {
    /// The speed-up of `group` over `single`. A capacity the search never
    /// saw broken is a lower bound, so the ratio is one too (or an upper
    /// bound when it is the single server's); with both unknown there is no
    /// ratio to give ("1.00×, efficiency 50%" of two runs stopped at the same
    /// --max-load would read as "the balancer does not help").
    pub fn of(single: &RunResult, group: &RunResult, replicas: u16) -> Speedup {
        let bound = match (
            single.capacity_is_lower_bound,
            group.capacity_is_lower_bound,
        ) {
            (false, false) => Bound::Exact,
            (false, true) => Bound::AtLeast,
            (true, false) => Bound::AtMost,
            (true, true) => Bound::NotMeasured,
        };
        // The knees when both sides have one: each is fitted to every window
        // of its search, where a capacity is the verdict of the few windows
        // the search's path happened to try (docs/lab.md, "The knee, fitted").
        let at_knees = bound == Bound::Exact && single.knee.is_some() && group.knee.is_some();
        let none = Speedup {
            load: None,
            rps: None,
            goodput: None,
            efficiency: None,
            bound,
            at_knees: false,
        };
        match (single.figures(at_knees), group.figures(at_knees)) {
            _ if bound == Bound::NotMeasured => none,
            (Some((l1, r1, g1)), Some((ln, rn, gn))) if l1 > 0.0 => {
                let rps = (r1 > 0.0).then(|| rn / r1);
                Speedup {
                    load: Some(ln / l1),
                    rps,
                    goodput: (g1 > 0.0).then(|| gn / g1),
                    efficiency: Some(rps.unwrap_or(ln / l1) / f64::from(replicas.max(1))),
                    bound,
                    at_knees,
                }
            }
            _ => none,
        }
    }
}

/// One repeat's headline figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RepeatFigures {
    /// Single server's capacity (load).
    pub single_load: Option<u32>,
    /// Group's capacity (load).
    pub group_load: Option<u32>,
    /// Single server's goodput at capacity, successful req/s.
    pub single_goodput: Option<f64>,
    /// Group's goodput at capacity.
    pub group_goodput: Option<f64>,
    /// Load speed-up.
    pub load_speedup: Option<f64>,
    /// Requests/s speed-up.
    pub rps_speedup: Option<f64>,
    /// Goodput speed-up.
    pub goodput_speedup: Option<f64>,
    /// Whether the figures are exact or bounds.
    pub bound: Bound,
}

impl RepeatFigures {
    /// The figures of one repeat's two runs.
    pub fn of(single: &RunResult, group: &RunResult, replicas: u16) -> RepeatFigures {
        let sp = Speedup::of(single, group, replicas);
        // Goodput on the speed-up's own basis: at the knee, or at capacity.
        let goodput = |r: &RunResult| r.figures(sp.at_knees).map(|(_, _, g)| g);
        RepeatFigures {
            single_load: single.capacity().map(|s| s.load),
            group_load: group.capacity().map(|s| s.load),
            single_goodput: goodput(single),
            group_goodput: goodput(group),
            load_speedup: sp.load,
            rps_speedup: sp.rps,
            goodput_speedup: sp.goodput,
            bound: sp.bound,
        }
    }

    /// The repeat to show in detail: the one whose goodput speed-up (else
    /// load speed-up) is nearest the median; the first when none has one.
    pub fn median_index(reps: &[RepeatFigures]) -> usize {
        let key = |r: &RepeatFigures| r.goodput_speedup.or(r.load_speedup);
        let values: Vec<f64> = reps.iter().filter_map(key).collect();
        let Some(m) = crate::spread::Spread::of(&values) else {
            return 0;
        };
        reps.iter()
            .enumerate()
            .filter_map(|(i, r)| key(r).map(|v| (i, (v - m.median).abs())))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(i, _)| i)
    }
}

/// Median and range over the repeats of each speed-up and goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeedupSpread {
    /// Load speed-up.
    pub load: Option<crate::spread::Spread>,
    /// Requests/s speed-up.
    pub rps: Option<crate::spread::Spread>,
    /// Goodput speed-up.
    pub goodput: Option<crate::spread::Spread>,
    /// Single server's goodput at capacity.
    pub single_goodput: Option<crate::spread::Spread>,
    /// Group's goodput at capacity.
    pub group_goodput: Option<crate::spread::Spread>,
}

impl SpeedupSpread {
    /// Over every repeat that has the figure.
    pub fn of(reps: &[RepeatFigures]) -> SpeedupSpread {
        let of = |f: fn(&RepeatFigures) -> Option<f64>| {
            crate::spread::Spread::of(&reps.iter().filter_map(f).collect::<Vec<_>>())
        };
        SpeedupSpread {
            load: of(|r| r.load_speedup),
            rps: of(|r| r.rps_speedup),
            goodput: of(|r| r.goodput_speedup),
            single_goodput: of(|r| r.single_goodput),
            group_goodput: of(|r| r.group_goodput),
        }
    }

    /// "3.9× the goodput, 3.7–4.1 over 3 runs; 4.0× the load, …", or `None` with one run.
    pub fn text(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.goodput, "the goodput"),
            (self.rps, "the req/s"),
            (self.load, "the load"),
        ]
        .iter()
        .filter_map(|(s, what)| {
            s.filter(|s| s.runs > 1).map(|s| {
                format!(
                    "{:.2}× {what}, {:.2}–{:.2} over {} runs",
                    s.median, s.low, s.high, s.runs
                )
            })
        })
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

impl RunResult {
    /// "73 users, 1041.2 successful req/s": the knee and the goodput there,
    /// or why there is none.
    pub fn knee_text(&self, unit: &str) -> String {
        match self.knee {
            Some(k) => format!("{:.0} {unit}, {:.1} successful req/s", k.load, k.goodput),
            None if self.capacity_is_lower_bound => "none: the objective never broke".into(),
            None => "none: no window kept the objective".into(),
        }
    }

    /// (load, req/s, goodput) at the knee when `at_knees` and there is one,
    /// else at the capacity: the figures a speed-up compares.
    pub fn figures(&self, at_knees: bool) -> Option<(f64, f64, f64)> {
        match (at_knees, self.knee) {
            (true, Some(k)) => Some((k.load, k.rps, k.goodput)),
            _ => self
                .capacity()
                .map(|s| (f64::from(s.load), s.summary.rps, s.summary.goodput())),
        }
    }

    /// The step at capacity.
    pub fn capacity(&self) -> Option<&StepRecord> {
        self.step(self.capacity_step?)
    }

    /// The confirmation window that measured the capacity, if any.
    pub fn confirmation(&self) -> Option<&StepRecord> {
        self.capacity().filter(|c| c.confirmation)
    }

    /// The search's own step at the capacity's load (a confirmation may be
    /// at a load the search never stepped to, after stepping down).
    pub fn search_step_at_capacity(&self) -> Option<&StepRecord> {
        let load = self.capacity()?.load;
        self.steps
            .iter()
            .rfind(|s| !s.confirmation && s.kept && s.load == load)
    }

    /// The confirmations that broke the objective before the capacity was
    /// confirmed lower: "not confirmed at 50 users over 20 s (12 of 85 …)".
    pub fn stepped_down(&self, unit: &str) -> Option<String> {
        let last = self.capacity()?.number;
        let broken: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.confirmation && !s.kept && s.number < last)
            .map(|s| format!("{} {unit} ({})", s.load, s.verdict))
            .collect();
        (!broken.is_empty()).then(|| format!("not confirmed at {}", broken.join(", then at ")))
    }

    /// The last confirmation, when it broke the objective too:
    /// "measured again for 20 s, its capacity broke the objective: 1.30% failed …".
    pub fn unconfirmed(&self) -> Option<String> {
        let c = self.confirmation().filter(|c| !c.kept)?;
        Some(format!(
            "measured again for {:.0} s, its capacity broke the objective: {}",
            c.summary.seconds, c.verdict
        ))
    }

    /// The step numbered `number` (from 1).
    pub fn step(&self, number: u32) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.number == number)
    }

    /// The step the diagnosis (bottleneck, evidence, failures) is about.
    pub fn diagnosed_step(&self) -> Option<&StepRecord> {
        self.diagnosis
            .step
            .and_then(|n| self.step(n))
            .or_else(|| self.limiting_step())
    }

    /// "at 80 users (step 2, where the objective broke)": which step a
    /// figure comes from, and why that one.
    pub fn step_label(&self, step: &StepRecord, unit: &str) -> String {
        let why = if !step.kept {
            if self.broken_at == Some(step.load) {
                "where the objective broke"
            } else {
                "which broke the objective"
            }
        } else if self.capacity_step == Some(step.number) {
            if self.capacity_is_lower_bound {
                "the highest load tried; the objective held"
            } else {
                "the highest load that kept the objective"
            }
        } else {
            "which kept the objective"
        };
        let which = if step.confirmation {
            format!("confirmation over {:.0} s", step.summary.seconds)
        } else {
            format!("step {}", step.number)
        };
        format!("at {} {unit} ({which}, {why})", step.load)
    }

    /// Whether a lower load failed more than a higher one among the steps
    /// that broke the objective (see the note in the report).
    pub fn failures_not_monotonic(&self) -> bool {
        let broken: Vec<&StepRecord> = self.steps.iter().filter(|s| !s.kept).collect();
        broken.iter().any(|a| {
            self.steps
                .iter()
                .any(|b| b.load > a.load && b.summary.fail_ratio < a.summary.fail_ratio)
        })
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

/// The speed-up figures in words, bound included: `2.00× the load, 1.70×
/// the requests/s, scaling efficiency 100% (speed-up / 2 replicas)`, with
/// `≥`/`≤` and the reason when a side never broke the objective.
pub fn speedup_text(r: &LabReport) -> String {
    match (r.speedup_bound, r.speedup, r.efficiency) {
        (Bound::NotMeasured, ..) => format!(
            "not measured: neither side broke the objective, so both capacities are only lower bounds ({})",
            r.group.limit_note
        ),
        (bound, Some(sp), Some(e)) => {
            let sign = bound.sign();
            let mut t = format!(
                "{sign}{sp:.2}× the load{}, scaling efficiency {sign}{:.0}% (requests/s speed-up / {} replicas)",
                r.rps_speedup
                    .map_or(String::new(), |x| format!(", {sign}{x:.2}× the requests/s")),
                e * 100.0,
                r.replicas
            );
            if let Some(g) = r.goodput_speedup {
                t.push_str(&format!(
                    ", {sign}{g:.2}× the goodput (successful requests/s)"
                ));
            }
            if r.speedup_at_knees {
                t.push_str(", at the knees fitted to every window");
            }
            match bound {
                Bound::AtLeast => t.push_str(&format!(
                    "; a lower bound: the group never broke the objective ({})",
                    r.group.limit_note
                )),
                Bound::AtMost => t.push_str(&format!(
                    "; an upper bound: the single server never broke the objective ({})",
                    r.single.limit_note
                )),
                _ => {}
            }
            t
        }
        _ => "not computable (one side never kept the objective)".to_string(),
    }
    .to_string()
        + &match (r.spread.text(), r.repeat_shown) {
            // The figures before it are the repeat the tables show, which
            // need not be the median of every speed-up at once.
            (Some(t), Some(k)) => format!(
                "; those of repeat {k} of {}, shown above (the median goodput speed-up); median and range: {t}",
                r.repeats.len()
            ),
            (Some(t), None) => format!("; median and range: {t}"),
            // A capacity near a knee is decided by which windows caught the
            // failures: one run is one sample (docs/lab.md, "Why three minutes
            // cannot pin this knee"), and the reader should know how to get more.
            (None, _) if r.speedup.is_some() => {
                "; one run, one sample: --repeat 3 gives a median and the range between runs"
                    .to_string()
            }
            (None, _) => String::new(),
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

/// A small comparison built by hand, for the renderers' tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::diagnosis::{diagnose_run, LOADGEN};
    use crate::load::{FailureCount, LoginShape, Point, RouteStat, StepSummary};
    use crate::procstat::{HostUsage, ProcUsage};
    use crate::status::Share;

    const LOGIN: &str = "/api/v1/auth/token/";
    const ITEM: &str = "/api/v1/products/[id]/";

    /// A step at `load` failing `fail_ratio` (401s on product pages), with
    /// `latency` ms as its p99 and a few seconds of history.
    pub fn step(number: u32, load: u32, fail_ratio: f64, latency: f64, slo: &Slo) -> StepRecord {
        let requests = 10_000;
        let failures = (fail_ratio * requests as f64).round() as u64;
        let verdict = slo.check(requests, fail_ratio, latency / 2.0);
        StepRecord {
            number,
            load,
            summary: StepSummary {
                requests,
                failures,
                fail_ratio,
                rps: f64::from(load) * 10.0,
                p50_ms: 2.0,
                p95_ms: latency / 2.0,
                p99_ms: latency,
                routes: vec![
                    RouteStat {
                        method: "POST".into(),
                        name: LOGIN.into(),
                        requests: 100,
                        failures: 0,
                        median_ms: 223.0,
                        avg_ms: 230.0,
                    },
                    RouteStat {
                        method: "GET".into(),
                        name: ITEM.into(),
                        requests: requests - 100,
                        failures,
                        median_ms: 2.0,
                        avg_ms: 3.0,
                    },
                ],
                top_failures: (failures > 0)
                    .then(|| FailureCount {
                        method: "GET".into(),
                        name: ITEM.into(),
                        kind: "status".into(),
                        error: "status: HTTP 401 Unauthorized".into(),
                        count: failures,
                    })
                    .into_iter()
                    .collect(),
                history: (0..3)
                    .map(|_| Point {
                        users: load,
                        rps: f64::from(load) * 10.0,
                        p50: 2.0,
                        p95: latency / 2.0,
                        p99: latency,
                        ..Point::default()
                    })
                    .collect(),
                ..StepSummary::default()
            },
            confirmation: false,
            kept: verdict.is_ok(),
            verdict: verdict.err().unwrap_or_default(),
            warmup_s: 3.0,
            processes: vec![
                ProcUsage {
                    name: "replica r1".into(),
                    pid: 11,
                    cpu_percent: 25.0,
                    rss_mib: 60.0,
                    peak_rss_mib: 60.0,
                },
                ProcUsage {
                    name: LOADGEN.into(),
                    pid: 10,
                    cpu_percent: 10.0,
                    rss_mib: 20.0,
                    peak_rss_mib: 20.0,
                },
            ],
            lab_cpu_percent: 80.0,
            host: HostUsage {
                cpu_percent: 50.0,
                cores: 2,
                steal_percent: 0.0,
            },
            throttled: vec![("r1".into(), 0.9)],
            shares: None,
        }
    }

    fn run(name: &str, steps: Vec<StepRecord>, ended: SearchEnd) -> RunResult {
        let kept = steps.iter().filter(|s| s.kept).max_by_key(|s| s.load);
        let broken_at = steps.iter().filter(|s| !s.kept).map(|s| s.load).min();
        let mut r = RunResult {
            name: name.into(),
            target: "http://127.0.0.1:1".into(),
            capacity_step: kept.map(|s| s.number),
            broken_at,
            hit_ceiling: ended == SearchEnd::MaxLoad,
            capacity_is_lower_bound: broken_at.is_none(),
            search_ended: ended,
            limit_note: if broken_at.is_none() {
                ended.hint(2000, 3, "users")
            } else {
                String::new()
            },
            steps,
            diagnosis: Default::default(),
            knee: None,
        };
        let shape = LoginShape::of(&crate::load::scenario("market-api").unwrap());
        let note = r.limit_note.clone();
        if let Some(st) = r.limiting_step() {
            r.diagnosis = diagnose_run(
                st,
                Some(0.25),
                &shape,
                broken_at.is_none().then_some(note.as_str()),
            );
        }
        r
    }

    /// Single: 40 kept, 80 broke (7.1%), 60 kept. Group: 40, 80 kept, then
    /// 160 broke at 1.027% and 120 kept — or, with `group_breaks` false,
    /// 40 and 80 kept and the search out of steps.
    pub fn report(group_breaks: bool) -> LabReport {
        let slo = Slo::default();
        let single = run(
            "single",
            vec![
                step(1, 40, 0.0, 90.0, &slo),
                step(2, 80, 0.071, 400.0, &slo),
                step(3, 60, 0.0, 100.0, &slo),
            ],
            SearchEnd::Broke,
        );
        let mut group_steps = vec![step(1, 40, 0.0, 50.0, &slo), step(2, 80, 0.0, 200.0, &slo)];
        if group_breaks {
            group_steps.push(step(3, 160, 0.01027, 800.0, &slo));
            group_steps.push(step(4, 120, 0.0, 300.0, &slo));
        }
        let mut group = run(
            "group",
            group_steps,
            if group_breaks {
                SearchEnd::Broke
            } else {
                SearchEnd::MaxSteps
            },
        );
        for st in &mut group.steps {
            st.shares = Some(crate::status::ShareDelta {
                shares: vec![Share {
                    addr: "127.0.0.1:40001".into(),
                    replica: "r1".into(),
                    requests: 10,
                    failures: 0,
                    state: "up".into(),
                    fraction: 1.0,
                }],
                total: 10,
            });
        }
        let sp = Speedup::of(&single, &group, 2);
        LabReport {
            started: "2026-11-29T00:00:00Z".into(),
            command: "lab compare".into(),
            replicas: 2,
            algorithm: "round_robin".into(),
            budget_requested: "0.25".into(),
            budget_applied: "0.25".into(),
            budget_note: "budget".into(),
            cpus_apart: true,
            capacity_model: CAPACITY_MODEL.into(),
            host_cores: 2,
            slo,
            model: "closed".into(),
            load_unit: "users".into(),
            scenario: "market-api".into(),
            step_seconds: 3.0,
            single,
            group,
            speedup: sp.load,
            rps_speedup: sp.rps,
            goodput_speedup: sp.goodput,
            efficiency: sp.efficiency,
            repeats: Vec::new(),
            spread: SpeedupSpread::default(),
            repeat_shown: None,
            speedup_bound: sp.bound,
            speedup_at_knees: sp.at_knees,
            interrupted: false,
            explained: Vec::new(),
            conclusion: "conclusion".into(),
            files: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_report_the_median_and_range_and_show_the_median_run() {
        let fig = |g: f64| RepeatFigures {
            goodput_speedup: Some(g),
            rps_speedup: Some(g),
            load_speedup: Some(g + 0.5),
            ..RepeatFigures::default()
        };
        let reps = [fig(3.7), fig(4.1), fig(3.9)];
        assert_eq!(RepeatFigures::median_index(&reps), 2);
        let sp = SpeedupSpread::of(&reps);
        assert_eq!(sp.goodput.unwrap().median, 3.9);
        let t = sp.text().unwrap();
        assert!(
            t.starts_with("3.90× the goodput, 3.70–4.10 over 3 runs"),
            "{t}"
        );
        assert!(t.contains("4.40× the load, 4.20–4.60 over 3 runs"), "{t}");
        assert_eq!(SpeedupSpread::of(&reps[..1]).text(), None);
        assert_eq!(RepeatFigures::median_index(&[]), 0);
        let mut r = fixture::report(true);
        let one = speedup_text(&r);
        assert!(
            one.ends_with(
                "one run, one sample: --repeat 3 gives a median and the range between runs"
            ),
            "{one}"
        );
        r.spread = sp;
        let t = speedup_text(&r);
        assert!(t.contains("; median and range: 3.90× the goodput"), "{t}");
        assert!(!t.contains("one run"), "{t}");
        (r.repeats, r.repeat_shown) = (reps.to_vec(), Some(2));
        let t = speedup_text(&r);
        let which = "those of repeat 2 of 3, shown above (the median goodput speed-up); median and range: 3.90× the goodput";
        assert!(t.contains(which), "{t}");
        // Goodput of each side at capacity, from the fixture's steps.
        let f = RepeatFigures::of(&r.single, &r.group, 2);
        assert!(f.goodput_speedup.is_some() && f.single_goodput.unwrap() > 0.0);
    }

    #[test]
    fn speedups_compare_the_knees_when_both_sides_have_one() {
        let r = fixture::report(true);
        let knee = |load: f64| Knee {
            load,
            goodput: load * 9.0,
            rps: load * 10.0,
            windows: 4,
        };
        let (mut single, mut group) = (r.single.clone(), r.group.clone());
        single.knee = Some(knee(70.0));
        let sp = Speedup::of(&single, &group, 2);
        assert!(!sp.at_knees, "one knee is no basis");
        assert_eq!(sp.load, Some(2.0), "capacities: 120 / 60");
        group.knee = Some(knee(140.0 * 1.5));
        let sp = Speedup::of(&single, &group, 2);
        assert!(sp.at_knees);
        assert_eq!(sp.load, Some(3.0));
        assert_eq!(sp.goodput, Some(3.0));
        assert_eq!(sp.efficiency, Some(1.5));
        let f = RepeatFigures::of(&single, &group, 2);
        assert_eq!(f.single_goodput, Some(630.0), "goodput at the knee");
        // A group that never broke has no knee to compare: capacities, as a bound.
        group.capacity_is_lower_bound = true;
        assert!(!Speedup::of(&single, &group, 2).at_knees);
        assert_eq!(
            single.knee_text("users"),
            "70 users, 630.0 successful req/s"
        );
    }

    #[test]
    fn speedup_is_a_bound_when_a_side_never_broke() {
        let r = fixture::report(true);
        assert_eq!(r.speedup_bound, Bound::Exact);
        assert_eq!(r.speedup, Some(2.0)); // 120 / 60
        let r = fixture::report(false);
        assert_eq!(r.speedup_bound, Bound::AtLeast);
        assert!(r.group.capacity_is_lower_bound);
        let text = speedup_text(&r);
        assert!(text.starts_with("≥ 1.33× the load"), "{text}");
        assert!(text.contains("scaling efficiency ≥ 67%"), "{text}");
        assert!(text.contains("raise --max-steps"), "{text}");
        // Neither side broke: no figure at all.
        let mut single = r.single.clone();
        single.capacity_is_lower_bound = true;
        let sp = Speedup::of(&single, &r.group, 2);
        assert_eq!(
            (sp.bound, sp.load, sp.efficiency),
            (Bound::NotMeasured, None, None)
        );
        let sp = Speedup::of(&single, &fixture::report(true).group, 2);
        assert_eq!(sp.bound, Bound::AtMost);
    }

    /// `r.group` after a confirmation window at its capacity (120 users).
    fn confirm(r: &mut LabReport, load: u32, kept: bool) -> StepRecord {
        let mut c = r.group.steps[3].clone();
        c.number = r.group.steps.len() as u32 + 1;
        c.load = load;
        c.confirmation = true;
        c.summary.rps *= 2.0;
        c.summary.seconds = 20.0;
        c.kept = kept;
        if !kept {
            c.verdict = "1.30% failed (objective ≤ 1%)".into();
        }
        r.group.steps.push(c.clone());
        r.group.capacity_step = Some(c.number);
        c
    }

    #[test]
    fn a_confirmation_measures_the_capacity_and_can_unconfirm_it() {
        let mut r = fixture::report(true);
        let step_goodput = r.group.capacity().unwrap().summary.goodput();
        let before = Speedup::of(&r.single, &r.group, r.replicas)
            .goodput
            .unwrap();
        confirm(&mut r, 120, true);
        // The load is the search's; the figures are the longer window's.
        assert_eq!(r.group.capacity().unwrap().load, 120);
        assert_eq!(r.group.search_step_at_capacity().unwrap().number, 4);
        let after = Speedup::of(&r.single, &r.group, r.replicas)
            .goodput
            .unwrap();
        let ratio = r.group.capacity().unwrap().summary.goodput() / step_goodput;
        assert!(
            (after / before - ratio).abs() < 1e-9,
            "{before} {after} {ratio}"
        );
        assert!(r.group.unconfirmed().is_none());
        assert!(r.group.stepped_down("users").is_none());
        let note = terminal::confirmation_note(&r).unwrap();
        assert!(note.contains("measured again over 20 s"), "{note}");
        assert!(note.contains("window there: group"), "{note}");
        let label = r.group.step_label(r.group.capacity().unwrap(), "users");
        assert_eq!(
            label,
            "at 120 users (confirmation over 20 s, the highest load that kept the objective)"
        );
        r.group.steps.pop();
        confirm(&mut r, 120, false);
        let note = terminal::confirmation_note(&r).unwrap();
        assert!(
            note.contains(
                "group: measured again for 20 s, its capacity broke the objective: 1.30% failed"
            ),
            "{note}"
        );
        // No capacity, nothing to measure: the confirmation is not used.
        r.group.capacity_step = None;
        assert!(r.group.confirmation().is_none());
    }

    #[test]
    fn a_capacity_not_confirmed_is_confirmed_lower() {
        let mut r = fixture::report(true);
        confirm(&mut r, 120, false);
        confirm(&mut r, 110, true);
        assert_eq!(r.group.capacity().unwrap().load, 110);
        assert!(r.group.search_step_at_capacity().is_none(), "never a step");
        assert!(r.group.unconfirmed().is_none());
        assert_eq!(
            r.group.stepped_down("users").unwrap(),
            "not confirmed at 120 users (1.30% failed (objective ≤ 1%))"
        );
        let note = terminal::confirmation_note(&r).unwrap();
        assert!(
            note.contains("so the capacity stepped down to 110 users"),
            "{note}"
        );
        assert!(!note.contains("window there"), "{note}");
    }

    #[test]
    fn capacity_step_is_a_step_number() {
        let r = fixture::report(true);
        assert_eq!(r.group.capacity_step, Some(4));
        assert_eq!(r.group.capacity().map(|s| s.load), Some(120));
        assert_eq!(r.single.diagnosis.step, Some(2));
        let st = r.single.diagnosed_step().unwrap();
        assert_eq!(
            r.single.step_label(st, "users"),
            "at 80 users (step 2, where the objective broke)"
        );
        assert!(!r.single.failures_not_monotonic());
    }
}
