//! The admin listener (separate from client traffic): `GET /status` (JSON),
//! `GET /metrics` (Prometheus text), and runtime control:
//! `POST /servers/{id}/drain|down|up`, `POST /servers/{id}/weight?value=N`
//! (or a JSON body `{"weight": N}`), `POST /reload`. Server ids are indexes
//! in `/status` (primaries in config order, then backups).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::state::{State, Stats};
use crate::upstream::{AdminState, Peer, Upstream};

/// `/status` body.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The balancing method.
    pub algorithm: &'static str,
    /// The upstream groups (one).
    pub upstreams: Vec<UpstreamStatus>,
}

/// One upstream group in `/status`.
#[derive(Debug, Serialize)]
pub struct UpstreamStatus {
    /// Its name.
    pub name: String,
    /// Requests waiting in its queue.
    pub queue_depth: usize,
    /// Its servers.
    pub servers: Vec<ServerStatus>,
}

/// One server in `/status`.
#[derive(Debug, Serialize)]
pub struct ServerStatus {
    /// Id for the control endpoints.
    pub id: usize,
    /// Address.
    pub addr: String,
    /// up, down, draining, unhealthy or backup.
    pub state: &'static str,
    /// Configured weight.
    pub weight: u32,
    /// Requests in flight.
    pub active: u32,
    /// Requests sent to it since start (retries included).
    pub requests: u64,
    /// Failed attempts since start.
    pub failures: u64,
    /// Mean time to response header, ms.
    pub latency_avg_ms: f64,
}

fn server_status(id: usize, p: &Peer, now: u64) -> ServerStatus {
    ServerStatus {
        id,
        addr: p.name.clone(),
        state: p.state_name(now),
        weight: p.weight(),
        active: p.active.load(Relaxed),
        requests: p.requests.load(Relaxed),
        failures: p.failures.load(Relaxed),
        latency_avg_ms: (p.latency_avg_ms() * 1000.0).round() / 1000.0,
    }
}

/// The status document.
pub fn status(state: &State) -> Status {
    let g = state.current();
    let up: &Upstream = &g.upstream;
    let now = up.clock.now();
    Status {
        algorithm: up.algorithm.name(),
        upstreams: vec![UpstreamStatus {
            name: up.name.clone(),
            queue_depth: up.queue_depth(),
            servers: up
                .peers
                .iter()
                .enumerate()
                .map(|(i, p)| server_status(i, p, now))
                .collect(),
        }],
    }
}

/// The admin router.
pub fn app(state: Arc<State>) -> Router {
    Router::new()
        .route("/status", get(get_status))
        .route("/metrics", get(get_metrics))
        .route("/servers/{id}/{action}", post(control))
        .route("/reload", post(reload))
        .with_state(state)
}

async fn get_status(AxState(state): AxState<Arc<State>>) -> Json<Status> {
    Json(status(&state))
}

fn bad(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

async fn control(
    AxState(state): AxState<Arc<State>>,
    Path((id, action)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let g = state.current();
    let Some(peer) = id
        .parse::<usize>()
        .ok()
        .and_then(|i| g.upstream.peers.get(i))
    else {
        return bad(StatusCode::NOT_FOUND, format!("no server with id {id}"));
    };
    let now = g.upstream.clock.now();
    match action.as_str() {
        "drain" => peer.set_admin(AdminState::Draining, now),
        "down" => peer.set_admin(AdminState::Down, now),
        "up" => peer.set_admin(AdminState::Up, now),
        "weight" => {
            let from_body = || -> Option<u64> {
                let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
                v.get("weight").or_else(|| v.get("value"))?.as_u64()
            };
            let value = match query.get("value") {
                Some(v) => v.parse::<u64>().ok(),
                None => from_body(),
            };
            match value {
                Some(w) if (1..=1_000_000).contains(&w) => peer.set_weight(w as u32),
                _ => {
                    return bad(
                        StatusCode::BAD_REQUEST,
                        "weight must be an integer from 1 to 1000000 (?value=N or {\"weight\":N})",
                    )
                }
            }
        }
        other => return bad(StatusCode::NOT_FOUND, format!("unknown action \"{other}\"")),
    }
    // A server that came up (or got more weight) may serve queued requests.
    g.upstream.kick();
    let idx = id.parse::<usize>().unwrap_or_default();
    Json(server_status(idx, peer, now)).into_response()
}

async fn reload(AxState(state): AxState<Arc<State>>) -> Response {
    match state.reload() {
        Ok(done) => Json(done).into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn get_metrics(AxState(state): AxState<Arc<State>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics(&state),
    )
        .into_response()
}

/// A metric family with one sample: its `# HELP`, `# TYPE` and value lines.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// Prometheus text exposition.
pub fn metrics(state: &State) -> String {
    let g = state.current();
    let up = &g.upstream;
    let mut out = String::with_capacity(4096);
    client_metrics(&mut out, &state.stats);
    queue_metrics(&mut out, up);
    server_metrics(&mut out, up);
    status_class_metrics(&mut out, up);
    out
}

/// The balancer's own counters: requests, responses by class, aborts,
/// reloads.
fn client_metrics(out: &mut String, s: &Stats) {
    let counter = |out: &mut String, name, help, value: u64| {
        metric(out, name, "counter", help, "", value);
    };
    counter(
        out,
        "balancer_requests_total",
        "Client requests received.",
        s.requests.load(Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP balancer_responses_total Responses sent to clients, by status class."
    );
    let _ = writeln!(out, "# TYPE balancer_responses_total counter");
    for (i, c) in s.responses.iter().enumerate() {
        let _ = writeln!(
            out,
            "balancer_responses_total{{code=\"{}xx\"}} {}",
            i + 1,
            c.load(Relaxed)
        );
    }
    counter(
        out,
        "balancer_client_aborts_total",
        "Requests dropped because the client closed its connection first (nginx's 499).",
        s.client_aborts.load(Relaxed),
    );
    counter(
        out,
        "balancer_config_reloads_total",
        "Successful configuration reloads.",
        s.reloads.load(Relaxed),
    );
}

/// The upstream group's queue.
fn queue_metrics(out: &mut String, up: &Upstream) {
    let group = format!("{{upstream=\"{}\"}}", up.name);
    metric(
        out,
        "balancer_upstream_queue_depth",
        "gauge",
        "Requests waiting for a server.",
        &group,
        up.queue_depth() as u64,
    );
    metric(
        out,
        "balancer_upstream_queue_rejected_total",
        "counter",
        "Requests rejected by a full queue or its timeout.",
        &group,
        up.queue.as_ref().map_or(0, |q| q.rejected_total()),
    );
}

/// One line per server for each per-server metric.
fn server_metrics(out: &mut String, up: &Upstream) {
    let now = up.clock.now();
    type Metric<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(&Peer) -> String);
    let per_server: [Metric; 8] = [
        (
            "balancer_upstream_requests_total",
            "counter",
            "Requests sent to each upstream server.",
            &|p| p.requests.load(Relaxed).to_string(),
        ),
        (
            "balancer_upstream_failures_total",
            "counter",
            "Failed attempts per upstream server.",
            &|p| p.failures.load(Relaxed).to_string(),
        ),
        (
            "balancer_upstream_active_requests",
            "gauge",
            "Requests in flight per upstream server.",
            &|p| p.active.load(Relaxed).to_string(),
        ),
        (
            "balancer_upstream_weight",
            "gauge",
            "Configured weight per upstream server.",
            &|p| p.weight().to_string(),
        ),
        (
            "balancer_upstream_up",
            "gauge",
            "1 if the server may receive traffic.",
            &|p| u8::from(p.usable_ignoring_conns(now)).to_string(),
        ),
        (
            "balancer_upstream_idle_connections",
            "gauge",
            "Idle keepalive connections per upstream server.",
            &|p| p.pool.idle().to_string(),
        ),
        (
            "balancer_upstream_response_seconds_sum",
            "counter",
            "Total time to response header.",
            &|p| p.latency_sum_seconds().to_string(),
        ),
        (
            "balancer_upstream_response_seconds_count",
            "counter",
            "Responses timed.",
            &|p| p.latency_count().to_string(),
        ),
    ];
    for (name, kind, help, f) in per_server {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for p in &up.peers {
            let _ = writeln!(
                out,
                "{name}{{upstream=\"{}\",server=\"{}\"}} {}",
                up.name,
                p.name,
                f(p)
            );
        }
    }
}

/// Upstream responses by server and status class.
fn status_class_metrics(out: &mut String, up: &Upstream) {
    let _ = writeln!(
        out,
        "# HELP balancer_upstream_responses_total Upstream responses by status class."
    );
    let _ = writeln!(out, "# TYPE balancer_upstream_responses_total counter");
    for p in &up.peers {
        for (i, c) in p.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "balancer_upstream_responses_total{{upstream=\"{}\",server=\"{}\",code=\"{}xx\"}} {}",
                up.name,
                p.name,
                i + 1,
                c.load(Relaxed)
            );
        }
    }
}
