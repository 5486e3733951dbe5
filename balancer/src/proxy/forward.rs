//! Header hygiene of a reverse proxy, in both directions: hop-by-hop headers
//! (RFC 9110 §7.6.1, plus any named in `Connection`) are stripped,
//! `X-Forwarded-For` is appended to, `X-Real-IP` and `X-Forwarded-Proto` are
//! set, `Via` is added, `Host` is preserved (taken from the `:authority` of
//! an HTTP/2 request, or from an absolute-form request target, which RFC
//! 9112 §3.2.2 says wins over the `Host` header). `Expect` is not sent on,
//! as nginx does: the balancer answers `100 Continue` itself, and an
//! upstream would otherwise answer it too. WebSocket upgrades keep `Upgrade` and get
//! `Connection: upgrade`. Values that do not depend on the request are
//! built once (per process or per connection).
//!
//! The request side is applied while the head is written upstream
//! ([`write_request_head`]): the client's head is never modified, so a
//! retry needs no copy of it, and no header map is edited per request.

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, response, Version};

use super::h1::{self, write_framing, SendFraming};
use crate::config::ForwardedFor;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_UPSTREAM: HeaderName = HeaderName::from_static("x-upstream");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

const VIA_11: HeaderValue = HeaderValue::from_static("1.1 balancer");
const VIA_2: HeaderValue = HeaderValue::from_static("2.0 balancer");
const VIA_10: HeaderValue = HeaderValue::from_static("1.0 balancer");
const UPGRADE: HeaderValue = HeaderValue::from_static("upgrade");

/// What we know about the client connection, computed once per connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// The client's IP (IPv4-mapped IPv6 unmapped).
    pub ip: IpAddr,
    /// The IP as a header value (for `X-Real-IP` and a fresh `X-Forwarded-For`).
    pub ip_value: HeaderValue,
}

impl ConnInfo {
    /// Info for a client at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let s = ip.to_string();
        ConnInfo {
            ip,
            ip_value: HeaderValue::from_maybe_shared(bytes::Bytes::from(s))
                .expect("an IP address is a valid header value"),
        }
    }
}

/// Removes hop-by-hop headers, including those listed in `Connection`.
/// One pass over the names finds whether any is present (usually none or
/// just `Connection`), so the common case does no removals.
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    if !h.keys().any(|n| is_hop_by_hop(n, keep_upgrade)) {
        return;
    }
    if h.contains_key(header::CONNECTION) {
        for name in named_in_connection(h, keep_upgrade) {
            h.remove(name);
        }
    }
    for name in [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::PROXY_AUTHENTICATE,
    ] {
        h.remove(name);
    }
    if !keep_upgrade {
        h.remove(header::UPGRADE);
    }
}

fn append_value(h: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    let mut prev = h.get_all(name).iter();
    let Some(first) = prev.next() else {
        h.insert(name.clone(), value.clone());
        return;
    };
    // All existing values (a client may send the header more than once),
    // then ours: "a, b, ours".
    let mut v = Vec::with_capacity(first.len() + 2 + value.len());
    v.extend_from_slice(first.as_bytes());
    for more in prev {
        v.extend_from_slice(b", ");
        v.extend_from_slice(more.as_bytes());
    }
    v.extend_from_slice(b", ");
    v.extend_from_slice(value.as_bytes());
    if let Ok(v) = HeaderValue::from_bytes(&v) {
        h.insert(name.clone(), v);
    }
}

/// Whether `name` is hop-by-hop (`upgrade` is kept for an upgrade).
fn is_hop_by_hop(name: &HeaderName, keep_upgrade: bool) -> bool {
    h1::is_hop_by_hop(name.as_str().as_bytes(), keep_upgrade)
}

/// Further hop-by-hop headers named in `Connection` (rare: usually it holds
/// only `close`, `keep-alive` or `upgrade`, and this allocates nothing).
fn named_in_connection(h: &HeaderMap, keep_upgrade: bool) -> Vec<HeaderName> {
    h.get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|t| {
            let plain = t.is_empty()
                || t.eq_ignore_ascii_case("close")
                || t.eq_ignore_ascii_case("keep-alive")
                || (keep_upgrade && t.eq_ignore_ascii_case("upgrade"));
            !plain
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

/// Writes `name: a, b, ours` (every value the client sent, then ours).
fn write_appended(out: &mut Vec<u8>, h: &HeaderMap, name: &HeaderName, ours: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    for v in h.get_all(name) {
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(ours);
    out.extend_from_slice(b"\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a request's head is written upstream, beyond what the client sent.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// A WebSocket (or other) upgrade: `Upgrade` is kept.
    pub upgrade: bool,
    /// The body's framing headers.
    pub framing: SendFraming,
    /// `Host` when the request carries none (nginx's `$proxy_host`).
    pub default_host: &'a str,
    /// Append the client to `X-Forwarded-For`, or replace it.
    pub forwarded_for: ForwardedFor,
}

/// Writes the head of a client's request as it goes upstream: the request
/// line in origin form (HTTP/1.1), the client's headers less hop-by-hop
/// ones, `Expect` and the framing ones (`framing` decides),
/// `X-Forwarded-For` and `Via` appended to, `X-Real-IP` and
/// `X-Forwarded-Proto` set, `Host` kept (an absolute-form target's
/// authority wins; without either, the HTTP/2 authority, else
/// `default_host`), and `Connection: upgrade` for an upgrade. Header values
/// cannot hold CR or LF (`HeaderValue` refuses them), so nothing can be
/// injected.
pub fn write_request_head(
    parts: &request::Parts,
    conn: &ConnInfo,
    how: &Forwarding<'_>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let h = &parts.headers;
    let upgrade = how.upgrade;
    let extra = if h.contains_key(header::CONNECTION) {
        named_in_connection(h, upgrade)
    } else {
        Vec::new()
    };
    let via = match parts.version {
        Version::HTTP_2 => VIA_2,
        Version::HTTP_10 => VIA_10,
        _ => VIA_11,
    };
    // An absolute-form target (`GET http://host/path HTTP/1.1`) names the
    // host; HTTP/2's `:authority` only stands in for a missing `Host`.
    let absolute = match parts.version {
        Version::HTTP_2 => None,
        _ => parts.uri.authority(),
    };
    let append_for = how.forwarded_for == ForwardedFor::Append;
    let (mut forwarded_for, mut via_written) = (false, false);
    let mut host = absolute.is_some();
    if let Some(a) = absolute {
        write_header(out, b"host", a.as_str().as_bytes());
    }
    for (name, value) in h {
        if is_hop_by_hop(name, upgrade)
            || name == header::CONTENT_LENGTH
            || name == header::EXPECT
            || name == X_REAL_IP
            || name == X_FORWARDED_PROTO
            || extra.contains(name)
        {
            continue;
        }
        if name == X_FORWARDED_FOR {
            if !forwarded_for && append_for {
                write_appended(out, h, name, conn.ip_value.as_bytes());
                forwarded_for = true;
            }
        } else if name == header::VIA {
            if !via_written {
                write_appended(out, h, name, via.as_bytes());
                via_written = true;
            }
        } else if name == header::HOST {
            if absolute.is_none() {
                host = true;
                write_header(out, b"host", value.as_bytes());
            }
        } else {
            write_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !host {
        let authority = parts
            .uri
            .authority()
            .map_or(how.default_host, |a| a.as_str());
        write_header(out, b"host", authority.as_bytes());
    }
    if !forwarded_for {
        write_header(out, b"x-forwarded-for", conn.ip_value.as_bytes());
    }
    write_header(out, b"x-real-ip", conn.ip_value.as_bytes());
    write_header(out, b"x-forwarded-proto", b"http");
    if !via_written {
        write_header(out, b"via", via.as_bytes());
    }
    if upgrade {
        write_header(out, b"connection", b"upgrade");
    }
    write_framing(how.framing, out);
    out.extend_from_slice(b"\r\n");
}

/// Rewrites an upstream response head for the client.
pub fn prepare_response(
    parts: &mut response::Parts,
    upgrade: bool,
    upstream: Option<&HeaderValue>,
) {
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if upgrade {
        parts.headers.insert(header::CONNECTION, UPGRADE);
    }
    // The client connection decides its own version (an HTTP/1.0 upstream
    // does not make the client's response HTTP/1.0).
    parts.version = Version::HTTP_11;
    append_value(&mut parts.headers, &header::VIA, &VIA_11);
    if let Some(v) = upstream {
        parts.headers.insert(X_UPSTREAM.clone(), v.clone());
    }
}

/// Is this an HTTP/1.1 upgrade (WebSocket) request?
pub fn is_upgrade(version: Version, h: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn forwarded(parts: &request::Parts, conn: &ConnInfo, upgrade: bool) -> String {
        forwarded_with(parts, conn, upgrade, ForwardedFor::Append)
    }

    fn forwarded_with(
        parts: &request::Parts,
        conn: &ConnInfo,
        upgrade: bool,
        forwarded_for: ForwardedFor,
    ) -> String {
        let how = Forwarding {
            upgrade,
            framing: SendFraming::None,
            default_host: "up:80",
            forwarded_for,
        };
        let mut out = Vec::new();
        write_request_head(parts, conn, &how, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_headers() {
        let (parts, _) = Request::builder()
            .uri("/a?b=1")
            .header("host", "example.com")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("te", "trailers")
            .header("x-real-ip", "6.6.6.6")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .header("content-length", "0")
            .body(())
            .unwrap()
            .into_parts();
        let conn = ConnInfo::new("[::ffff:192.0.2.7]:5555".parse().unwrap());
        let head = forwarded(&parts, &conn, false);
        assert!(head.starts_with("GET /a?b=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        let lines: Vec<&str> = head.trim_end().lines().skip(1).collect();
        for want in [
            "host: example.com",
            "x-forwarded-for: 10.0.0.1, 10.0.0.2, 192.0.2.7",
            "x-real-ip: 192.0.2.7",
            "x-forwarded-proto: http",
            "via: 1.1 balancer",
        ] {
            assert_eq!(
                lines.iter().filter(|l| **l == want).count(),
                1,
                "{want} in {head}"
            );
        }
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("x-forwarded-for"))
                .count(),
            1
        );
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "te",
            "content-length",
            "x-real-ip: 6",
        ] {
            assert!(
                !lines.iter().any(|l| l.starts_with(gone)),
                "{gone} in {head}"
            );
        }
    }

    /// `Expect` stays here (the balancer answers `100 Continue` itself);
    /// `$remote_addr` replaces a client's list; an absolute-form target
    /// names the host (RFC 9112 §3.2.2).
    #[test]
    fn expect_dropped_forwarded_for_replaced_absolute_form_host() {
        let (parts, _) = Request::builder()
            .uri("http://named.example/p")
            .header("host", "other.example")
            .header("expect", "100-continue")
            .header("x-forwarded-for", "6.6.6.6")
            .body(())
            .unwrap()
            .into_parts();
        let conn = ConnInfo::new("127.0.0.9:1".parse().unwrap());
        let head = forwarded_with(&parts, &conn, false, ForwardedFor::Replace);
        assert!(head.starts_with("GET /p HTTP/1.1\r\n"), "{head}");
        let lines: Vec<&str> = head.trim_end().lines().skip(1).collect();
        assert!(lines.contains(&"host: named.example"), "{head}");
        assert!(lines.contains(&"x-forwarded-for: 127.0.0.9"), "{head}");
        for gone in ["expect", "host: other", "x-forwarded-for: 6"] {
            assert!(
                !lines.iter().any(|l| l.starts_with(gone)),
                "{gone} in {head}"
            );
        }
        assert_eq!(lines.iter().filter(|l| l.starts_with("host")).count(), 1);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("x-forwarded-for"))
                .count(),
            1
        );
    }

    #[test]
    fn h2_authority_becomes_host_and_upgrade_is_kept() {
        let (parts, _) = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://svc.local:8080/x")
            .header("via", "1.0 edge")
            .body(())
            .unwrap()
            .into_parts();
        let head = forwarded(
            &parts,
            &ConnInfo::new("127.0.0.1:1".parse().unwrap()),
            false,
        );
        assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nhost: svc.local:8080\r\n"), "{head}");
        assert!(
            head.contains("\r\nvia: 1.0 edge, 2.0 balancer\r\n"),
            "{head}"
        );

        let (parts, _) = Request::builder()
            .uri("/ws")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap()
            .into_parts();
        let head = forwarded(&parts, &ConnInfo::new("127.0.0.1:1".parse().unwrap()), true);
        assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
        assert!(head.contains("\r\nhost: up:80\r\n"), "{head}");
    }
}
