//! The live dashboard: a Locust-like web page served from the loadgen binary.
//!
//! (First version: only the entry point; the router, assets and SSE stream follow.)

use std::future::Future;

use crate::control::Controller;

/// Errors of the dashboard server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Accepting or serving connections failed.
    #[error("dashboard server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Serves the dashboard on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    controller: Controller,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let _ = (listener, controller);
    shutdown.await;
    Ok(())
}
