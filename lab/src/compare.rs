//! `lab compare`: one replica directly against N replicas behind the
//! balancer, the same stepped load on both, at the same time when each
//! replica has a CPU budget.
//!
//! Both sides run on the same started stack (one extra replica, `single`, is
//! measured on its own; the group `r1..rN` sits behind the balancer). Each
//! side has its own users, kept across steps ([`load::Driver`]); with CPU
//! budgets, step k of both sides is ramped, warmed up and measured in the
//! same window, so machine noise (another job, thermal throttling, a cache
//! warming up) hits both alike. Without budgets the two sides would fight
//! over the same cores, so the single server's search runs first, then the
//! group's. Every step records loadgen's figures, CPU/memory of the
//! processes involved, cgroup throttling and, for the group, the balancer's
//! per-replica request counts over the same window. Ctrl-C or SIGTERM ends
//! the search early but still reports the steps finished so far.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgen::report::RunReport;

use crate::capacity::{Search, Slo};
use crate::cli::{CompareArgs, LoadModel};
use crate::diagnosis::{diagnose_run, Diagnosis, LOADGEN};
use crate::load::{self, Driver, DriverConfig, LoginShape, StepSummary};
use crate::procstat::Sampler;
use crate::report::{
    self, Bound, LabReport, RunResult, SearchEnd, Speedup, StepRecord, CAPACITY_MODEL,
};
use crate::stack::{Stack, StackPlan};
use crate::status::{Probe, ShareDelta};
use crate::{Error, Interrupt};

/// Which side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// One replica, directly.
    Single,
    /// N replicas through the balancer.
    Group,
}

impl Side {
    /// `single` / `group`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Single => "single",
            Side::Group => "group",
        }
    }
}

/// Creates `out/<UTC timestamp>` (with a suffix if it exists).
pub fn make_run_dir(out: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    for n in 0..100 {
        let dir = if n == 0 {
            out.join(&stamp)
        } else {
            out.join(format!("{stamp}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(dir, e)),
        }
    }
    Err(Error::Usage(format!(
        "{}: too many runs in the same second",
        out.display()
    )))
}

fn validate(args: &CompareArgs) -> Result<(), Error> {
    if !(args.growth.is_finite() && args.growth > 1.0 && args.growth <= 100.0) {
        return Err(Error::Usage(format!(
            "--growth {} must be above 1 (e.g. 2)",
            args.growth
        )));
    }
    if args.start_load > args.max_load {
        return Err(Error::Usage(format!(
            "--start-load {} is above --max-load {}",
            args.start_load, args.max_load
        )));
    }
    if args.step_duration < Duration::from_secs(1) {
        return Err(Error::Usage("--step-duration must be at least 1s".into()));
    }
    if let Some(r) = args.spawn_rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(Error::Usage(format!(
            "--spawn-rate {r} must be above 0 (e.g. 5)"
        )));
    }
    Ok(())
}

/// Users/s one replica takes on: `--spawn-rate`, else 20 per core of its
/// CPU budget (all cores without a budget). A login costs about 20 ms of CPU,
/// so joining users then use under half the budget.
fn spawn_rate_per_replica(args: &CompareArgs, budget: Option<f64>, cores: f64) -> f64 {
    args.spawn_rate
        .unwrap_or_else(|| 20.0 * budget.unwrap_or(cores).min(cores))
        .max(0.5)
}

/// One side of the comparison while it runs.
struct SideRun {
    side: Side,
    search: Search,
    /// `None` once the side's search is over (its users are gone).
    driver: Option<Driver>,
    /// Load of the previous step (0 before the first).
    load: u32,
    records: Vec<StepRecord>,
    reports: Vec<RunReport>,
}

/// Runs the comparison and writes the reports. Ctrl-C or SIGTERM stops the
/// search: the steps finished so far are still reported (marked as
/// interrupted), then [`Error::Interrupted`] is returned.
pub async fn run(args: CompareArgs) -> Result<(), Error> {
    let mut stop = Interrupt::install()?;
    validate(&args)?;
    let scenario = load::scenario(&args.scenario)?;
    let shape = LoginShape::of(&scenario);
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
    let run_dir = make_run_dir(&args.stack.out)?;
    println!("lab: writing into {}", run_dir.display());
    println!(
        "lab: starting 1 + {} replicas (CPU budget {}) and the balancer ({})…",
        args.stack.replicas, args.stack.replica_cpus, args.stack.algorithm
    );
    let plan = StackPlan::from_args(&args.stack, &run_dir, true);
    // Nothing is measured yet: an interruption here has nothing to report.
    let stack = tokio::select! {
        s = Stack::start(&plan) => s?,
        () = stop.recv() => return Err(Error::Interrupted),
    };
    println!("lab: {}", stack.budget_note);
    let budget = stack.budget_applied.cores();
    let n = f64::from(args.stack.replicas);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let per_replica = spawn_rate_per_replica(&args, budget, cores);
    let rates = [
        per_replica,
        // Without budgets the replicas share the host: the group may not log
        // users in faster than the single server, which has every core too.
        per_replica * if budget.is_some() { n } else { 1.0 },
    ];
    println!(
        "lab: objective: {}; each step ramps (new users join at {:.0}/s on one replica, {:.0}/s on the group, and log in), warms up ≥ {}, then measures {}; a request unanswered after {} counts as failed",
        slo.describe(),
        rates[0],
        rates[1],
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.step_duration),
        humantime::format_duration(timeout),
    );
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let search = || {
        Search::new(
            args.start_load,
            args.max_load,
            args.growth,
            args.refine,
            args.max_steps,
        )
    };
    let driver = |host: String, rate: f64| {
        Driver::new(DriverConfig {
            host,
            scenario: scenario.clone(),
            model: args.model,
            timeout,
            spawn_rate: rate,
        })
    };
    let single_host = stack
        .single
        .as_ref()
        .map(|s| format!("http://{}", s.addr))
        .ok_or_else(|| Error::Usage("internal: no single replica".into()))?;
    let mut sides = [
        SideRun {
            side: Side::Single,
            search: search(),
            driver: Some(driver(single_host, rates[0])),
            load: 0,
            records: Vec::new(),
            reports: Vec::new(),
        },
        SideRun {
            side: Side::Group,
            search: search(),
            driver: Some(driver(stack.balancer_url(), rates[1])),
            load: 0,
            records: Vec::new(),
            reports: Vec::new(),
        },
    ];
    let probe = Probe::new();
    let mut window = 0u32;
    let mut interrupted = false;
    loop {
        let mut active = Vec::new();
        for (i, s) in sides.iter_mut().enumerate() {
            // Without budgets the sides would compete for the same cores (and
            // the group, with more processes, would win): one after the other.
            let waits = budget.is_none() && !active.is_empty();
            match s.search.next_load() {
                Some(_) if waits => {}
                Some(l) => active.push((i, l)),
                None => {
                    if let Some(d) = s.driver.take() {
                        d.stop().await;
                    }
                }
            }
        }
        if active.is_empty() {
            break;
        }
        window += 1;
        let step = run_window(
            window, &stack, &probe, &mut sides, &active, &args, &slo, unit,
        );
        // A signal abandons the window in progress (its figures would be
        // partial); the finished steps are kept and reported below.
        tokio::select! {
            r = step => r?,
            () = stop.recv() => {
                interrupted = true;
                break;
            }
        }
    }
    // Cancels any user still running (an interrupted search).
    for s in &mut sides {
        s.driver = None;
    }
    if interrupted {
        println!(
            "\nlab: interrupted; reporting the {} finished step(s) of the single server and {} of the group",
            sides[0].records.len(),
            sides[1].records.len()
        );
    }
    let [single_run, group_run] = sides;
    let mut runs = [single_run, group_run].map(|s| {
        let result = run_result(&s, &stack, &args, budget, &shape, interrupted, unit);
        (result, s.reports)
    });

    // Loadgen's own files (JSON + Locust CSVs) for the step at capacity of each run.
    let mut files = Vec::new();
    for (r, reports) in &mut runs {
        let idx = r
            .capacity_step
            .and_then(|n| r.steps.iter().position(|s| s.number == n))
            .or_else(|| r.steps.len().checked_sub(1));
        if let Some(rep) = idx.and_then(|k| reports.get(k)) {
            files.extend(write_loadgen_files(rep, &run_dir, &r.name)?);
        }
    }
    let [(single, _), (group, _)] = runs;
    let mut report = build_report(&args, &stack, started, single, group, slo, unit);
    report.interrupted = interrupted;
    report.files = files;
    let written = report::write_all(&mut report, &run_dir, !args.no_html)?;
    print!("{}", report::terminal::render(&report));
    for w in written {
        println!("lab: wrote {}", w.display());
    }
    println!("lab: logs and Locust-style CSVs in {}", run_dir.display());
    stack.shutdown().await;
    if interrupted {
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// Longest wait for a side's servers to go idle before a fresh start.
const COOL_DOWN_MAX: Duration = Duration::from_secs(30);
/// A process using less than this (percent of a core) counts as idle.
const IDLE_CPU_PERCENT: f64 = 3.0;

/// Before a side starts afresh (its last step broke the objective), stops
/// its users and waits, up to `COOL_DOWN_MAX`, until its replicas and
/// balancer are idle. Requests its users abandoned (logins that timed out)
/// keep a budgeted replica busy for seconds; a step started inside that
/// backlog would see every login time out, and users retrying them keep
/// the server overloaded at a load it handled before.
async fn cool_down(window: u32, stack: &Stack, sides: &[SideRun; 2], active: &[(usize, u32)]) {
    let mut procs = Vec::new();
    let mut names = Vec::new();
    for &(i, _) in active {
        if let Some(d) = sides[i].driver.as_ref().filter(|d| d.restarts()) {
            d.stop().await;
            procs.extend(side_processes(stack, sides[i].side).0);
            names.push(sides[i].side.name());
        }
    }
    if procs.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    while started.elapsed() < COOL_DOWN_MAX {
        let sampler = Sampler::start(&procs);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (usage, _) = sampler.finish();
        if usage.iter().all(|p| p.cpu_percent < IDLE_CPU_PERCENT) {
            break;
        }
    }
    println!(
        "lab: window {window}: {} restarts after a broken step: users stopped, servers idle after {:.1} s",
        names.join(" and "),
        started.elapsed().as_secs_f64()
    );
}

/// One measurement window: ramps and warms up every active side, measures
/// them together, and records each side's step.
#[allow(clippy::too_many_arguments)]
async fn run_window(
    window: u32,
    stack: &Stack,
    probe: &Probe,
    sides: &mut [SideRun; 2],
    active: &[(usize, u32)],
    args: &CompareArgs,
    slo: &Slo,
    unit: &str,
) -> Result<(), Error> {
    let plan: Vec<String> = active
        .iter()
        .map(|&(i, l)| {
            let s = &sides[i];
            format!(
                "{} step {} ({l} {unit})",
                s.side.name(),
                s.records.len() + 1
            )
        })
        .collect();
    println!(
        "lab: window {window}: {}; ramping and warming up…",
        plan.join(", "),
    );
    cool_down(window, stack, sides, active).await;
    let mut ramp = Duration::ZERO;
    for &(i, l) in active {
        let s = &mut sides[i];
        if let Some(d) = s.driver.as_mut() {
            ramp = ramp.max(d.ramp_estimate(d.ramp_from(), l));
            d.set_load(l).await?;
        }
        s.load = l;
    }
    let drivers: Vec<&Driver> = active
        .iter()
        .filter_map(|&(i, _)| sides[i].driver.as_ref())
        .collect();
    let warmup = load::settle(&drivers, slo, ramp, args.warmup, args.settle_max).await;
    println!(
        "lab: window {window}: settled after {warmup:.0} s; measuring {}…",
        humantime::format_duration(args.step_duration)
    );
    let (mut recs, reps) = measure_window(stack, probe, sides, active, args, warmup).await?;
    for ((i, load), (mut rec, rep)) in active.iter().copied().zip(recs.drain(..).zip(reps)) {
        let s = &mut sides[i];
        rec.number = s.records.len() as u32 + 1;
        rec.load = load;
        let verdict = slo.check(
            rec.summary.requests,
            rec.summary.fail_ratio,
            rec.summary.p95_ms,
        );
        let verdict = verdict.and_then(|()| dropped_check(&rec.summary, load, slo));
        rec.kept = verdict.is_ok();
        rec.verdict = verdict.err().unwrap_or_default();
        s.search.record(load, rec.kept);
        if !rec.kept {
            if let Some(d) = s.driver.as_mut() {
                d.start_afresh();
            }
        }
        println!("{}", progress_line(s.side, &rec, args.max_steps, unit, slo));
        s.records.push(rec);
        s.reports.push(rep);
    }
    Ok(())
}

/// A side's result: its capacity (a lower bound if it never broke the
/// objective), why its search stopped, and the diagnosis of its limiting step.
fn run_result(
    s: &SideRun,
    stack: &Stack,
    args: &CompareArgs,
    budget: Option<f64>,
    shape: &LoginShape,
    interrupted: bool,
    unit: &str,
) -> RunResult {
    let search = &s.search;
    let search_ended = if interrupted && search.next_load().is_some() {
        SearchEnd::Interrupted
    } else if search.broken_at().is_some() {
        SearchEnd::Broke
    } else if search.hit_ceiling() {
        SearchEnd::MaxLoad
    } else {
        SearchEnd::MaxSteps
    };
    let capacity_step = search.capacity().and_then(|c| {
        s.records
            .iter()
            .find(|r| r.load == c && r.kept)
            .map(|r| r.number)
    });
    let lower_bound = search.broken_at().is_none();
    let mut r = RunResult {
        name: s.side.name().into(),
        target: match s.side {
            Side::Single => stack
                .single
                .as_ref()
                .map(|s| format!("http://{}", s.addr))
                .unwrap_or_default(),
            Side::Group => stack.balancer_url(),
        },
        steps: s.records.clone(),
        capacity_step,
        broken_at: search.broken_at(),
        hit_ceiling: search.hit_ceiling(),
        capacity_is_lower_bound: lower_bound && capacity_step.is_some(),
        search_ended,
        limit_note: if lower_bound {
            search_ended.hint(args.max_load, args.max_steps, unit)
        } else {
            String::new()
        },
        diagnosis: Diagnosis::default(),
    };
    if let Some(step) = r.limiting_step() {
        let not_reached = lower_bound.then_some(r.limit_note.as_str());
        r.diagnosis = diagnose_run(step, budget, shape, not_reached);
    }
    r
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

/// `(name, pid)` of a side's processes and the cgroup ids of its replicas.
type SideProcesses = (Vec<(String, u32)>, Vec<String>);

/// Processes of one side: its replicas (and the balancer for the group).
fn side_processes(stack: &Stack, side: Side) -> SideProcesses {
    match side {
        Side::Single => stack
            .single
            .iter()
            .map(|s| ((format!("replica {}", s.id), s.guard.pid()), s.id.clone()))
            .unzip(),
        Side::Group => {
            let (mut p, ids): (Vec<_>, Vec<_>) = stack
                .replicas
                .iter()
                .map(|r| ((format!("replica {}", r.id), r.guard.pid()), r.id.clone()))
                .unzip();
            p.push(("balancer".into(), stack.balancer.guard.pid()));
            (p, ids)
        }
    }
}

/// Measures one window on every active side at once: resets their figures,
/// waits `--step-duration`, and reads loadgen, `/proc`, the cgroups and the
/// balancer over exactly that window.
async fn measure_window(
    stack: &Stack,
    probe: &Probe,
    sides: &mut [SideRun; 2],
    active: &[(usize, u32)],
    args: &CompareArgs,
    warmup_s: f64,
) -> Result<(Vec<StepRecord>, Vec<RunReport>), Error> {
    let per_side: Vec<SideProcesses> = active
        .iter()
        .map(|&(i, _)| side_processes(stack, sides[i].side))
        .collect();
    // Every lab process, idle or not: what the host used beyond them is noise.
    let mut all = stack.processes();
    all.push((LOADGEN.to_string(), std::process::id()));
    let group_active = active.iter().any(|&(i, _)| sides[i].side == Side::Group);
    let status_before = if group_active {
        Some(probe.balancer_status(&stack.status_url()).await?)
    } else {
        None
    };
    let throttle_before: Vec<Vec<_>> = per_side
        .iter()
        .map(|(_, ids)| {
            ids.iter()
                .map(|id| stack.cgroups.as_ref().and_then(|g| g.throttle(id)))
                .collect()
        })
        .collect();
    for &(i, _) in active {
        if let Some(d) = sides[i].driver.as_mut() {
            d.open_window();
        }
    }
    let sampler = Sampler::start(&all);
    tokio::time::sleep(args.step_duration).await;
    let reps: Vec<RunReport> = active
        .iter()
        .filter_map(|&(i, _)| sides[i].driver.as_ref().map(Driver::window_report))
        .collect();
    let (processes, host_usage) = sampler.finish();
    let lab_cpu_percent: f64 = processes.iter().map(|p| p.cpu_percent).sum();
    let status_after = if group_active {
        Some(probe.balancer_status(&stack.status_url()).await?)
    } else {
        None
    };
    let mut recs = Vec::new();
    for (k, &(i, load)) in active.iter().enumerate() {
        let side = sides[i].side;
        let (procs, ids) = &per_side[k];
        let throttled = ids
            .iter()
            .zip(&throttle_before[k])
            .filter_map(|(id, before)| {
                let after = stack.cgroups.as_ref()?.throttle(id)?;
                Some((id.clone(), StepRecord::throttle_ratio((*before)?, after)))
            })
            .collect();
        let mine: Vec<_> = processes
            .iter()
            .filter(|p| {
                p.name == LOADGEN || procs.iter().any(|(n, pid)| *n == p.name && *pid == p.pid)
            })
            .cloned()
            .collect();
        let shares = match (side, &status_before, &status_after) {
            (Side::Group, Some(b), Some(a)) => {
                let mut d = ShareDelta::between(b, a);
                d.name_replicas(|addr| stack.replica_id(addr));
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

/// `[single] step 3/9: 40 users … 118 req/s, p95 41 ms, 0.00% failed → kept`.
pub fn progress_line(
    side: Side,
    rec: &StepRecord,
    max_steps: u32,
    unit: &str,
    slo: &Slo,
) -> String {
    let s = &rec.summary;
    let outcome = if rec.kept {
        "kept the objective".to_string()
    } else {
        format!("broke it: {}", rec.verdict)
    };
    format!(
        "[{:<6}] step {}/{}: {:>5} {unit} … {:>7.1} req/s, p95 {:>6.0} ms, {:>6} failed ({} timeouts) → {outcome}",
        side.name(),
        rec.number,
        max_steps,
        rec.load,
        s.rps,
        s.p95_ms,
        slo.failed_percent(s.fail_ratio),
        s.timeouts,
    )
}

fn write_loadgen_files(rep: &RunReport, dir: &Path, name: &str) -> Result<Vec<String>, Error> {
    let json = dir.join(format!("{name}.json"));
    loadgen::report::write_json(rep, &json)?;
    let prefix = dir.join(name);
    loadgen::report::write_csv(rep, &prefix)?;
    let mut files = vec![format!("{name}.json")];
    for suffix in ["stats", "stats_history", "failures", "exceptions"] {
        let f = format!("{name}_{suffix}.csv");
        if dir.join(&f).exists() {
            files.push(f);
        }
    }
    Ok(files)
}

fn build_report(
    args: &CompareArgs,
    stack: &Stack,
    started: String,
    single: RunResult,
    group: RunResult,
    slo: Slo,
    unit: &str,
) -> LabReport {
    let speedup = Speedup::of(&single, &group, args.stack.replicas);
    let conclusion = conclusion(&single, &group, &speedup, args.stack.replicas, unit, stack);
    LabReport {
        started,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        replicas: args.stack.replicas,
        algorithm: args.stack.algorithm.clone(),
        budget_requested: args.stack.replica_cpus.to_string(),
        budget_applied: stack.budget_applied.to_string(),
        budget_note: stack.budget_note.clone(),
        capacity_model: CAPACITY_MODEL.to_string(),
        host_cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        slo,
        model: match args.model {
            LoadModel::Closed => "closed".into(),
            LoadModel::Open => "open".into(),
        },
        load_unit: unit.to_string(),
        scenario: args.scenario.clone(),
        step_seconds: args.step_duration.as_secs_f64(),
        single,
        group,
        speedup: speedup.load,
        rps_speedup: speedup.rps,
        efficiency: speedup.efficiency,
        speedup_bound: speedup.bound,
        interrupted: false,
        conclusion,
        files: Vec::new(),
    }
}

fn conclusion(
    single: &RunResult,
    group: &RunResult,
    speedup: &Speedup,
    replicas: u16,
    unit: &str,
    stack: &Stack,
) -> String {
    let describe = |r: &RunResult| match r.capacity() {
        Some(s) if r.capacity_is_lower_bound => format!(
            "at least {} {unit} (it never broke the objective; {})",
            s.load,
            r.search_ended.advice()
        ),
        Some(s) => format!("{} {unit} ({:.0} req/s)", s.load, s.summary.rps),
        None => "not even the first step".to_string(),
    };
    let mut out = format!(
        "One server kept the objective up to {}; {} replicas behind the balancer up to {}.",
        describe(single),
        replicas,
        describe(group)
    );
    out.push(' ');
    out.push_str(&speedup_sentence(speedup, replicas));
    if !group.capacity_is_lower_bound && !group.diagnosis.bottleneck.is_empty() {
        out.push_str(&format!(
            " The group was limited by {}.",
            group.diagnosis.bottleneck
        ));
    }
    if stack.budget_applied.cores().is_none() {
        out.push_str(" Without CPU budgets all processes share this machine's cores: read this as one box, not N servers.");
    }
    out
}

/// The speed-up in a sentence, bound included.
fn speedup_sentence(sp: &Speedup, replicas: u16) -> String {
    match (sp.bound, sp.load, sp.efficiency) {
        (Bound::NotMeasured, ..) => "Speed-up not measured: neither side broke the objective, so both capacities are only lower bounds.".to_string(),
        (_, Some(s), Some(e)) => {
            let (sign, why) = match sp.bound {
                Bound::AtLeast => ("at least ", " (a lower bound: the group never broke the objective)"),
                Bound::AtMost => ("at most ", " (an upper bound: the single server never broke the objective)"),
                _ => ("", ""),
            };
            format!(
                "Speed-up {sign}{s:.2}× the load with {replicas} replicas, scaling efficiency {sign}{:.0}% (requests/s){why}.",
                e * 100.0
            )
        }
        _ => "Speed-up not computable: one side never kept the objective.".to_string(),
    }
}
