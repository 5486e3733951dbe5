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

/// A raw HTTP/1.1 server that reads every request and answers the first on
/// each connection, then reads the second and closes without answering.
/// Returns its address and the number of requests it read; it stops when
/// `stop` is dropped or fires.
async fn dropping_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    tokio::sync::oneshot::Sender<()>,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let counter = hits.clone();
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (sock, _) = tokio::select! {
                _ = &mut rx => break,
                a = listener.accept() => match a { Ok(a) => a, Err(_) => break },
            };
            let hits = counter.clone();
            conns.spawn(async move {
                let mut r = BufReader::new(sock);
                for k in 0.. {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    hits.fetch_add(1, Ordering::SeqCst);
                    if k == 1 {
                        return; // read it, then drop the connection unanswered
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if r.get_mut().write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
        conns.abort_all();
    });
    (addr, hits, tx)
}

/// A request the server read and dropped is a failure and is never sent
/// again, even a POST: the server sees exactly the requests the report
/// counts (oha and Locust: 50 % failures against this server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_server_drops_is_a_failure_and_is_sent_once() {
    let (addr, hits, stop) = dropping_server().await;
    let post = loadgen::scenario::RequestSpec::post("/order")
        .unwrap()
        .json(&serde_json::json!({"qty": 1}))
        .unwrap();
    let user = loadgen::scenario::UserClass::new(
        "Buyer",
        vec![loadgen::scenario::Task::new("order", 1, vec![post.into()])],
    );
    let scenario = Scenario {
        users: vec![user],
        ..Scenario::single_get("/").unwrap()
    };
    let r = run(plan(&format!("http://{addr}"), scenario, 1, 10)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 10);
    assert_eq!(r.counts(), (10, 5));
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert_eq!(r.failures[0].kind, FailureKind::Io);
    assert_eq!(r.status_codes, vec![(200, 5)]);
    drop(stop);
}

/// A server that never answers: no request is recorded, and the run says
/// that requests were abandoned in flight instead of looking clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_still_waiting_at_the_stop_are_reported() {
    let srv = Server::start(|_| Reply::ok("late").after(Duration::from_secs(3600))).await;
    let mut p = plan(&srv.url(), Scenario::single_get("/hang").unwrap(), 2, 1000);
    p.run_time = Some(Duration::from_secs(1));
    let r = run(p).await;
    assert_eq!(r.counts(), (0, 0));
    assert!(
        r.warnings
            .iter()
            .any(|w| w
                .starts_with("2 requests were still waiting for a response when the run stopped")),
        "{:?}",
        r.warnings
    );
    drop(srv); // its handlers still sleep: abort rather than drain
}

/// An `on_stop` that hangs is cut at `--stop-timeout`: the run's measured
/// time ends when it was stopped (the rates do not halve), and the
/// abandoned request is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_on_stop_does_not_stretch_the_run_and_is_reported() {
    use loadgen::scenario::{RequestSpec, Task, UserClass, WaitTime};
    let srv = Server::start(|s| {
        if s.path == "/hang" {
            Reply::ok("late").after(Duration::from_secs(3600))
        } else {
            Reply::ok("ok")
        }
    })
    .await;
    let user = UserClass {
        wait: WaitTime::Constant(0.1),
        on_stop: vec![RequestSpec::get("/hang").unwrap().into()],
        ..UserClass::new(
            "U",
            vec![Task::new(
                "t",
                1,
                vec![RequestSpec::get("/").unwrap().into()],
            )],
        )
    };
    let scenario = Scenario {
        users: vec![user],
        ..Scenario::single_get("/").unwrap()
    };
    let mut p = loadgen::TestPlan::new(&srv.url(), scenario);
    p.run_time = Some(Duration::from_secs(1));
    p.stop_timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let r = run(p).await;
    // The process waited for on_stop's timeout ...
    assert!(started.elapsed() >= Duration::from_secs(2));
    // ... but the run's time (the divisor of its rates) is its 1 s.
    assert!(
        (0.9..1.5).contains(&r.meta.duration_s),
        "{}",
        r.meta.duration_s
    );
    let (requests, failures) = r.counts();
    assert!(requests >= 5 && failures == 0, "{requests} {failures}");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("1 request was still waiting")),
        "{:?}",
        r.warnings
    );
    drop(srv); // its /hang handler still sleeps: abort rather than drain
}
