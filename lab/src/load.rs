//! The bridge to `loadgen`: building plans and boiling a run down to the
//! figures the lab decides with.
//!
//! The load generator runs in this process ([`loadgen::run_test`]); one load
//! step is one run. [`StepSummary`] keeps what the capacity search, the
//! diagnosis and the reports need (totals, percentiles, failures by method
//! and kind, the per-second history), so the full `RunReport` (with its
//! serialized histograms) is kept only for the steps that are written out.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use loadgen::plan::{Arrival, TestPlan};
use loadgen::report::RunReport;
use loadgen::scenario::Scenario;
use loadgen::stats::FailureKind;
use serde::{Deserialize, Serialize};

use crate::cli::LoadModel;
use crate::Error;

/// Per-request timeout of lab runs: well above any objective, well below a step.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A plan for one step: `load` users (closed) or iterations/s (open) against
/// `host` for `duration`, everyone started within the first second or so.
pub fn step_plan(
    host: &str,
    scenario: &Scenario,
    model: LoadModel,
    load: u32,
    duration: Duration,
) -> TestPlan {
    let mut plan = TestPlan::new(host, scenario.clone());
    plan.run_time = Some(duration);
    plan.timeout = REQUEST_TIMEOUT;
    plan.stop_timeout = Duration::from_secs(2);
    match model {
        LoadModel::Closed => {
            plan.users = load.max(1);
            // Start everyone within ~1 s (but not all in the same instant).
            plan.spawn_rate = f64::from(load.max(1)).max(1.0);
        }
        LoadModel::Open => {
            plan.arrival = Some(Arrival {
                rate: f64::from(load.max(1)),
                stages: Vec::new(),
                max_vus: load.saturating_mul(20).clamp(50, 20_000),
            });
        }
    }
    plan
}

/// Runs one plan in this process.
pub async fn run(plan: TestPlan) -> Result<RunReport, Error> {
    Ok(loadgen::run_test(plan).await?)
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
    /// The most frequent failures, in words.
    pub top_failures: Vec<String>,
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
    /// Boils a loadgen report down.
    pub fn from_report(r: &RunReport) -> StepSummary {
        let mut s = StepSummary {
            seconds: r.duration_s,
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
            let pct = |q: f64| {
                t.percentiles
                    .iter()
                    .find(|(p, _)| (p - q).abs() < 1e-9)
                    .map_or(0.0, |(_, v)| *v)
            };
            s.p95_ms = pct(0.95);
            s.p99_ms = pct(0.99);
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
        s.top_failures = r
            .failures
            .iter()
            .take(5)
            .map(|f| format!("{} {}: {} ×{}", f.method, f.name, f.error, f.occurrences))
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
