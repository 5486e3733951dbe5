//! `--html FILE`: one self-contained page — inline SVG charts, no scripts,
//! no network — with the tables of the end summary.
//!
//! Charts: requests/s and failures/s over time, response-time percentiles
//! over time (with the uncorrected p99 beside the corrected one), users over
//! time, and the whole-run latency histogram. With `--balancer-status`, a
//! table of each upstream server's share of the requests.

use std::fmt::Write as _;
use std::path::Path;

use super::csv::ms;
use super::{write_file, RunReport};
use crate::Error;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 860.0;
const H: f64 = 220.0;
const PAD_L: f64 = 60.0;
const PAD_B: f64 = 28.0;

/// A line chart of `series` (`(label, colour, values)`) against x = seconds.
fn line_chart(title: &str, unit: &str, xs: &[f64], series: &[(&str, &str, Vec<f64>)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "<h3>{}</h3>", esc(title));
    if xs.len() < 2 {
        out.push_str("<p class=muted>Not enough data points.</p>");
        return out;
    }
    let xmax = xs.iter().cloned().fold(0.0, f64::max).max(1.0);
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().cloned())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let px = |x: f64| PAD_L + x / xmax * (W - PAD_L - 10.0);
    let py = |y: f64| 10.0 + (1.0 - y / ymax) * (H - PAD_B - 10.0);
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for i in 0..=4 {
        let y = ymax * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{PAD_L}\" x2=\"{}\" y1=\"{y1:.1}\" y2=\"{y1:.1}\" class=grid /><text x=\"{}\" y=\"{:.1}\" class=axis text-anchor=end>{}</text>",
            W - 10.0,
            PAD_L - 4.0,
            py(y) + 4.0,
            fmt_num(y),
            y1 = py(y)
        );
    }
    for i in 0..=5 {
        let x = xmax * f64::from(i) / 5.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" class=axis text-anchor=middle>{:.0}s</text>",
            px(x),
            H - 8.0,
            x
        );
    }
    for (label, colour, ys) in series {
        let mut pts = String::new();
        for (x, y) in xs.iter().zip(ys.iter()) {
            let _ = write!(pts, "{:.1},{:.1} ", px(*x), py(*y));
        }
        let _ = write!(
            out,
            "<polyline fill=none stroke=\"{colour}\" stroke-width=1.5 points=\"{pts}\"><title>{}</title></polyline>",
            esc(label)
        );
    }
    out.push_str("</svg><div class=legend>");
    for (label, colour, _) in series {
        let _ = write!(
            out,
            "<span style=\"color:{colour}\">■</span> {} &nbsp; ",
            esc(label)
        );
    }
    let _ = write!(out, "<span class=muted>({})</span></div>", esc(unit));
    out
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn histogram_chart(buckets: &[(f64, u64)]) -> String {
    let mut out = String::from("<h3>Latency histogram (whole run)</h3>");
    if buckets.is_empty() {
        out.push_str("<p class=muted>No requests.</p>");
        return out;
    }
    let n = buckets.len() as f64;
    let maxc = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let bw = (W - PAD_L - 10.0) / n;
    let _ = write!(out, "<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"latency histogram\">");
    for (i, (upper, count)) in buckets.iter().enumerate() {
        let h = *count as f64 / maxc * (H - PAD_B - 10.0);
        let x = PAD_L + i as f64 * bw;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#4a7bd0\"><title>≤ {} ms: {count}</title></rect>",
            H - PAD_B - h,
            (bw - 2.0).max(1.0),
            ms(*upper)
        );
        if buckets.len() <= 24 || i % (buckets.len() / 12).max(1) == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" class=axis text-anchor=middle>{}</text>",
                x + bw / 2.0,
                H - 8.0,
                ms(*upper)
            );
        }
    }
    out.push_str("</svg><div class=legend><span class=muted>(upper bound of each bucket, ms; requests per bucket)</span></div>");
    out
}

fn upstream_table(v: &serde_json::Value) -> String {
    let mut out = String::from("<h2>Balancer: share of requests per server</h2>");
    let Some(ups) = v.get("upstreams").and_then(|u| u.as_array()) else {
        return out + "<p class=muted>The balancer status had no upstreams.</p>";
    };
    out.push_str("<table><tr><th>Upstream</th><th>Server</th><th>State</th><th>Weight</th><th>Requests</th><th>Share</th><th>Failures</th><th>Avg latency (ms)</th></tr>");
    for u in ups {
        let name = u.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let servers = u
            .get("servers")
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default();
        let total: f64 = servers
            .iter()
            .filter_map(|s| s.get("requests").and_then(|r| r.as_f64()))
            .sum();
        for s in &servers {
            let get = |k: &str| {
                s.get(k)
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            let req = s.get("requests").and_then(|r| r.as_f64()).unwrap_or(0.0);
            let share = if total > 0.0 {
                req / total * 100.0
            } else {
                0.0
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{share:.1}% <span class=bar style=\"width:{:.0}px\"></span></td><td class=num>{}</td><td class=num>{}</td></tr>",
                esc(name),
                esc(&get("addr")),
                esc(&get("state")),
                esc(&get("weight")),
                esc(&get("requests")),
                share,
                esc(&get("failures")),
                esc(&get("latency_avg_ms")),
            );
        }
    }
    out.push_str("</table>");
    out
}

/// The whole page.
pub fn html_report(r: &RunReport) -> String {
    let mut out = String::new();
    let title = format!(
        "loadgen report: {} against {}",
        r.meta.scenario, r.meta.host
    );
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{}</style></head><body>",
        esc(&title),
        CSS
    );
    let (reqs, fails) = r.counts();
    let _ = write!(
        out,
        "<h1>{}</h1><p>{} model · {:.1} s · up to {} users · {} requests · {} failures{}{}</p>",
        esc(&title),
        esc(&r.meta.model),
        r.meta.duration_s,
        r.meta.max_users,
        reqs,
        fails,
        r.meta
            .segment
            .as_ref()
            .map(|s| format!(" · segment {}", esc(s)))
            .unwrap_or_default(),
        if r.dropped_iterations > 0 {
            format!(" · <b>{} dropped iterations</b>", r.dropped_iterations)
        } else {
            String::new()
        }
    );
    for w in &r.warnings {
        let _ = write!(out, "<p class=warn>⚠ {}</p>", esc(w));
    }
    if !r.thresholds.is_empty() {
        out.push_str(
            "<h2>Thresholds</h2><table><tr><th>Threshold</th><th>Actual</th><th>Result</th></tr>",
        );
        for t in &r.thresholds {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=num>{}</td><td class={}>{}</td></tr>",
                esc(&t.threshold),
                t.actual.map_or("no data".into(), |a| format!("{a:.3}")),
                if t.ok { "ok" } else { "bad" },
                if t.ok { "pass" } else { "FAIL" }
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Request statistics</h2><table><tr><th>Type</th><th>Name</th><th># Requests</th><th># Fails</th><th>Median (ms)</th><th>Average (ms)</th><th>Min (ms)</th><th>Max (ms)</th><th>Average size (bytes)</th><th>RPS</th><th>Failures/s</th></tr>");
    for s in &r.stats {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{:.0}</td><td class=num>{:.2}</td><td class=num>{:.2}</td></tr>",
            esc(&s.method), esc(&s.name), s.num_requests, s.num_failures, ms(s.median_response_time),
            ms(s.avg_response_time), ms(s.min_response_time), ms(s.max_response_time), s.avg_content_length,
            s.total_rps, s.total_fail_per_sec
        );
    }
    out.push_str(
        "</table><h2>Response time percentiles (ms)</h2><table><tr><th>Type</th><th>Name</th>",
    );
    for l in [
        "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
    ] {
        let _ = write!(out, "<th>{l}</th>");
    }
    out.push_str("<th>p99 uncorrected</th></tr>");
    for s in &r.stats {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            esc(&s.method),
            esc(&s.name)
        );
        for (_, v) in &s.percentiles {
            let _ = write!(out, "<td class=num>{}</td>", ms(*v));
        }
        let _ = write!(out, "<td class=num>{}</td></tr>", ms(s.uncorrected.p99));
    }
    out.push_str("</table>");
    let t0 = r.history.first().map_or(0, |p| p.time) as f64;
    let xs: Vec<f64> = r
        .history
        .iter()
        .map(|p| (p.time as f64 - t0) / 1000.0)
        .collect();
    let col =
        |f: fn(&crate::stats::HistoryPoint) -> f64| r.history.iter().map(f).collect::<Vec<f64>>();
    out.push_str("<h2>Charts</h2>");
    out.push_str(&line_chart(
        "Requests/s and failures/s",
        "per second",
        &xs,
        &[
            ("requests/s", "#2a9d4b", col(|p| p.rps)),
            ("failures/s", "#d03a3a", col(|p| p.fail_per_sec)),
        ],
    ));
    out.push_str(&line_chart(
        "Response time percentiles",
        "ms, per second",
        &xs,
        &[
            ("p50", "#4a7bd0", col(|p| p.p50)),
            ("p95", "#e0a020", col(|p| p.p95)),
            ("p99", "#d03a3a", col(|p| p.p99)),
            ("p99 uncorrected", "#999999", col(|p| p.p99_uncorrected)),
        ],
    ));
    out.push_str(&line_chart(
        "Users",
        "running users",
        &xs,
        &[("users", "#7a4ad0", col(|p| f64::from(p.user_count)))],
    ));
    out.push_str(&histogram_chart(&r.histogram));
    if !r.failures.is_empty() {
        out.push_str("<h2>Failures</h2><table><tr><th>Method</th><th>Name</th><th>Error</th><th>Occurrences</th></tr>");
        for f in &r.failures {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td></tr>",
                esc(&f.method),
                esc(&f.name),
                esc(&f.error),
                f.occurrences
            );
        }
        out.push_str("</table>");
    }
    if !r.status_codes.is_empty() {
        out.push_str("<h2>Status codes</h2><table><tr><th>Status</th><th>Responses</th></tr>");
        for (c, n) in &r.status_codes {
            let _ = write!(out, "<tr><td>{c}</td><td class=num>{n}</td></tr>");
        }
        out.push_str("</table>");
    }
    if let Some(u) = &r.upstreams {
        out.push_str(&upstream_table(u));
    }
    let _ = write!(
        out,
        "<p class=muted>loadgen {}</p></body></html>",
        esc(&r.loadgen_version)
    );
    out
}

/// Writes the page to `path`.
pub fn write_html(r: &RunReport, path: &Path) -> Result<(), Error> {
    write_file(path, &html_report(r))
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}\
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f3f3f3}\
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#888}\
.warn{background:#fff3cd;padding:.5em;border:1px solid #e0c060}.ok{color:#2a9d4b}.bad{color:#d03a3a;font-weight:bold}\
.grid{stroke:#eee}.axis{font-size:11px;fill:#666}.legend{font-size:13px;margin-bottom:1em}\
.bar{display:inline-block;height:8px;background:#4a7bd0;vertical-align:middle}";
