//! The bottleneck in plain words, from what was measured.
//!
//! The rules look at the step that broke the objective (or the highest step
//! if none did) and name the first resource that was saturated: the
//! replicas' CPU budget, the host's cores, the load generator, the balancer,
//! or SQLite writes. Each conclusion comes with the figures behind it and the
//! step they come from, so the reader can check the reasoning instead of
//! trusting it; [`read_failures`] says in words what that step's failure list
//! and per-route latencies show.

use serde::{Deserialize, Serialize};

use crate::database::POSTGRES;
use crate::load::{LoginShape, StepSummary};
use crate::step::StepRecord;

/// Name of the lab's own process in process lists (it runs the load generator).
pub const LOADGEN: &str = "loadgen (lab)";

/// CPU share of a budget (or a core) above which a process counts as saturated.
const SATURATED: f64 = 0.80;

/// A login route "dominates" when its median is at least this many times
/// the slowest other route's.
const DOMINATES: f64 = 3.0;

/// What limited a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Diagnosis {
    /// Short name: "the replicas' CPU budget", "host CPU", …; "not reached"
    /// when the objective never broke.
    pub bottleneck: String,
    /// One or two sentences in plain words.
    pub explanation: String,
    /// The figures behind it.
    pub evidence: Vec<String>,
    /// Number of the step the figures come from (`steps[].number`).
    #[serde(default)]
    pub step: Option<u32>,
    /// What that step's failure list and per-route latencies say, in words.
    #[serde(default)]
    pub causes: Vec<String>,
}

/// Diagnoses a run from its limiting `step`. `not_reached` is `None` when
/// the step broke the objective, else why the search stopped before it
/// broke (and which flag to raise): there is then no bottleneck to name.
pub fn diagnose_run(
    step: &StepRecord,
    budget: Option<f64>,
    shape: &LoginShape,
    not_reached: Option<&str>,
) -> Diagnosis {
    let mut d = diagnose(step, budget);
    d.step = Some(step.number);
    if matches!(
        d.bottleneck.as_str(),
        "SQLite writes" | "database lock waits"
    ) && logins_carry_the_post_failures(&step.summary, shape)
    {
        d.bottleneck = "logins (password hashing)".into();
        d.explanation = "logins (password hashing): the failing POSTs are mostly logins, not writes; each hashes a password with argon2 (about 20 ms of CPU), so a burst of them queues past the request timeout while cheap requests still pass".into();
    }
    d.causes = read_failures(&step.summary, shape);
    if let Some(why) = not_reached {
        d.bottleneck = "not reached".into();
        d.explanation = format!(
            "the objective held at every load tried (up to {}); {why}",
            step.load
        );
    }
    d
}

/// Whether the scenario's login routes account for at least half of the
/// step's failed POSTs: then POST failures say nothing about writes.
fn logins_carry_the_post_failures(s: &StepSummary, shape: &LoginShape) -> bool {
    let login_failures: u64 = s
        .routes
        .iter()
        .filter(|r| shape.is_login(&r.method, &r.name))
        .map(|r| r.failures)
        .sum();
    s.post_failures > 0 && login_failures * 2 >= s.post_failures
}

/// The failure list and per-route latencies of a step, in words. Each
/// sentence is there only if the figures show it.
pub fn read_failures(s: &StepSummary, shape: &LoginShape) -> Vec<String> {
    let mut out = Vec::new();
    let logins: Vec<_> = s
        .routes
        .iter()
        .filter(|r| shape.is_login(&r.method, &r.name))
        .collect();
    let login_names = logins
        .iter()
        .map(|r| format!("{} {}", r.method, r.name))
        .collect::<Vec<_>>()
        .join(", ");
    let login_requests: u64 = logins.iter().map(|r| r.requests).sum();
    let login_failures: u64 = logins.iter().map(|r| r.failures).sum();
    let listed_login = |f: &&crate::load::FailureCount| shape.is_login(&f.method, &f.name);
    let login_timeouts: u64 = s
        .top_failures
        .iter()
        .filter(listed_login)
        .filter(|f| f.kind == "timeout")
        .map(|f| f.count)
        .sum();
    if login_failures > 0 {
        let kinds = s
            .top_failures
            .iter()
            .filter(listed_login)
            .map(|f| format!("{} ×{}", f.error, f.count))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(format!(
            "{login_failures} of {login_requests} logins ({login_names}) failed{}{}",
            if kinds.is_empty() {
                String::new()
            } else {
                format!(": {kinds}")
            },
            if login_timeouts > 0 {
                "; a timeout is a login left unanswered within the request timeout, queued behind the other logins"
            } else {
                ""
            }
        ));
    }
    let refused: Vec<_> = s
        .top_failures
        .iter()
        .filter(|f| shape.uses_token(&f.method, &f.name))
        .filter(|f| matches!(f.status(), Some(400 | 401 | 403)))
        .collect();
    let refused_n: u64 = refused.iter().map(|f| f.count).sum();
    if refused_n > 0 {
        let list = refused
            .iter()
            .map(|f| {
                format!(
                    "HTTP {} ×{} on {} {}",
                    f.status().unwrap_or(0),
                    f.count,
                    f.method,
                    f.name
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let when = if login_failures > 0 {
            "logins failed in this very window (above)".to_string()
        } else {
            "no login failed inside this window, so theirs failed before it, during the ramp or warm-up".to_string()
        };
        out.push(format!(
            "{refused_n} requests that carry the token a login returned were refused ({list}): their users held no valid token, which points at failed logins, not at broken authentication ({when}); loadgen ran those users' tasks without a token"
        ));
    }
    let other_timeouts = s.timeouts.saturating_sub(login_timeouts);
    if other_timeouts > 0 {
        out.push(format!(
            "{other_timeouts} {}requests timed out (no answer within the request timeout)",
            if login_timeouts > 0 { "other " } else { "" }
        ));
    }
    if s.status_5xx > 0 {
        out.push(format!(
            "{} answers were server errors (HTTP 5xx)",
            s.status_5xx
        ));
    }
    if s.connection_errors > 0 {
        out.push(format!(
            "{} requests found no connection (refused or reset)",
            s.connection_errors
        ));
    }
    if let Some(t) = time_spent(s, shape) {
        out.push(t);
    }
    out
}

/// Where the time goes: the slowest route by median against the others,
/// and its share of the summed response time.
fn time_spent(s: &StepSummary, shape: &LoginShape) -> Option<String> {
    let routes: Vec<_> = s.routes.iter().filter(|r| r.requests > 0).collect();
    if routes.len() < 2 {
        return None;
    }
    let slowest = routes
        .iter()
        .max_by(|a, b| a.median_ms.total_cmp(&b.median_ms))?;
    let others = routes
        .iter()
        .filter(|r| !std::ptr::eq(**r, *slowest))
        .map(|r| r.median_ms)
        .fold(0.0f64, f64::max);
    let total_time: f64 = routes.iter().map(|r| r.avg_ms * r.requests as f64).sum();
    let total_requests: u64 = routes.iter().map(|r| r.requests).sum();
    let share_time = if total_time > 0.0 {
        slowest.avg_ms * slowest.requests as f64 / total_time
    } else {
        0.0
    };
    let share_requests = slowest.requests as f64 / total_requests.max(1) as f64;
    let login = shape.is_login(&slowest.method, &slowest.name);
    let what = if login {
        format!("the logins ({} {})", slowest.method, slowest.name)
    } else {
        format!("{} {}", slowest.method, slowest.name)
    };
    let mut t = format!(
        "where the time goes: {what} took a median of {:.0} ms, every other route at most {:.0} ms; {} {:.1}% of the requests and {:.0}% of the summed response time",
        slowest.median_ms,
        others,
        if login { "they were" } else { "it was" },
        share_requests * 100.0,
        share_time * 100.0
    );
    if login && slowest.median_ms >= DOMINATES * others.max(1.0) {
        t.push_str(
            ". A login hashes the password with argon2, slow on purpose: it is the API's costliest request",
        );
    }
    Some(t)
}

/// Diagnoses a step. `budget` is the CPU budget per replica in force (cores).
pub fn diagnose(step: &StepRecord, budget: Option<f64>) -> Diagnosis {
    let u = Usage::of(step);
    let (bottleneck, explanation) = verdict(&u, &step.summary, budget);
    Diagnosis {
        bottleneck,
        explanation,
        evidence: evidence(&u, step, budget),
        ..Diagnosis::default()
    }
}

/// The CPU figures of a step the rules decide with.
struct Usage {
    /// Mean CPU of the replicas, % of a core.
    avg_replica: f64,
    /// The lab process (load generator), % of a core.
    loadgen: f64,
    /// The balancer, % of a core, if it took part.
    balancer: Option<f64>,
    /// A lab-started PostgreSQL server, all its processes, % of a core, and
    /// how many processes that is (none on SQLite or an external server).
    database: Option<(f64, usize)>,
    /// Mean fraction of periods the budgeted replicas were throttled in.
    throttled: f64,
    /// Host busy %, over all cores.
    host: f64,
    /// Host cores.
    cores: usize,
    /// CPU no lab process accounts for, % of a core.
    others: f64,
}

impl Usage {
    fn of(step: &StepRecord) -> Usage {
        let cpu = |pred: &dyn Fn(&str) -> bool| -> Vec<f64> {
            step.processes
                .iter()
                .filter(|p| pred(&p.name))
                .map(|p| p.cpu_percent)
                .collect()
        };
        let replicas: Vec<f64> = step.replica_cpu_percents().collect();
        let host = step.host.cpu_percent;
        let cores = step.host.cores.max(1);
        // Every lab process counts, the other side's too (with budgets it runs
        // in the same window); older reports without the total fall back to
        // this side's.
        let this_side: f64 = step.processes.iter().map(|p| p.cpu_percent).sum();
        let lab = step.lab_cpu_percent.max(this_side);
        Usage {
            avg_replica: mean(&replicas),
            loadgen: cpu(&|n| n == LOADGEN).first().copied().unwrap_or(0.0),
            balancer: cpu(&|n| n == "balancer").first().copied(),
            database: {
                let db = cpu(&|n| n.starts_with(POSTGRES));
                (!db.is_empty()).then(|| (db.iter().sum(), db.len()))
            },
            throttled: mean(&step.throttled.iter().map(|t| t.1).collect::<Vec<_>>()),
            host,
            cores,
            others: (host * cores as f64 - lab).max(0.0),
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The figures behind the verdict, in words.
fn evidence(u: &Usage, step: &StepRecord, budget: Option<f64>) -> Vec<String> {
    let s = &step.summary;
    let mut evidence = vec![
        format!(
            "replicas used {:.0}% of a core each on average{}",
            u.avg_replica,
            budget.map_or(String::new(), |b| format!(" (budget {:.0}%)", b * 100.0))
        ),
        format!(
            "the load generator (this process) used {:.0}% of a core",
            u.loadgen
        ),
        format!("the host's {} cores were {:.0}% busy", u.cores, u.host),
    ];
    if let Some(b) = u.balancer {
        evidence.push(format!("the balancer used {b:.0}% of a core"));
    }
    if let Some((d, n)) = u.database {
        evidence.push(format!(
            "the PostgreSQL server ({n} processes, outside the replicas' CPU budget) used {d:.0}% of a core"
        ));
    }
    if u.others >= 30.0 {
        evidence.push(format!(
            "processes outside the lab used about {:.0}% of a core (the host's busy time minus every lab process, both sides'): noise the lab cannot remove",
            u.others
        ));
    }
    if !step.throttled.is_empty() {
        evidence.push(format!(
            "budgeted replicas were throttled in {:.0}% of scheduler periods",
            u.throttled * 100.0
        ));
    }
    if s.failures > 0 {
        evidence.push(format!(
            "{:.1}% of POSTs and {:.1}% of GETs failed ({} timeouts, {} answers 5xx)",
            ratio(s.post_failures, s.post_requests) * 100.0,
            ratio(s.get_failures, s.get_requests) * 100.0,
            s.timeouts,
            s.status_5xx
        ));
    }
    evidence
}

/// The bottleneck rules, in order (see docs/lab.md): the short name and the explanation.
fn verdict(u: &Usage, s: &StepSummary, budget: Option<f64>) -> (String, String) {
    let (host, cores) = (u.host, u.cores);
    let post_ratio = ratio(s.post_failures, s.post_requests);
    let get_ratio = ratio(s.get_failures, s.get_requests);
    if let Some(b) = budget.filter(|b| u.avg_replica >= b * 100.0 * SATURATED || u.throttled >= 0.5)
    {
        (
            "the replicas' CPU budget".to_string(),
            format!(
                "each replica used its whole CPU budget ({:.0}% of a core): more replicas (or a bigger budget) would take more load",
                b * 100.0
            ),
        )
    } else if budget.is_none() && host >= 85.0 {
        (
            "host CPU".to_string(),
            format!(
                "host CPU (the replicas share the same {cores} cores: a balancer alone adds no capacity on one machine); every process, the load generator included, competed for the same cores"
            ),
        )
    } else if u.loadgen >= 100.0 * SATURATED * 1.05 {
        (
            "the load generator itself".to_string(),
            "the load generator itself used about a core: the figures say more about the client than about the servers; run it on another machine or lower the load".to_string(),
        )
    } else if u.balancer.is_some_and(|b| b >= 100.0 * SATURATED * 1.05) {
        (
            "the balancer".to_string(),
            "the balancer used about a core: it, not the replicas, set the pace (give it more workers or a core of its own)".to_string(),
        )
    } else if u
        .database
        .is_some_and(|(d, _)| d >= 100.0 * SATURATED * 1.05)
    {
        (
            "the database server's CPU".to_string(),
            "the PostgreSQL server used about a core: the replicas waited on their queries, so more replicas would not help (give the database more CPU, or a host of its own)".to_string(),
        )
    } else if host >= 90.0 {
        (
            "host CPU".to_string(),
            if u.others >= 50.0 {
                format!("host CPU: all {cores} cores were busy, largely with processes outside the lab; rerun on a quieter machine")
            } else {
                format!("host CPU: all {cores} cores were busy, so the replicas, the balancer and the load generator slowed each other down")
            },
        )
    } else if s.post_failures > 0
        && post_ratio > 2.0 * get_ratio
        && s.post_failures * 2 >= s.failures
    {
        if u.database.is_some() {
            return (
                "database lock waits".to_string(),
                "database lock waits: failures concentrate on POSTs while reads pass; PostgreSQL serialises product writes on the change-counter row until each commits, so writes wait on each other's locks".to_string(),
            );
        }
        (
            "SQLite writes".to_string(),
            "SQLite writes: failures concentrate on POSTs while reads pass; SQLite lets one writer at a time, so writes queue behind each other (the replicas all share one database file)".to_string(),
        )
    } else if u.database.is_some() && s.status_5xx * 2 >= s.failures.max(1) {
        (
            "too few pool connections".to_string(),
            "too few pool connections: most failures were 5xx answers, which market-api on PostgreSQL gives (503 `Database unavailable`) when no connection of its pool came free within 5 s; raise --pool-size (the lab sizes the server's max_connections to match)".to_string(),
        )
    } else if s.failures == 0 && s.p95_ms <= 0.0 {
        (
            "nothing measured".to_string(),
            "no request completed in this step".to_string(),
        )
    } else {
        (
            "waiting, not CPU".to_string(),
            "no resource the lab measures was saturated: latency grew from waiting (connection limits, queues, locks or I/O); see the failures and per-endpoint figures".to_string(),
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{FailureCount, RouteStat};
    use crate::procstat::{HostUsage, ProcUsage};

    fn step(procs: &[(&str, f64)], host: f64, summary: StepSummary) -> StepRecord {
        StepRecord {
            number: 1,
            load: 10,
            summary,
            confirmation: false,
            kept: false,
            verdict: String::new(),
            warmup_s: 0.0,
            lab_cpu_percent: 0.0,
            processes: procs
                .iter()
                .map(|(n, c)| ProcUsage {
                    name: n.to_string(),
                    pid: 1,
                    cpu_percent: *c,
                    rss_mib: 1.0,
                    peak_rss_mib: 1.0,
                })
                .collect(),
            host: HostUsage {
                cpu_percent: host,
                cores: 2,
                steal_percent: 0.0,
            },
            throttled: Vec::new(),
            shares: None,
        }
    }

    fn busy() -> StepSummary {
        StepSummary {
            requests: 100,
            p95_ms: 900.0,
            ..StepSummary::default()
        }
    }

    #[test]
    fn names_the_budget_when_replicas_sit_at_their_quota() {
        let s = step(
            &[("replica r1", 24.0), ("replica r2", 25.0), (LOADGEN, 40.0)],
            70.0,
            busy(),
        );
        assert_eq!(
            diagnose(&s, Some(0.25)).bottleneck,
            "the replicas' CPU budget"
        );
    }

    #[test]
    fn names_host_cpu_without_a_budget() {
        let s = step(
            &[("replica r1", 80.0), ("replica r2", 70.0), (LOADGEN, 45.0)],
            97.0,
            busy(),
        );
        let d = diagnose(&s, None);
        assert_eq!(d.bottleneck, "host CPU");
        assert!(d.explanation.contains("a balancer alone adds no capacity"));
    }

    #[test]
    fn names_the_load_generator_and_the_balancer() {
        let s = step(&[("replica r1", 10.0), (LOADGEN, 99.0)], 60.0, busy());
        assert_eq!(
            diagnose(&s, Some(0.25)).bottleneck,
            "the load generator itself"
        );
        let s = step(
            &[("replica r1", 10.0), ("balancer", 98.0), (LOADGEN, 30.0)],
            60.0,
            busy(),
        );
        assert_eq!(diagnose(&s, Some(0.25)).bottleneck, "the balancer");
    }

    #[test]
    fn outside_noise_excludes_every_lab_process() {
        // The review's single step 5: host 83.7% of 2 cores; the single side
        // (replica 22%, loadgen 7%) ran in the same window as the group's
        // replicas and balancer (70%), which are not outside noise.
        let mut s = step(&[("replica single", 22.0), (LOADGEN, 7.0)], 83.7, busy());
        s.lab_cpu_percent = 22.0 + 7.0 + 17.0 + 15.0 + 16.0 + 14.0 + 8.0;
        let d = diagnose(&s, Some(0.25));
        let noise: Vec<_> = d
            .evidence
            .iter()
            .filter(|e| e.contains("outside"))
            .collect();
        assert_eq!(noise.len(), 1, "{:?}", d.evidence);
        assert!(noise[0].contains("about 68%"), "{noise:?}");
    }

    fn market_api_shape() -> LoginShape {
        LoginShape::of(&crate::load::scenario("market-api").unwrap())
    }

    fn route(method: &str, name: &str, requests: u64, failures: u64, median: f64) -> RouteStat {
        RouteStat {
            method: method.into(),
            name: name.into(),
            requests,
            failures,
            median_ms: median,
            avg_ms: median,
        }
    }

    fn failure(method: &str, name: &str, kind: &str, error: &str, count: u64) -> FailureCount {
        FailureCount {
            method: method.into(),
            name: name.into(),
            kind: kind.into(),
            error: format!("{kind}: {error}"),
            count,
        }
    }

    #[test]
    fn reads_401s_after_failed_logins_and_where_the_time_goes() {
        const LOGIN: &str = "/api/v1/auth/token/";
        const ITEM: &str = "/api/v1/products/[id]/";
        const REFRESH: &str = "/api/v1/auth/token/refresh/";
        // The review's single step 5: 401s and 400s, no login failed in the window.
        let s = StepSummary {
            requests: 3700,
            failures: 260,
            routes: vec![
                route("POST", LOGIN, 20, 0, 223.0),
                route("POST", REFRESH, 80, 15, 4.0),
                route("GET", ITEM, 3600, 245, 2.0),
            ],
            top_failures: vec![
                failure("GET", ITEM, "status", "HTTP 401 Unauthorized", 245),
                failure("POST", REFRESH, "status", "HTTP 400 Bad Request", 15),
            ],
            ..StepSummary::default()
        };
        let said = read_failures(&s, &market_api_shape());
        assert_eq!(said.len(), 2, "{said:#?}");
        assert!(
            said[0].starts_with("260 requests that carry the token"),
            "{}",
            said[0]
        );
        assert!(said[0].contains("HTTP 401 ×245 on GET /api/v1/products/[id]/"));
        assert!(said[0].contains("HTTP 400 ×15 on POST /api/v1/auth/token/refresh/"));
        assert!(
            said[0].contains("during the ramp or warm-up"),
            "{}",
            said[0]
        );
        assert!(said[1].contains("the logins (POST /api/v1/auth/token/) took a median of 223 ms, every other route at most 4 ms"), "{}", said[1]);
        assert!(said[1].contains("argon2"), "{}", said[1]);

        // After loadgen retries failed logins: the list shows login timeouts only.
        let s = StepSummary {
            requests: 1000,
            failures: 30,
            timeouts: 30,
            routes: vec![
                route("POST", LOGIN, 100, 30, 1900.0),
                route("GET", ITEM, 900, 0, 3.0),
            ],
            top_failures: vec![failure("POST", LOGIN, "timeout", "no answer within 2s", 30)],
            ..StepSummary::default()
        };
        let said = read_failures(&s, &market_api_shape());
        assert!(said[0].starts_with("30 of 100 logins (POST /api/v1/auth/token/) failed: timeout: no answer within 2s ×30"), "{said:#?}");
        assert!(!said.iter().any(|l| l.contains("refused")), "{said:#?}");
        assert!(
            !said.iter().any(|l| l.contains("other requests timed out")),
            "{said:#?}"
        );

        // A slow route that is not a login: no argon2 story.
        let s = StepSummary {
            routes: vec![
                route("GET", ITEM, 10, 0, 50.0),
                route("POST", LOGIN, 10, 0, 20.0),
            ],
            ..StepSummary::default()
        };
        let said = read_failures(&s, &market_api_shape());
        assert_eq!(said.len(), 1);
        assert!(
            !said[0].contains("argon2") && said[0].contains("GET /api/v1/products/[id]/"),
            "{said:?}"
        );
    }

    #[test]
    fn a_run_that_never_broke_names_no_bottleneck() {
        let s = step(&[("replica r1", 5.0), (LOADGEN, 4.0)], 20.0, busy());
        let d = diagnose_run(
            &s,
            Some(0.5),
            &LoginShape::default(),
            Some("the search stopped at --max-load 8 users before the objective broke: raise --max-load to find the limit"),
        );
        assert_eq!(d.bottleneck, "not reached");
        assert!(
            d.explanation.contains("raise --max-load"),
            "{}",
            d.explanation
        );
        assert_eq!(d.step, Some(1));
    }

    #[test]
    fn names_sqlite_writes_when_posts_fail_and_reads_pass() {
        let summary = StepSummary {
            requests: 1000,
            failures: 50,
            post_requests: 100,
            post_failures: 50,
            get_requests: 900,
            status_5xx: 50,
            p95_ms: 100.0,
            ..StepSummary::default()
        };
        let s = step(&[("replica r1", 10.0), (LOADGEN, 20.0)], 30.0, summary);
        assert_eq!(diagnose(&s, Some(0.25)).bottleneck, "SQLite writes");
        // The same, but the failing POSTs are logins: not a write problem.
        let mut logins = s.clone();
        logins.summary.routes = vec![
            route("POST", "/api/v1/auth/token/", 100, 50, 1900.0),
            route("GET", "/api/v1/products/[id]/", 900, 0, 3.0),
        ];
        let d = diagnose_run(&logins, Some(0.25), &market_api_shape(), None);
        assert_eq!(d.bottleneck, "logins (password hashing)");
        // Writes failing beside a few login failures stay writes.
        logins.summary.routes[0].failures = 10;
        logins
            .summary
            .routes
            .push(route("POST", "/api/v1/products/", 100, 40, 900.0));
        let d = diagnose_run(&logins, Some(0.25), &market_api_shape(), None);
        assert_eq!(d.bottleneck, "SQLite writes");
    }

    /// `rest` plus a lab-started PostgreSQL's processes, as the stack names
    /// them, with its backends at `backend` % of a core each.
    fn with_pg(rest: &[(&'static str, f64)], backend: &[f64]) -> Vec<(&'static str, f64)> {
        let mut v = rest.to_vec();
        v.extend([("postgres server", 2.0), ("postgres walwriter", 1.0)]);
        v.extend(backend.iter().map(|&c| ("postgres backend", c)));
        v
    }

    #[test]
    fn names_the_database_server_when_its_processes_sum_to_a_core() {
        // No single process is near a core; together they are.
        let procs = with_pg(&[("replica r1", 10.0), (LOADGEN, 20.0)], &[45.0, 46.0]);
        let d = diagnose(&step(&procs, 70.0, busy()), Some(0.25));
        assert_eq!(d.bottleneck, "the database server's CPU");
        assert!(
            d.evidence
                .iter()
                .any(|e| e.contains("PostgreSQL server (4 processes")),
            "{:?}",
            d.evidence
        );
        // The same processes well under a core are evidence, not the verdict.
        let procs = with_pg(&[("replica r1", 10.0), (LOADGEN, 20.0)], &[30.0]);
        let d = diagnose(&step(&procs, 40.0, busy()), Some(0.25));
        assert_ne!(d.bottleneck, "the database server's CPU");
    }

    #[test]
    fn names_lock_waits_and_the_pool_on_postgres() {
        let posts_fail = StepSummary {
            requests: 1000,
            failures: 50,
            post_requests: 100,
            post_failures: 50,
            get_requests: 900,
            p95_ms: 100.0,
            ..StepSummary::default()
        };
        let procs = with_pg(&[("replica r1", 10.0), (LOADGEN, 20.0)], &[5.0]);
        let d = diagnose(&step(&procs, 30.0, posts_fail), Some(0.25));
        assert_eq!(d.bottleneck, "database lock waits");

        let unavailable = StepSummary {
            requests: 1000,
            failures: 80,
            get_requests: 1000,
            get_failures: 80,
            status_5xx: 80,
            p95_ms: 5000.0,
            ..StepSummary::default()
        };
        let d = diagnose(&step(&procs, 30.0, unavailable.clone()), Some(0.25));
        assert_eq!(d.bottleneck, "too few pool connections");
        assert!(d.explanation.contains("--pool-size"), "{}", d.explanation);
        // On SQLite the same 5xx are not blamed on a pool.
        let sqlite = step(&[("replica r1", 10.0), (LOADGEN, 20.0)], 30.0, unavailable);
        assert_eq!(diagnose(&sqlite, Some(0.25)).bottleneck, "waiting, not CPU");
    }
}
