//! One upstream server as the balancer sees it at run time: its settings
//! (atomics, so the admin API and reloads can change them in place), its
//! counters, nginx's passive failure accounting (`max_fails`/`fail_timeout`),
//! slow start, latency estimates for `least_time` and P2C, and its pool of
//! idle keepalive connections. Everything on the request path is an atomic;
//! no lock is taken to read or update a peer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use http::HeaderValue;

use crate::config::ServerConfig;
use crate::proxy::client::{Pool, Server};

/// Administrative state, set by config (`down`) or the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AdminState {
    /// Takes traffic.
    Up = 0,
    /// Takes no traffic.
    Down = 1,
    /// Takes no new requests; in-flight ones finish.
    Draining = 2,
}

/// Decay window of the peak-EWMA latency estimate (linkerd's default).
const EWMA_DECAY_MS: f64 = 10_000.0;
/// Latency assumed for a server never measured (1 ms), as tower's
/// `PeakEwma` takes a default RTT.
const DEFAULT_RTT_NS: f64 = 1_000_000.0;

/// An upstream server.
#[derive(Debug)]
pub struct Peer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `ip:port`, as shown in `/status` and metrics.
    pub name: String,
    /// Pre-built `X-Upstream` value.
    pub header: HeaderValue,
    /// `backup` server (only used when no primary is available).
    pub backup: bool,
    weight: AtomicU32,
    max_conns: AtomicU32,
    max_fails: AtomicU32,
    fail_timeout_ms: AtomicU64,
    slow_start_ms: AtomicU64,
    admin: AtomicU8,
    /// Result of active health checks (true until a check fails).
    healthy: AtomicBool,
    /// Requests in flight to this server (nginx's `conns`).
    pub active: AtomicU32,
    /// Requests sent to this server since start (retries included).
    pub requests: AtomicU64,
    /// Attempts that failed (connect/read errors, timeouts, retried statuses).
    pub failures: AtomicU64,
    /// Responses by class: 1xx..5xx.
    pub responses: [AtomicU64; 5],
    /// nginx's `fails`: failures within the current `fail_timeout` window.
    fails: AtomicU32,
    /// nginx's `accessed`: time of the last failure.
    accessed: AtomicU64,
    /// nginx's `checked`: time the server was last checked/probed.
    checked: AtomicU64,
    /// When it last became available again (slow start); 0 = never.
    recovered: AtomicU64,
    /// "temporarily disabled" was logged for the current outage.
    disabled_logged: AtomicBool,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
    /// Peak-EWMA of time to response header, in ns (f64 bits).
    ewma_ns: AtomicU64,
    ewma_stamp: AtomicU64,
    /// Moving average for `least_time`, in µs (f64 bits).
    avg_time_us: AtomicU64,
    /// Idle keepalive connections.
    pub pool: Pool,
}

impl Peer {
    /// A peer for a configured server.
    pub fn new(cfg: &ServerConfig, keepalive: usize) -> Self {
        let name = cfg.addr.to_string();
        Peer {
            addr: cfg.addr,
            header: HeaderValue::from_str(&name).expect("socket address is a valid header"),
            name,
            backup: cfg.backup,
            weight: AtomicU32::new(cfg.weight),
            max_conns: AtomicU32::new(cfg.max_conns),
            max_fails: AtomicU32::new(cfg.max_fails),
            fail_timeout_ms: AtomicU64::new(cfg.fail_timeout.as_millis() as u64),
            slow_start_ms: AtomicU64::new(cfg.slow_start.as_millis() as u64),
            admin: AtomicU8::new(if cfg.down {
                AdminState::Down as u8
            } else {
                AdminState::Up as u8
            }),
            healthy: AtomicBool::new(true),
            active: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            responses: Default::default(),
            fails: AtomicU32::new(0),
            accessed: AtomicU64::new(0),
            checked: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            disabled_logged: AtomicBool::new(false),
            latency_sum_us: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            ewma_ns: AtomicU64::new(DEFAULT_RTT_NS.to_bits()),
            ewma_stamp: AtomicU64::new(0),
            avg_time_us: AtomicU64::new(0f64.to_bits()),
            pool: Pool::new(keepalive),
        }
    }

    /// Applies (re)loaded settings, keeping counters and connections.
    pub fn apply(&self, cfg: &ServerConfig, keepalive: usize, now: u64) {
        self.weight.store(cfg.weight, Relaxed);
        self.max_conns.store(cfg.max_conns, Relaxed);
        self.max_fails.store(cfg.max_fails, Relaxed);
        self.fail_timeout_ms
            .store(cfg.fail_timeout.as_millis() as u64, Relaxed);
        self.slow_start_ms
            .store(cfg.slow_start.as_millis() as u64, Relaxed);
        self.set_admin(
            if cfg.down {
                AdminState::Down
            } else {
                AdminState::Up
            },
            now,
        );
        self.pool.set_max_idle(keepalive);
    }

    /// What the upstream client needs to reach it.
    pub fn server(&self) -> Server<'_> {
        Server {
            addr: self.addr,
            name: &self.name,
            pool: &self.pool,
        }
    }

    /// Configured weight.
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// Changes the weight (admin API).
    pub fn set_weight(&self, w: u32) {
        self.weight.store(w.max(1), Relaxed);
    }

    /// Administrative state.
    pub fn admin(&self) -> AdminState {
        match self.admin.load(Relaxed) {
            1 => AdminState::Down,
            2 => AdminState::Draining,
            _ => AdminState::Up,
        }
    }

    /// Sets the administrative state; coming back up starts slow start.
    pub fn set_admin(&self, s: AdminState, now: u64) {
        let prev = self.admin.swap(s as u8, Relaxed);
        if s == AdminState::Up && prev != AdminState::Up as u8 {
            self.recovered.store(now, Relaxed);
            self.fails.store(0, Relaxed);
        }
    }

    /// Active health check verdict.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Records an active health check verdict; recovery starts slow start.
    pub fn set_healthy(&self, ok: bool, now: u64) {
        let prev = self.healthy.swap(ok, Relaxed);
        if ok && !prev {
            self.recovered.store(now, Relaxed);
            self.fails.store(0, Relaxed);
        }
    }

    /// Whether passive failure accounting currently keeps it out
    /// (`fails >= max_fails` within `fail_timeout` of the last check).
    pub fn failed(&self, now: u64) -> bool {
        let mf = self.max_fails.load(Relaxed);
        mf != 0
            && self.fails.load(Relaxed) >= mf
            && now.saturating_sub(self.checked.load(Relaxed)) <= self.fail_timeout_ms.load(Relaxed)
    }

    /// May a new request go here (ignoring which were already tried)?
    #[inline]
    pub fn usable(&self, now: u64) -> bool {
        if self.admin.load(Relaxed) != AdminState::Up as u8 || !self.healthy.load(Relaxed) {
            return false;
        }
        let mc = self.max_conns.load(Relaxed);
        if mc != 0 && self.active.load(Relaxed) >= mc {
            return false;
        }
        !self.failed(now)
    }

    /// Usable apart from passive failure accounting (`max_fails`) and
    /// `max_conns`, which the caller's CAS checks.
    pub fn usable_ignoring_fails(&self) -> bool {
        self.admin.load(Relaxed) == AdminState::Up as u8 && self.healthy.load(Relaxed)
    }

    /// Usable apart from `max_conns`: a freed slot may be handed to a queued
    /// request.
    pub fn usable_ignoring_conns(&self, now: u64) -> bool {
        self.admin.load(Relaxed) == AdminState::Up as u8
            && self.healthy.load(Relaxed)
            && !self.failed(now)
    }

    /// Takes a connection slot unless `max_conns` is reached (a CAS loop, so
    /// the limit holds across worker threads).
    #[inline]
    pub fn try_acquire(&self) -> bool {
        let mc = self.max_conns.load(Relaxed);
        if mc == 0 {
            self.active.fetch_add(1, Relaxed);
            return true;
        }
        let mut cur = self.active.load(Relaxed);
        loop {
            if cur >= mc {
                return false;
            }
            match self
                .active
                .compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
    }

    /// nginx: once `fail_timeout` has passed, selecting the server is the
    /// probe that may clear its failures.
    pub fn on_selected(&self, now: u64) {
        let ft = self.fail_timeout_ms.load(Relaxed);
        if now.saturating_sub(self.checked.load(Relaxed)) > ft {
            self.checked.store(now, Relaxed);
        }
    }

    /// A failed attempt (nginx's `NGX_PEER_FAILED`).
    pub fn on_failure(&self, now: u64) {
        self.failures.fetch_add(1, Relaxed);
        let fails = self.fails.fetch_add(1, Relaxed) + 1;
        self.accessed.store(now, Relaxed);
        self.checked.store(now, Relaxed);
        let mf = self.max_fails.load(Relaxed);
        // Logged once per outage, not once per failed probe.
        if mf != 0 && fails == mf && !self.disabled_logged.swap(true, Relaxed) {
            tracing::warn!(server = %self.name, "upstream server temporarily disabled");
        }
    }

    /// A successful attempt: nginx clears `fails` when the server was probed
    /// after its last failure.
    pub fn on_success(&self, now: u64) {
        if self.accessed.load(Relaxed) < self.checked.load(Relaxed) {
            let prev = self.fails.swap(0, Relaxed);
            if self.disabled_logged.swap(false, Relaxed) {
                tracing::info!(server = %self.name, "upstream server is answering again");
            }
            let mf = self.max_fails.load(Relaxed);
            if mf != 0 && prev >= mf {
                self.recovered.store(now, Relaxed);
            }
        }
    }

    /// Forgets failures (nginx does this when every server has failed, for
    /// quick recovery).
    pub fn reset_fails(&self) {
        self.fails.store(0, Relaxed);
    }

    /// Counts a response by status class.
    #[inline]
    pub fn count_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    /// Weight in effect now: with `slow_start`, it ramps from 1 to the
    /// configured weight over that time after the server recovers.
    #[inline]
    pub fn effective_weight(&self, now: u64) -> u32 {
        let w = self.weight.load(Relaxed);
        let ss = self.slow_start_ms.load(Relaxed);
        if ss == 0 {
            return w;
        }
        let rec = self.recovered.load(Relaxed);
        if rec == 0 {
            return w;
        }
        let elapsed = now.saturating_sub(rec);
        if elapsed >= ss {
            w
        } else {
            ((w as u64 * elapsed / ss) as u32).max(1)
        }
    }

    /// Records the time to response header.
    pub fn observe_header(&self, took: Duration, now: u64) {
        let us = took.as_micros() as u64;
        self.latency_sum_us.fetch_add(us, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        // Peak EWMA, as tower::load::PeakEwma: a slower sample replaces the
        // estimate at once, faster ones decay it over EWMA_DECAY_MS.
        let rtt = took.as_nanos() as f64;
        let prev = self.decayed_ewma(now);
        let next = if rtt > prev {
            rtt
        } else {
            let elapsed = now.saturating_sub(self.ewma_stamp.load(Relaxed)) as f64;
            let w = (-elapsed / EWMA_DECAY_MS).exp();
            prev * w + rtt * (1.0 - w)
        };
        self.ewma_ns.store(next.to_bits(), Relaxed);
        self.ewma_stamp.store(now, Relaxed);
    }

    /// Feeds the `least_time` moving average.
    pub fn observe_time(&self, took: Duration) {
        let sample = took.as_micros() as f64;
        let prev = f64::from_bits(self.avg_time_us.load(Relaxed));
        let next = if prev == 0.0 {
            sample
        } else {
            prev * 0.8 + sample * 0.2
        };
        self.avg_time_us.store(next.to_bits(), Relaxed);
    }

    /// `least_time`'s moving average, µs.
    pub fn avg_time_us(&self) -> f64 {
        f64::from_bits(self.avg_time_us.load(Relaxed))
    }

    /// The peak-EWMA estimate decayed to `now`, ns (tower decays it on read).
    pub fn decayed_ewma(&self, now: u64) -> f64 {
        let v = f64::from_bits(self.ewma_ns.load(Relaxed));
        let elapsed = now.saturating_sub(self.ewma_stamp.load(Relaxed)) as f64;
        v * (-elapsed / EWMA_DECAY_MS).exp()
    }

    /// Mean time to response header since start, ms.
    pub fn latency_avg_ms(&self) -> f64 {
        let n = self.latency_count.load(Relaxed);
        if n == 0 {
            0.0
        } else {
            self.latency_sum_us.load(Relaxed) as f64 / n as f64 / 1000.0
        }
    }

    /// Sum of response-header times, seconds (for Prometheus).
    pub fn latency_sum_seconds(&self) -> f64 {
        self.latency_sum_us.load(Relaxed) as f64 / 1e6
    }

    /// Number of latency samples.
    pub fn latency_count(&self) -> u64 {
        self.latency_count.load(Relaxed)
    }

    /// The state shown in `/status`.
    pub fn state_name(&self, now: u64) -> &'static str {
        match self.admin() {
            AdminState::Down => "down",
            AdminState::Draining => "draining",
            AdminState::Up if !self.healthy() || self.failed(now) => "unhealthy",
            AdminState::Up if self.backup => "backup",
            AdminState::Up => "up",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_ramps_weight_after_recovery() {
        let mut cfg = ServerConfig::new("127.0.0.1:1".parse().unwrap());
        cfg.weight = 10;
        cfg.slow_start = Duration::from_secs(10);
        let p = Peer::new(&cfg, 1);
        assert_eq!(p.effective_weight(5_000), 10, "no slow start at startup");
        p.set_healthy(false, 5_000);
        p.set_healthy(true, 6_000);
        assert_eq!(p.effective_weight(6_000), 1);
        assert_eq!(p.effective_weight(11_000), 5);
        assert_eq!(p.effective_weight(16_000), 10);
    }

    #[test]
    fn nginx_max_fails_window() {
        let mut cfg = ServerConfig::new("127.0.0.1:1".parse().unwrap());
        cfg.max_fails = 2;
        cfg.fail_timeout = Duration::from_secs(10);
        let p = Peer::new(&cfg, 1);
        p.on_failure(1_000);
        assert!(p.usable(1_001), "one failure of two allowed");
        p.on_failure(2_000);
        assert!(!p.usable(2_001));
        assert!(!p.usable(12_000));
        // After fail_timeout the server is probed again; success clears it.
        assert!(p.usable(12_001));
        p.on_selected(12_001);
        p.on_success(12_050);
        assert!(p.usable(12_100));
        assert_eq!(p.state_name(12_100), "up");
    }
}
