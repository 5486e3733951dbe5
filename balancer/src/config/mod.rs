//! The validated configuration the balancer runs from.
//!
//! Both front ends produce a [`Config`]: the command-line flags (`cli.rs`) and
//! an nginx-style config file (`nginx.rs`). Everything is checked here, before
//! anything binds or connects, so errors come early and whole; the proxy then
//! trusts these values. Defaults follow nginx's where nginx has one.

pub mod nginx;
pub mod units;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::header::HeaderName;
use http::StatusCode;

/// A configuration error. File errors carry the file and line like nginx's
/// own messages: `unknown directive "foo" in lab.conf:12`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An error at a line of a config file.
    #[error("{msg} in {file}:{line}")]
    At {
        /// The file, as given.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong, in nginx's words where nginx has them.
        msg: String,
    },
    /// The config file could not be read.
    // The cause is in the message, not a `source` (see `Error::Bind`).
    #[error("cannot read {file}: {cause}")]
    Read {
        /// The file, as given.
        file: String,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// An invalid flag or combination of settings.
    #[error("{0}")]
    Invalid(String),
}

/// Everything the balancer needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// The listen queue of `listen` (`listen ... backlog=N`; 511 as
    /// nginx on Linux, where tokio's default is 128). The kernel caps it at
    /// `net.core.somaxconn`.
    pub backlog: u32,
    /// Address of the admin listener, if any.
    pub admin: Option<SocketAddr>,
    /// The one upstream group requests are proxied to.
    pub upstream: UpstreamConfig,
    /// Timeouts, limits and retry policy.
    pub proxy: ProxyConfig,
    /// Active health checks, if enabled.
    pub health: Option<HealthConfig>,
    /// Add `X-Upstream: ADDR` to responses.
    pub upstream_header: bool,
    /// Worker threads (`worker_processes` in a file); `None` = one per core.
    pub workers: Option<usize>,
    /// How long SIGTERM waits for in-flight requests before closing.
    pub shutdown_timeout: Duration,
    /// The config file this came from, re-read on SIGHUP.
    pub source: Option<PathBuf>,
}

/// One `upstream NAME { ... }` block.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The block's name (shown in `/status` and metrics).
    pub name: String,
    /// The balancing method.
    pub algorithm: Algorithm,
    /// The servers, in file order; backups included (flagged).
    pub servers: Vec<ServerConfig>,
    /// Idle keepalive connections kept per server.
    pub keepalive: usize,
    /// `queue N timeout=T`, if set.
    pub queue: Option<QueueConfig>,
}

/// One `server ADDR [params];` line.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The resolved address.
    pub addr: SocketAddr,
    /// `weight=N` (default 1).
    pub weight: u32,
    /// `max_conns=N` (0 = unlimited).
    pub max_conns: u32,
    /// `max_fails=N` (default 1; 0 disables passive failure accounting).
    pub max_fails: u32,
    /// `fail_timeout=T` (default 10s).
    pub fail_timeout: Duration,
    /// `backup`: used only when every primary server is unavailable.
    pub backup: bool,
    /// `down`: permanently unavailable.
    pub down: bool,
    /// `slow_start=T`: weight ramps up from 1 after the server recovers.
    pub slow_start: Duration,
}

impl ServerConfig {
    /// A server with nginx's default parameters.
    pub fn new(addr: SocketAddr) -> Self {
        ServerConfig {
            addr,
            weight: 1,
            max_conns: 0,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            backup: false,
            down: false,
            slow_start: Duration::ZERO,
        }
    }
}

/// `queue N timeout=T`.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Maximum number of waiting requests.
    pub size: usize,
    /// Longest wait (default 60s, as NGINX Plus).
    pub timeout: Duration,
    /// Status for overflow/timeout: 502 as nginx, or 503.
    pub reject_status: StatusCode,
    /// `Retry-After` seconds sent with a 503 rejection.
    pub retry_after: Option<u32>,
}

/// A balancing method.
#[derive(Debug, Clone, PartialEq)]
pub enum Algorithm {
    /// Smooth weighted round robin (nginx's default).
    RoundRobin,
    /// Fewest active requests relative to weight; ties by round robin.
    LeastConn,
    /// nginx's `ip_hash`: first three octets of IPv4, whole IPv6 address.
    IpHash,
    /// `hash KEY [consistent]`.
    Hash {
        /// The key template.
        key: HashKey,
        /// Ketama consistent hashing.
        consistent: bool,
    },
    /// `random` or `random two [least_conn]`.
    Random {
        /// Pick two and take the one with fewer active requests.
        two: bool,
    },
    /// `least_time header|last_byte`.
    LeastTime(LeastTimeMode),
    /// Power of two choices over peak-EWMA latency (not in nginx).
    P2cEwma,
}

impl Algorithm {
    /// The name used in `/status` (and accepted by `--algorithm`).
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastConn => "least_conn",
            Algorithm::IpHash => "ip_hash",
            Algorithm::Hash {
                consistent: false, ..
            } => "hash",
            Algorithm::Hash {
                consistent: true, ..
            } => "hash_consistent",
            Algorithm::Random { two: false } => "random",
            Algorithm::Random { two: true } => "random_two_least_conn",
            Algorithm::LeastTime(LeastTimeMode::Header) => "least_time_header",
            Algorithm::LeastTime(LeastTimeMode::LastByte) => "least_time_last_byte",
            Algorithm::P2cEwma => "p2c_ewma",
        }
    }

    /// nginx refuses `backup` servers with the hash-like methods.
    pub fn supports_backup(&self) -> bool {
        !matches!(
            self,
            Algorithm::IpHash | Algorithm::Hash { .. } | Algorithm::Random { .. }
        )
    }

    /// The method's name as written in nginx config (for messages).
    pub fn directive(&self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastConn => "least_conn",
            Algorithm::IpHash => "ip_hash",
            Algorithm::Hash { .. } => "hash",
            Algorithm::Random { .. } => "random",
            Algorithm::LeastTime(_) => "least_time",
            Algorithm::P2cEwma => "p2c_ewma",
        }
    }
}

/// The `--algorithm` names: `round_robin`, `least_conn`, `ip_hash`,
/// `hash:KEY` (`hash_consistent:KEY` or `hash:KEY consistent`), `random`,
/// `random_two`, `least_time[:header|:last_byte]`, `p2c_ewma`.
impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Algorithm, String> {
        Ok(match s {
            "round_robin" | "rr" => Algorithm::RoundRobin,
            "least_conn" => Algorithm::LeastConn,
            "ip_hash" => Algorithm::IpHash,
            "random" => Algorithm::Random { two: false },
            "random_two" | "random_two_least_conn" => Algorithm::Random { two: true },
            "least_time" | "least_time:header" => Algorithm::LeastTime(LeastTimeMode::Header),
            "least_time:last_byte" => Algorithm::LeastTime(LeastTimeMode::LastByte),
            "p2c_ewma" | "p2c" => Algorithm::P2cEwma,
            _ => {
                let (consistent, key) = if let Some(k) = s.strip_prefix("hash_consistent:") {
                    (true, k)
                } else if let Some(k) = s.strip_prefix("hash:") {
                    match k.strip_suffix(" consistent") {
                        Some(k) => (true, k),
                        None => (false, k),
                    }
                } else {
                    return Err(format!("unknown algorithm \"{s}\""));
                };
                Algorithm::Hash {
                    key: HashKey::parse(key)?,
                    consistent,
                }
            }
        })
    }
}

/// What `least_time` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeastTimeMode {
    /// Time to the response header.
    Header,
    /// Time to the last byte of the response.
    LastByte,
}

/// A hash key template such as `$remote_addr`, `$request_uri` or
/// `$http_x_user$uri`, compiled once.
#[derive(Debug, Clone, PartialEq)]
pub struct HashKey {
    /// The template as written.
    pub source: String,
    /// Its pieces.
    pub parts: Vec<KeyPart>,
}

/// One piece of a [`HashKey`].
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPart {
    /// Literal text.
    Literal(String),
    /// `$remote_addr`.
    RemoteAddr,
    /// `$request_uri` (path and query).
    RequestUri,
    /// `$uri` (path only).
    Uri,
    /// `$args` (query only).
    Args,
    /// `$host`.
    Host,
    /// `$http_NAME`: a request header.
    Header(HeaderName),
}

impl HashKey {
    /// Compiles a key template; unknown variables are an error.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('$') {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let var = &after[..len];
                let part = match var {
                    "remote_addr" | "binary_remote_addr" => KeyPart::RemoteAddr,
                    "request_uri" => KeyPart::RequestUri,
                    "uri" | "document_uri" => KeyPart::Uri,
                    "args" | "query_string" => KeyPart::Args,
                    "host" | "http_host" => KeyPart::Host,
                    _ => match var.strip_prefix("http_") {
                        Some(h) if !h.is_empty() => {
                            let name = h.replace('_', "-").to_ascii_lowercase();
                            KeyPart::Header(
                                HeaderName::from_bytes(name.as_bytes())
                                    .map_err(|_| format!("invalid variable name \"{var}\""))?,
                            )
                        }
                        _ => return Err(format!("unknown \"{var}\" variable")),
                    },
                };
                parts.push(part);
                rest = &after[len..];
            } else {
                let end = rest.find('$').unwrap_or(rest.len());
                parts.push(KeyPart::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        if parts.is_empty() {
            return Err("empty hash key".into());
        }
        Ok(HashKey {
            source: source.to_string(),
            parts,
        })
    }
}

/// Conditions under which a request goes to the next server
/// (`proxy_next_upstream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextUpstream {
    /// Connection errors and errors while sending/reading the header.
    pub error: bool,
    /// Connect or read timeouts.
    pub timeout: bool,
    /// An invalid response header.
    pub invalid_header: bool,
    /// Retry on these statuses.
    pub http_500: bool,
    /// Retry on 502.
    pub http_502: bool,
    /// Retry on 503.
    pub http_503: bool,
    /// Retry on 504.
    pub http_504: bool,
    /// Retry on 429.
    pub http_429: bool,
    /// Also retry POST/PATCH/LOCK after they were sent.
    pub non_idempotent: bool,
}

impl Default for NextUpstream {
    /// nginx's default: `error timeout`.
    fn default() -> Self {
        NextUpstream {
            error: true,
            timeout: true,
            invalid_header: true,
            http_500: false,
            http_502: false,
            http_503: false,
            http_504: false,
            http_429: false,
            non_idempotent: false,
        }
    }
}

impl NextUpstream {
    /// Parses nginx's words (`error timeout http_502 ... | off`).
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut n = NextUpstream {
            error: false,
            timeout: false,
            invalid_header: false,
            ..NextUpstream::default()
        };
        let mut off = false;
        for w in words {
            match w {
                "error" => n.error = true,
                "timeout" => n.timeout = true,
                "invalid_header" => n.invalid_header = true,
                "http_500" => n.http_500 = true,
                "http_502" => n.http_502 = true,
                "http_503" => n.http_503 = true,
                "http_504" => n.http_504 = true,
                "http_429" => n.http_429 = true,
                "non_idempotent" => n.non_idempotent = true,
                "off" => off = true,
                other => return Err(format!("invalid value \"{other}\"")),
            }
        }
        if off {
            if n != (NextUpstream {
                error: false,
                timeout: false,
                invalid_header: false,
                ..NextUpstream::default()
            }) {
                return Err("\"off\" cannot be combined with other values".into());
            }
            return Ok(NextUpstream {
                error: false,
                timeout: false,
                invalid_header: false,
                ..NextUpstream::default()
            });
        }
        Ok(n)
    }

    /// Whether a response with this status should go to the next server.
    pub fn retries_status(&self, status: StatusCode) -> bool {
        match status.as_u16() {
            500 => self.http_500,
            502 => self.http_502,
            503 => self.http_503,
            504 => self.http_504,
            429 => self.http_429,
            _ => false,
        }
    }

    /// Whether any status triggers a retry (so responses must be inspected).
    pub fn any_status(&self) -> bool {
        self.http_500 || self.http_502 || self.http_503 || self.http_504 || self.http_429
    }
}

/// Timeouts, limits and retry policy (nginx's `proxy_*` and `client_*`).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `proxy_connect_timeout` (nginx default 60s).
    pub connect_timeout: Duration,
    /// `proxy_read_timeout`: to the response header, and between body reads.
    pub read_timeout: Duration,
    /// `proxy_send_timeout`: between writes of the request body upstream
    /// (flag `--send-timeout`, also `--proxy-send-timeout`).
    pub send_timeout: Duration,
    /// `send_timeout`, the client side: a client that takes no response
    /// bytes (or tunnel bytes) for this long is dropped.
    pub client_send_timeout: Duration,
    /// `keepalive_timeout`: how long an idle client connection (no request
    /// in flight, no bytes) is kept open; 0 turns client keep-alive off.
    pub keepalive_timeout: Duration,
    /// `client_header_timeout`: the whole request head must arrive within it
    /// (for an h2c connection: the preface and its first request).
    pub client_header_timeout: Duration,
    /// `client_body_timeout`: between reads of the request body.
    pub client_body_timeout: Duration,
    /// `client_max_body_size` (0 = unlimited).
    pub client_max_body_size: u64,
    /// Largest request head accepted (`large_client_header_buffers`); → 431.
    pub max_header_size: usize,
    /// `proxy_next_upstream`.
    pub next_upstream: NextUpstream,
    /// `proxy_next_upstream_tries` (0 = as many as there are servers).
    pub next_upstream_tries: u32,
    /// `proxy_next_upstream_timeout` (0 = unlimited).
    pub next_upstream_timeout: Duration,
    /// Request bodies up to this size are buffered so they can be retried;
    /// larger ones stream and get a single attempt once sent.
    pub retry_buffer_size: u64,
    /// What `X-Forwarded-For` carries upstream.
    pub forwarded_for: ForwardedFor,
}

/// `X-Forwarded-For` upstream, in nginx's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedFor {
    /// `$proxy_add_x_forwarded_for`: the client's list, then its address.
    #[default]
    Append,
    /// `$remote_addr`: only the client's address; a list the client sent is
    /// dropped (for a balancer facing clients directly, whose lists could
    /// be forged).
    Replace,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            client_send_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            client_header_timeout: Duration::from_secs(60),
            client_body_timeout: Duration::from_secs(60),
            client_max_body_size: 1024 * 1024,
            max_header_size: 32 * 1024,
            next_upstream: NextUpstream::default(),
            next_upstream_tries: 0,
            next_upstream_timeout: Duration::ZERO,
            retry_buffer_size: 64 * 1024,
            forwarded_for: ForwardedFor::Append,
        }
    }
}

/// Active health checks (NGINX Plus's `health_check`).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Path requested (`uri=`).
    pub uri: String,
    /// Time between checks of one server (`interval=`, default 5s).
    pub interval: Duration,
    /// Random extra delay up to this (`jitter=`).
    pub jitter: Duration,
    /// Consecutive failures that mark a server unhealthy (`fails=`).
    pub fails: u32,
    /// Consecutive passes that mark it healthy again (`passes=`).
    pub passes: u32,
    /// Timeout of one check (connect + response).
    pub timeout: Duration,
    /// Accepted statuses, inclusive range (default 200..=399).
    pub status: (u16, u16),
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            uri: "/".into(),
            interval: Duration::from_secs(5),
            jitter: Duration::ZERO,
            fails: 1,
            passes: 1,
            timeout: Duration::from_secs(2),
            status: (200, 399),
        }
    }
}

/// nginx's listen backlog on Linux (`NGX_LISTEN_BACKLOG`).
pub const DEFAULT_BACKLOG: u32 = 511;

/// The most servers one upstream may hold (the per-request "tried" set is a
/// 128-bit mask, so selecting never allocates).
pub const MAX_SERVERS: usize = 128;

impl Config {
    /// A config with defaults around the given upstream servers.
    pub fn new(listen: SocketAddr, servers: Vec<ServerConfig>) -> Self {
        Config {
            listen,
            backlog: DEFAULT_BACKLOG,
            admin: None,
            upstream: UpstreamConfig {
                name: "backend".into(),
                algorithm: Algorithm::RoundRobin,
                servers,
                keepalive: 64,
                queue: None,
            },
            proxy: ProxyConfig::default(),
            health: None,
            upstream_header: false,
            workers: None,
            shutdown_timeout: Duration::from_secs(30),
            source: None,
        }
    }

    /// Checks the rules that do not depend on where a setting came from.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let up = &self.upstream;
        if up.servers.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "no servers are inside upstream \"{}\"",
                up.name
            )));
        }
        if up.servers.len() > MAX_SERVERS {
            return Err(ConfigError::Invalid(format!(
                "too many servers in upstream \"{}\" (at most {MAX_SERVERS})",
                up.name
            )));
        }
        for s in &up.servers {
            if let Some(msg) = server_rule(&up.algorithm, s) {
                return Err(ConfigError::Invalid(msg));
            }
        }
        if let Some(q) = &up.queue {
            if q.size == 0 {
                return Err(ConfigError::Invalid("queue size must be at least 1".into()));
            }
        }
        if let Some(h) = &self.health {
            if !h.uri.starts_with('/') {
                return Err(ConfigError::Invalid(format!(
                    "health check uri \"{}\" must start with \"/\"",
                    h.uri
                )));
            }
            if h.fails == 0 || h.passes == 0 || h.interval.is_zero() {
                return Err(ConfigError::Invalid(
                    "health check interval, fails and passes must be positive".into(),
                ));
            }
        }
        if self.backlog == 0 {
            return Err(ConfigError::Invalid("backlog must be at least 1".into()));
        }
        if self.proxy.max_header_size < 8192 {
            return Err(ConfigError::Invalid(
                "maximum header size must be at least 8k".into(),
            ));
        }
        Ok(())
    }
}

/// nginx's per-server validation: which parameters a method accepts.
pub(crate) fn server_rule(alg: &Algorithm, s: &ServerConfig) -> Option<String> {
    if s.weight == 0 {
        return Some("invalid parameter \"weight=0\"".into());
    }
    if s.backup && !alg.supports_backup() {
        return Some(format!(
            "balancing method \"{}\" does not support parameter \"backup\"",
            alg.directive()
        ));
    }
    if !s.slow_start.is_zero() && !alg.supports_backup() {
        return Some(format!(
            "balancing method \"{}\" does not support parameter \"slow_start\"",
            alg.directive()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys() {
        let k = HashKey::parse("$remote_addr").unwrap();
        assert_eq!(k.parts, vec![KeyPart::RemoteAddr]);
        let k = HashKey::parse("u:$http_x_user_id$uri").unwrap();
        assert_eq!(
            k.parts,
            vec![
                KeyPart::Literal("u:".into()),
                KeyPart::Header(HeaderName::from_static("x-user-id")),
                KeyPart::Uri
            ]
        );
        assert!(HashKey::parse("$nope").is_err());
    }

    #[test]
    fn next_upstream_words() {
        let n = NextUpstream::parse(["error", "http_502"]).unwrap();
        assert!(n.error && n.http_502 && !n.timeout);
        assert!(NextUpstream::parse(["off"]).is_ok());
        assert!(NextUpstream::parse(["off", "error"]).is_err());
        assert!(NextUpstream::parse(["bogus"]).is_err());
    }

    #[test]
    fn backup_refused_with_hash() {
        let mut s = ServerConfig::new("127.0.0.1:1".parse().unwrap());
        s.backup = true;
        assert!(server_rule(&Algorithm::IpHash, &s).is_some());
        assert!(server_rule(&Algorithm::RoundRobin, &s).is_none());
    }
}
