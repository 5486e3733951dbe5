//! `lab up`: every printed URL answers; SIGINT tears everything down; even a
//! SIGKILLed lab leaves no replica behind.

use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{assert_no_processes, lab, spawn_lines};

/// Starts `lab up` and returns it with the URLs it printed before `ready`.
pub(crate) fn start_up(
    tmp: &std::path::Path,
    extra: &[&str],
) -> (Child, Vec<String>, mpsc::Receiver<String>) {
    let mut cmd = lab();
    cmd.args(["up", "--replicas", "2"])
        .args(extra)
        .arg("--out")
        .arg(tmp);
    let (mut child, rx) = spawn_lines(cmd, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut urls = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("lab up: ready") => break,
            Ok(line) => {
                if let Some(i) = line.find("http://") {
                    urls.push(line[i..].split_whitespace().next().unwrap().to_string());
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("lab up did not become ready; urls so far {urls:?}");
            }
        }
    }
    (child, urls, rx)
}

pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lab did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn up_answers_on_every_url_and_stops_on_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, urls, rx) = start_up(tmp.path(), &["--replica-cpus", "none"]);
    // 2 replicas, balancer, status, metrics, dashboard.
    assert!(urls.len() >= 6, "{urls:?}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for u in &urls {
        let code = rt.block_on(async { client.get(u).send().await.map(|r| r.status().as_u16()) });
        let code = code.unwrap_or_else(|e| panic!("{u} did not answer: {e}"));
        assert!(code < 500, "{u} answered {code}");
    }
    // The balancer's status shows both replicas.
    let status_url = urls
        .iter()
        .find(|u| u.ends_with("/status"))
        .expect("status URL");
    let body = rt.block_on(async {
        client
            .get(status_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["upstreams"][0]["servers"].as_array().unwrap().len(),
        2,
        "{body}"
    );

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "lab up exited with {status}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    for u in &urls {
        let r = rt.block_on(async { client.get(u).send().await });
        assert!(r.is_err(), "{u} still answers after teardown");
    }
}

#[test]
fn a_killed_lab_leaves_no_replica_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, _urls, _rx) = start_up(tmp.path(), &["--replica-cpus", "0.5"]);
    assert!(!crate::support::processes_mentioning(tmp.path()).is_empty());
    child.kill().unwrap(); // SIGKILL: no destructor runs; the kernel's parent-death signal must.
    child.wait().unwrap();
    assert_no_processes(tmp.path(), Duration::from_secs(15));
    // Empty cgroup folders of a killed lab are removed by the next lab run, not here.
}
