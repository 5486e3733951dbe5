//! Locust-compatible CSV files, with Locust's exact headers.
//!
//! Locust writes them with Python's `csv` module (`\r\n` line ends, fields
//! quoted only when needed); so do we. Times are milliseconds; unlike
//! Locust's integers they keep up to three decimals (microsecond
//! resolution). `_exceptions.csv` has Locust's header and no rows: loadgen
//! scenarios cannot raise exceptions, their errors are failures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{write_file, RunReport};
use crate::stats::{StatsRow, PERCENTILES};
use crate::Error;

/// `Type,Name,Request Count,…` (Locust's `requests_csv_columns`).
pub const STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";
/// `Timestamp,User Count,…` (Locust's `stats_history_csv_columns`).
pub const HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size";
/// `Method,Name,Error,Occurrences,First Seen,Last Seen` (Locust 2.x `failures_columns`).
pub const FAILURES_HEADER: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen";
/// `Count,Message,Traceback,Nodes`.
pub const EXCEPTIONS_HEADER: &str = "Count,Message,Traceback,Nodes";

const EOL: &str = "\r\n";

/// Quotes a field the way Python's `csv.writer` does (QUOTE_MINIMAL).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Milliseconds with up to 3 decimals, without trailing zeros.
pub fn ms(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn percentiles(row: &StatsRow) -> String {
    if row.num_requests == 0 {
        return vec!["N/A"; PERCENTILES.len()].join(",");
    }
    row.percentiles
        .iter()
        .map(|(_, v)| ms(*v))
        .collect::<Vec<_>>()
        .join(",")
}

/// `PREFIX_stats.csv`.
pub fn stats_csv(r: &RunReport) -> String {
    let mut out = String::from(STATS_HEADER);
    out.push_str(EOL);
    for row in &r.stats {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}{EOL}",
            field(&row.method),
            field(&row.name),
            row.num_requests,
            row.num_failures,
            ms(row.median_response_time),
            ms(row.avg_response_time),
            ms(row.min_response_time),
            ms(row.max_response_time),
            ms(row.avg_content_length),
            ms(row.total_rps),
            ms(row.total_fail_per_sec),
            percentiles(row),
        );
    }
    out
}

/// `PREFIX_stats_history.csv`: one `Aggregated` row per second.
pub fn stats_history_csv(r: &RunReport) -> String {
    let mut out = String::from(HISTORY_HEADER);
    out.push_str(EOL);
    for p in &r.history {
        let pct = if p.rps == 0.0 || p.percentiles.len() != PERCENTILES.len() {
            vec!["N/A".to_string(); PERCENTILES.len()].join(",")
        } else {
            p.percentiles
                .iter()
                .map(|v| ms(*v))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Locust: timestamp, user count, type ("" for the aggregate), name, rates as "%2f".
        let _ = write!(
            out,
            "{},{},,Aggregated,{:.6},{:.6},{},{},{},{},{},{},{},{}{EOL}",
            p.time / 1000,
            p.user_count,
            p.rps,
            p.fail_per_sec,
            pct,
            p.total_requests,
            p.total_failures,
            ms(p.total_median),
            ms(p.total_avg),
            ms(p.total_min),
            ms(p.total_max),
            ms(p.total_avg_content),
        );
    }
    out
}

/// `PREFIX_failures.csv`.
pub fn failures_csv(r: &RunReport) -> String {
    let mut out = String::from(FAILURES_HEADER);
    out.push_str(EOL);
    for f in &r.failures {
        let _ = write!(
            out,
            "{},{},{},{},{},{}{EOL}",
            field(&f.method),
            field(&f.name),
            field(&f.error),
            f.occurrences,
            f.first_seen.map(utc_timestamp).unwrap_or_default(),
            f.last_seen.map(utc_timestamp).unwrap_or_default(),
        );
    }
    out
}

/// Unix seconds as `2026-11-29T05:03:00Z` (Locust's `format_utc_timestamp`).
pub fn utc_timestamp(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `PREFIX_exceptions.csv` (header only; see the module documentation).
pub fn exceptions_csv(_r: &RunReport) -> String {
    format!("{EXCEPTIONS_HEADER}{EOL}")
}

/// The suffixes `--csv PREFIX` appends, in the order the files are written.
const SUFFIXES: [&str; 4] = [
    "_stats.csv",
    "_stats_history.csv",
    "_failures.csv",
    "_exceptions.csv",
];

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The four files `--csv PREFIX` writes.
pub fn csv_paths(prefix: &Path) -> Vec<PathBuf> {
    SUFFIXES.iter().map(|s| with_suffix(prefix, s)).collect()
}

/// Writes the four files `PREFIX_stats.csv`, `PREFIX_stats_history.csv`,
/// `PREFIX_failures.csv`, `PREFIX_exceptions.csv`; returns their paths.
pub fn write_csv(r: &RunReport, prefix: &Path) -> Result<Vec<PathBuf>, Error> {
    let texts = [
        stats_csv(r),
        stats_history_csv(r),
        failures_csv(r),
        exceptions_csv(r),
    ];
    let paths = csv_paths(prefix);
    for (p, text) in paths.iter().zip(texts) {
        write_file(p, &text)?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_quoting() {
        assert_eq!(ms(20.0), "20");
        assert_eq!(ms(20.1234), "20.123");
        assert_eq!(ms(0.0), "0");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("/x"), "/x");
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_929_780), "2026-11-29T05:23:00Z");
    }
}
