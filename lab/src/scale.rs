//! `lab scale`: capacity at several replica counts, same objective and
//! method, and the Universal Scalability Law fitted to it.
//!
//! One stack holds the largest count of replicas; each count N gets its own
//! balancer in front of the first N of them, so every point is measured the
//! same way (through a balancer, N = 1 included). The searches run one after
//! the other (the replicas of different counts share cores), count by count
//! within each repeat, so slow drift of the machine spreads over every N
//! instead of biasing the last. Each replica's CPU budget defaults to one
//! core divided by the largest count: on a 2-core box the largest group then
//! fits in about one core and the balancer and the load generator have the
//! other. Capacity is goodput (successful requests/s) at the knee fitted to
//! every window of a search ([`crate::knee`]; at the highest load keeping the
//! objective when the search never broke it); [`crate::usl`] fits σ and κ to it.

use crate::campaign::{self, Ctx, SideRun, Target};
use crate::cli::ScaleArgs;
use crate::compare::{make_run_dir, spawn_rate_per_replica, validate};
use crate::load;
use crate::report::scale::{ScalePoint, ScaleReport, ScaleRun};
use crate::stack::{launch_balancer, Balancer, BalancerOptions, Stack, StackPlan};
use crate::{Error, Interrupt};

/// Runs `lab scale` and writes its reports. Ctrl-C or SIGTERM reports the
/// searches finished so far, marked as interrupted.
pub async fn run(args: ScaleArgs) -> Result<(), Error> {
    let mut stop = Interrupt::install()?;
    validate(&args.search)?;
    let mut counts = args.counts.clone();
    counts.sort_unstable();
    counts.dedup();
    let objective = campaign::objective(&args.search)?;
    let scenario = load::scenario(&args.search.scenario)?;
    let run_dir = make_run_dir(&args.out)?;
    let stack_args = args.stack();
    println!("lab: writing into {}", run_dir.display());
    println!(
        "lab: replica counts {:?}; CPU budget {} of a core per replica{}",
        counts,
        stack_args.replica_cpus,
        if args.replica_cpus.is_none() {
            format!(
                " (one core shared by the largest count, {}, so it fits beside the balancer and the load generator)",
                stack_args.replicas
            )
        } else {
            String::new()
        }
    );
    let plan = StackPlan::from_args(&stack_args, &run_dir, false);
    let stack = tokio::select! {
        s = Stack::start(&plan) => s?,
        () = stop.recv() => return Err(Error::Interrupted),
    };
    println!("lab: {}", stack.budget_note);
    let balancers = tokio::select! {
        b = start_balancers(&stack, &counts, &args.algorithm) => b?,
        () = stop.recv() => return Err(Error::Interrupted),
    };
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut ctx = Ctx::new(&stack, &args.search, objective, scenario);
    let (points, interrupted) = measure_counts(&mut ctx, &balancers, &mut stop).await?;
    let report = ScaleReport::new(&stack, started, points, interrupted, ctx.unit, ctx.slo);
    for w in report.write(&run_dir, !args.search.no_html)? {
        println!("lab: wrote {}", w.display());
    }
    print!("{}", report.terminal());
    for (_, mut b) in balancers {
        b.guard.stop().await;
    }
    stack.shutdown().await;
    if interrupted {
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// A balancer in front of the first N replicas, for every count N.
async fn start_balancers(
    stack: &Stack,
    counts: &[u16],
    algorithm: &str,
) -> Result<Vec<(u16, Balancer)>, Error> {
    let mut out = Vec::new();
    for &n in counts {
        let addrs: Vec<_> = stack.replicas[..usize::from(n)]
            .iter()
            .map(|r| r.addr)
            .collect();
        let opts = BalancerOptions::new(&format!("balancer-n{n}"), algorithm);
        out.push((n, launch_balancer(&stack.plan, &addrs, &opts).await?));
    }
    Ok(out)
}

/// The target "N replicas behind their balancer".
fn target(stack: &Stack, n: u16, b: &Balancer) -> Target {
    let reps = &stack.replicas[..usize::from(n)];
    let mut procs: Vec<(String, u32)> = reps
        .iter()
        .map(|r| (format!("replica {}", r.id), r.guard.pid()))
        .collect();
    procs.push(("balancer".into(), b.guard.pid()));
    Target {
        name: format!("n{n}"),
        host: format!("http://{}", b.addr),
        procs,
        cgroup_ids: reps.iter().map(|r| r.id.clone()).collect(),
        status_url: Some(format!("http://{}/status", b.admin)),
    }
}

/// Every count's search, `--repeat` times, count by count within a repeat.
async fn measure_counts(
    ctx: &mut Ctx<'_>,
    balancers: &[(u16, Balancer)],
    stop: &mut Interrupt,
) -> Result<(Vec<ScalePoint>, bool), Error> {
    let budget = ctx.stack.budget_applied.cores();
    let cores = crate::procstat::host_cores() as f64;
    let per_replica = spawn_rate_per_replica(ctx.args, budget, cores);
    let mut points: Vec<ScalePoint> = balancers.iter().map(|(n, _)| ScalePoint::new(*n)).collect();
    let k = ctx.args.repeat;
    let searches = k * balancers.len() as u32;
    for rep in 0..k {
        for (i, (n, b)) in balancers.iter().enumerate() {
            let rate = per_replica * if budget.is_some() { f64::from(*n) } else { 1.0 };
            let start = ctx.args.start_load.saturating_mul(u32::from(*n));
            let mut sides = [ctx.side(target(ctx.stack, *n, b), rate, start)];
            let done = rep * balancers.len() as u32 + i as u32;
            // Later searches are expected to take as many windows as the ones so far.
            let per = ctx
                .windows_done
                .checked_div(done)
                .unwrap_or_else(|| campaign::windows_left(&sides, true, ctx.args));
            let later = per * (searches - done - 1);
            let cut = campaign::run_searches(ctx, &mut sides, true, later, stop).await?;
            let [side] = sides;
            points[i].runs.push(scale_run(&side, cut));
            if cut {
                return Ok((points, true));
            }
        }
    }
    Ok((points, false))
}

/// One search's result at one count: the goodput at its knee when one was
/// fitted ([`crate::knee`]), else at its capacity (the confirmation window,
/// when there is one, measures it).
fn scale_run(s: &SideRun, interrupted: bool) -> ScaleRun {
    let cap = s.capacity_record();
    let knee = crate::knee::Knee::fit(&s.records);
    ScaleRun {
        capacity: cap.map(|r| r.load),
        goodput: knee
            .map(|k| k.goodput)
            .or_else(|| cap.map(|r| r.summary.goodput())),
        lower_bound: s.search.broken_at().is_none(),
        interrupted,
        steps: s.records.clone(),
    }
}
