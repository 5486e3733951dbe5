//! Active health checks (NGINX Plus's `health_check`): every `interval`
//! (plus random `jitter`) each server gets `GET uri` on a fresh connection;
//! `fails` consecutive failures (connect error, timeout, or a status outside
//! the expected range) mark it unhealthy, `passes` consecutive passes bring it
//! back (and start its slow start). Passive checks (`max_fails`) work
//! alongside: a server must satisfy both to get traffic.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::config::HealthConfig;
use crate::proxy::client;
use crate::upstream::{Peer, Upstream};

/// Checks server `idx` of `upstream` until aborted.
pub async fn check_loop(upstream: Arc<Upstream>, idx: usize, cfg: HealthConfig) {
    let peer = upstream.peers[idx].clone();
    let clock = upstream.clock;
    let mut fails = 0u32;
    let mut passes = 0u32;
    loop {
        let ok = check_once(&peer, &cfg).await;
        let now = clock.now();
        if ok {
            fails = 0;
            passes += 1;
            if !peer.healthy() && passes >= cfg.passes {
                tracing::info!(server = %peer.name, "health check passed, server is back");
                peer.set_healthy(true, now);
                // Requests queued while it was out may go to it now.
                upstream.kick();
            }
        } else {
            passes = 0;
            fails += 1;
            if peer.healthy() && fails >= cfg.fails {
                tracing::warn!(server = %peer.name, "health check failed, server taken out");
                peer.set_healthy(false, now);
            }
        }
        let jitter = if cfg.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::thread_rng().gen_range(Duration::ZERO..cfg.jitter)
        };
        tokio::time::sleep(cfg.interval + jitter).await;
    }
}

/// One check: true when the server answers `uri` with an expected status
/// within the timeout.
pub async fn check_once(peer: &Peer, cfg: &HealthConfig) -> bool {
    let attempt = async {
        let conn = client::connect(peer.addr, cfg.timeout).await.ok()?;
        conn.probe(&cfg.uri, &peer.name).await
    };
    match tokio::time::timeout(cfg.timeout, attempt).await {
        Ok(Some(status)) => (cfg.status.0..=cfg.status.1).contains(&status.as_u16()),
        _ => false,
    }
}
