//! The result of a run (`RunReport`) and the writers that present it.
//!
//! `RunReport` is exactly what `--json` writes, and what `merge` reads back:
//! besides the tables it carries every row's HDR histograms, serialized
//! (V2 + deflate, base64), so that reports of several segments combine into
//! exact statistics. `csv`, `html` and `terminal` only format a report; each
//! has an in-memory form (`stats_csv(&report) -> String`, …) for the dashboard
//! downloads, and a file form used by the CLI. `outputs` checks the
//! requested files before a run and writes them, each on its own, after.

pub mod csv;
pub mod html;
pub mod json;
pub mod outputs;
pub mod terminal;

use std::path::Path;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::stats::{self, Entry, FailureRow, HistoryPoint, StatsRow, StatsState};
use crate::Error;

pub use self::csv::{exceptions_csv, failures_csv, stats_csv, stats_history_csv, write_csv};
pub use self::html::{html_report, write_html};
pub use self::json::write_json;

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The threshold as written.
    pub threshold: String,
    /// The measured value (`None` when the endpoint had no requests).
    pub actual: Option<f64>,
    /// Whether it holds.
    pub ok: bool,
}

/// The complete result of a run: what `--json` writes and `merge` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Version of loadgen that wrote it.
    pub loadgen_version: String,
    /// Which run this is; its keys sit at the top level of the JSON.
    #[serde(flatten)]
    pub meta: ReportMeta,
    /// One row per (method, name) sorted by name, then the `Aggregated` row.
    pub stats: Vec<StatsRow>,
    /// Failures grouped by (method, name, kind, message).
    pub failures: Vec<FailureRow>,
    /// `(status, responses)`, ascending.
    pub status_codes: Vec<(u16, u64)>,
    /// One point per second.
    pub history: Vec<HistoryPoint>,
    /// Whole-run latency histogram, `(upper bound ms, count)`, log-spaced.
    pub histogram: Vec<(f64, u64)>,
    /// Iterations the open model could not start.
    pub dropped_iterations: u64,
    /// Threshold outcomes.
    pub thresholds: Vec<ThresholdResult>,
    /// Warnings about loadgen itself (CPU, send lag).
    pub warnings: Vec<String>,
    /// The last balancer `/status` seen (with `--balancer-status`).
    pub upstreams: Option<serde_json::Value>,
    /// Serialized histograms and sums of every row, same order as `stats`.
    pub hdr: Vec<HdrEntry>,
}

/// Which run a report describes: the keys of the JSON report that follow
/// `loadgen_version`, in this order. Warnings and the balancer status are
/// gathered during the run and stay in [`RunReport`], after the statistics,
/// where the JSON has always had them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// Scenario name.
    pub scenario: String,
    /// Target URL.
    pub host: String,
    /// `closed` (users with think time) or `open` (arrival rate).
    pub model: String,
    /// `I/N` when this is one segment of a distributed test; `merged` after merge.
    pub segment: Option<String>,
    /// Start, Unix time in ms.
    pub started_at: u64,
    /// Length of the run in seconds (the divisor of every total rate).
    pub duration_s: f64,
    /// Most users running at once.
    pub max_users: u32,
}

/// The exact, mergeable state of one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HdrEntry {
    /// HTTP method (empty for the aggregate).
    pub method: String,
    /// Name (`Aggregated` for the aggregate).
    pub name: String,
    /// Requests.
    pub num_requests: u64,
    /// Failures.
    pub num_failures: u64,
    /// Sum of body sizes.
    pub total_content: u64,
    /// Sum of corrected latencies, µs.
    pub sum_us: u64,
    /// Sum of uncorrected latencies, µs.
    pub sum_raw_us: u64,
    /// Corrected histogram (µs), HDR V2 deflate, base64.
    pub corrected: String,
    /// Uncorrected histogram (µs), HDR V2 deflate, base64.
    pub uncorrected: String,
    /// Sum of the failed requests' corrected latencies, µs (0 in reports of
    /// an older loadgen).
    #[serde(default)]
    pub sum_failed_us: u64,
    /// Corrected histogram of the failed requests only (µs), HDR V2
    /// deflate, base64. Absent when the row had no failure, and when the
    /// failures' latencies are unknown (the row comes from a report of an
    /// older loadgen, which wrote no such field): a row with failures and
    /// without it reads back with the successful requests' latency unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Serializes a histogram for a report.
pub fn encode_hist(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut buf) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(buf),
        Err(_) => String::new(),
    }
}

/// Reads a histogram written by `encode_hist`.
pub fn decode_hist(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram cannot be decoded: {e:?}"))?;
    let mut out = stats::entry::new_hist();
    out.add(&h)
        .map_err(|e| format!("histogram out of range: {e:?}"))?;
    Ok(out)
}

impl HdrEntry {
    /// Captures an entry.
    pub fn from_entry(e: &Entry) -> HdrEntry {
        HdrEntry {
            method: e.method.clone(),
            name: e.name.clone(),
            num_requests: e.num_requests,
            num_failures: e.num_failures,
            total_content: e.total_content,
            sum_us: e.sum_us,
            sum_raw_us: e.sum_raw_us,
            corrected: encode_hist(&e.hist),
            uncorrected: encode_hist(&e.raw),
            sum_failed_us: e.sum_failed_us,
            // An incomplete histogram (part of a merge with an older report)
            // is left out: read back, it would look complete but wrong.
            failed: e
                .failed
                .as_ref()
                .filter(|f| !f.is_empty() && e.failed_complete())
                .map(encode_hist),
        }
    }

    /// Rebuilds the entry.
    pub fn to_entry(&self) -> Result<Entry, String> {
        let mut e = Entry::new(&self.method, &self.name);
        e.num_requests = self.num_requests;
        e.num_failures = self.num_failures;
        e.total_content = self.total_content;
        e.sum_us = self.sum_us;
        e.sum_raw_us = self.sum_raw_us;
        e.sum_failed_us = self.sum_failed_us;
        e.hist = decode_hist(&self.corrected)?;
        e.raw = decode_hist(&self.uncorrected)?;
        let row = format!("row {} {}", self.method, self.name);
        if e.hist.len() != self.num_requests {
            return Err(format!(
                "{row}: histogram holds {} values but the count is {}",
                e.hist.len(),
                self.num_requests
            ));
        }
        if let Some(text) = &self.failed {
            let f = decode_hist(text).map_err(|m| format!("{row}, failures: {m}"))?;
            if f.len() != self.num_failures {
                return Err(format!(
                    "{row}: the failures' histogram holds {} values but {} requests failed",
                    f.len(),
                    self.num_failures
                ));
            }
            e.failed = Some(f);
            if e.successful_hist().is_none() {
                return Err(format!(
                    "{row}: the failures' latencies are not among the row's latencies"
                ));
            }
        }
        Ok(e)
    }
}

impl RunReport {
    /// Builds a report from collected statistics; what the statistics do not
    /// hold (thresholds, dropped iterations, warnings, upstreams) starts empty.
    pub fn from_state(st: &StatsState, meta: ReportMeta) -> RunReport {
        let stats = st.rows(meta.duration_s);
        // `rows` sorts entries by (name, method); keep `hdr` in the same order.
        let mut entries: Vec<&Entry> = st.entries.iter().collect();
        entries.sort_by(|x, y| x.name.cmp(&y.name).then_with(|| x.method.cmp(&y.method)));
        let mut hdr: Vec<HdrEntry> = entries.into_iter().map(HdrEntry::from_entry).collect();
        hdr.push(HdrEntry::from_entry(&st.total));
        RunReport {
            loadgen_version: env!("CARGO_PKG_VERSION").to_string(),
            meta,
            stats,
            failures: st.failures.rows(),
            status_codes: st.status_codes.iter().map(|(k, v)| (*k, *v)).collect(),
            history: st.history.clone(),
            histogram: st.histogram_buckets(),
            dropped_iterations: st.dropped_iterations,
            thresholds: Vec::new(),
            warnings: Vec::new(),
            upstreams: None,
            hdr,
        }
    }

    /// The `Aggregated` row.
    pub fn total(&self) -> Option<&StatsRow> {
        self.stats.last()
    }

    /// Total requests and failures.
    pub fn counts(&self) -> (u64, u64) {
        self.total()
            .map(|t| (t.num_requests, t.num_failures))
            .unwrap_or((0, 0))
    }
}

/// Writes `text` to `path`, mapping the error to the crate's.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Eight fast refusals (1 ms) and two slow answers (300, 400 ms) on `GET /a`;
/// with `failing` false the refusals succeed. For the tables' tests.
#[cfg(test)]
pub(crate) fn refusals_and_slow_answers(failing: bool) -> RunReport {
    use crate::stats::{sample, Key, Names, StatsState};
    let mut names = Names::default();
    let id = names.intern("GET", "/a");
    let mut st = StatsState::new(names);
    for _ in 0..8 {
        st.record(sample(Key::Id(id), 1, failing));
    }
    for ms in [300, 400] {
        st.record(sample(Key::Id(id), ms, false));
    }
    st.tick(1_700_000_000_000, 1, 0);
    RunReport::from_state(&st, ReportMeta::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip() {
        let mut e = Entry::new("GET", "/");
        for v in [1u64, 20_000, 20_100, 5_000_000] {
            e.record(v, v / 2, 3, false);
        }
        let h = HdrEntry::from_entry(&e);
        let back = h.to_entry().unwrap();
        assert_eq!(back.hist, e.hist);
        assert_eq!(back.raw, e.raw);
        assert_eq!(back.num_requests, 4);
        let mut bad = h.clone();
        bad.num_requests = 5;
        assert!(bad.to_entry().is_err());
        assert!(decode_hist("!!").is_err());
    }

    /// Two fast failures and two slow successes.
    fn mixed() -> Entry {
        let mut e = Entry::new("GET", "/");
        e.record(1_000, 1_000, 0, true);
        e.record(2_000, 2_000, 0, true);
        e.record(300_000, 300_000, 5, false);
        e.record(400_000, 400_000, 5, false);
        e
    }

    #[test]
    fn the_failures_histogram_round_trips() {
        let e = mixed();
        let back = HdrEntry::from_entry(&e).to_entry().unwrap();
        assert_eq!(back.failed, e.failed);
        assert_eq!(back.sum_failed_us, 3_000);
        let ok = back.row(1.0).successful.unwrap();
        assert_eq!(ok.num_requests, 2);
        assert!(ok.min_response_time >= 299.0, "{ok:?}");
        // A row without failures writes no such field.
        let mut clean = Entry::new("GET", "/");
        clean.record(1_000, 1_000, 0, false);
        assert_eq!(HdrEntry::from_entry(&clean).failed, None);
    }

    /// An entry as an older loadgen wrote it: no `failed`, no `sum_failed_us`.
    fn without_failure_fields(e: &Entry) -> HdrEntry {
        let mut v = serde_json::to_value(HdrEntry::from_entry(e)).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("failed");
        o.remove("sum_failed_us");
        serde_json::from_value(v).expect("an older loadgen's entry still loads")
    }

    #[test]
    fn an_older_report_loads_with_the_successful_latency_unknown() {
        let old = without_failure_fields(&mixed()).to_entry().unwrap();
        assert_eq!(old.num_failures, 2);
        assert_eq!(old.row(1.0).successful, None);
        // Re-written (by a merge), it stays unknown rather than turning wrong.
        let again = HdrEntry::from_entry(&old);
        assert_eq!(again.failed, None);
        assert_eq!(again.to_entry().unwrap().row(1.0).successful, None);
        let mut clean = Entry::new("GET", "/");
        clean.record(7_000, 7_000, 0, false);
        let ok = without_failure_fields(&clean).to_entry().unwrap().row(1.0);
        assert_eq!(ok.successful.map(|s| s.num_requests), Some(1));
    }

    #[test]
    fn a_failures_histogram_that_does_not_fit_is_refused() {
        let mut h = HdrEntry::from_entry(&mixed());
        h.num_failures = 3;
        let e = h.to_entry().unwrap_err();
        assert!(e.contains("holds 2 values but 3 requests failed"), "{e}");
        // Failures at latencies the row never saw.
        let mut stranger = stats::entry::new_hist();
        stranger.record(50_000).unwrap();
        stranger.record(60_000).unwrap();
        let mut h = HdrEntry::from_entry(&mixed());
        h.failed = Some(encode_hist(&stranger));
        let e = h.to_entry().unwrap_err();
        assert!(e.contains("not among the row's latencies"), "{e}");
        h.failed = Some("!!".into());
        let e = h.to_entry().unwrap_err();
        assert!(e.contains("failures: histogram is not base64"), "{e}");
    }
}
