//! The state shared by the tasks of one run: the load drivers and their
//! users write counters into it, the collector and the controller read it.
//!
//! It lives below both the controller and the users (`users`, `selfcheck`),
//! so that the controller drives them and they only see this, never the
//! controller.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::plan::TestPlan;
use crate::report::{ReportMeta, RunReport};
use crate::snapshot::{RunState, Snapshot, SNAPSHOT_HISTORY};
use crate::stats::Stats;
use crate::units::{lock, Target};

/// State shared by the tasks of one run.
pub(crate) struct RunShared {
    /// The plan of this run (this segment's share already applied by the drivers).
    pub plan: TestPlan,
    /// Target address parts.
    pub target: Target,
    /// Monotonic start.
    pub started: Instant,
    /// The collected statistics.
    pub stats: Stats,
    /// Run state.
    pub state: Mutex<RunState>,
    /// Users asked for (closed model; changed by `set_users`).
    pub target_users: AtomicU32,
    /// Spawn rate in users/s, as f64 bits (changed by `set_users`).
    pub spawn_rate_bits: AtomicU64,
    /// Wakes the spawner when the target changes.
    pub retarget: Notify,
    /// Users running now.
    pub user_count: AtomicU32,
    /// Most users at once.
    pub max_users: AtomicU32,
    /// Open-model arrivals that found no free user.
    pub dropped: AtomicU64,
    /// Largest send lag seen since the last tick, µs.
    pub lag_us: AtomicU64,
    /// Cancelled to stop the run (through `stop_now`).
    pub cancel: CancellationToken,
    /// When the run was stopped: the end of its measured time.
    pub ended: Mutex<Option<Instant>>,
    /// Start of the measured time: the run's start, or the last statistics
    /// reset (monotonic, and Unix ms).
    pub window: Mutex<(Instant, u64)>,
    /// Wakes the collector to restart its one-second ticks at a reset.
    pub retick: Notify,
    /// Users running when the run was stopped, or when the iteration budget
    /// ran out (for the last history point).
    pub users_at_stop: AtomicU32,
    /// Requests abandoned in flight when their user was stopped.
    pub abandoned: AtomicU64,
    /// The longest an abandoned request had been waiting, µs.
    pub abandoned_max_us: AtomicU64,
    /// Warnings so far (deduplicated).
    pub warnings: Mutex<Vec<String>>,
    /// The last balancer status.
    pub upstreams: Mutex<Option<serde_json::Value>>,
}

impl RunShared {
    pub(crate) fn spawn_rate(&self) -> f64 {
        f64::from_bits(self.spawn_rate_bits.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, s: RunState) {
        let mut st = lock(&self.state);
        if *st != RunState::Stopped {
            *st = s;
        }
    }

    /// Stops the run: its measured time ends now (if not already), and every
    /// user is told to stop.
    pub(crate) fn stop_now(&self) {
        {
            let mut ended = lock(&self.ended);
            if ended.is_none() {
                *ended = Some(Instant::now());
                self.users_at_stop
                    .fetch_max(self.user_count.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        self.cancel.cancel();
    }

    /// Counts a request abandoned after waiting `age` for its response.
    pub(crate) fn abandon(&self, age: Duration) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
        self.abandoned_max_us
            .fetch_max(age.as_micros() as u64, Ordering::Relaxed);
    }

    /// Warns about the requests abandoned at the stop when leaving them out
    /// hides something: one of them had waited longer than the slowest
    /// recorded response (a hung server or `on_stop`: the figures alone
    /// would look fine). The usual handful cut short by the stop are not
    /// worth a warning.
    pub(crate) fn warn_abandoned(&self) {
        let n = self.abandoned.load(Ordering::Relaxed);
        let oldest_us = self.abandoned_max_us.load(Ordering::Relaxed);
        let slowest_us = {
            let st = self.stats.lock();
            if st.total.num_requests == 0 {
                0
            } else {
                st.total.hist.max()
            }
        };
        if n == 0 || oldest_us <= slowest_us {
            return;
        }
        let age = format!("{:.1} s", oldest_us as f64 / 1e6);
        let (what, oldest) = if n == 1 {
            ("1 request was".to_string(), format!("for {age}"))
        } else {
            (
                format!("{n} requests were"),
                format!("the oldest for {age}"),
            )
        };
        self.warn(format!(
            "{what} still waiting for a response when the run stopped ({oldest}, longer than any recorded response); abandoned requests are not in the figures"
        ));
    }

    pub(crate) fn warn(&self, w: String) {
        let mut ws = lock(&self.warnings);
        if !ws.contains(&w) {
            tracing::warn!("{w}");
            ws.push(w);
        }
    }

    /// The end of the measured time so far: the stop, or now.
    pub(crate) fn end(&self) -> Instant {
        lock(&self.ended).unwrap_or_else(Instant::now)
    }

    /// Time since the run started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.end().saturating_duration_since(self.started)
    }

    /// The measured time: since the start or the last reset. Rates divide by it.
    pub(crate) fn measured(&self) -> Duration {
        let (from, _) = *lock(&self.window);
        self.end().saturating_duration_since(from)
    }

    pub(crate) fn model(&self) -> &'static str {
        if self.plan.arrival.is_some() {
            "open"
        } else {
            "closed"
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let elapsed = self.elapsed().as_secs_f64();
        let measured = self.measured().as_secs_f64();
        let st = self.stats.lock();
        let stats = st.rows(measured);
        let total = stats.last().cloned();
        let from = st.history.len().saturating_sub(SNAPSHOT_HISTORY);
        Snapshot {
            state: *lock(&self.state),
            host: self.plan.host.clone(),
            user_count: self.user_count.load(Ordering::Relaxed),
            target_users: self.target_users.load(Ordering::Relaxed),
            total_rps: total.as_ref().map(|t| t.current_rps).unwrap_or(0.0),
            fail_ratio: total.as_ref().map(|t| t.fail_ratio).unwrap_or(0.0),
            current_response_time_p50: st.current_percentile(0.5),
            current_response_time_p95: st.current_percentile(0.95),
            failures: st.failures.rows(),
            status_codes: st.status_codes.iter().map(|(k, v)| (*k, *v)).collect(),
            history: st.history[from..].to_vec(),
            histogram: st.histogram_buckets(),
            upstreams: lock(&self.upstreams).clone(),
            warnings: lock(&self.warnings).clone(),
            dropped_iterations: self.dropped.load(Ordering::Relaxed),
            elapsed_s: elapsed,
            stats,
        }
    }

    pub(crate) fn report(&self) -> RunReport {
        let window_unix_ms = lock(&self.window).1;
        let meta = ReportMeta {
            scenario: self.plan.scenario.name.clone(),
            host: self.plan.host.clone(),
            model: self.model().to_string(),
            segment: self
                .plan
                .segment
                .map(|s| format!("{}/{}", s.index + 1, s.count)),
            // The measured window: after a reset, from the reset.
            started_at: window_unix_ms,
            duration_s: self.measured().as_secs_f64(),
            max_users: self.max_users.load(Ordering::Relaxed),
        };
        let st = self.stats.lock();
        let mut r = RunReport::from_state(&st, meta);
        r.warnings = lock(&self.warnings).clone();
        r.upstreams = lock(&self.upstreams).clone();
        r.dropped_iterations = self.dropped.load(Ordering::Relaxed);
        r.thresholds = self
            .plan
            .thresholds
            .iter()
            .map(|t| t.evaluate(&r))
            .collect();
        r
    }
}
