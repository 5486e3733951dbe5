//! The self-contained HTML report: the two runs side by side, with inline
//! SVG charts (requests/s, percentiles and users over time; per-replica
//! shares; process CPU). No script, no external file: it opens anywhere.

use std::fmt::Write as _;

use super::terminal::{confirmation_note, NOT_MONOTONIC};
use super::{speedup_text, LabReport, RunResult};

pub use plumbing::html::escape as esc;
use plumbing::svg::{nice_max, LineChart, Mark, Series};

/// Horizontal bars: `(label, value, text)`, scaled to `max`.
pub fn bars(title: &str, items: &[(String, f64, String)], max: f64) -> String {
    let row = 22.0;
    let (w, l) = (460.0, 150.0);
    let h = 26.0 + row * items.len() as f64 + 6.0;
    let max = if max > 0.0 { max } else { 1.0 };
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{0}"><text x="4" y="16" class="title">{0}</text>"#,
        esc(title)
    );
    for (i, (label, v, text)) in items.iter().enumerate() {
        let y = 26.0 + row * i as f64;
        let bw = (v / max).clamp(0.0, 1.0) * (w - l - 70.0);
        let _ = write!(
            o,
            r##"<text x="{0}" y="{1:.1}" class="tick" text-anchor="end">{2}</text><rect x="{3}" y="{4:.1}" width="{5:.1}" height="14" fill="#4a7fd4"/><text x="{6:.1}" y="{1:.1}" class="tick">{7}</text>"##,
            l - 6.0,
            y + 11.0,
            esc(label),
            l,
            y,
            bw,
            l + bw + 4.0,
            esc(text)
        );
    }
    o.push_str("</svg>");
    o
}

/// `at 80 users` → `At 80 users`.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

/// The run's history as one series: x = seconds measured (ramps and
/// warm-ups between the windows left out), for a metric picked by `f`. A
/// second's point sits in its middle, so the step marks fall between steps.
fn run_series(run: &RunResult, f: impl Fn(&crate::load::Point) -> f64) -> Vec<(f64, f64)> {
    let mut x = 0.0;
    let mut out = Vec::new();
    for st in &run.steps {
        for p in &st.summary.history {
            out.push((x + 0.5, f(p)));
            x += 1.0;
        }
    }
    out
}

/// Where each step's window begins on [`run_series`]'s x axis.
fn step_marks(run: &RunResult, unit: &str) -> Vec<Mark> {
    let mut x = 0.0;
    let mut out = Vec::new();
    for st in &run.steps {
        out.push(Mark {
            x,
            label: st.number.to_string(),
            tip: format!("step {}: {} {unit}, {}", st.label(), st.load, st.outcome()),
            alert: !st.kept,
        });
        x += st.summary.history.len() as f64;
    }
    out
}

/// One line of a chart: legend, colour, and the metric it plots.
type Line = (&'static str, &'static str, fn(&crate::load::Point) -> f64);

/// The three charts of a column, each a metric of the per-second history.
struct ChartSpec {
    title: &'static str,
    y_label: &'static str,
    lines: &'static [Line],
}

const CHARTS: [ChartSpec; 3] = [
    ChartSpec {
        title: "requests/s",
        y_label: "req/s",
        lines: &[
            ("req/s", "#2a7", |p| p.rps),
            ("failures/s", "#d33", |p| p.fail_per_sec),
        ],
    },
    ChartSpec {
        title: "latency percentiles",
        y_label: "ms",
        lines: &[
            ("p50", "#2a7", |p| p.p50),
            ("p95", "#e90", |p| p.p95),
            ("p99", "#d33", |p| p.p99),
        ],
    },
    ChartSpec {
        title: "users",
        y_label: "users",
        lines: &[("users", "#4a7fd4", |p| f64::from(p.users))],
    },
];

/// One scale for both sides of each chart: the x axis as long as the longer
/// run, the y axis as high as the higher of the two.
fn shared_scales(r: &LabReport) -> Vec<(f64, f64)> {
    let runs = [&r.single, &r.group];
    let xmax = runs
        .iter()
        .map(|run| run_series(run, |_| 0.0).len() as f64)
        .fold(1.0, f64::max);
    CHARTS
        .iter()
        .map(|c| {
            let top = runs
                .iter()
                .flat_map(|run| c.lines.iter().map(move |(_, _, f)| run_series(run, f)))
                .flatten()
                .map(|(_, y)| y)
                .fold(0.0, f64::max);
            (xmax, nice_max(top))
        })
        .collect()
}

/// One side's column: headline, diagnosis, charts, shares, processes, steps.
fn run_column(r: &LabReport, run: &RunResult, scales: &[(f64, f64)]) -> String {
    let mut o = column_head(r, run);
    o.push_str(&diagnosis_block(r, run));
    o.push_str(&charts_block(r, run, scales));
    o.push_str(&shares_block(r, run));
    o.push_str(&processes_block(r, run));
    o.push_str(&steps_table(r, run));
    if run.failures_not_monotonic() {
        let _ = write!(o, "<p class=\"note\">{}</p>", esc(NOT_MONOTONIC));
    }
    o.push_str("</section>");
    o
}

/// The column's title, target and capacity.
fn column_head(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::new();
    let unit = r.load_unit.as_str();
    let title = match run.name.as_str() {
        "single" => "One replica, directly".to_string(),
        _ => format!(
            "{} replicas behind the balancer ({})",
            r.replicas, r.algorithm
        ),
    };
    let _ = write!(o, "<section class=\"run\"><h2>{}</h2>", esc(&title));
    let _ = write!(o, "<p class=\"target\">target {}</p>", esc(&run.target));
    match run.capacity() {
        Some(s) => {
            let _ = write!(
                o,
                "<p class=\"big\">{}{} {} <small>kept the objective, {:.1} req/s, p95 {:.0} ms, {} failed</small></p>",
                if run.capacity_is_lower_bound { "≥ " } else { "" },
                s.load,
                esc(unit),
                s.summary.rps,
                s.summary.p95_ms,
                esc(&r.slo.failed_percent(s.summary.fail_ratio))
            );
            if run.capacity_is_lower_bound {
                let _ = write!(
                    o,
                    "<p class=\"note\">A lower bound: the objective never broke; {}.</p>",
                    esc(&run.limit_note)
                );
            }
        }
        None => o.push_str("<p class=\"big\">no load kept the objective</p>"),
    }
    let _ = write!(
        o,
        "<p class=\"note\">knee: {} <small>(the load at which half of the {:.0} s windows break the objective, fitted to all {} windows)</small></p>",
        esc(&run.knee_text(unit)),
        crate::knee::REFERENCE_SECONDS,
        run.steps.len()
    );
    o
}

/// The bottleneck, its step's failures and what they say.
fn diagnosis_block(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::new();
    let diagnosed = run.diagnosed_step();
    let label = diagnosed.map_or(String::new(), |st| run.step_label(st, &r.load_unit));
    let _ = write!(
        o,
        "<p><b>Bottleneck</b>, {}: {}</p><ul>{}</ul>",
        esc(&label),
        esc(&run.diagnosis.explanation),
        run.diagnosis
            .evidence
            .iter()
            .map(|e| format!("<li>{}</li>", esc(e)))
            .collect::<String>()
    );
    if let Some(st) = diagnosed.filter(|st| !st.summary.top_failures.is_empty()) {
        let _ = write!(
            o,
            "<p><b>Failures in that step</b> ({} of {} requests, most frequent first):</p><table class=\"failures\"><thead><tr><th>request</th><th>error</th><th>count</th></tr></thead><tbody>",
            st.summary.failures, st.summary.requests
        );
        for f in &st.summary.top_failures {
            let _ = write!(
                o,
                "<tr><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.method),
                esc(&f.name),
                esc(&f.error),
                f.count
            );
        }
        o.push_str("</tbody></table>");
    }
    if !run.diagnosis.causes.is_empty() {
        let _ = write!(
            o,
            "<p><b>What the figures say.</b></p><ul class=\"causes\">{}</ul>",
            run.diagnosis
                .causes
                .iter()
                .map(|c| format!("<li>{}</li>", esc(c)))
                .collect::<String>()
        );
    }
    o
}

/// The three charts of the per-second history, on the shared scales.
fn charts_block(r: &LabReport, run: &RunResult, scales: &[(f64, f64)]) -> String {
    let mut o = String::new();
    let unit = r.load_unit.as_str();
    let marks = step_marks(run, unit);
    for (c, &(xmax, ymax)) in CHARTS.iter().zip(scales) {
        let series = c
            .lines
            .iter()
            .map(|(name, color, f)| Series::line(name, color, run_series(run, f)))
            .collect();
        let mut chart = LineChart::new(c.title, c.y_label, xmax, ymax, series);
        chart.marks = marks.clone();
        chart.x_note =
            "seconds measured (ramps and warm-ups left out); dashed: step n begins".into();
        o.push_str(&chart.render());
    }
    o
}

/// The balancer's per-replica shares at capacity (group only).
fn shares_block(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::new();
    let unit = r.load_unit.as_str();
    if let Some(step) = run.capacity().or_else(|| run.limiting_step()) {
        if let Some(d) = &step.shares {
            let items: Vec<(String, f64, String)> = d
                .shares
                .iter()
                .map(|s| {
                    (
                        s.label(),
                        s.fraction,
                        format!("{:.1}% ({})", s.fraction * 100.0, s.requests),
                    )
                })
                .collect();
            let _ = write!(
                o,
                "<p class=\"ctitle\">{}:</p>",
                esc(&capitalized(&run.step_label(step, unit)))
            );
            o.push_str(&bars("share of requests (balancer /status)", &items, 1.0));
            let _ = write!(
                o,
                "<p class=\"note\">The balancer sent {} requests in this step (the sum of the shares); the load generator counted {}.</p>",
                d.total, step.summary.requests
            );
        }
    }
    o
}

/// Process CPU of the diagnosed step.
fn processes_block(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::new();
    let unit = r.load_unit.as_str();
    if let Some(step) = run.diagnosed_step() {
        let items: Vec<(String, f64, String)> = step
            .processes
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.cpu_percent,
                    format!("{:.0}% · {:.0} MiB", p.cpu_percent, p.rss_mib),
                )
            })
            .collect();
        let max = step
            .processes
            .iter()
            .map(|p| p.cpu_percent)
            .fold(100.0, f64::max);
        let _ = write!(
            o,
            "<p class=\"ctitle\">{}, the step of the bottleneck above:</p>",
            esc(&capitalized(&run.step_label(step, unit)))
        );
        o.push_str(&bars("process CPU (% of a core)", &items, max));
    }
    o
}

fn steps_table(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::from(
        "<table><thead><tr><th>step</th><th>load</th><th>req/s</th><th>p50</th><th>p95</th><th>p99</th><th>failed</th><th>host CPU</th><th>verdict</th></tr></thead><tbody>",
    );
    for s in &run.steps {
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{}</td><td>{} {}</td><td>{:.1}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{:.0}%</td><td>{}</td></tr>",
            if s.kept { "ok" } else { "bad" },
            s.label(),
            s.load,
            esc(&r.load_unit),
            s.summary.rps,
            s.summary.p50_ms,
            s.summary.p95_ms,
            s.summary.p99_ms,
            esc(&r.slo.failed_percent(s.summary.fail_ratio)),
            s.host.cpu_percent,
            esc(&s.outcome())
        );
    }
    o.push_str("</tbody></table>");
    o
}

/// Renders the whole report.
pub fn render(r: &LabReport) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Market Lab: 1 vs {n} replicas</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}
.runs{{display:grid;grid-template-columns:1fr 1fr;gap:24px}}
.run{{border:1px solid #ddd;border-radius:6px;padding:12px}}
.chart{{width:100%;height:auto;margin:6px 0}} .title{{font-size:12px;font-weight:600}} .tick,.legend{{font-size:10px}}
.big{{font-size:22px;margin:4px 0}} .big small{{font-size:13px;color:#555}}
table{{border-collapse:collapse;font-size:12px;width:100%}} td,th{{border-bottom:1px solid #eee;padding:2px 4px;text-align:right}}
tr.bad td{{color:#b22}} .note,.target{{color:#555;font-size:12px}} .model{{background:#f6f6f0;padding:8px 12px;border-left:4px solid #cb4}}
.warn{{background:#fbeaea;padding:8px 12px;border-left:4px solid #c44}} .speed{{font-size:16px}}
table.failures td{{text-align:left}} table.failures td:last-child{{text-align:right}} .causes{{font-size:13px}} .ctitle{{font-size:12px;font-weight:600;margin:10px 0 0}}
</style></head><body>
<h1>Market Lab: one replica vs {n} replicas behind the balancer</h1>"#,
        n = r.replicas
    );
    if r.interrupted {
        let _ = write!(
            o,
            "<p class=\"warn\"><b>Interrupted</b> (Ctrl-C or SIGTERM): the figures cover only the steps finished before it ({} single, {} group).</p>",
            r.single.steps.len(),
            r.group.steps.len()
        );
    }
    let _ = write!(
        o,
        "<p class=\"model\"><b>Capacity model.</b> {}<br><b>CPU budget.</b> {}</p>",
        esc(&r.capacity_model),
        esc(&r.budget_note)
    );
    let _ = write!(
        o,
        "<p>Objective: {} · scenario <code>{}</code> · {} model, each step measured over {:.0} s after its ramp and warm-up · {} cores · started {}</p>",
        esc(&r.slo.describe()),
        esc(&r.scenario),
        esc(&r.model),
        r.step_seconds,
        r.host_cores,
        esc(&r.started)
    );
    if let Some(note) = confirmation_note(r) {
        let _ = write!(
            o,
            "<p class=\"note\">{}</p>",
            esc(&note).replace('\n', "<br>")
        );
    }
    let _ = write!(
        o,
        "<p class=\"speed\"><b>Speed-up:</b> {}</p><p>{}</p>",
        esc(&speedup_text(r)),
        esc(&r.conclusion)
    );
    if !r.explained.is_empty() {
        let _ = write!(
            o,
            "<p><b>Where the CPU goes and why the group is not N × one</b> (measured):</p><ul class=\"causes\">{}</ul>",
            r.explained
                .iter()
                .map(|e| format!("<li>{}</li>", esc(e)))
                .collect::<String>()
        );
    }
    let scales = shared_scales(r);
    let _ = write!(
        o,
        "<div class=\"runs\">{}{}</div>",
        run_column(r, &r.single, &scales),
        run_column(r, &r.group, &scales)
    );
    let _ = writeln!(
        o,
        "<p class=\"note\">Files: {}. Command: <code>{}</code></p></body></html>",
        r.files
            .iter()
            .map(|f| format!("<a href=\"{0}\">{0}</a>", esc(f)))
            .collect::<Vec<_>>()
            .join(", "),
        esc(&r.command)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    /// The `aria-label`led charts of a column, in order.
    fn charts_of(column: &str) -> Vec<&str> {
        column
            .split("<svg")
            .skip(1)
            .filter(|c| c.contains("polyline"))
            .collect()
    }

    #[test]
    fn both_sides_share_each_charts_scale_and_show_failures() {
        let r = crate::report::fixture::report(true);
        let html = render(&r);
        let (single, group) = html
            .split_once("replicas behind the balancer (round_robin)</h2>")
            .unwrap();
        let (s, g) = (charts_of(single), charts_of(group));
        assert_eq!(s.len(), 3);
        assert_eq!(g.len(), 3);
        // Latency: single p99 peaks at 400 ms, group at 800 ms: both axes go to 1000.
        for c in [s[1], g[1]] {
            assert!(c.contains(">1000</text>"), "{c}");
        }
        // Users: 80 vs 160: both to 200.
        for c in [s[2], g[2]] {
            assert!(c.contains(">200</text>"), "{c}");
        }
        assert_eq!(shared_scales(&r)[2], (12.0, 200.0));
        assert!(html.contains("<b>Bottleneck</b>, at 80 users (step 2, where the objective broke)"));
        assert!(html.contains(
            "<td>GET /api/v1/products/[id]/</td><td>status: HTTP 401 Unauthorized</td><td>710</td>"
        ));
        assert!(html.contains("1.03% failed (objective ≤ 1%)"));
        assert!(html.contains("r1 127.0.0.1:40001"));
        assert!(!html.contains("Interrupted"));
        let mut r = r;
        r.interrupted = true;
        assert!(render(&r).contains("<b>Interrupted</b>"));
        // A confirmation reads as one in the steps table and on the charts.
        let mut c = r.group.steps[3].clone();
        c.number = 5;
        c.confirmation = true;
        r.group.steps.push(c);
        let html = render(&r);
        assert!(
            html.contains("<td>5 (confirmation)</td><td>120 users</td>"),
            "{html}"
        );
        assert!(html.contains("step 5 (confirmation): 120 users"));
        assert!(html.contains("<td>4</td><td>120 users</td>"));
    }
}
