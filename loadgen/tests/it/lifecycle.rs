//! A run's life as users and readers see it: a user whose `on_start` fails
//! runs no task without it, an iteration run ends with its last request, a
//! statistics reset restarts the clock of the rates and is no send lag, and
//! a failed status check says what it expected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::scenario::{Check, RequestSpec, Task, UserClass, WaitTime};
use loadgen::{Controller, Scenario, TestPlan};

use crate::support::{plan, run, Reply, Server, LIMIT};

fn scenario_of(user: UserClass) -> Scenario {
    Scenario {
        users: vec![user],
        ..Scenario::single_get("/").unwrap()
    }
}

/// The tutorial's shape: a login in `on_start` captures a token the tasks
/// send. The first login fails: the user does not run its tasks with no
/// token (hundreds of misleading 401s), it waits and logs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_on_start_failed_logs_in_again_before_its_tasks() {
    let first = Arc::new(AtomicBool::new(true));
    let srv = Server::start(move |s| {
        if s.path == "/login" {
            if first.swap(false, Ordering::SeqCst) {
                Reply::status(503)
            } else {
                Reply::ok(r#"{"token":"t1"}"#)
            }
        } else if s.path != "/data" || s.auth.as_deref() == Some("Bearer t1") {
            Reply::ok("data")
        } else {
            Reply::status(401)
        }
    })
    .await;
    let login = RequestSpec::post("/login")
        .unwrap()
        .capture("token", "$.token")
        .unwrap();
    let data = RequestSpec::get("/data")
        .unwrap()
        .header("Authorization", "Bearer {{token}}")
        .unwrap();
    let user = UserClass {
        wait: WaitTime::Constant(0.05),
        on_start: vec![
            login.into(),
            RequestSpec::get("/after-login").unwrap().into(),
        ],
        ..UserClass::new("U", vec![Task::new("data", 1, vec![data.into()])])
    };
    let mut p = plan(&srv.url(), scenario_of(user), 1, 10_000);
    p.run_time = Some(Duration::from_millis(600));
    let r = run(p).await;
    let seen = srv.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    // The failed login stops on_start (its next step is skipped), then the
    // user waits its wait time and logs in again; only then the tasks.
    assert_eq!(
        paths[..3],
        ["/login", "/login", "/after-login"],
        "{paths:?}"
    );
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(45));
    assert!(paths[3..].iter().all(|p| *p == "/data"), "{paths:?}");
    assert!(seen[3..]
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer t1")));
    assert!(seen.len() >= 5, "{paths:?}");
    // The failed login is counted, and nothing else failed.
    let (_, failures) = r.counts();
    assert_eq!(failures, 1, "{:?}", r.failures);
    assert_eq!(r.failures[0].name, "/login");
    srv.stop().await;
}

/// A run of `-i N` ends when its last request does, not at the spawner's
/// next check (which came every 200 ms), so its rates are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iteration_run_ends_with_its_last_request() {
    let srv = Server::start(|_| Reply::ok("ok").after(Duration::from_millis(250))).await;
    let r = run(plan(&srv.url(), Scenario::single_get("/").unwrap(), 1, 1)).await;
    assert_eq!(r.counts(), (1, 0));
    // 250 ms of response; the old end came at the 400 ms check.
    assert!(
        (0.25..0.35).contains(&r.meta.duration_s),
        "{}",
        r.meta.duration_s
    );
    srv.stop().await;
}

/// After a statistics reset, rates divide by the time since the reset
/// (Locust resets its start time), and the seconds of the history start
/// there. The once-a-second ticker restarts with it, and its first tick is
/// on time, not late by the time since the tick before the reset (it was:
/// every lab window opened with "send lag 500 ms: loadgen is behind its
/// schedule" that no stall had caused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_restarts_the_clock_of_the_rates() {
    let srv = Server::start(|_| Reply::ok("ok")).await;
    let user = UserClass {
        wait: WaitTime::Constant(0.05),
        ..UserClass::new(
            "U",
            vec![Task::new(
                "t",
                1,
                vec![RequestSpec::get("/").unwrap().into()],
            )],
        )
    };
    let mut p = TestPlan::new(&srv.url(), scenario_of(user));
    p.users = 2;
    p.spawn_rate = f64::INFINITY;
    p.run_time = Some(Duration::from_millis(3000));
    let c = Controller::new(p.clone());
    c.start_plan(p).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.reset_stats();
    let reset_at = Instant::now();
    tokio::time::timeout(LIMIT, c.wait()).await.unwrap();
    let window = reset_at.elapsed().as_secs_f64();
    let r = c.report();
    let t = r.total().unwrap();
    assert!(t.num_requests > 0);
    assert!(
        (r.meta.duration_s - window).abs() < 0.2,
        "measured {} s, {window} s since the reset",
        r.meta.duration_s
    );
    let expected = t.num_requests as f64 / r.meta.duration_s;
    assert!((t.total_rps - expected).abs() < 1e-6, "{t:?}");
    // The first history second after the reset is a whole one.
    let first = r.history.first().unwrap();
    assert!(
        first.time >= r.meta.started_at + 900,
        "first point {} ms after the reset",
        first.time - r.meta.started_at
    );
    // Ticks came at 1 s and 2 s: the reset fell half-way between them.
    let late: Vec<u64> = (r.warnings.iter())
        .filter_map(|w| w.strip_prefix("send lag ")?.split(' ').next()?.parse().ok())
        .collect();
    // A real stall of 300 ms on an idle test server would be news.
    assert!(late.iter().all(|&ms| ms < 300), "{late:?}");
    srv.stop().await;
}

/// A failed `status` check names the statuses it expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_check_says_what_it_expected() {
    let srv = Server::start(|_| Reply::ok("ok")).await;
    let one = RequestSpec::get("/one")
        .unwrap()
        .check(Check::Status(vec![201]));
    let many = RequestSpec::get("/many")
        .unwrap()
        .check(Check::Status(vec![201, 202, 204]));
    let user = UserClass::new("U", vec![Task::new("t", 1, vec![one.into(), many.into()])]);
    let r = run(plan(&srv.url(), scenario_of(user), 1, 1)).await;
    let errors: Vec<&str> = r.failures.iter().map(|f| f.error.as_str()).collect();
    assert_eq!(
        errors,
        [
            "status: expected 201, 202 or 204, got 200 OK",
            "status: expected 201, got 200 OK"
        ]
    );
    srv.stop().await;
}
