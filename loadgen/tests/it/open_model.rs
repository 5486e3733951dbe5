//! Coordinated omission: the open model keeps its arrival rate through a
//! server stall and reports what it could not start; paced users measure
//! latency from when each iteration was due, with the uncorrected figures
//! beside.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadgen::plan::Arrival;
use loadgen::scenario::{Task, UserClass, WaitTime};
use loadgen::{Scenario, TestPlan};

use crate::support::{run, Reply, Server};

/// One user class that GETs `/` once every `secs` (constant pacing).
fn paced(secs: f64) -> Scenario {
    let user = UserClass {
        wait: WaitTime::ConstantPacing(secs),
        ..UserClass::new(
            "Paced",
            vec![Task::new(
                "get",
                1,
                vec![loadgen::scenario::RequestSpec::get("/").unwrap().into()],
            )],
        )
    };
    Scenario {
        users: vec![user],
        ..Scenario::single_get("/").unwrap()
    }
}

/// A server that, at its `at`-th request, stalls everything for `stall`.
async fn stalling_server(at: u64, stall: Duration) -> Server {
    let until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    Server::start(move |s| {
        let mut u = until.lock().unwrap();
        if s.n == at {
            *u = Some(s.at + stall);
        }
        match *u {
            Some(end) if s.at < end => Reply::ok("late").after(end - s.at),
            _ => Reply::ok("ok"),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_keeps_its_rate_through_a_stall_and_counts_drops() {
    let srv = stalling_server(100, Duration::from_secs(1)).await;
    let mut plan = TestPlan::new(&srv.url(), Scenario::single_get("/").unwrap());
    plan.arrival = Some(Arrival {
        rate: 100.0,
        stages: Vec::new(),
        max_vus: 50,
    });
    plan.run_time = Some(Duration::from_secs(3));
    let r = run(plan).await;
    assert_eq!(r.meta.model, "open");
    let seen = srv.seen();
    let received = seen.len() as u64;
    let dropped = r.dropped_iterations;
    // 3 s at 100/s: every arrival was either sent or counted as dropped.
    assert!(
        (285..=310).contains(&(received + dropped)),
        "received {received} + dropped {dropped}"
    );
    // 1 s of stall at 100/s with 50 users: about 50 arrivals found no free user.
    assert!((20..=80).contains(&dropped), "dropped {dropped}");
    let from_history: u64 = r.history.iter().map(|p| p.dropped).sum();
    assert_eq!(
        from_history, dropped,
        "the history shows when they were dropped"
    );
    // While the server stalled, requests kept arriving at the scheduled rate
    // until every user was busy (0.4 s at 100/s = 40; closed-model users would send 0).
    let stall_start = seen.iter().find(|s| s.n == 100).unwrap().at;
    let during = seen
        .iter()
        .filter(|s| s.at > stall_start && s.at < stall_start + Duration::from_millis(400))
        .count();
    assert!(
        during >= 30,
        "only {during} requests arrived in the first 0.4 s of the stall"
    );
    // Recorded requests are those that finished before the end.
    let (requests, failures) = r.counts();
    assert!(
        requests <= received && requests + 60 >= received,
        "{requests} of {received}"
    );
    assert_eq!(failures, 0);
    let t = r.total().unwrap();
    assert!(t.max_response_time >= 900.0, "the stall shows: {t:?}");
    // Corrected latencies (from the due time) are never below the uncorrected ones.
    assert!(t.median_response_time + 0.01 >= t.uncorrected.median_response_time);
    assert!(t.max_response_time + 0.01 >= t.uncorrected.max_response_time);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_users_measure_from_the_due_time() {
    let srv = stalling_server(20, Duration::from_millis(500)).await;
    let mut plan = TestPlan::new(&srv.url(), paced(0.02));
    plan.users = 1;
    plan.spawn_rate = f64::INFINITY;
    plan.run_time = Some(Duration::from_secs(2));
    let r = run(plan).await;
    let (requests, failures) = r.counts();
    // 2 s at one iteration per 20 ms: the schedule catches up after the stall.
    assert!((85..=102).contains(&requests), "{requests} requests");
    assert_eq!(failures, 0);
    let t = r.total().unwrap();
    // The ~25 iterations due during the stall started late: measured from
    // their due time they took up to 500 ms; from their send, about nothing.
    assert!(t.percentile(0.9).unwrap() >= 100.0, "corrected p90: {t:?}");
    assert!(
        t.uncorrected.p95 < 100.0,
        "uncorrected p95: {:?}",
        t.uncorrected
    );
    assert!(
        t.avg_response_time > 3.0 * t.uncorrected.avg_response_time,
        "corrected avg {} vs uncorrected {}",
        t.avg_response_time,
        t.uncorrected.avg_response_time
    );
    srv.stop().await;
}

/// `--arrival-stages` follows the rate curve: a ramp from 0 to 100/s over
/// 1 s and back to 0 over 1 s starts 100 iterations, and a rate of 0 starts
/// none until it rises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_arrivals_follow_the_rate_curve() {
    // Counts exact to the arrival: not beside the CPU-heavy tests (it sent
    // 24 of 25 once at a load average of 8, never alone).
    let _turn = crate::support::EXCLUSIVE.lock().await;
    use loadgen::plan::Stage;
    let stage = |secs: u64, target: f64| Stage {
        duration: Duration::from_secs(secs),
        target,
    };
    let srv = Server::start(|_| Reply::ok("ok")).await;
    let mut plan = TestPlan::new(&srv.url(), Scenario::single_get("/").unwrap());
    plan.arrival = Some(Arrival {
        rate: 0.0,
        stages: vec![stage(1, 100.0), stage(1, 0.0)],
        max_vus: 50,
    });
    let r = run(plan).await;
    // The integral of the rate: 50 + 50 (the old scheduler sent 2).
    assert_eq!(srv.count(), 100);
    assert_eq!(r.dropped_iterations, 0);
    assert!(
        (1.9..2.5).contains(&r.meta.duration_s),
        "{}",
        r.meta.duration_s
    );
    srv.stop().await;

    // 1 s at 0/s, then up to 50/s over 1 s: 25 arrivals, none in the first second.
    let srv = Server::start(|_| Reply::ok("ok")).await;
    let mut plan = TestPlan::new(&srv.url(), Scenario::single_get("/").unwrap());
    plan.arrival = Some(Arrival {
        rate: 0.0,
        stages: vec![stage(1, 0.0), stage(1, 50.0)],
        max_vus: 50,
    });
    let started = Instant::now();
    let r = run(plan).await;
    let seen = srv.seen();
    assert_eq!(seen.len(), 25, "the old scheduler sent 100/s at rate 0");
    assert!(
        seen[0].at - started >= Duration::from_millis(950),
        "first arrival after {:?}",
        seen[0].at - started
    );
    assert_eq!(r.counts(), (25, 0));
    srv.stop().await;
}

/// The correction charges the server only for delays it caused: against a
/// fast server, an open model (which never waits for a user) and paced users
/// that start on time measure exactly what they would uncorrected; the
/// timer's own lateness (about a millisecond) is not added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_lateness_is_not_charged_to_a_fast_server() {
    let srv = Server::start(|_| Reply::ok("ok")).await;
    let mut plan = TestPlan::new(&srv.url(), Scenario::single_get("/").unwrap());
    plan.arrival = Some(Arrival {
        rate: 200.0,
        stages: Vec::new(),
        max_vus: 50,
    });
    plan.run_time = Some(Duration::from_secs(1));
    let r = run(plan).await;
    let t = r.total().unwrap();
    assert!(t.num_requests >= 150, "{t:?}");
    assert_eq!(t.median_response_time, t.uncorrected.median_response_time);
    assert_eq!(t.percentile(0.99), Some(t.uncorrected.p99));
    assert_eq!(t.avg_response_time, t.uncorrected.avg_response_time);

    let mut plan = TestPlan::new(&srv.url(), paced(0.01));
    plan.users = 2;
    plan.spawn_rate = f64::INFINITY;
    plan.run_time = Some(Duration::from_secs(1));
    let r = run(plan).await;
    let t = r.total().unwrap();
    assert!(t.num_requests >= 100, "{t:?}");
    // Only an iteration that overran its 10 ms slot is measured from its
    // due time: none should against this server, a rare one on a busy machine.
    let gap = t.median_response_time - t.uncorrected.median_response_time;
    assert!(
        gap.abs() < 0.05,
        "corrected median above uncorrected by {gap} ms"
    );
    srv.stop().await;
}
