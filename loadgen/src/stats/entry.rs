//! Statistics of one (method, name): counts and two HDR histograms.
//!
//! `hist` holds the latency measured from when the request was *due*
//! (intended start; coordinated-omission corrected), `raw` from when it was
//! actually sent. In closed models without pacing both are the same. Both are
//! in microseconds with 3 significant digits, so percentiles are exact to
//! 0.1% and two entries merge without loss (`add`).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency tracked: one hour in microseconds; longer ones saturate.
pub const MAX_US: u64 = 3_600_000_000;

/// The percentiles Locust reports, in its order (CSV columns `50%`…`100%`).
pub const PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Seconds of the "current" window (Locust: 10 s).
pub const WINDOW: usize = 10;

pub(crate) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// Statistics of one endpoint (or the aggregate).
#[derive(Debug, Clone)]
pub struct Entry {
    /// HTTP method (`""` for the aggregate, as in Locust's CSV).
    pub method: String,
    /// Request name.
    pub name: String,
    /// Requests finished (successful or not).
    pub num_requests: u64,
    /// Failed requests.
    pub num_failures: u64,
    /// Sum of response body sizes.
    pub total_content: u64,
    /// Sum of corrected latencies (µs).
    pub sum_us: u64,
    /// Sum of uncorrected latencies (µs).
    pub sum_raw_us: u64,
    /// Corrected latency histogram (µs).
    pub hist: Histogram<u64>,
    /// Uncorrected latency histogram (µs).
    pub raw: Histogram<u64>,
    /// Requests per second of the last `WINDOW` seconds (ring, `slot` is the current one).
    reqs: [u32; WINDOW],
    fails: [u32; WINDOW],
    slot: usize,
    /// Seconds completed since the start, capped at WINDOW (for the average).
    filled: usize,
}

impl Entry {
    /// An empty entry.
    pub fn new(method: &str, name: &str) -> Entry {
        Entry {
            method: method.to_string(),
            name: name.to_string(),
            num_requests: 0,
            num_failures: 0,
            total_content: 0,
            sum_us: 0,
            sum_raw_us: 0,
            hist: new_hist(),
            raw: new_hist(),
            reqs: [0; WINDOW],
            fails: [0; WINDOW],
            slot: 0,
            filled: 0,
        }
    }

    /// Records one finished request.
    #[inline]
    pub fn record(&mut self, latency_us: u64, raw_us: u64, content: u64, failed: bool) {
        self.num_requests += 1;
        self.total_content += content;
        self.sum_us += latency_us;
        self.sum_raw_us += raw_us;
        self.hist.saturating_record(latency_us.min(MAX_US));
        self.raw.saturating_record(raw_us.min(MAX_US));
        self.reqs[self.slot] += 1;
        if failed {
            self.num_failures += 1;
            self.fails[self.slot] += 1;
        }
    }

    /// Closes the current second of the rolling window.
    pub fn tick(&mut self) {
        self.slot = (self.slot + 1) % WINDOW;
        self.reqs[self.slot] = 0;
        self.fails[self.slot] = 0;
        self.filled = (self.filled + 1).min(WINDOW - 1);
    }

    /// Requests/s over the completed seconds of the window.
    pub fn current_rps(&self) -> f64 {
        self.window_rate(&self.reqs)
    }

    /// Failures/s over the completed seconds of the window.
    pub fn current_fail_per_sec(&self) -> f64 {
        self.window_rate(&self.fails)
    }

    fn window_rate(&self, ring: &[u32; WINDOW]) -> f64 {
        if self.filled == 0 {
            return 0.0;
        }
        let mut sum = 0u64;
        for back in 1..=self.filled {
            sum += u64::from(ring[(self.slot + WINDOW - back) % WINDOW]);
        }
        sum as f64 / self.filled as f64
    }

    /// Adds `other` (same endpoint from another segment or shard).
    pub fn add(&mut self, other: &Entry) {
        self.num_requests += other.num_requests;
        self.num_failures += other.num_failures;
        self.total_content += other.total_content;
        self.sum_us += other.sum_us;
        self.sum_raw_us += other.sum_raw_us;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        let _ = self.raw.add(&other.raw);
    }

    /// The summary row (times in ms) given the run's duration.
    pub fn row(&self, elapsed_s: f64) -> StatsRow {
        let n = self.num_requests;
        let ms = |us: u64| us as f64 / 1000.0;
        let avg = |sum: u64| {
            if n == 0 {
                0.0
            } else {
                sum as f64 / n as f64 / 1000.0
            }
        };
        let q = |h: &Histogram<u64>, p: f64| {
            if n == 0 {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        let secs = elapsed_s.max(1e-9);
        StatsRow {
            method: self.method.clone(),
            name: self.name.clone(),
            num_requests: n,
            num_failures: self.num_failures,
            median_response_time: q(&self.hist, 0.5),
            avg_response_time: avg(self.sum_us),
            min_response_time: if n == 0 { 0.0 } else { ms(self.hist.min()) },
            max_response_time: if n == 0 { 0.0 } else { ms(self.hist.max()) },
            avg_content_length: if n == 0 {
                0.0
            } else {
                self.total_content as f64 / n as f64
            },
            current_rps: self.current_rps(),
            current_fail_per_sec: self.current_fail_per_sec(),
            total_rps: n as f64 / secs,
            total_fail_per_sec: self.num_failures as f64 / secs,
            fail_ratio: if n == 0 {
                0.0
            } else {
                self.num_failures as f64 / n as f64
            },
            percentiles: PERCENTILES
                .iter()
                .map(|p| (*p, q(&self.hist, *p)))
                .collect(),
            uncorrected: Uncorrected {
                median_response_time: q(&self.raw, 0.5),
                avg_response_time: avg(self.sum_raw_us),
                p95: q(&self.raw, 0.95),
                p99: q(&self.raw, 0.99),
                max_response_time: if n == 0 { 0.0 } else { ms(self.raw.max()) },
            },
        }
    }
}

/// One row of the statistics table (Locust's columns; times in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    /// HTTP method; empty for the `Aggregated` row.
    pub method: String,
    /// Request name; `Aggregated` for the last row.
    pub name: String,
    /// Requests finished.
    pub num_requests: u64,
    /// Requests failed.
    pub num_failures: u64,
    /// Median latency (ms, corrected).
    pub median_response_time: f64,
    /// Average latency (ms, corrected).
    pub avg_response_time: f64,
    /// Minimum latency (ms).
    pub min_response_time: f64,
    /// Maximum latency (ms).
    pub max_response_time: f64,
    /// Average body size (bytes).
    pub avg_content_length: f64,
    /// Requests/s over the last 10 s.
    pub current_rps: f64,
    /// Failures/s over the last 10 s.
    pub current_fail_per_sec: f64,
    /// Requests/s over the whole run.
    pub total_rps: f64,
    /// Failures/s over the whole run.
    pub total_fail_per_sec: f64,
    /// Failures / requests.
    pub fail_ratio: f64,
    /// `(0.5, ms)` … `(1.0, ms)` for `PERCENTILES` (corrected).
    pub percentiles: Vec<(f64, f64)>,
    /// The same figures measured from the actual send time.
    pub uncorrected: Uncorrected,
}

impl StatsRow {
    /// The latency at percentile `p` (0..=1) if it is one of `PERCENTILES`.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-9)
            .map(|(_, v)| *v)
    }
}

/// Latency measured from the actual send time (coordinated omission not corrected).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Uncorrected {
    /// Median (ms).
    pub median_response_time: f64,
    /// Average (ms).
    pub avg_response_time: f64,
    /// 95th percentile (ms).
    pub p95: f64,
    /// 99th percentile (ms).
    pub p99: f64,
    /// Maximum (ms).
    pub max_response_time: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_to_a_tenth_of_a_percent() {
        let mut e = Entry::new("GET", "/");
        for i in 1..=1000u64 {
            e.record(i * 1000, i * 1000, 10, i % 100 == 0);
        }
        let r = e.row(10.0);
        assert_eq!(r.num_requests, 1000);
        assert_eq!(r.num_failures, 10);
        assert!((r.median_response_time - 500.0).abs() <= 0.5, "{r:?}");
        assert!((r.percentile(0.99).unwrap() - 990.0).abs() <= 1.0, "{r:?}");
        assert!((r.max_response_time - 1000.0).abs() <= 1.0);
        assert!((r.min_response_time - 1.0).abs() < 0.01);
        assert!((r.avg_response_time - 500.5).abs() < 0.01);
        assert!((r.total_rps - 100.0).abs() < 1e-9);
        assert_eq!(r.avg_content_length, 10.0);
    }

    #[test]
    fn window_rate_averages_completed_seconds() {
        let mut e = Entry::new("GET", "/");
        for _ in 0..10 {
            e.record(1, 1, 0, false);
        }
        assert_eq!(e.current_rps(), 0.0);
        e.tick();
        for _ in 0..30 {
            e.record(1, 1, 0, true);
        }
        e.tick();
        assert_eq!(e.current_rps(), 20.0);
        assert_eq!(e.current_fail_per_sec(), 15.0);
    }

    #[test]
    fn add_merges_exactly() {
        let mut a = Entry::new("GET", "/");
        let mut b = Entry::new("GET", "/");
        a.record(1000, 1000, 1, false);
        b.record(3000, 2000, 3, true);
        a.add(&b);
        assert_eq!(a.num_requests, 2);
        assert_eq!(a.num_failures, 1);
        assert_eq!(a.hist.len(), 2);
        assert_eq!(a.raw.max(), 2000);
    }
}
