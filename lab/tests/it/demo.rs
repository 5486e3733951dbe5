//! `lab demo` end to end: chapter 4 (kill a replica mid-run) with a short,
//! bounded profile.

use std::time::Duration;

use crate::support::{assert_no_processes, lab_out, run_ok};

/// `N of M requests failed` from the chapter's closing line.
fn failed_of(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.contains("requests failed"))
        .unwrap_or_else(|| panic!("no failure line in\n{stdout}"));
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(nums.len() >= 2, "{line}");
    (nums[0], nums[1])
}

#[test]
fn chapter_four_kills_a_replica_and_retries_keep_failures_near_zero() {
    let (cmd, tmp) = lab_out(&[
        "demo",
        "--chapter",
        "4",
        "--run-time",
        "3s",
        "--users",
        "10",
        "--replicas",
        "2",
        "--replica-cpus",
        "0.5",
    ]);
    let (stdout, _) = run_ok(cmd, Duration::from_secs(120));
    assert!(
        stdout.contains("chapter 4: kill a replica mid-run"),
        "{stdout}"
    );
    assert!(stdout.contains("killed replica `victim`"), "{stdout}");
    let (failed, requests) = failed_of(&stdout);
    assert!(
        requests > 50,
        "too few requests measured: {requests}\n{stdout}"
    );
    // Retries resend what the dead replica refused; only requests in flight on
    // it at the kill (a POST cannot be replayed) may fail, and a few timeouts
    // when the test machine is loaded; without retries ~1/3 after the kill would.
    assert!(
        failed * 100 <= requests * 5,
        "{failed} of {requests} failed despite health checks and retries\n{stdout}"
    );
    // The balancer took the victim out (its server line is not `up`).
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("state") && !l.contains("state up")),
        "no server marked down\n{stdout}"
    );
    assert!(stdout.contains("every process stopped"), "{stdout}");
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}
