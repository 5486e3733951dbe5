//! Capacity searches on one started stack, window by window: the engine
//! `lab compare` and `lab scale` share.
//!
//! A [`Target`] is something to load (one replica directly, or a balancer in
//! front of N replicas) with the processes that serve it. A [`SideRun`] is
//! one capacity search on a target: its users ([`Driver`], kept across
//! steps), its [`Search`] and the steps recorded so far. [`run_searches`]
//! runs several of them: all in the same windows when they cannot take each
//! other's CPU (CPU budgets), else one after the other; a window ramps and
//! warms up every active search, measures them together and records a step
//! for each. When a search is over, one more window (`--confirm`, longer
//! than a step's) measures its side again at the capacity it found: short
//! windows are enough to decide a load, not to measure a figure that varies
//! with the few logins a window happens to hold. A progress line after
//! every window says how far along the command is ([`crate::progress`]).

use std::time::{Duration, Instant};

use loadgen::report::RunReport;
use loadgen::scenario::Scenario;

use crate::capacity::{Search, Slo};
use crate::cli::{LoadModel, SearchArgs};
use crate::database::POSTGRES;
use crate::diagnosis::LOADGEN;
use crate::load::{self, Driver, DriverConfig, StepSummary};
use crate::procstat::{ProcUsage, Sampler};
use crate::stack::Stack;
use crate::status::{Probe, ShareDelta};
use crate::step::StepRecord;
use crate::{progress, Error, Interrupt};

/// Something the lab loads, and the processes that serve it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `single`, `group`, `n4`…: the name in progress lines and reports.
    pub name: String,
    /// Base URL the load generator is pointed at.
    pub host: String,
    /// `(name, pid)` of its replicas (and balancer).
    pub procs: Vec<(String, u32)>,
    /// Cgroup ids of its budgeted replicas.
    pub cgroup_ids: Vec<String>,
    /// The balancer's `/status` URL, when a balancer is in front.
    pub status_url: Option<String>,
}

/// One capacity search on a target while it runs.
pub(crate) struct SideRun {
    /// What it loads.
    pub target: Target,
    /// The search.
    pub search: Search,
    /// `None` once the search is over (its users are gone).
    pub driver: Option<Driver>,
    /// Steps recorded so far.
    pub records: Vec<StepRecord>,
    /// loadgen's full report of each step (for the CSVs of the step at capacity).
    pub reports: Vec<RunReport>,
    /// Whether the capacity is confirmed, or no more confirmation is due.
    pub confirm_done: bool,
}

/// Confirmation windows per search at most: the capacity and one step down
/// from it. A third moved the speed-ups at the knees by nothing measurable
/// (42 runs replayed without it: sd of ln(goodput speed-up) 0.072 against
/// 0.071) and cost a run about 25 s: eight of twenty runs used it, the two
/// of them past 3 minutes among them (docs/lab.md, "The knee, fitted").
const MAX_CONFIRMATIONS: usize = 2;

/// How often a confirmation breaks what the search's short windows kept,
/// for the estimate of the time left: about half of the time in the runs
/// recorded in docs/lab.md (sets M and N: ten of twenty, eleven of
/// nineteen), and each one that breaks is followed by another.
const CONFIRMATION_BREAKS: f64 = 0.5;

impl SideRun {
    /// The load to confirm: the capacity the search found (or the one it
    /// stepped down to), while it is not confirmed yet and the side's users
    /// still run.
    fn load_to_confirm(&self, confirm: Duration) -> Option<u32> {
        let over = self.search.next_load().is_none();
        (self.confirmation_pending(confirm) && over)
            .then(|| self.search.capacity())
            .flatten()
    }

    /// Whether a confirmation window is still due for this side (`--confirm`
    /// on, none has held yet, its users still run).
    fn confirmation_pending(&self, confirm: Duration) -> bool {
        !confirm.is_zero() && !self.confirm_done && self.driver.is_some()
    }

    /// The windows this search still expects: its steps (a growth step
    /// measures `--step-duration`; once the objective has broken, and for
    /// every step after the next one, which is assumed to break it, the
    /// bisections measure `--refine-duration`), then its confirmations, the
    /// first one sure and each one after it only if the one before broke.
    fn windows_ahead(&self, args: &SearchArgs) -> (Vec<progress::Ahead>, Vec<progress::Ahead>) {
        let refining = self.search.narrowing();
        let steps = (0..self.search.expected_remaining())
            .map(|i| {
                let growth = i == 0 && !refining;
                progress::Ahead::sure(if growth {
                    args.step_duration
                } else {
                    args.refine_window()
                })
            })
            .collect();
        let may_confirm = self.search.next_load().is_some() || self.search.capacity().is_some();
        let left = if self.confirmation_pending(args.confirm) && may_confirm {
            let done = self.records.iter().filter(|r| r.confirmation).count();
            MAX_CONFIRMATIONS.saturating_sub(done)
        } else {
            0
        };
        let confirmations = (0..left)
            .map(|j| progress::Ahead {
                measure: args.confirm,
                odds: CONFIRMATION_BREAKS.powi(j as i32),
            })
            .collect();
        (steps, confirmations)
    }

    /// The record that measured the capacity: the last confirmation at that
    /// load when there is one, else the search's step that kept it.
    pub fn capacity_record(&self) -> Option<&StepRecord> {
        let c = self.search.capacity()?;
        self.records
            .iter()
            .rfind(|r| r.load == c && (r.kept || r.confirmation))
    }
}

/// What a window measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// The next step of each active search.
    Steps,
    /// The capacity of searches that are over, for `--confirm`.
    Confirmation,
}

/// What every window needs, so no function takes eight arguments.
pub(crate) struct Ctx<'a> {
    /// The running stack.
    pub stack: &'a Stack,
    /// HTTP probe for the balancers' `/status`.
    pub probe: Probe,
    /// The search flags.
    pub args: &'a SearchArgs,
    /// The objective.
    pub slo: Slo,
    /// `users` or `it/s`.
    pub unit: &'static str,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The scenario.
    pub scenario: Scenario,
    /// When the command started measuring (for the progress line).
    pub started: Instant,
    /// Windows measured so far, over every search of the command.
    pub windows_done: u32,
    /// Their time beyond the length they were to measure (ramps, warm-ups,
    /// windows measured again), summed: for the estimate of the time left.
    pub overhead: Duration,
}

impl<'a> Ctx<'a> {
    /// The context of a command's searches on `stack`, with the objective
    /// [`objective`] read from `args` (checked before the stack started).
    pub fn new(
        stack: &'a Stack,
        args: &'a SearchArgs,
        (slo, timeout, unit): (Slo, Duration, &'static str),
        scenario: Scenario,
    ) -> Ctx<'a> {
        Ctx {
            stack,
            probe: Probe::new(),
            args,
            slo,
            unit,
            timeout,
            scenario,
            started: Instant::now(),
            windows_done: 0,
            overhead: Duration::ZERO,
        }
    }

    /// A search on `target` from `start` (at least `--start-load`), its new
    /// users joining at `spawn_rate`/s.
    pub fn side(&self, target: Target, spawn_rate: f64, start: u32) -> SideRun {
        let a = self.args;
        let start = start.clamp(a.start_load, a.max_load);
        SideRun {
            search: Search::new(start, a.max_load, a.growth, a.refine, a.max_steps),
            driver: Some(Driver::new(DriverConfig {
                host: target.host.clone(),
                scenario: self.scenario.clone(),
                model: a.model,
                timeout: self.timeout,
                spawn_rate,
            })),
            target,
            records: Vec::new(),
            reports: Vec::new(),
            confirm_done: false,
        }
    }
}

/// The objective, the request timeout and the load unit of a command's flags.
pub(crate) fn objective(args: &SearchArgs) -> Result<(Slo, Duration, &'static str), Error> {
    let slo = Slo {
        max_fail_ratio: args.slo_failures / 100.0,
        max_p95_ms: args.slo_p95.as_secs_f64() * 1000.0,
    };
    let timeout = args
        .request_timeout
        .unwrap_or_else(|| load::timeout_for(&slo));
    if timeout > args.step_duration {
        return Err(Error::Usage(format!(
            "--request-timeout {} is longer than --step-duration {}: a request could outlive its step",
            humantime::format_duration(timeout),
            humantime::format_duration(args.step_duration)
        )));
    }
    let unit = match args.model {
        LoadModel::Closed => "users",
        LoadModel::Open => "it/s",
    };
    Ok((slo, timeout, unit))
}

/// Runs the searches of `sides` to their end: together in each window when
/// `together` (CPU budgets keep them from taking each other's CPU), else one
/// after the other. `later` is how many windows the command expects after
/// these searches (other repeats), for the progress line. Returns `true`
/// when a signal interrupted it (the window in progress is abandoned; the
/// steps finished are kept).
pub(crate) async fn run_searches(
    ctx: &mut Ctx<'_>,
    sides: &mut [SideRun],
    together: bool,
    later: u32,
    stop: &mut Interrupt,
) -> Result<bool, Error> {
    loop {
        let (active, kind) = next_window(ctx, sides, together).await;
        if active.is_empty() {
            return Ok(false);
        }
        ctx.windows_done += 1;
        // A signal abandons the window in progress (its figures would be
        // partial); the finished steps are kept.
        let began = Instant::now();
        let measured = tokio::select! {
            r = run_window(ctx, sides, &active, kind) => Some(r?),
            () = stop.recv() => None,
        };
        let Some(measured) = measured else {
            // Cancels every user still running.
            for s in sides.iter_mut() {
                s.driver = None;
            }
            return Ok(true);
        };
        ctx.overhead += began.elapsed().saturating_sub(measured);
        let pace = progress::Pace {
            done: ctx.windows_done,
            elapsed: ctx.started.elapsed(),
            overhead: ctx.overhead,
        };
        let ahead = windows_ahead(sides, together, ctx.args);
        println!("lab: {}", progress::line(pace, &ahead, later));
    }
}

/// What the next window measures, and on which sides at which load: the
/// next step of every search still running (one search only when they run
/// one after the other); when no search has a step left to run now, the
/// confirmations due (one side only when they run one after the other).
/// A side that has nothing left to do stops its users.
async fn next_window(
    ctx: &Ctx<'_>,
    sides: &mut [SideRun],
    together: bool,
) -> (Vec<(usize, u32)>, Window) {
    let confirm = ctx.args.confirm;
    let mut steps = Vec::new();
    let mut confirmations = Vec::new();
    for (i, s) in sides.iter_mut().enumerate() {
        let busy = !(steps.is_empty() && confirmations.is_empty());
        let waits = !together && busy;
        match (s.search.next_load(), s.load_to_confirm(confirm)) {
            (Some(_), _) | (None, Some(_)) if waits => {}
            (Some(l), _) => steps.push((i, l)),
            (None, Some(l)) => confirmations.push((i, l)),
            (None, None) => {
                if let Some(d) = s.driver.take() {
                    d.stop().await;
                }
            }
        }
    }
    if steps.is_empty() {
        (confirmations, Window::Confirmation)
    } else {
        (steps, Window::Steps)
    }
}

/// Windows the searches of `sides` still expect, rounded (confirmations
/// that may not be needed count by their odds).
pub(crate) fn windows_left(sides: &[SideRun], together: bool, args: &SearchArgs) -> u32 {
    progress::expected(&windows_ahead(sides, together, args))
}

/// The windows the searches of `sides` still expect, in order. Together,
/// every side's steps share windows, then their confirmations do (a side
/// whose search is over waits for the others' steps, [`next_window`]); one
/// after the other, each side's steps and confirmations follow the last.
fn windows_ahead(sides: &[SideRun], together: bool, args: &SearchArgs) -> Vec<progress::Ahead> {
    let each = sides.iter().map(|s| s.windows_ahead(args));
    if together {
        let (steps, confirmations): (Vec<_>, Vec<_>) = each.unzip();
        let mut all = progress::together(&steps);
        all.extend(progress::together(&confirmations));
        all
    } else {
        each.flat_map(|(steps, confirmations)| steps.into_iter().chain(confirmations))
            .collect()
    }
}

/// One measurement window: ramps and warms up every active side, measures
/// them together, and records each side's step. Returns the length it was
/// to measure (a window measured again takes longer).
async fn run_window(
    ctx: &Ctx<'_>,
    sides: &mut [SideRun],
    active: &[(usize, u32)],
    kind: Window,
) -> Result<Duration, Error> {
    let window = ctx.windows_done;
    let plan: Vec<String> = active
        .iter()
        .map(|&(i, l)| {
            let s = &sides[i];
            match kind {
                Window::Steps => format!(
                    "{} step {} ({l} {})",
                    s.target.name,
                    s.records.len() + 1,
                    ctx.unit
                ),
                Window::Confirmation => {
                    format!("{} confirms its capacity ({l} {})", s.target.name, ctx.unit)
                }
            }
        })
        .collect();
    println!(
        "lab: window {window}: {}; ramping and warming up…",
        plan.join(", "),
    );
    let mut ramp = Duration::ZERO;
    for &(i, l) in active {
        if let Some(d) = sides[i].driver.as_mut() {
            ramp = ramp.max(d.ramp_estimate(d.load(), l));
            d.set_load(l).await?;
        }
    }
    let drivers: Vec<&Driver> = active
        .iter()
        .filter_map(|&(i, _)| sides[i].driver.as_ref())
        .collect();
    let a = ctx.args;
    let warmup = load::settle(&drivers, &ctx.slo, ramp, a.warmup, a.settle_max).await;
    // Once a side's search has seen the objective break, its steps narrow
    // the capacity down and are measured longer: near the knee a queue takes
    // seconds to grow past the request timeout.
    let refining = (active.iter()).any(|&(i, _)| sides[i].search.narrowing());
    let length = match kind {
        Window::Steps if refining => a.refine_window(),
        Window::Steps => a.step_duration,
        Window::Confirmation => a.confirm,
    };
    println!(
        "lab: window {window}: settled after {warmup:.0} s; measuring {}…",
        humantime::format_duration(length)
    );
    // A step whose failures are within chance of the objective is measured
    // once more as long (the window grows; a confirmation is long already).
    let extend = kind == Window::Steps;
    let (recs, reps) = measure_window(ctx, sides, active, warmup, (length, extend)).await?;
    for ((i, load), (rec, rep)) in active.iter().copied().zip(recs.into_iter().zip(reps)) {
        match kind {
            Window::Steps => record_step(ctx, &mut sides[i], load, rec, rep),
            Window::Confirmation => record_confirmation(ctx, &mut sides[i], load, rec, rep),
        }
    }
    Ok(length)
}

/// Judges a step against the objective: `Err(why)` when it broke it, over
/// all requests or on one route ([`Slo::route_kept`]).
fn judge(slo: &Slo, s: &StepSummary, load: u32) -> Result<(), String> {
    slo.check(s.requests, s.fail_ratio, s.p95_ms)
        .and_then(|()| dropped_check(s, load, slo))
        .and_then(|()| {
            let mut failing = s.routes.iter().filter(|r| r.failures > 0);
            failing.try_for_each(|r| {
                slo.route_kept(&format!("{} {}", r.method, r.name), r.requests, r.failures)
            })
        })
}

/// A step's verdict: [`judge`], and its failures over all requests clearly
/// under the objective (a step within chance of it counts as broken).
fn step_verdict(slo: &Slo, s: &StepSummary, load: u32) -> Result<(), String> {
    judge(slo, s, load).and_then(|()| slo.clearly_kept(s.requests, s.failures))
}

/// "POST /api/v1/auth/token/ waited 1298 ms at the median, over half the
/// 2s request timeout": a route of a window whose median request took half
/// the timeout or more, i.e. whose queue was half-way to timing out.
/// In 37 runs of the default comparison (sets R–Z in docs/lab.md) the 11
/// growth steps kept within an eighth of the knee had a route's median of
/// 1,022–1,611 ms, and none of the 222 other growth steps kept one above
/// 656 ms.
fn strained_route(s: &StepSummary, timeout: Duration) -> Option<String> {
    let half_ms = timeout.as_secs_f64() * 1000.0 / 2.0;
    s.routes
        .iter()
        .filter(|r| r.requests >= MIN_STRAINED_REQUESTS && r.median_ms >= half_ms)
        .max_by(|a, b| a.median_ms.total_cmp(&b.median_ms))
        .map(|r| {
            format!(
                "{} {} waited {:.0} ms at the median, over half the {} request timeout",
                r.method,
                r.name,
                r.median_ms,
                humantime::format_duration(timeout)
            )
        })
}

/// Fewest requests of a route whose median [`strained_route`] trusts.
const MIN_STRAINED_REQUESTS: u64 = 5;

/// Records the confirmation window of a side whose search is over. When it
/// broke the objective its step had kept (that step held by the luck of a
/// short window), the capacity steps down by the search's last gap and is
/// confirmed again, up to [`MAX_CONFIRMATIONS`] windows: the capacity is
/// then a load a long window showed to keep the objective.
fn record_confirmation(
    ctx: &Ctx<'_>,
    s: &mut SideRun,
    load: u32,
    mut rec: StepRecord,
    rep: RunReport,
) {
    rec.number = s.records.len() as u32 + 1;
    rec.load = load;
    rec.confirmation = true;
    let verdict = judge(&ctx.slo, &rec.summary, load);
    rec.kept = verdict.is_ok();
    rec.verdict = verdict.err().unwrap_or_default();
    let earlier = s.records.iter().filter(|r| r.confirmation).count();
    let again = !rec.kept && earlier + 1 < MAX_CONFIRMATIONS;
    let lower = again.then(|| s.search.step_down(load)).flatten();
    s.confirm_done = lower.is_none();
    println!(
        "{}",
        progress_line(&s.target.name, &rec, None, ctx.unit, &ctx.slo)
    );
    if let Some(lower) = lower {
        println!(
            "lab: {}: not confirmed at {load} {}; confirming {lower} {} instead",
            s.target.name, ctx.unit, ctx.unit
        );
    }
    s.records.push(rec);
    s.reports.push(rep);
}

/// Judges a measured step against the objective and records it.
fn record_step(ctx: &Ctx<'_>, s: &mut SideRun, load: u32, mut rec: StepRecord, rep: RunReport) {
    let slo = &ctx.slo;
    rec.number = s.records.len() as u32 + 1;
    rec.load = load;
    let verdict = step_verdict(slo, &rec.summary, load);
    rec.kept = verdict.is_ok();
    rec.verdict = verdict.err().unwrap_or_default();
    let growing = rec.kept && !s.search.narrowing();
    let budget = ctx.stack.budget_applied.cores();
    match strained_route(&rec.summary, ctx.timeout) {
        Some(why) if growing => {
            rec.verdict = format!("but {why}: the knee is near, so the search narrows below it");
            s.search.record_strained(load);
        }
        _ => {
            s.search.record(load, rec.kept);
            let spent = budget.filter(|&b| growing && rec.cpu_spent(b));
            // Said once, when the growth slows (not again at each quarter step).
            if let Some(b) = spent {
                if s.search.grow_gently() {
                    rec.verdict = format!(
                        "but a replica used its whole CPU budget ({:.0}% of a core): the knee is near, so the load grows by a quarter step from here",
                        b * 100.0
                    );
                }
            }
        }
    }
    println!(
        "{}",
        progress_line(
            &s.target.name,
            &rec,
            Some(ctx.args.max_steps),
            ctx.unit,
            slo
        )
    );
    s.records.push(rec);
    s.reports.push(rep);
}

/// Open model: arrivals dropped for want of a free virtual user are load the
/// server did not take; above the failure budget they break the objective.
fn dropped_check(s: &StepSummary, load: u32, slo: &Slo) -> Result<(), String> {
    let offered = f64::from(load) * s.seconds;
    if s.dropped_iterations > 0 && offered > 0.0 {
        let r = s.dropped_iterations as f64 / offered;
        if r > slo.max_fail_ratio {
            return Err(format!(
                "{:.1}% of arrivals dropped (every virtual user busy)",
                r * 100.0
            ));
        }
    }
    Ok(())
}

/// What `describe` says of each active side's window so far, for the sides
/// it says something of.
fn sides_where(
    sides: &[SideRun],
    active: &[(usize, u32)],
    reps: &[RunReport],
    describe: impl Fn(&SideRun, u32, &StepSummary) -> Option<String>,
) -> Vec<String> {
    (active.iter().zip(reps))
        .filter_map(|(&(i, load), rep)| describe(&sides[i], load, &StepSummary::from_report(rep)))
        .collect()
}

/// "group's 22 failures": the sides of a growth step (before their search
/// first saw the objective break) whose window broke it with failures that
/// were draining ([`StepSummary::failures_draining`]). Such a window
/// measured the step's own ramp: near the knee a doubling's new users log
/// in faster than the replicas' spare CPU hashes, and the backlog takes
/// longer to drain than the warm-up waits for a step up. Judged on it, the
/// step capped the search below the knee (a group held 150 users after
/// failing at 160 on its ramp, where it held 160–220 in other runs); a
/// fresh window judges the load. An overload fails to the window's end and
/// is not measured again; steps after the first break are smaller. It is
/// judged on the window, not in [`load::settle`]'s wait: a window's seconds
/// show the trend that the wait's latest second cannot, and letting every
/// step up wait for its routes put two runs of five over 3 minutes (set K
/// in docs/lab.md).
fn draining_sides(
    ctx: &Ctx<'_>,
    sides: &[SideRun],
    active: &[(usize, u32)],
    reps: &[RunReport],
) -> Vec<String> {
    sides_where(sides, active, reps, |side, load, s| {
        let growing = !side.search.narrowing();
        let broke = step_verdict(&ctx.slo, s, load).is_err();
        (growing && broke && s.failures_draining())
            .then(|| format!("{}'s {} failures", side.target.name, s.failures))
    })
}

/// "single's 1.30% failed": the active sides whose window so far is within
/// chance of the failure objective ([`Slo::within_chance`]), over all
/// requests or on a route ([`Slo::route_in_doubt`]), and not broken already
/// by a route clearly over it.
fn doubtful_sides(
    ctx: &Ctx<'_>,
    sides: &[SideRun],
    active: &[(usize, u32)],
    reps: &[RunReport],
) -> Vec<String> {
    sides_where(sides, active, reps, |side, _, s| {
        let name = &side.target.name;
        if (s.routes.iter()).any(|r| ctx.slo.clearly_over(r.requests, r.failures)) {
            return None; // broken already: measuring longer cannot save it
        }
        if ctx.slo.within_chance(s.requests, s.failures) {
            let failed = ctx.slo.failed_percent(s.fail_ratio);
            return Some(format!("{name}'s {failed} failed"));
        }
        s.routes
            .iter()
            .find(|r| ctx.slo.route_in_doubt(r.requests, r.failures))
            .map(|r| {
                let (f, n) = (r.failures, r.requests);
                format!("{name}'s {f} of {n} {} {} failed", r.method, r.name)
            })
    })
}

/// Readings taken at a window's start, to difference at its end.
struct Before {
    /// Each active side's balancer `/status`, if it has one.
    status: Vec<Option<crate::status::BalancerStatus>>,
    /// Each active side's replicas' cgroup throttle counters.
    throttle: Vec<Vec<Option<crate::cgroup::Throttle>>>,
}

async fn read_before(
    ctx: &Ctx<'_>,
    sides: &[SideRun],
    active: &[(usize, u32)],
) -> Result<Before, Error> {
    let mut status = Vec::new();
    let mut throttle = Vec::new();
    for &(i, _) in active {
        let t = &sides[i].target;
        status.push(match &t.status_url {
            Some(u) => Some(ctx.probe.balancer_status(u).await?),
            None => None,
        });
        throttle.push(
            t.cgroup_ids
                .iter()
                .map(|id| ctx.stack.cgroups.as_ref().and_then(|g| g.throttle(id)))
                .collect(),
        );
    }
    Ok(Before { status, throttle })
}

/// Measures one window on every active side at once: resets their figures,
/// waits `--step-duration`, and reads loadgen, `/proc`, the cgroups and the
/// balancers over exactly that window.
async fn measure_window(
    ctx: &Ctx<'_>,
    sides: &mut [SideRun],
    active: &[(usize, u32)],
    warmup_s: f64,
    (length, extend): (Duration, bool),
) -> Result<(Vec<StepRecord>, Vec<RunReport>), Error> {
    // Every lab process, idle or not: what the host used beyond them is noise.
    let mut all = ctx.stack.processes();
    all.push((LOADGEN.to_string(), std::process::id()));
    let open = |sides: &[SideRun]| {
        for &(i, _) in active {
            if let Some(d) = sides[i].driver.as_ref() {
                d.open_window();
            }
        }
        Sampler::start(&all)
    };
    let report = |sides: &[SideRun]| -> Vec<RunReport> {
        active
            .iter()
            .filter_map(|&(i, _)| sides[i].driver.as_ref().map(Driver::window_report))
            .collect()
    };
    let mut before = read_before(ctx, sides, active).await?;
    let mut sampler = open(sides);
    tokio::time::sleep(length).await;
    let mut reps = report(sides);
    if extend {
        let draining = draining_sides(ctx, sides, active, &reps);
        if !draining.is_empty() {
            // The whole window again, so every figure of it (CPU, balancer
            // shares) covers the same seconds as loadgen's.
            let why = "fell to none by the window's end (a backlog of its ramp's logins draining, not its load)";
            say_measuring_again(ctx, &draining, why, length, "afresh");
            before = read_before(ctx, sides, active).await?;
            sampler = open(sides);
            tokio::time::sleep(length).await;
            reps = report(sides);
        }
        let doubtful = doubtful_sides(ctx, sides, active, &reps);
        if !doubtful.is_empty() {
            let why = "within chance of the failure objective";
            say_measuring_again(ctx, &doubtful, why, length, "more");
            tokio::time::sleep(length).await;
            reps = report(sides);
        }
    }
    let (processes, host_usage) = sampler.finish();
    let lab_cpu_percent: f64 = processes.iter().map(|p| p.cpu_percent).sum();
    let mut recs = Vec::new();
    for (k, &(i, load)) in active.iter().enumerate() {
        let t = &sides[i].target;
        let throttled = throttled_since(ctx, t, &before.throttle[k]);
        let mine = processes_of(t, &processes);
        let shares = match (&before.status[k], &t.status_url) {
            (Some(b), Some(u)) => {
                let a = ctx.probe.balancer_status(u).await?;
                let mut d = ShareDelta::between(b, &a);
                d.name_replicas(|addr| ctx.stack.replica_id(addr));
                Some(d)
            }
            _ => None,
        };
        recs.push(StepRecord {
            number: 0,
            load,
            summary: reps
                .get(k)
                .map(StepSummary::from_report)
                .unwrap_or_default(),
            confirmation: false,
            kept: false,
            verdict: String::new(),
            warmup_s,
            processes: mine,
            lab_cpu_percent,
            host: host_usage,
            throttled,
            shares,
        });
    }
    Ok((recs, reps))
}

/// `lab: window 5: single's 1.28% failed within chance of the failure
/// objective; measuring 4s more…`
fn say_measuring_again(ctx: &Ctx<'_>, found: &[String], why: &str, length: Duration, how: &str) {
    println!(
        "lab: window {}: {} {why}; measuring {} {how}…",
        ctx.windows_done,
        found.join(" and "),
        humantime::format_duration(length)
    );
}

/// The share of periods in which each of `t`'s replicas hit its CPU quota
/// since the counters in `before`.
fn throttled_since(
    ctx: &Ctx<'_>,
    t: &Target,
    before: &[Option<crate::cgroup::Throttle>],
) -> Vec<(String, f64)> {
    (t.cgroup_ids.iter().zip(before))
        .filter_map(|(id, b)| {
            let after = ctx.stack.cgroups.as_ref()?.throttle(id)?;
            Some((id.clone(), StepRecord::throttle_ratio((*b)?, after)))
        })
        .collect()
}

/// The processes that served `t`: its own, the load generator and the
/// database server (those two serve both sides).
fn processes_of(t: &Target, processes: &[ProcUsage]) -> Vec<ProcUsage> {
    (processes.iter())
        .filter(|p| {
            p.name == LOADGEN
                || p.name.starts_with(POSTGRES)
                || t.procs.iter().any(|(n, pid)| *n == p.name && *pid == p.pid)
        })
        .cloned()
        .collect()
}

/// `[single] step 3/9: 40 users … 118 req/s (good 118), p95 41 ms, 0.00% failed → kept`;
/// a confirmation (no `max_steps`) reads `[single] confirmation: 40 users …`.
pub(crate) fn progress_line(
    name: &str,
    rec: &StepRecord,
    max_steps: Option<u32>,
    unit: &str,
    slo: &Slo,
) -> String {
    let s = &rec.summary;
    let outcome = rec.outcome();
    let what = match max_steps {
        Some(m) => format!("step {}/{m}", rec.number),
        None => "confirmation".to_string(),
    };
    format!(
        "[{name:<6}] {what}: {:>5} {unit} … {:>7.1} req/s ({:.1} good), p95 {:>6.0} ms, {:>6} failed ({} timeouts) → {outcome}",
        rec.load,
        s.rps,
        s.goodput(),
        s.p95_ms,
        slo.failed_percent(s.fail_ratio),
        s.timeouts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::RouteStat;

    fn route(name: &str, requests: u64, median_ms: f64) -> RouteStat {
        RouteStat {
            method: "POST".into(),
            name: name.into(),
            requests,
            failures: 0,
            median_ms,
            avg_ms: median_ms,
        }
    }

    #[test]
    fn a_route_half_way_to_its_timeout_strains_a_step() {
        let two = Duration::from_secs(2);
        let mut s = StepSummary {
            routes: vec![route("/login", 24, 1298.0), route("/items", 3000, 4.0)],
            ..StepSummary::default()
        };
        let why = strained_route(&s, two).unwrap();
        assert_eq!(
            why,
            "POST /login waited 1298 ms at the median, over half the 2s request timeout"
        );
        s.routes[0].median_ms = 656.0; // the slowest growth step kept otherwise
        assert_eq!(strained_route(&s, two), None);
        s.routes[0] = route("/login", MIN_STRAINED_REQUESTS - 1, 1900.0);
        assert_eq!(strained_route(&s, two), None, "too few to trust a median");
    }
}
