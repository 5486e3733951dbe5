//! `lab compare --replicas 2` with a short, bounded profile, end to end.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{
    assert_no_cgroup, assert_no_processes, lab_out, report_in, run_ok, spawn_lines,
};

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
    "--confirm",
    "2s",
];

#[test]
fn compare_two_replicas_writes_both_runs_and_shares_add_up() {
    let (mut cmd, tmp) = lab_out(SHORT);
    // Info-level logs in the replicas' and balancer's files, to check them for colour codes.
    cmd.env("RUST_LOG", "info");
    let (stdout, pid) = run_ok(cmd, Duration::from_secs(120));
    assert!(stdout.contains("[single] step 1/2"), "{stdout}");
    assert!(stdout.contains("[group ] step 1/2"), "{stdout}");
    assert!(stdout.contains("[single] confirmation:"), "{stdout}");
    assert!(stdout.contains("measured again over 2 s"), "{stdout}");
    // Loads 2 and 4 never break the objective: capacities are lower bounds,
    // and there is no speed-up or bottleneck to state.
    assert!(stdout.contains("speed-up: not measured"), "{stdout}");
    assert!(stdout.contains("not reached: raise --max-load"), "{stdout}");
    assert!(!stdout.contains("none reached"), "{stdout}");
    assert!(!stdout.contains("scaling efficiency"), "{stdout}");
    // The share table names the replicas as the process table does.
    assert!(stdout.contains("  r1 127.0.0.1:"), "{stdout}");

    let (run_dir, report) = report_in(tmp.path());
    // With a budget in force on two CPUs or more, the tools and the
    // replicas were kept on CPUs of their own, and the report says which.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if report["budget_applied"] != "none" && cpus >= 2 {
        assert_eq!(report["cpus_apart"], true, "{stdout}");
        assert!(stdout.contains(", the replicas on CPU"), "{stdout}");
    }
    assert_eq!(report["speedup_bound"], "not_measured");
    assert_eq!(report["speedup_at_knees"], false);
    assert!(report["speedup"].is_null() && report["efficiency"].is_null());
    for side in ["single", "group"] {
        let steps = report[side]["steps"].as_array().unwrap();
        // The search's steps, then its confirmations (--confirm): one when
        // it held, more when the capacity stepped down.
        let searched = steps.iter().take_while(|s| s["confirmation"] == false);
        let searched: Vec<_> = searched.collect();
        assert!(
            !searched.is_empty() && searched.len() <= 2,
            "{side}: {} steps",
            searched.len()
        );
        assert_eq!(report[side]["capacity_is_lower_bound"], true);
        assert_eq!(report[side]["search_ended"], "max_load");
        // Nothing broke: no knee to fit, so no speed-up at the knees.
        assert!(report[side]["knee"].is_null(), "{side}");
        // capacity_step is a step number, as steps[].number (from 1): the
        // last confirmation, which measured the capacity.
        let c = steps.last().unwrap();
        assert_eq!(c["confirmation"], true, "{side}: {c}");
        assert_eq!(report[side]["capacity_step"], c["number"], "{side}");
        assert_eq!(c["number"], steps.len());
        let first = &steps[searched.len()];
        assert_eq!(first["load"], searched.last().unwrap()["load"], "{side}");
        if c["kept"] == true {
            assert!(c["load"].as_u64() <= first["load"].as_u64(), "{side}");
        }
        let secs = c["summary"]["seconds"].as_f64().unwrap();
        assert!((1.9..2.5).contains(&secs), "{side}: {secs} s");
        assert!(c["summary"]["requests"].as_u64().unwrap() > 0, "{side}");
        // Every lab process counts, not only this side's.
        for st in steps {
            let own: f64 = st["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["cpu_percent"].as_f64().unwrap())
                .sum();
            let lab = st["lab_cpu_percent"].as_f64().unwrap();
            assert!(
                lab >= own - 1e-6 && lab > 0.0,
                "{side}: lab {lab}, own {own}"
            );
        }
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
        assert_eq!(list[0]["replica"], "r1");
        assert_eq!(list[1]["replica"], "r2");
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
    // Log files are written without colour codes (stderr is not a terminal).
    for log in ["replica-single.log", "replica-r1.log", "balancer.log"] {
        let text = std::fs::read_to_string(run_dir.join(log)).unwrap();
        assert!(text.contains("INFO"), "{log} has no log line:\n{text}");
        assert!(!text.contains('\x1b'), "{log} has escape codes:\n{text}");
    }
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    // The lab process is gone; its cgroup folders must be too.
    assert_no_cgroup(pid);
}

/// Starts a longer compare, waits for its first finished step, sends
/// `signal` and checks that the finished steps are reported.
fn interrupted_by(signal: Signal) {
    let (cmd, tmp) = lab_out(&[
        "compare",
        "--replicas",
        "1",
        "--replica-cpus",
        "0.5",
        "--step-duration",
        "2s",
        "--start-load",
        "2",
        "--max-load",
        "64",
        "--max-steps",
        "6",
        "--refine",
        "0",
        "--confirm",
        "0s",
    ]);
    let (mut child, rx) = spawn_lines(cmd, true);
    let pid = child.id();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.starts_with("[group ] step 1/");
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no finished step within 90 s:\n{}", seen.join("\n"));
            }
        }
    }
    kill(Pid::from_raw(pid as i32), signal).unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline + Duration::from_secs(30) {
            let _ = child.kill();
            panic!("lab did not exit after {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = rx.iter().collect();
    let out = format!("{}\n{}", seen.join("\n"), rest.join("\n"));
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("** INTERRUPTED"), "{out}");

    let (run_dir, report) = report_in(tmp.path());
    assert_eq!(report["interrupted"], true);
    for side in ["single", "group"] {
        let steps = report[side]["steps"].as_array().unwrap();
        assert!(!steps.is_empty(), "{side}: no step reported");
        assert_eq!(report[side]["search_ended"], "interrupted", "{side}");
    }
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("<b>Interrupted</b>"));
    for f in ["single_stats.csv", "group_stats.csv"] {
        assert!(run_dir.join(f).is_file(), "{f} missing");
    }
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    assert_no_cgroup(pid);
}

#[test]
fn sigint_mid_run_reports_the_finished_steps() {
    interrupted_by(Signal::SIGINT);
}

#[test]
fn sigterm_mid_run_reports_the_finished_steps() {
    interrupted_by(Signal::SIGTERM);
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
    // With budgets the group of 2 starts at 2 × --start-load.
    for (side, load) in [("single", 2), ("group", 4)] {
        let first = &report[side]["steps"][0];
        assert_eq!(first["load"], load);
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
