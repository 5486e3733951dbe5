//! The dashboard's HTTP side on a real socket, without a browser: the page
//! and its assets, the JSON API's refusals, the event stream and the
//! downloads, against a real run of a local target.

use std::time::Duration;

use crate::support::{self, eventually, start_dashboard, start_target, Http};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_embedded() {
    let controller = support::controller("http://127.0.0.1:9");
    let dash = start_dashboard(controller).await;
    let http = Http::default();

    let page = http.get(&(dash.url() + "/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.headers.contains_key("content-security-policy"));
    let html = page.text();
    assert!(html.contains("<title>loadgen dashboard</title>"));

    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/errors.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/assets/vendor/uPlot.min.css", "text/css"),
        ("/assets/vendor/uPlot.LICENSE", "text/plain"),
    ] {
        let r = http.get(&(dash.url() + path)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert!(!r.body.is_empty(), "{path}");
    }
    let missing = http.get(&(dash.url() + "/assets/../Cargo.toml")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = http.get(&(dash.url() + "/assets/nope.js")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let nothing = http.get(&(dash.url() + "/nothing/here")).await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND);
    assert_eq!(nothing.json()["error"], json!("not found"));
    dash.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors() {
    let controller = support::controller("http://127.0.0.1:9");
    let dash = start_dashboard(controller.clone()).await;
    let http = Http::default();
    let start = dash.url() + "/api/start";

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"users": -5, "spawn_rate": 1, "host": "http://127.0.0.1:9"}),
            "at least 1",
        ),
        (
            json!({"users": 1.5, "spawn_rate": 1, "host": "http://127.0.0.1:9"}),
            "whole number",
        ),
        (json!({"users": "many"}), "whole number"),
        (json!({"spawn_rate": "fast"}), "spawn rate"),
        (json!({"host": ""}), "http:// or https://"),
        (
            json!({"users": 2, "spawn_rate": 0, "host": "http://127.0.0.1:9"}),
            "spawn rate",
        ),
        (
            json!({"users": 2, "spawn_rate": 1, "host": "localhost:8000"}),
            "http:// or https://",
        ),
        (
            json!({"users": 2, "spawn_rate": 1, "host": "not a url"}),
            "http:// or https://",
        ),
        (
            json!({"users": 2, "spawn_rate": 1, "host": "http://127.0.0.1:9", "run_time": "later"}),
            "run time",
        ),
        (
            json!({"users": 2, "spawn_rate": 1, "host": "https://127.0.0.1:9"}),
            "https",
        ),
        (json!([1, 2]), "JSON object"),
    ];
    for (body, want) in cases {
        let r = http.post_json(&start, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            err.contains(want),
            "{body}: {err:?} should mention {want:?}"
        );
    }
    let r = http
        .send(
            Method::POST,
            &start,
            Some("application/json"),
            "{\"users\": ",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    // A cross-site form post (no JSON content type) is refused.
    let r = http
        .send(
            Method::POST,
            &start,
            Some("application/x-www-form-urlencoded"),
            "users=1",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json()["error"].as_str().is_some());

    // Editing without a run is a controller refusal, also a 400 with its message.
    let r = http
        .post_json(
            &(dash.url() + "/api/users"),
            &json!({"users": 3, "spawn_rate": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], json!("no test is running"));

    // Wrong methods and unknown downloads.
    let r = http.get(&start).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = http.get(&(dash.url() + "/download/secrets.txt")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].as_str().unwrap().contains("stats.csv"));

    // Nothing of the above started a run.
    assert_eq!(
        controller.snapshot().state,
        loadgen::control::RunState::Ready
    );
    dash.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_form_defaults_to_the_plan() {
    let target = start_target().await;
    let controller = support::controller(&target.url());
    let dash = start_dashboard(controller.clone()).await;
    let http = Http::default();

    let d = http.get(&(dash.url() + "/api/defaults")).await.json();
    assert_eq!(
        d,
        json!({"users": 4, "spawn_rate": 3.0, "host": target.url(), "run_time": "1m 30s"})
    );

    // Every field left out takes the plan's value; `"run_time": ""` overrides
    // the plan's 90 s with "until stopped".
    let r = http
        .post_json(
            &(dash.url() + "/api/start"),
            &json!({"spawn_rate": 50, "run_time": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually("the plan's 4 users", || async {
        let s = controller.snapshot();
        (s.user_count == 4 && s.host == target.url()).then_some(())
    })
    .await;
    controller.stop();
    tokio::time::timeout(Duration::from_secs(10), controller.wait())
        .await
        .expect("run did not stop");
    let report = controller.report();
    assert!(report.counts().0 > 0, "the run loaded the plan's host");
    dash.stop().await;

    // An empty run time is "until stopped", even when the plan has one.
    let mut plan = controller.base_plan().clone();
    plan.run_time = Some(Duration::from_millis(300));
    let short = loadgen::Controller::new(plan);
    let dash = start_dashboard(short.clone()).await;
    let r = http
        .post_json(&(dash.url() + "/api/start"), &json!({"run_time": ""}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually("a second of running", || async {
        (short.snapshot().elapsed_s >= 1.0).then_some(())
    })
    .await;
    assert_ne!(
        short.snapshot().state,
        loadgen::control::RunState::Stopped,
        "the plan's 300 ms did not apply"
    );
    short.stop();
    tokio::time::timeout(Duration::from_secs(10), short.wait())
        .await
        .expect("run did not stop");
    dash.stop().await;

    // Without a host anywhere, a start without one is refused with a remedy.
    let mut plan = controller.base_plan().clone();
    plan.host = String::new();
    let hostless = loadgen::Controller::new(plan);
    let dash = start_dashboard(hostless.clone()).await;
    let d = http.get(&(dash.url() + "/api/defaults")).await.json();
    assert_eq!(d["host"], Value::Null);
    let r = http
        .post_json(&(dash.url() + "/api/start"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"].as_str().unwrap().contains("--host"),
        "{}",
        r.text()
    );
    assert_eq!(hostless.snapshot().state, loadgen::control::RunState::Ready);
    dash.stop().await;
    target.stop().await;
}

/// The complete `data:` events in `text` (a partial last line does not parse).
fn parse_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// Opens `/api/stream` on a raw socket and reads until `want` events arrived.
/// Returns the response head and the events.
async fn read_events(addr: std::net::SocketAddr, want: usize) -> (String, Vec<Value>) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET /api/stream HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let read = async {
        while parse_events(&String::from_utf8_lossy(&buf)).len() < want {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "stream closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(support::WAIT, read)
        .await
        .expect("no events in time");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let head = text
        .split_once("\r\n\r\n")
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    (head, parse_events(&text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_streams_snapshots_and_downloads_reports() {
    let target = start_target().await;
    let controller = support::controller(&target.url());
    let dash = start_dashboard(controller.clone()).await;
    let http = Http::default();

    // The first event is the idle state, with the full (empty) history.
    let (head, events) = read_events(dash.addr, 1).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    assert_eq!(events[0]["state"], json!("ready"));
    assert_eq!(events[0]["history_full"], json!(true));

    let r = http
        .post_json(
            &(dash.url() + "/api/start"),
            &json!({"users": 3, "spawn_rate": 30, "host": target.url(), "run_time": "20s"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A second start while running is refused.
    let again = http
        .post_json(
            &(dash.url() + "/api/start"),
            &json!({"users": 1, "spawn_rate": 1, "host": target.url()}),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.json()["error"]
        .as_str()
        .unwrap()
        .contains("already running"));

    eventually("two seconds of history", || async {
        (controller.snapshot().history.len() >= 2).then_some(())
    })
    .await;

    // A new connection gets the whole history first, then increments that
    // start at the newest point already sent.
    let (_, events) = read_events(dash.addr, 3).await;
    assert_eq!(events[0]["history_full"], json!(true));
    let first_len = events[0]["history"].as_array().unwrap().len();
    assert!(first_len >= 2, "{first_len}");
    let last_time = events[0]["history"][first_len - 1]["time"].clone();
    let later = events[1..]
        .iter()
        .find(|e| e["history"].as_array().is_some_and(|h| h.len() >= 2))
        .expect("an event with new history");
    assert_eq!(later["history_full"], json!(false));
    assert_eq!(
        later["history"][0]["time"], last_time,
        "increments overlap by one point"
    );
    assert!(later["stats"].as_array().unwrap().len() >= 2);

    let snap = http.get(&(dash.url() + "/api/snapshot")).await.json();
    assert!(matches!(
        snap["state"].as_str(),
        Some("running" | "spawning")
    ));
    assert!(
        snap["stats"].as_array().unwrap().last().unwrap()["num_requests"]
            .as_u64()
            .unwrap()
            > 0
    );

    // The balancer status the run polls reaches the snapshots (the Upstreams tab).
    let servers = eventually("upstreams in the snapshot", || async {
        let snap = http.get(&(dash.url() + "/api/snapshot")).await.json();
        let servers = snap["upstreams"]["upstreams"][0]["servers"]
            .as_array()?
            .clone();
        (servers.len() == 3).then_some(servers)
    })
    .await;
    assert!(servers
        .iter()
        .any(|s| s["requests"].as_u64().unwrap_or(0) > 0));

    let r = http
        .post_json(
            &(dash.url() + "/api/users"),
            &json!({"users": 5, "spawn_rate": 50}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually("5 users", || async {
        (controller.snapshot().user_count == 5).then_some(())
    })
    .await;

    let r = http
        .post_json(&(dash.url() + "/api/stop"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(10), controller.wait())
        .await
        .expect("run did not stop");
    assert_eq!(
        controller.snapshot().state,
        loadgen::control::RunState::Stopped
    );

    for (file, kind, starts) in [
        (
            "stats.csv",
            "text/csv",
            "Type,Name,Request Count,Failure Count",
        ),
        ("stats_history.csv", "text/csv", "Timestamp,User Count"),
        ("failures.csv", "text/csv", "Method,Name,Error,Occurrences"),
        (
            "exceptions.csv",
            "text/csv",
            "Count,Message,Traceback,Nodes",
        ),
        ("report.json", "application/json", "{"),
        ("report.html", "text/html", "<!"),
    ] {
        let r = http.get(&(dash.url() + "/download/" + file)).await;
        assert_eq!(r.status, StatusCode::OK, "{file}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{file}"
        );
        assert!(
            r.headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment"),
            "{file}"
        );
        let text = r.text();
        assert!(
            text.starts_with(starts),
            "{file} starts with {:?}",
            &text[..text.len().min(120)]
        );
    }
    let report = http
        .get(&(dash.url() + "/download/report.json"))
        .await
        .json();
    assert!(report["stats"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == json!("/flaky")));

    // Reset clears the figures.
    let r = http
        .post_json(&(dash.url() + "/api/reset"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let snap = http.get(&(dash.url() + "/api/snapshot")).await.json();
    let total = snap["stats"]
        .as_array()
        .and_then(|rows| rows.last())
        .map(|r| r["num_requests"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    assert_eq!(total, 0, "{snap}");

    dash.stop().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_event_streams() {
    let controller = support::controller("http://127.0.0.1:9");
    let dash = start_dashboard(controller).await;
    let mut sock = tokio::net::TcpStream::connect(dash.addr).await.unwrap();
    sock.write_all(b"GET /api/stream HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut chunk))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0);
    // The stream is open; the server must still stop promptly (well inside the 5 s drain).
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(4), dash.stop())
        .await
        .expect("an open event stream held the server up");
    assert!(started.elapsed() < Duration::from_secs(4));
    // And the client sees the end of the stream.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest).await;
        rest
    })
    .await
    .expect("the stream did not end");
    let _ = rest;
}
