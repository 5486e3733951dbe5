//! Child processes the lab owns: replicas, the balancer, one-shot tasks.
//!
//! Every child is the lab binary itself re-executed in a role
//! (`lab market-api serve …`), started in its own process group so that a
//! signal reaches it and anything it spawned. A [`ChildGuard`] stops the group
//! when it is dropped (SIGTERM, then SIGKILL after a grace period), so an
//! error, a panic or Ctrl-C in the lab never leaves a process behind. As a
//! last line of defence against the lab itself being SIGKILLed, each role
//! asks the kernel to send it SIGTERM when its parent dies
//! ([`adopt_parent_death_signal`]).
//!
//! A child's stderr goes straight to a log file in the output folder; its
//! stdout is read until it announces its address(es) (`… listening on
//! http://ADDR`), then copied to the same log.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::Error;

/// Environment variable through which a role learns the lab's pid.
pub const PARENT_ENV: &str = "LAB_PARENT_PID";
/// Environment variable naming the run folder (lets tests find our children).
pub const RUN_DIR_ENV: &str = "LAB_RUN_DIR";

/// How long a child gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Human name used in messages and the log file name ("replica 2").
    pub name: String,
    /// Arguments after the lab binary (role first: `market-api`, `balancer`).
    pub args: Vec<OsString>,
    /// Where stderr (and stdout after the announcement) goes.
    pub log: PathBuf,
    /// The run folder, exported as [`RUN_DIR_ENV`].
    pub run_dir: PathBuf,
}

/// A running child in its own process group; stopped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    /// Human name ("replica 2", "balancer").
    name: String,
    /// The process; `None` once reaped.
    child: Option<Child>,
    /// Its pid, which is also its process-group id.
    pid: u32,
    /// Its log file.
    log: PathBuf,
}

impl ChildGuard {
    /// Starts `spec` and waits until its stdout has announced one address per
    /// entry of `announce` (matched as substrings, any order). Returns the
    /// guard and the addresses in the order of `announce`.
    pub async fn start(
        spec: &Spec,
        announce: &[&str],
        timeout: Duration,
    ) -> Result<(ChildGuard, Vec<SocketAddr>), Error> {
        let exe = std::env::current_exe().map_err(|source| Error::Spawn {
            what: spec.name.clone(),
            source,
        })?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|e| Error::io(&spec.log, e))?;
        let mut cmd = Command::new(&exe);
        cmd.args(&spec.args)
            .env(PARENT_ENV, std::process::id().to_string())
            .env(RUN_DIR_ENV, &spec.run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            what: spec.name.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take();
        let mut guard = ChildGuard {
            name: spec.name.clone(),
            child: Some(child),
            pid,
            log: spec.log.clone(),
        };
        let Some(stdout) = stdout else {
            return Ok((guard, Vec::new()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut found: Vec<Option<SocketAddr>> = vec![None; announce.len()];
        let deadline = tokio::time::Instant::now() + timeout;
        let mut echoed = Vec::new();
        while found.iter().any(Option::is_none) {
            let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Err(_) => {
                    return Err(guard.start_failed(format!(
                        "it did not announce its address within {}",
                        humantime::format_duration(timeout)
                    )))
                }
                Ok(Err(e)) => return Err(guard.start_failed(format!("reading its output: {e}"))),
                Ok(Ok(None)) => {
                    let status = guard.wait_briefly().await;
                    return Err(
                        guard.start_failed(format!("it exited ({status}) before listening"))
                    );
                }
                Ok(Ok(Some(line))) => line,
            };
            for (slot, pattern) in found.iter_mut().zip(announce) {
                if slot.is_none() && line.contains(pattern) {
                    *slot = parse_announced_addr(&line);
                }
            }
            echoed.push(line);
        }
        // Keep draining stdout into the log so the child never blocks on a full pipe.
        let log_path = spec.log.clone();
        tokio::spawn(async move {
            let Ok(mut f) = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&log_path)
                .await
            else {
                return;
            };
            for l in echoed {
                let _ = f.write_all(format!("{l}\n").as_bytes()).await;
            }
            while let Ok(Some(l)) = lines.next_line().await {
                let _ = f.write_all(format!("{l}\n").as_bytes()).await;
            }
        });
        let addrs = found.into_iter().flatten().collect();
        Ok((guard, addrs))
    }

    /// Runs `spec` to completion (migrate, seed), failing with its stderr tail
    /// if it exits unsuccessfully or outlives `timeout`.
    pub async fn run_to_end(spec: &Spec, timeout: Duration) -> Result<(), Error> {
        let (mut guard, _) = ChildGuard::start(spec, &[], timeout).await?;
        let Some(child) = guard.child.as_mut() else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                guard.child = None;
                if status.success() {
                    Ok(())
                } else {
                    Err(Error::TaskFailed {
                        what: guard.name.clone(),
                        status: status.to_string(),
                        log: guard.log.clone(),
                        tail: log_tail(&guard.log, 12),
                    })
                }
            }
            Ok(Err(e)) => Err(Error::io(&guard.log, e)),
            Err(_) => Err(Error::TaskFailed {
                what: guard.name.clone(),
                status: format!(
                    "still running after {}",
                    humantime::format_duration(timeout)
                ),
                log: guard.log.clone(),
                tail: log_tail(&guard.log, 12),
            }),
        }
    }

    /// The child's pid (and process-group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the process group at once (SIGKILL), e.g. to simulate a crash.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            let _ = c.wait().await;
        }
    }

    /// Stops the process group gracefully: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pg = Pid::from_raw(self.pid as i32);
            let _ = killpg(pg, Signal::SIGTERM);
            if tokio::time::timeout(GRACE, c.wait()).await.is_err() {
                let _ = killpg(pg, Signal::SIGKILL);
                let _ = c.wait().await;
            }
        }
    }

    async fn wait_briefly(&mut self) -> String {
        match self.child.as_mut() {
            Some(c) => match tokio::time::timeout(Duration::from_secs(2), c.wait()).await {
                Ok(Ok(s)) => {
                    self.child = None;
                    s.to_string()
                }
                _ => "status unknown".into(),
            },
            None => "already reaped".into(),
        }
    }

    fn start_failed(&mut self, reason: String) -> Error {
        self.stop_blocking();
        Error::StartFailed {
            what: self.name.clone(),
            reason,
            log: self.log.clone(),
            tail: log_tail(&self.log, 12),
        }
    }

    /// The synchronous stop used by `Drop`: SIGTERM, poll, SIGKILL.
    fn stop_blocking(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pg = Pid::from_raw(self.pid as i32);
        if matches!(c.try_wait(), Ok(Some(_))) {
            // The leader is gone; make sure nothing else in its group lingers.
            let _ = killpg(pg, Signal::SIGKILL);
            return;
        }
        let _ = killpg(pg, Signal::SIGTERM);
        let until = Instant::now() + GRACE;
        while Instant::now() < until {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pg, Signal::SIGKILL);
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if !matches!(c.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop_blocking();
    }
}

/// Extracts `ADDR` from a line such as `market-api listening on http://127.0.0.1:8000`.
pub fn parse_announced_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("http://")? + "http://".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The last `n` lines of a log file, indented, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Called at the start of a role (`lab market-api …`) the lab spawned: asks
/// the kernel for SIGTERM when the parent dies, and exits at once if the
/// parent is already gone. Does nothing when run by hand.
pub fn adopt_parent_death_signal() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return;
    };
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid() != Pid::from_raw(parent) {
        // The lab died between fork and here: nobody will ever stop us.
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_addresses_parse() {
        assert_eq!(
            parse_announced_addr("market-api listening on http://127.0.0.1:8000"),
            Some("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(
            parse_announced_addr("balancer admin on http://[::1]:9000/ (status)"),
            Some("[::1]:9000".parse().unwrap())
        );
        assert_eq!(parse_announced_addr("no address here"), None);
    }

    #[test]
    fn log_tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "  | c\n  | d");
        assert_eq!(log_tail(&dir.path().join("missing"), 2), "");
    }
}
