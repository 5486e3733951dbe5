//! The open model: iterations start at a rate, whatever the server does.
//!
//! Arrivals are scheduled at `1/rate` intervals (the rate may ramp through
//! `--arrival-stages`). Each arrival takes an idle virtual user (or creates
//! one, up to `--max-vus`) and runs one iteration on it in its own task, with
//! the arrival's scheduled time as the due time of its first request. When
//! every user is busy the arrival is dropped and counted: a stalled server
//! shows up as dropped iterations instead of silently lowering the rate. A
//! virtual user runs `on_start` before its first iteration.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Compiled, User};
use crate::client::Endpoint;
use crate::control::{lock, RunShared, RunState};
use crate::plan::{ramp_at, TestPlan};
use crate::stats::Recorder;

struct Vu {
    user: User,
    started: bool,
}

/// Runs the open model until the run is cancelled (or its stages end).
pub(crate) async fn drive(shared: Arc<RunShared>, compiled: Arc<Compiled>, recorder: Recorder) {
    let endpoint = Arc::new(Endpoint::resolve(&shared.target.authority).await);
    let plan = &shared.plan;
    let Some(arrival) = plan.arrival.clone() else {
        return;
    };
    let seg = plan.segment;
    let seg_count = f64::from(seg.map_or(1, |s| s.count));
    let max_vus = seg.map_or(u64::from(arrival.max_vus), |s| {
        s.share(u64::from(arrival.max_vus)).max(1)
    });
    let end = (!arrival.stages.is_empty() && plan.run_time.is_none())
        .then(|| TestPlan::stages_duration(&arrival.stages));
    let idle: Arc<Mutex<Vec<Vu>>> = Arc::new(Mutex::new(Vec::new()));
    let mut created: u64 = 0;
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let mut next = start;
    shared.set_state(RunState::Running);
    'outer: loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = Instant::now();
        let lag = (now - next).as_micros() as u64;
        shared.lag_us.fetch_max(lag, Ordering::Relaxed);
        while next <= now {
            let t = next - start;
            if end.is_some_and(|e| t >= e) {
                break 'outer;
            }
            let rate = ramp_at(arrival.rate, &arrival.stages, t) / seg_count;
            let popped = lock(&idle).pop();
            let vu = match popped {
                Some(v) => Some(v),
                None if created < max_vus => {
                    let global = seg.map_or(created, |s| s.global(created));
                    created += 1;
                    shared.max_users.store(created as u32, Ordering::Relaxed);
                    Some(Vu {
                        user: User::new(
                            global,
                            compiled.clone(),
                            endpoint.clone(),
                            recorder.clone(),
                            shared.clone(),
                        ),
                        started: false,
                    })
                }
                None => None,
            };
            match vu {
                Some(vu) => {
                    tasks.spawn(one_iteration(vu, next, shared.clone(), idle.clone()));
                }
                None => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            next += if rate > 0.0 {
                Duration::from_secs_f64(1.0 / rate)
            } else {
                Duration::from_millis(10)
            };
        }
        while tasks.try_join_next().is_some() {}
    }
    drop(recorder);
    shared.cancel.cancel();
    while tasks.join_next().await.is_some() {}
    // Idle users are dropped here; their on_stop runs (bounded) as in the closed model.
    let vus: Vec<Vu> = std::mem::take(&mut *lock(&idle));
    for mut vu in vus {
        if vu.started {
            let _ = tokio::time::timeout(plan.stop_timeout, vu.user.on_stop()).await;
        }
    }
}

async fn one_iteration(
    mut vu: Vu,
    due: Instant,
    shared: Arc<RunShared>,
    idle: Arc<Mutex<Vec<Vu>>>,
) {
    shared.user_count.fetch_add(1, Ordering::Relaxed);
    let finished = tokio::select! {
        _ = async {
            let mut due = Some(due);
            if !vu.started {
                vu.started = true;
                vu.user.on_start(due.take()).await;
            }
            vu.user.iteration(due).await;
        } => true,
        _ = shared.cancel.cancelled() => false,
    };
    shared.user_count.fetch_sub(1, Ordering::Relaxed);
    if finished {
        lock(&idle).push(vu);
    }
}
