//! Bad input and broken parts: a clear message, an exit code, nothing left behind.

use std::time::Duration;

use crate::support::{assert_no_cgroup, assert_no_processes, lab, run, run_with_pid};

#[test]
fn a_replica_that_will_not_start_gives_a_clear_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = lab();
    cmd.args([
        "compare",
        "--replicas",
        "2",
        "--replica-arg=--no-such-flag",
        "--out",
    ])
    .arg(tmp.path());
    let child_out = run(cmd, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&child_out.stderr);
    assert_eq!(child_out.status.code(), Some(1), "{err}");
    assert!(err.contains("replica single did not start"), "{err}");
    assert!(
        err.contains("--no-such-flag"),
        "the replica's own complaint is shown: {err}"
    );
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn a_database_that_cannot_be_created_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = lab();
    cmd.args([
        "compare",
        "--replicas",
        "1",
        "--database",
        "/nonexistent-lab-dir/market.db",
        "--out",
    ])
    .arg(tmp.path());
    let out = run(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot create the database /nonexistent-lab-dir/market.db"),
        "{err}"
    );
    assert!(err.contains("--database"), "{err}");
    assert_no_processes(tmp.path(), Duration::from_secs(5));
}

#[test]
fn a_port_in_use_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = lab();
    cmd.args(["up", "--replicas", "1", "--listen", &addr, "--out"])
        .arg(tmp.path());
    let (out, pid) = run_with_pid(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
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
        let out = run(
            {
                let mut c = lab();
                c.args(&args);
                c
            },
            Duration::from_secs(10),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Caught after parsing, before anything starts.
    let tmp = tempfile::tempdir().unwrap();
    let mut c = lab();
    c.args(["compare", "--start-load", "50", "--max-load", "10", "--out"])
        .arg(tmp.path());
    let out = run(c, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--start-load 50 is above --max-load 10"));
}
