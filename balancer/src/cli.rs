//! Command-line flags (clap derive) and their conversion into a validated
//! [`Config`]. With `--config FILE` the nginx-style file is the base and the
//! flags given override it; otherwise the flags alone describe the setup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use http::StatusCode;

use crate::config::nginx::{apply_server_param, parse_file, resolve};
use crate::config::units::{parse_size, parse_time};
use crate::config::{
    Algorithm, Config, ConfigError, HealthConfig, NextUpstream, ProxyConfig, QueueConfig,
    ServerConfig,
};

/// An HTTP load balancer with nginx's upstream semantics.
#[derive(Debug, Clone, Parser)]
#[command(name = "balancer", version, about)]
pub struct Cli {
    /// nginx-style config file (`upstream {}` + `server { location / { proxy_pass } }`).
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Listen queue length, as nginx's `listen ... backlog=N` (capped by net.core.somaxconn) [default: 511].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub backlog: Option<u32>,
    /// Upstream server: ADDR[,weight=N][,max_conns=N][,max_fails=N][,fail_timeout=T][,backup][,down][,slow_start=T]. Repeatable.
    #[arg(long = "upstream", value_name = "SERVER", value_parser = parse_upstream)]
    pub upstreams: Vec<ServerConfig>,
    /// round_robin | least_conn | ip_hash | hash:KEY | hash_consistent:KEY | random | random_two | random_two_least_conn | least_time[:header|:last_byte] | p2c_ewma.
    #[arg(long, value_name = "NAME", value_parser = Algorithm::from_str)]
    pub algorithm: Option<Algorithm>,
    /// Admin listener (/status, /metrics, control).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Add `X-Upstream: ADDR` to responses.
    #[arg(long)]
    pub upstream_header: bool,
    /// Enable active health checks of this URI.
    #[arg(long, value_name = "URI")]
    pub health_check: Option<String>,
    /// Health check interval [default: 5s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub health_interval: Option<Duration>,
    /// Random extra delay per check, up to this.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub health_jitter: Option<Duration>,
    /// Consecutive failed checks that take a server out [default: 1].
    #[arg(long, value_name = "N")]
    pub health_fails: Option<u32>,
    /// Consecutive passed checks that bring it back [default: 1].
    #[arg(long, value_name = "N")]
    pub health_passes: Option<u32>,
    /// Timeout of one check [default: 2s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub health_timeout: Option<Duration>,
    /// Accepted statuses, e.g. 200 or 200-399 [default: 200-399].
    #[arg(long, value_name = "RANGE", value_parser = parse_status_range)]
    pub health_status: Option<(u16, u16)>,
    /// Queue up to N requests when no server can take them.
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Longest wait in the queue [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub queue_timeout: Option<Duration>,
    /// Status for queue overflow/timeout: 502 (nginx) or 503.
    #[arg(long, value_name = "CODE", value_parser = parse_reject_status)]
    pub queue_status: Option<StatusCode>,
    /// `Retry-After` seconds sent with a 503 rejection.
    #[arg(long, value_name = "SECS")]
    pub retry_after: Option<u32>,
    /// Idle keepalive connections kept per upstream server [default: 64].
    #[arg(long, value_name = "N")]
    pub keepalive: Option<usize>,
    /// proxy_next_upstream conditions, comma separated (error,timeout,invalid_header,http_502,...,non_idempotent | off).
    #[arg(long, value_name = "LIST", value_parser = parse_next_upstream)]
    pub next_upstream: Option<NextUpstream>,
    /// Most tries per request (0 = one per server).
    #[arg(long, value_name = "N")]
    pub next_upstream_tries: Option<u32>,
    /// Most time spent trying servers (0 = unlimited).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub next_upstream_timeout: Option<Duration>,
    /// Upstream connect timeout [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub connect_timeout: Option<Duration>,
    /// Upstream read timeout (to the header, and between body reads) [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub read_timeout: Option<Duration>,
    /// Upstream send timeout, nginx's proxy_send_timeout (the client side is --client-send-timeout) [default: 60s].
    #[arg(long, alias = "proxy-send-timeout", value_name = "T", value_parser = parse_time)]
    pub send_timeout: Option<Duration>,
    /// Client send timeout, nginx's send_timeout: a client taking no response bytes this long is dropped [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub client_send_timeout: Option<Duration>,
    /// How long an idle client connection stays open, nginx's keepalive_timeout (0 = no keep-alive) [default: 75s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub keepalive_timeout: Option<Duration>,
    /// Time allowed for a client's request head [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub client_header_timeout: Option<Duration>,
    /// Time allowed between reads of a client's body [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub client_body_timeout: Option<Duration>,
    /// Largest request body (0 = unlimited) [default: 1m].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub client_max_body_size: Option<u64>,
    /// Largest request head, at least 8k [default: 32k].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_header_size: Option<u64>,
    /// Worker threads (1 = single-threaded runtime) [default: one per core].
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Longest graceful drain on SIGTERM [default: 30s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub shutdown_timeout: Option<Duration>,
}

fn parse_upstream(s: &str) -> Result<ServerConfig, String> {
    let mut it = s.split(',');
    let addr = it.next().unwrap_or_default();
    let addr = resolve(addr).map_err(|e| format!("{e}: \"{addr}\""))?;
    let mut server = ServerConfig::new(addr);
    for p in it {
        apply_server_param(&mut server, p)?;
    }
    Ok(server)
}

fn parse_status_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid status range \"{s}\"");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&a) || !(a..=599).contains(&b) {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_reject_status(s: &str) -> Result<StatusCode, String> {
    match s {
        "502" => Ok(StatusCode::BAD_GATEWAY),
        "503" => Ok(StatusCode::SERVICE_UNAVAILABLE),
        _ => Err(format!("queue status must be 502 or 503, not \"{s}\"")),
    }
}

fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("\"{s}\" is not a whole number of threads")),
    }
}

fn parse_next_upstream(s: &str) -> Result<NextUpstream, String> {
    NextUpstream::parse(s.split(',').map(str::trim))
}

impl Cli {
    /// Builds and validates the configuration: the file or the flags'
    /// upstream as the base, then each group of flags over it.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let mut c = self.base()?;
        self.apply_process(&mut c);
        self.apply_health(&mut c)?;
        self.apply_queue(&mut c)?;
        self.apply_proxy(&mut c.proxy);
        c.validate()?;
        Ok(c)
    }

    /// The file's configuration, or defaults around `--upstream`.
    fn base(&self) -> Result<Config, ConfigError> {
        match &self.config {
            Some(path) => {
                if !self.upstreams.is_empty() {
                    return Err(ConfigError::Invalid(
                        "--upstream cannot be combined with --config (servers come from the file)"
                            .into(),
                    ));
                }
                parse_file(path)
            }
            None => {
                if self.upstreams.is_empty() {
                    return Err(ConfigError::Invalid(
                        "no upstream servers: give --upstream ADDR (repeatable) or --config FILE"
                            .into(),
                    ));
                }
                Ok(Config::new(
                    SocketAddr::from(([127, 0, 0, 1], 8080)),
                    self.upstreams.clone(),
                ))
            }
        }
    }

    /// Listeners, method, workers and the other whole-process settings.
    fn apply_process(&self, c: &mut Config) {
        if let Some(a) = self.listen {
            c.listen = a;
        }
        if let Some(b) = self.backlog {
            c.backlog = b;
        }
        if let Some(a) = &self.algorithm {
            c.upstream.algorithm = a.clone();
        }
        if self.admin.is_some() {
            c.admin = self.admin;
        }
        c.upstream_header |= self.upstream_header;
        if let Some(n) = self.keepalive {
            c.upstream.keepalive = n;
        }
        if self.workers.is_some() {
            c.workers = self.workers;
        }
        if let Some(t) = self.shutdown_timeout {
            c.shutdown_timeout = t;
        }
    }

    /// `--health-check` and the `--health-*` flags (which need it).
    fn apply_health(&self, c: &mut Config) -> Result<(), ConfigError> {
        if let Some(uri) = &self.health_check {
            let h = c.health.get_or_insert_with(HealthConfig::default);
            h.uri = uri.clone();
        }
        let health_flags = self.health_interval.is_some()
            || self.health_jitter.is_some()
            || self.health_fails.is_some()
            || self.health_passes.is_some()
            || self.health_timeout.is_some()
            || self.health_status.is_some();
        if !health_flags {
            return Ok(());
        }
        let Some(h) = c.health.as_mut() else {
            return Err(ConfigError::Invalid(
                "--health-* options need --health-check URI".into(),
            ));
        };
        set(&mut h.interval, self.health_interval);
        set(&mut h.jitter, self.health_jitter);
        set(&mut h.fails, self.health_fails);
        set(&mut h.passes, self.health_passes);
        set(&mut h.timeout, self.health_timeout);
        set(&mut h.status, self.health_status);
        Ok(())
    }

    /// `--queue N` and the `--queue-*` flags (which need it).
    fn apply_queue(&self, c: &mut Config) -> Result<(), ConfigError> {
        if let Some(n) = self.queue {
            c.upstream.queue = Some(QueueConfig {
                size: n,
                timeout: Duration::from_secs(60),
                reject_status: StatusCode::BAD_GATEWAY,
                retry_after: None,
            });
        }
        let queue_flags = self.queue_timeout.is_some()
            || self.queue_status.is_some()
            || self.retry_after.is_some();
        if !queue_flags {
            return Ok(());
        }
        let Some(q) = c.upstream.queue.as_mut() else {
            return Err(ConfigError::Invalid(
                "--queue-* options need --queue N".into(),
            ));
        };
        set(&mut q.timeout, self.queue_timeout);
        set(&mut q.reject_status, self.queue_status);
        if let Some(r) = self.retry_after {
            q.retry_after = Some(r);
        }
        Ok(())
    }

    /// Timeouts, limits and the retry policy.
    fn apply_proxy(&self, p: &mut ProxyConfig) {
        set(&mut p.next_upstream, self.next_upstream);
        set(&mut p.next_upstream_tries, self.next_upstream_tries);
        set(&mut p.next_upstream_timeout, self.next_upstream_timeout);
        set(&mut p.connect_timeout, self.connect_timeout);
        set(&mut p.read_timeout, self.read_timeout);
        set(&mut p.send_timeout, self.send_timeout);
        set(&mut p.client_send_timeout, self.client_send_timeout);
        set(&mut p.keepalive_timeout, self.keepalive_timeout);
        set(&mut p.client_header_timeout, self.client_header_timeout);
        set(&mut p.client_body_timeout, self.client_body_timeout);
        set(&mut p.client_max_body_size, self.client_max_body_size);
        if let Some(v) = self.max_header_size {
            p.max_header_size = v as usize;
        }
    }
}

/// A flag given overrides the setting.
fn set<T>(setting: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *setting = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("balancer").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn upstream_flag_parameters() {
        let c = cli(&[
            "--upstream",
            "127.0.0.1:8001",
            "--upstream",
            "127.0.0.1:8002,weight=2,max_conns=10,backup,slow_start=30s",
            "--algorithm",
            "least_conn",
        ])
        .to_config()
        .unwrap();
        assert_eq!(c.upstream.servers.len(), 2);
        let s = &c.upstream.servers[1];
        assert_eq!((s.weight, s.max_conns, s.backup), (2, 10, true));
        assert_eq!(s.slow_start, Duration::from_secs(30));
        assert_eq!(c.upstream.algorithm, Algorithm::LeastConn);
    }

    #[test]
    fn flag_errors() {
        assert!(Cli::try_parse_from(["b", "--upstream", "127.0.0.1:1,weight=0"]).is_err());
        assert!(Cli::try_parse_from(["b", "--upstream", "127.0.0.1:1,bogus"]).is_err());
        let e = Cli::try_parse_from(["b", "--workers", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be at least 1"), "{e}");
        assert!(Cli::try_parse_from(["b", "--algorithm", "fastest"]).is_err());
        let e = cli(&["--upstream", "127.0.0.1:1,backup", "--algorithm", "ip_hash"])
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("backup"), "{e}");
        assert!(cli(&[]).to_config().is_err());
        assert!(cli(&["--upstream", "127.0.0.1:1", "--queue-timeout", "1s"])
            .to_config()
            .is_err());
    }

    #[test]
    fn client_and_upstream_send_timeouts() {
        let c = cli(&[
            "--upstream",
            "127.0.0.1:1",
            "--send-timeout",
            "3s",
            "--client-send-timeout",
            "4s",
            "--keepalive-timeout",
            "5s",
            "--backlog",
            "2048",
        ])
        .to_config()
        .unwrap();
        assert_eq!(c.proxy.send_timeout, Duration::from_secs(3));
        assert_eq!(c.proxy.client_send_timeout, Duration::from_secs(4));
        assert_eq!(c.proxy.keepalive_timeout, Duration::from_secs(5));
        assert_eq!(c.backlog, 2048);
        let c = cli(&["--upstream", "127.0.0.1:1", "--proxy-send-timeout", "8s"])
            .to_config()
            .unwrap();
        assert_eq!(c.proxy.send_timeout, Duration::from_secs(8));
        assert!(Cli::try_parse_from(["b", "--backlog", "0"]).is_err());
    }

    #[test]
    fn algorithms() {
        assert!(matches!(
            "hash:$request_uri".parse::<Algorithm>().unwrap(),
            Algorithm::Hash {
                consistent: false,
                ..
            }
        ));
        assert!(matches!(
            "hash_consistent:$remote_addr".parse::<Algorithm>().unwrap(),
            Algorithm::Hash {
                consistent: true,
                ..
            }
        ));
        assert_eq!(
            "random_two".parse::<Algorithm>().unwrap(),
            Algorithm::Random { two: true }
        );
    }
}
