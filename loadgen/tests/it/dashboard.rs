//! The dashboard started from the command line: its start form and its API
//! use the plan given by the flags and the scenario's `load:` and `host:`.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{http, path_in, read_report, spawn_loadgen, Reply, Server, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_starts_from_the_flags_and_the_files_load() {
    let srv = Server::start(|_| Reply::ok("fine")).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = path_in(&dir, "s.yaml");
    std::fs::write(
        &scenario,
        format!(
            "host: {}\nload: {{users: 4, spawn_rate: 4, run_time: 3s}}\nusers:\n  - name: U\n    wait: constant(0.05)\n    tasks:\n      - name: t\n        steps:\n          - get: /\n",
            srv.url()
        ),
    )
    .unwrap();
    let json = path_in(&dir, "r.json");
    // -u overrides the file's users; the rate, run time and host come from the file.
    let mut child = spawn_loadgen(&[
        "-f",
        &scenario,
        "--web",
        "--web-port",
        "0",
        "-u",
        "7",
        "--json",
        &json,
    ]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Dashboard: http://") {
                return rest.trim_end_matches('/').to_string();
            }
        }
        panic!("loadgen ended without printing the dashboard address");
    })
    .await
    .expect("no dashboard address in time");

    let (status, body) = http(&addr, "GET", "/api/defaults", None).await;
    assert_eq!(status, 200, "{body}");
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["users"], 7, "{d}");
    assert_eq!(d["spawn_rate"], 4.0, "{d}");
    assert_eq!(d["run_time"], "3s", "{d}");
    assert_eq!(d["host"], srv.url(), "{d}");

    // A start with no fields runs the plan: its host, users and run time.
    let (status, body) = http(&addr, "POST", "/api/start", Some("{}")).await;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let (_, snap) = http(&addr, "GET", "/api/snapshot", None).await;
        let snap: Value = serde_json::from_str(&snap).unwrap();
        if snap["state"] == "stopped" {
            break; // the plan's run time ended it
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never stopped: {snap}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(srv.count() > 0);

    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("loadgen did not exit after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let r = read_report(std::path::Path::new(&json));
    assert_eq!(r.meta.host, srv.url());
    assert_eq!(r.meta.max_users, 7);
    srv.stop().await;
}
