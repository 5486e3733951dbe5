//! The live handle on a load test: start, edit, stop, read.
//!
//! `Controller` is what both the CLI (`run_test`) and the web dashboard drive.
//! A run is a set of tasks: the load driver (closed-model spawner or
//! open-model arrival scheduler, in `users`), the users themselves, and one
//! collector. Users record samples into per-thread buffers that the
//! collector empties into the statistics every few milliseconds (and every
//! read or reset of the statistics does too); once a second the collector
//! closes a history point, checks loadgen's own health
//! (`selfcheck`) and publishes a fresh `Snapshot` on a `watch` channel, which
//! is all the dashboard and the terminal view read. Stopping cancels one
//! token; the run is over when every user has returned its recorder and the
//! collector has counted the last samples, so a stopped run's figures are
//! final.
//!
//! The run's measured time (the divisor of every rate) ends when it is
//! stopped (run time, stop, stages or iteration budget done), not when the
//! last `on_stop` returns, and starts again at a statistics reset, as
//! Locust's does. Requests still in flight at the stop have no response and
//! are not in the figures; they are counted, and a warning says so when one
//! of them had waited longer than any recorded response.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::plan::TestPlan;
use crate::report::{ReportMeta, RunReport};
pub(crate) use crate::run::RunShared;
pub use crate::snapshot::{RunState, Snapshot};
use crate::stats::{Recorder, SampleReceiver, Stats, StatsState};
use crate::units::{lock, unix_ms};
use crate::users;

/// What the dashboard's "Start" form sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StartRequest {
    /// Users to reach.
    pub users: u32,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Target URL (`http://...`).
    pub host: String,
    /// Stop after this long: a number of seconds or a string like `"1m30s"`; empty or absent = until stopped.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub run_time: Option<Duration>,
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Secs(s)) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(Raw::Secs(0.0)) => Ok(None),
        Some(Raw::Secs(s)) => Err(serde::de::Error::custom(format!(
            "run_time {s} must be a positive number of seconds"
        ))),
        Some(Raw::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Raw::Text(t)) => crate::units::parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Why the controller refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The parameters are invalid; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A test is already running.
    #[error("a test is already running; stop it first")]
    AlreadyRunning,
    /// Editing needs a running test.
    #[error("no test is running")]
    NotRunning,
    /// `start` was called outside a Tokio runtime.
    #[error("the controller needs a Tokio runtime")]
    NoRuntime,
}

struct Inner {
    base: TestPlan,
    runtime: Option<tokio::runtime::Handle>,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    current: Mutex<Option<Arc<RunShared>>>,
    /// `true` once the current run has fully stopped.
    done_tx: watch::Sender<bool>,
}

/// Live handle on one load test: the dashboard and the CLI drive runs through it.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("host", &self.inner.base.host)
            .finish()
    }
}

impl Controller {
    /// An idle controller; `base` supplies everything `start` does not set.
    pub fn new(base: TestPlan) -> Controller {
        let (snap_tx, _) = watch::channel(Arc::new(Snapshot::idle(&base.host)));
        let (done_tx, _) = watch::channel(true);
        Controller {
            inner: Arc::new(Inner {
                base,
                runtime: tokio::runtime::Handle::try_current().ok(),
                snap_tx,
                current: Mutex::new(None),
                done_tx,
            }),
        }
    }

    /// The plan runs start from.
    pub fn base_plan(&self) -> &TestPlan {
        &self.inner.base
    }

    /// Starts a run with the base plan's settings and `req`'s users, rate, host and time.
    pub fn start(&self, req: StartRequest) -> Result<(), ControlError> {
        if req.users < 1 {
            return Err(ControlError::Invalid("users must be at least 1".into()));
        }
        if req.spawn_rate.is_nan() || req.spawn_rate <= 0.0 {
            return Err(ControlError::Invalid("spawn rate must be above 0".into()));
        }
        crate::units::parse_host(&req.host).map_err(ControlError::Invalid)?;
        let mut plan = self.inner.base.clone();
        plan.users = req.users;
        plan.spawn_rate = req.spawn_rate;
        plan.host = req.host;
        plan.run_time = req.run_time;
        self.start_plan(plan)
    }

    /// Starts a run of exactly `plan` (used by `run_test`).
    pub fn start_plan(&self, plan: TestPlan) -> Result<(), ControlError> {
        let target = plan.validate().map_err(ControlError::Invalid)?;
        crate::selfcheck::raise_open_files_limit(u64::from(plan.peak_concurrency()));
        let rt = self
            .inner
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
            .ok_or(ControlError::NoRuntime)?;
        let mut current = lock(&self.inner.current);
        if let Some(run) = current.as_ref() {
            if *lock(&run.state) != RunState::Stopped {
                return Err(ControlError::AlreadyRunning);
            }
        }
        let (compiled, names) = users::compile(&plan.scenario, &target.base_path);
        let users_target = plan.users;
        let spawn_rate = plan.spawn_rate;
        let (recorder, rx) = Recorder::channel();
        let (started, started_unix_ms) = (Instant::now(), unix_ms());
        let shared = Arc::new(RunShared {
            target,
            started,
            stats: Stats::new(StatsState::new(names), &rx),
            state: Mutex::new(RunState::Spawning),
            target_users: AtomicU32::new(users_target),
            spawn_rate_bits: AtomicU64::new(spawn_rate.to_bits()),
            retarget: Notify::new(),
            user_count: AtomicU32::new(0),
            max_users: AtomicU32::new(0),
            dropped: AtomicU64::new(0),
            lag_us: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            ended: Mutex::new(None),
            window: Mutex::new((started, started_unix_ms)),
            retick: Notify::new(),
            users_at_stop: AtomicU32::new(0),
            abandoned: AtomicU64::new(0),
            abandoned_max_us: AtomicU64::new(0),
            warnings: Mutex::new(Vec::new()),
            upstreams: Mutex::new(None),
            plan,
        });
        *current = Some(shared.clone());
        drop(current);
        self.inner.done_tx.send_replace(false);
        let _ = self.inner.snap_tx.send_replace(Arc::new(shared.snapshot()));
        let inner = self.inner.clone();
        rt.spawn(drive(shared, compiled, inner, recorder, rx));
        Ok(())
    }

    /// Changes the number of users of the running test (Locust's "Edit").
    pub fn set_users(&self, users: u32, spawn_rate: f64) -> Result<(), ControlError> {
        if spawn_rate.is_nan() || spawn_rate <= 0.0 {
            return Err(ControlError::Invalid("spawn rate must be above 0".into()));
        }
        let run = self.running().ok_or(ControlError::NotRunning)?;
        if run.plan.arrival.is_some() || !run.plan.stages.is_empty() {
            return Err(ControlError::Invalid(
                "this run follows an arrival rate or stages; its users cannot be edited".into(),
            ));
        }
        run.spawn_rate_bits
            .store(spawn_rate.to_bits(), Ordering::Relaxed);
        run.target_users.store(users, Ordering::Relaxed);
        run.set_state(RunState::Spawning);
        run.retarget.notify_one();
        Ok(())
    }

    fn running(&self) -> Option<Arc<RunShared>> {
        lock(&self.inner.current)
            .as_ref()
            .filter(|r| *lock(&r.state) != RunState::Stopped)
            .cloned()
    }

    /// Stops the users; the statistics stay for reading and download.
    pub fn stop(&self) {
        if let Some(run) = lock(&self.inner.current).as_ref() {
            run.stop_now();
        }
    }

    /// Forgets the figures collected so far (the run goes on); rates are
    /// from now on divided by the time since the reset (Locust's rule), and
    /// the per-second history restarts its seconds here.
    pub fn reset_stats(&self) {
        if let Some(run) = lock(&self.inner.current).as_ref() {
            run.stats.lock().reset();
            *lock(&run.window) = (Instant::now(), unix_ms());
            run.retick.notify_one();
            lock(&run.warnings).clear();
            run.dropped.store(0, Ordering::Relaxed);
            run.abandoned.store(0, Ordering::Relaxed);
            run.abandoned_max_us.store(0, Ordering::Relaxed);
            let _ = self.inner.snap_tx.send_replace(Arc::new(run.snapshot()));
        }
    }

    /// The latest snapshot (cheap).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snap_tx.borrow().clone()
    }

    /// Snapshots as they are published: about once a second while running, and on every state change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snap_tx.subscribe()
    }

    /// The full report of the current (or last) run so far.
    pub fn report(&self) -> RunReport {
        match lock(&self.inner.current).as_ref() {
            Some(run) => run.report(),
            None => {
                let st = StatsState::new(Default::default());
                RunReport::from_state(
                    &st,
                    ReportMeta {
                        scenario: self.inner.base.scenario.name.clone(),
                        host: self.inner.base.host.clone(),
                        model: "closed".into(),
                        ..ReportMeta::default()
                    },
                )
            }
        }
    }

    /// Waits until the current run (if any) has completely stopped.
    pub async fn wait(&self) {
        let mut rx = self.inner.done_tx.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}

/// Runs one test to its end: load driver, timer, collector.
async fn drive(
    shared: Arc<RunShared>,
    compiled: Arc<users::Compiled>,
    inner: Arc<Inner>,
    recorder: Recorder,
    rx: SampleReceiver,
) {
    let collector = tokio::spawn(collect(shared.clone(), rx, inner.snap_tx.clone()));
    let poller = shared
        .plan
        .balancer_status
        .clone()
        .map(|url| tokio::spawn(crate::selfcheck::poll_balancer(shared.clone(), url)));
    if let Some(rt) = shared.plan.run_time {
        let s = shared.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(rt) => s.stop_now(),
                _ = s.cancel.cancelled() => {}
            }
        });
    }
    if shared.plan.arrival.is_some() {
        users::arrival::drive(shared.clone(), compiled, recorder).await;
    } else {
        users::spawner::drive(shared.clone(), compiled, recorder).await;
    }
    // Every user has returned: no more samples will come.
    shared.stop_now();
    let _ = collector.await;
    shared.warn_abandoned();
    if let Some(p) = poller {
        p.abort();
    }
    *lock(&shared.state) = RunState::Stopped;
    let _ = inner.snap_tx.send_replace(Arc::new(shared.snapshot()));
    inner.done_tx.send_replace(true);
}

/// Counts samples as they come; ticks once a second.
async fn collect(
    shared: Arc<RunShared>,
    rx: SampleReceiver,
    snap_tx: watch::Sender<Arc<Snapshot>>,
) {
    let start = tokio::time::Instant::now();
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut health = crate::selfcheck::SelfCheck::new();
    let mut last_state = *lock(&shared.state);
    loop {
        tokio::select! {
            more = rx.ready() => {
                if !more {
                    break;
                }
                // Taking the lock counts the waiting samples.
                drop(shared.stats.lock());
            }
            () = shared.retick.notified() => {
                // A reset: the next second starts now.
                ticker.reset();
            }
            due = ticker.tick() => {
                let users = shared.user_count.load(Ordering::Relaxed);
                let dropped = shared.dropped.load(Ordering::Relaxed);
                shared.stats.lock().tick(unix_ms(), users, dropped);
                let lag = Duration::from_micros(shared.lag_us.swap(0, Ordering::Relaxed));
                for w in health.check(lag, due.elapsed()) {
                    shared.warn(w);
                }
                let _ = snap_tx.send_replace(Arc::new(shared.snapshot()));
                last_state = *lock(&shared.state);
            }
        }
        let state = *lock(&shared.state);
        if state != last_state {
            last_state = state;
            let _ = snap_tx.send_replace(Arc::new(shared.snapshot()));
        }
    }
    // The final partial second.
    let users = shared.users_at_stop.load(Ordering::Relaxed);
    let dropped = shared.dropped.load(Ordering::Relaxed);
    shared.stats.lock().finish(unix_ms(), users, dropped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_request_accepts_seconds_and_text() {
        let r: StartRequest = serde_json::from_str(
            r#"{"users":3,"spawn_rate":1.5,"host":"http://x","run_time":"1m"}"#,
        )
        .unwrap();
        assert_eq!(r.run_time, Some(Duration::from_secs(60)));
        let r: StartRequest =
            serde_json::from_str(r#"{"users":3,"spawn_rate":1,"host":"http://x","run_time":30}"#)
                .unwrap();
        assert_eq!(r.run_time, Some(Duration::from_secs(30)));
        let r: StartRequest =
            serde_json::from_str(r#"{"users":3,"spawn_rate":1,"host":"http://x","run_time":""}"#)
                .unwrap();
        assert_eq!(r.run_time, None);
        let r: StartRequest =
            serde_json::from_str(r#"{"users":3,"spawn_rate":1,"host":"http://x"}"#).unwrap();
        assert_eq!(r.run_time, None);
        assert!(serde_json::from_str::<StartRequest>(
            r#"{"users":3,"spawn_rate":1,"host":"http://x","run_time":"soon"}"#
        )
        .is_err());
    }

    #[tokio::test]
    async fn start_validates() {
        let c = Controller::new(TestPlan::new(
            "http://127.0.0.1:9",
            crate::scenario::Scenario::single_get("/").unwrap(),
        ));
        let bad = |users, rate: f64, host: &str| StartRequest {
            users,
            spawn_rate: rate,
            host: host.into(),
            run_time: None,
        };
        assert!(matches!(
            c.start(bad(0, 1.0, "http://x")),
            Err(ControlError::Invalid(_))
        ));
        assert!(matches!(
            c.start(bad(1, 0.0, "http://x")),
            Err(ControlError::Invalid(_))
        ));
        assert!(matches!(
            c.start(bad(1, 1.0, "ftp://x")),
            Err(ControlError::Invalid(_))
        ));
        assert!(matches!(c.set_users(3, 1.0), Err(ControlError::NotRunning)));
        assert_eq!(c.snapshot().state, RunState::Ready);
    }
}
