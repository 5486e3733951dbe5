//! `proxy_next_upstream` semantics: which failures send a request to the
//! next server, and how many tries and how much time a request gets.
//!
//! As nginx: a request that was not written yet (connect failed, or the
//! connection was found closed) may always go elsewhere; once written, only
//! idempotent methods are retried, i.e. not POST, PATCH or LOCK (unless
//! `non_idempotent` is configured). Tries default to the number of servers
//! (each is tried at most once); `proxy_next_upstream_timeout` bounds the
//! total time.

use std::time::Instant;

use http::Method;

use crate::config::{NextUpstream, ProxyConfig};

use super::client::FailKind;

/// nginx's rule: everything but POST, PATCH and LOCK is idempotent.
pub fn idempotent(m: &Method) -> bool {
    !(m == Method::POST || m == Method::PATCH || m.as_str() == "LOCK")
}

/// Whether `proxy_next_upstream` covers this failure.
pub fn covers(nu: &NextUpstream, kind: FailKind) -> bool {
    match kind {
        FailKind::Error => nu.error,
        FailKind::Timeout => nu.timeout,
        FailKind::InvalidHeader => nu.invalid_header,
        FailKind::ClientBody(_) => false,
    }
}

/// The tries and time left for one request.
#[derive(Debug)]
pub struct Budget {
    left: u32,
    deadline: Option<Instant>,
}

impl Budget {
    /// A budget for an upstream of `servers` servers.
    pub fn new(cfg: &ProxyConfig, servers: usize) -> Self {
        let nu = &cfg.next_upstream;
        let enabled = nu.error || nu.timeout || nu.invalid_header || nu.any_status();
        let tries = if !enabled {
            1
        } else if cfg.next_upstream_tries == 0 {
            servers as u32
        } else {
            cfg.next_upstream_tries.min(servers as u32)
        };
        Budget {
            left: tries.max(1),
            deadline: (!cfg.next_upstream_timeout.is_zero())
                .then(|| Instant::now() + cfg.next_upstream_timeout),
        }
    }

    /// Uses one try.
    pub fn spend(&mut self) {
        self.left = self.left.saturating_sub(1);
    }

    /// May another try start after the current one?
    pub fn more(&self) -> bool {
        self.left > 0 && self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_idempotency() {
        assert!(idempotent(&Method::GET));
        assert!(idempotent(&Method::PUT));
        assert!(idempotent(&Method::DELETE));
        assert!(!idempotent(&Method::POST));
        assert!(!idempotent(&Method::PATCH));
        assert!(!idempotent(&Method::from_bytes(b"LOCK").unwrap()));
    }

    #[test]
    fn budget_counts_servers() {
        let cfg = ProxyConfig::default();
        let mut b = Budget::new(&cfg, 3);
        b.spend();
        assert!(b.more());
        b.spend();
        b.spend();
        assert!(!b.more());
        let off = ProxyConfig {
            next_upstream: NextUpstream::parse(["off"]).unwrap(),
            ..ProxyConfig::default()
        };
        let mut b = Budget::new(&off, 3);
        b.spend();
        assert!(!b.more());
    }
}
