//! The bottleneck in plain words, from what was measured.
//!
//! The rules look at the step that broke the objective (or the highest step
//! if none did) and name the first resource that was saturated: the
//! replicas' CPU budget, the host's cores, the load generator, the balancer,
//! or SQLite writes. Each conclusion comes with the figures behind it, so the
//! reader can check the reasoning instead of trusting it.

use serde::{Deserialize, Serialize};

use crate::report::StepRecord;

/// Name of the lab's own process in process lists (it runs the load generator).
pub const LOADGEN: &str = "loadgen (lab)";

/// CPU share of a budget (or a core) above which a process counts as saturated.
const SATURATED: f64 = 0.80;

/// What limited a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Diagnosis {
    /// Short name: "the replicas' CPU budget", "host CPU", …
    pub bottleneck: String,
    /// One or two sentences in plain words.
    pub explanation: String,
    /// The figures behind it.
    pub evidence: Vec<String>,
}

/// Diagnoses a run: its limiting step, or "none reached" when the objective
/// held at every load tried.
pub fn diagnose_run(step: &StepRecord, broke: bool, budget: Option<f64>) -> Diagnosis {
    let d = diagnose(step, budget);
    if broke {
        return d;
    }
    Diagnosis {
        bottleneck: "none reached".into(),
        explanation: format!(
            "the objective held at every load tried (up to {}): raise --max-load or --max-steps to find the limit",
            step.load
        ),
        evidence: d.evidence,
    }
}

/// Diagnoses a step. `budget` is the CPU budget per replica in force (cores).
pub fn diagnose(step: &StepRecord, budget: Option<f64>) -> Diagnosis {
    let cpu = |pred: &dyn Fn(&str) -> bool| -> Vec<f64> {
        step.processes
            .iter()
            .filter(|p| pred(&p.name))
            .map(|p| p.cpu_percent)
            .collect()
    };
    let replicas = cpu(&|n| n.starts_with("replica"));
    let loadgen = cpu(&|n| n == LOADGEN).first().copied().unwrap_or(0.0);
    let balancer = cpu(&|n| n == "balancer").first().copied();
    let avg_replica = if replicas.is_empty() {
        0.0
    } else {
        replicas.iter().sum::<f64>() / replicas.len() as f64
    };
    let throttled = if step.throttled.is_empty() {
        0.0
    } else {
        step.throttled.iter().map(|t| t.1).sum::<f64>() / step.throttled.len() as f64
    };
    let host = step.host.cpu_percent;
    let cores = step.host.cores.max(1);
    let s = &step.summary;

    let mut evidence = vec![
        format!(
            "replicas used {:.0}% of a core each on average{}",
            avg_replica,
            budget.map_or(String::new(), |b| format!(" (budget {:.0}%)", b * 100.0))
        ),
        format!("the load generator (this process) used {loadgen:.0}% of a core"),
        format!("the host's {cores} cores were {host:.0}% busy"),
    ];
    if let Some(b) = balancer {
        evidence.push(format!("the balancer used {b:.0}% of a core"));
    }
    // CPU the lab's processes do not account for: other jobs on this machine.
    let ours: f64 = step.processes.iter().map(|p| p.cpu_percent).sum();
    let others = (host * cores as f64 - ours).max(0.0);
    if others >= 30.0 {
        evidence.push(format!(
            "other processes on this machine used about {others:.0}% of a core during the step (noise the lab cannot remove)"
        ));
    }
    if !step.throttled.is_empty() {
        evidence.push(format!(
            "budgeted replicas were throttled in {:.0}% of scheduler periods",
            throttled * 100.0
        ));
    }
    let post_ratio = ratio(s.post_failures, s.post_requests);
    let get_ratio = ratio(s.get_failures, s.get_requests);
    if s.failures > 0 {
        evidence.push(format!(
            "{:.1}% of POSTs and {:.1}% of GETs failed ({} timeouts, {} answers 5xx)",
            post_ratio * 100.0,
            get_ratio * 100.0,
            s.timeouts,
            s.status_5xx
        ));
    }

    let (bottleneck, explanation) = if let Some(b) =
        budget.filter(|b| avg_replica >= b * 100.0 * SATURATED || throttled >= 0.5)
    {
        (
            "the replicas' CPU budget".to_string(),
            format!(
                "each replica used its whole CPU budget ({:.0}% of a core): more replicas (or a bigger budget) would take more load",
                b * 100.0
            ),
        )
    } else if budget.is_none() && host >= 85.0 {
        (
            "host CPU".to_string(),
            format!(
                "host CPU (the replicas share the same {cores} cores: a balancer alone adds no capacity on one machine); every process, the load generator included, competed for the same cores"
            ),
        )
    } else if loadgen >= 100.0 * SATURATED * 1.05 {
        (
            "the load generator itself".to_string(),
            "the load generator itself used about a core: the figures say more about the client than about the servers; run it on another machine or lower the load".to_string(),
        )
    } else if balancer.is_some_and(|b| b >= 100.0 * SATURATED * 1.05) {
        (
            "the balancer".to_string(),
            "the balancer used about a core: it, not the replicas, set the pace (give it more workers or a core of its own)".to_string(),
        )
    } else if host >= 90.0 {
        (
            "host CPU".to_string(),
            if others >= 50.0 {
                format!("host CPU: all {cores} cores were busy, largely with processes outside the lab; rerun on a quieter machine")
            } else {
                format!("host CPU: all {cores} cores were busy, so the replicas, the balancer and the load generator slowed each other down")
            },
        )
    } else if s.post_failures > 0
        && post_ratio > 2.0 * get_ratio
        && s.post_failures * 2 >= s.failures
    {
        (
            "SQLite writes".to_string(),
            "SQLite writes: failures concentrate on POSTs while reads pass; SQLite lets one writer at a time, so writes queue behind each other (the replicas all share one database file)".to_string(),
        )
    } else if s.failures == 0 && s.p95_ms <= 0.0 {
        (
            "nothing measured".to_string(),
            "no request completed in this step".to_string(),
        )
    } else {
        (
            "waiting, not CPU".to_string(),
            "no resource the lab measures was saturated: latency grew from waiting (connection limits, queues, locks or I/O); see the failures and per-endpoint figures".to_string(),
        )
    };
    Diagnosis {
        bottleneck,
        explanation,
        evidence,
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::StepSummary;
    use crate::procstat::{HostUsage, ProcUsage};

    fn step(procs: &[(&str, f64)], host: f64, summary: StepSummary) -> StepRecord {
        StepRecord {
            number: 1,
            load: 10,
            summary,
            kept: false,
            verdict: String::new(),
            warmup_s: 0.0,
            processes: procs
                .iter()
                .map(|(n, c)| ProcUsage {
                    name: n.to_string(),
                    pid: 1,
                    cpu_percent: *c,
                    rss_mib: 1.0,
                    peak_rss_mib: 1.0,
                })
                .collect(),
            host: HostUsage {
                cpu_percent: host,
                cores: 2,
            },
            throttled: Vec::new(),
            shares: None,
        }
    }

    fn busy() -> StepSummary {
        StepSummary {
            requests: 100,
            p95_ms: 900.0,
            ..StepSummary::default()
        }
    }

    #[test]
    fn names_the_budget_when_replicas_sit_at_their_quota() {
        let s = step(
            &[("replica r1", 24.0), ("replica r2", 25.0), (LOADGEN, 40.0)],
            70.0,
            busy(),
        );
        assert_eq!(
            diagnose(&s, Some(0.25)).bottleneck,
            "the replicas' CPU budget"
        );
    }

    #[test]
    fn names_host_cpu_without_a_budget() {
        let s = step(
            &[("replica r1", 80.0), ("replica r2", 70.0), (LOADGEN, 45.0)],
            97.0,
            busy(),
        );
        let d = diagnose(&s, None);
        assert_eq!(d.bottleneck, "host CPU");
        assert!(d.explanation.contains("a balancer alone adds no capacity"));
    }

    #[test]
    fn names_the_load_generator_and_the_balancer() {
        let s = step(&[("replica r1", 10.0), (LOADGEN, 99.0)], 60.0, busy());
        assert_eq!(
            diagnose(&s, Some(0.25)).bottleneck,
            "the load generator itself"
        );
        let s = step(
            &[("replica r1", 10.0), ("balancer", 98.0), (LOADGEN, 30.0)],
            60.0,
            busy(),
        );
        assert_eq!(diagnose(&s, Some(0.25)).bottleneck, "the balancer");
    }

    #[test]
    fn names_sqlite_writes_when_posts_fail_and_reads_pass() {
        let summary = StepSummary {
            requests: 1000,
            failures: 50,
            post_requests: 100,
            post_failures: 50,
            get_requests: 900,
            status_5xx: 50,
            p95_ms: 100.0,
            ..StepSummary::default()
        };
        let s = step(&[("replica r1", 10.0), (LOADGEN, 20.0)], 30.0, summary);
        assert_eq!(diagnose(&s, Some(0.25)).bottleneck, "SQLite writes");
    }
}
