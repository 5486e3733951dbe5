//! The closed model: N users with think time, started at a spawn rate.
//!
//! The spawner moves the number of running users towards a target — the
//! `-u` value (changed live by `Controller::set_users`) or the value of the
//! `--stages` ramp at this moment — starting at most `spawn_rate` users per
//! second and stopping surplus users at once: first those still trying their
//! `on_start` (a user whose login keeps failing holds nothing worth keeping,
//! and stopping it first leaves a shrunk run with logged-in users rather than
//! a queue of retries from an overload that is over), then the newest. Each user runs
//! `on_start`, then iterations separated by its wait time, until cancelled or
//! until the shared iteration budget (`--iterations`) is spent.
//!
//! With `constant_pacing`/`constant_throughput` an iteration is *due* at a
//! fixed schedule; when the previous one overran, the next one starts late
//! and its latency is measured from when it was due. One that starts on
//! time after a sleep is measured from its send (the timer's own lateness
//! is loadgen's, shown as send lag, not the server's).
//!
//! A run with `--iterations` ends the moment the last iteration finishes:
//! each user leaving its task loop wakes the spawner.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_cancel, Compiled, User};
use crate::endpoint::Endpoint;
use crate::plan::{ramp_at, TestPlan};
use crate::run::RunShared;
use crate::scenario::WaitTime;
use crate::snapshot::RunState;
use crate::stats::Recorder;

struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
    /// Set once the user's `on_start` has succeeded.
    started: Arc<AtomicBool>,
}

/// Stops the users beyond the first `keep`: those whose `on_start` has not
/// succeeded go first, then the newest (the order is otherwise kept).
fn stop_surplus(users: &mut Vec<Running>, keep: usize) {
    // A stable sort: started users (false) before the others, each in spawn order.
    users.sort_by_key(|u| !u.started.load(Ordering::Acquire));
    for u in users.drain(keep.min(users.len())..) {
        u.cancel.cancel();
    }
}

/// The closed model's moving parts: what every new user is made of, and the
/// users running now.
struct Spawner {
    shared: Arc<RunShared>,
    compiled: Arc<Compiled>,
    endpoint: Arc<Endpoint>,
    recorder: Recorder,
    /// The iteration budget left (this segment's share), if any.
    iterations: Option<Arc<AtomicI64>>,
    /// Users still in their task loop (not yet stopping): with an iteration
    /// budget, the run is over when it is spent and this reaches 0.
    in_loop: Arc<AtomicUsize>,
    users: Vec<Running>,
    spawned: u64,
}

impl Spawner {
    /// Starts `n` users; false when a stop came in the middle.
    async fn spawn(&mut self, n: usize) -> bool {
        let seg = self.shared.plan.segment;
        for i in 0..n {
            let global = seg.map_or(self.spawned, |s| s.global(self.spawned));
            self.spawned += 1;
            let cancel = self.shared.cancel.child_token();
            let user = User::new(
                global,
                self.compiled.clone(),
                self.endpoint.clone(),
                self.recorder.clone(),
                self.shared.clone(),
            );
            self.in_loop.fetch_add(1, Ordering::AcqRel);
            let started = Arc::new(AtomicBool::new(false));
            let handle = tokio::spawn(run_user(
                user,
                self.shared.clone(),
                UserSignals {
                    cancel: cancel.clone(),
                    started: started.clone(),
                },
                self.iterations.clone(),
                self.in_loop.clone(),
            ));
            self.users.push(Running {
                cancel,
                handle,
                started,
            });
            if i % 1024 == 1023 {
                tokio::task::yield_now().await;
                // `-u 4000000000` at once must still notice a stop.
                if self.shared.cancel.is_cancelled() {
                    return false;
                }
            }
        }
        true
    }

    /// Whether the run is over: its iteration budget spent and every user
    /// out of its task loop.
    fn budget_done(&self) -> bool {
        let spent = self
            .iterations
            .as_ref()
            .is_some_and(|it| it.load(Ordering::Relaxed) <= 0);
        spent && self.in_loop.load(Ordering::Acquire) == 0
    }

    fn budget_left(&self) -> bool {
        self.iterations
            .as_ref()
            .is_none_or(|it| it.load(Ordering::Relaxed) > 0)
    }

    /// The users wanted now: `-u` (live) or the stages' value, this segment's share.
    fn target(&self, elapsed: Duration) -> usize {
        let plan = &self.shared.plan;
        let wanted_total: u64 = if plan.stages.is_empty() {
            u64::from(self.shared.target_users.load(Ordering::Relaxed))
        } else {
            ramp_at(0.0, &plan.stages, elapsed).round().max(0.0) as u64
        };
        plan.segment.map_or(wanted_total, |s| s.share(wanted_total)) as usize
    }
}

/// How long to sleep before looking again: long when settled, one spawn
/// interval while spawning, never past the end of the stages.
fn tick_length(plan: &TestPlan, settled: bool, rate: f64, left: Option<Duration>) -> Duration {
    let tick = if settled && plan.stages.is_empty() {
        Duration::from_millis(200)
    } else if rate.is_finite() && rate > 0.0 {
        Duration::from_secs_f64((1.0 / rate).clamp(0.001, 0.1))
    } else {
        Duration::from_millis(10)
    };
    left.map_or(tick, |l| tick.min(l))
}

/// Runs the closed model until the run is cancelled or the iterations are spent.
pub(crate) async fn drive(shared: Arc<RunShared>, compiled: Arc<Compiled>, recorder: Recorder) {
    let endpoint = Arc::new(Endpoint::resolve(&shared.target.authority).await);
    let plan = &shared.plan;
    let seg = plan.segment;
    let iterations = plan.iterations.map(|n| {
        let share = seg.map_or(n, |s| s.share(n));
        Arc::new(AtomicI64::new(share as i64))
    });
    let stages_end = (!plan.stages.is_empty() && plan.run_time.is_none())
        .then(|| TestPlan::stages_duration(&plan.stages));
    let seg_count = f64::from(seg.map_or(1, |s| s.count));
    let mut sp = Spawner {
        shared: shared.clone(),
        compiled,
        endpoint,
        recorder,
        iterations,
        in_loop: Arc::new(AtomicUsize::new(0)),
        users: Vec::new(),
        spawned: 0,
    };
    let start = Instant::now();
    // Like Locust, the first user starts at once, the next ones 1/rate apart.
    let mut credit = 1.0f64;
    let mut last = Instant::now();
    loop {
        if shared.cancel.is_cancelled() {
            break;
        }
        sp.users.retain(|u| !u.handle.is_finished());
        if sp.budget_done() {
            break;
        }
        let elapsed = start.elapsed();
        if stages_end.is_some_and(|end| elapsed >= end) {
            break;
        }
        let target = sp.target(elapsed);
        let rate = shared.spawn_rate() / seg_count;
        let now = Instant::now();
        let dt = (now - last).as_secs_f64();
        last = now;
        let running = sp.users.len();
        if running < target && sp.budget_left() {
            let missing = target - running;
            let n = if rate.is_infinite() {
                missing
            } else {
                credit = (credit + rate * dt).min(missing as f64 + 1.0);
                (credit.floor() as usize).min(missing)
            };
            if !rate.is_infinite() {
                credit -= n as f64;
            }
            if !sp.spawn(n).await {
                break;
            }
        } else if running > target {
            stop_surplus(&mut sp.users, target);
            credit = 0.0;
        } else {
            credit = 0.0;
        }
        let settled = sp.users.len() == target;
        shared.set_state(if settled {
            RunState::Running
        } else {
            RunState::Spawning
        });
        // Wake exactly at the end of the stages, so the run lasts just them.
        let left = stages_end.map(|end| end.saturating_sub(start.elapsed()));
        let tick = tick_length(plan, settled, rate, left);
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = shared.retarget.notified() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
    let users = std::mem::take(&mut sp.users);
    drop(sp);
    // The run's measured time ends here; users still get their on_stop.
    shared.stop_now();
    for u in users {
        let _ = u.handle.await;
    }
}

/// Takes one iteration from the budget, if there is one; false when it is spent.
fn take_iteration(iterations: &Option<Arc<AtomicI64>>) -> bool {
    iterations
        .as_ref()
        .is_none_or(|it| it.fetch_sub(1, Ordering::Relaxed) > 0)
}

/// What a running user and its spawner share: the stop, and whether its
/// `on_start` has succeeded.
struct UserSignals {
    cancel: CancellationToken,
    started: Arc<AtomicBool>,
}

/// One closed-model user from start to stop.
async fn run_user(
    mut user: User,
    shared: Arc<RunShared>,
    signals: UserSignals,
    iterations: Option<Arc<AtomicI64>>,
    in_loop: Arc<AtomicUsize>,
) {
    let UserSignals {
        cancel,
        started: started_flag,
    } = signals;
    let n = shared.user_count.fetch_add(1, Ordering::Relaxed) + 1;
    shared.max_users.fetch_max(n, Ordering::Relaxed);
    let pacing = match user.wait_time() {
        WaitTime::ConstantPacing(s) => Some(Duration::from_secs_f64(s)),
        WaitTime::ConstantThroughput(n) => Some(Duration::from_secs_f64(1.0 / n)),
        _ => None,
    };
    let started = run_until_started(&mut user, &cancel, &iterations, pacing).await;
    started_flag.store(started, Ordering::Release);
    let mut next_due = Instant::now();
    // Set when the user is late through the server's fault (see `users`).
    let mut late_due = None;
    while started && !cancel.is_cancelled() && take_iteration(&iterations) {
        tokio::select! {
            _ = user.iteration(late_due.take()) => {}
            _ = cancel.cancelled() => break,
        }
        match pacing {
            Some(p) => {
                next_due += p;
                let now = Instant::now();
                if next_due > now {
                    if !sleep_or_cancel(next_due - now, &cancel).await {
                        break;
                    }
                    let lag = Instant::now().saturating_duration_since(next_due);
                    shared
                        .lag_us
                        .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
                } else {
                    // The iteration overran its slot: the next one is late
                    // because of the server, and measured from its due time.
                    late_due = Some(next_due);
                }
            }
            None => {
                let think = user.think();
                if think.is_zero() {
                    // Let other tasks run even when the server answers at once.
                    tokio::task::yield_now().await;
                } else if !sleep_or_cancel(think, &cancel).await {
                    break;
                }
            }
        }
    }
    // Cancelled mid-request: that request is abandoned.
    user.note_abandoned();
    in_loop.fetch_sub(1, Ordering::AcqRel);
    if iterations.is_some() {
        if !cancel.is_cancelled() {
            // The budget ran out: the users of the run's last moments, for
            // its last history point (the first user out sees them all).
            let running = shared.user_count.load(Ordering::Relaxed);
            shared.users_at_stop.fetch_max(running, Ordering::Relaxed);
        }
        // The spawner ends an iteration run as soon as the last user is out.
        shared.retarget.notify_one();
    }
    if started {
        user.stop(shared.plan.stop_timeout).await;
    }
    shared.user_count.fetch_sub(1, Ordering::Relaxed);
}

/// Runs `on_start` until it succeeds; false when the user is stopped first
/// (or the iteration budget is spent). A failed `on_start` is followed by a
/// pause and another try, and takes one iteration of the budget, so a run
/// whose logins all fail still ends.
///
/// The pause backs off: the user's wait time (its pacing interval for paced
/// users, at least `RETRY_FLOOR`), doubled after each failure in a row up to
/// `RETRY_CEILING`, with jitter. Without it, users whose logins time out on
/// an overloaded server retry in step and keep it overloaded: a retry storm
/// that outlasts the load that caused it (seen in the lab: a replica that
/// had handled 40 users failed every login at 45, after a step that broke).
async fn run_until_started(
    user: &mut User,
    cancel: &CancellationToken,
    iterations: &Option<Arc<AtomicI64>>,
    pacing: Option<Duration>,
) -> bool {
    let mut failures = 0u32;
    loop {
        let ok = tokio::select! {
            ok = user.on_start() => ok,
            _ = cancel.cancelled() => return false,
        };
        if ok {
            return true;
        }
        if !take_iteration(iterations) {
            return false;
        }
        failures += 1;
        let base = pacing.unwrap_or_else(|| user.think()).max(RETRY_FLOOR);
        let pause = retry_pause(base, failures, user.jitter());
        if !sleep_or_cancel(pause, cancel).await {
            return false;
        }
    }
}

/// The shortest pause before a failed `on_start` is tried again.
const RETRY_FLOOR: Duration = Duration::from_millis(250);
/// The longest.
const RETRY_CEILING: Duration = Duration::from_secs(30);

/// The pause after the `failures`-th failed `on_start` in a row: `base`
/// doubled for each failure after the first, at most `RETRY_CEILING`, then
/// scaled by `jitter` (in 0.5..1.0, "equal jitter") so users spread out.
fn retry_pause(base: Duration, failures: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(RETRY_CEILING).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn surplus_users_still_logging_in_stop_first_then_the_newest() {
        // Users 0..5 in spawn order; 1 and 3 have not got through on_start.
        let mut users: Vec<Running> = [true, false, true, false, true]
            .into_iter()
            .map(|started| {
                let cancel = CancellationToken::new();
                let token = cancel.clone();
                Running {
                    handle: tokio::spawn(async move { token.cancelled().await }),
                    cancel,
                    started: Arc::new(AtomicBool::new(started)),
                }
            })
            .collect();
        let tokens: Vec<CancellationToken> = users.iter().map(|u| u.cancel.clone()).collect();
        let stopped = |tokens: &[CancellationToken]| -> Vec<usize> {
            (0..tokens.len())
                .filter(|&i| tokens[i].is_cancelled())
                .collect()
        };
        stop_surplus(&mut users, 4);
        assert_eq!(stopped(&tokens), [3], "the newest user still logging in");
        stop_surplus(&mut users, 2);
        assert_eq!(
            stopped(&tokens),
            [1, 3, 4],
            "then the other one, then the newest started"
        );
        assert_eq!(users.len(), 2);
        stop_surplus(&mut users, 5);
        assert_eq!(users.len(), 2, "keeping more than run stops nobody");
        for u in users.drain(..) {
            u.cancel.cancel();
            u.handle.await.unwrap();
        }
    }

    #[test]
    fn failed_on_start_backs_off_to_a_ceiling() {
        let base = Duration::from_secs(1);
        let pauses: Vec<u64> = (1..=7)
            .map(|k| retry_pause(base, k, 1.0).as_secs())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(
            retry_pause(base, 3, 0.5),
            Duration::from_secs(2),
            "jitter scales"
        );
        assert_eq!(retry_pause(base, u32::MAX, 1.0), RETRY_CEILING);
    }
}
