//! Statistics: users produce samples, one collector aggregates them.
//!
//! Every user owns a `Recorder`: it pushes one small `Sample` per finished
//! request into a buffer of its worker thread (no shared lock, no wakeup; see
//! `Recorder`). Those buffers are emptied into `StatsState` whenever anyone
//! takes `Stats::lock`: the collector task (in `control`) does so every few
//! milliseconds, and readers and resets do it too, so every request finished
//! before a read is in it. `StatsState` holds the per-(method, name)
//! `Entry`s, the aggregate, the failure table, the status codes and the
//! per-second history: every request is counted there, with its latencies in
//! HDR histograms. Readers (terminal, dashboard, reports) only see what the
//! collector publishes.

pub mod entry;
pub mod failures;
pub mod history;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Notify;

pub use entry::{Entry, StatsRow, Successful, Uncorrected, PERCENTILES};
pub use failures::{Failure, FailureKind, FailureRow, Failures};
pub use history::HistoryPoint;

/// Which statistics row a sample belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A name known before the run (index into the `Names` registry).
    Id(u32),
    /// A name only known at run time (a templated path without `name`).
    Named(Box<(http::Method, String)>),
}

/// One finished request, as a user reports it.
#[derive(Debug)]
pub struct Sample {
    /// The row.
    pub key: Key,
    /// Latency from when the request was due (µs).
    pub latency_us: u64,
    /// Latency from when it was sent (µs).
    pub raw_us: u64,
    /// Response body size.
    pub content_len: u64,
    /// Response status, 0 when there was no response.
    pub status: u16,
    /// Why it failed, if it did.
    pub failure: Option<Box<Failure>>,
}

/// A user's handle for reporting samples (cheap to clone).
///
/// Samples go to a buffer of the worker thread the user runs on: a push
/// under that thread's own mutex, which only the collector's periodic drain
/// ever contends for. Unlike a channel send, recording wakes nobody; the
/// collector picks the samples up every `DRAIN_EVERY` instead of being woken
/// for each of a hundred thousand samples a second.
#[derive(Debug)]
pub struct Recorder {
    sink: Arc<Sink>,
}

/// How often the collector takes the buffered samples (at most this late
/// into the per-second history).
pub const DRAIN_EVERY: Duration = Duration::from_millis(10);

type Shard = Arc<Mutex<Vec<Sample>>>;

/// Where recorders put samples and the receiver takes them.
#[derive(Debug)]
struct Sink {
    /// Tells apart the sinks of concurrent runs in the per-thread cache.
    id: u64,
    /// One buffer per thread that recorded into this sink.
    shards: Mutex<Vec<(ThreadId, Shard)>>,
    /// Live `Recorder`s; the receiver ends when this reaches 0.
    live: AtomicUsize,
    /// Signalled when the last recorder goes.
    closed: Notify,
    /// False once the receiver is gone: samples are dropped, not kept.
    open: AtomicBool,
}

thread_local! {
    /// This thread's buffer in the sink it recorded into last: `(sink id, shard)`.
    static LOCAL_SHARD: RefCell<Option<(u64, Shard)>> = const { RefCell::new(None) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while pushing a sample leaves a valid Vec: ignore poisoning.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sink {
    fn shard_for_this_thread(&self) -> Shard {
        let me = std::thread::current().id();
        let mut shards = lock(&self.shards);
        if let Some((_, s)) = shards.iter().find(|(t, _)| *t == me) {
            return s.clone();
        }
        let s: Shard = Arc::new(Mutex::new(Vec::new()));
        shards.push((me, s.clone()));
        s
    }

    /// Moves every buffered sample into `buf`.
    fn drain(&self, buf: &mut Vec<Sample>) {
        for (_, s) in lock(&self.shards).iter() {
            buf.append(&mut lock(s));
        }
    }

    /// Whether any sample waits in a buffer.
    fn pending(&self) -> bool {
        lock(&self.shards).iter().any(|(_, s)| !lock(s).is_empty())
    }
}

impl Recorder {
    /// A recorder and the receiving end for the collector.
    pub fn channel() -> (Recorder, SampleReceiver) {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let sink = Arc::new(Sink {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            live: AtomicUsize::new(1),
            closed: Notify::new(),
            open: AtomicBool::new(true),
        });
        (Recorder { sink: sink.clone() }, SampleReceiver { sink })
    }

    /// Reports a sample (dropped silently once the receiver is gone).
    #[inline]
    pub fn record(&self, s: Sample) {
        if !self.sink.open.load(Ordering::Relaxed) {
            return;
        }
        LOCAL_SHARD.with(|local| {
            let mut local = local.borrow_mut();
            match &*local {
                Some((id, shard)) if *id == self.sink.id => lock(shard).push(s),
                _ => {
                    let shard = self.sink.shard_for_this_thread();
                    lock(&shard).push(s);
                    *local = Some((self.sink.id, shard));
                }
            }
        });
    }
}

impl Clone for Recorder {
    fn clone(&self) -> Recorder {
        self.sink.live.fetch_add(1, Ordering::Relaxed);
        Recorder {
            sink: self.sink.clone(),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // AcqRel: the receiver that sees 0 also sees every sample pushed before.
        if self.sink.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.sink.closed.notify_one();
        }
    }
}

/// The collector's end: tells when samples wait and when every recorder is
/// gone.
#[derive(Debug)]
pub struct SampleReceiver {
    sink: Arc<Sink>,
}

impl SampleReceiver {
    /// Waits until samples are buffered (true), or until every `Recorder` is
    /// gone and nothing is left (false). Takes nothing, so it is cancel-safe:
    /// `Stats::lock` counts what waits.
    pub async fn ready(&self) -> bool {
        loop {
            let closed = self.sink.live.load(Ordering::Acquire) == 0;
            if self.sink.pending() {
                return true;
            }
            if closed {
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep(DRAIN_EVERY) => {}
                () = self.sink.closed.notified() => {}
            }
        }
    }
}

/// A run's statistics, fed by its recorders.
///
/// Samples wait in the recorders' buffers until someone takes the lock, and
/// `lock` counts them first. So whoever reads, reports or resets the figures
/// sees every request that finished before that moment, and a reset cuts
/// exactly there: a sample still buffered when a window opens belongs to the
/// window before, not to the new one (the lab compares each window's count
/// with the balancer's and relies on this).
#[derive(Debug)]
pub struct Stats {
    state: Mutex<StatsState>,
    sink: Arc<Sink>,
}

impl Stats {
    /// Statistics fed by the recorders of `rx`'s channel.
    pub fn new(state: StatsState, rx: &SampleReceiver) -> Stats {
        Stats {
            state: Mutex::new(state),
            sink: rx.sink.clone(),
        }
    }

    /// The figures, including every sample recorded so far.
    pub fn lock(&self) -> MutexGuard<'_, StatsState> {
        let mut st = lock(&self.state);
        let mut buf = std::mem::take(&mut st.intake);
        self.sink.drain(&mut buf);
        for s in buf.drain(..) {
            st.record(s);
        }
        st.intake = buf;
        st
    }
}

impl Drop for SampleReceiver {
    fn drop(&mut self) {
        self.sink.open.store(false, Ordering::Relaxed);
        let mut rest = Vec::new();
        self.sink.drain(&mut rest);
    }
}

/// The (method, name) pairs known before the run; `Key::Id` indexes it.
#[derive(Debug, Clone, Default)]
pub struct Names {
    list: Vec<(String, String)>,
}

impl Names {
    /// The id of (method, name), registering it if new.
    pub fn intern(&mut self, method: &str, name: &str) -> u32 {
        if let Some(i) = self.list.iter().position(|(m, n)| m == method && n == name) {
            return i as u32;
        }
        self.list.push((method.to_string(), name.to_string()));
        (self.list.len() - 1) as u32
    }
}

/// The `p` quantile of `h` in ms (0 when empty).
fn ms_at(h: &Histogram<u64>, p: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(p) as f64 / 1000.0
    }
}

fn small_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, entry::MAX_US, 2).expect("static histogram bounds are valid")
}

/// Everything the collector aggregates.
#[derive(Debug)]
pub struct StatsState {
    names: Names,
    /// Entry index for each `Names` id (created on the first sample).
    by_id: Vec<Option<usize>>,
    by_name: HashMap<(String, String), usize>,
    /// Per-endpoint entries, in order of first appearance.
    pub entries: Vec<Entry>,
    /// The aggregate (`Aggregated` row).
    pub total: Entry,
    /// Grouped failures.
    pub failures: Failures,
    /// Responses per status code.
    pub status_codes: BTreeMap<u16, u64>,
    /// One point per second.
    pub history: Vec<HistoryPoint>,
    /// Iterations the open model could not start (total).
    pub dropped_iterations: u64,
    /// This second's latencies (aggregate), corrected and uncorrected.
    second: Histogram<u64>,
    second_raw: Histogram<u64>,
    /// The last closed second's uncorrected latencies (its corrected ones
    /// are `recent.back()`), for `finish` to fold the last partial second in.
    last_raw: Histogram<u64>,
    second_reqs: u64,
    second_fails: u64,
    /// The last seconds' histograms, for the "current" percentiles.
    recent: VecDeque<Histogram<u64>>,
    /// Samples taken from the recorders, before they are counted (kept for
    /// its capacity).
    intake: Vec<Sample>,
}

/// Most history points kept (a day at one per second).
const MAX_HISTORY: usize = 86_400;

impl StatsState {
    /// Empty statistics for a run whose static names are `names`.
    pub fn new(names: Names) -> StatsState {
        StatsState {
            by_id: vec![None; names.list.len()],
            names,
            by_name: HashMap::new(),
            entries: Vec::new(),
            total: Entry::new("", "Aggregated"),
            failures: Failures::default(),
            status_codes: BTreeMap::new(),
            history: Vec::new(),
            dropped_iterations: 0,
            second: small_hist(),
            second_raw: small_hist(),
            last_raw: small_hist(),
            second_reqs: 0,
            second_fails: 0,
            recent: VecDeque::new(),
            intake: Vec::new(),
        }
    }

    /// Forgets all figures (Locust's "reset stats"); names stay known.
    pub fn reset(&mut self) {
        let names = std::mem::take(&mut self.names);
        let intake = std::mem::take(&mut self.intake);
        *self = StatsState::new(names);
        self.intake = intake;
    }

    fn entry_index(&mut self, key: &Key) -> usize {
        match key {
            Key::Id(id) => {
                let id = *id as usize;
                if let Some(Some(i)) = self.by_id.get(id) {
                    return *i;
                }
                let (m, n) = self
                    .names
                    .list
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| ("?".into(), format!("#{id}")));
                let i = self.index_for(m, n);
                if id < self.by_id.len() {
                    self.by_id[id] = Some(i);
                }
                i
            }
            Key::Named(b) => self.index_for(b.0.to_string(), b.1.clone()),
        }
    }

    fn index_for(&mut self, method: String, name: String) -> usize {
        if let Some(i) = self.by_name.get(&(method.clone(), name.clone())) {
            return *i;
        }
        self.entries.push(Entry::new(&method, &name));
        let i = self.entries.len() - 1;
        self.by_name.insert((method, name), i);
        i
    }

    /// Adds one sample.
    pub fn record(&mut self, s: Sample) {
        let i = self.entry_index(&s.key);
        let failed = s.failure.is_some();
        let e = &mut self.entries[i];
        e.record(s.latency_us, s.raw_us, s.content_len, failed);
        if let Some(f) = &s.failure {
            let (m, n) = (e.method.clone(), e.name.clone());
            self.failures
                .add(&m, &n, f, 1, crate::units::unix_ms() / 1000);
        }
        self.total
            .record(s.latency_us, s.raw_us, s.content_len, failed);
        let us = s.latency_us.min(entry::MAX_US);
        self.second.saturating_record(us);
        self.second_raw
            .saturating_record(s.raw_us.min(entry::MAX_US));
        self.second_reqs += 1;
        if failed {
            self.second_fails += 1;
        }
        if s.status != 0 {
            *self.status_codes.entry(s.status).or_insert(0) += 1;
        }
    }

    /// Closes one second: appends a history point and rolls the windows.
    pub fn tick(&mut self, now_unix_ms: u64, user_count: u32, dropped_total: u64) -> HistoryPoint {
        let t = self.total.row(1.0);
        let point = HistoryPoint {
            time: now_unix_ms,
            user_count,
            rps: self.second_reqs as f64,
            fail_per_sec: self.second_fails as f64,
            p50: ms_at(&self.second, 0.5),
            p95: ms_at(&self.second, 0.95),
            p99: ms_at(&self.second, 0.99),
            p99_uncorrected: ms_at(&self.second_raw, 0.99),
            total_requests: t.num_requests,
            total_failures: t.num_failures,
            total_median: t.median_response_time,
            total_avg: t.avg_response_time,
            total_min: t.min_response_time,
            total_max: t.max_response_time,
            total_avg_content: t.avg_content_length,
            dropped: dropped_total.saturating_sub(self.dropped_iterations),
            percentiles: PERCENTILES
                .iter()
                .map(|p| ms_at(&self.second, *p))
                .collect(),
        };
        self.dropped_iterations = dropped_total.max(self.dropped_iterations);
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(point.clone());
        let full = std::mem::replace(&mut self.second, small_hist());
        std::mem::swap(&mut self.second_raw, &mut self.last_raw);
        self.second_raw.reset();
        self.recent.push_back(full);
        if self.recent.len() > entry::WINDOW {
            self.recent.pop_front();
        }
        self.second_reqs = 0;
        self.second_fails = 0;
        for e in &mut self.entries {
            e.tick();
        }
        self.total.tick();
        point
    }

    /// Closes the last, partial second at the end of the run. A partial
    /// second in which nothing happened adds no point; one that falls in the
    /// same wall-clock second as the previous point is folded into it
    /// (counts added, percentiles of both), so no two points (CSV rows,
    /// whose timestamps are whole seconds) share a timestamp.
    pub fn finish(&mut self, now_unix_ms: u64, user_count: u32, dropped_total: u64) {
        let dropped = dropped_total.saturating_sub(self.dropped_iterations);
        if self.second_reqs == 0 && dropped == 0 {
            return;
        }
        let same_second = self
            .history
            .last()
            .is_some_and(|p| p.time / 1000 == now_unix_ms / 1000);
        let Some(prev) = self.recent.back_mut().filter(|_| same_second) else {
            self.tick(now_unix_ms, user_count, dropped_total);
            return;
        };
        // Same bounds on both sides, so adding cannot fail.
        let _ = prev.add(&self.second);
        let _ = self.last_raw.add(&self.second_raw);
        let t = self.total.row(1.0);
        let (hist, raw) = (&*prev, &self.last_raw);
        if let Some(point) = self.history.last_mut() {
            point.time = now_unix_ms;
            point.rps += self.second_reqs as f64;
            point.fail_per_sec += self.second_fails as f64;
            point.p50 = ms_at(hist, 0.5);
            point.p95 = ms_at(hist, 0.95);
            point.p99 = ms_at(hist, 0.99);
            point.p99_uncorrected = ms_at(raw, 0.99);
            point.total_requests = t.num_requests;
            point.total_failures = t.num_failures;
            point.total_median = t.median_response_time;
            point.total_avg = t.avg_response_time;
            point.total_min = t.min_response_time;
            point.total_max = t.max_response_time;
            point.total_avg_content = t.avg_content_length;
            point.dropped += dropped;
            point.percentiles = PERCENTILES.iter().map(|p| ms_at(hist, *p)).collect();
        }
        self.dropped_iterations = dropped_total.max(self.dropped_iterations);
        self.second.reset();
        self.second_raw.reset();
        self.second_reqs = 0;
        self.second_fails = 0;
    }

    /// The aggregate's percentile `p` over the last 10 seconds (Locust's "current").
    pub fn current_percentile(&self, p: f64) -> f64 {
        let mut h = small_hist();
        for r in &self.recent {
            let _ = h.add(r);
        }
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(p) as f64 / 1000.0
        }
    }

    /// The per-endpoint rows sorted by (name, method), then the `Aggregated` row.
    pub fn rows(&self, elapsed_s: f64) -> Vec<StatsRow> {
        let mut idx: Vec<usize> = (0..self.entries.len()).collect();
        idx.sort_by(|a, b| {
            let (x, y) = (&self.entries[*a], &self.entries[*b]);
            x.name.cmp(&y.name).then_with(|| x.method.cmp(&y.method))
        });
        let mut rows: Vec<StatsRow> = idx
            .iter()
            .map(|i| self.entries[*i].row(elapsed_s))
            .collect();
        rows.push(self.total.row(elapsed_s));
        rows
    }

    /// The whole-run latency histogram in log-spaced buckets: `(upper bound ms, count)`.
    pub fn histogram_buckets(&self) -> Vec<(f64, u64)> {
        buckets(&self.total.hist)
    }
}

/// Log-spaced buckets (4 per power of ten, from 0.1 ms) of a µs histogram:
/// `(upper bound ms, count)`; empty buckets are skipped.
pub fn buckets(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut counts: BTreeMap<i32, u64> = BTreeMap::new();
    for v in h.iter_recorded() {
        let ms = h.median_equivalent(v.value_iterated_to()) as f64 / 1000.0;
        // Bucket k holds (0.1·10^((k-1)/4), 0.1·10^(k/4)] ms.
        let k = if ms <= 0.1 {
            0
        } else {
            ((ms / 0.1).log10() * 4.0).ceil() as i32
        };
        *counts.entry(k).or_insert(0) += v.count_at_value();
    }
    counts
        .into_iter()
        .map(|(k, c)| {
            let upper = 0.1 * 10f64.powf(f64::from(k) / 4.0);
            ((upper * 1000.0).round() / 1000.0, c)
        })
        .collect()
}

/// A sample for unit tests: `ms` of latency, a 2-byte body, 200 or a 503 failure.
#[cfg(test)]
pub(crate) fn sample(key: Key, ms: u64, fail: bool) -> Sample {
    Sample {
        key,
        latency_us: ms * 1000,
        raw_us: ms * 1000,
        content_len: 2,
        status: if fail { 503 } else { 200 },
        failure: fail.then(|| {
            Box::new(Failure {
                kind: FailureKind::Status,
                message: "HTTP 503".into(),
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_rows_history_and_codes() {
        let mut names = Names::default();
        let b = names.intern("GET", "/b");
        let a = names.intern("GET", "/a");
        assert_eq!(names.intern("GET", "/b"), b);
        let mut st = StatsState::new(names);
        st.record(sample(Key::Id(b), 10, false));
        st.record(sample(Key::Id(a), 20, true));
        st.record(sample(
            Key::Named(Box::new((http::Method::POST, "/c/1".into()))),
            30,
            false,
        ));
        let p = st.tick(1000, 3, 0);
        assert_eq!(p.rps, 3.0);
        assert_eq!(p.fail_per_sec, 1.0);
        let rows = st.rows(1.0);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["/a", "/b", "/c/1", "Aggregated"]);
        assert_eq!(rows[3].num_requests, 3);
        assert_eq!(st.status_codes.get(&503), Some(&1));
        assert_eq!(st.failures.rows()[0].name, "/a");
        let total: u64 = st.histogram_buckets().iter().map(|b| b.1).sum();
        assert_eq!(total, 3);
        st.reset();
        assert_eq!(st.rows(1.0).len(), 1);
    }

    /// The run's last partial second never repeats the previous point's
    /// (whole-second) timestamp: it is folded in, or left out when empty.
    #[test]
    fn the_last_partial_second_has_its_own_timestamp_or_joins_the_previous() {
        let mut names = Names::default();
        let a = names.intern("GET", "/a");
        let mut st = StatsState::new(names);
        for _ in 0..10 {
            st.record(sample(Key::Id(a), 10, false));
        }
        st.tick(5_000, 4, 0);
        // Nothing happened after the last tick: no point.
        st.finish(5_020, 0, 0);
        assert_eq!(st.history.len(), 1);
        // Requests in the same wall-clock second: folded into the last point.
        st.record(sample(Key::Id(a), 50, true));
        st.finish(5_400, 0, 2);
        assert_eq!(st.history.len(), 1);
        let p = &st.history[0];
        assert_eq!((p.time, p.user_count), (5_400, 4));
        assert_eq!((p.rps, p.fail_per_sec, p.dropped), (11.0, 1.0, 2));
        assert_eq!(p.total_requests, 11);
        assert!(p.p99 >= 49.0 && p.p50 < 11.0, "{p:?}");
        assert!(p.p99_uncorrected >= 49.0, "{p:?}");
        // In a later second: a point of its own.
        st.record(sample(Key::Id(a), 10, false));
        st.finish(6_300, 0, 2);
        let times: Vec<u64> = st.history.iter().map(|p| p.time).collect();
        assert_eq!(times, [5_400, 6_300]);
        assert_eq!(st.history[1].rps, 1.0);
    }

    /// A window must not start with requests that finished before it, even
    /// when the collector has not yet taken them from the buffers.
    #[test]
    fn lock_counts_buffered_samples_and_a_reset_cuts_exactly() {
        let mut names = Names::default();
        let a = names.intern("GET", "/a");
        let (recorder, rx) = Recorder::channel();
        let stats = Stats::new(StatsState::new(names), &rx);
        for _ in 0..3 {
            recorder.record(sample(Key::Id(a), 5, false));
        }
        assert_eq!(
            stats.lock().total.num_requests,
            3,
            "read without a collector"
        );
        recorder.record(sample(Key::Id(a), 5, false));
        // Recorded before the reset, never drained by anyone: old window.
        stats.lock().reset();
        assert_eq!(stats.lock().total.num_requests, 0);
        // Recorded on another thread: its own buffer.
        let r2 = recorder.clone();
        std::thread::spawn(move || r2.record(sample(Key::Id(a), 5, true)))
            .join()
            .unwrap();
        recorder.record(sample(Key::Id(a), 5, false));
        let st = stats.lock();
        assert_eq!(st.total.num_requests, 2);
        assert_eq!(st.total.num_failures, 1);
    }
}
