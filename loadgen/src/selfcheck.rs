//! Honest about itself: warn when loadgen, not the target, is the bottleneck.
//!
//! Once a second the collector asks `SelfCheck` whether loadgen's own CPU use
//! (from `/proc/self/stat`, all threads, against all cores) passed 90%, and
//! whether the send lag — how late iterations started against their schedule,
//! or how late the collector's own timer fired — passed 100 ms. A saturated
//! generator under-reports the target's capacity; the warnings end up in the
//! snapshot, the terminal and every report. The balancer poller lives here
//! too: it is loadgen looking outside the test, not part of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::run::RunShared;
use crate::units::lock;

/// CPU share (of all cores) above which loadgen warns.
pub const CPU_LIMIT: f64 = 0.90;
/// Send lag above which loadgen warns.
pub const LAG_LIMIT: Duration = Duration::from_millis(100);

/// Linux reports process times in clock ticks of 1/100 s on every mainstream platform.
const CLOCK_TICKS: f64 = 100.0;

/// Raises this process's soft limit on open files to its hard limit and warns
/// when even that is too low for `users` connections. Every simulated user
/// holds a socket, and the usual soft limit (1024) would turn a large test into
/// `Too many open files` failures that say nothing about the target. Returns the
/// limit in force, or `None` where it cannot be read.
pub fn raise_open_files_limit(users: u64) -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let limit = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    // A few descriptors go to the runtime, the dashboard and the report files.
    if users.saturating_add(64) > limit {
        tracing::warn!(
            "{users} users need about {users} sockets but this process may open only {limit} files \
             (hard limit): expect `Too many open files` failures; raise it with `ulimit -Hn` as root"
        );
    }
    Some(limit)
}

/// The state between two checks.
#[derive(Debug)]
pub struct SelfCheck {
    last_cpu: Option<f64>,
    last_wall: Instant,
    cores: f64,
    busy_seconds: u32,
}

impl Default for SelfCheck {
    fn default() -> Self {
        SelfCheck::new()
    }
}

impl SelfCheck {
    /// Starts measuring now.
    pub fn new() -> SelfCheck {
        SelfCheck {
            last_cpu: process_cpu_seconds(),
            last_wall: Instant::now(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            busy_seconds: 0,
        }
    }

    /// Called about once a second with the largest send lag seen since the
    /// last call and how late this call's tick fired against its schedule
    /// (a late tick is scheduler lag too). The lateness is the ticker's own,
    /// not the time since the previous call: a statistics reset restarts
    /// the ticker, and the tick after it is on time.
    pub fn check(&mut self, send_lag: Duration, tick_late: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let now = Instant::now();
        let lag = send_lag.max(tick_late);
        if lag > LAG_LIMIT {
            out.push(format!(
                "send lag {} ms: loadgen is behind its schedule, figures may understate the target",
                lag.as_millis()
            ));
        }
        if let (Some(prev), Some(cur)) = (self.last_cpu, process_cpu_seconds()) {
            let wall = (now - self.last_wall).as_secs_f64();
            if wall > 0.5 {
                let share = (cur - prev) / wall / self.cores;
                self.busy_seconds = if share > CPU_LIMIT {
                    self.busy_seconds + 1
                } else {
                    0
                };
                // Two seconds in a row, so a spawn burst does not trigger it.
                if self.busy_seconds >= 2 {
                    out.push(format!(
                        "loadgen CPU above {:.0}% ({:.0}% of {} cores): the generator may be the bottleneck",
                        CPU_LIMIT * 100.0,
                        share * 100.0,
                        self.cores
                    ));
                }
                self.last_cpu = Some(cur);
                self.last_wall = now;
            }
        }
        out
    }
}

/// User + system CPU time of this process, in seconds (`None` off Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime is field 14 of the full line, index 11 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
}

/// What can go wrong with `--balancer-status`, each warned about once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusProblem {
    /// No answer (connection refused, timeout).
    Unreachable,
    /// An answer with a status other than 2xx.
    Status,
    /// A 2xx answer that is not the balancer's `/status` JSON.
    Body,
}

/// Reads a balancer `/status` body: JSON with an `upstreams` list (what the
/// dashboard and the HTML report draw). The error says what it is instead.
fn parse_status(body: Option<&[u8]>) -> Result<serde_json::Value, String> {
    let body = body.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(&body[..body.len().min(40)])
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        format!("the answer is not JSON ({e}; it starts with {start:?})")
    })?;
    if v.get("upstreams").is_some_and(serde_json::Value::is_array) {
        Ok(v)
    } else {
        Err("the JSON answer has no \"upstreams\" list".into())
    }
}

/// Polls a balancer admin `/status` URL once a second into the run's state.
///
/// Each kind of problem is warned about once, through the run's warning list
/// only (the live table, the summary, the dashboard and the reports show that
/// list): logging it as well would print it twice on the terminal.
pub(crate) async fn poll_balancer(shared: Arc<RunShared>, url: String) {
    let Ok(target) = crate::units::parse_host(&url) else {
        return;
    };
    let Ok(u) = url::Url::parse(&url) else {
        return;
    };
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let endpoint = Arc::new(crate::endpoint::Endpoint::resolve(&target.authority).await);
    let mut client = crate::client::UserClient::new(endpoint, Duration::from_secs(2));
    let mut warned: Vec<StatusProblem> = Vec::new();
    let mut warn_once = |problem: StatusProblem, what: String| {
        if warned.contains(&problem) {
            return;
        }
        warned.push(problem);
        let w = format!(
            "--balancer-status {url}: {what}; the per-server shares are not shown (is it the balancer's admin /status URL?)"
        );
        let mut ws = lock(&shared.warnings);
        if !ws.contains(&w) {
            ws.push(w);
        }
    };
    loop {
        let req =
            http::Request::get(path.as_str()).body(http_body_util::Full::new(bytes::Bytes::new()));
        if let Ok(req) = req {
            match client.send(req, true).await {
                Ok(resp) if resp.status.is_success() => match parse_status(resp.body.as_deref()) {
                    Ok(v) => *lock(&shared.upstreams) = Some(v),
                    Err(why) => warn_once(StatusProblem::Body, why),
                },
                Ok(resp) => warn_once(
                    StatusProblem::Status,
                    format!("it answered {}", resp.status),
                ),
                Err(f) => warn_once(
                    StatusProblem::Unreachable,
                    format!("cannot read it: {}", f.message),
                ),
            }
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let a = process_cpu_seconds().expect("Linux /proc");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let b = process_cpu_seconds().unwrap();
        assert!(b >= a);
    }

    #[test]
    fn balancer_status_must_be_its_json() {
        let ok = parse_status(Some(br#"{"algorithm":"rr","upstreams":[]}"#)).unwrap();
        assert!(ok["upstreams"].is_array());
        let html = parse_status(Some(b"<html><body>hello</body></html>")).unwrap_err();
        assert!(
            html.contains("not JSON") && html.contains("<html>"),
            "{html}"
        );
        assert!(parse_status(None).unwrap_err().contains("not JSON"));
        let other = parse_status(Some(br#"{"status":"ok"}"#)).unwrap_err();
        assert!(other.contains("no \"upstreams\""), "{other}");
    }

    #[test]
    fn warns_on_lag() {
        let mut s = SelfCheck::new();
        let w = s.check(Duration::from_millis(250), Duration::ZERO);
        assert!(w.iter().any(|w| w.contains("send lag 250 ms")), "{w:?}");
        // A tick that fired late is lag too, the larger of the two shown.
        let w = s.check(Duration::from_millis(120), Duration::from_millis(300));
        assert!(w.iter().any(|w| w.contains("send lag 300 ms")), "{w:?}");
        assert!(s
            .check(Duration::ZERO, Duration::from_millis(99))
            .is_empty());
    }
}
