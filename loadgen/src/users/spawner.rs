//! The closed model: N users with think time, started at a spawn rate.
//!
//! The spawner moves the number of running users towards a target — the
//! `-u` value (changed live by `Controller::set_users`) or the value of the
//! `--stages` ramp at this moment — starting at most `spawn_rate` users per
//! second and stopping surplus users at once (newest first). Each user runs
//! `on_start`, then iterations separated by its wait time, until cancelled or
//! until the shared iteration budget (`--iterations`) is spent.
//!
//! With `constant_pacing`/`constant_throughput` an iteration is *due* at a
//! fixed schedule; when the previous one overran, the next one starts late
//! and its latency is measured from when it was due.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_cancel, Compiled, User};
use crate::client::Endpoint;
use crate::control::{RunShared, RunState};
use crate::plan::{ramp_at, TestPlan};
use crate::scenario::WaitTime;
use crate::stats::Recorder;

struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
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
    let stages_end = (!plan.stages.is_empty()).then(|| TestPlan::stages_duration(&plan.stages));
    let seg_count = f64::from(seg.map_or(1, |s| s.count));
    let start = Instant::now();
    let mut users: Vec<Running> = Vec::new();
    let mut spawned: u64 = 0;
    // Like Locust, the first user starts at once, the next ones 1/rate apart.
    let mut credit = 1.0f64;
    let mut last = Instant::now();
    loop {
        if shared.cancel.is_cancelled() {
            break;
        }
        users.retain(|u| !u.handle.is_finished());
        let budget_left = iterations
            .as_ref()
            .is_none_or(|it| it.load(Ordering::Relaxed) > 0);
        if !budget_left && users.is_empty() {
            break;
        }
        let elapsed = start.elapsed();
        if let Some(end) = stages_end {
            if elapsed >= end && plan.run_time.is_none() {
                break;
            }
        }
        let wanted_total: u64 = if plan.stages.is_empty() {
            u64::from(shared.target_users.load(Ordering::Relaxed))
        } else {
            ramp_at(0.0, &plan.stages, elapsed).round().max(0.0) as u64
        };
        let target = seg.map_or(wanted_total, |s| s.share(wanted_total)) as usize;
        let rate = shared.spawn_rate() / seg_count;
        let now = Instant::now();
        let dt = (now - last).as_secs_f64();
        last = now;
        if users.len() < target && budget_left {
            let missing = target - users.len();
            let n = if rate.is_infinite() {
                missing
            } else {
                credit = (credit + rate * dt).min(missing as f64 + 1.0);
                (credit.floor() as usize).min(missing)
            };
            if !rate.is_infinite() {
                credit -= n as f64;
            }
            for i in 0..n {
                let global = seg.map_or(spawned, |s| s.global(spawned));
                spawned += 1;
                let cancel = shared.cancel.child_token();
                let user = User::new(
                    global,
                    compiled.clone(),
                    endpoint.clone(),
                    recorder.clone(),
                    shared.clone(),
                );
                let handle = tokio::spawn(run_user(
                    user,
                    shared.clone(),
                    cancel.clone(),
                    iterations.clone(),
                ));
                users.push(Running { cancel, handle });
                if i % 1024 == 1023 {
                    tokio::task::yield_now().await;
                }
            }
        } else if users.len() > target {
            for u in users.drain(target..) {
                u.cancel.cancel();
            }
            credit = 0.0;
        } else {
            credit = 0.0;
        }
        let settled = users.len() == target;
        shared.set_state(if settled {
            RunState::Running
        } else {
            RunState::Spawning
        });
        let tick = if settled && plan.stages.is_empty() {
            Duration::from_millis(200)
        } else if rate.is_finite() && rate > 0.0 {
            Duration::from_secs_f64((1.0 / rate).clamp(0.001, 0.1))
        } else {
            Duration::from_millis(10)
        };
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = shared.retarget.notified() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
    drop(recorder);
    for u in &users {
        u.cancel.cancel();
    }
    for u in users {
        let _ = u.handle.await;
    }
}

/// One closed-model user from start to stop.
async fn run_user(
    mut user: User,
    shared: Arc<RunShared>,
    cancel: CancellationToken,
    iterations: Option<Arc<AtomicI64>>,
) {
    let n = shared.user_count.fetch_add(1, Ordering::Relaxed) + 1;
    shared.max_users.fetch_max(n, Ordering::Relaxed);
    let wait = user.wait_time();
    let pacing = match wait {
        WaitTime::ConstantPacing(s) => Some(Duration::from_secs_f64(s)),
        WaitTime::ConstantThroughput(n) => Some(Duration::from_secs_f64(1.0 / n)),
        _ => None,
    };
    let alive = tokio::select! {
        _ = user.on_start(None) => true,
        _ = cancel.cancelled() => false,
    };
    let mut next_due = Instant::now();
    if alive {
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if let Some(it) = &iterations {
                if it.fetch_sub(1, Ordering::Relaxed) <= 0 {
                    break;
                }
            }
            let due = pacing.map(|_| next_due);
            tokio::select! {
                _ = user.iteration(due) => {}
                _ = cancel.cancelled() => break,
            }
            match pacing {
                Some(p) => {
                    next_due += p;
                    let now = Instant::now();
                    if next_due > now && !sleep_or_cancel(next_due - now, &cancel).await {
                        break;
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
    }
    let _ = tokio::time::timeout(shared.plan.stop_timeout, user.on_stop()).await;
    shared.user_count.fetch_sub(1, Ordering::Relaxed);
}
