//! `--json FILE`: the whole `RunReport`, pretty-printed (and read back by `merge`).

use std::path::Path;

use super::{write_file, RunReport};
use crate::Error;

/// The report as JSON text.
pub fn to_json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Writes the report to `path`.
pub fn write_json(r: &RunReport, path: &Path) -> Result<(), Error> {
    write_file(path, &to_json(r))
}

/// Reads a report written by `write_json`.
pub fn read_json(path: &Path) -> Result<RunReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::BadReport {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportMeta;
    use crate::stats::{sample, Key, Names, StatsState};
    use crate::threshold::ThresholdResult;

    /// A small report with every field filled, the same on every run.
    fn report() -> RunReport {
        let mut names = Names::default();
        let id = names.intern("GET", "/a");
        let mut st = StatsState::new(names);
        st.record(sample(Key::Id(id), 10, false));
        st.record(sample(Key::Id(id), 25, true));
        st.tick(1_700_000_001_000, 2, 0);
        let meta = ReportMeta {
            scenario: "demo".into(),
            host: "http://127.0.0.1:1".into(),
            model: "closed".into(),
            segment: Some("1/2".into()),
            started_at: 1_700_000_000_000,
            duration_s: 1.5,
            max_users: 2,
        };
        let mut r = RunReport::from_state(&st, meta);
        r.dropped_iterations = 3;
        r.thresholds = vec![ThresholdResult {
            threshold: "p95<100ms".into(),
            actual: Some(25.0),
            ok: true,
        }];
        r.warnings = vec!["CPU above 90%".into()];
        r.upstreams = Some(serde_json::json!({"upstreams": []}));
        r
    }

    /// `merge` and the lab read these files back, and people diff them:
    /// the top-level keys keep their order, and the text reads back whole.
    #[test]
    fn keys_keep_their_order_and_read_back() {
        let r = report();
        let text = to_json(&r);
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  \"")?.split_once("\":").map(|(k, _)| k))
            .collect();
        assert_eq!(
            keys,
            [
                "loadgen_version",
                "scenario",
                "host",
                "model",
                "segment",
                "started_at",
                "duration_s",
                "max_users",
                "stats",
                "failures",
                "status_codes",
                "history",
                "histogram",
                "dropped_iterations",
                "thresholds",
                "warnings",
                "upstreams",
                "hdr",
            ]
        );
        let back: RunReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    /// A report written before the successful requests' latency was kept
    /// (no `successful` in the rows, no `failed` histograms) still reads;
    /// its rows with failures then say nothing about that latency.
    #[test]
    fn an_older_report_reads_back() {
        let r = report();
        assert!(r.stats.iter().all(|s| s.successful.is_some()));
        let mut v = serde_json::to_value(&r).unwrap();
        for key in ["stats", "hdr"] {
            for row in v[key].as_array_mut().unwrap() {
                let row = row.as_object_mut().unwrap();
                for field in ["successful", "failed", "sum_failed_us"] {
                    row.remove(field);
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        std::fs::write(&path, v.to_string()).unwrap();
        let back = read_json(&path).unwrap();
        assert_eq!(back.counts(), r.counts());
        assert!(back.stats.iter().all(|s| s.successful.is_none()));
        let agg = back.hdr.last().unwrap().to_entry().unwrap();
        assert_eq!(agg.row(1.0).successful, None);
    }
}
