//! The live dashboard: Locust's web UI, served from the loadgen binary.
//!
//! The page (HTML, CSS, JS and the vendored uPlot chart library) is embedded
//! in the binary ([`assets`]); it receives the [`Controller`]'s snapshots as
//! Server-Sent Events ([`stream`]) and drives runs through a small JSON API
//! ([`api`]); the run so far can be downloaded in Locust's file formats
//! ([`download`]). The dashboard only reads aggregates: it never touches the
//! request loops, so watching a run costs the run nothing measurable.
//!
//! Routes:
//! - `GET /` the page, `GET /assets/*` its files
//! - `GET /api/stream` snapshots as `text/event-stream`, `GET /api/snapshot` the latest one
//! - `GET /api/defaults` the start form's values, from the plan loadgen was started with
//! - `POST /api/start` `{users?, spawn_rate?, host?, run_time?}` (absent: the
//!   plan's value), `POST /api/users`
//!   `{users, spawn_rate}`, `POST /api/stop`, `POST /api/reset`; a refused
//!   request answers 400 `{"error": "..."}`
//! - `GET /download/{stats.csv, stats_history.csv, failures.csv, exceptions.csv, report.json, report.html}`

pub mod api;
pub mod assets;
pub mod download;
pub mod stream;

use std::future::Future;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

use crate::control::Controller;

/// How long open connections (event streams included) get to finish after
/// the shutdown signal before `serve` returns anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Errors of the dashboard server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Accepting or serving connections failed.
    #[error("dashboard server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// What every handler can reach.
#[derive(Clone)]
pub struct WebState {
    /// The run the page shows and drives.
    pub controller: Controller,
    /// Turns `true` when the server shuts down, so that event streams (which
    /// would otherwise never end) close and graceful shutdown can finish.
    pub shutdown: watch::Receiver<bool>,
    /// The sender side when nobody else holds it ([`WebState::new`]): a
    /// dropped sender reads as "shut down" to the streams.
    _keep_open: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl WebState {
    /// State for a dashboard that is never shut down (handler tests).
    pub fn new(controller: Controller) -> WebState {
        let (tx, shutdown) = watch::channel(false);
        WebState {
            controller,
            shutdown,
            _keep_open: Some(std::sync::Arc::new(tx)),
        }
    }
}

/// The dashboard's router, usable without a socket (`tower::ServiceExt::oneshot`).
pub fn app(state: WebState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/index.html", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .route("/api/stream", get(stream::stream))
        .route("/api/snapshot", get(api::snapshot))
        .route("/api/defaults", get(api::defaults))
        .route("/api/start", post(api::start))
        .route("/api/users", post(api::set_users))
        .route("/api/stop", post(api::stop))
        .route("/api/reset", post(api::reset))
        .route("/download/{file}", get(download::download))
        .fallback(api::not_found)
        .with_state(state)
}

/// Serves the dashboard on `listener` until `shutdown` completes, then lets
/// open connections finish for up to five seconds.
pub async fn serve(
    listener: tokio::net::TcpListener,
    controller: Controller,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = WebState {
        controller,
        shutdown: stop_rx.clone(),
        _keep_open: None,
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::debug!(%addr, "dashboard serving");
    }
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(signal);
    let mut deadline_rx = stop_rx;
    let deadline = async move {
        let _ = deadline_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    tokio::select! {
        res = server => res?,
        () = deadline => tracing::warn!("dashboard: connections still open after the drain deadline, closing"),
    }
    Ok(())
}
