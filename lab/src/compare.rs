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
//! per-replica request counts over the same window.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgen::report::RunReport;

use crate::capacity::{Search, Slo};
use crate::cli::{CompareArgs, LoadModel};
use crate::diagnosis::{diagnose_run, Diagnosis, LOADGEN};
use crate::load::{self, Driver, DriverConfig, StepSummary};
use crate::procstat::Sampler;
use crate::report::{self, LabReport, RunResult, StepRecord, CAPACITY_MODEL};
use crate::stack::{Stack, StackPlan};
use crate::status::{Probe, ShareDelta};
use crate::Error;

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

/// Runs the comparison and writes the reports.
pub async fn run(args: CompareArgs) -> Result<(), Error> {
    validate(&args)?;
    let scenario = load::scenario(&args.scenario)?;
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
    let stack = Stack::start(&plan).await?;
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
    let mut step_no = 0u32;
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
        step_no += 1;
        let plan: Vec<String> = active
            .iter()
            .map(|&(i, l)| format!("{} {l} {unit}", sides[i].side.name()))
            .collect();
        println!(
            "lab: step {step_no}: {}; ramping and warming up…",
            plan.join(", "),
        );
        let mut ramp = Duration::ZERO;
        for &(i, l) in &active {
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
        let warmup = load::settle(&drivers, &slo, ramp, args.warmup, args.settle_max).await;
        println!(
            "lab: step {step_no}: settled after {warmup:.0} s; measuring {}…",
            humantime::format_duration(args.step_duration)
        );
        let (mut recs, reps) =
            measure_window(&stack, &probe, &mut sides, &active, &args, warmup).await?;
        for ((i, load), (mut rec, rep)) in active.iter().copied().zip(recs.drain(..).zip(reps)) {
            let s = &mut sides[i];
            rec.number = s.records.len() as u32 + 1;
            rec.load = load;
            let verdict = slo.check(
                rec.summary.requests,
                rec.summary.fail_ratio,
                rec.summary.p95_ms,
            );
            let verdict = verdict.and_then(|()| dropped_check(&rec.summary, load, &slo));
            rec.kept = verdict.is_ok();
            rec.verdict = verdict.err().unwrap_or_default();
            s.search.record(load, rec.kept);
            if !rec.kept {
                if let Some(d) = s.driver.as_mut() {
                    d.start_afresh();
                }
            }
            println!("{}", progress_line(s.side, &rec, args.max_steps, unit));
            s.records.push(rec);
            s.reports.push(rep);
        }
    }
    let [single_run, group_run] = sides;
    let searches = [
        (single_run.side, single_run.search),
        (group_run.side, group_run.search),
    ];
    let records = [single_run.records, group_run.records];
    let reports = [single_run.reports, group_run.reports];

    let results: Vec<RunResult> = searches
        .iter()
        .zip(records)
        .map(|((side, search), steps)| {
            let capacity_step = search
                .capacity()
                .and_then(|c| steps.iter().position(|s| s.load == c && s.kept));
            let mut r = RunResult {
                name: side.name().into(),
                target: match side {
                    Side::Single => stack
                        .single
                        .as_ref()
                        .map(|s| format!("http://{}", s.addr))
                        .unwrap_or_default(),
                    Side::Group => stack.balancer_url(),
                },
                steps,
                capacity_step,
                broken_at: search.broken_at(),
                hit_ceiling: search.hit_ceiling(),
                diagnosis: Diagnosis::default(),
            };
            if let Some(step) = r.limiting_step() {
                r.diagnosis = diagnose_run(step, r.broken_at.is_some(), budget);
            }
            r
        })
        .collect();
    let [single, group]: [RunResult; 2] = results
        .try_into()
        .map_err(|_| Error::Usage("internal: two runs expected".into()))?;

    // Loadgen's own files (JSON + Locust CSVs) for the step at capacity of each run.
    let mut files = Vec::new();
    for (i, r) in [&single, &group].iter().enumerate() {
        let idx = r.capacity_step.or_else(|| r.steps.len().checked_sub(1));
        if let Some(rep) = idx.and_then(|k| reports[i].get(k)) {
            files.extend(write_loadgen_files(rep, &run_dir, &r.name)?);
        }
    }
    let mut report = build_report(&args, &stack, started, single, group, slo, unit);
    report.files = files;
    let written = report::write_all(&mut report, &run_dir, !args.no_html)?;
    print!("{}", report::terminal::render(&report));
    for w in written {
        println!("lab: wrote {}", w.display());
    }
    println!("lab: logs and Locust-style CSVs in {}", run_dir.display());
    stack.shutdown().await;
    Ok(())
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
    let me = (LOADGEN.to_string(), std::process::id());
    let per_side: Vec<SideProcesses> = active
        .iter()
        .map(|&(i, _)| side_processes(stack, sides[i].side))
        .collect();
    let mut all: Vec<(String, u32)> = per_side.iter().flat_map(|p| p.0.clone()).collect();
    all.push(me);
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
            (Side::Group, Some(b), Some(a)) => Some(ShareDelta::between(b, a)),
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
            host: host_usage,
            throttled,
            shares,
        });
    }
    Ok((recs, reps))
}

/// `[single] step 3/9: 40 users … 118 req/s, p95 41 ms, 0.0% failed → kept`.
pub fn progress_line(side: Side, rec: &StepRecord, max_steps: u32, unit: &str) -> String {
    let s = &rec.summary;
    let outcome = if rec.kept {
        "kept the objective".to_string()
    } else {
        format!("broke it: {}", rec.verdict)
    };
    format!(
        "[{:<6}] step {}/{}: {:>5} {unit} … {:>7.1} req/s, p95 {:>6.0} ms, {:>5.1}% failed ({} timeouts) → {outcome}",
        side.name(),
        rec.number,
        max_steps,
        rec.load,
        s.rps,
        s.p95_ms,
        s.fail_ratio * 100.0,
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
    let n = f64::from(args.stack.replicas);
    let cap = |r: &RunResult| r.capacity().map(|s| (f64::from(s.load), s.summary.rps));
    let (speedup, rps_speedup) = match (cap(&single), cap(&group)) {
        (Some((l1, r1)), Some((ln, rn))) if l1 > 0.0 => {
            (Some(ln / l1), (r1 > 0.0).then(|| rn / r1))
        }
        _ => (None, None),
    };
    let efficiency = speedup.map(|s| s / n);
    let conclusion = conclusion(
        &single,
        &group,
        speedup,
        efficiency,
        args.stack.replicas,
        unit,
        stack,
    );
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
        speedup,
        rps_speedup,
        efficiency,
        conclusion,
        files: Vec::new(),
    }
}

fn conclusion(
    single: &RunResult,
    group: &RunResult,
    speedup: Option<f64>,
    efficiency: Option<f64>,
    replicas: u16,
    unit: &str,
    stack: &Stack,
) -> String {
    let describe = |r: &RunResult| match r.capacity() {
        Some(s) if r.hit_ceiling => format!(
            "at least {} {unit} (never broke the objective up to --max-load)",
            s.load
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
    if let (Some(s), Some(e)) = (speedup, efficiency) {
        out.push_str(&format!(
            " Speed-up {s:.2}× with {replicas} replicas, scaling efficiency {:.0}%.",
            e * 100.0
        ));
        if group.hit_ceiling {
            out.push_str(
                " The group never broke the objective, so this is a lower bound: raise --max-load.",
            );
        }
    }
    out.push_str(&format!(
        " The group was limited by {}.",
        if group.diagnosis.bottleneck.is_empty() {
            "nothing measured"
        } else {
            &group.diagnosis.bottleneck
        }
    ));
    if stack.budget_applied.cores().is_none() {
        out.push_str(" Without CPU budgets all processes share this machine's cores: read this as one box, not N servers.");
    }
    out
}
