//! `lab scale` with a short, bounded profile, end to end: every count
//! measured through its own balancer, the fit attempted, the reports
//! written, nothing left behind.

use std::time::Duration;

use crate::support::{assert_no_cgroup, assert_no_processes, lab_out, run_ok, SHORT_SEARCH};

#[test]
fn scale_measures_each_count_and_leaves_nothing_behind() {
    let (cmd, tmp) = lab_out(
        &[
            &["scale", "--replicas", "1,2,3", "--replica-cpus", "0.3"],
            SHORT_SEARCH,
        ]
        .concat(),
    );
    let (stdout, pid) = run_ok(cmd, Duration::from_secs(240));
    for n in [
        "[n1    ] step 1/2",
        "[n2    ] step 1/2",
        "[n3    ] step 1/2",
    ] {
        assert!(stdout.contains(n), "{n} missing:\n{stdout}");
    }
    // Progress: windows done of the expected, elapsed, time left.
    assert!(stdout.contains("lab: window 1 of ~"), "{stdout}");
    assert!(stdout.contains("elapsed, about"), "{stdout}");
    assert!(
        stdout.contains("== lab scale: capacity by replica count =="),
        "{stdout}"
    );
    assert!(stdout.contains("USL"), "{stdout}");
    let run_dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("scale.json")).unwrap()).unwrap();
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    for (p, n) in points.iter().zip([1, 2, 3]) {
        assert_eq!(p["replicas"], n);
        let runs = p["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        // Loads 2 and 4 keep the objective: a capacity (a lower bound) with goodput.
        assert!(runs[0]["goodput"].as_f64().unwrap() > 0.0, "{p}");
        assert_eq!(runs[0]["lower_bound"], true);
        // The group's shares come from its own balancer: one per replica.
        let shares = &runs[0]["steps"][0]["shares"]["shares"];
        assert_eq!(shares.as_array().unwrap().len(), n as usize, "{p}");
    }
    let html = std::fs::read_to_string(run_dir.join("scale.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("class=\"range\""),
        "{html}"
    );
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    assert_no_cgroup(pid);
}

#[test]
fn compare_repeat_runs_each_side_k_times_and_reports_every_repeat() {
    let (cmd, tmp) = lab_out(&[
        "compare",
        "--replicas",
        "2",
        "--replica-cpus",
        "0.5",
        "--step-duration",
        "2s",
        "--warmup",
        "1s",
        "--start-load",
        "2",
        "--max-load",
        "2",
        "--max-steps",
        "1",
        "--refine",
        "0",
        "--confirm",
        "0s",
        "--repeat",
        "2",
        "--no-html",
    ]);
    let (stdout, pid) = run_ok(cmd, Duration::from_secs(180));
    assert!(stdout.contains("lab: repeat 2 of 2"), "{stdout}");
    assert!(
        stdout.contains("goodput at capacity (successful req/s)"),
        "{stdout}"
    );
    let (_, report) = crate::support::report_in(tmp.path());
    let reps = report["repeats"].as_array().unwrap();
    assert_eq!(reps.len(), 2, "{report}");
    for r in reps {
        assert!(r["single_goodput"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["group_goodput"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(report["repeat_shown"].as_u64().is_some());
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    assert_no_cgroup(pid);
}
