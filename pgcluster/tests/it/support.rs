//! Helpers shared by the integration tests: scratch folders the server's
//! account can reach, `psql` runs, `/proc` checks written independently of
//! the library's, a time bound for every test, and the child-process mode in
//! which this same test binary plays an owner that starts a cluster.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgcluster::{Cluster, Options};

/// The bound on every test's body. Generous: initdb plus a start on a loaded
/// two-core box takes seconds, not minutes.
pub const TEST_BOUND: Duration = Duration::from_secs(120);

/// Runs `body` under [`TEST_BOUND`], panicking past it.
pub async fn bounded<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, body)
        .await
        .expect("the test did not finish within its bound")
}

/// A temporary folder (removed when dropped) that the unprivileged account
/// running the server can enter: tempfile makes it 0700, which as root would
/// keep `nobody` out.
pub fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pgcluster-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub async fn start_in(dir: &Path) -> Cluster {
    Cluster::start(Options::new(dir.join("postgres")))
        .await
        .expect("the cluster starts")
}

/// `psql` of the cluster's installation against `url`, running `sql`.
pub fn psql(cluster: &Cluster, url: &str, sql: &str) -> Output {
    Command::new(cluster.binaries().tool("psql"))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, url])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .expect("psql runs")
}

/// The one-line answer of a query that must succeed.
pub fn query(cluster: &Cluster, sql: &str) -> String {
    let out = psql(cluster, &cluster.url(), sql);
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// True while `pid` is a live process (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Live processes whose command line mentions `needle` (a data folder).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Waits (bounded) until none of `pids` is alive; returns those still alive.
pub async fn wait_all_gone(pids: &[u32], bound: Duration) -> Vec<u32> {
    let deadline = Instant::now() + bound;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        .unwrap()
}

/// The environment variable that turns this test binary into an owner process.
pub const CHILD_ENV: &str = "PGCLUSTER_TEST_CHILD";
/// The prefix of the lines an owner process reports on.
pub const CHILD_SAYS: &str = "PGCLUSTER_CHILD ";

/// Runs this test binary's [`child_entry`] as an owner process in `mode`
/// (`hold:DIR` starts a cluster in DIR and sleeps; `start:DIR` reports how a
/// start went), with extra environment `env`.
pub fn spawn_child(mode: &str, env: &[(&str, &Path)]) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "support::child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// The first line an owner process reports, read within the bound.
pub fn child_report(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // libtest may print `test support::child_entry ... ` on the same line.
    // The reader drains the rest, so the owner never writes into a closed pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(at) = line.find(CHILD_SAYS) {
                let _ = tx.send(line[at + CHILD_SAYS.len()..].to_string());
            }
        }
    });
    rx.recv_timeout(TEST_BOUND)
        .expect("the owner process reported")
}

/// Not a test: the body of an owner process. It does nothing unless this
/// binary was started by [`spawn_child`].
#[tokio::test]
async fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (what, dir) = mode.split_once(':').unwrap();
    let options = Options::new(PathBuf::from(dir).join("postgres"));
    match (what, Cluster::start(options).await) {
        ("hold", Ok(cluster)) => {
            println!("{CHILD_SAYS}ready {}", cluster.pid());
            // Bounded: killed long before this by the test, and never left behind.
            tokio::time::sleep(TEST_BOUND).await;
            cluster.stop().await.unwrap();
        }
        (_, Ok(cluster)) => {
            println!("{CHILD_SAYS}started");
            cluster.stop().await.unwrap();
        }
        (_, Err(e)) => println!("{CHILD_SAYS}error {e}"),
    }
}
