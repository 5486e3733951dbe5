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

/// Chapter 5's header, in the order of [`shed_cells`].
const SHED_HEADER: [&str; 8] = [
    "  balancer",
    "goodput (ok req/s)",
    "all req/s",
    "p50 / p95 ms (successful)",
    "p50 / p95 ms (all answers)",
    "refused fast (503)",
    "failed slowly",
    "failed",
];

/// Chapter 5's row: goodput first, then the latency of the successful
/// requests (the one the chapter is about) beside that of all answers,
/// which fast 503s pull down, then how requests failed.
fn shed_cells(name: &str, s: &StepSummary) -> Vec<String> {
    let o = Outcomes::of(s);
    let successful = match (s.ok_p50_ms, s.ok_p95_ms) {
        (Some(p50), Some(p95)) => format!("{p50:.0} / {p95:.0}"),
        // Nothing succeeded: there is no such latency (not a zero one).
        _ => "–".to_string(),
    };
    vec![
        format!("  {name}"),
        format!("{:.1}", o.goodput),
        format!("{:.1}", s.rps),
        successful,
        format!("{:.0} / {:.0}", s.p50_ms, s.p95_ms),
        format!("{}", o.refused_fast),
        format!("{}", o.failed_slowly),
        format!("{:.1}%", s.fail_ratio * 100.0),
    ]
}

/// Chapter 5's closing words, built from the two rows it prints so that they
/// never claim what this run did not show: the successful requests' p95 and
/// the goodput with and without the limit, and the commonest slow failure.
fn shed_why(plain: &StepSummary, limited: &StepSummary) -> String {
    let mut why = String::from(
        "why: a server past its capacity only gets slower for everyone; a limit plus a short queue refuses the excess at once (503) so that the requests that get in stay fast.",
    );
    why += &match (plain.ok_p95_ms, limited.ok_p95_ms) {
        (Some(p), Some(l)) if l < p => format!(
            " Here the successful requests' p95 was {l:.0} ms with the limit against {p:.0} ms without."
        ),
        (Some(p), Some(l)) => format!(
            " This run does not show it: the successful requests' p95 was {l:.0} ms with the limit against {p:.0} ms without (more --users load the replica further)."
        ),
        _ => " No request succeeded on one side, so there is no successful latency to compare.".to_string(),
    };
    why += &format!(
        " Compare the goodput ({:.1} ok req/s with the limit, {:.1} without), not all req/s: a 503 refused at once is counted as a request but is no work done, and it pulls the latency of all answers down.",
        limited.goodput(),
        plain.goodput()
    );
    why += " \"Failed slowly\" are timeouts and errors a user waited for";
    match limited
        .top_failures
        .iter()
        .find(|f| f.status() != Some(503))
    {
        Some(f) => why += &format!(" (with the limit, most often {f})."),
        None => why += ".",
    }
    why
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
        let mut rows = vec![SHED_HEADER.map(str::to_string).to_vec()];
        let mut measured = Vec::new();
        for (name, params, extra) in [
            ("plain", "", vec![]),
            (
                "max_conns=4, queue 16 (500ms)",
                ",max_conns=4",
                // The queue's refusals are 502s unless told otherwise
                // (nginx's default); the chapter counts 503s as refused fast.
                vec![
                    "--queue".to_string(),
                    "16".into(),
                    "--queue-timeout".into(),
                    "500ms".into(),
                    "--queue-status".into(),
                    "503".into(),
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
            measured.push(s);
            b.guard.stop().await;
        }
        println!("  {users} users on one replica:");
        print!("{}", table(&rows));
        if let [plain, limited] = &measured[..] {
            println!("{}\n", shed_why(plain, limited));
        }
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
        s.p50_ms = 1.0;
        s.p95_ms = 240.0;
        s.ok_p50_ms = Some(180.4);
        s.ok_p95_ms = Some(260.0);
        let row = shed_cells("queue", &s);
        assert_eq!(row.len(), SHED_HEADER.len());
        let at = |h: &str| row[SHED_HEADER.iter().position(|x| *x == h).unwrap()].as_str();
        assert_eq!(at("goodput (ok req/s)"), "1218.2");
        assert_eq!(at("p50 / p95 ms (successful)"), "180 / 260");
        assert_eq!(at("p50 / p95 ms (all answers)"), "1 / 240");
        assert_eq!(at("refused fast (503)"), "5000");
        assert_eq!(at("failed slowly"), "189");
        // Nothing succeeded (or not known): a dash, never a 0 ms latency.
        s.ok_p50_ms = None;
        s.ok_p95_ms = None;
        assert_eq!(shed_cells("queue", &s)[3], "–");
    }

    fn side(rps: f64, fail_ratio: f64, ok_p95_ms: Option<f64>) -> StepSummary {
        StepSummary {
            rps,
            fail_ratio,
            ok_p50_ms: ok_p95_ms.map(|p| p / 2.0),
            ok_p95_ms,
            ..StepSummary::default()
        }
    }

    #[test]
    fn chapter5_says_what_its_table_shows() {
        let plain = side(637.0, 0.006, Some(1_900.0));
        let mut limited = side(2_256.0, 0.46, Some(120.0));
        limited.top_failures = vec![
            crate::load::FailureCount {
                method: "GET".into(),
                name: "/api/products/".into(),
                kind: "status".into(),
                error: "status: HTTP 503 Service Unavailable".into(),
                count: 5_000,
            },
            crate::load::FailureCount {
                method: "GET".into(),
                name: "/api/products/".into(),
                kind: "status".into(),
                error: "status: HTTP 401 Unauthorized".into(),
                count: 189,
            },
        ];
        let why = shed_why(&plain, &limited);
        assert!(
            why.contains("p95 was 120 ms with the limit against 1900 ms without"),
            "{why}"
        );
        assert!(!why.contains("does not show"), "{why}");
        assert!(
            why.contains("1218.2 ok req/s with the limit, 633.2 without"),
            "{why}"
        );
        assert!(
            why.contains("most often GET /api/products/: status: HTTP 401 Unauthorized ×189"),
            "{why}"
        );
        // The limit did not keep the successful requests faster: said so.
        let slow = side(2_256.0, 0.46, Some(2_500.0));
        let why = shed_why(&plain, &slow);
        assert!(why.contains("This run does not show it"), "{why}");
        assert!(!why.contains("Here the"), "{why}");
        // Nothing succeeded on one side: no comparison is made up.
        let why = shed_why(&plain, &side(100.0, 1.0, None));
        assert!(why.contains("no successful latency to compare"), "{why}");
        assert!(why.ends_with("a user waited for."), "{why}");
    }
}
