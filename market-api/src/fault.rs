//! Fault injection for the lab (off by default): `--fault-delay` holds every
//! `/api/` response back; `--fault-error-rate` answers a random fraction of
//! `/api/` and `/healthz` requests with 503, so that the balancer's active
//! health checks can see a failing replica. `/healthz` is never delayed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Middleware applying `state.fault` (installed only when a fault is set).
pub async fn inject(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/api/");
    if api || path == "/healthz" {
        let rate = state.fault.error_rate;
        if rate > 0.0 && rand::random::<f64>() < rate {
            return ApiError::Unavailable("Injected fault.").into_response();
        }
    }
    if api {
        if let Some(delay) = state.fault.delay {
            tokio::time::sleep(delay).await;
        }
    }
    next.run(req).await
}
