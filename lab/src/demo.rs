//! `lab demo`: a guided tour in five chapters that follows the tutorial and
//! goes past it. Each chapter says what to look at and why, runs a short
//! measurement, and prints the numbers it got.
//!
//! 1. swarm one server until it fails;
//! 2. add replicas behind round robin (same load);
//! 3. one slow replica: round robin vs `least_conn` vs p2c/peak-EWMA;
//! 4. kill a replica mid-run: health checks and retries;
//! 5. `max_conns` with a `queue`: shedding load instead of collapsing.

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::scenario::Scenario;

use crate::capacity::{Search, Slo};
use crate::cli::{DemoArgs, LoadModel};
use crate::compare::make_run_dir;
use crate::load::{self, Driver, DriverConfig, StepSummary};
use crate::report::terminal::table;
use crate::stack::{launch_balancer, BalancerOptions, Stack, StackPlan};
use crate::status::{Probe, ShareDelta};
use crate::Error;

/// Warm-up before each measured window (more while the latest second still
/// breaks the objective, up to [`SETTLE_MAX`]).
const WARMUP: Duration = Duration::from_secs(2);
/// Longest wait for a run to settle before measuring anyway.
const SETTLE_MAX: Duration = Duration::from_secs(10);

/// Runs the chapters asked for.
pub async fn run(args: DemoArgs) -> Result<(), Error> {
    let chapters: Vec<u8> = if args.chapters.is_empty() {
        vec![1, 2, 3, 4, 5]
    } else {
        args.chapters.clone()
    };
    let scenario = load::scenario("market-api")?;
    let run_dir = make_run_dir(&args.stack.out)?;
    println!(
        "lab demo: starting 1 + {} replicas and a balancer (logs in {})…",
        args.stack.replicas,
        run_dir.display()
    );
    let plan = StackPlan::from_args(&args.stack, &run_dir, true);
    let mut stack = Stack::start(&plan).await?;
    println!("lab demo: {}\n", stack.budget_note);
    let mut demo = Demo {
        args: &args,
        scenario,
        probe: Probe::new(),
        breaking_load: None,
        budget: stack.budget_applied.cores(),
        cores: crate::procstat::host_cores() as f64,
    };
    for c in chapters {
        match c {
            1 => demo.chapter1(&stack).await?,
            2 => demo.chapter2(&stack).await?,
            3 => demo.chapter3(&mut stack).await?,
            4 => demo.chapter4(&mut stack).await?,
            5 => demo.chapter5(&stack).await?,
            _ => {}
        }
    }
    stack.shutdown().await;
    println!("lab demo: done; every process stopped.");
    Ok(())
}

struct Demo<'a> {
    args: &'a DemoArgs,
    scenario: Scenario,
    probe: Probe,
    /// The load at which chapter 1's single server broke the objective.
    breaking_load: Option<u32>,
    /// CPU budget per replica in force.
    budget: Option<f64>,
    /// Cores of this machine.
    cores: f64,
}

fn line(s: &StepSummary) -> String {
    format!(
        "{:.1} req/s, p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, {:.1}% failed",
        s.rps,
        s.p50_ms,
        s.p95_ms,
        s.p99_ms,
        s.fail_ratio * 100.0
    )
}

/// A table row of the comparison chapters: name, req/s, p50, p95, p99 (ms), failed.
fn cells(name: impl std::fmt::Display, s: &StepSummary) -> Vec<String> {
    vec![
        format!("  {name}"),
        format!("{:.1}", s.rps),
        format!("{:.0}", s.p50_ms),
        format!("{:.0}", s.p95_ms),
        format!("{:.0}", s.p99_ms),
        format!("{:.1}%", s.fail_ratio * 100.0),
    ]
}

/// How a step's requests ended, for chapter 5: counting fast refusals as
/// throughput hides its lesson (a shed request is not work done).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcomes {
    /// Successful requests per second.
    pub goodput: f64,
    /// Requests refused at once with 503 (the balancer's limit or queue timeout).
    pub refused_fast: u64,
    /// Every other failure: timeouts, 5xx other than 503, 401s after failed
    /// logins, connection errors; requests that cost a user time.
    pub failed_slowly: u64,
}

impl Outcomes {
    pub(crate) fn of(s: &StepSummary) -> Outcomes {
        let refused_fast = s
            .status_codes
            .get(&503)
            .copied()
            .unwrap_or(0)
            .min(s.failures);
        Outcomes {
            goodput: s.goodput(),
            refused_fast,
            failed_slowly: s.failures - refused_fast,
        }
    }
}

/// Chapter 5's row: goodput first, then latency, then how requests failed.
fn shed_cells(name: &str, s: &StepSummary) -> Vec<String> {
    let o = Outcomes::of(s);
    vec![
        format!("  {name}"),
        format!("{:.1}", o.goodput),
        format!("{:.1}", s.rps),
        format!("{:.0} / {:.0}", s.p50_ms, s.p95_ms),
        format!("{}", o.refused_fast),
        format!("{}", o.failed_slowly),
        format!("{:.1}%", s.fail_ratio * 100.0),
    ]
}

fn heading(n: u8, title: &str, look: &str) {
    println!("── chapter {n}: {title} ──");
    println!("what to look at: {look}");
}

impl Demo<'_> {
    /// A driver against `host`, whose users join as fast as `replicas`
    /// replicas can log them in.
    fn driver(&self, host: &str, replicas: usize) -> Driver {
        Driver::new(DriverConfig {
            host: host.to_string(),
            scenario: self.scenario.clone(),
            model: LoadModel::Closed,
            timeout: load::timeout_for(&Slo::default()),
            spawn_rate: load::default_spawn_rate(self.budget, replicas as f64, self.cores),
        })
    }

    /// Moves `d` to `users` and waits for the ramp and the warm-up.
    async fn ramp(&self, d: &mut Driver, users: u32) -> Result<(), Error> {
        let ramp = d.ramp_estimate(d.load(), users);
        d.set_load(users).await?;
        load::settle(&[&*d], &Slo::default(), ramp, WARMUP, SETTLE_MAX).await;
        Ok(())
    }

    /// Moves `d` to `users`, then measures one window.
    async fn window(&self, d: &mut Driver, users: u32) -> Result<StepSummary, Error> {
        self.ramp(d, users).await?;
        d.open_window();
        tokio::time::sleep(self.args.run_time).await;
        Ok(StepSummary::from_report(&d.window_report()))
    }

    /// One measured window of `users` (fresh ones) against `host`, and the
    /// balancer's per-replica counts over the same window if `status` is given.
    async fn measure(
        &self,
        host: &str,
        users: u32,
        replicas: usize,
        status: Option<&str>,
    ) -> Result<(StepSummary, Option<ShareDelta>), Error> {
        let mut d = self.driver(host, replicas);
        self.ramp(&mut d, users).await?;
        let before = match status {
            Some(u) => Some(self.probe.balancer_status(u).await?),
            None => None,
        };
        d.open_window();
        tokio::time::sleep(self.args.run_time).await;
        let s = StepSummary::from_report(&d.window_report());
        let shares = match (status, before) {
            (Some(u), Some(b)) => Some(ShareDelta::between(
                &b,
                &self.probe.balancer_status(u).await?,
            )),
            _ => None,
        };
        d.stop().await;
        Ok((s, shares))
    }

    async fn chapter1(&mut self, stack: &Stack) -> Result<(), Error> {
        heading(
            1,
            "swarm one server until it fails",
            "the step where p95 passes 500 ms or failures pass 1%: that is how many users one server takes",
        );
        let single = stack
            .single
            .as_ref()
            .ok_or_else(|| Error::Usage("internal: no single replica".into()))?;
        let host = format!("http://{}", single.addr);
        let slo = Slo::default();
        let mut search = Search::new(10, 5000, 2.0, 0, 7);
        // The same users throughout: each step adds users, who log in once.
        let mut d = self.driver(&host, 1);
        while let Some(users) = search.next_load() {
            let s = self.window(&mut d, users).await?;
            let verdict = slo.check(s.requests, s.fail_ratio, s.p95_ms);
            println!(
                "  {users:>5} users: {}{}",
                line(&s),
                verdict
                    .as_ref()
                    .err()
                    .map_or(String::new(), |e| format!("  ← broke: {e}"))
            );
            search.record(users, verdict.is_ok());
        }
        d.stop().await;
        self.breaking_load = search.broken_at().or(search.capacity());
        match (search.capacity(), search.broken_at()) {
            (Some(c), Some(b)) => println!(
                "why: one server kept the objective up to {c} users and broke it at {b}: its CPU budget is spent, requests queue, latency climbs\n"
            ),
            (Some(c), None) => println!("why: one server kept the objective up to {c} users, the most this chapter tries\n"),
            _ => println!("why: even the first step broke the objective\n"),
        }
        Ok(())
    }

    async fn chapter2(&mut self, stack: &Stack) -> Result<(), Error> {
        let users = self.breaking_load.unwrap_or(self.args.users);
        heading(
            2,
            &format!("add {} replicas behind round robin", stack.replicas.len()),
            &format!("the same {users} users that broke one server, now through the balancer: p95, failures and the even spread of requests"),
        );
        let (s, shares) = self
            .measure(
                &stack.balancer_url(),
                users,
                stack.replicas.len(),
                Some(&stack.status_url()),
            )
            .await?;
        println!("  {users} users via balancer: {}", line(&s));
        if let Some(mut d) = shares {
            d.name_replicas(|addr| stack.replica_id(addr));
            print_shares(&d, s.requests);
        }
        println!(
            "why: round robin hands each replica 1/{} of the requests; with a CPU budget per replica that is {}× the CPU\n",
            stack.replicas.len(),
            stack.replicas.len()
        );
        Ok(())
    }

    async fn chapter3(&mut self, stack: &mut Stack) -> Result<(), Error> {
        heading(
            3,
            "one slow replica: round robin vs least_conn vs p2c/peak-EWMA",
            "the p95/p99 columns and the slow replica's share: round robin keeps feeding it, the others learn to avoid it",
        );
        let slow = stack
            .add_replica("slow", &["--fault-delay".into(), "200ms".into()])
            .await?;
        let mut ups: Vec<SocketAddr> = vec![slow];
        ups.extend(stack.replicas.iter().skip(1).map(|r| r.addr));
        let mut rows = vec![vec![
            "  algorithm".to_string(),
            "req/s".into(),
            "p50 ms".into(),
            "p95 ms".into(),
            "p99 ms".into(),
            "failed".into(),
            "slow replica's share".into(),
        ]];
        for algo in ["round_robin", "least_conn", "p2c_ewma"] {
            let b = launch_balancer(
                &stack.plan,
                &ups,
                &BalancerOptions::new(&format!("balancer-{algo}"), algo),
            )
            .await?;
            let status = format!("http://{}/status", b.admin);
            let (s, d) = self
                .measure(
                    &format!("http://{}", b.addr),
                    self.args.users,
                    ups.len(),
                    Some(&status),
                )
                .await?;
            let slow_share = d
                .iter()
                .flat_map(|d| d.shares.iter())
                .find(|x| x.addr == slow.to_string())
                .map_or(0.0, |x| x.fraction);
            let mut row = cells(algo, &s);
            row.push(format!("{:.1}%", slow_share * 100.0));
            rows.push(row);
            let mut b = b;
            b.guard.stop().await;
        }
        print!("{}", table(&rows));
        println!("why: a replica 200 ms slower holds its connections longer; least_conn sees that, p2c/peak-EWMA sees its latency, round robin sees neither\n");
        Ok(())
    }

    async fn chapter4(&mut self, stack: &mut Stack) -> Result<(), Error> {
        heading(
            4,
            "kill a replica mid-run",
            "failures stay near zero: passive checks (max_fails) take the dead replica out, active checks (/healthz) confirm it, retries resend the requests that hit it",
        );
        let victim = stack.add_replica("victim", &[]).await?;
        let mut ups: Vec<SocketAddr> = stack.replicas.iter().map(|r| r.addr).collect();
        ups.push(victim);
        let mut opts = BalancerOptions::new("balancer-health", "round_robin");
        opts.server_params = ",max_fails=1,fail_timeout=10s".into();
        opts.extra = vec![
            "--health-check".into(),
            "/healthz".into(),
            "--health-interval".into(),
            "500ms".into(),
            // Retries (nginx's default conditions, spelled out): a request
            // refused by the dead replica goes to the next one.
            "--next-upstream".into(),
            "error,timeout".into(),
        ];
        let b = launch_balancer(&stack.plan, &ups, &opts).await?;
        let host = format!("http://{}", b.addr);
        let half = self.args.run_time / 2;
        let idx = stack.extras.len() - 1;
        let mut d = self.driver(&host, ups.len());
        self.ramp(&mut d, self.args.users).await?;
        d.open_window();
        let killer = async {
            tokio::time::sleep(half).await;
            stack.extras[idx].guard.kill().await;
            println!(
                "  (killed replica `victim` at {victim} after {})",
                humantime::format_duration(half)
            );
        };
        let ((), ()) = tokio::join!(tokio::time::sleep(self.args.run_time), killer);
        let s = StepSummary::from_report(&d.window_report());
        d.stop().await;
        let st = self
            .probe
            .balancer_status(&format!("http://{}/status", b.admin))
            .await?;
        println!(
            "  {} users, one of {} replicas killed: {}",
            self.args.users,
            ups.len(),
            line(&s)
        );
        for srv in st.servers() {
            println!(
                "    {:<22} state {:<10} requests {:>6} failures {:>4}",
                srv.addr, srv.state, srv.requests, srv.failures
            );
        }
        println!(
            "why: {} of {} requests failed; without checks and retries about 1/{} of the requests after the kill would have failed\n",
            s.failures,
            s.requests,
            ups.len()
        );
        let mut b = b;
        b.guard.stop().await;
        Ok(())
    }

    async fn chapter5(&mut self, stack: &Stack) -> Result<(), Error> {
        let users = self.args.users.saturating_mul(4);
        heading(
            5,
            "max_conns with a queue: shed load instead of collapsing",
            "with max_conns and a bounded queue the excess is refused quickly (503) and the requests that get in stay fast; without, everyone waits",
        );
        let one = [stack.replicas[0].addr];
        let mut rows = vec![vec![
            "  balancer".to_string(),
            "goodput (ok req/s)".into(),
            "all req/s".into(),
            "p50 / p95 ms (all answers)".into(),
            "refused fast (503)".into(),
            "failed slowly".into(),
            "failed".into(),
        ]];
        for (name, params, extra) in [
            ("plain", "", vec![]),
            (
                "max_conns=4, queue 16 (500ms)",
                ",max_conns=4",
                vec![
                    "--queue".to_string(),
                    "16".into(),
                    "--queue-timeout".into(),
                    "500ms".into(),
                ],
            ),
        ] {
            let mut opts = BalancerOptions::new(
                if params.is_empty() {
                    "balancer-plain"
                } else {
                    "balancer-queue"
                },
                "round_robin",
            );
            opts.server_params = params.into();
            opts.extra = extra;
            let mut b = launch_balancer(&stack.plan, &one, &opts).await?;
            let (s, _) = self
                .measure(&format!("http://{}", b.addr), users, 1, None)
                .await?;
            rows.push(shed_cells(name, &s));
            b.guard.stop().await;
        }
        println!("  {users} users on one replica:");
        print!("{}", table(&rows));
        println!("why: a server past its capacity only gets slower for everyone; a limit plus a short queue keeps the accepted requests fast and tells the rest to come back later. Compare the goodput, not all req/s: a 503 refused at once is counted as a request but is no work done. \"Failed slowly\" are timeouts and errors a user waited for (with the queue, mostly 401s of users whose login was refused).\n");
        Ok(())
    }
}

fn print_shares(d: &ShareDelta, loadgen_requests: u64) {
    for s in &d.shares {
        println!(
            "    {:<25} {:>7} requests  {:>5.1}%",
            s.label(),
            s.requests,
            s.fraction * 100.0
        );
    }
    println!(
        "    balancer sent {} in total; the load generator counted {}",
        d.total, loadgen_requests
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapter5_counts_refusals_apart_from_slow_failures() {
        let mut s = StepSummary {
            requests: 11_280,
            failures: 5_189,
            fail_ratio: 0.46,
            rps: 2_256.0,
            ..StepSummary::default()
        };
        s.status_codes.insert(200, 6_091);
        s.status_codes.insert(503, 5_000);
        let o = Outcomes::of(&s);
        assert_eq!((o.refused_fast, o.failed_slowly), (5_000, 189));
        assert!((o.goodput - 1_218.24).abs() < 1e-6);
        let row = shed_cells("queue", &s);
        assert_eq!(row[1], "1218.2");
        assert_eq!(row[4], "5000");
    }
}
