//! `lab compare`: one replica directly against N replicas behind the
//! balancer, the same stepped load on both, in turns.
//!
//! Both sides run on the same started stack (one extra replica, `single`, is
//! measured on its own; the group `r1..rN` sits behind the balancer). Step k
//! of the single server is followed by step k of the group, so machine noise
//! (another job, thermal throttling, a cache warming up) hits both alike.
//! Every step records loadgen's figures, CPU/memory of the processes
//! involved, cgroup throttling and, for the group, the balancer's
//! per-replica request counts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgen::report::RunReport;

use crate::capacity::{Search, Slo};
use crate::cli::{CompareArgs, LoadModel};
use crate::diagnosis::{diagnose_run, Diagnosis, LOADGEN};
use crate::load::{self, StepSummary};
use crate::procstat::Sampler;
use crate::report::{self, LabReport, RunResult, StepRecord, CAPACITY_MODEL};
use crate::stack::{Stack, StackPlan};
use crate::status::{Probe, ShareDelta};
use crate::Error;

/// Pause between steps so the previous step's connections drain.
const SETTLE: Duration = Duration::from_millis(500);

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
    Ok(())
}

/// Runs the comparison and writes the reports.
pub async fn run(args: CompareArgs) -> Result<(), Error> {
    validate(&args)?;
    let scenario = load::scenario(&args.scenario)?;
    let run_dir = make_run_dir(&args.stack.out)?;
    let slo = Slo {
        max_fail_ratio: args.slo_failures / 100.0,
        max_p95_ms: args.slo_p95.as_secs_f64() * 1000.0,
    };
    let unit = match args.model {
        LoadModel::Closed => "users",
        LoadModel::Open => "it/s",
    };
    println!("lab: writing into {}", run_dir.display());
    println!(
        "lab: starting 1 + {} replicas (CPU budget {}) and the balancer ({})…",
        args.stack.replicas, args.stack.replica_cpus, args.stack.algorithm
    );
    let plan = StackPlan::from_args(&args.stack, &run_dir, true);
    let stack = Stack::start(&plan).await?;
    println!("lab: {}", stack.budget_note);
    println!(
        "lab: objective: {}; steps of {}",
        slo.describe(),
        humantime::format_duration(args.step_duration)
    );
    let budget = stack.budget_applied.cores();
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let mut searches = [
        (
            Side::Single,
            Search::new(
                args.start_load,
                args.max_load,
                args.growth,
                args.refine,
                args.max_steps,
            ),
        ),
        (
            Side::Group,
            Search::new(
                args.start_load,
                args.max_load,
                args.growth,
                args.refine,
                args.max_steps,
            ),
        ),
    ];
    let mut records: [Vec<StepRecord>; 2] = [Vec::new(), Vec::new()];
    let mut reports: [Vec<RunReport>; 2] = [Vec::new(), Vec::new()];
    let probe = Probe::new();
    loop {
        let mut progressed = false;
        for (i, (side, search)) in searches.iter_mut().enumerate() {
            let Some(load) = search.next_load() else {
                continue;
            };
            progressed = true;
            let number = records[i].len() as u32 + 1;
            let (mut rec, rep) =
                measure_step(&stack, &probe, *side, &scenario, &args, load, number).await?;
            let verdict = slo.check(
                rec.summary.requests,
                rec.summary.fail_ratio,
                rec.summary.p95_ms,
            );
            rec.kept = verdict.is_ok();
            rec.verdict = verdict.err().unwrap_or_default();
            search.record(load, rec.kept);
            println!("{}", progress_line(*side, &rec, args.max_steps, unit));
            let broke = !rec.kept;
            records[i].push(rec);
            reports[i].push(rep);
            tokio::time::sleep(SETTLE).await;
            if broke {
                // An overloaded replica keeps working off its backlog after the
                // load stops; wait (bounded) until it answers promptly again so
                // the next step does not inherit this one's queue.
                recover(&stack, &probe, *side).await;
            }
        }
        if !progressed {
            break;
        }
    }

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

/// Waits up to 30 s until every replica of `side` answers `/healthz` within 200 ms.
async fn recover(stack: &Stack, probe: &Probe, side: Side) {
    let addrs: Vec<std::net::SocketAddr> = match side {
        Side::Single => stack.single.iter().map(|r| r.addr).collect(),
        Side::Group => stack.replicas.iter().map(|r| r.addr).collect(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for a in addrs {
        let url = format!("http://{a}/healthz");
        while tokio::time::Instant::now() < deadline {
            let t = std::time::Instant::now();
            if matches!(probe.get(&url).await, Ok((200, _)))
                && t.elapsed() < Duration::from_millis(200)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn measure_step(
    stack: &Stack,
    probe: &Probe,
    side: Side,
    scenario: &loadgen::scenario::Scenario,
    args: &CompareArgs,
    load: u32,
    number: u32,
) -> Result<(StepRecord, RunReport), Error> {
    let me = (LOADGEN.to_string(), std::process::id());
    let (host, mut procs, ids): (String, Vec<(String, u32)>, Vec<String>) = match side {
        Side::Single => {
            let s = stack
                .single
                .as_ref()
                .ok_or_else(|| Error::Usage("internal: no single replica".into()))?;
            (
                format!("http://{}", s.addr),
                vec![(format!("replica {}", s.id), s.guard.pid())],
                vec![s.id.clone()],
            )
        }
        Side::Group => {
            let mut p: Vec<(String, u32)> = stack
                .replicas
                .iter()
                .map(|r| (format!("replica {}", r.id), r.guard.pid()))
                .collect();
            p.push(("balancer".into(), stack.balancer.guard.pid()));
            (
                stack.balancer_url(),
                p,
                stack.replicas.iter().map(|r| r.id.clone()).collect(),
            )
        }
    };
    procs.push(me);
    let status_before = match side {
        Side::Group => Some(probe.balancer_status(&stack.status_url()).await?),
        Side::Single => None,
    };
    let throttle_before: Vec<_> = ids
        .iter()
        .map(|id| stack.cgroups.as_ref().and_then(|g| g.throttle(id)))
        .collect();
    let sampler = Sampler::start(&procs);
    let plan = load::step_plan(&host, scenario, args.model, load, args.step_duration);
    let rep = load::run(plan).await?;
    let (processes, host_usage) = sampler.finish();
    let throttled = ids
        .iter()
        .zip(throttle_before)
        .filter_map(|(id, before)| {
            let after = stack.cgroups.as_ref()?.throttle(id)?;
            Some((id.clone(), StepRecord::throttle_ratio(before?, after)))
        })
        .collect();
    let shares = match status_before {
        Some(before) => {
            // The balancer counts a request when it is sent upstream; give
            // in-flight ones a moment to be counted before reading again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let after = probe.balancer_status(&stack.status_url()).await?;
            Some(ShareDelta::between(&before, &after))
        }
        None => None,
    };
    let rec = StepRecord {
        number,
        load,
        summary: StepSummary::from_report(&rep),
        kept: false,
        verdict: String::new(),
        processes,
        host: host_usage,
        throttled,
        shares,
    };
    Ok((rec, rep))
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
        "[{:<6}] step {}/{}: {:>5} {unit} … {:>7.1} req/s, p95 {:>6.0} ms, {:>5.1}% failed → {outcome}",
        side.name(),
        rec.number,
        max_steps,
        rec.load,
        s.rps,
        s.p95_ms,
        s.fail_ratio * 100.0,
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
