//! The stack across hosts (issue 12): the database, two market-api replicas,
//! the balancer and the load generator each in a network namespace of its
//! own (see `netns`), talking over veth links through a bridge, and one
//! replica's link pulled mid-run.
//!
//! What must hold: both replicas serve before the cut; no idempotent request
//! fails over the whole run (the balancer's health checks take r2 out, and
//! `proxy_next_upstream error timeout` moves what was under way to r1);
//! every product creation answered 201 is in the database afterwards; and
//! the balancer reports r2 as unhealthy. POSTs caught at the cut may fail:
//! once written they are not replayed, so they are counted, not forbidden.
//!
//! The load generator runs in this process, on a thread that joined the
//! `load` namespace ([`Net::block_on`]) with a current-thread runtime, rather
//! than as another re-executed role: `lab` has no loadgen role to run, and
//! in-process its `RunReport` comes back as a value, with no file to parse.
//! The replicas and the balancer are the `lab` binary in its hidden roles,
//! started with `ip netns exec`.
//!
//! Skipped, with the reason printed, where namespaces cannot be made (not
//! root, no iproute2). CI runs as root, so CI runs it.

use std::path::Path;
use std::time::{Duration, Instant};

use loadgen::scenario::{Check, RequestSpec, Scenario, Step, Task, UserClass, WaitTime};
use loadgen::{RunReport, TestPlan};
use serde_json::{json, Value};

use crate::netns::{unavailable, Net, Proc};
use crate::support::assert_no_processes;

/// The hosts and their last address octet on 10.213.0.0/24.
const HOSTS: &[(&str, u8)] = &[
    ("db", 10),
    ("r1", 11),
    ("r2", 12),
    ("bal", 20),
    ("load", 30),
];
const API_PORT: u16 = 8000;
const LISTEN_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 8081;
const PG_PORT: u16 = 5432;
/// How long the load runs; the cut comes once both replicas have served.
const RUN_TIME: Duration = Duration::from_secs(18);
const USERS: u32 = 8;
const STARTUP: Duration = Duration::from_secs(60);
const AUTH: &str = "Bearer {{access}}";

/// Where the replicas keep their data.
enum Database {
    /// One SQLite file both replicas open (namespaces share the filesystem).
    Sqlite,
    /// A throwaway cluster listening in the `db` namespace.
    Postgres,
}

#[test]
fn across_hosts_on_sqlite_a_pulled_link_fails_no_idempotent_request() {
    across_hosts(Database::Sqlite);
}

#[test]
fn across_hosts_on_postgres_a_pulled_link_fails_no_idempotent_request() {
    across_hosts(Database::Postgres);
}

fn across_hosts(database: Database) {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The PostgreSQL server runs as `nobody`, which must reach its data folder.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let namespaces;
    {
        // Declared first, dropped last: every process below is stopped
        // before the namespaces it runs in are deleted.
        let net = Net::create(HOSTS).expect("the namespaces and the switch");
        namespaces = net.namespaces().to_vec();
        let (url, pg) = match database {
            Database::Sqlite => (
                format!("sqlite://{}", tmp.path().join("market.db").display()),
                None,
            ),
            Database::Postgres => {
                let (url, pg) = start_postgres(&net, tmp.path());
                (url, Some(pg))
            }
        };
        let stack = Stack::start(&net, tmp.path(), &url);
        stack.exercise(&net);
        drop(stack);
        if let Some(pg) = pg {
            net.block_on("db", pg.stop()).expect("PostgreSQL stops");
        }
    }
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for ns in &namespaces {
        assert!(
            !listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "namespace {ns} left behind"
        );
    }
}

/// A cluster listening on the `db` host's address only, letting in the
/// switch's subnet; started from a thread in that namespace, so the
/// server (spawned by a thread it starts) lives there too.
fn start_postgres(net: &Net, dir: &Path) -> (String, pgcluster::Cluster) {
    let db = net.host("db").addr;
    let options = pgcluster::Options {
        port: Some(PG_PORT),
        listen: db.into(),
        clients: vec![format!("{}.0/24", crate::netns::SUBNET)],
        max_connections: 60,
        ..pgcluster::Options::new(dir.join("postgres"))
    };
    net.block_on("db", async move {
        let pg = pgcluster::Cluster::start(options)
            .await
            .expect("PostgreSQL starts");
        pg.create_database("market").await.expect("createdb");
        (pg.url_for("market"), pg)
    })
}

/// The replicas and the balancer, each in its host.
struct Stack {
    // Held for their `Drop`; field order is drop order: the balancer stops
    // before the replicas.
    _balancer: Proc,
    _r1: Proc,
    _r2: Proc,
}

impl Stack {
    fn start(net: &Net, dir: &Path, url: &str) -> Stack {
        let run_dir = dir.to_string_lossy().into_owned();
        let lab = |host: &str, args: &[String]| {
            let mut c = net.command(host, env!("CARGO_BIN_EXE_lab"));
            c.args(args)
                .env("RUST_LOG", "warn")
                .env("LAB_PARENT_PID", std::process::id().to_string())
                .env("LAB_RUN_DIR", &run_dir);
            c
        };
        let replica = |id: &str, seed: bool| {
            let mut args: Vec<String> = [
                "market-api",
                "serve",
                "--bind",
                &format!("{}:{API_PORT}", net.host(id).addr),
                "--database-url",
                url,
                "--jwt-secret",
                "across-hosts-test-secret",
                "--replica-id",
                id,
                "--workers",
                "1",
                "--password-cost",
                "fast",
                "--products",
                "20",
                "--comments",
                "10",
            ]
            .map(String::from)
            .to_vec();
            if !seed {
                args.push("--no-seed".into());
            }
            let log = dir.join(format!("replica-{id}.log"));
            Proc::start(
                &format!("replica {id}"),
                lab(id, &args),
                &log,
                &["listening on"],
                STARTUP,
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .0
        };
        // r1 migrates and seeds; r2 starts on the seeded database.
        let r1 = replica("r1", true);
        let r2 = replica("r2", false);
        let bal = net.host("bal").addr;
        let mut args: Vec<String> = vec![
            "balancer".into(),
            "--listen".into(),
            format!("{bal}:{LISTEN_PORT}"),
            "--admin".into(),
            format!("{bal}:{ADMIN_PORT}"),
            "--workers".into(),
            "1".into(),
            "--algorithm".into(),
            "round_robin".into(),
        ];
        for id in ["r1", "r2"] {
            args.push("--upstream".into());
            args.push(format!("{}:{API_PORT}", net.host(id).addr));
        }
        // Short enough for the test, long enough for a busy 2-core box: a
        // health check that times out on a slow but live r1 would take the
        // last server out.
        args.extend(
            [
                "--health-check=/healthz",
                "--health-interval=300ms",
                "--health-timeout=1s",
                "--health-fails=2",
                "--health-passes=2",
                "--next-upstream=error,timeout",
                "--connect-timeout=500ms",
                "--read-timeout=3s",
            ]
            .map(String::from),
        );
        let log = dir.join("balancer.log");
        let (balancer, _) = Proc::start(
            "balancer",
            lab("bal", &args),
            &log,
            &["balancer listening on", "balancer admin on"],
            STARTUP,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Stack {
            _balancer: balancer,
            _r1: r1,
            _r2: r2,
        }
    }

    /// Load through the balancer from the `load` host, the cut, the checks.
    fn exercise(&self, net: &Net) {
        let bal = net.host("bal").addr;
        let r1 = net.host("r1").addr;
        let base = format!("http://{bal}:{LISTEN_PORT}");
        let admin = format!("http://{bal}:{ADMIN_PORT}/status");
        let direct = format!("http://{r1}:{API_PORT}");
        let outcome = net.block_on("load", async {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let token = login(&http, &direct).await;
            let before = product_count(&http, &direct, &token).await;
            let mut plan = TestPlan::new(&base, scenario());
            plan.users = USERS;
            plan.spawn_rate = f64::from(USERS);
            plan.run_time = Some(RUN_TIME);
            plan.timeout = Duration::from_secs(15);
            let run = tokio::spawn(loadgen::run_test(plan));
            let started = Instant::now();
            let served = wait_for(&http, &admin, Duration::from_secs(15), |s| {
                served(s, "r1") >= 20 && served(s, "r2") >= 20
            })
            .await;
            let cut_after = started.elapsed();
            net.cut("r2").expect("taking r2's link down");
            let out = wait_for(&http, &admin, Duration::from_secs(15), |s| {
                state(s, "r2") == "unhealthy"
            })
            .await;
            let report = run.await.unwrap().expect("loadgen runs");
            let after_status = admin_status(&http, &admin).await;
            let after = product_count(&http, &direct, &token).await;
            Outcome {
                served,
                out,
                cut_after,
                report,
                after_status,
                created: after - before,
            }
        });
        outcome.check();
    }
}

/// What the run gave, checked in [`Outcome::check`].
struct Outcome {
    /// The balancer's status once both replicas had served.
    served: Value,
    /// Its status once r2 was reported unhealthy.
    out: Value,
    cut_after: Duration,
    report: RunReport,
    after_status: Value,
    /// Products in the database now minus before the run.
    created: i64,
}

impl Outcome {
    fn check(&self) {
        let r = &self.report;
        let summary = format!(
            "cut after {:?}; failures: {:#?}; status before the cut: {}; after: {}",
            self.cut_after, r.failures, self.served, self.after_status
        );
        assert!(served(&self.served, "r1") > 0 && served(&self.served, "r2") > 0);
        assert_eq!(state(&self.out, "r2"), "unhealthy", "{summary}");
        assert_eq!(state(&self.after_status, "r2"), "unhealthy", "{summary}");
        assert_eq!(state(&self.after_status, "r1"), "up", "{summary}");
        // r1 carried the load after the cut.
        assert!(
            served(&self.after_status, "r1") > served(&self.out, "r1"),
            "{summary}"
        );
        let idempotent_failures: u64 = r
            .failures
            .iter()
            .filter(|f| !matches!(f.method.as_str(), "POST" | "PATCH"))
            .map(|f| f.occurrences)
            .sum();
        assert_eq!(idempotent_failures, 0, "{summary}");
        let gets = row(r, "GET", "/api/v1/products/");
        assert!(gets.num_requests > 50, "too little load: {summary}");
        let posts = row(r, "POST", "/api/v1/products/");
        let acknowledged = (posts.num_requests - posts.num_failures) as i64;
        assert!(acknowledged > 0, "{summary}");
        // At most one request per user is in flight when the run stops;
        // loadgen abandons it and leaves it out of its figures, but a POST
        // among them may still be committed (seen on 2026-12-03: 142 POSTs
        // counted, all 201, 143 new products). Hence up to USERS more.
        assert!(
            self.created >= acknowledged
                && self.created <= posts.num_requests as i64 + i64::from(USERS),
            "{acknowledged} creations answered 201 of {} sent, but the database has {} new products; {summary}",
            posts.num_requests,
            self.created
        );
        eprintln!(
            "across hosts: {} requests, cut after {:?}, {} POST failures at the cut \
             (not replayed), {acknowledged} products created and found",
            r.stats.last().map_or(0, |s| s.num_requests),
            self.cut_after,
            r.failures
                .iter()
                .filter(|f| f.method == "POST")
                .map(|f| f.occurrences)
                .sum::<u64>(),
        );
    }
}

fn row<'a>(r: &'a RunReport, method: &str, name: &str) -> &'a loadgen::StatsRow {
    r.stats
        .iter()
        .find(|s| s.method == method && s.name == name)
        .unwrap_or_else(|| panic!("no {method} {name} row in {:?}", r.stats))
}

/// Logs in as the demo user: reads (GET list, GET by id) four times as often
/// as it creates a product (POST, which must answer 201).
fn scenario() -> Scenario {
    let authed_get = |path: &str, name: &str| {
        RequestSpec::get(path)
            .and_then(|r| r.header("Authorization", AUTH))
            .map(|r| r.name(name))
            .unwrap()
    };
    let login = RequestSpec::post("/api/v1/auth/token/")
        .and_then(|r| r.json(&json!({"email": "demo@example.com", "password": "Passw0rd!"})))
        .and_then(|r| r.capture("access", "$.access"))
        .unwrap();
    let browse = vec![
        authed_get("/api/v1/products/?page_size=5", "/api/v1/products/").into(),
        Step::Loop {
            var: "id".into(),
            from: 1,
            to: 3,
            steps: vec![authed_get("/api/v1/products/{{id}}/", "/api/v1/products/[id]/").into()],
        },
    ];
    let create = RequestSpec::post("/api/v1/products/")
        .and_then(|r| r.header("Authorization", AUTH))
        .and_then(|r| r.json(&json!({"title": "made across hosts"})))
        .unwrap()
        .check(Check::Status(vec![201]));
    let user = UserClass {
        wait: WaitTime::Between(0.05, 0.25),
        on_start: vec![login.into()],
        ..UserClass::new(
            "Shopper",
            vec![
                Task::new("browse", 4, browse),
                Task::new("create", 1, vec![create.into()]),
            ],
        )
    };
    let s = Scenario {
        name: "across-hosts".into(),
        host: None,
        load: Default::default(),
        thresholds: Vec::new(),
        users: vec![user],
    };
    s.validate().unwrap();
    s
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let v: Value = http
        .post(format!("{base}/api/v1/auth/token/"))
        .json(&json!({"email": "demo@example.com", "password": "Passw0rd!"}))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("login at r1")
        .json()
        .await
        .unwrap();
    v["access"].as_str().unwrap().to_string()
}

/// Products in the database, as r1 counts them (read straight from the
/// database behind it: the list's `count`).
async fn product_count(http: &reqwest::Client, base: &str, token: &str) -> i64 {
    let v: Value = http
        .get(format!("{base}/api/v1/products/?page_size=1"))
        .bearer_auth(token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("product list at r1")
        .json()
        .await
        .unwrap();
    v["count"].as_i64().expect("a count")
}

async fn admin_status(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("balancer status")
        .json()
        .await
        .unwrap()
}

/// Polls the balancer's status until `done` holds, failing after `bound`.
async fn wait_for(
    http: &reqwest::Client,
    url: &str,
    bound: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let s = admin_status(http, url).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "not within {bound:?}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status entry of the replica `id` (its address ends in its octet).
fn server<'a>(status: &'a Value, id: &str) -> &'a Value {
    let octet = HOSTS.iter().find(|(h, _)| *h == id).unwrap().1;
    let addr = format!("{}.{octet}:{API_PORT}", crate::netns::SUBNET);
    status["upstreams"][0]["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["addr"] == addr.as_str()))
        .unwrap_or_else(|| panic!("no server {addr} in {status}"))
}

fn served(status: &Value, id: &str) -> u64 {
    server(status, id)["requests"].as_u64().unwrap_or(0)
}

fn state<'a>(status: &'a Value, id: &str) -> &'a str {
    server(status, id)["state"].as_str().unwrap_or("")
}
