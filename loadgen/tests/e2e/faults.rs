//! Bad input and rough ends: an unreachable target, an invalid scenario
//! file, Ctrl-C in the middle of a run.

use std::time::Duration;

use loadgen::stats::FailureKind;
use loadgen::Scenario;

use crate::support::{loadgen, path_in, plan, read_report, run, Reply, Server, LIMIT};

/// A port nothing listens on: bound, then closed.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_a_counted_connect_failure() {
    let url = format!("http://127.0.0.1:{}", closed_port().await);
    let r = run(plan(&url, Scenario::single_get("/").unwrap(), 3, 30)).await;
    assert_eq!(r.counts(), (30, 30));
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    let f = &r.failures[0];
    assert_eq!((f.kind, f.occurrences), (FailureKind::Connect, 30));
    assert_eq!(f.error, "connect: connection refused");
    assert!(r.status_codes.is_empty());

    // The binary says so and exits 1, with its reports written.
    let dir = tempfile::tempdir().unwrap();
    let json = path_in(&dir, "r.json");
    let o = loadgen(&[
        &format!("{url}/"),
        "-u",
        "2",
        "-i",
        "10",
        "-t",
        "20s",
        "--only-summary",
        "--json",
        &json,
    ])
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stdout.contains("connection refused"),
        "the summary lists the failure: {o:?}"
    );
    assert_eq!(read_report(std::path::Path::new(&json)).counts(), (10, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_scenario_file_names_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // (file text, line, words the message must hold)
        (
            "users:\n  - tasks:\n      - steps:\n          - gett: /x\n",
            4,
            "unknown field `gett`",
        ),
        (
            "users:\n  - wait: sometimes(3)\n    tasks:\n      - steps:\n          - get: /x\n",
            2,
            "sometimes(3)",
        ),
        (
            "users:\n  - tasks:\n      - steps:\n          - get: /x\n            headers: {Authorization: \"Bearer {{token}}\"}\n",
            5,
            "{{token}} is never set",
        ),
        (
            "users:\n  - tasks:\n      - steps:\n          - for: id in 9..1\n            steps:\n              - get: /p/{{id}}\n",
            4,
            "the start is after the end",
        ),
        ("users: [\n", 2, ""),
    ];
    for (i, (text, line, words)) in cases.iter().enumerate() {
        let path = path_in(&dir, &format!("bad{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let o = loadgen(&[
            "-f",
            &path,
            "-H",
            "http://127.0.0.1:9",
            "--headless",
            "-t",
            "1s",
        ])
        .await;
        assert_eq!(o.code, 2, "{o:?}");
        assert!(
            o.stderr.contains(&format!("{path}:{line}: ")),
            "case {i}: {}",
            o.stderr
        );
        assert!(o.stderr.contains(words), "case {i}: {}", o.stderr);
    }
    let missing = path_in(&dir, "missing.yaml");
    let o = loadgen(&["-f", &missing, "--headless"]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("cannot read scenario file"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_users_and_writes_every_report() {
    let srv = Server::start(|_| Reply::ok("hi").after(Duration::from_millis(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let (csv, json, html) = (
        path_in(&dir, "out"),
        path_in(&dir, "out.json"),
        path_in(&dir, "out.html"),
    );
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            &format!("{}/", srv.url()),
            "-u",
            "4",
            "-t",
            "60s",
            "--only-summary",
        ])
        .args(["--csv", &csv, "--json", &json, "--html", &html])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    srv.wait_for(50).await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("loadgen did not stop after SIGINT")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Aggregated"));
    let r = read_report(std::path::Path::new(&json));
    let (requests, failures) = r.counts();
    assert_eq!(failures, 0);
    // Requests in flight at the signal are abandoned, at most one per user.
    let received = srv.count();
    assert!(
        requests <= received && requests + 4 >= received,
        "{requests} recorded, {received} received"
    );
    assert!(r.meta.duration_s < 30.0);
    for suffix in [
        "_stats.csv",
        "_stats_history.csv",
        "_failures.csv",
        "_exceptions.csv",
    ] {
        let p = format!("{csv}{suffix}");
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 0),
            "{p} missing"
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<html") && page.contains("Aggregated"));
    srv.stop().await;
}
