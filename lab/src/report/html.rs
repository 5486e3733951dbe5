//! The self-contained HTML report: the two runs side by side, with inline
//! SVG charts (requests/s, percentiles and users over time; per-replica
//! shares; process CPU). No script, no external file: it opens anywhere.

use std::fmt::Write as _;

use super::{LabReport, RunResult};

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// One line of a chart.
pub struct Series<'a> {
    /// Legend.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

/// An SVG line chart with axes and a legend.
pub fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let (w, h, l, r, t, b) = (460.0, 220.0, 52.0, 10.0, 26.0, 30.0);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let xmax = xs.fold(0.0f64, f64::max).max(1.0);
    let ymax = nice_max(ys.fold(0.0f64, f64::max));
    let px = |x: f64| l + x / xmax * (w - l - r);
    let py = |y: f64| h - b - y / ymax * (h - t - b);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{0}"><text x="{l}" y="16" class="title">{0}</text>"#,
        esc(title)
    );
    for i in 0..=4 {
        let y = ymax * f64::from(i) / 4.0;
        let _ = write!(
            o,
            r##"<line x1="{l}" x2="{0}" y1="{1:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" class="tick" text-anchor="end">{4}</text>"##,
            w - r,
            py(y),
            l - 4.0,
            py(y) + 3.0,
            fmt_num(y)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{}" y="{}" class="tick" text-anchor="end">seconds of load →</text><text x="4" y="{}" class="tick">{}</text>"#,
        w - r,
        h - 8.0,
        t - 2.0,
        esc(y_label)
    );
    for (k, s) in series.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            o,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/><text x="{}" y="{}" class="legend" fill="{}">{}</text>"#,
            s.color,
            pts.join(" "),
            l + 8.0 + 90.0 * k as f64,
            t + 12.0,
            s.color,
            esc(s.name)
        );
    }
    o.push_str("</svg>");
    o
}

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

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The run's history as one series: x = seconds of load (pauses between
/// steps removed), for a metric picked by `f`.
fn run_series(run: &RunResult, f: impl Fn(&crate::load::Point) -> f64) -> Vec<(f64, f64)> {
    let mut x = 0.0;
    let mut out = Vec::new();
    for st in &run.steps {
        for p in &st.summary.history {
            x += 1.0;
            out.push((x, f(p)));
        }
    }
    out
}

fn run_column(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::new();
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
                "<p class=\"big\">{}{} {} <small>kept the objective, {:.1} req/s, p95 {:.0} ms, {:.2}% failed</small></p>",
                if run.hit_ceiling { "≥ " } else { "" },
                s.load,
                esc(&r.load_unit),
                s.summary.rps,
                s.summary.p95_ms,
                s.summary.fail_ratio * 100.0
            );
        }
        None => o.push_str("<p class=\"big\">no load kept the objective</p>"),
    }
    let _ = write!(
        o,
        "<p><b>Bottleneck:</b> {}</p><ul>{}</ul>",
        esc(&run.diagnosis.explanation),
        run.diagnosis
            .evidence
            .iter()
            .map(|e| format!("<li>{}</li>", esc(e)))
            .collect::<String>()
    );
    o.push_str(&line_chart(
        "requests/s",
        "req/s",
        &[
            Series {
                name: "req/s",
                color: "#2a7",
                points: run_series(run, |p| p.rps),
            },
            Series {
                name: "failures/s",
                color: "#d33",
                points: run_series(run, |p| p.fail_per_sec),
            },
        ],
    ));
    o.push_str(&line_chart(
        "latency percentiles",
        "ms",
        &[
            Series {
                name: "p50",
                color: "#2a7",
                points: run_series(run, |p| p.p50),
            },
            Series {
                name: "p95",
                color: "#e90",
                points: run_series(run, |p| p.p95),
            },
            Series {
                name: "p99",
                color: "#d33",
                points: run_series(run, |p| p.p99),
            },
        ],
    ));
    o.push_str(&line_chart(
        "users",
        "users",
        &[Series {
            name: "users",
            color: "#4a7fd4",
            points: run_series(run, |p| f64::from(p.users)),
        }],
    ));
    if let Some(step) = run.capacity().or_else(|| run.limiting_step()) {
        if let Some(d) = &step.shares {
            let items: Vec<(String, f64, String)> = d
                .shares
                .iter()
                .map(|s| {
                    (
                        s.addr.clone(),
                        s.fraction,
                        format!("{:.1}% ({})", s.fraction * 100.0, s.requests),
                    )
                })
                .collect();
            o.push_str(&bars(
                &format!("share of requests, step {} (balancer /status)", step.number),
                &items,
                1.0,
            ));
            let _ = write!(
                o,
                "<p class=\"note\">The balancer sent {} requests in this step (the sum of the shares); the load generator counted {}.</p>",
                d.total, step.summary.requests
            );
        }
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
        o.push_str(&bars(
            &format!("process CPU (% of a core), step {}", step.number),
            &items,
            max,
        ));
    }
    o.push_str(&steps_table(r, run));
    o.push_str("</section>");
    o
}

fn steps_table(r: &LabReport, run: &RunResult) -> String {
    let mut o = String::from(
        "<table><thead><tr><th>step</th><th>load</th><th>req/s</th><th>p50</th><th>p95</th><th>p99</th><th>failed</th><th>host CPU</th><th>verdict</th></tr></thead><tbody>",
    );
    for s in &run.steps {
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{}</td><td>{} {}</td><td>{:.1}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.2}%</td><td>{:.0}%</td><td>{}</td></tr>",
            if s.kept { "ok" } else { "bad" },
            s.number,
            s.load,
            esc(&r.load_unit),
            s.summary.rps,
            s.summary.p50_ms,
            s.summary.p95_ms,
            s.summary.p99_ms,
            s.summary.fail_ratio * 100.0,
            s.host.cpu_percent,
            if s.kept { "kept".to_string() } else { esc(&s.verdict) }
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
</style></head><body>
<h1>Market Lab: one replica vs {n} replicas behind the balancer</h1>"#,
        n = r.replicas
    );
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
    let speed = match (r.speedup, r.rps_speedup, r.efficiency) {
        (Some(s), rs, Some(e)) => format!(
            "Speed-up <b>{s:.2}×</b> the load{}; scaling efficiency <b>{:.0}%</b>.",
            rs.map_or(String::new(), |x| format!(" ({x:.2}× the requests/s)")),
            e * 100.0
        ),
        _ => "Speed-up not computable.".into(),
    };
    let _ = write!(o, "<p>{speed} {}</p>", esc(&r.conclusion));
    let _ = write!(
        o,
        "<div class=\"runs\">{}{}</div>",
        run_column(r, &r.single),
        run_column(r, &r.group)
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
    fn escapes_and_scales() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(73.0), 100.0);
        assert_eq!(nice_max(120.0), 200.0);
        let svg = line_chart(
            "t",
            "ms",
            &[Series {
                name: "a",
                color: "#000",
                points: vec![(1.0, 2.0), (2.0, 3.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.contains("polyline") && svg.ends_with("</svg>"));
    }
}
