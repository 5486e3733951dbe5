//! The terminal view: a live table every 2 s and Locust's end summary.
//!
//! The layout follows Locust's console output (`print_stats`,
//! `print_percentile_stats`, `print_error_report`): a request table with an
//! `Aggregated` line, a percentile table, an error report. Where the
//! coordinated-omission correction changed the figures (open or paced
//! models), an extra table shows the uncorrected ones beside them.

use std::fmt::Write as _;

use super::RunReport;
use crate::snapshot::Snapshot;
use crate::stats::{FailureRow, StatsRow};

const NAME_W: usize = 50;

fn clip(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(w.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

fn rule() -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}\n",
        "-".repeat(8),
        "-".repeat(NAME_W + 2),
        "-".repeat(8),
        "-".repeat(15),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(9),
        "-".repeat(11)
    )
}

/// The request table (Locust's `print_stats`).
pub fn stats_table(rows: &[StatsRow], current: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<nw$} {:>8} {:>15} | {:>7} {:>7} {:>7} {:>7} | {:>8} {:>10}",
        "Type",
        "Name",
        "# reqs",
        "# fails",
        "Avg",
        "Min",
        "Max",
        "Med",
        "req/s",
        "failures/s",
        nw = NAME_W + 1
    );
    table_rows(&mut out, rows, &rule(), |out, r| {
        let pct = if r.num_requests == 0 {
            0.0
        } else {
            r.num_failures as f64 * 100.0 / r.num_requests as f64
        };
        let (rps, fps) = if current {
            (r.current_rps, r.current_fail_per_sec)
        } else {
            (r.total_rps, r.total_fail_per_sec)
        };
        let _ = writeln!(
            out,
            " {:>8} {:>15} | {:>7.0} {:>7.0} {:>7.0} {:>7.0} | {:>8.2} {:>10.2}",
            r.num_requests,
            format!("{}({:.2}%)", r.num_failures, pct),
            r.avg_response_time,
            r.min_response_time,
            r.max_response_time,
            r.median_response_time,
            rps,
            fps,
        );
    });
    out
}

fn pct_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The percentile table (Locust's `print_percentile_stats`), ms.
pub fn percentile_table(rows: &[StatsRow]) -> String {
    let mut out =
        String::from("Response time percentiles (ms, from HDR histograms, exact to 0.1%)\n");
    let labels = [
        "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
    ];
    let _ = write!(out, "{:<8} {:<nw$}", "Type", "Name", nw = NAME_W + 1);
    for l in labels {
        let _ = write!(out, " {l:>7}");
    }
    let _ = writeln!(out, " {:>8}", "# reqs");
    let line = format!(
        "{}|{}|{}\n",
        "-".repeat(8),
        "-".repeat(NAME_W + 2),
        "-".repeat(8 * 11 + 9)
    );
    table_rows(&mut out, rows, &line, |out, r| {
        for (_, v) in &r.percentiles {
            if r.num_requests == 0 {
                let _ = write!(out, " {:>7}", "N/A");
            } else {
                let _ = write!(out, " {:>7}", pct_value(*v));
            }
        }
        let _ = writeln!(out, " {:>8}", r.num_requests);
    });
    out
}

/// Writes every row as its Type and Name then `cells`, with `line` above the
/// first row and again above the last (Locust's `Aggregated` line).
fn table_rows(
    out: &mut String,
    rows: &[StatsRow],
    line: &str,
    mut cells: impl FnMut(&mut String, &StatsRow),
) {
    out.push_str(line);
    for (i, r) in rows.iter().enumerate() {
        if i + 1 == rows.len() {
            out.push_str(line);
        }
        let _ = write!(
            out,
            "{:<8} {:<nw$}",
            r.method,
            clip(&r.name, NAME_W),
            nw = NAME_W + 1
        );
        cells(out, r);
    }
}

/// The successful requests' latency, shown when some requests failed: fast
/// refusals (503s, 401s) pull the figures over all answers down and timeouts
/// pull their tail up, while a user who got an answer waited what this table
/// says. A row merged from an older loadgen's report reads "unknown".
pub fn successful_table(rows: &[StatsRow]) -> Option<String> {
    if rows.iter().all(|r| r.num_failures == 0) {
        return None;
    }
    let mut out = String::from("Successful requests only (ms, failures left out)\n");
    let _ = writeln!(
        out,
        "{:<8} {:<nw$} {:>8} | {:>7} {:>7} {:>7} {:>7} {:>7}",
        "Type",
        "Name",
        "# ok",
        "Med",
        "Avg",
        "95%",
        "99%",
        "Max",
        nw = NAME_W + 1
    );
    let line = format!(
        "{}|{}|{}|{}\n",
        "-".repeat(8),
        "-".repeat(NAME_W + 2),
        "-".repeat(9),
        "-".repeat(40)
    );
    table_rows(&mut out, rows, &line, |out, r| {
        let Some(ok) = &r.successful else {
            let _ = writeln!(out, " {:>8} | {:>7}", "unknown", "N/A");
            return;
        };
        let _ = write!(out, " {:>8} |", ok.num_requests);
        for v in ok.columns() {
            let _ = write!(out, " {:>7}", v.map_or("N/A".into(), pct_value));
        }
        out.push('\n');
    });
    Some(out)
}

/// Corrected vs uncorrected latency of the aggregate (shown when they differ).
pub fn correction_table(total: &StatsRow) -> Option<String> {
    let u = &total.uncorrected;
    let p99 = total.percentile(0.99).unwrap_or(0.0);
    if (p99 - u.p99).abs() < 0.001 && (total.avg_response_time - u.avg_response_time).abs() < 0.001
    {
        return None;
    }
    Some(format!(
        "Latency from the due time (corrected) vs from the actual send (uncorrected), ms\n\
         {:<14} {:>9} {:>9} {:>9} {:>9}\n\
         {:<14} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n\
         {:<14} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
        "",
        "median",
        "avg",
        "p99",
        "max",
        "corrected",
        total.median_response_time,
        total.avg_response_time,
        p99,
        total.max_response_time,
        "uncorrected",
        u.median_response_time,
        u.avg_response_time,
        u.p99,
        u.max_response_time,
    ))
}

/// The error report (Locust's `print_error_report`).
pub fn error_table(failures: &[FailureRow]) -> String {
    let mut out = String::from("Error report\n");
    let _ = writeln!(out, "{:>13}  {:<}", "# occurrences", "Error");
    out.push_str(&format!("{}|{}\n", "-".repeat(14), "-".repeat(80)));
    for f in failures {
        let _ = writeln!(
            out,
            "{:>13}  {} {}: {}",
            f.occurrences, f.method, f.name, f.error
        );
    }
    out.push_str(&format!("{}|{}\n", "-".repeat(14), "-".repeat(80)));
    out
}

/// One live update (every 2 s while running).
pub fn live(s: &Snapshot) -> String {
    let mut out = stats_table(&s.stats, true);
    let _ = writeln!(
        out,
        "{:?} · {} users · {:.1} s · p50 {:.1} ms · p95 {:.1} ms (last 10 s){}",
        s.state,
        s.user_count,
        s.elapsed_s,
        s.current_response_time_p50,
        s.current_response_time_p95,
        if s.dropped_iterations > 0 {
            format!(" · {} dropped iterations", s.dropped_iterations)
        } else {
            String::new()
        }
    );
    for w in &s.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    out
}

/// The end summary.
pub fn summary(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} against {} · {} model · {:.1} s · {} users max",
        r.meta.scenario, r.meta.host, r.meta.model, r.meta.duration_s, r.meta.max_users
    );
    out.push_str(&stats_table(&r.stats, false));
    out.push('\n');
    out.push_str(&percentile_table(&r.stats));
    if let Some(t) = successful_table(&r.stats) {
        out.push('\n');
        out.push_str(&t);
    }
    if let Some(t) = r.total().and_then(correction_table) {
        out.push('\n');
        out.push_str(&t);
    }
    if r.dropped_iterations > 0 {
        let _ = writeln!(
            out,
            "\n{} iterations could not start (every virtual user was busy): the target could not keep up with the arrival rate",
            r.dropped_iterations
        );
    }
    if !r.failures.is_empty() {
        out.push('\n');
        out.push_str(&error_table(&r.failures));
    }
    if !r.status_codes.is_empty() {
        let codes: Vec<String> = r
            .status_codes
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let _ = writeln!(out, "\nStatus codes: {}", codes.join(", "));
    }
    for t in &r.thresholds {
        let _ = writeln!(
            out,
            "{} threshold {} (actual {})",
            if t.ok { "PASS" } else { "FAIL" },
            t.threshold,
            t.actual.map_or("no data".into(), |a| format!("{a:.3}"))
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::refusals_and_slow_answers as run;

    #[test]
    fn the_successful_latency_is_shown_when_requests_failed() {
        let r = run(true);
        let all = r.total().unwrap();
        assert!(all.median_response_time < 2.0, "refusals set the median");
        let t = summary(&r);
        let table = t
            .split("Successful requests only")
            .nth(1)
            .expect("a table of the successful requests");
        let row = table.lines().find(|l| l.starts_with("GET")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        // Type, name, # ok, |, median, avg, p95, p99, max.
        assert_eq!(cells[2], "2", "{row}");
        let median: f64 = cells[4].parse().unwrap();
        assert!((299.0..=401.0).contains(&median), "{row}");
        let max: f64 = cells[8].parse().unwrap();
        assert!((399.0..=401.0).contains(&max), "{row}");
        // Nothing failed: the table would repeat the one above, so it is left out.
        assert!(!summary(&run(false)).contains("Successful requests only"));
    }
}
