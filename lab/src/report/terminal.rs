//! The terminal view of a comparison: an aligned side-by-side table, the
//! per-replica shares, the processes' CPU and memory, and the conclusions in
//! plain words.

use std::fmt::Write as _;

use super::{LabReport, RunResult, StepRecord};

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

fn cap_cells(r: &RunResult, unit: &str) -> [String; 6] {
    match r.capacity() {
        Some(s) => [
            if r.hit_ceiling {
                format!("≥ {} {unit}", s.load)
            } else {
                format!("{} {unit}", s.load)
            },
            format!("{:.1}", s.summary.rps),
            format!(
                "{:.0} / {:.0} / {:.0}",
                s.summary.p50_ms, s.summary.p95_ms, s.summary.p99_ms
            ),
            format!("{:.2}%", s.summary.fail_ratio * 100.0),
            match (
                r.broken_at,
                r.steps.iter().filter(|x| !x.kept).min_by_key(|x| x.load),
            ) {
                (Some(b), Some(st)) => format!("{b} {unit} ({})", st.verdict),
                _ => "never (within --max-load / --max-steps)".into(),
            },
            r.diagnosis.bottleneck.clone(),
        ],
        None => [
            "none: the first step already broke the objective".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            r.broken_at
                .map(|b| format!("{b} {unit}"))
                .unwrap_or_default(),
            r.diagnosis.bottleneck.clone(),
        ],
    }
}

/// The whole terminal report.
pub fn render(r: &LabReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o);
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

    let s = cap_cells(&r.single, &r.load_unit);
    let g = cap_cells(&r.group, &r.load_unit);
    let labels = [
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
    for (i, l) in labels.iter().enumerate() {
        rows.push(vec![l.to_string(), s[i].clone(), g[i].clone()]);
    }
    o.push_str(&table(&rows));
    match (r.speedup, r.rps_speedup, r.efficiency) {
        (Some(sp), rs, Some(e)) => {
            let _ = writeln!(
                o,
                "speed-up: {sp:.2}× the load{}, scaling efficiency {:.0}% (speed-up / {} replicas)",
                rs.map_or(String::new(), |x| format!(", {x:.2}× the requests/s")),
                e * 100.0,
                r.replicas
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "speed-up: not computable (one side never kept the objective)"
            );
        }
    }

    if let Some(step) = r.group.capacity().or_else(|| r.group.limiting_step()) {
        let _ = writeln!(
            o,
            "\nper-replica share of requests (balancer /status, group step {} at {} {}):",
            step.number, step.load, r.load_unit
        );
        o.push_str(&shares_table(step));
    }
    for run in [&r.single, &r.group] {
        if let Some(step) = run.capacity().or_else(|| run.limiting_step()) {
            let _ = writeln!(
                o,
                "\nprocesses during {} step {} ({} {}):",
                run.name, step.number, step.load, r.load_unit
            );
            o.push_str(&procs_table(step));
        }
    }
    for run in [&r.single, &r.group] {
        let _ = writeln!(
            o,
            "\nbottleneck ({}): {}",
            run.name, run.diagnosis.explanation
        );
        for e in &run.diagnosis.evidence {
            let _ = writeln!(o, "  - {e}");
        }
        if let Some(st) = run.limiting_step() {
            for f in st.summary.top_failures.iter().take(3) {
                let _ = writeln!(o, "  - failure: {f}");
            }
        }
    }
    let _ = writeln!(o, "\n{}\n", r.conclusion);
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
            format!("  {}", s.addr),
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
        "  process".to_string(),
        "pid".into(),
        "CPU % of a core".into(),
        "RSS MiB".into(),
        "peak RSS MiB".into(),
    ]];
    for p in &step.processes {
        rows.push(vec![
            format!("  {}", p.name),
            p.pid.to_string(),
            format!("{:.0}", p.cpu_percent),
            format!("{:.1}", p.rss_mib),
            format!("{:.1}", p.peak_rss_mib),
        ]);
    }
    rows.push(vec![
        format!("  host ({} cores)", step.host.cores),
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
}
