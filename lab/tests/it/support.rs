//! Helpers: run the lab binary with a deadline, find the processes a test
//! started (by the run folder exported in their environment), wait for them
//! to be gone.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `lab` binary under test.
/// A search of at most two 2 s steps (loads 2 and 4), no refining and no
/// confirmation: a whole `lab scale` count, or a side, in seconds.
pub const SHORT_SEARCH: &[&str] = &[
    "--step-duration",
    "2s",
    "--warmup",
    "1s",
    "--start-load",
    "2",
    "--max-load",
    "4",
    "--max-steps",
    "2",
    "--refine",
    "0",
    "--confirm",
    "0s",
];

pub fn lab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lab"));
    c.env("RUST_LOG", "warn");
    c
}

/// `lab ARGS --out DIR` with a fresh temporary DIR, which lives as long as
/// the returned guard (the tests look for leftover processes by its path).
pub fn lab_out(args: &[&str]) -> (Command, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = lab();
    cmd.args(args).arg("--out").arg(tmp.path());
    (cmd, tmp)
}

/// Runs `cmd` and asserts it succeeded; returns its stdout and the lab's pid.
pub fn run_ok(cmd: Command, timeout: Duration) -> (String, u32) {
    let (out, pid) = run_with_pid(cmd, timeout);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lab failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, pid)
}

/// Runs `cmd` and asserts it exited with `code`; returns its stderr and the lab's pid.
pub fn run_fails(cmd: Command, timeout: Duration, code: i32) -> (String, u32) {
    let (out, pid) = run_with_pid(cmd, timeout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    (stderr, pid)
}

/// The one run folder a lab wrote under `out`, and its parsed `report.json`.
pub fn report_in(out: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let run_dir = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    let report = serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap())
        .expect("report.json parses");
    (run_dir, report)
}

/// Runs `cmd` to completion, killing it (and failing) after `timeout`; also
/// returns the pid the lab had (its cgroup folders are named after it).
pub fn run_with_pid(mut cmd: Command, timeout: Duration) -> (Output, u32) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lab");
    let pid = child.id();
    let out = drain(&mut child);
    let err = drain_err(&mut child);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = Output {
                status,
                stdout: out.join().unwrap(),
                stderr: err.join().unwrap(),
            };
            return (output, pid);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "lab did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.join().unwrap()),
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn drain(child: &mut Child) -> std::thread::JoinHandle<Vec<u8>> {
    let mut s = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        v
    })
}

fn drain_err(child: &mut Child) -> std::thread::JoinHandle<Vec<u8>> {
    let mut s = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        v
    })
}

/// Pids of live processes whose environment or command line mentions `marker`
/// (the test's temporary folder, which every lab child has in `LAB_RUN_DIR`).
pub fn processes_mentioning(marker: &Path) -> Vec<u32> {
    let marker = marker.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Zombies have no environment to read but are not running either.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&env).contains(&marker)
            || String::from_utf8_lossy(&cmd).contains(&marker)
        {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `timeout` for every process mentioning `marker` to be gone.
pub fn assert_no_processes(marker: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_mentioning(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let desc: Vec<String> = left
                .iter()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
                })
                .collect();
            // Do not leave them behind for the next test either.
            for p in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("lab processes left behind:\n{}", desc.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// No `lab-<pid>` cgroup of process `pid` is left.
pub fn assert_no_cgroup(pid: u32) {
    for root in [
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/unified",
    ] {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut candidates = vec![Path::new(root).join(format!("lab-{pid}"))];
        for line in own.lines() {
            if let Some(rel) = line.rsplit(':').next() {
                candidates.push(
                    Path::new(root)
                        .join(rel.trim_start_matches('/'))
                        .join(format!("lab-{pid}")),
                );
            }
        }
        for c in candidates {
            assert!(!c.exists(), "cgroup {} left behind", c.display());
        }
    }
}

/// Starts `cmd` with its stdout's lines sent to the receiver as they come
/// (stdin closed; stderr piped when `stderr` is true, else dropped).
pub fn spawn_lines(mut cmd: Command, stderr: bool) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}
