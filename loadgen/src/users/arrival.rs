//! The open model: iterations start at a rate, whatever the server does.
//!
//! Arrivals follow the rate curve (`--arrival-rate`, ramped by
//! `--arrival-stages`): arrival k (from 0) is due at the first moment the
//! integral of the rate since the start exceeds k, so a constant rate R
//! starts one at 0, 1/R, 2/R, …, a ramp from 0 to 50/s over 4 s starts 100,
//! denser as the rate rises, and a rate of 0 starts nothing until it rises
//! again. Each arrival takes an idle virtual user (or creates one, up to
//! `--max-vus`) and runs one iteration on it in its own task. When every
//! user is busy the arrival is dropped and counted: a stalled server shows up
//! as dropped iterations instead of silently lowering the rate. A virtual
//! user runs `on_start` before its first iteration; while its `on_start`
//! fails, each arrival it takes retries `on_start` instead of a task.
//!
//! Latency is measured from the actual send: an arrival never waits for a
//! user (it takes a free one or is dropped), so the only delay between its
//! due time and its send is loadgen's own timer and scheduling lateness,
//! which is not the server's to answer for (it shows as send lag instead).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Compiled, User};
use crate::client::Endpoint;
use crate::control::{lock, RunShared, RunState};
use crate::plan::{Stage, TestPlan};
use crate::stats::Recorder;

/// When arrivals are due: walks the piecewise-linear rate curve once,
/// solving for each arrival where the integral of the rate reaches it.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// `(seconds, rate at the start, rate at the end)` of each stage.
    stages: Vec<(f64, f64, f64)>,
    /// The rate after the last stage (it stays at the last target).
    tail: f64,
    /// The stage the next arrival falls in or after.
    stage: usize,
    /// Seconds and arrivals (the integral) at the start of `stage`.
    stage_t: f64,
    stage_n: f64,
    /// Arrivals scheduled so far.
    k: u64,
}

impl Schedule {
    /// The schedule of `rate` ramped by `stages`, each divided by `divisor`
    /// (a segment's share of a distributed test).
    pub(crate) fn new(rate: f64, stages: &[Stage], divisor: f64) -> Schedule {
        let mut from = rate / divisor;
        let stages: Vec<(f64, f64, f64)> = stages
            .iter()
            .map(|s| {
                let to = s.target / divisor;
                let seg = (s.duration.as_secs_f64(), from, to);
                from = to;
                seg
            })
            .collect();
        Schedule {
            stages,
            tail: from,
            stage: 0,
            stage_t: 0.0,
            stage_n: 0.0,
            k: 0,
        }
    }

    /// When the next arrival is due (since the start), or `None` when the
    /// rate stays 0 from here on.
    pub(crate) fn next(&mut self) -> Option<Duration> {
        let k = self.k as f64;
        while let Some(&(d, r0, r1)) = self.stages.get(self.stage) {
            let n_end = self.stage_n + (r0 + r1) / 2.0 * d;
            if n_end > k {
                // Within this stage N(τ) = n0 + r0·τ + s·τ²/2 grows strictly
                // (the rate is linear, >= 0 and not 0 throughout): solve N = k.
                let need = k - self.stage_n;
                let s = (r1 - r0) / d;
                let root = (r0 * r0 + 2.0 * s * need).max(0.0).sqrt();
                let tau = if need <= 0.0 {
                    0.0
                } else {
                    // The stable form of (-r0 + root) / s, also right for s = 0.
                    2.0 * need / (r0 + root)
                };
                self.k += 1;
                return Some(Duration::from_secs_f64(self.stage_t + tau.clamp(0.0, d)));
            }
            self.stage += 1;
            self.stage_t += d;
            self.stage_n = n_end;
        }
        if self.tail <= 0.0 {
            return None;
        }
        let t = self.stage_t + (k - self.stage_n).max(0.0) / self.tail;
        self.k += 1;
        Some(Duration::from_secs_f64(t))
    }
}

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
    let mut schedule = Schedule::new(arrival.rate, &arrival.stages, seg_count);
    // Arrivals due at or after the end of the stages never come.
    let before_end = |t: Duration| end.is_none_or(|e| t < e);
    let mut next = schedule.next().filter(|t| before_end(*t));
    let start = Instant::now();
    shared.set_state(RunState::Running);
    loop {
        // The next arrival, or the end of the stages, or (rate 0 for good,
        // no end) nothing but a stop.
        let wake = next.or(end).map(|t| start + t);
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(w).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let Some(first) = next else {
            break; // the end of the stages
        };
        let now = Instant::now();
        let lag = now.saturating_duration_since(start + first).as_micros() as u64;
        shared.lag_us.fetch_max(lag, Ordering::Relaxed);
        while next.is_some_and(|t| start + t <= now) {
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
                    tasks.spawn(one_iteration(vu, shared.clone(), idle.clone()));
                }
                None => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            next = schedule.next().filter(|t| before_end(*t));
        }
        while tasks.try_join_next().is_some() {}
    }
    drop(recorder);
    shared.stop_now();
    while tasks.join_next().await.is_some() {}
    // Idle users are dropped here; their on_stop runs (bounded) as in the closed model.
    let vus: Vec<Vu> = std::mem::take(&mut *lock(&idle));
    for mut vu in vus {
        if vu.started {
            vu.user.stop(plan.stop_timeout).await;
        }
    }
}

/// One arrival on `vu`: its `on_start` first if it has not succeeded yet,
/// then (if it did) one iteration, measured from the send.
async fn one_iteration(mut vu: Vu, shared: Arc<RunShared>, idle: Arc<Mutex<Vec<Vu>>>) {
    shared.user_count.fetch_add(1, Ordering::Relaxed);
    let finished = tokio::select! {
        _ = async {
            if !vu.started {
                vu.started = vu.user.on_start().await;
            }
            if vu.started {
                vu.user.iteration(None).await;
            }
        } => true,
        _ = shared.cancel.cancelled() => false,
    };
    shared.user_count.fetch_sub(1, Ordering::Relaxed);
    if finished {
        lock(&idle).push(vu);
    } else {
        vu.user.note_abandoned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(text: &[(u64, f64)]) -> Vec<Stage> {
        text.iter()
            .map(|&(secs, target)| Stage {
                duration: Duration::from_secs(secs),
                target,
            })
            .collect()
    }

    /// Arrivals due before `secs` seconds.
    fn count_before(mut s: Schedule, secs: f64) -> Vec<f64> {
        let mut out = Vec::new();
        while let Some(t) = s.next() {
            if t.as_secs_f64() >= secs {
                break;
            }
            out.push(t.as_secs_f64());
            assert!(out.len() < 100_000, "runaway schedule");
        }
        out
    }

    #[test]
    fn a_constant_rate_starts_at_once_and_is_evenly_spaced() {
        let t = count_before(Schedule::new(100.0, &[], 1.0), 3.0);
        assert_eq!(t.len(), 300);
        assert_eq!(t[0], 0.0);
        assert!((t[1] - 0.01).abs() < 1e-9 && (t[299] - 2.99).abs() < 1e-9);
        // A segment of 4 has a quarter of the rate.
        assert_eq!(count_before(Schedule::new(100.0, &[], 4.0), 3.0).len(), 75);
    }

    #[test]
    fn ramps_follow_the_integral_of_the_rate() {
        // 0 → 50/s over 4 s: N(t) = 6.25·t², so 100 arrivals, 7 in the first
        // second (k < 6.25) and 43 in the last (k >= 56.25).
        let t = count_before(Schedule::new(0.0, &stages(&[(4, 50.0)]), 1.0), 4.0);
        assert_eq!(t.len(), 100);
        let in_first = t.iter().filter(|x| **x < 1.0).count();
        let in_last = t.iter().filter(|x| **x >= 3.0).count();
        assert_eq!((in_first, in_last), (7, 43));
        // 2s:50,2s:50: 50 during the ramp, 100 on the plateau.
        let t = count_before(
            Schedule::new(0.0, &stages(&[(2, 50.0), (2, 50.0)]), 1.0),
            4.0,
        );
        assert_eq!(t.len(), 150);
        // 2s:100,2s:100: per second 25, 75, 100, 100.
        let t = count_before(
            Schedule::new(0.0, &stages(&[(2, 100.0), (2, 100.0)]), 1.0),
            4.0,
        );
        let per_second: Vec<usize> = (0..4)
            .map(|s| t.iter().filter(|x| x.floor() as usize == s).count())
            .collect();
        assert_eq!(per_second, [25, 75, 100, 100]);
    }

    #[test]
    fn a_rate_of_zero_sends_nothing_until_it_rises() {
        // 50/s falling to 0 over 1 s, then 0: 25 arrivals, all in the first second.
        let t = count_before(
            Schedule::new(50.0, &stages(&[(1, 0.0), (3, 0.0)]), 1.0),
            100.0,
        );
        assert_eq!(t.len(), 25);
        assert!(t.iter().all(|x| *x < 1.0));
        // 1 s at 0, then up to 20/s over 1 s: 10 arrivals, none in the first second.
        let t = count_before(
            Schedule::new(0.0, &stages(&[(1, 0.0), (1, 20.0)]), 1.0),
            2.0,
        );
        assert_eq!(t.len(), 10);
        assert!(t[0] >= 1.0, "{t:?}");
        assert!(Schedule::new(0.0, &stages(&[(1, 0.0)]), 1.0)
            .next()
            .is_none());
        // Up to 1000/s and down to 0: 2000 arrivals, then nothing at all.
        let t = count_before(
            Schedule::new(0.0, &stages(&[(2, 1000.0), (2, 0.0)]), 1.0),
            1e9,
        );
        assert_eq!(t.len(), 2000);
    }
}
