//! Bad input and broken parts: a clear message, an exit code, nothing left behind.

use std::time::Duration;

use crate::support::{assert_no_cgroup, assert_no_processes, lab, lab_out, run_fails};

#[test]
fn a_replica_that_will_not_start_gives_a_clear_error_and_leaves_nothing() {
    let (cmd, tmp) = lab_out(&["compare", "--replicas", "2", "--replica-arg=--no-such-flag"]);
    let (err, _) = run_fails(cmd, Duration::from_secs(60), 1);
    assert!(err.contains("replica single did not start"), "{err}");
    assert!(
        err.contains("--no-such-flag"),
        "the replica's own complaint is shown: {err}"
    );
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn a_database_that_cannot_be_created_is_named() {
    let (cmd, tmp) = lab_out(&[
        "compare",
        "--replicas",
        "1",
        "--database",
        "/nonexistent-lab-dir/market.db",
    ]);
    let (err, _) = run_fails(cmd, Duration::from_secs(30), 1);
    assert!(
        err.contains("cannot create the database /nonexistent-lab-dir/market.db"),
        "{err}"
    );
    assert!(err.contains("--database"), "{err}");
    assert_no_processes(tmp.path(), Duration::from_secs(5));
}

#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (cmd, tmp) = lab_out(&["up", "--replicas", "1", "--listen", &addr]);
    let (err, pid) = run_fails(cmd, Duration::from_secs(30), 1);
    assert!(err.contains(&format!("{addr} is already in use")), "{err}");
    assert_no_processes(tmp.path(), Duration::from_secs(5));
    assert_no_cgroup(pid);
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        vec!["compare", "--replica-cpus", "lots"],
        vec!["compare", "--replicas", "0"],
        vec!["compare", "--step-duration", "0s"],
        vec!["compare", "--slo-failures", "120"],
    ] {
        let mut cmd = lab();
        cmd.args(&args);
        run_fails(cmd, Duration::from_secs(10), 2);
    }
    // Refused while parsing: nothing is seeded or started, no run folder made.
    for (args, says) in [
        (
            vec!["compare", "--algorithm", "bogus"],
            "unknown algorithm \"bogus\"",
        ),
        (
            vec!["compare", "--model", "open", "--start-load", "0.5"],
            "`0.5` is not a whole number",
        ),
    ] {
        let (cmd, tmp) = lab_out(&args);
        let (err, _) = run_fails(cmd, Duration::from_secs(10), 2);
        assert!(err.contains(says), "{err}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "{err}");
    }
    // Caught after parsing, before anything starts.
    for (args, says) in [
        (
            vec!["compare", "--start-load", "50", "--max-load", "10"],
            "--start-load 50 is above --max-load 10",
        ),
        (
            vec!["compare", "--confirm", "2s"],
            "--confirm 2s is shorter than --step-duration 4s",
        ),
        (
            vec!["compare", "--refine-duration", "2s"],
            "--refine-duration 2s is shorter than --step-duration 4s",
        ),
        (
            vec!["compare", "--confirm", "20s 5ms"],
            "--confirm 20s 5ms must be a whole number of 10 ms",
        ),
    ] {
        let (cmd, _tmp) = lab_out(&args);
        let (err, _) = run_fails(cmd, Duration::from_secs(10), 2);
        assert!(err.contains(says), "{err}");
    }
}
