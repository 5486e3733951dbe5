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
use crate::stats::StatsRow;
use crate::Error;

use plumbing::html::escape as esc;

use plumbing::svg::{nice_max, LineChart, Series, XAxis};

/// The size of every chart's viewBox: one wide column.
const W: f64 = 860.0;
const H: f64 = 220.0;
const PAD_L: f64 = 60.0;
const PAD_B: f64 = 28.0;

/// A line chart of `series` against x = seconds, drawn by [`plumbing::svg`]
/// (which puts dashed series under the solid ones), with this page's `<h3>`
/// and its legend below the chart rather than inside it: the legend names
/// are long (`p99 (= p99 uncorrected: …)`) and the page is wide.
fn line_chart(title: &str, unit: &str, series: Vec<Series>) -> String {
    let mut out = String::new();
    let _ = write!(out, "<h3>{}</h3>", esc(title));
    let points = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    if points < 2 {
        out.push_str("<p class=muted>Not enough data points.</p>");
        return out;
    }
    let all = || series.iter().flat_map(|s| s.points.iter());
    let xmax = all().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    // 10% above the highest point, then up to a round top for round ticks.
    let top = all().map(|p| p.1).fold(0.0, f64::max);
    let legend = legend(&series, unit);
    let mut chart = LineChart::new("", unit, xmax, nice_max(top * 1.1), series);
    chart.x_axis = XAxis::Seconds;
    chart.size = (W, H);
    chart.legend = false;
    out.push_str(&chart.render());
    out.push_str(&legend);
    out
}

/// The legend under a chart: a swatch per line (`- -` for a dashed one), then the unit.
fn legend(series: &[Series], unit: &str) -> String {
    let mut out = String::from("<div class=legend>");
    for s in series {
        let _ = write!(
            out,
            "<span style=\"color:{}\">{}</span> {} &nbsp; ",
            esc(&s.color),
            if s.dashed { "- -" } else { "■" },
            esc(&s.name)
        );
    }
    let _ = write!(out, "<span class=muted>({})</span></div>", esc(unit));
    out
}

/// The lines of the percentile chart. The uncorrected p99 is dashed and
/// drawn first; where it equals p99 everywhere (closed runs, where nothing is
/// late) it is left out and p99's label says so, instead of one line hiding
/// the other.
fn percentile_series(
    p99: Vec<(f64, f64)>,
    p99_raw: Vec<(f64, f64)>,
    [p50, p95]: [Vec<(f64, f64)>; 2],
) -> Vec<Series> {
    let same = p99
        .iter()
        .zip(&p99_raw)
        .all(|(a, b)| (a.1 - b.1).abs() < 0.0005);
    let mut out = Vec::new();
    if !same {
        out.push(
            Series::line("p99 uncorrected (from the actual send)", "#888888", p99_raw).dashed(),
        );
    }
    out.push(Series::line("p50", "#4a7bd0", p50));
    out.push(Series::line("p95", "#e0a020", p95));
    let label = if same {
        "p99 (= p99 uncorrected: no request started late)"
    } else {
        "p99"
    };
    out.push(Series::line(label, "#d03a3a", p99));
    out
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
    heading(&mut out, r);
    thresholds_table(&mut out, r);
    statistics_tables(&mut out, r);
    charts(&mut out, r);
    failures_and_codes(&mut out, r);
    let _ = write!(
        out,
        "<p class=muted>loadgen {}</p></body></html>",
        esc(&r.loadgen_version)
    );
    out
}

/// The page head, the title, the run's figures in one line and its warnings.
fn heading(out: &mut String, r: &RunReport) {
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
}

/// The thresholds and whether each held (nothing without thresholds).
fn thresholds_table(out: &mut String, r: &RunReport) {
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
}

/// Locust's request statistics and percentile tables.
fn statistics_tables(out: &mut String, r: &RunReport) {
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
        row_start(out, s);
        for (_, v) in &s.percentiles {
            let _ = write!(out, "<td class=num>{}</td>", ms(*v));
        }
        let _ = write!(out, "<td class=num>{}</td></tr>", ms(s.uncorrected.p99));
    }
    out.push_str("</table>");
    successful_table(out, r);
}

/// Opens a table row with the row's Type and Name cells.
fn row_start(out: &mut String, s: &StatsRow) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td>",
        esc(&s.method),
        esc(&s.name)
    );
}

/// The successful requests' latency, when some failed (see
/// [`super::terminal::successful_table`] for why).
fn successful_table(out: &mut String, r: &RunReport) {
    if r.stats.iter().all(|s| s.num_failures == 0) {
        return;
    }
    out.push_str("<h2>Successful requests only (ms)</h2><p>Failures left out: fast refusals lower the figures above, timeouts raise their tail; this is what a user who got an answer waited.</p><table><tr><th>Type</th><th>Name</th><th># Successful</th><th>Median</th><th>Average</th><th>95%</th><th>99%</th><th>Max</th></tr>");
    for s in &r.stats {
        row_start(out, s);
        let Some(ok) = &s.successful else {
            out.push_str("<td colspan=6>unknown (merged from an older loadgen's report)</td></tr>");
            continue;
        };
        let _ = write!(out, "<td class=num>{}</td>", ok.num_requests);
        for v in ok.columns() {
            let _ = write!(out, "<td class=num>{}</td>", v.map_or("N/A".into(), ms));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The charts over time and the latency histogram.
fn charts(out: &mut String, r: &RunReport) {
    let t0 = r.history.first().map_or(0, |p| p.time) as f64;
    // One metric of the per-second history against seconds since its first point.
    let col = |f: fn(&crate::stats::HistoryPoint) -> f64| {
        r.history
            .iter()
            .map(|p| ((p.time as f64 - t0) / 1000.0, f(p)))
            .collect::<Vec<(f64, f64)>>()
    };
    out.push_str("<h2>Charts</h2>");
    out.push_str(&line_chart(
        "Requests/s and failures/s",
        "per second",
        vec![
            Series::line("requests/s", "#2a9d4b", col(|p| p.rps)),
            Series::line("failures/s", "#d03a3a", col(|p| p.fail_per_sec)),
        ],
    ));
    out.push_str(&line_chart(
        "Response time percentiles",
        "ms, per second",
        percentile_series(
            col(|p| p.p99),
            col(|p| p.p99_uncorrected),
            [col(|p| p.p50), col(|p| p.p95)],
        ),
    ));
    out.push_str(&line_chart(
        "Users",
        "running users",
        vec![Series::line(
            "users",
            "#7a4ad0",
            col(|p| f64::from(p.user_count)),
        )],
    ));
    out.push_str(&histogram_chart(&r.histogram));
}

/// Failures, status codes and the balancer's per-server shares, where there are any.
fn failures_and_codes(out: &mut String, r: &RunReport) {
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
.chart{width:100%;height:auto}.axis,.tick{font-size:11px;fill:#666}.legend{font-size:13px;margin-bottom:1em}\
.bar{display:inline-block;height:8px;background:#4a7bd0;vertical-align:middle}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportMeta;
    use crate::stats::{sample, Key, Names, StatsState};

    /// The x-axis labels of the first chart of `html`.
    fn x_labels(html: &str) -> Vec<String> {
        let svg = html.split("<svg").nth(1).unwrap_or_default();
        svg.split(r#"class="tick xtick" text-anchor="middle">"#)
            .skip(1)
            .map(|t| t.split('<').next().unwrap_or_default().to_string())
            .collect()
    }

    /// A closed run of `seconds` one-second history points, 1 request each.
    fn run(seconds: u64) -> RunReport {
        let mut names = Names::default();
        let id = names.intern("GET", "/a");
        let mut st = StatsState::new(names);
        for s in 0..seconds {
            st.record(sample(Key::Id(id), 5 + s, false));
            st.tick(1_700_000_000_000 + s * 1000, 1, 0);
        }
        RunReport::from_state(
            &st,
            ReportMeta {
                model: "closed".into(),
                duration_s: seconds as f64,
                ..ReportMeta::default()
            },
        )
    }

    #[test]
    fn x_axis_labels_are_distinct_and_round() {
        assert_eq!(x_labels(&html_report(&run(4))), ["0s", "1s", "2s", "3s"]);
        // 12 s of history: six labels at most (plumbing::svg::time_tick).
        assert_eq!(x_labels(&html_report(&run(13))), ["0s", "5s", "10s"]);
    }

    /// The y-axis labels of the `n`th chart of `html`, bottom up.
    fn y_labels(html: &str, n: usize) -> Vec<String> {
        let svg = html.split("<svg").nth(n).unwrap_or_default();
        svg.split(r#"class="tick" text-anchor="end">"#)
            .skip(1)
            .map(|t| t.split('<').next().unwrap_or_default().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    #[test]
    fn charts_have_round_y_ticks_above_the_top_and_the_legend_below() {
        let mut r = run(5);
        for (i, p) in r.history.iter_mut().enumerate() {
            p.user_count = 7 + i as u32;
        }
        let html = html_report(&r);
        // Users peak at 11: 10% above is 12.1, rounded up to 20.
        assert_eq!(y_labels(&html, 3), ["0", "5", "10", "15", "20"], "{html}");
        // One legend per chart, in the page under the chart, not in the SVG.
        assert!(!html.contains(r#"class="legend""#), "{html}");
        assert_eq!(html.matches("<div class=legend>").count(), 4);
        assert!(
            html.contains("</svg><div class=legend><span style=\"color:#7a4ad0\">■</span> users")
        );
    }

    #[test]
    fn the_successful_latency_has_its_table_when_requests_failed() {
        let html = html_report(&crate::report::refusals_and_slow_answers(true));
        let table = html
            .split("<h2>Successful requests only (ms)</h2>")
            .nth(1)
            .expect("the table");
        let row = table.split("<tr><td>GET</td><td>/a</td>").nth(1).unwrap();
        // Two successes of 300 and 400 ms: their count, then a median of 300.
        assert!(
            row.starts_with("<td class=num>2</td><td class=num>3"),
            "{row}"
        );
        assert!(!html_report(&run(3)).contains("Successful requests only"));
    }

    #[test]
    fn p99_stays_visible_beside_the_uncorrected_one() {
        // Closed run: the two coincide; one line, and the legend says so.
        let html = html_report(&run(3));
        assert!(html.contains("p99 (= p99 uncorrected"), "{html}");
        assert!(!html.contains("p99 uncorrected (from"), "{html}");
        // Open run: both drawn, the uncorrected one dashed and first (under p99).
        let mut r = run(3);
        for p in &mut r.history {
            p.p99_uncorrected = p.p99 / 2.0;
        }
        let html = html_report(&r);
        let raw = html.find("<title>p99 uncorrected (from").unwrap();
        let p99 = html.find("<title>p99</title>").unwrap();
        assert!(raw < p99, "the dashed line is drawn before p99");
        assert!(html.contains("stroke-dasharray"));
    }
}
