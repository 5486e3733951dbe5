//! The per-user HTTP/1.1 client: one keep-alive connection and a cookie jar.
//!
//! Each simulated user owns a `UserClient`, like a browser session: a single
//! connection made with `hyper::client::conn::http1` (no pool, no locks, no
//! shared state), reopened when the server closes it, and the cookies the
//! server set. A request either yields a response (any status) or a
//! `Failure` of kind `connect`, `timeout` or `io`; the caller decides what a
//! status means.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::{Failure, FailureKind};

/// Where users connect: resolved once per run.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port` as written (for the `Host` header).
    pub host_header: HeaderValue,
    /// The addresses `host:port` resolved to (empty when resolution failed).
    pub addrs: Vec<SocketAddr>,
    /// Why resolution failed, if it did.
    pub resolve_error: Option<String>,
}

impl Endpoint {
    /// Resolves `authority` (`host:port`).
    pub async fn resolve(authority: &str) -> Endpoint {
        let host_header = HeaderValue::from_str(authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        match tokio::net::lookup_host(authority).await {
            Ok(a) => {
                let addrs: Vec<SocketAddr> = a.collect();
                let resolve_error = addrs
                    .is_empty()
                    .then(|| format!("{authority} resolved to no address"));
                Endpoint {
                    host_header,
                    addrs,
                    resolve_error,
                }
            }
            Err(e) => Endpoint {
                host_header,
                addrs: Vec::new(),
                resolve_error: Some(format!("cannot resolve {authority}: {e}")),
            },
        }
    }
}

/// A response as the user loop needs it.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Body, when asked for.
    pub body: Option<Bytes>,
    /// Body size in bytes.
    pub len: u64,
}

/// One user's connection and cookies.
pub struct UserClient {
    endpoint: Arc<Endpoint>,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookies: Vec<(String, String)>,
    cookie_header: Option<HeaderValue>,
    timeout: Duration,
}

fn fail(kind: FailureKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

impl UserClient {
    /// A client with no connection yet.
    pub fn new(endpoint: Arc<Endpoint>, timeout: Duration) -> UserClient {
        UserClient {
            endpoint,
            sender: None,
            cookies: Vec::new(),
            cookie_header: None,
            timeout,
        }
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> &HeaderValue {
        &self.endpoint.host_header
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        if let Some(e) = &self.endpoint.resolve_error {
            return Err(fail(FailureKind::Connect, e.clone()));
        }
        let mut last = None;
        for addr in &self.endpoint.addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| fail(FailureKind::Connect, format!("handshake: {e}")))?;
                    tokio::spawn(async move {
                        // Errors surface on the request side; nothing to do here.
                        let _ = conn.await;
                    });
                    self.sender = Some(sender);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let msg = match last {
            Some(e) => io_message(&e),
            None => "no address to connect to".to_string(),
        };
        Err(fail(FailureKind::Connect, msg))
    }

    /// Sends `req` (origin-form URI; `Host` and cookies are added here) and
    /// reads the whole response within the timeout.
    pub async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        want_body: bool,
    ) -> Result<Response, Failure> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.send_inner(req, want_body)).await {
            Ok(r) => r,
            Err(_) => {
                // The connection may hold a half-read response: start afresh.
                self.sender = None;
                Err(fail(
                    FailureKind::Timeout,
                    format!("no complete response within {}", humantime::format_duration(timeout)),
                ))
            }
        }
    }

    async fn send_inner(
        &mut self,
        mut req: Request<Full<Bytes>>,
        want_body: bool,
    ) -> Result<Response, Failure> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = None;
            self.connect().await?;
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(fail(FailureKind::Connect, "no connection"));
        };
        if sender.ready().await.is_err() {
            self.sender = None;
            self.connect().await?;
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(fail(FailureKind::Connect, "no connection"));
        };
        req.headers_mut()
            .insert(http::header::HOST, self.endpoint.host_header.clone());
        if let Some(c) = &self.cookie_header {
            req.headers_mut().insert(COOKIE, c.clone());
        }
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(fail(FailureKind::Io, hyper_message(&e)));
            }
        };
        let (parts, mut body) = resp.into_parts();
        if parts.headers.contains_key(SET_COOKIE) {
            self.store_cookies(&parts.headers);
        }
        let mut len = 0u64;
        let mut buf = want_body.then(BytesMut::new);
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        len += d.len() as u64;
                        if let Some(b) = buf.as_mut() {
                            b.extend_from_slice(d);
                        }
                    }
                }
                Err(e) => {
                    self.sender = None;
                    return Err(fail(FailureKind::Io, hyper_message(&e)));
                }
            }
        }
        Ok(Response {
            status: parts.status,
            body: buf.map(BytesMut::freeze),
            len,
        })
    }

    fn store_cookies(&mut self, headers: &http::HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            let pair = s.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                continue;
            }
            let expired = s.to_ascii_lowercase().contains("max-age=0");
            self.cookies.retain(|(n, _)| n != name);
            if !expired {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        let joined = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        self.cookie_header = if joined.is_empty() {
            None
        } else {
            HeaderValue::from_str(&joined).ok()
        };
    }

    /// The cookies the server set, `(name, value)`.
    pub fn cookies(&self) -> &[(String, String)] {
        &self.cookies
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connect timed out".into(),
        _ => e.to_string(),
    }
}

fn hyper_message(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "connection closed before the response was complete".into()
    } else if e.is_canceled() || e.is_closed() {
        "connection closed".into()
    } else if e.is_parse() {
        format!("invalid HTTP response: {e}")
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        msg
    }
}
