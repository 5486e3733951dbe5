//! The running balancer: the current [`Generation`] (config + upstream
//! group), swapped whole on reload, and the process-wide counters.
//!
//! Each request loads the current generation once (a read lock held for an
//! `Arc` clone) and keeps it to the end, so a reload never disturbs a
//! request in flight: old generations live on until their last request
//! finishes. Peers with the same address are carried over into the new
//! generation, so counters, health and pooled connections survive.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::health;
use crate::upstream::{Clock, Upstream};

/// One configuration in force.
#[derive(Debug)]
pub struct Generation {
    /// The configuration.
    pub config: Config,
    /// Its upstream group.
    pub upstream: Arc<Upstream>,
    /// Sequence number (1 for the first).
    pub number: u64,
}

/// Counters of what clients received.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Responses by class 1xx..5xx.
    pub responses: [AtomicU64; 5],
    /// Requests dropped because the client closed its connection before the
    /// response (nginx logs these with status 499).
    pub client_aborts: AtomicU64,
    /// Successful reloads.
    pub reloads: AtomicU64,
}

/// The outcome of a reload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// The new generation's number.
    pub generation: u64,
    /// Settings the reload could not apply (they need a restart).
    pub warnings: Vec<String>,
}

type Reloader = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// Shared state of a running balancer.
pub struct State {
    current: RwLock<Arc<Generation>>,
    /// Shared monotonic clock.
    pub clock: Clock,
    /// Process-wide counters.
    pub stats: Stats,
    reloader: Option<Reloader>,
    health_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl State {
    /// Builds the state; `reloader` produces a fresh config on reload
    /// (re-reading the file). Must run inside a Tokio runtime (health checks
    /// are spawned).
    pub fn new(config: Config, reloader: Option<Reloader>) -> Arc<Self> {
        let clock = Clock::new();
        let upstream = Arc::new(Upstream::new(&config.upstream, None, clock));
        let state = Arc::new(State {
            current: RwLock::new(Arc::new(Generation {
                config,
                upstream,
                number: 1,
            })),
            clock,
            stats: Stats::default(),
            reloader,
            health_tasks: Mutex::new(Vec::new()),
        });
        state.start_health(&state.current());
        state
    }

    /// The generation in force.
    #[inline]
    pub fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the configuration and swaps it in. In-flight requests finish
    /// on the old generation. The listen and admin addresses cannot change.
    pub fn reload(&self) -> Result<Reloaded, ConfigError> {
        let Some(reloader) = &self.reloader else {
            return Err(ConfigError::Invalid(
                "nothing to reload: the balancer was not started from a config file".into(),
            ));
        };
        let config = reloader()?;
        Ok(self.install(config))
    }

    /// Swaps in `config`; what it asks for that only a restart can do (new
    /// listen or admin addresses, another number of workers) is kept as it
    /// was, and said in the warnings.
    pub fn install(&self, mut config: Config) -> Reloaded {
        let old = self.current();
        let mut warnings = Vec::new();
        let mut keep = |what: &str, new: String, old: String| {
            if new != old {
                let w =
                    format!("{what} changes need a restart: keeping {old} (the file says {new})");
                tracing::warn!("{w}");
                warnings.push(w);
            }
        };
        let addr = |a: Option<std::net::SocketAddr>| a.map_or("none".into(), |a| a.to_string());
        keep(
            "listen address",
            config.listen.to_string(),
            old.config.listen.to_string(),
        );
        keep("admin address", addr(config.admin), addr(old.config.admin));
        let workers = |w: Option<usize>| w.map_or("one per core".into(), |n| n.to_string());
        keep(
            "worker count",
            workers(config.workers),
            workers(old.config.workers),
        );
        config.listen = old.config.listen;
        config.admin = old.config.admin;
        config.workers = old.config.workers;
        let upstream = Arc::new(Upstream::new(
            &config.upstream,
            Some(&old.upstream),
            self.clock,
        ));
        let generation = Arc::new(Generation {
            config,
            upstream,
            number: old.number + 1,
        });
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = generation.clone();
        self.start_health(&generation);
        self.stats.reloads.fetch_add(1, Relaxed);
        tracing::info!(generation = generation.number, "configuration reloaded");
        Reloaded {
            generation: generation.number,
            warnings,
        }
    }

    fn start_health(&self, g: &Generation) {
        let mut tasks = self.health_tasks.lock().unwrap_or_else(|e| e.into_inner());
        for t in tasks.drain(..) {
            t.abort();
        }
        if let Some(h) = &g.config.health {
            for idx in 0..g.upstream.peers.len() {
                tasks.push(tokio::spawn(health::check_loop(
                    g.upstream.clone(),
                    idx,
                    h.clone(),
                )));
            }
        }
    }

    /// Stops background tasks (health checks).
    pub fn stop(&self) {
        for t in self
            .health_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}
