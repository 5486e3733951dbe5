//! The terminal view of a comparison: an aligned side-by-side table, the
//! per-replica shares, the processes' CPU and memory, and the conclusions in
//! plain words.

use std::fmt::Write as _;

use super::{speedup_text, LabReport, RunResult, SearchEnd, StepRecord};
use crate::capacity::Slo;

/// Formats rows as left-aligned columns separated by two spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// "never (…)" and the bottleneck cell of a side that never broke the objective.
fn never_cells(r: &RunResult) -> (String, String) {
    match r.search_ended {
        SearchEnd::MaxLoad => (
            "never (the search reached --max-load)".into(),
            "not reached: raise --max-load".into(),
        ),
        SearchEnd::MaxSteps => (
            "never (the search used its --max-steps)".into(),
            "not reached: raise --max-steps".into(),
        ),
        SearchEnd::Interrupted | SearchEnd::Broke => (
            "never (the run was interrupted)".into(),
            "not reached (interrupted)".into(),
        ),
    }
}

/// "60 users (10 of 97 POST … failed …)": the lowest load that broke the
/// objective with the verdict of a window at that load. Not simply the lowest
/// broken window: when every confirmation broke, the capacity's own window
/// broke too, below `broken_at`, and its verdict belongs to its own load.
fn broke_cell(r: &RunResult, unit: &str) -> Option<String> {
    let b = r.broken_at?;
    let broken = r.steps.iter().filter(|x| !x.kept);
    let st = broken.clone().find(|x| x.load == b);
    let st = st.or_else(|| broken.min_by_key(|x| x.load))?;
    Some(format!("{b} {unit} ({})", st.verdict))
}

fn cap_cells(r: &RunResult, unit: &str, slo: &Slo) -> [String; 7] {
    let broke = broke_cell(r, unit);
    match r.capacity() {
        Some(s) => {
            let (never, not_reached) = never_cells(r);
            [
                format!(
                    "{}{:.1}",
                    if r.capacity_is_lower_bound {
                        "≥ "
                    } else {
                        ""
                    },
                    s.summary.goodput()
                ),
                if r.capacity_is_lower_bound {
                    format!("≥ {} {unit}", s.load)
                } else {
                    format!("{} {unit}", s.load)
                },
                format!("{:.1}", s.summary.rps),
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    s.summary.p50_ms, s.summary.p95_ms, s.summary.p99_ms
                ),
                slo.failed_percent(s.summary.fail_ratio),
                broke.unwrap_or(never),
                if r.capacity_is_lower_bound {
                    not_reached
                } else {
                    r.diagnosis.bottleneck.clone()
                },
            ]
        }
        _ => [
            "-".into(),
            "none: the first step already broke the objective".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            broke.unwrap_or_default(),
            r.diagnosis.bottleneck.clone(),
        ],
    }
}

/// The note printed when a lower load failed more than a higher one.
pub const NOT_MONOTONIC: &str = "Failure ratios need not grow with the load: near capacity the failures of one window (mostly logins that timed out) vary from window to window, and a step after a broken one begins with what the overload left behind, so a lower step can fail more than a higher one.";

/// The whole terminal report.
pub fn render(r: &LabReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o);
    if r.interrupted {
        let _ = writeln!(
            o,
            "** INTERRUPTED (Ctrl-C or SIGTERM): these figures cover only the steps finished before it ({} single, {} group) **",
            r.single.steps.len(),
            r.group.steps.len()
        );
    }
    let _ = writeln!(
        o,
        "== lab compare: one replica vs {} replicas behind the balancer ({}) ==",
        r.replicas, r.algorithm
    );
    let _ = writeln!(o, "capacity model: {}", r.capacity_model);
    let _ = writeln!(o, "CPU budget: {}", r.budget_note);
    let _ = writeln!(
        o,
        "objective: {}   scenario: {}   each step measured over {:.0} s after its ramp and warm-up\n",
        r.slo.describe(),
        r.scenario,
        r.step_seconds
    );

    let s = cap_cells(&r.single, &r.load_unit, &r.slo);
    let g = cap_cells(&r.group, &r.load_unit, &r.slo);
    let labels = [
        "goodput at capacity (successful req/s)",
        "highest load keeping the objective",
        "requests/s there",
        "p50 / p95 / p99 ms there",
        "failed there",
        "objective broke at",
        "bottleneck",
    ];
    let mut rows = vec![vec![
        String::new(),
        "single (1 replica, direct)".to_string(),
        format!("group ({} replicas via balancer)", r.replicas),
    ]];
    rows.push(vec![
        format!(
            "knee (half of {:.0} s windows break there)",
            crate::knee::REFERENCE_SECONDS
        ),
        r.single.knee_text(&r.load_unit),
        r.group.knee_text(&r.load_unit),
    ]);
    for (i, l) in labels.iter().enumerate() {
        rows.push(vec![l.to_string(), s[i].clone(), g[i].clone()]);
    }
    o.push_str(&table(&rows));
    if let Some(note) = confirmation_note(r) {
        let _ = writeln!(o, "{note}");
    }
    let _ = writeln!(o, "speed-up: {}", speedup_text(r));
    if !r.explained.is_empty() {
        let _ = writeln!(
            o,
            "\nwhere the CPU goes and why the group is not N × one (measured):"
        );
        for e in &r.explained {
            let _ = writeln!(o, "  - {e}");
        }
    }

    if let Some(step) = r.group.capacity().or_else(|| r.group.limiting_step()) {
        let _ = writeln!(
            o,
            "\nper-replica share of requests (balancer /status), group {}:",
            r.group.step_label(step, &r.load_unit)
        );
        o.push_str(&shares_table(step));
    }
    for run in [&r.single, &r.group] {
        o.push_str(&diagnosis_section(run, &r.load_unit));
    }
    if r.single.failures_not_monotonic() || r.group.failures_not_monotonic() {
        let _ = writeln!(o, "\n{NOT_MONOTONIC}");
    }
    let _ = writeln!(o, "\n{}\n", r.conclusion);
    o
}

/// Where the figures at capacity come from when the capacity was measured
/// again after the search, the sides whose capacity stepped down because a
/// longer window broke the objective a step had kept, and any side whose
/// last confirmation broke it too.
pub fn confirmation_note(r: &LabReport) -> Option<String> {
    let sides = [&r.single, &r.group];
    let confirmed: Vec<&RunResult> = sides
        .into_iter()
        .filter(|x| x.confirmation().is_some())
        .collect();
    let first = confirmed.first()?.confirmation()?;
    let steps: Vec<String> = confirmed
        .iter()
        .filter_map(|x| {
            let step = x.search_step_at_capacity()?;
            Some(format!("{} {:.1}", x.name, step.summary.goodput()))
        })
        .collect();
    let mut note = format!(
        "(figures at capacity measured again over {:.0} s at that load after the search",
        first.summary.seconds
    );
    if !steps.is_empty() {
        note.push_str(&format!(
            "; the search's shorter window there: {} goodput",
            steps.join(", ")
        ));
    }
    note.push(')');
    let unit = &r.load_unit;
    for x in confirmed {
        if let Some(down) = x.stepped_down(unit) {
            let at = x.capacity().map_or(0, |c| c.load);
            note.push_str(&format!(
                "\n{}: {down}; the search's shorter steps there kept it by the luck of a short window, so the capacity stepped down to {at} {unit}",
                x.name
            ));
        }
        if let Some(u) = x.unconfirmed() {
            note.push_str(&format!(
                "\n{}: {u}; its capacity is marginal (the search's shorter step kept it by the luck of a short window)",
                x.name
            ));
        }
    }
    Some(note)
}

/// One side's bottleneck, its step's processes, evidence, failures and causes.
fn diagnosis_section(run: &RunResult, unit: &str) -> String {
    let mut o = String::new();
    let Some(step) = run.diagnosed_step() else {
        return o;
    };
    let label = run.step_label(step, unit);
    let _ = writeln!(
        o,
        "\nbottleneck ({}), {label}: {}",
        run.name, run.diagnosis.explanation
    );
    let _ = writeln!(o, "  processes in that step:");
    o.push_str(&procs_table(step));
    for e in &run.diagnosis.evidence {
        let _ = writeln!(o, "  - {e}");
    }
    if !step.summary.top_failures.is_empty() {
        let _ = writeln!(
            o,
            "  failures in that step ({} of {} requests; most frequent first):",
            step.summary.failures, step.summary.requests
        );
        for f in &step.summary.top_failures {
            let _ = writeln!(o, "    {f}");
        }
    }
    if !run.diagnosis.causes.is_empty() {
        let _ = writeln!(o, "  what the figures say:");
        for c in &run.diagnosis.causes {
            let _ = writeln!(o, "  - {c}");
        }
    }
    o
}

/// The balancer's per-replica shares of one step, with totals from both sides.
pub fn shares_table(step: &StepRecord) -> String {
    let Some(d) = &step.shares else {
        return "  (no balancer status)\n".into();
    };
    let mut rows = vec![vec![
        "  replica".to_string(),
        "requests".into(),
        "share".into(),
        "failures".into(),
        "state".into(),
    ]];
    for s in &d.shares {
        rows.push(vec![
            format!("  {}", s.label()),
            s.requests.to_string(),
            format!("{:.1}%", s.fraction * 100.0),
            s.failures.to_string(),
            s.state.clone(),
        ]);
    }
    let sum: u64 = d.shares.iter().map(|s| s.requests).sum();
    rows.push(vec![
        "  total the balancer sent".into(),
        d.total.to_string(),
        if sum == d.total {
            "100.0%".into()
        } else {
            format!("(shares sum {sum})")
        },
        String::new(),
        String::new(),
    ]);
    rows.push(vec![
        "  requests loadgen counted".into(),
        step.summary.requests.to_string(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    table(&rows)
}

/// CPU and memory of the processes of one step.
pub fn procs_table(step: &StepRecord) -> String {
    let mut rows = vec![vec![
        "    process".to_string(),
        "pid".into(),
        "CPU % of a core".into(),
        "RSS MiB".into(),
        "peak RSS MiB".into(),
    ]];
    for p in &step.processes {
        rows.push(vec![
            format!("    {}", p.name),
            p.pid.to_string(),
            format!("{:.0}", p.cpu_percent),
            format!("{:.1}", p.rss_mib),
            format!("{:.1}", p.peak_rss_mib),
        ]);
    }
    rows.push(vec![
        format!("    host ({} cores)", step.host.cores),
        String::new(),
        format!("{:.0}% of all cores", step.host.cpu_percent),
        String::new(),
        String::new(),
    ]);
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = table(&[
            vec!["a".into(), "bb".into(), "c".into()],
            vec!["aaa".into(), "b".into(), "cc".into()],
        ]);
        assert_eq!(t, "a    bb  c\naaa  b   cc\n");
    }

    #[test]
    fn a_group_that_never_broke_gets_a_lower_bound_and_no_bottleneck() {
        let r = crate::report::fixture::report(false);
        let t = render(&r);
        assert!(t.contains("speed-up: ≥ 1.33× the load"), "{t}");
        assert!(t.contains("≥ 80 users"), "{t}");
        assert!(t.contains("never (the search used its --max-steps)"), "{t}");
        assert!(t.contains("not reached: raise --max-steps"), "{t}");
        assert!(!t.contains("none reached"), "{t}");
    }

    #[test]
    fn broke_at_names_the_verdict_of_its_own_load_when_every_confirmation_broke() {
        // Group: 120 kept by its step, then confirmations at 120 and 110 both
        // broke; the search's lowest broken load is then 120 (a run of
        // 2026-12-04 printed 60 users with the verdict of the 55 below it).
        let mut r = crate::report::fixture::report(true);
        let g = &mut r.group;
        for (load, verdict) in [(120, "1.30% failed (A)"), (110, "2 of 100 logins (B)")] {
            let mut c = g.steps[3].clone();
            c.number = g.steps.len() as u32 + 1;
            c.load = load;
            c.confirmation = true;
            c.kept = false;
            c.verdict = verdict.into();
            g.capacity_step = Some(c.number);
            g.steps.push(c);
        }
        g.broken_at = Some(120);
        let cells = cap_cells(&r.group, "users", &r.slo);
        assert_eq!(cells[1], "110 users");
        assert_eq!(cells[5], "120 users (1.30% failed (A))");
        // With no window broken at that load, the lowest broken one speaks.
        r.group.broken_at = Some(130);
        let cells = cap_cells(&r.group, "users", &r.slo);
        assert_eq!(cells[5], "130 users (2 of 100 logins (B))");
    }

    #[test]
    fn the_limiting_step_is_labelled_with_its_failures_and_precise_ratios() {
        let r = crate::report::fixture::report(true);
        let t = render(&r);
        // Evidence, process table and failures name the step they come from.
        assert!(
            t.contains("bottleneck (single), at 80 users (step 2, where the objective broke): "),
            "{t}"
        );
        assert!(
            t.contains("failures in that step (710 of 10000 requests"),
            "{t}"
        );
        assert!(
            t.contains("GET /api/v1/products/[id]/: status: HTTP 401 Unauthorized ×710"),
            "{t}"
        );
        assert!(
            t.contains("710 requests that carry the token a login returned were refused"),
            "{t}"
        );
        assert!(t.contains("took a median of 223 ms"), "{t}");
        // 1.027% is above 1%, and says so.
        assert!(
            t.contains("160 users (1.03% failed (objective ≤ 1%))"),
            "{t}"
        );
        assert!(t.contains("r1 127.0.0.1:40001"), "{t}");
        assert!(t.contains("speed-up: 2.00× the load"), "{t}");
        assert!(!t.contains("INTERRUPTED"));
        let mut r = r;
        r.interrupted = true;
        assert!(render(&r).contains("** INTERRUPTED"));
    }
}
