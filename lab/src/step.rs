//! One measured load step: what the capacity search, the diagnosis and the
//! reports all read. It sits below all three (the diagnosis is computed from
//! steps, the report holds both), so no layer imports one above it.

use serde::{Deserialize, Serialize};

use crate::cgroup::Throttle;
use crate::load::StepSummary;
use crate::procstat::{HostUsage, ProcUsage};
use crate::status::ShareDelta;

/// Share of its CPU budget a replica uses for [`StepRecord::cpu_spent`].
/// In the 62 runs of sets R–AE of docs/lab.md the busiest replica of each
/// growth step kept just below the knee used 98–101% of it; of the 372
/// other growth steps kept, one used 98% and none else 95% or more.
pub const SPENT: f64 = 0.95;

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
    /// why the search stopped growing there (`but … waited …`) or slowed
    /// down (`but a replica used its whole CPU budget …`).
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

    /// CPU of each of the step's replicas over its window, % of a core.
    pub fn replica_cpu_percents(&self) -> impl Iterator<Item = f64> + '_ {
        (self.processes.iter())
            .filter(|p| p.name.starts_with("replica"))
            .map(|p| p.cpu_percent)
    }

    /// Whether a replica of the step used its whole CPU budget of
    /// `budget_cores` (at least [`SPENT`] of it): more load can only queue
    /// there. The busiest replica, not the mean: round robin deals requests
    /// evenly, not the logins' hashing, so one replica is spent before the
    /// others (17.7, 17.2, 17.2 and 16.0 of 18% in one group), and its queue
    /// is the one that grows.
    pub fn cpu_spent(&self, budget_cores: f64) -> bool {
        let busiest = self.replica_cpu_percents().fold(0.0, f64::max);
        budget_cores > 0.0 && busiest >= SPENT * budget_cores * 100.0
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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cpus: &[(&str, f64)]) -> StepRecord {
        StepRecord {
            number: 1,
            load: 80,
            summary: StepSummary::default(),
            confirmation: false,
            kept: true,
            verdict: String::new(),
            warmup_s: 0.0,
            processes: (cpus.iter())
                .map(|&(name, cpu_percent)| ProcUsage {
                    name: name.into(),
                    pid: 1,
                    cpu_percent,
                    rss_mib: 30.0,
                    peak_rss_mib: 30.0,
                })
                .collect(),
            lab_cpu_percent: 0.0,
            host: HostUsage::default(),
            throttled: Vec::new(),
            shares: None,
        }
    }

    #[test]
    fn the_cpu_is_spent_when_the_replicas_use_their_whole_budget() {
        let busy_tools = [("loadgen (lab)", 90.0), ("balancer", 40.0)];
        let mut group = step(&[17.2, 17.7, 17.2, 16.0].map(|c| ("replica", c)));
        group.processes.extend(step(&busy_tools).processes);
        assert!(group.cpu_spent(0.18), "the busiest used 98% of 18");
        assert!(!group.cpu_spent(0.25), "the tools' CPU does not count");
        assert!(!step(&[("replica single", 16.9)]).cpu_spent(0.18), "94%");
        assert!(!step(&busy_tools).cpu_spent(0.18), "no replica measured");
        assert!(!step(&[("replica single", 17.0)]).cpu_spent(0.0));
    }
}
