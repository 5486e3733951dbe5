//! Hostile input, through the real binary: absurd flags and numbers, a
//! scenario file with absurd values, and servers that answer with endless
//! headers, endless bodies, lying lengths or garbage. Whatever comes in,
//! loadgen answers with one precise line or a counted failure, ends on time
//! and on a signal, and keeps its memory bounded.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Child;
use tokio::time::Instant;

use crate::support::{loadgen, path_in, spawn_loadgen, Reply, Server};

/// A run told to last 1 s (or stopped by a signal) must be gone by then.
const STOPS_WITHIN: Duration = Duration::from_secs(15);

/// Resident memory a bounded run may reach. A loadgen at 1000 users holds a
/// few tens of MB; the runaway arrival loop grew by gigabytes.
const RSS_LIMIT_KB: u64 = 512 * 1024;

/// Resident set of a running process, from `/proc` (0 once it is gone).
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits for `child` to exit by itself, at most `STOPS_WITHIN`, watching
/// its memory; kills it (and fails) when it does not stop or grows past
/// `RSS_LIMIT_KB`. Returns the exit code and stderr.
async fn watch(mut child: Child, what: &str) -> (i32, String) {
    let pid = child.id().expect("the child runs");
    let deadline = Instant::now() + STOPS_WITHIN;
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(rss_kb(pid));
        if peak > RSS_LIMIT_KB || Instant::now() > deadline {
            let _ = child.kill().await;
            panic!(
                "{what}: loadgen did not stop within {STOPS_WITHIN:?} with bounded memory (peak RSS {peak} kB)"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err).await;
    }
    assert!(!err.contains("panicked"), "{what}: {err}");
    (status.code().unwrap_or(-1), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_arrival_rate_ends_on_time() {
    let _turn = crate::support::EXCLUSIVE.lock().await;
    let server = Server::start(|_| Reply::ok("fine")).await;
    let url = format!("{}/", server.url());
    let child = spawn_loadgen(&[
        &url,
        "--arrival-rate",
        "1000000000",
        "-t",
        "1s",
        "--only-summary",
    ]);
    let (code, err) = watch(child, "-t 1s").await;
    // Dropped arrivals are not failures: 0 unless a request failed.
    assert!(code == 0 || code == 1, "code {code}: {err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_arrival_rate_stops_on_sigint_and_sigterm() {
    let _turn = crate::support::EXCLUSIVE.lock().await;
    let server = Server::start(|_| Reply::ok("fine")).await;
    let url = format!("{}/", server.url());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let child = spawn_loadgen(&[&url, "--arrival-rate", "1e9", "--only-summary"]);
        let pid = child.id().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        kill(Pid::from_raw(pid as i32), signal).unwrap();
        let (code, err) = watch(child, &format!("{signal}")).await;
        assert!(code == 0 || code == 1, "{signal}: code {code}: {err}");
    }
    server.stop().await;
}

/// Runs the binary expecting a usage error: exit 2, one line on stderr that
/// holds every word of `words`.
async fn refused(args: &[&str], words: &[&str]) {
    let o = loadgen(args).await;
    assert_eq!(o.code, 2, "{args:?}: {o:?}");
    let err = o.stderr.trim_end();
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    assert!(!err.contains("For more information"), "{args:?}: {err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: {w:?} missing in {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_one_line_naming_the_flag() {
    let url = "http://127.0.0.1:9/";
    refused(&[url, "-u", "-1"], &["--users", "-1"]).await;
    refused(&[url, "-u", "x"], &["--users"]).await;
    refused(&[url, "-r", "-2"], &["--spawn-rate"]).await;
    refused(&[url, "-r", "0"], &["--spawn-rate", "above 0"]).await;
    refused(&[url, "-t", "0s"], &["--run-time", "above 0"]).await;
    refused(&[url, "-t", "-5"], &["--run-time"]).await;
    refused(&[url, "-i", "0"], &["--iterations", "at least 1"]).await;
    refused(&[url, "-i", "-3"], &["--iterations"]).await;
    refused(&[url, "--timeout", "0s"], &["--timeout", "above 0"]).await;
    refused(&[url, "--arrival-rate", "-1"], &["--arrival-rate"]).await;
    refused(&[url, "--arrival-rate", "inf"], &["--arrival-rate"]).await;
    refused(&[url, "--arrival-rate", "NaN"], &["--arrival-rate"]).await;
    refused(&[url, "--max-vus", "0"], &["--max-vus"]).await;
    refused(
        &[url, "--stop-timeout", "-1"],
        &["--stop-timeout", "negative"],
    )
    .await;
    refused(&[url, "--stages", "1s:-4"], &["--stages"]).await;
    refused(&[url, "--segment", "0/0"], &["--segment"]).await;
    refused(&[url, "--web-port", "70000"], &["--web-port"]).await;
    refused(&[url, "--bogus"], &["--bogus"]).await;
    refused(&["merge"], &["required"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_off_a_terminal_are_plain_text() {
    let server = Server::start(|_| Reply::ok("fine")).await;
    let url = format!("{}/", server.url());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    for no_color in [None, Some("1")] {
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
        // Port 0 on a non-loopback address warns at once; the run then
        // logs its stop at info level.
        cmd.args([&url, "-u", "1", "-t", "1s", "--web", "--autostart"])
            .args(["--web-host", "0.0.0.0", "--web-port", "0"])
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let status = tokio::time::timeout(STOPS_WITHIN, cmd.status())
            .await
            .expect("loadgen stops")
            .unwrap();
        assert_eq!(status.code(), Some(0));
        let text = std::fs::read(&log).unwrap();
        let shown = String::from_utf8_lossy(&text);
        assert!(shown.contains("WARN"), "a log line was written: {shown}");
        assert!(
            !text.contains(&0x1b),
            "no escape codes in a file: {shown:?}"
        );
    }
    server.stop().await;
}

/// A raw TCP server: reads a request head, then hands the socket to `answer`.
async fn raw_server<F, Fut>(answer: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                answer(sock).await;
            });
        }
    });
    (url, task)
}

/// Writes `chunk` forever (until the peer goes away), after `prefix`.
async fn endless(mut sock: tokio::net::TcpStream, prefix: &'static [u8], chunk: &'static [u8]) {
    if sock.write_all(prefix).await.is_err() {
        return;
    }
    // Endless, not flat out: a millisecond between writes keeps these
    // servers from taking the cores the other tests are timing on.
    while sock.write_all(chunk).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_are_counted_failures_not_hangs() {
    let _turn = crate::support::EXCLUSIVE.lock().await;
    let cases: Vec<(&str, String, tokio::task::JoinHandle<()>)> = vec![
        {
            let (u, t) = raw_server(|s| {
                endless(
                    s,
                    b"HTTP/1.1 200 OK\r\n",
                    b"X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                )
            })
            .await;
            ("endless headers", u, t)
        },
        {
            let (u, t) = raw_server(|s| {
                endless(
                    s,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"10\r\naaaaaaaaaaaaaaaa\r\n",
                )
            })
            .await;
            ("endless chunked body", u, t)
        },
        {
            let (u, t) = raw_server(|s| {
                endless(
                    s,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
                    &[b'a'; 8192],
                )
            })
            .await;
            ("huge Content-Length", u, t)
        },
        {
            let (u, t) = raw_server(|mut s| async move {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhi",
                    )
                    .await;
            })
            .await;
            ("overflowing Content-Length", u, t)
        },
        {
            let (u, t) = raw_server(|mut s| async move {
                let _ = s.write_all(b"SMTP READY \xff\xfe garbage\r\n\r\n").await;
            })
            .await;
            ("garbage status line", u, t)
        },
        {
            let (u, t) = raw_server(|mut s| async move {
                let _ = s
                    .write_all(b"HTTP/1.1 99999 Nope\r\nContent-Length: 0\r\n\r\n")
                    .await;
            })
            .await;
            ("absurd status code", u, t)
        },
        {
            let (u, t) = raw_server(|s| endless(s, b"", b"\xff\x00garbage without end ")).await;
            ("endless garbage", u, t)
        },
    ];
    for (what, url, task) in cases {
        let child = spawn_loadgen(&[
            &url,
            "-u",
            "4",
            "-t",
            "2s",
            "--timeout",
            "1s",
            "--only-summary",
        ]);
        let (code, err) = watch(child, what).await;
        // A garbled answer is a counted failure (exit 1). An endless one may
        // still be arriving when the run stops: abandoned, not failed (exit 0).
        let endless = what.starts_with("endless") || what.starts_with("huge");
        assert!(
            code == 1 || (endless && code == 0),
            "{what}: the failures are counted: {err}"
        );
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_file_with_absurd_values_is_refused_or_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let steps = "users:\n  - tasks:\n      - steps:\n          - get: /x\n";
    let cases: [(&str, &[&str]); 8] = [
        ("load: {users: 99999999999999}\n", &["users"]),
        ("load: {spawn_rate: -5}\n", &["spawn"]),
        ("load: {run_time: 0s}\n", &["run"]),
        ("load: {iterations: 0}\n", &["iterations"]),
        ("load: {timeout: 0s}\n", &["timeout"]),
        ("load: {arrival_rate: 1e400}\n", &["arrival"]),
        ("load: {stages: \"1s:-1\"}\n", &["stages"]),
        ("load: {run_time: 99999999999999999999y}\n", &["run_time"]),
    ];
    for (i, (load, words)) in cases.iter().enumerate() {
        let path = path_in(&dir, &format!("absurd{i}.yaml"));
        std::fs::write(&path, format!("host: http://127.0.0.1:9\n{load}{steps}")).unwrap();
        refused(&["-f", &path, "--headless"], words).await;
    }

    // A loop of four billion steps, a weight of four billion and a huge
    // random range: refused, or run within the time given.
    let server = Server::start(|_| Reply::ok("fine")).await;
    for (i, text) in [
        "users:\n  - tasks:\n      - steps:\n          - for: id in 1..4000000000\n            steps:\n              - get: /p/{{id}}\n",
        "users:\n  - weight: 4000000000\n    tasks:\n      - weight: 4000000000\n        steps:\n          - get: /x\n",
        "users:\n  - tasks:\n      - steps:\n          - get: /p/{{rand 1 18446744073709551615}}\n",
    ]
    .iter()
    .enumerate()
    {
        let path = path_in(&dir, &format!("big{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let url = server.url();
        let child = spawn_loadgen(&["-f", &path, "-H", &url, "--headless", "-u", "2", "-t", "1s", "--only-summary"]);
        let (code, err) = watch(child, text).await;
        assert!(
            code == 0 || (code == 2 && err.trim_end().lines().count() == 1),
            "{text}: code {code}: {err}"
        );
    }
    server.stop().await;
}
