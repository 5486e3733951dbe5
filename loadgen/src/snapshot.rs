//! What a run looks like from outside, about once a second: its state, its
//! figures, its warnings. The dashboard, the terminal view and the
//! controller's readers all read this one data type; it sits below them so
//! that none of them imports another to reach it.

use serde::{Deserialize, Serialize};

use crate::stats::{FailureRow, HistoryPoint, StatsRow};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Nothing started yet.
    Ready,
    /// Users are being started (or stopped) towards the target.
    Spawning,
    /// All users are running.
    Running,
    /// The run is over; its figures are final.
    Stopped,
}

/// Everything the dashboard shows, published about once a second.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Run state.
    pub state: RunState,
    /// Target URL.
    pub host: String,
    /// Users running now.
    pub user_count: u32,
    /// Users asked for.
    pub target_users: u32,
    /// Requests/s (aggregate, last 10 s).
    pub total_rps: f64,
    /// Failures / requests over the run.
    pub fail_ratio: f64,
    /// Median of the last 10 s (ms).
    pub current_response_time_p50: f64,
    /// 95th percentile of the last 10 s (ms).
    pub current_response_time_p95: f64,
    /// Per (method, name), then `Aggregated` last.
    pub stats: Vec<StatsRow>,
    /// Grouped failures.
    pub failures: Vec<FailureRow>,
    /// `(status, responses)`.
    pub status_codes: Vec<(u16, u64)>,
    /// The last (up to) 3600 seconds.
    pub history: Vec<HistoryPoint>,
    /// Whole-run latency histogram, `(upper bound ms, count)`.
    pub histogram: Vec<(f64, u64)>,
    /// The last balancer `/status` (with `--balancer-status`).
    pub upstreams: Option<serde_json::Value>,
    /// Warnings about loadgen itself.
    pub warnings: Vec<String>,
    /// Iterations the open model could not start.
    pub dropped_iterations: u64,
    /// Seconds since the start.
    pub elapsed_s: f64,
}

impl Snapshot {
    pub(crate) fn idle(host: &str) -> Snapshot {
        Snapshot {
            state: RunState::Ready,
            host: host.to_string(),
            user_count: 0,
            target_users: 0,
            total_rps: 0.0,
            fail_ratio: 0.0,
            current_response_time_p50: 0.0,
            current_response_time_p95: 0.0,
            stats: Vec::new(),
            failures: Vec::new(),
            status_codes: Vec::new(),
            history: Vec::new(),
            histogram: Vec::new(),
            upstreams: None,
            warnings: Vec::new(),
            dropped_iterations: 0,
            elapsed_s: 0.0,
        }
    }
}

/// History points kept in a snapshot.
pub(crate) const SNAPSHOT_HISTORY: usize = 3600;
