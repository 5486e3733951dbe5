//! A parser for the subset of nginx's configuration language the balancer
//! implements, so that the tutorial's `upstream`/`server` blocks paste in and
//! work. It tokenizes (quotes, `#` comments, line numbers), builds a directive
//! tree, then interprets it context by context. Anything we do not implement
//! is an error naming the file, line and directive, and nginx's own validation
//! rules apply (`backup` is refused with `hash`, `ip_hash` and `random`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use http::StatusCode;

use super::units::{parse_number, parse_size, parse_time};
use super::{
    server_rule, Algorithm, Config, ConfigError, ForwardedFor, HashKey, HealthConfig,
    LeastTimeMode, NextUpstream, ProxyConfig, QueueConfig, ServerConfig, UpstreamConfig,
};

/// One directive: `name args... ;` or `name args... { block }`.
#[derive(Debug)]
struct Directive {
    name: String,
    args: Vec<String>,
    line: usize,
    block: Option<Vec<Directive>>,
}

/// Reads and parses a config file.
pub fn parse_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        file: file.clone(),
        cause,
    })?;
    let mut config = parse_str(&text, &file)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Parses config text; `file` is used in error messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let p = Parser { file };
    let tokens = p.tokenize(text)?;
    let mut pos = 0;
    let tree = p.block(&tokens, &mut pos, false)?;
    p.interpret(tree)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Semi,
}

struct Parser<'a> {
    file: &'a str,
}

/// Settings gathered from http/server/location levels before the final config.
#[derive(Default)]
struct Gathered {
    listen: Option<SocketAddr>,
    backlog: Option<u32>,
    proxy_pass: Option<(String, usize)>,
    upstream_header: bool,
    health: Option<HealthConfig>,
    workers: Option<usize>,
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, msg: impl Into<String>) -> ConfigError {
        ConfigError::At {
            file: self.file.to_string(),
            line,
            msg: msg.into(),
        }
    }

    fn tokenize(&self, text: &str) -> Result<Vec<(Tok, usize)>, ConfigError> {
        let mut out = Vec::new();
        let mut line = 1;
        let mut chars = text.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                '\n' => {
                    line += 1;
                    chars.next();
                }
                c if c.is_whitespace() => {
                    chars.next();
                }
                '#' => {
                    while let Some(&c) = chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        chars.next();
                    }
                }
                '{' => {
                    out.push((Tok::Open, line));
                    chars.next();
                }
                '}' => {
                    out.push((Tok::Close, line));
                    chars.next();
                }
                ';' => {
                    out.push((Tok::Semi, line));
                    chars.next();
                }
                '"' | '\'' => {
                    let quote = c;
                    let start = line;
                    chars.next();
                    let mut word = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(self.err(start, "unexpected end of file")),
                            Some('\\') => match chars.next() {
                                Some('n') => word.push('\n'),
                                Some('t') => word.push('\t'),
                                Some(c) => word.push(c),
                                None => return Err(self.err(start, "unexpected end of file")),
                            },
                            Some(c) if c == quote => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                word.push(c)
                            }
                        }
                    }
                    out.push((Tok::Word(word), start));
                }
                _ => {
                    let mut word = String::new();
                    while let Some(&c) = chars.peek() {
                        if c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"' | '\'') {
                            break;
                        }
                        word.push(c);
                        chars.next();
                    }
                    out.push((Tok::Word(word), line));
                }
            }
        }
        Ok(out)
    }

    fn block(
        &self,
        toks: &[(Tok, usize)],
        pos: &mut usize,
        nested: bool,
    ) -> Result<Vec<Directive>, ConfigError> {
        let mut out = Vec::new();
        loop {
            let Some((tok, line)) = toks.get(*pos) else {
                if nested {
                    let line = toks.last().map_or(1, |t| t.1);
                    return Err(self.err(line, "unexpected end of file, expecting \"}\""));
                }
                return Ok(out);
            };
            let line = *line;
            match tok {
                Tok::Close => {
                    if !nested {
                        return Err(self.err(line, "unexpected \"}\""));
                    }
                    *pos += 1;
                    return Ok(out);
                }
                Tok::Open => return Err(self.err(line, "unexpected \"{\"")),
                Tok::Semi => return Err(self.err(line, "unexpected \";\"")),
                Tok::Word(name) => {
                    *pos += 1;
                    let mut args = Vec::new();
                    loop {
                        match toks.get(*pos) {
                            Some((Tok::Word(w), _)) => {
                                args.push(w.clone());
                                *pos += 1;
                            }
                            Some((Tok::Semi, _)) => {
                                *pos += 1;
                                out.push(Directive {
                                    name: name.clone(),
                                    args,
                                    line,
                                    block: None,
                                });
                                break;
                            }
                            Some((Tok::Open, _)) => {
                                *pos += 1;
                                let block = self.block(toks, pos, true)?;
                                out.push(Directive {
                                    name: name.clone(),
                                    args,
                                    line,
                                    block: Some(block),
                                });
                                break;
                            }
                            Some((Tok::Close, l)) => {
                                return Err(self.err(*l, "unexpected \"}\""));
                            }
                            None => {
                                return Err(self
                                    .err(line, "unexpected end of file, expecting \";\" or \"}\""))
                            }
                        }
                    }
                }
            }
        }
    }

    fn expect_block<'d>(&self, d: &'d Directive) -> Result<&'d [Directive], ConfigError> {
        d.block.as_deref().ok_or_else(|| {
            self.err(
                d.line,
                format!("directive \"{}\" has no opening \"{{\"", d.name),
            )
        })
    }

    fn no_block(&self, d: &Directive) -> Result<(), ConfigError> {
        if d.block.is_some() {
            return Err(self.err(
                d.line,
                format!("directive \"{}\" is not terminated by \";\"", d.name),
            ));
        }
        Ok(())
    }

    fn nargs(&self, d: &Directive, min: usize, max: usize) -> Result<(), ConfigError> {
        self.no_block(d)?;
        if d.args.len() < min || d.args.len() > max {
            return Err(self.err(
                d.line,
                format!("invalid number of arguments in \"{}\" directive", d.name),
            ));
        }
        Ok(())
    }

    fn unknown(&self, d: &Directive) -> ConfigError {
        self.err(
            d.line,
            format!("unknown or unsupported directive \"{}\"", d.name),
        )
    }

    fn interpret(&self, tree: Vec<Directive>) -> Result<Config, ConfigError> {
        let mut upstreams: Vec<(UpstreamConfig, usize)> = Vec::new();
        let mut proxy = ProxyConfig::default();
        let mut g = Gathered::default();
        let mut servers_seen = 0usize;
        for d in &tree {
            match d.name.as_str() {
                "worker_processes" => {
                    self.nargs(d, 1, 1)?;
                    g.workers = self.workers(d)?;
                }
                "events" => self.events(self.expect_block(d)?)?,
                // Process settings of nginx's master; the balancer is one
                // process run by whoever starts it (no pid file, logs on
                // stderr). `user` is refused: silently keeping root
                // privileges would be a surprise.
                "daemon" | "master_process" => self.no_block(d)?,
                "pid" | "error_log" => {
                    self.no_block(d)?;
                    tracing::warn!(
                        "{}:{}: \"{}\" is ignored (the balancer writes no pid file and logs to stderr)",
                        self.file,
                        d.line,
                        d.name
                    );
                }
                "user" => {
                    return Err(self.err(
                        d.line,
                        "\"user\" is not supported: the balancer runs as the user that starts it",
                    ))
                }
                "http" => {
                    for h in self.expect_block(d)? {
                        self.http_level(h, &mut upstreams, &mut proxy, &mut g, &mut servers_seen)?;
                    }
                }
                _ => self.http_level(d, &mut upstreams, &mut proxy, &mut g, &mut servers_seen)?,
            }
        }
        let (target, target_line) = g
            .proxy_pass
            .clone()
            .ok_or_else(|| ConfigError::Invalid(format!(
                "no \"proxy_pass\" in {}: a server {{ location / {{ proxy_pass http://NAME; }} }} block is required",
                self.file
            )))?;
        let upstream = match upstreams.iter().position(|(u, _)| u.name == target) {
            Some(i) => upstreams.swap_remove(i).0,
            None => {
                // `proxy_pass http://host:port` without an upstream block.
                let addr = resolve(&target).map_err(|_| {
                    self.err(
                        target_line,
                        format!("host not found in upstream \"{target}\""),
                    )
                })?;
                UpstreamConfig {
                    name: target.clone(),
                    algorithm: Algorithm::RoundRobin,
                    servers: vec![ServerConfig::new(addr)],
                    keepalive: 64,
                    queue: None,
                }
            }
        };
        let mut config = Config::new(
            g.listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 80))),
            Vec::new(),
        );
        config.upstream = upstream;
        config.proxy = proxy;
        config.health = g.health;
        config.upstream_header = g.upstream_header;
        config.workers = g.workers;
        if let Some(b) = g.backlog {
            config.backlog = b;
        }
        config.validate()?;
        Ok(config)
    }

    fn workers(&self, d: &Directive) -> Result<Option<usize>, ConfigError> {
        if d.args[0] == "auto" {
            return Ok(None);
        }
        match d.args[0].parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(self.err(
                d.line,
                format!("invalid value \"{}\" in \"worker_processes\"", d.args[0]),
            )),
        }
    }

    fn events(&self, block: &[Directive]) -> Result<(), ConfigError> {
        for d in block {
            match d.name.as_str() {
                "worker_connections" | "multi_accept" | "use" => self.no_block(d)?,
                _ => return Err(self.unknown(d)),
            }
        }
        Ok(())
    }

    fn http_level(
        &self,
        d: &Directive,
        upstreams: &mut Vec<(UpstreamConfig, usize)>,
        proxy: &mut ProxyConfig,
        g: &mut Gathered,
        servers_seen: &mut usize,
    ) -> Result<(), ConfigError> {
        match d.name.as_str() {
            "upstream" => {
                if d.args.len() != 1 {
                    return Err(self.err(
                        d.line,
                        "invalid number of arguments in \"upstream\" directive",
                    ));
                }
                if upstreams.iter().any(|(u, _)| u.name == d.args[0]) {
                    return Err(self.err(d.line, format!("duplicate upstream \"{}\"", d.args[0])));
                }
                let u = self.upstream(&d.args[0], self.expect_block(d)?, d.line)?;
                upstreams.push((u, d.line));
            }
            "server" => {
                *servers_seen += 1;
                if *servers_seen > 1 {
                    return Err(self.err(d.line, "only one \"server\" block is supported"));
                }
                for s in self.expect_block(d)? {
                    self.server_level(s, proxy, g)?;
                }
            }
            // Harmless http-level settings with no meaning for this proxy.
            "sendfile" | "tcp_nopush" | "tcp_nodelay" | "access_log" | "error_log"
            | "server_tokens" | "default_type" => self.no_block(d)?,
            _ => {
                if !self.proxy_setting(d, proxy, g)? {
                    return Err(self.unknown(d));
                }
            }
        }
        Ok(())
    }

    fn server_level(
        &self,
        d: &Directive,
        proxy: &mut ProxyConfig,
        g: &mut Gathered,
    ) -> Result<(), ConfigError> {
        match d.name.as_str() {
            "listen" => {
                self.no_block(d)?;
                if d.args.is_empty() {
                    return Err(self.err(
                        d.line,
                        "invalid number of arguments in \"listen\" directive",
                    ));
                }
                if g.listen.is_some() {
                    return Err(self.err(d.line, "only one \"listen\" is supported"));
                }
                for extra in &d.args[1..] {
                    g.backlog = Some(self.listen_param(d, extra)?);
                }
                g.listen = Some(parse_listen(&d.args[0]).ok_or_else(|| {
                    self.err(d.line, format!("invalid listen address \"{}\"", d.args[0]))
                })?);
            }
            "server_name" | "access_log" | "error_log" => self.no_block(d)?,
            "location" => {
                if d.args.len() != 1 || d.args[0] != "/" {
                    return Err(self.err(d.line, "only \"location /\" is supported"));
                }
                if g.proxy_pass.is_some() {
                    return Err(self.err(d.line, "duplicate location \"/\""));
                }
                for l in self.expect_block(d)? {
                    self.location_level(l, proxy, g)?;
                }
                if g.proxy_pass.is_none() {
                    return Err(self.err(d.line, "\"location /\" has no \"proxy_pass\""));
                }
            }
            _ => {
                if !self.proxy_setting(d, proxy, g)? {
                    return Err(self.unknown(d));
                }
            }
        }
        Ok(())
    }

    fn location_level(
        &self,
        d: &Directive,
        proxy: &mut ProxyConfig,
        g: &mut Gathered,
    ) -> Result<(), ConfigError> {
        match d.name.as_str() {
            "proxy_pass" => {
                self.nargs(d, 1, 1)?;
                let target = d.args[0].strip_prefix("http://").ok_or_else(|| {
                    self.err(
                        d.line,
                        format!(
                            "invalid URL prefix in \"{}\" (only http:// is supported)",
                            d.args[0]
                        ),
                    )
                })?;
                let target = target.trim_end_matches('/');
                if target.contains('/') || target.is_empty() {
                    return Err(self.err(d.line, "a URI part in \"proxy_pass\" is not supported"));
                }
                g.proxy_pass = Some((target.to_string(), d.line));
            }
            "health_check" => {
                self.no_block(d)?;
                let mut h = HealthConfig::default();
                for a in &d.args {
                    let (k, v) = a
                        .split_once('=')
                        .ok_or_else(|| self.err(d.line, format!("invalid parameter \"{a}\"")))?;
                    let bad = |m: String| self.err(d.line, m);
                    match k {
                        "interval" => h.interval = parse_time(v).map_err(bad)?,
                        "jitter" => h.jitter = parse_time(v).map_err(bad)?,
                        "fails" => h.fails = parse_number("fails", v).map_err(bad)?,
                        "passes" => h.passes = parse_number("passes", v).map_err(bad)?,
                        "uri" => h.uri = v.to_string(),
                        "timeout" => h.timeout = parse_time(v).map_err(bad)?,
                        _ => return Err(self.err(d.line, format!("invalid parameter \"{a}\""))),
                    }
                }
                if h.fails == 0 || h.passes == 0 || h.interval.is_zero() {
                    return Err(self.err(d.line, "invalid health_check parameters"));
                }
                g.health = Some(h);
            }
            _ => {
                if !self.proxy_setting(d, proxy, g)? {
                    return Err(self.unknown(d));
                }
            }
        }
        Ok(())
    }

    /// A `listen` parameter: `backlog=N` is the one supported.
    fn listen_param(&self, d: &Directive, param: &str) -> Result<u32, ConfigError> {
        match param.strip_prefix("backlog=") {
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.err(d.line, format!("invalid backlog \"{v}\""))),
            },
            None => Err(self.err(
                d.line,
                format!("invalid parameter \"{param}\" (of the listen options only backlog=N is supported; no TLS)"),
            )),
        }
    }

    /// The `proxy_*`/`client_*` settings valid at http, server and location
    /// level. Returns false when `d` is none of them.
    fn proxy_setting(
        &self,
        d: &Directive,
        p: &mut ProxyConfig,
        g: &mut Gathered,
    ) -> Result<bool, ConfigError> {
        if self.limit_setting(d, p)? {
            return Ok(true);
        }
        self.header_setting(d, p, g)
    }

    /// Timeouts, sizes and the retry policy. Returns false when `d` is none
    /// of them.
    fn limit_setting(&self, d: &Directive, p: &mut ProxyConfig) -> Result<bool, ConfigError> {
        let time = |d: &Directive| -> Result<Duration, ConfigError> {
            self.nargs(d, 1, 1)?;
            parse_time(&d.args[0]).map_err(|m| self.err(d.line, m))
        };
        let size = |d: &Directive| -> Result<u64, ConfigError> {
            self.nargs(d, 1, 1)?;
            parse_size(&d.args[0]).map_err(|m| self.err(d.line, m))
        };
        match d.name.as_str() {
            "proxy_connect_timeout" => p.connect_timeout = time(d)?,
            "proxy_read_timeout" => p.read_timeout = time(d)?,
            "proxy_send_timeout" => p.send_timeout = time(d)?,
            // nginx's words: `send_timeout` is the client side.
            "send_timeout" => p.client_send_timeout = time(d)?,
            "keepalive_timeout" => {
                // The second argument (the `Keep-Alive: timeout=` header
                // nginx may send) is accepted and not sent.
                self.nargs(d, 1, 2)?;
                p.keepalive_timeout = parse_time(&d.args[0]).map_err(|m| self.err(d.line, m))?;
            }
            "client_header_timeout" => p.client_header_timeout = time(d)?,
            "client_body_timeout" => p.client_body_timeout = time(d)?,
            "client_max_body_size" => p.client_max_body_size = size(d)?,
            "proxy_next_upstream_timeout" => p.next_upstream_timeout = time(d)?,
            "proxy_next_upstream_tries" => {
                self.nargs(d, 1, 1)?;
                p.next_upstream_tries =
                    parse_number("tries", &d.args[0]).map_err(|m| self.err(d.line, m))?;
            }
            "proxy_next_upstream" => {
                self.nargs(d, 1, 16)?;
                p.next_upstream = NextUpstream::parse(d.args.iter().map(String::as_str))
                    .map_err(|m| self.err(d.line, m))?;
            }
            "large_client_header_buffers" => {
                self.nargs(d, 2, 2)?;
                let n = parse_number("number", &d.args[0]).map_err(|m| self.err(d.line, m))?;
                let sz = parse_size(&d.args[1]).map_err(|m| self.err(d.line, m))?;
                p.max_header_size = (n as u64 * sz).max(8192) as usize;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The protocol and header settings. Returns false when `d` is none of
    /// them.
    fn header_setting(
        &self,
        d: &Directive,
        p: &mut ProxyConfig,
        g: &mut Gathered,
    ) -> Result<bool, ConfigError> {
        match d.name.as_str() {
            "proxy_http_version" => {
                self.nargs(d, 1, 1)?;
                if d.args[0] != "1.1" {
                    return Err(self.err(
                        d.line,
                        format!(
                            "unsupported \"proxy_http_version {}\": the balancer speaks HTTP/1.1 to upstreams",
                            d.args[0]
                        ),
                    ));
                }
            }
            "proxy_buffering" | "proxy_request_buffering" => self.nargs(d, 1, 1)?,
            "proxy_set_header" => {
                // The headers a reverse proxy sets anyway are accepted as
                // written in the usual recipes; other rewrites are not
                // implemented.
                self.nargs(d, 2, 2)?;
                let ok = match d.args[0].to_ascii_lowercase().as_str() {
                    "host" => matches!(d.args[1].as_str(), "$host" | "$http_host"),
                    "connection" => {
                        matches!(d.args[1].as_str(), "" | "upgrade" | "$connection_upgrade")
                    }
                    "upgrade" => d.args[1] == "$http_upgrade",
                    "x-forwarded-for" => match d.args[1].as_str() {
                        "$proxy_add_x_forwarded_for" => {
                            p.forwarded_for = ForwardedFor::Append;
                            true
                        }
                        "$remote_addr" => {
                            p.forwarded_for = ForwardedFor::Replace;
                            true
                        }
                        _ => false,
                    },
                    "x-real-ip" => d.args[1] == "$remote_addr",
                    "x-forwarded-proto" => d.args[1] == "$scheme",
                    _ => false,
                };
                if !ok {
                    return Err(self.err(
                        d.line,
                        format!(
                            "unsupported \"proxy_set_header {} {}\"",
                            d.args[0],
                            quoted_if_needed(&d.args[1])
                        ),
                    ));
                }
            }
            "add_header" => {
                self.nargs(d, 2, 3)?;
                if d.args[0].eq_ignore_ascii_case("x-upstream") && d.args[1] == "$upstream_addr" {
                    g.upstream_header = true;
                } else {
                    return Err(self.err(
                        d.line,
                        "only \"add_header X-Upstream $upstream_addr\" is supported",
                    ));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn upstream(
        &self,
        name: &str,
        block: &[Directive],
        line: usize,
    ) -> Result<UpstreamConfig, ConfigError> {
        let mut u = UpstreamConfig {
            name: name.to_string(),
            algorithm: Algorithm::RoundRobin,
            servers: Vec::new(),
            keepalive: 64,
            queue: None,
        };
        let mut server_lines = Vec::new();
        let mut method_line = None;
        for d in block {
            match d.name.as_str() {
                "server" => {
                    self.no_block(d)?;
                    let s = self.server(d)?;
                    u.servers.push(s);
                    server_lines.push(d.line);
                }
                "keepalive" => {
                    self.nargs(d, 1, 1)?;
                    let n =
                        parse_number("keepalive", &d.args[0]).map_err(|m| self.err(d.line, m))?;
                    if n == 0 {
                        return Err(self.err(
                            d.line,
                            format!("invalid value \"{}\" in \"keepalive\" directive", d.args[0]),
                        ));
                    }
                    u.keepalive = n as usize;
                }
                "queue" => u.queue = Some(self.queue(d)?),
                "zone" | "keepalive_timeout" | "keepalive_requests" => self.no_block(d)?,
                _ => {
                    let method = self.method(d)?.ok_or_else(|| self.unknown(d))?;
                    if method_line.is_some() {
                        tracing::warn!(
                            "load balancing method redefined in {}:{}",
                            self.file,
                            d.line
                        );
                    }
                    method_line = Some(d.line);
                    u.algorithm = method;
                }
            }
        }
        if u.servers.is_empty() {
            return Err(self.err(line, format!("no servers are inside upstream \"{name}\"")));
        }
        for (s, l) in u.servers.iter().zip(&server_lines) {
            if let Some(msg) = server_rule(&u.algorithm, s) {
                return Err(self.err(*l, msg));
            }
        }
        Ok(u)
    }

    /// A balancing-method directive (`least_conn;`, `hash KEY consistent;`,
    /// ...); `None` when `d` is not one.
    fn method(&self, d: &Directive) -> Result<Option<Algorithm>, ConfigError> {
        Ok(Some(match d.name.as_str() {
            "least_conn" => {
                self.nargs(d, 0, 0)?;
                Algorithm::LeastConn
            }
            "ip_hash" => {
                self.nargs(d, 0, 0)?;
                Algorithm::IpHash
            }
            "hash" => {
                self.nargs(d, 1, 2)?;
                let consistent = match d.args.get(1).map(String::as_str) {
                    None => false,
                    Some("consistent") => true,
                    Some(other) => {
                        return Err(self.err(d.line, format!("invalid parameter \"{other}\"")))
                    }
                };
                let key = HashKey::parse(&d.args[0]).map_err(|m| self.err(d.line, m))?;
                Algorithm::Hash { key, consistent }
            }
            "random" => {
                self.nargs(d, 0, 2)?;
                match d.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    [] => Algorithm::Random { two: false },
                    ["two"] | ["two", "least_conn"] => Algorithm::Random { two: true },
                    _ => {
                        return Err(self.err(
                            d.line,
                            format!("invalid parameter \"{}\"", d.args.join(" ")),
                        ))
                    }
                }
            }
            "least_time" => {
                self.nargs(d, 1, 2)?;
                if let Some(p) = d.args.get(1) {
                    if p != "inflight" {
                        return Err(self.err(d.line, format!("invalid parameter \"{p}\"")));
                    }
                }
                match d.args[0].as_str() {
                    "header" => Algorithm::LeastTime(LeastTimeMode::Header),
                    "last_byte" => Algorithm::LeastTime(LeastTimeMode::LastByte),
                    other => return Err(self.err(d.line, format!("invalid parameter \"{other}\""))),
                }
            }
            "p2c_ewma" => {
                self.nargs(d, 0, 0)?;
                Algorithm::P2cEwma
            }
            _ => return Ok(None),
        }))
    }

    fn queue(&self, d: &Directive) -> Result<QueueConfig, ConfigError> {
        self.nargs(d, 1, 4)?;
        let size = parse_number("queue", &d.args[0]).map_err(|m| self.err(d.line, m))?;
        if size == 0 {
            return Err(self.err(d.line, format!("invalid value \"{}\"", d.args[0])));
        }
        let mut q = QueueConfig {
            size: size as usize,
            timeout: Duration::from_secs(60),
            reject_status: StatusCode::BAD_GATEWAY,
            retry_after: None,
        };
        for a in &d.args[1..] {
            let bad = |m: String| self.err(d.line, m);
            match a.split_once('=') {
                Some(("timeout", v)) => q.timeout = parse_time(v).map_err(bad)?,
                // Extensions (not in NGINX Plus): reject with 503 + Retry-After.
                Some(("status", "502")) => q.reject_status = StatusCode::BAD_GATEWAY,
                Some(("status", "503")) => q.reject_status = StatusCode::SERVICE_UNAVAILABLE,
                Some(("retry_after", v)) => {
                    q.retry_after = Some(parse_time(v).map_err(bad)?.as_secs() as u32)
                }
                _ => return Err(self.err(d.line, format!("invalid parameter \"{a}\""))),
            }
        }
        Ok(q)
    }

    fn server(&self, d: &Directive) -> Result<ServerConfig, ConfigError> {
        let Some(addr) = d.args.first() else {
            return Err(self.err(
                d.line,
                "invalid number of arguments in \"server\" directive",
            ));
        };
        let addr =
            resolve(addr).map_err(|m| self.err(d.line, format!("{m} in upstream \"{addr}\"")))?;
        let mut s = ServerConfig::new(addr);
        for a in &d.args[1..] {
            apply_server_param(&mut s, a).map_err(|m| self.err(d.line, m))?;
        }
        Ok(s)
    }
}

/// Applies one `server` parameter (`weight=2`, `backup`, ...). Shared with
/// the `--upstream ADDR,weight=2,...` flag.
pub fn apply_server_param(s: &mut ServerConfig, a: &str) -> Result<(), String> {
    match a.split_once('=') {
        None => match a {
            "backup" => s.backup = true,
            "down" => s.down = true,
            _ => return Err(format!("invalid parameter \"{a}\"")),
        },
        Some((k, v)) => match k {
            "weight" => {
                s.weight = parse_number("weight", v)?;
                if s.weight == 0 {
                    return Err(format!("invalid parameter \"{a}\""));
                }
            }
            "max_conns" => s.max_conns = parse_number("max_conns", v)?,
            "max_fails" => s.max_fails = parse_number("max_fails", v)?,
            "fail_timeout" => s.fail_timeout = parse_time(v)?,
            "slow_start" => s.slow_start = parse_time(v)?,
            _ => return Err(format!("invalid parameter \"{a}\"")),
        },
    }
    Ok(())
}

/// An argument as it would be written in the file: quoted when empty or
/// holding spaces.
fn quoted_if_needed(arg: &str) -> String {
    if arg.is_empty() || arg.contains(char::is_whitespace) {
        format!("\"{arg}\"")
    } else {
        arg.to_string()
    }
}

/// Resolves `host[:port]` (port 80 when absent, as nginx). A name with
/// several addresses uses the first IPv4 one (nginx would add them all).
pub fn resolve(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if s.starts_with("unix:") {
        return Err("unix sockets are not supported".into());
    }
    // `host:port` unless the colon is inside an IPv6 literal.
    let port = s
        .rsplit_once(':')
        .filter(|(h, _)| !h.contains(':') || h.ends_with(']'));
    let with_port = match port {
        Some((_, p)) if p.parse::<u16>().is_ok() => s.to_string(),
        Some((_, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("invalid port \"{p}\""));
        }
        _ => format!("{s}:80"),
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|_| "host not found".to_string())?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| "host not found".to_string())
}

/// nginx `listen` forms: `8080`, `127.0.0.1:8080`, `[::1]:8080`, `*:8080`.
fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Some(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Some(port) = s.strip_prefix("*:") {
        return Some(SocketAddr::from(([0, 0, 0, 0], port.parse().ok()?)));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        return Some(SocketAddr::from(([127, 0, 0, 1], port.parse().ok()?)));
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        parse_str(s, "test.conf")
    }

    #[test]
    fn tutorial_config() {
        let c = parse(
            "http {\n upstream myapp1 {\n least_conn; # type\n server 127.0.0.1:3000 max_conns=200;\n server 127.0.0.1:5000 max_conns=900;\n server 127.0.0.1:6000;\n queue 160 timeout=80;\n }\n server {\n listen 8080;\n server_name localhost.com;\n location / {\n proxy_pass http://myapp1;\n }\n }\n}\n",
        )
        .unwrap();
        assert_eq!(c.upstream.algorithm, Algorithm::LeastConn);
        assert_eq!(c.upstream.servers.len(), 3);
        assert_eq!(c.upstream.servers[0].max_conns, 200);
        let q = c.upstream.queue.unwrap();
        assert_eq!((q.size, q.timeout), (160, Duration::from_secs(80)));
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
    }

    #[test]
    fn unknown_directive_names_file_and_line() {
        let e = parse("upstream b {\n server 127.0.0.1:1;\n sticky cookie;\n}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown or unsupported directive \"sticky\" in test.conf:3"
        );
    }

    #[test]
    fn backup_with_ip_hash_is_refused() {
        let e = parse(
            "upstream b {\n ip_hash;\n server 127.0.0.1:1;\n server 127.0.0.1:2 backup;\n}\nserver { listen 1; location / { proxy_pass http://b; } }",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not support parameter \"backup\""), "{e}");
        assert!(e.ends_with("test.conf:4"), "{e}");
    }

    #[test]
    fn syntax_errors() {
        let e = parse("upstream b {\n server 127.0.0.1:1\n}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unexpected \"}\"") && e.ends_with(":3"), "{e}");
        let e = parse("upstream b {\n server 127.0.0.1:1;\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unexpected end of file"), "{e}");
        let e = parse("upstream b {\n server 127.0.0.1:1 weight=x;\n}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid weight value") && e.ends_with(":2"),
            "{e}"
        );
        let e = parse("upstream b {\n}\n").unwrap_err().to_string();
        assert!(e.contains("no servers are inside upstream"), "{e}");
    }

    /// What a stock nginx file may hold that the balancer cannot honour is
    /// refused with the line; the forwarding choice it can honour is kept.
    #[test]
    fn client_timeouts_and_backlog() {
        const TAIL: &str = "upstream b {\n server 127.0.0.1:1;\n}\n";
        let c = parse(&format!(
            "http {{\n{TAIL}keepalive_timeout 30s 20s;\nsend_timeout 7s;\nserver {{ listen 127.0.0.1:8080 backlog=1024; location / {{ proxy_pass http://b; proxy_send_timeout 9s; }} }}\n}}"
        ))
        .unwrap();
        assert_eq!(c.proxy.keepalive_timeout, Duration::from_secs(30));
        assert_eq!(c.proxy.client_send_timeout, Duration::from_secs(7));
        assert_eq!(c.proxy.send_timeout, Duration::from_secs(9));
        assert_eq!(c.backlog, 1024);
        let c = parse(&format!(
            "{TAIL}server {{ listen 1; location / {{ proxy_pass http://b; }} }}"
        ))
        .unwrap();
        assert_eq!(c.backlog, 511);
        assert_eq!(c.proxy.keepalive_timeout, Duration::from_secs(75));
        assert_eq!(c.proxy.client_send_timeout, Duration::from_secs(60));
        let e = parse(&format!(
            "{TAIL}server {{ listen 1 backlog=x; location / {{ proxy_pass http://b; }} }}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("invalid backlog \"x\""), "{e}");
        let e = parse(&format!(
            "{TAIL}server {{ listen 1 ssl; location / {{ proxy_pass http://b; }} }}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("invalid parameter \"ssl\""), "{e}");
    }

    #[test]
    fn process_and_proxy_directives() {
        const TAIL: &str = "upstream b {\n server 127.0.0.1:1;\n}\n";
        let err = |text: &str| parse(text).unwrap_err().to_string();
        let e = err(&format!("user www-data;\n{TAIL}"));
        assert!(
            e.starts_with("\"user\" is not supported") && e.ends_with(":1"),
            "{e}"
        );
        let e = err("upstream b {\n server unix:/tmp/app.sock;\n}\n");
        assert!(
            e.starts_with("unix sockets are not supported") && e.ends_with(":2"),
            "{e}"
        );
        let e = err("upstream b {\n server 127.0.0.1:99999;\n}\n");
        assert!(
            e.starts_with("invalid port \"99999\"") && e.ends_with(":2"),
            "{e}"
        );
        let loc = |line: &str| {
            format!("{TAIL}server {{ listen 1; location / {{ proxy_pass http://b; {line} }} }}")
        };
        let e = err(&loc("proxy_http_version 1.0;"));
        assert!(e.contains("speaks HTTP/1.1 to upstreams"), "{e}");
        let e = err(&loc("proxy_set_header Via \"\";"));
        assert!(
            e.starts_with("unsupported \"proxy_set_header Via \"\"\""),
            "{e}"
        );
        let c = parse(&loc("proxy_set_header X-Forwarded-For $remote_addr;")).unwrap();
        assert_eq!(c.proxy.forwarded_for, ForwardedFor::Replace);
        let c = parse(&format!(
            "pid /run/x.pid;\nerror_log /dev/null;\n{}",
            loc("")
        ))
        .unwrap();
        assert_eq!(c.proxy.forwarded_for, ForwardedFor::Append);
    }

    #[test]
    fn all_methods_and_params() {
        let c = parse(
            "worker_processes 1;\nevents { worker_connections 1024; }\nhttp {\nupstream b {\n hash $request_uri consistent;\n server 127.0.0.1:1 weight=3 max_fails=2 fail_timeout=5s;\n server localhost:2 down;\n keepalive 16;\n}\nserver { listen 127.0.0.1:9000; location / { proxy_pass http://b; proxy_next_upstream error timeout http_502; health_check interval=1s uri=/healthz fails=2 passes=3; add_header X-Upstream $upstream_addr; } }\n}",
        )
        .unwrap();
        assert!(matches!(
            c.upstream.algorithm,
            Algorithm::Hash {
                consistent: true,
                ..
            }
        ));
        assert_eq!(c.upstream.servers[0].weight, 3);
        assert!(c.upstream.servers[1].down);
        assert_eq!(c.upstream.keepalive, 16);
        assert_eq!(c.workers, Some(1));
        assert!(c.upstream_header);
        assert!(c.proxy.next_upstream.http_502);
        let h = c.health.unwrap();
        assert_eq!((h.uri.as_str(), h.fails, h.passes), ("/healthz", 2, 3));
        for (text, alg) in [
            ("random two least_conn;", Algorithm::Random { two: true }),
            (
                "least_time last_byte;",
                Algorithm::LeastTime(LeastTimeMode::LastByte),
            ),
            ("ip_hash;", Algorithm::IpHash),
        ] {
            let c = parse(&format!(
                "upstream b {{ {text} server 127.0.0.1:1; }} server {{ listen 1; location / {{ proxy_pass http://b; }} }}"
            ))
            .unwrap();
            assert_eq!(c.upstream.algorithm, alg);
        }
    }
}
