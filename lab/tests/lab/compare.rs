//! `lab compare --replicas 2` with a short, bounded profile, end to end.

use std::time::Duration;

use crate::support::{assert_no_cgroup, assert_no_processes, lab_out, report_in, run_ok};

/// Two replicas, at most two short steps of load 2 and 4, no refining: a
/// whole comparison in seconds.
const SHORT: &[&str] = &[
    "compare",
    "--replicas",
    "2",
    "--replica-cpus",
    "0.5",
    "--step-duration",
    "2s",
    "--start-load",
    "2",
    "--max-load",
    "4",
    "--max-steps",
    "2",
    "--refine",
    "0",
];

#[test]
fn compare_two_replicas_writes_both_runs_and_shares_add_up() {
    let (cmd, tmp) = lab_out(SHORT);
    let (stdout, pid) = run_ok(cmd, Duration::from_secs(120));
    assert!(stdout.contains("[single] step 1/2"), "{stdout}");
    assert!(stdout.contains("[group ] step 1/2"), "{stdout}");
    assert!(stdout.contains("speed-up"), "{stdout}");

    let (run_dir, report) = report_in(tmp.path());
    for side in ["single", "group"] {
        let steps = report[side]["steps"].as_array().unwrap();
        assert!(
            !steps.is_empty() && steps.len() <= 2,
            "{side}: {} steps",
            steps.len()
        );
        assert!(
            steps[0]["summary"]["requests"].as_u64().unwrap() > 0,
            "{side} made no request"
        );
        assert!(!steps[0]["processes"].as_array().unwrap().is_empty());
        assert!(!report[side]["diagnosis"]["bottleneck"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    for step in report["group"]["steps"].as_array().unwrap() {
        let shares = &step["shares"];
        let list = shares["shares"].as_array().unwrap();
        assert_eq!(list.len(), 2, "one share per replica");
        let sum: u64 = list.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
        assert_eq!(
            sum,
            shares["total"].as_u64().unwrap(),
            "shares add up to the balancer's total"
        );
        assert!(
            list.iter().all(|s| s["requests"].as_u64().unwrap() > 0),
            "round robin used both: {list:?}"
        );
        // The balancer forwards every request the load generator sent
        // (retries would add some). Its window (two reads of /status)
        // encloses loadgen's, which counts every request finished in it
        // (samples still buffered at the window's start go to the step
        // before). They may differ by the requests in flight when /status
        // is first read: at most one per user (closed model).
        let counted = step["summary"]["requests"].as_u64().unwrap();
        let users = step["load"].as_u64().unwrap();
        assert!(
            sum + users >= counted,
            "balancer sent {sum}, loadgen counted {counted} with {users} users; step: {}",
            step["summary"]
        );
    }
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("One replica, directly")
            && html.contains("replicas behind the balancer")
    );
    for f in [
        "single.json",
        "group.json",
        "single_stats.csv",
        "group_stats.csv",
        "single_stats_history.csv",
    ] {
        assert!(
            run_dir.join(f).is_file(),
            "{f} missing in {}",
            run_dir.display()
        );
    }
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    // The lab process is gone; its cgroup folders must be too.
    assert_no_cgroup(pid);
}

#[test]
fn compare_open_model_steps_arrival_rates() {
    let args = [SHORT, &["--model", "open", "--warmup", "1s", "--no-html"]].concat();
    let (cmd, tmp) = lab_out(&args);
    let (stdout, _) = run_ok(cmd, Duration::from_secs(120));
    assert!(stdout.contains("[single] step 1/2:     2 it/s"), "{stdout}");
    let (run_dir, report) = report_in(tmp.path());
    assert_eq!(report["model"], "open");
    assert_eq!(report["load_unit"], "it/s");
    for side in ["single", "group"] {
        let first = &report[side]["steps"][0];
        assert_eq!(first["load"], 2);
        // 2 iterations/s for 2 s, each a login and at least one more request.
        let requests = first["summary"]["requests"].as_u64().unwrap();
        assert!(requests >= 4, "{side}: {requests} requests");
        // The window is at least the step; a loaded machine may read it late.
        let secs = first["summary"]["seconds"].as_f64().unwrap();
        assert!((2.0..5.0).contains(&secs), "{side}: window of {secs} s");
    }
    assert!(!run_dir.join("report.html").exists());
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}
