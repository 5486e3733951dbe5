//! Shared units: durations, counts and rates as the command line and the
//! scenario files write them, ramp stages, segments, target URLs, the wall
//! clock in Unix milliseconds and a poison-tolerant lock.
//!
//! A leaf: it imports nothing from the crate, so the command line, the plan,
//! the scenario files, the run state and the statistics can all use it
//! without importing each other (as `balancer/src/config/units.rs`).

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One step of a ramp profile: reach `target` linearly over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the step lasts.
    pub duration: Duration,
    /// Users (closed model) or iterations/s (open model) at its end.
    pub target: f64,
}

/// `--segment I/N`: this process runs share I (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// 0-based index.
    pub index: u32,
    /// Number of segments.
    pub count: u32,
}

impl Segment {
    /// How many of `total` items fall in this segment (items `k` with `k % count == index`).
    pub fn share(&self, total: u64) -> u64 {
        let (i, n) = (u64::from(self.index), u64::from(self.count));
        if total <= i {
            0
        } else {
            (total - i - 1) / n + 1
        }
    }

    /// The global index of this segment's `k`-th item.
    pub fn global(&self, k: u64) -> u64 {
        k * u64::from(self.count) + u64::from(self.index)
    }
}

/// A parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path prefix (no trailing `/`), prepended to every request path.
    pub base_path: String,
}

/// Parses `http://host[:port][/prefix]`; https is refused (plain HTTP only).
pub fn parse_host(url: &str) -> Result<Target, String> {
    let u = url::Url::parse(url).map_err(|e| format!("invalid host URL {url:?}: {e}"))?;
    match u.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{url}: https is not supported (loadgen speaks plain HTTP/1.1)"
            ))
        }
        s => return Err(format!("{url}: scheme {s:?} is not http")),
    }
    let host = u
        .host_str()
        .ok_or_else(|| format!("{url}: the URL has no host"))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Target {
        authority,
        base_path: u.path().trim_end_matches('/').to_string(),
    })
}

/// A list of stages (a newtype so clap takes the whole list as one value).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

/// Parses `30s`, `1m30s`, `1h`, `250ms`, or a plain number of seconds (Locust accepts both).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("{t:?}: a duration cannot be negative"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{t:?} is not a duration like 30s, 5m, 1h30m: {e}"))
}

/// A duration above 0: `-t 0s` or `--timeout 0s` would end a run, or fail
/// every request, before it starts.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("must be above 0".into());
    }
    Ok(d)
}

/// A count of at least 1 (`-i 0` would be a run with nothing to do).
pub fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a whole number of at least 1".into()),
    }
}

/// A rate per second: a finite number >= 0.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| "must be a finite number >= 0 (per second)".into())
}

/// A rate per second above 0 (the spawn rate).
pub fn parse_positive_rate(text: &str) -> Result<f64, String> {
    let r = parse_rate(text)?;
    if r == 0.0 {
        return Err("must be above 0".into());
    }
    Ok(r)
}

/// Parses `DURATION:TARGET,...`, e.g. `10s:50,30s:50,10s:0`.
pub fn parse_stages(text: &str) -> Result<Stages, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, n) = part
            .split_once(':')
            .ok_or_else(|| format!("stage {part:?}: expected DURATION:TARGET, e.g. 30s:100"))?;
        let duration = parse_duration(d)?;
        let target: f64 = n
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("stage {part:?}: {n:?} is not a number >= 0"))?;
        if duration.is_zero() {
            return Err(format!("stage {part:?}: the duration must be above 0"));
        }
        out.push(Stage { duration, target });
    }
    if out.is_empty() {
        return Err("no stages given".into());
    }
    Ok(Stages(out))
}

/// Parses `I/N` (1-based I).
pub fn parse_segment(text: &str) -> Result<Segment, String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected I/N, e.g. 2/4"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {i:?} is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {n:?} is not a number"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("{text:?}: need 1 <= I <= N"));
    }
    Ok(Segment {
        index: i - 1,
        count: n,
    })
}

/// Locks `m`, ignoring poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave these structures half-updated in a way
    // that matters more than losing the figures, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
