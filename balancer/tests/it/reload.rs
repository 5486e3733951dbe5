//! Reloads (admin `/reload` and SIGHUP) under load lose no request; SIGTERM
//! drains in-flight requests. The signal tests run the real binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

fn conf(servers: &[(SocketAddr, u32)]) -> String {
    let mut s = String::from("upstream app {\n");
    for (a, w) in servers {
        s.push_str(&format!("    server {a} weight={w};\n"));
    }
    s.push_str("}\nserver {\n    listen 127.0.0.1:0;\n    location / {\n        proxy_pass http://app;\n        add_header X-Upstream $upstream_addr;\n    }\n}\n");
    s
}

#[tokio::test]
async fn reload_under_load_loses_no_request() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let c = Backend::start("c").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.conf");
    let v1 = conf(&[(a.addr, 1), (b.addr, 1)]);
    let v2 = conf(&[(b.addr, 2), (c.addr, 1)]);
    std::fs::write(&path, &v1).unwrap();
    let config = balancer::config::nginx::parse_file(&path).unwrap();
    let bal = Bal::start(config).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (url, stop) = (
            bal.url(if i == 0 { "/slow/150" } else { "/" }),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(SeqCst) {
                statuses.push(get(&url).await.status);
            }
            statuses
        }));
    }
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        std::fs::write(&path, if round % 2 == 0 { &v2 } else { &v1 }).unwrap();
        let r = post(&bal.admin_url("/reload"), "").await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, SeqCst);
    let mut total = 0;
    for c in clients {
        let statuses = c.await.unwrap();
        total += statuses.len();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    assert!(total > 20, "only {total} requests");
    assert!(c.hits() > 0 && a.hits() > 0);
    // What only a restart can change is kept, and the answer says so.
    std::fs::write(
        &path,
        v1.replace("listen 127.0.0.1:0;", "listen 127.0.0.1:1;"),
    )
    .unwrap();
    let r = post(&bal.admin_url("/reload"), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let warnings = done["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{}", r.body);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("listen address changes need a restart: keeping 127.0.0.1:0"),
        "{}",
        r.body
    );
    assert_eq!(get(&bal.url("/")).await.status, 200);
    // A broken file is refused and the running config stays.
    std::fs::write(&path, "upstream app {\n  server 127.0.0.1:1 wieght=2;\n}\n").unwrap();
    let r = post(&bal.admin_url("/reload"), "").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("lab.conf:2"), "{}", r.body);
    assert_eq!(get(&bal.url("/")).await.status, 200);
    bal.stop().await;
}

/// The balancer binary, with its printed addresses.
struct Proc {
    child: Child,
    addr: String,
    admin: String,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_balancer"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || {
            let l = lines.next().expect("a line").unwrap();
            l.rsplit("http://").next().unwrap().to_string()
        };
        let addr = next();
        let admin = next();
        Proc { child, addr, admin }
    }

    fn signal(&self, sig: &str) {
        // The shell's builtin `kill`: no procps needed on a bare CI image.
        let ok = Command::new("sh")
            .args(["-c", &format!("kill {sig} {}", self.child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits (bounded) for the process to exit.
    async fn wait(&mut self) -> std::process::ExitStatus {
        for _ in 0..100 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        panic!("balancer did not exit");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_drains() {
    let a = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.conf");
    std::fs::write(&path, conf(&[(a.addr, 1)])).unwrap();
    let mut p = Proc::start(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--workers",
        "1",
    ]);
    assert_eq!(get(&format!("http://{}/", p.addr)).await.status, 200);
    std::fs::write(&path, conf(&[(a.addr, 4)])).unwrap();
    p.signal("-HUP");
    let status_url = format!("http://{}/status", p.admin);
    let mut weight = 0;
    for _ in 0..50 {
        let s: serde_json::Value = serde_json::from_str(&get(&status_url).await.body).unwrap();
        weight = s["upstreams"][0]["servers"][0]["weight"].as_u64().unwrap();
        if weight == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(weight, 4, "SIGHUP reloaded the file");
    // SIGTERM while a request is in flight: it completes, then the process exits 0.
    let url = format!("http://{}/slow/700", p.addr);
    let inflight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.signal("-TERM");
    let r = inflight.await.unwrap();
    assert_eq!(r.status, 200);
    assert!(p.wait().await.success());
}
