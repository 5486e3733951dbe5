//! Where the CPU per request goes, and why N budgeted replicas serve less
//! than N times one: measured, and sorted into artefacts of running N
//! servers on one 2-core box versus what separate servers would also show.
//!
//! Per-route CPU cost is estimated lab-side, without accounting inside
//! market-api: every step gives the side's replica CPU time over its window
//! and the requests per route class (logins, the scenario's `on_start`
//! requests, against everything else), and a non-negative least-squares fit
//! of `cpu = c_login × logins + c_other × others` over the side's steps
//! gives each class's CPU per request. Steps differ in their mix (ramps add
//! logins, a fresh start after a broken step adds many), which is what makes
//! the two costs separable; with too little variation the fit is refused.

use serde::{Deserialize, Serialize};

use crate::database::POSTGRES;
use crate::load::LoginShape;
use crate::step::StepRecord;

/// CPU cost of one class of requests, fitted over a side's steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteCost {
    /// `logins` or `other requests`.
    pub class: String,
    /// Requests of the class over the steps used.
    pub requests: u64,
    /// CPU per request, ms.
    pub cpu_ms: f64,
    /// Share of the requests.
    pub share_requests: f64,
    /// Share of the fitted replica CPU.
    pub share_cpu: f64,
}

/// One step's regression row: `(logins, others, replica CPU seconds)`.
fn row(step: &StepRecord, shape: &LoginShape) -> Option<(f64, f64, f64)> {
    let (mut logins, mut others) = (0u64, 0u64);
    for r in &step.summary.routes {
        if shape.is_login(&r.method, &r.name) {
            logins += r.requests;
        } else {
            others += r.requests;
        }
    }
    let cpu_s = step.replica_cpu_percents().sum::<f64>() / 100.0 * step.summary.seconds;
    (logins + others > 0 && step.summary.seconds > 0.0).then_some((
        logins as f64,
        others as f64,
        cpu_s,
    ))
}

/// Fits `cpu = a × x + b × y` (a, b ≥ 0) over `(x, y, cpu)` rows.
pub(crate) fn fit_two(rows: &[(f64, f64, f64)]) -> Option<(f64, f64)> {
    let (mut xx, mut xy, mut yy, mut xc, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, y, c) in rows {
        xx += x * x;
        xy += x * y;
        yy += y * y;
        xc += x * c;
        yc += y * c;
    }
    let det = xx * yy - xy * xy;
    // Nearly collinear mixes (every step the same share of logins) cannot
    // tell the two costs apart.
    if rows.len() < 3 || det <= 1e-9 * xx * yy {
        return None;
    }
    let a = (xc * yy - yc * xy) / det;
    let b = (xx * yc - xy * xc) / det;
    match (a >= 0.0, b >= 0.0) {
        (true, true) => Some((a, b)),
        (false, _) if yy > 0.0 => Some((0.0, (yc / yy).max(0.0))),
        (_, false) if xx > 0.0 => Some(((xc / xx).max(0.0), 0.0)),
        _ => None,
    }
}

/// The per-class CPU costs of a side, or `None` when its steps cannot
/// separate them.
pub fn route_costs(steps: &[StepRecord], shape: &LoginShape) -> Option<Vec<RouteCost>> {
    let rows: Vec<_> = steps.iter().filter_map(|s| row(s, shape)).collect();
    let (a, b) = fit_two(&rows)?;
    let logins: f64 = rows.iter().map(|r| r.0).sum();
    let others: f64 = rows.iter().map(|r| r.1).sum();
    let (cpu_l, cpu_o) = (a * logins, b * others);
    let cpu = (cpu_l + cpu_o).max(1e-12);
    let total = (logins + others).max(1.0);
    Some(vec![
        RouteCost {
            class: "logins".into(),
            requests: logins as u64,
            cpu_ms: a * 1000.0,
            share_requests: logins / total,
            share_cpu: cpu_l / cpu,
        },
        RouteCost {
            class: "other requests".into(),
            requests: others as u64,
            cpu_ms: b * 1000.0,
            share_requests: others / total,
            share_cpu: cpu_o / cpu,
        },
    ])
}

/// "logins were 0.6% of requests and 60% of the replicas' CPU (6.1 ms of
/// CPU each, other requests 0.05 ms; fitted over 7 steps)".
pub fn cost_sentence(costs: &[RouteCost], steps: usize) -> Option<String> {
    let [l, o] = costs else { return None };
    Some(format!(
        "{} were {:.1}% of requests and {:.0}% of the replicas' CPU ({:.2} ms of CPU each, {} {:.3} ms; fitted over {steps} steps)",
        l.class,
        l.share_requests * 100.0,
        l.share_cpu * 100.0,
        l.cpu_ms,
        o.class,
        o.cpu_ms
    ))
}

/// Steal (percent of the machine's CPU time) from which the notes name it.
const STEAL_WORTH_SAYING: f64 = 1.0;

/// The gap between N × one replica's goodput and the group's, with each
/// measured cause and whether separate servers would show it too. `apart`:
/// the load generator and the balancer had CPUs of their own.
pub fn gap_notes(
    single: Option<&StepRecord>,
    group: Option<&StepRecord>,
    n: u16,
    apart: bool,
) -> Vec<String> {
    let (Some(s), Some(g)) = (single, group) else {
        return Vec::new();
    };
    let (gs, gg) = (s.summary.goodput(), g.summary.goodput());
    if gs <= 0.0 || n == 0 {
        return Vec::new();
    }
    let per = gg / f64::from(n);
    let mut out = vec![format!(
        "a replica in the group served {per:.0} successful req/s against the single server's {gs:.0} ({:.0}%)",
        per / gs * 100.0
    )];
    let throttled = |st: &StepRecord| {
        (!st.throttled.is_empty())
            .then(|| st.throttled.iter().map(|t| t.1).sum::<f64>() / st.throttled.len() as f64)
    };
    if let (Some(ts), Some(tg)) = (throttled(s), throttled(g)) {
        out.push(format!(
            "artefact of the quota model: budgeted replicas were throttled in {:.0}% of {} ms periods in the group against {:.0}% alone; a throttled replica stalls every request it holds until the next period, which real servers with whole cores do not",
            tg * 100.0,
            crate::cgroup::PERIOD_US / 1000,
            ts * 100.0
        ));
    }
    let lg = |st: &StepRecord| {
        st.processes
            .iter()
            .find(|p| p.name == crate::diagnosis::LOADGEN)
            .map_or(0.0, |p| p.cpu_percent)
    };
    out.push(if apart {
        format!(
            "removed: the load generator ({:.0}% of a core) and the balancer ran on CPUs of their own, so they did not take turns with the replicas inside their quota periods (the host's {} cores were {:.0}% busy in the group's step)",
            lg(g),
            g.host.cores,
            g.host.cpu_percent
        )
    } else {
        format!(
            "artefact of one box: the load generator used {:.0}% of a core and the host's {} cores were {:.0}% busy in the group's step; on separate machines the client and the balancer would not share cores with the replicas (run without --no-pin to keep them apart)",
            lg(g),
            g.host.cores,
            g.host.cpu_percent
        )
    });
    let (ss, sg) = (s.host.steal_percent, g.host.steal_percent);
    if ss.max(sg) >= STEAL_WORTH_SAYING {
        out.push(format!(
            "artefact of a shared machine: the hypervisor gave {ss:.1}% of this machine's CPU time to other guests in the single side's window and {sg:.1}% in the group's (steal); its neighbours move the figures from run to run, both sides alike when they share windows"
        ));
    }
    if let Some(b) = g.processes.iter().find(|p| p.name == "balancer") {
        let on_postgres = g.processes.iter().any(|p| p.name.starts_with(POSTGRES));
        let shared = if on_postgres {
            "one PostgreSQL server (its locks and its CPU"
        } else {
            "one SQLite file (writes serialise"
        };
        out.push(format!(
            "real, and also on separate servers: the balancer's hop (it used {:.0}% of a core) adds latency to every request, and the replicas share {shared}: contention, σ in `lab scale`)",
            b.cpu_percent
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_costs_from_steps_with_different_mixes() {
        // 6 ms per login, 0.05 ms per other request.
        let rows: Vec<(f64, f64, f64)> = [
            (10.0, 2000.0),
            (50.0, 4000.0),
            (5.0, 8000.0),
            (80.0, 1000.0),
        ]
        .iter()
        .map(|&(l, o)| (l, o, l * 0.006 + o * 0.000_05))
        .collect();
        let (a, b) = fit_two(&rows).unwrap();
        assert!(
            (a - 0.006).abs() < 1e-9 && (b - 0.000_05).abs() < 1e-12,
            "{a} {b}"
        );
        // The same mix in every step cannot be separated.
        let same: Vec<_> = [1.0, 2.0, 3.0]
            .iter()
            .map(|&k| (10.0 * k, 1000.0 * k, k))
            .collect();
        assert!(fit_two(&same).is_none());
        assert!(fit_two(&rows[..2]).is_none());
    }

    #[test]
    fn steal_is_named_as_an_artefact_of_a_shared_machine() {
        let step = |load: u32, steal: f64| {
            let mut st =
                crate::report::fixture::step(1, load, 0.0, 10.0, &crate::capacity::Slo::default());
            st.host.steal_percent = steal;
            st
        };
        let said =
            |single: &StepRecord, group: &StepRecord| gap_notes(Some(single), Some(group), 4, true);
        let quiet = said(&step(50, 0.2), &step(180, 0.4));
        assert!(quiet.iter().all(|n| !n.contains("steal")), "{quiet:?}");
        let noisy = said(&step(50, 0.3), &step(180, 6.5));
        let note = noisy
            .iter()
            .find(|n| n.contains("steal"))
            .expect("a note on steal");
        assert!(
            note.contains("0.3% of this machine's CPU time")
                && note.contains("6.5% in the group's"),
            "{note}"
        );
    }

    #[test]
    fn the_sentence_gives_shares_of_requests_and_of_cpu() {
        let costs = [
            RouteCost {
                class: "logins".into(),
                requests: 6,
                cpu_ms: 6.0,
                share_requests: 0.006,
                share_cpu: 0.6,
            },
            RouteCost {
                class: "other requests".into(),
                requests: 994,
                cpu_ms: 0.024,
                share_requests: 0.994,
                share_cpu: 0.4,
            },
        ];
        assert_eq!(
            cost_sentence(&costs, 7).unwrap(),
            "logins were 0.6% of requests and 60% of the replicas' CPU (6.00 ms of CPU each, other requests 0.024 ms; fitted over 7 steps)"
        );
    }
}
