//! Statistics of one (method, name): counts and three HDR histograms.
//!
//! `hist` holds the latency measured from when the request was *due*
//! (intended start; coordinated-omission corrected), `raw` from when it was
//! actually sent. In closed models without pacing both are the same. Both are
//! in microseconds with 3 significant digits, so percentiles are exact to
//! 0.1% and two entries merge without loss (`add`).
//!
//! `failed` holds the corrected latency of the failed requests only, so that
//! a report can give the latency of the *successful* ones (`hist − failed`):
//! a load shedder answers its 503s in a millisecond, and over all answers
//! those fast refusals pull the percentiles down just when the requests that
//! got in are slow. Why the failures and not the successes get the third
//! histogram: recording stays as it was for a successful request (the
//! failure branch was already there), and a run without failures never
//! allocates it. The subtraction is done when a row is made, not per request.

use std::borrow::Cow;

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
    /// Corrected latency histogram of the failed requests only (µs); `None`
    /// until the first failure. It is complete when it holds `num_failures`
    /// values; it holds fewer only for an entry read from (or merged with) a
    /// report of an older loadgen, which kept no such histogram: the
    /// successful requests' latency is then unknown (see [`Entry::successful_hist`]).
    pub failed: Option<Histogram<u64>>,
    /// Sum of the failed requests' corrected latencies (µs).
    pub sum_failed_us: u64,
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
            failed: None,
            sum_failed_us: 0,
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
            self.sum_failed_us += latency_us;
            self.failed
                .get_or_insert_with(new_hist)
                .saturating_record(latency_us.min(MAX_US));
        }
    }

    /// Whether `failed` holds every failure, so that `hist − failed` is the
    /// successful requests' latency.
    pub fn failed_complete(&self) -> bool {
        self.failed.as_ref().map_or(0, Histogram::len) == self.num_failures
    }

    /// The successful requests' corrected latencies (`hist − failed`), or
    /// `None` when they are unknown (an older loadgen's report kept no
    /// histogram of the failures) or the two histograms disagree.
    pub fn successful_hist(&self) -> Option<Cow<'_, Histogram<u64>>> {
        if !self.failed_complete() {
            return None;
        }
        match &self.failed {
            Some(f) if !f.is_empty() => {
                let mut ok = self.hist.clone();
                ok.subtract(f).ok()?;
                Some(Cow::Owned(ok))
            }
            _ => Some(Cow::Borrowed(&self.hist)),
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
        self.sum_failed_us += other.sum_failed_us;
        if let Some(f) = &other.failed {
            let _ = self.failed.get_or_insert_with(new_hist).add(f);
        }
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
            successful: self.successful_row(),
        }
    }

    /// The successful requests' latency figures, `None` when unknown.
    fn successful_row(&self) -> Option<Successful> {
        let ok = self.successful_hist()?;
        let n = ok.len();
        let ms = |us: u64| if n == 0 { 0.0 } else { us as f64 / 1000.0 };
        let q = |p: f64| {
            if n == 0 {
                0.0
            } else {
                ms(ok.value_at_quantile(p))
            }
        };
        Some(Successful {
            num_requests: n,
            median_response_time: q(0.5),
            avg_response_time: ms(self.sum_us.saturating_sub(self.sum_failed_us)) / n.max(1) as f64,
            min_response_time: ms(ok.min()),
            max_response_time: ms(ok.max()),
            percentiles: PERCENTILES.iter().map(|p| (*p, q(*p))).collect(),
        })
    }
}

/// The latency at percentile `p` of a `(percentile, ms)` list, if listed.
fn percentile_in(list: &[(f64, f64)], p: f64) -> Option<f64> {
    list.iter()
        .find(|(q, _)| (q - p).abs() < 1e-9)
        .map(|(_, v)| *v)
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
    /// The latency of the successful requests only (corrected). Absent when
    /// unknown: a row merged from a report of an older loadgen, which kept no
    /// histogram of the failures. Not a CSV column (those stay Locust's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful: Option<Successful>,
}

impl StatsRow {
    /// The latency at percentile `p` (0..=1) if it is one of `PERCENTILES`.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        percentile_in(&self.percentiles, p)
    }
}

/// Latency of the successful requests of a row (corrected; ms). With no
/// successful request every figure is 0, as in Locust's empty rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Successful {
    /// Successful requests (`num_requests − num_failures`).
    pub num_requests: u64,
    /// Median (ms).
    pub median_response_time: f64,
    /// Average (ms).
    pub avg_response_time: f64,
    /// Minimum (ms).
    pub min_response_time: f64,
    /// Maximum (ms).
    pub max_response_time: f64,
    /// `(0.5, ms)` … `(1.0, ms)` for `PERCENTILES`.
    pub percentiles: Vec<(f64, f64)>,
}

impl Successful {
    /// The latency at percentile `p` (0..=1) if it is one of `PERCENTILES`
    /// and a request succeeded.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        percentile_in(&self.percentiles, p).filter(|_| self.num_requests > 0)
    }

    /// Median, average, 95%, 99% and maximum (ms), the columns the reports
    /// show; `None` where there is no figure.
    pub fn columns(&self) -> [Option<f64>; 5] {
        let figure = |v: f64| (self.num_requests > 0).then_some(v);
        [
            figure(self.median_response_time),
            figure(self.avg_response_time),
            self.percentile(0.95),
            self.percentile(0.99),
            figure(self.max_response_time),
        ]
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

    /// A load shedder's case: 300 refusals in 1–3 ms, 100 successes in
    /// 200–299 ms. Over all answers the median is a refusal; the successful
    /// requests' figures are the slow ones.
    fn shed() -> Entry {
        let mut e = Entry::new("GET", "/");
        for i in 0..400u64 {
            if i % 4 == 0 {
                let us = (200 + i / 4) * 1000;
                e.record(us, us, 10, false);
            } else {
                e.record(1000 + i % 3 * 1000, 500, 0, true);
            }
        }
        e
    }

    #[test]
    fn successful_latency_leaves_fast_failures_out() {
        let r = shed().row(10.0);
        assert!(r.median_response_time < 3.01, "{r:?}");
        let ok = r.successful.expect("every failure was recorded");
        assert_eq!(ok.num_requests, 100);
        assert!((ok.min_response_time - 200.0).abs() < 0.2, "{ok:?}");
        assert!((ok.max_response_time - 299.0).abs() < 0.3, "{ok:?}");
        assert!((ok.median_response_time - 249.0).abs() < 0.3, "{ok:?}");
        assert!((ok.percentile(0.95).unwrap() - 294.0).abs() < 0.3, "{ok:?}");
        assert!((ok.avg_response_time - 249.5).abs() < 1e-9, "{ok:?}");
        // Without failures it is the row itself; with nothing but failures
        // there is no successful latency to give.
        let mut clean = Entry::new("GET", "/");
        clean.record(5000, 5000, 1, false);
        let row = clean.row(1.0);
        let ok = row.successful.unwrap();
        assert_eq!(ok.num_requests, 1);
        assert!((ok.median_response_time - 5.0).abs() < 0.01, "{ok:?}");
        assert!(clean.failed.is_none(), "no failure, no third histogram");
        let mut refused = Entry::new("GET", "/");
        refused.record(1000, 1000, 0, true);
        let ok = refused.row(1.0).successful.unwrap();
        assert_eq!((ok.num_requests, ok.percentile(0.5)), (0, None));
        assert_eq!(ok.columns(), [None; 5], "nothing succeeded: no figure");
        let ok = shed().row(10.0).successful.unwrap();
        let c = ok.columns();
        assert_eq!(c[0], Some(ok.median_response_time));
        assert_eq!(
            (c[2], c[4]),
            (ok.percentile(0.95), Some(ok.max_response_time))
        );
    }

    #[test]
    fn add_keeps_the_successful_latency() {
        let mut a = shed();
        let mut b = Entry::new("GET", "/");
        b.record(900_000, 900_000, 1, false);
        b.record(2_000, 2_000, 0, true);
        a.add(&b);
        let ok = a.row(1.0).successful.unwrap();
        assert_eq!(ok.num_requests, 101);
        assert!((ok.max_response_time - 900.0).abs() < 1.0, "{ok:?}");
        assert!((ok.min_response_time - 200.0).abs() < 0.2, "{ok:?}");
        assert_eq!(a.failed.as_ref().map(|f| f.len()), Some(301));
    }

    /// An entry whose failures' latencies were never kept (an older
    /// loadgen's report) has an unknown successful latency, also once added
    /// to a complete one; without failures it is still known.
    #[test]
    fn unknown_failure_latencies_leave_the_successful_latency_unknown() {
        let mut old = shed();
        old.failed = None;
        assert!(old.row(1.0).successful.is_none());
        let mut sum = shed();
        sum.add(&old);
        assert!(sum.row(1.0).successful.is_none());
        let mut clean = Entry::new("GET", "/");
        clean.record(5000, 5000, 1, false);
        clean.failed = None;
        assert!(clean.row(1.0).successful.is_some());
    }
}
