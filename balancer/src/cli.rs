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
    Algorithm, Config, ConfigError, HealthConfig, NextUpstream, QueueConfig, ServerConfig,
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
    /// Upstream send timeout [default: 60s].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub send_timeout: Option<Duration>,
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
    /// Builds and validates the configuration.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(path) => {
                if !self.upstreams.is_empty() {
                    return Err(ConfigError::Invalid(
                        "--upstream cannot be combined with --config (servers come from the file)"
                            .into(),
                    ));
                }
                parse_file(path)?
            }
            None => {
                if self.upstreams.is_empty() {
                    return Err(ConfigError::Invalid(
                        "no upstream servers: give --upstream ADDR (repeatable) or --config FILE"
                            .into(),
                    ));
                }
                Config::new(
                    SocketAddr::from(([127, 0, 0, 1], 8080)),
                    self.upstreams.clone(),
                )
            }
        };
        if let Some(a) = self.listen {
            c.listen = a;
        }
        if let Some(a) = &self.algorithm {
            c.upstream.algorithm = a.clone();
        }
        if self.admin.is_some() {
            c.admin = self.admin;
        }
        c.upstream_header |= self.upstream_header;
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
        if health_flags {
            let Some(h) = c.health.as_mut() else {
                return Err(ConfigError::Invalid(
                    "--health-* options need --health-check URI".into(),
                ));
            };
            if let Some(v) = self.health_interval {
                h.interval = v;
            }
            if let Some(v) = self.health_jitter {
                h.jitter = v;
            }
            if let Some(v) = self.health_fails {
                h.fails = v;
            }
            if let Some(v) = self.health_passes {
                h.passes = v;
            }
            if let Some(v) = self.health_timeout {
                h.timeout = v;
            }
            if let Some(v) = self.health_status {
                h.status = v;
            }
        }
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
        if queue_flags {
            let Some(q) = c.upstream.queue.as_mut() else {
                return Err(ConfigError::Invalid(
                    "--queue-* options need --queue N".into(),
                ));
            };
            if let Some(t) = self.queue_timeout {
                q.timeout = t;
            }
            if let Some(s) = self.queue_status {
                q.reject_status = s;
            }
            if let Some(r) = self.retry_after {
                q.retry_after = Some(r);
            }
        }
        if let Some(n) = self.keepalive {
            c.upstream.keepalive = n;
        }
        let p = &mut c.proxy;
        if let Some(v) = self.next_upstream {
            p.next_upstream = v;
        }
        if let Some(v) = self.next_upstream_tries {
            p.next_upstream_tries = v;
        }
        if let Some(v) = self.next_upstream_timeout {
            p.next_upstream_timeout = v;
        }
        if let Some(v) = self.connect_timeout {
            p.connect_timeout = v;
        }
        if let Some(v) = self.read_timeout {
            p.read_timeout = v;
        }
        if let Some(v) = self.send_timeout {
            p.send_timeout = v;
        }
        if let Some(v) = self.client_header_timeout {
            p.client_header_timeout = v;
        }
        if let Some(v) = self.client_body_timeout {
            p.client_body_timeout = v;
        }
        if let Some(v) = self.client_max_body_size {
            p.client_max_body_size = v;
        }
        if let Some(v) = self.max_header_size {
            p.max_header_size = v as usize;
        }
        if self.workers.is_some() {
            c.workers = self.workers;
        }
        if let Some(t) = self.shutdown_timeout {
            c.shutdown_timeout = t;
        }
        c.validate()?;
        Ok(c)
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
