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
use crate::endpoint::Endpoint;
use crate::plan::TestPlan;
use crate::run::RunShared;
use crate::snapshot::RunState;
use crate::stats::Recorder;
use crate::units::{lock, Segment, Stage};

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
    /// Arrivals due at or before `t` (since the start) that `next` has not
    /// handed out yet, all skipped at once: the schedule moves past them in
    /// O(stages), however many there are. This is how a pool with no free
    /// user drops a rate of 10⁹/s without counting them one by one.
    pub(crate) fn skip_due(&mut self, t: Duration) -> u64 {
        let t = t.as_secs_f64();
        let (mut at, mut n) = (0.0, 0.0);
        let mut reached = None;
        for &(d, r0, r1) in &self.stages {
            if t < at + d {
                let tau = t - at;
                reached = Some(n + r0 * tau + (r1 - r0) / d * tau * tau / 2.0);
                break;
            }
            at += d;
            n += (r0 + r1) / 2.0 * d;
        }
        let integral = reached.unwrap_or(n + self.tail * (t - at).max(0.0));
        // Arrival k is due once the integral reaches k: k = 0 ..= ⌊N(t)⌋.
        let due = if integral.is_finite() {
            (integral.floor() + 1.0).min(u64::MAX as f64) as u64
        } else {
            u64::MAX
        };
        let skipped = due.saturating_sub(self.k);
        self.k = self.k.max(due);
        skipped
    }
}

struct Vu {
    user: User,
    started: bool,
}

/// How many arrivals the loop starts before it yields and looks for a stop:
/// a rate far above what the machine can start must not starve the timer,
/// the signal handler or the collector.
const BATCH: u32 = 1024;

/// The virtual users: idle ones waiting for an arrival, and how many more
/// may be created.
struct Pool {
    idle: Arc<Mutex<Vec<Vu>>>,
    created: u64,
    max_vus: u64,
    segment: Option<Segment>,
    compiled: Arc<Compiled>,
    endpoint: Arc<Endpoint>,
    recorder: Recorder,
    shared: Arc<RunShared>,
}

impl Pool {
    /// An idle user, or a new one while fewer than `max_vus` exist.
    fn take(&mut self) -> Option<Vu> {
        if let Some(vu) = lock(&self.idle).pop() {
            return Some(vu);
        }
        if self.created >= self.max_vus {
            return None;
        }
        let global = self
            .segment
            .map_or(self.created, |s| s.global(self.created));
        self.created += 1;
        self.shared.max_users.store(
            self.created.min(u64::from(u32::MAX)) as u32,
            Ordering::Relaxed,
        );
        Some(Vu {
            user: User::new(
                global,
                self.compiled.clone(),
                self.endpoint.clone(),
                self.recorder.clone(),
                self.shared.clone(),
            ),
            started: false,
        })
    }
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
    let mut pool = Pool {
        idle: Arc::new(Mutex::new(Vec::new())),
        created: 0,
        max_vus: seg.map_or(u64::from(arrival.max_vus), |s| {
            s.share(u64::from(arrival.max_vus)).max(1)
        }),
        segment: seg,
        compiled,
        endpoint,
        recorder,
        shared: shared.clone(),
    };
    let end = (!arrival.stages.is_empty() && plan.run_time.is_none())
        .then(|| TestPlan::stages_duration(&arrival.stages));
    let mut tasks = JoinSet::new();
    let mut schedule = Schedule::new(arrival.rate, &arrival.stages, seg_count);
    // Arrivals due at or after the end of the stages never come.
    let before_end = |t: Duration| end.is_none_or(|e| t < e);
    let mut next = schedule.next().filter(|t| before_end(*t));
    let start = Instant::now();
    shared.set_state(RunState::Running);
    'run: loop {
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
        let mut started = 0u32;
        while next.is_some_and(|t| start + t <= now) {
            let Some(vu) = pool.take() else {
                // Every user is busy: this arrival and all others due by
                // now are dropped, counted in one step.
                let elapsed = now - start;
                let upto = end.map_or(elapsed, |e| {
                    elapsed.min(e.saturating_sub(Duration::from_nanos(1)))
                });
                let dropped = 1 + schedule.skip_due(upto);
                shared.dropped.fetch_add(dropped, Ordering::Relaxed);
                next = schedule.next().filter(|t| before_end(*t));
                break;
            };
            tasks.spawn(one_iteration(vu, shared.clone(), pool.idle.clone()));
            next = schedule.next().filter(|t| before_end(*t));
            started += 1;
            if started % BATCH == 0 {
                tokio::task::yield_now().await;
                if shared.cancel.is_cancelled() {
                    break 'run;
                }
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    let idle = pool.idle.clone();
    drop(pool);
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

    /// Skipping agrees with handing the arrivals out one by one, at any
    /// rate, and a rate of 10⁹/s is skipped in one step.
    #[test]
    fn skipping_counts_what_next_would_have_handed_out() {
        let ramp = stages(&[(2, 100.0), (2, 100.0)]);
        for at in [0.0, 0.5, 1.0, 1.999, 2.5, 3.99, 7.0] {
            let t = Duration::from_secs_f64(at);
            let mut one_by_one = Schedule::new(0.0, &ramp, 1.0);
            let mut n = 0u64;
            while one_by_one.next().is_some_and(|d| d <= t) {
                n += 1;
            }
            let mut skipping = Schedule::new(0.0, &ramp, 1.0);
            assert_eq!(skipping.skip_due(t), n, "at {at}");
            // The schedule goes on after the skipped ones.
            assert!(skipping.next().unwrap() > t, "at {at}");
        }
        let mut huge = Schedule::new(1e9, &[], 1.0);
        assert_eq!(huge.next(), Some(Duration::ZERO));
        assert_eq!(huge.skip_due(Duration::from_secs(3)), 3_000_000_000);
        assert_eq!(huge.skip_due(Duration::from_secs(1)), 0, "nothing twice");
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
