//! The bridge to `loadgen`: driving the load step by step and boiling a
//! measurement window down to the figures the lab decides with.
//!
//! The load generator runs in this process. [`Driver`] keeps one loadgen run
//! alive across the steps of a capacity search (closed model): a step grows
//! or shrinks the number of users in place, as Locust does with its spawn
//! rate, so users keep their logins and connections from one step to the
//! next; after the ramp and a warm-up the statistics are reset and a window
//! of fixed length is measured. With a per-request timeout no longer than
//! the window, every request is resolved (answered or timed out, a failure)
//! within the step, so an overloaded step shows failures instead of requests
//! that never finished. The open model cannot change its rate in place, so
//! each of its steps is a fresh run measured the same way (warm-up excluded).
//! After a step that broke the objective the closed model keeps its users
//! too: loadgen stops the surplus users still retrying their login first, so
//! the lighter step goes on with logged-in users. (Until 2026-12-03 every user
//! restarted there, and the burst of fresh logins decided whether the step
//! passed: see "Repeatability" in docs/lab.md.)
//!
//! [`StepSummary`] keeps what the capacity search, the diagnosis and the
//! reports need (totals, percentiles, failures by method and kind, the
//! per-second history), so the full `RunReport` (with its serialized
//! histograms) is kept only for the steps that are written out.
//! [`LoginShape`] reads off the scenario which requests log users in and
//! which carry what the login captured, so the report can say what a
//! failure list means without assuming a story.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use loadgen::plan::{Arrival, TestPlan};
use loadgen::report::RunReport;
use loadgen::scenario::Scenario;
use loadgen::stats::FailureKind;
use loadgen::Controller;
use serde::{Deserialize, Serialize};

use crate::capacity::Slo;
use crate::cli::LoadModel;
use crate::Error;

/// Per-request timeout of the demo's fixed-length runs: well above any
/// objective, well below a run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The per-request timeout tied to the objective: 4 × the p95 objective, at
/// least 1 s. A request four times slower than the objective's 95th
/// percentile is one a user has given up on.
pub fn timeout_for(slo: &Slo) -> Duration {
    Duration::from_secs_f64((slo.max_p95_ms * 4.0 / 1000.0).max(1.0))
}

/// Resolves `-f`: a built-in scenario name or a scenario file.
pub fn scenario(name_or_path: &str) -> Result<Scenario, Error> {
    use loadgen::scenario::builtin::{builtin, DEFAULT_EMAIL, DEFAULT_PASSWORD};
    if let Some(s) = builtin(name_or_path, DEFAULT_EMAIL, DEFAULT_PASSWORD) {
        return Ok(s);
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(Error::Usage(format!(
            "scenario `{name_or_path}` is neither a built-in ({}) nor an existing file",
            loadgen::scenario::builtin::BUILTIN_NAMES.join(", ")
        )));
    }
    loadgen::scenario::file::load(path).map_err(|e| Error::Usage(format!("{name_or_path}: {e}")))
}

/// `load` iterations a second (at least one), with room for 20 iterations
/// in flight per unit of load (50 to 20 000) when answers slow down.
fn arrival(load: u32) -> Arrival {
    Arrival {
        rate: f64::from(load.max(1)),
        stages: Vec::new(),
        max_vus: load.saturating_mul(20).clamp(50, 20_000),
    }
}

/// How a [`Driver`] applies load.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Target base URL.
    pub host: String,
    /// What users do.
    pub scenario: Scenario,
    /// Closed (users) or open (iterations/s).
    pub model: LoadModel,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Users started per second when a step adds users.
    pub spawn_rate: f64,
}

/// One side's load, kept running across steps (see the module comment).
pub struct Driver {
    cfg: DriverConfig,
    controller: Controller,
    /// Load of the current step (0 before the first).
    load: u32,
    /// Whether the current step is lighter than the one before: a backlog
    /// of the heavier step may still be draining.
    lighter: bool,
}

impl Driver {
    /// A driver that has not started any load yet.
    pub fn new(cfg: DriverConfig) -> Driver {
        let base = base_plan(&cfg, 1);
        Driver {
            controller: Controller::new(base),
            cfg,
            load: 0,
            lighter: false,
        }
    }

    /// Moves to `load`: users are added at the spawn rate or removed at once
    /// (closed model), or a fresh run starts at the new rate (open model).
    pub async fn set_load(&mut self, load: u32) -> Result<(), Error> {
        let load = load.max(1);
        let running = self.load > 0;
        match self.cfg.model {
            LoadModel::Closed if running => {
                self.controller.set_users(load, self.cfg.spawn_rate)?;
            }
            _ => {
                if running {
                    self.controller.stop();
                    self.controller.wait().await;
                }
                self.controller.start_plan(base_plan(&self.cfg, load))?;
            }
        }
        self.lighter = running && load < self.load;
        self.load = load;
        Ok(())
    }

    /// Load of the current step (0 before the first).
    pub fn load(&self) -> u32 {
        self.load
    }

    /// How long the ramp to `from → load` should take at the spawn rate.
    pub fn ramp_estimate(&self, from: u32, to: u32) -> Duration {
        match self.cfg.model {
            LoadModel::Closed if to > from => {
                Duration::from_secs_f64(f64::from(to - from) / self.cfg.spawn_rate.max(0.1))
            }
            _ => Duration::ZERO,
        }
    }

    /// Whether every user of the step is running (always true in the open model).
    pub fn ramped(&self) -> bool {
        match self.cfg.model {
            LoadModel::Closed => self.controller.snapshot().user_count == self.load,
            LoadModel::Open => true,
        }
    }

    /// Whether the latest full second after the ramp kept the objective
    /// (some requests finished, p95 and failures within bounds).
    pub fn settled(&self, slo: &Slo, since: Instant) -> bool {
        let snap = self.controller.snapshot();
        let since_ms = unix_ms_of(since);
        match snap.history.last() {
            Some(p) if p.time >= since_ms + 1000 && p.rps > 0.0 => {
                p.p95 <= slo.max_p95_ms && p.fail_per_sec / p.rps <= slo.max_fail_ratio
            }
            _ => false,
        }
    }

    /// Every route's requests and failures so far, and when loadgen
    /// published them: differenced a second apart by [`settle`].
    fn route_counts(&self) -> RouteCounts {
        let snap = self.controller.snapshot();
        RouteCounts {
            at_ms: snap.history.last().map_or(0, |p| p.time),
            rows: (snap.stats.iter())
                .filter(|r| !r.method.is_empty())
                .map(|r| RouteCounts::row(&r.method, &r.name, r.num_requests, r.num_failures))
                .collect(),
        }
    }

    /// Opens the measurement window: forgets everything measured so far
    /// (loadgen's rates and duration then count from the reset).
    pub fn open_window(&self) {
        self.controller.reset_stats();
    }

    /// The report of the window so far.
    pub fn window_report(&self) -> RunReport {
        self.controller.report()
    }

    /// Stops the users and waits until they are gone.
    pub async fn stop(&self) {
        self.controller.stop();
        self.controller.wait().await;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Cancels every user task of this run (nothing outlives the driver).
        self.controller.stop();
    }
}

/// Waits for the ramp (bounded by its estimate + 10 s), then at least
/// `warmup`, then until the latest second of every driver keeps the
/// objective, over all requests and on every route (bounded by `settle_max`:
/// an overloaded step never settles and is measured anyway). Returns the
/// seconds from the start of the wait.
///
/// Every route must also keep it over the latest second: logins are 1% of
/// the requests, so a backlog of logins still timing out leaves the second's
/// figures over all requests within the objective. After a step down (a
/// heavier step broke the objective) the lighter step used to be measured
/// with the heavier one's backlog in it (seen in the runs: 5 of 87 logins
/// failed at 60 users, then 64 of 100 at 55 right after); it may take up to
/// `settle_max` to drain. A step up's backlog is its own ramp's logins, and
/// it gets twice the warm-up: past that, failing logins are mostly the
/// step's own overload, which waiting longer would not mend. A growth step
/// whose window shows them still draining is measured afresh instead
/// (`campaign::draining_sides`).
pub async fn settle(
    drivers: &[&Driver],
    slo: &Slo,
    ramp: Duration,
    warmup: Duration,
    settle_max: Duration,
) -> f64 {
    let begin = Instant::now();
    let ramp_deadline = begin + ramp + Duration::from_secs(10);
    while Instant::now() < ramp_deadline && !drivers.iter().all(|d| d.ramped()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ramped = Instant::now();
    tokio::time::sleep(warmup).await;
    let deadline = ramped + settle_max.max(warmup);
    let since = ramped + warmup.saturating_sub(Duration::from_secs(1));
    let ramp_backlog_drained = ramped + warmup * 2;
    let mut routes: Vec<RoutesQuiet> = drivers.iter().map(|_| RoutesQuiet::since(since)).collect();
    loop {
        let mut all = true;
        let step_up_waited = Instant::now() >= ramp_backlog_drained;
        for (d, quiet) in drivers.iter().zip(&mut routes) {
            let routes_kept = quiet.observe(d.route_counts(), slo);
            all &= (routes_kept || (step_up_waited && !d.lighter)) && d.settled(slo, since);
        }
        if all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    begin.elapsed().as_secs_f64()
}

/// Every route's cumulative requests and failures at one snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
struct RouteCounts {
    /// The snapshot's latest second (ms since the epoch).
    at_ms: u64,
    /// `(method and name, requests, failures)`.
    rows: Vec<(String, u64, u64)>,
}

impl RouteCounts {
    fn row(method: &str, name: &str, requests: u64, failures: u64) -> (String, u64, u64) {
        (format!("{method} {name}"), requests, failures)
    }

    /// Whether, since `before`, every route's new failures stayed within the
    /// failure objective's share of its new requests (a route of a few
    /// requests a second breaks it with one failure).
    fn kept_since(&self, before: &RouteCounts, slo: &Slo) -> bool {
        self.rows.iter().all(|(route, requests, failures)| {
            let (r0, f0) = (before.rows.iter())
                .find(|(r, ..)| r == route)
                .map_or((0, 0), |(_, r, f)| (*r, *f));
            let (new_requests, new_failures) =
                (requests.saturating_sub(r0), failures.saturating_sub(f0));
            new_failures as f64 <= slo.max_fail_ratio * new_requests as f64
        })
    }
}

/// Whether a driver's routes kept the objective over its latest second:
/// the snapshots published since the warm-up's last second, differenced at
/// least a second apart.
struct RoutesQuiet {
    since_ms: u64,
    last: Option<RouteCounts>,
    kept: bool,
}

impl RoutesQuiet {
    fn since(since: Instant) -> RoutesQuiet {
        RoutesQuiet {
            since_ms: unix_ms_of(since),
            last: None,
            kept: false,
        }
    }

    /// Takes in the latest counts; whether the latest second kept it.
    fn observe(&mut self, now: RouteCounts, slo: &Slo) -> bool {
        if now.at_ms < self.since_ms {
            return false;
        }
        match &self.last {
            Some(last) if now.at_ms < last.at_ms + 1000 => {}
            Some(last) => {
                self.kept = now.kept_since(last, slo);
                self.last = Some(now);
            }
            None => self.last = Some(now),
        }
        self.kept
    }
}

/// Users/s a target of `replicas` replicas takes on when users join: 20 per
/// core of CPU it may use (its budget, or every core without one). A login
/// costs about 20 ms of CPU, so joining users then take under half of it.
pub fn default_spawn_rate(budget: Option<f64>, replicas: f64, cores: f64) -> f64 {
    20.0 * budget
        .map_or(cores, |b| (b * replicas).min(cores))
        .max(0.05)
}

fn unix_ms_of(t: Instant) -> u64 {
    let ago = t.elapsed();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(ago).as_millis() as u64
}

/// A run without an end, for [`Driver`].
fn base_plan(cfg: &DriverConfig, load: u32) -> TestPlan {
    let mut plan = TestPlan::new(&cfg.host, cfg.scenario.clone());
    plan.run_time = None;
    plan.timeout = cfg.timeout;
    plan.stop_timeout = Duration::from_secs(2);
    match cfg.model {
        LoadModel::Closed => {
            plan.users = load.max(1);
            plan.spawn_rate = cfg.spawn_rate.max(0.1);
        }
        LoadModel::Open => plan.arrival = Some(arrival(load)),
    }
    plan
}

/// One second of a step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// End of the second, Unix ms.
    pub time: u64,
    /// Users running.
    pub users: u32,
    /// Requests finished in that second.
    pub rps: f64,
    /// Failures in that second.
    pub fail_per_sec: f64,
    /// Percentiles of that second, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

/// How many failure rows a step keeps.
pub const TOP_FAILURES: usize = 5;

/// One row of a step's failure list: the same failure of the same request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FailureCount {
    /// HTTP method.
    pub method: String,
    /// Request name (Locust's: the path, or the name the scenario gave it).
    pub name: String,
    /// loadgen's kind: `timeout`, `status`, `connect`, `io`, `check`, `capture`.
    pub kind: String,
    /// `kind: message`, e.g. `status: HTTP 401 Unauthorized`.
    pub error: String,
    /// Occurrences in the window.
    pub count: u64,
}

impl FailureCount {
    /// The HTTP status of a `status` failure (`HTTP 401 …` → 401).
    pub fn status(&self) -> Option<u16> {
        let rest = self.error.split_once("HTTP ")?.1;
        rest.split_whitespace().next()?.parse().ok()
    }
}

impl std::fmt::Display for FailureCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} ×{}",
            self.method, self.name, self.error, self.count
        )
    }
}

/// One route's figures over a window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RouteStat {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// Requests finished.
    pub requests: u64,
    /// Requests failed.
    pub failures: u64,
    /// Median latency, ms.
    pub median_ms: f64,
    /// Average latency, ms.
    pub avg_ms: f64,
}

/// Which requests of a scenario log its users in, and which carry what the
/// login gave them: the lab's words about failures ("HTTP 401 after failed
/// logins") come from the scenario itself, not from a fixed story.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginShape {
    /// `(method, name)` of the requests users make when they start (`on_start`).
    pub logins: Vec<(String, String)>,
    /// `(method, name)` of the other requests that read a variable one of
    /// those captured (the access or refresh token).
    pub token_users: Vec<(String, String)>,
}

impl LoginShape {
    /// Reads the shape off a scenario. Requests whose name depends on a
    /// variable (no fixed name, a templated path) are left out.
    pub fn of(scenario: &Scenario) -> LoginShape {
        use loadgen::scenario::{RequestSpec, Step};
        fn requests<'a>(steps: &'a [Step], out: &mut Vec<&'a RequestSpec>) {
            for s in steps {
                match s {
                    Step::Request(r) => out.push(r),
                    Step::Loop { steps, .. } => requests(steps, out),
                }
            }
        }
        fn key(r: &RequestSpec) -> Option<(String, String)> {
            use loadgen::scenario::template::Segment;
            let name = match &r.name {
                Some(n) => n.clone(),
                None if r.path.is_static() => r
                    .path
                    .segments()
                    .iter()
                    .map(|s| match s {
                        Segment::Literal(l) => l.as_str(),
                        _ => "",
                    })
                    .collect(),
                None => return None,
            };
            Some((r.method.to_string(), name))
        }
        fn reads(r: &RequestSpec) -> Vec<&str> {
            use loadgen::scenario::Body;
            let mut v: Vec<&str> = r.path.vars().collect();
            for (_, t) in &r.headers {
                v.extend(t.vars());
            }
            match &r.body {
                Body::Json(t) | Body::Raw(t) => v.extend(t.vars()),
                Body::Form(fields) => fields.iter().for_each(|(_, t)| v.extend(t.vars())),
                Body::Empty => {}
            }
            v
        }
        let mut shape = LoginShape::default();
        for user in &scenario.users {
            let mut start = Vec::new();
            requests(&user.on_start, &mut start);
            let captured: Vec<&str> = start
                .iter()
                .flat_map(|r| r.captures.iter().map(|(v, _)| v.as_str()))
                .collect();
            shape.logins.extend(start.iter().filter_map(|r| key(r)));
            let mut rest = Vec::new();
            for t in &user.tasks {
                requests(&t.steps, &mut rest);
            }
            for r in rest {
                if reads(r).iter().any(|v| captured.contains(v)) {
                    shape.token_users.extend(key(r));
                }
            }
        }
        for v in [&mut shape.logins, &mut shape.token_users] {
            v.sort();
            v.dedup();
        }
        let logins = shape.logins.clone();
        shape.token_users.retain(|k| !logins.contains(k));
        shape
    }

    /// Whether `(method, name)` is a login.
    pub fn is_login(&self, method: &str, name: &str) -> bool {
        self.logins.iter().any(|(m, n)| m == method && n == name)
    }

    /// Whether `(method, name)` carries what a login captured.
    pub fn uses_token(&self, method: &str, name: &str) -> bool {
        self.token_users
            .iter()
            .any(|(m, n)| m == method && n == name)
    }
}

/// What the lab keeps of one load step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepSummary {
    /// Requests finished.
    pub requests: u64,
    /// Requests failed.
    pub failures: u64,
    /// failures / requests.
    pub fail_ratio: f64,
    /// Requests per second over the step.
    pub rps: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Average, ms.
    pub avg_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Median of the successful requests only, ms: fast refusals (a
    /// shedder's 503s) pull `p50_ms` down. `None` when nothing succeeded or
    /// the report could not tell (one written by an older loadgen).
    #[serde(default)]
    pub ok_p50_ms: Option<f64>,
    /// 95th percentile of the successful requests only, ms (as `ok_p50_ms`).
    #[serde(default)]
    pub ok_p95_ms: Option<f64>,
    /// POST requests and failures.
    pub post_requests: u64,
    /// POST failures.
    pub post_failures: u64,
    /// GET requests.
    pub get_requests: u64,
    /// GET failures.
    pub get_failures: u64,
    /// Failures that were timeouts.
    pub timeouts: u64,
    /// Failures that were connection errors (refused, reset).
    pub connection_errors: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Responses per status code.
    pub status_codes: BTreeMap<u16, u64>,
    /// The most frequent failures (at most [`TOP_FAILURES`]), most frequent first.
    pub top_failures: Vec<FailureCount>,
    /// Per-route figures (one row per method and name), in loadgen's order.
    #[serde(default)]
    pub routes: Vec<RouteStat>,
    /// Iterations the open model could not start.
    pub dropped_iterations: u64,
    /// Warnings loadgen raised about itself.
    pub warnings: Vec<String>,
    /// Seconds measured.
    pub seconds: f64,
    /// Per-second history.
    pub history: Vec<Point>,
}

impl StepSummary {
    /// Successful requests per second: the capacity figure that does not
    /// count fast refusals (503s, 401s) as work done.
    pub fn goodput(&self) -> f64 {
        self.rps * (1.0 - self.fail_ratio).clamp(0.0, 1.0)
    }

    /// Whether the window's failures were a backlog draining rather than
    /// an overload: some failed, more in its first half than in its second,
    /// and none in its last second. Seen after a doubling near the knee:
    /// the new users' logins queue behind the old ones' and time out for a
    /// few seconds after the warm-up ended (9, 7, 6 then 0 failures a
    /// second), and the step broke on its ramp, not on its load.
    pub fn failures_draining(&self) -> bool {
        let per_second: Vec<f64> = self.history.iter().map(|p| p.fail_per_sec).collect();
        let (first, second) = per_second.split_at(per_second.len() / 2);
        let sum = |s: &[f64]| s.iter().sum::<f64>();
        per_second.len() >= 2 && per_second.last() == Some(&0.0) && sum(first) > sum(second)
    }

    /// Boils a loadgen report down.
    pub fn from_report(r: &RunReport) -> StepSummary {
        let mut s = StepSummary {
            seconds: r.meta.duration_s,
            dropped_iterations: r.dropped_iterations,
            warnings: r.warnings.clone(),
            ..StepSummary::default()
        };
        if let Some(t) = r.total() {
            s.requests = t.num_requests;
            s.failures = t.num_failures;
            s.fail_ratio = t.fail_ratio;
            s.rps = t.total_rps;
            s.p50_ms = t.median_response_time;
            s.avg_ms = t.avg_response_time;
            s.max_ms = t.max_response_time;
            s.p95_ms = t.percentile(0.95).unwrap_or(0.0);
            s.p99_ms = t.percentile(0.99).unwrap_or(0.0);
            if let Some(ok) = &t.successful {
                s.ok_p50_ms = ok.percentile(0.5);
                s.ok_p95_ms = ok.percentile(0.95);
            }
        }
        for row in r
            .stats
            .iter()
            .filter(|row| row.name != "Aggregated" || !row.method.is_empty())
        {
            match row.method.as_str() {
                "POST" | "PUT" | "PATCH" | "DELETE" => {
                    s.post_requests += row.num_requests;
                    s.post_failures += row.num_failures;
                }
                "GET" | "HEAD" => {
                    s.get_requests += row.num_requests;
                    s.get_failures += row.num_failures;
                }
                _ => {}
            }
        }
        for f in &r.failures {
            match f.kind {
                FailureKind::Timeout => s.timeouts += f.occurrences,
                FailureKind::Connect | FailureKind::Io => s.connection_errors += f.occurrences,
                _ => {}
            }
        }
        // loadgen sorts its failure rows by occurrences, most first.
        s.top_failures = r
            .failures
            .iter()
            .take(TOP_FAILURES)
            .map(|f| FailureCount {
                method: f.method.clone(),
                name: f.name.clone(),
                kind: f.kind.as_str().to_string(),
                error: f.error.clone(),
                count: f.occurrences,
            })
            .collect();
        s.routes = r
            .stats
            .iter()
            .filter(|row| !row.method.is_empty())
            .map(|row| RouteStat {
                method: row.method.clone(),
                name: row.name.clone(),
                requests: row.num_requests,
                failures: row.num_failures,
                median_ms: row.median_response_time,
                avg_ms: row.avg_response_time,
            })
            .collect();
        for (code, n) in &r.status_codes {
            s.status_codes.insert(*code, *n);
            if (500..600).contains(code) {
                s.status_5xx += n;
            }
        }
        s.history = r
            .history
            .iter()
            .map(|h| Point {
                time: h.time,
                users: h.user_count,
                rps: h.rps,
                fail_per_sec: h.fail_per_sec,
                p50: h.p50,
                p95: h.p95,
                p99: h.p99,
            })
            .collect();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: (&str, &str) = ("POST", "/api/v1/auth/token/");
    const ITEM: (&str, &str) = ("GET", "/api/v1/products/[id]/");

    fn counts(at_ms: u64, logins: (u64, u64), items: (u64, u64)) -> RouteCounts {
        RouteCounts {
            at_ms,
            rows: vec![
                RouteCounts::row(LOGIN.0, LOGIN.1, logins.0, logins.1),
                RouteCounts::row(ITEM.0, ITEM.1, items.0, items.1),
            ],
        }
    }

    fn failing(per_second: &[f64]) -> StepSummary {
        StepSummary {
            history: (per_second.iter())
                .map(|&f| Point {
                    fail_per_sec: f,
                    ..Point::default()
                })
                .collect(),
            ..StepSummary::default()
        }
    }

    #[test]
    fn failures_that_fall_to_none_are_a_backlog_draining() {
        // The windows seen: a group's ramp draining, and a single server's.
        assert!(failing(&[9.0, 7.0, 6.0, 0.0]).failures_draining());
        assert!(failing(&[4.0, 0.0, 0.0, 0.0]).failures_draining());
        // An overload fails to the end, or more later than earlier.
        assert!(!failing(&[9.0, 7.0, 6.0, 2.0]).failures_draining());
        assert!(!failing(&[0.0, 1.0, 6.0, 0.0]).failures_draining());
        // No failure, or too short a history to show a trend.
        assert!(!failing(&[0.0, 0.0, 0.0, 0.0]).failures_draining());
        assert!(!failing(&[3.0]).failures_draining());
        assert!(!failing(&[]).failures_draining());
    }

    #[test]
    fn a_backlog_of_failing_logins_is_not_settled() {
        let slo = Slo::default();
        let before = counts(1_000, (40, 0), (3_000, 0));
        // One login of four timed out in the second while 600 reads passed:
        // 0.17% over all requests, but the logins broke the objective.
        assert!(!counts(2_000, (44, 1), (3_600, 0)).kept_since(&before, &slo));
        assert!(
            counts(2_000, (44, 0), (3_600, 5)).kept_since(&before, &slo),
            "5 of 600 reads: under 1%"
        );
        assert!(
            !counts(2_000, (44, 0), (3_600, 7)).kept_since(&before, &slo),
            "7 of 600 reads"
        );
        // A route that first appears in the later snapshot counts from zero.
        let first = RouteCounts {
            at_ms: 0,
            rows: vec![],
        };
        assert!(!counts(2_000, (4, 1), (600, 0)).kept_since(&first, &slo));
    }

    #[test]
    fn routes_are_judged_over_a_second_after_the_warm_up() {
        let slo = Slo::default();
        let mut quiet = RoutesQuiet {
            since_ms: 10_000,
            last: None,
            kept: false,
        };
        assert!(
            !quiet.observe(counts(9_000, (0, 0), (0, 0)), &slo),
            "before the warm-up's last second"
        );
        assert!(
            !quiet.observe(counts(10_000, (40, 3), (3_000, 0)), &slo),
            "no second to difference yet"
        );
        assert!(
            !quiet.observe(counts(10_500, (44, 3), (3_600, 0)), &slo),
            "under a second apart"
        );
        assert!(
            quiet.observe(counts(11_000, (44, 3), (3_600, 0)), &slo),
            "no new failure in the second"
        );
        // The same snapshot seen again keeps the verdict.
        assert!(quiet.observe(counts(11_000, (44, 3), (3_600, 0)), &slo));
        assert!(
            !quiet.observe(counts(12_000, (48, 4), (4_200, 0)), &slo),
            "a login failed"
        );
    }

    #[test]
    fn goodput_leaves_failures_out() {
        let s = StepSummary {
            requests: 2_000,
            failures: 920,
            fail_ratio: 0.46,
            rps: 2_256.0,
            ..StepSummary::default()
        };
        // Chapter 5's case: 2,256 req/s with 46% failed is 1,218 good requests/s.
        assert!((s.goodput() - 1_218.24).abs() < 1e-6);
        assert_eq!(StepSummary::default().goodput(), 0.0);
    }

    /// A report of three fast 503s for every slow success, as loadgen
    /// makes it from its recorded samples.
    fn shed_report() -> RunReport {
        use loadgen::report::ReportMeta;
        use loadgen::stats::{Failure, Key, Names, Sample, StatsState};
        let mut names = Names::default();
        let id = names.intern("GET", "/api/products/");
        let mut st = StatsState::new(names);
        for i in 0..400u64 {
            let (ms, refused) = if i % 4 == 0 {
                (200 + i / 4, false)
            } else {
                (1, true)
            };
            st.record(Sample {
                key: Key::Id(id),
                latency_us: ms * 1000,
                raw_us: ms * 1000,
                content_len: 0,
                status: if refused { 503 } else { 200 },
                failure: refused.then(|| {
                    Box::new(Failure {
                        kind: FailureKind::Status,
                        message: "HTTP 503 Service Unavailable".into(),
                    })
                }),
            });
        }
        let meta = ReportMeta {
            duration_s: 10.0,
            ..ReportMeta::default()
        };
        RunReport::from_state(&st, meta)
    }

    #[test]
    fn the_successful_requests_latency_is_kept_apart() {
        let r = shed_report();
        let s = StepSummary::from_report(&r);
        assert_eq!((s.requests, s.failures), (400, 300));
        assert!(s.p50_ms < 2.0, "all answers: {s:?}");
        let (p50, p95) = (s.ok_p50_ms.unwrap(), s.ok_p95_ms.unwrap());
        assert!((p50 - 249.0).abs() < 0.5, "successful p50 {p50}");
        assert!((p95 - 294.0).abs() < 0.5, "successful p95 {p95}");
        // Unknown (a report without it): absent, not zero.
        let mut old = r;
        for row in &mut old.stats {
            row.successful = None;
        }
        let s = StepSummary::from_report(&old);
        assert_eq!((s.ok_p50_ms, s.ok_p95_ms), (None, None));
        let back: StepSummary = serde_json::from_str(r#"{"requests": 1, "failures": 0, "fail_ratio": 0.0, "rps": 1.0, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0, "avg_ms": 1.0, "max_ms": 1.0, "post_requests": 0, "post_failures": 0, "get_requests": 1, "get_failures": 0, "timeouts": 0, "connection_errors": 0, "status_5xx": 0, "status_codes": {}, "top_failures": [], "dropped_iterations": 0, "warnings": [], "seconds": 1.0, "history": []}"#)
            .expect("a summary saved before these fields still loads");
        assert_eq!(back.ok_p50_ms, None);
    }
}
