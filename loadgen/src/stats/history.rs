//! The per-second time series: users, requests/s, failures/s and latency percentiles.

use serde::{Deserialize, Serialize};

/// One second of the run (a row of `_stats_history.csv`, a point of every chart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// End of the second, Unix time in milliseconds.
    pub time: u64,
    /// Users running at that time.
    pub user_count: u32,
    /// Requests finished in that second.
    pub rps: f64,
    /// Failures in that second.
    pub fail_per_sec: f64,
    /// Median latency of the requests of that second (ms, corrected).
    pub p50: f64,
    /// 95th percentile (ms, corrected).
    pub p95: f64,
    /// 99th percentile (ms, corrected).
    pub p99: f64,
    /// 99th percentile measured from the actual send (ms, uncorrected).
    #[serde(default)]
    pub p99_uncorrected: f64,
    /// Requests since the start.
    #[serde(default)]
    pub total_requests: u64,
    /// Failures since the start.
    #[serde(default)]
    pub total_failures: u64,
    /// Median since the start (ms).
    #[serde(default)]
    pub total_median: f64,
    /// Average since the start (ms).
    #[serde(default)]
    pub total_avg: f64,
    /// Minimum since the start (ms).
    #[serde(default)]
    pub total_min: f64,
    /// Maximum since the start (ms).
    #[serde(default)]
    pub total_max: f64,
    /// Average body size since the start (bytes).
    #[serde(default)]
    pub total_avg_content: f64,
    /// Iterations the open model could not start in that second.
    #[serde(default)]
    pub dropped: u64,
    /// That second's latency at each of `PERCENTILES` (ms, corrected), for `_stats_history.csv`.
    #[serde(default)]
    pub percentiles: Vec<f64>,
}

/// Merges the histories of several segments of one test: points are matched
/// by second; counts and rates add up, percentiles take the largest value
/// (exact percentiles need the histograms, which only the totals keep).
pub fn merge(series: &[&[HistoryPoint]]) -> Vec<HistoryPoint> {
    let mut by_sec: std::collections::BTreeMap<u64, HistoryPoint> = Default::default();
    for s in series {
        for p in *s {
            let key = p.time / 1000;
            by_sec
                .entry(key)
                .and_modify(|q| {
                    q.user_count += p.user_count;
                    q.rps += p.rps;
                    q.fail_per_sec += p.fail_per_sec;
                    q.p50 = q.p50.max(p.p50);
                    q.p95 = q.p95.max(p.p95);
                    q.p99 = q.p99.max(p.p99);
                    q.p99_uncorrected = q.p99_uncorrected.max(p.p99_uncorrected);
                    let (n1, n2) = (q.total_requests as f64, p.total_requests as f64);
                    if n1 + n2 > 0.0 {
                        q.total_avg = (q.total_avg * n1 + p.total_avg * n2) / (n1 + n2);
                        q.total_avg_content =
                            (q.total_avg_content * n1 + p.total_avg_content * n2) / (n1 + n2);
                    }
                    q.total_requests += p.total_requests;
                    q.total_failures += p.total_failures;
                    q.total_median = q.total_median.max(p.total_median);
                    q.total_min = if q.total_min == 0.0 {
                        p.total_min
                    } else {
                        q.total_min.min(p.total_min)
                    };
                    q.total_max = q.total_max.max(p.total_max);
                    q.dropped += p.dropped;
                })
                .or_insert_with(|| p.clone());
        }
    }
    by_sec.into_values().collect()
}
