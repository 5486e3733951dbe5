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

use crate::campaign::{self, Ctx, SideRun, Target};
use crate::cgroup::{self, CpuGroups};
use crate::cli::{CompareArgs, LoadModel, SearchArgs};
use crate::diagnosis::{diagnose_run, Diagnosis};
use crate::load::{self, LoginShape};
use crate::report::{
    self, Bound, LabReport, RepeatFigures, RunResult, SearchEnd, Speedup, SpeedupSpread,
    CAPACITY_MODEL,
};
use crate::stack::{Stack, StackPlan};
use crate::{Error, Interrupt};

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

/// Refuses search flags that cannot make a search.
pub(crate) fn validate(args: &SearchArgs) -> Result<(), Error> {
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
    // The CFS quota is enforced per period (`cgroup::PERIOD_US`): a window
    // that is not a whole number of periods counts one period's throttling
    // partly, which moves a budgeted replica's throughput by up to a
    // period's share. (A budget under 0.1 of a core gets a longer period,
    // `cgroup::period_for`; whole seconds are whole periods either way.)
    for (flag, d) in [
        ("--step-duration", args.step_duration),
        ("--refine-duration", args.refine_window()),
        ("--confirm", args.confirm),
    ] {
        if d.as_micros() % u128::from(cgroup::PERIOD_US) != 0 {
            return Err(Error::Usage(format!(
                "{flag} {} must be a whole number of {} ms scheduler periods (e.g. 4s or 4.5s)",
                humantime::format_duration(d),
                cgroup::PERIOD_US / 1000
            )));
        }
    }
    if args.refine_window() < args.step_duration {
        return Err(Error::Usage(format!(
            "--refine-duration {} is shorter than --step-duration {}: it is meant to measure the steps near the capacity longer",
            humantime::format_duration(args.refine_window()),
            humantime::format_duration(args.step_duration)
        )));
    }
    if !args.confirm.is_zero() && args.confirm < args.step_duration {
        return Err(Error::Usage(format!(
            "--confirm {} is shorter than --step-duration {}: it is meant to measure the capacity longer (or 0s for none)",
            humantime::format_duration(args.confirm),
            humantime::format_duration(args.step_duration)
        )));
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
pub(crate) fn spawn_rate_per_replica(args: &SearchArgs, budget: Option<f64>, cores: f64) -> f64 {
    args.spawn_rate
        .unwrap_or_else(|| 20.0 * budget.unwrap_or(cores).min(cores))
        .max(0.5)
}

/// The two sides of the comparison: one replica directly, the group
/// through the balancer.
fn targets(stack: &Stack) -> Result<[Target; 2], Error> {
    let single = stack
        .single
        .as_ref()
        .ok_or_else(|| Error::Usage("internal: no single replica".into()))?;
    let mut procs: Vec<(String, u32)> = stack
        .replicas
        .iter()
        .map(|r| (format!("replica {}", r.id), r.guard.pid()))
        .collect();
    procs.push(("balancer".into(), stack.balancer.guard.pid()));
    Ok([
        Target {
            name: "single".into(),
            host: format!("http://{}", single.addr),
            procs: vec![(format!("replica {}", single.id), single.guard.pid())],
            cgroup_ids: vec![single.id.clone()],
            status_url: None,
        },
        Target {
            name: "group".into(),
            host: stack.balancer_url(),
            procs,
            cgroup_ids: stack.replicas.iter().map(|r| r.id.clone()).collect(),
            status_url: Some(stack.status_url()),
        },
    ])
}

/// Runs the comparison and writes the reports. Ctrl-C or SIGTERM stops the
/// search: the steps finished so far are still reported (marked as
/// interrupted), then [`Error::Interrupted`] is returned.
pub async fn run(args: CompareArgs) -> Result<(), Error> {
    let mut stop = Interrupt::install()?;
    validate(&args.search)?;
    let objective = campaign::objective(&args.search)?;
    let scenario = load::scenario(&args.search.scenario)?;
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
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let shape = LoginShape::of(&scenario);
    let mut ctx = Ctx::new(&stack, &args.search, objective, scenario);
    let (repeats, interrupted) = run_repeats(&mut ctx, &args, &mut stop).await?;
    let mut report = summarise(&args, &stack, &shape, repeats, interrupted, &run_dir)?;
    report.started = started;
    let written = report::write_all(&mut report, &run_dir, !args.search.no_html)?;
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

/// Spawn rates of the single server and of the group, announced with the objective.
fn spawn_rates(ctx: &Ctx<'_>, replicas: u16) -> [f64; 2] {
    let budget = ctx.stack.budget_applied.cores();
    let cores = crate::procstat::host_cores() as f64;
    let per_replica = spawn_rate_per_replica(ctx.args, budget, cores);
    let rates = [
        per_replica,
        // Without budgets the replicas share the host: the group may not log
        // users in faster than the single server, which has every core too.
        per_replica
            * if budget.is_some() {
                f64::from(replicas)
            } else {
                1.0
            },
    ];
    println!(
        "lab: objective: {}; each step ramps (new users join at {:.0}/s on one replica, {:.0}/s on the group, and log in), warms up ≥ {}, then measures {} ({} once a step has broken it, near the capacity); a request unanswered after {} counts as failed",
        ctx.slo.describe(),
        rates[0],
        rates[1],
        humantime::format_duration(ctx.args.warmup),
        humantime::format_duration(ctx.args.step_duration),
        humantime::format_duration(ctx.args.refine_window()),
        humantime::format_duration(ctx.timeout),
    );
    rates
}

/// Runs `--repeat` comparisons, each side's search in the same windows as
/// the other's when budgets keep them apart. Returns every repeat's two
/// searches and whether a signal cut the last one short.
async fn run_repeats(
    ctx: &mut Ctx<'_>,
    args: &CompareArgs,
    stop: &mut Interrupt,
) -> Result<(Vec<[SideRun; 2]>, bool), Error> {
    let rates = spawn_rates(ctx, args.stack.replicas);
    // Without budgets the sides would compete for the same cores (and the
    // group, with more processes, would win): one after the other.
    let together = ctx.stack.budget_applied.cores().is_some();
    let k = args.search.repeat;
    let mut out: Vec<[SideRun; 2]> = Vec::new();
    for i in 0..k {
        if k > 1 {
            println!("lab: repeat {} of {k}", i + 1);
        }
        let [t1, t2] = targets(ctx.stack)?;
        // With budgets the group starts at N × the single server's first
        // load: N budgeted replicas take about N times its load, so the
        // group's search skips the steps far below its capacity and both
        // searches end in about the same number of windows.
        let group_start = if together {
            ctx.args
                .start_load
                .saturating_mul(u32::from(args.stack.replicas))
        } else {
            ctx.args.start_load
        };
        let mut sides = [
            ctx.side(t1, rates[0], ctx.args.start_load),
            ctx.side(t2, rates[1], group_start),
        ];
        // Later repeats are expected to take as many windows as this one so far.
        let per_repeat = ctx
            .windows_done
            .checked_div(i)
            .unwrap_or_else(|| campaign::windows_left(&sides, together, ctx.args));
        let later = per_repeat * (k - i - 1);
        let interrupted = campaign::run_searches(ctx, &mut sides, together, later, stop).await?;
        out.push(sides);
        if interrupted {
            return Ok((out, true));
        }
    }
    Ok((out, false))
}

/// Every repeat's results, the repeat at the median speed-up in detail,
/// and its loadgen files written.
fn summarise(
    args: &CompareArgs,
    stack: &Stack,
    shape: &LoginShape,
    repeats: Vec<[SideRun; 2]>,
    interrupted: bool,
    run_dir: &Path,
) -> Result<LabReport, Error> {
    let (_, _, unit) = campaign::objective(&args.search)?;
    let budget = stack.budget_applied.cores();
    if interrupted {
        let last = repeats
            .last()
            .map_or([0, 0], |r| [r[0].records.len(), r[1].records.len()]);
        println!(
            "\nlab: interrupted; reporting the {} finished step(s) of the single server and {} of the group",
            last[0], last[1]
        );
    }
    let n = repeats.len();
    let mut results: Vec<([RunResult; 2], [Option<RunReport>; 2])> = repeats
        .into_iter()
        .enumerate()
        .map(|(i, sides)| {
            let cut = interrupted && i + 1 == n;
            let rs = [&sides[0], &sides[1]]
                .map(|x| run_result(x, &args.search, budget, shape, cut, unit));
            let [s, g] = sides;
            let reps = [capacity_report(s, &rs[0]), capacity_report(g, &rs[1])];
            (rs, reps)
        })
        .collect();
    let figures: Vec<RepeatFigures> = results
        .iter()
        .map(|([s, g], _)| RepeatFigures::of(s, g, args.stack.replicas))
        .collect();
    let pick = RepeatFigures::median_index(&figures);
    let ([single, group], reports) = results.swap_remove(pick);
    // Loadgen's own files (JSON + Locust CSVs) of the capacity's measurement.
    let mut files = Vec::new();
    for (r, rep) in [&single, &group].into_iter().zip(&reports) {
        if let Some(rep) = rep {
            files.extend(write_loadgen_files(rep, run_dir, &r.name)?);
        }
    }
    let mut report = build_report(args, stack, single, group, unit);
    report.explained = explain(&report, shape);
    report.spread = SpeedupSpread::of(&figures);
    report.repeats = figures;
    report.repeat_shown = (n > 1).then_some(pick as u32 + 1);
    report.interrupted = interrupted;
    report.files = files;
    Ok(report)
}

/// loadgen's report of what measured a side's capacity: its confirmation
/// window, else its step at capacity (else its last step).
fn capacity_report(s: SideRun, r: &RunResult) -> Option<RunReport> {
    let idx = r
        .capacity_step
        .and_then(|n| r.steps.iter().position(|x| x.number == n))
        .or_else(|| r.steps.len().checked_sub(1))?;
    s.reports.into_iter().nth(idx)
}

/// A side's result: its capacity (a lower bound if it never broke the
/// objective), why its search stopped, and the diagnosis of its limiting step.
fn run_result(
    s: &SideRun,
    args: &SearchArgs,
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
    let capacity_step = s.capacity_record().map(|r| r.number);
    let lower_bound = search.broken_at().is_none();
    let mut r = RunResult {
        name: s.target.name.clone(),
        target: s.target.host.clone(),
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
        knee: crate::knee::Knee::fit(&s.records),
    };
    if let Some(step) = r.limiting_step() {
        let not_reached = lower_bound.then_some(r.limit_note.as_str());
        r.diagnosis = diagnose_run(step, budget, shape, not_reached);
    }
    r
}

/// Per side, where the replicas' CPU goes by request class; then the gap
/// between the group and N × one replica, cause by cause.
fn explain(r: &LabReport, shape: &LoginShape) -> Vec<String> {
    let mut out = Vec::new();
    for run in [&r.single, &r.group] {
        let costs = crate::explain::route_costs(&run.steps, shape);
        match costs.and_then(|c| crate::explain::cost_sentence(&c, run.steps.len())) {
            Some(t) => out.push(format!("{}: {t}", run.name)),
            None => out.push(format!(
                "{}: per-route CPU not separable (too few steps, or the same mix of logins in each)",
                run.name
            )),
        }
    }
    out.extend(crate::explain::gap_notes(
        r.single.capacity(),
        r.group.capacity(),
        r.replicas,
        r.cpus_apart,
    ));
    out
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
    single: RunResult,
    group: RunResult,
    unit: &str,
) -> LabReport {
    let slo = campaign::objective(&args.search)
        .map(|o| o.0)
        .unwrap_or_default();
    let speedup = Speedup::of(&single, &group, args.stack.replicas);
    let conclusion = conclusion(&single, &group, &speedup, args.stack.replicas, unit, stack);
    LabReport {
        started: String::new(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        replicas: args.stack.replicas,
        algorithm: args.stack.algorithm.clone(),
        budget_requested: args.stack.replica_cpus.to_string(),
        budget_applied: stack.budget_applied.to_string(),
        budget_note: stack.budget_note.clone(),
        cpus_apart: stack.cgroups.as_ref().is_some_and(CpuGroups::keeps_apart),
        capacity_model: CAPACITY_MODEL.to_string(),
        host_cores: crate::procstat::host_cores(),
        slo,
        model: match args.search.model {
            LoadModel::Closed => "closed".into(),
            LoadModel::Open => "open".into(),
        },
        load_unit: unit.to_string(),
        scenario: args.search.scenario.clone(),
        step_seconds: args.search.step_duration.as_secs_f64(),
        single,
        group,
        speedup: speedup.load,
        rps_speedup: speedup.rps,
        goodput_speedup: speedup.goodput,
        repeats: Vec::new(),
        spread: SpeedupSpread::default(),
        repeat_shown: None,
        efficiency: speedup.efficiency,
        speedup_bound: speedup.bound,
        speedup_at_knees: speedup.at_knees,
        interrupted: false,
        explained: Vec::new(),
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
    if let (true, Some(s), Some(g)) = (speedup.at_knees, single.knee, group.knee) {
        out.push_str(&format!(
            " Their knees, fitted to every window, were at {:.0} and {:.0} {unit} (the loads at which half of the {:.0} s windows break the objective).",
            s.load,
            g.load,
            crate::knee::REFERENCE_SECONDS
        ));
    }
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
                "Speed-up {sign}{s:.2}× the load with {replicas} replicas{}, scaling efficiency {sign}{:.0}% (requests/s){why}.",
                if sp.at_knees { " at the knees" } else { "" },
                e * 100.0
            )
        }
        _ => "Speed-up not computable: one side never kept the objective.".to_string(),
    }
}
