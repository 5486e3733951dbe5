//! Header hygiene of a reverse proxy, in both directions: hop-by-hop headers
//! (RFC 9110 §7.6.1, plus any named in `Connection`) are stripped,
//! `X-Forwarded-For` is appended to, `X-Real-IP` and `X-Forwarded-Proto` are
//! set, `Via` is added, `Host` is preserved (taken from the `:authority` of
//! an HTTP/2 request). WebSocket upgrades keep `Upgrade` and get
//! `Connection: upgrade`. Values that do not depend on the request are
//! built once (per process or per connection).

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, response, Uri, Version};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_UPSTREAM: HeaderName = HeaderName::from_static("x-upstream");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

const VIA_11: HeaderValue = HeaderValue::from_static("1.1 balancer");
const VIA_2: HeaderValue = HeaderValue::from_static("2.0 balancer");
const VIA_10: HeaderValue = HeaderValue::from_static("1.0 balancer");
const HTTP: HeaderValue = HeaderValue::from_static("http");
const UPGRADE: HeaderValue = HeaderValue::from_static("upgrade");

/// What we know about the client connection, computed once per connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub addr: SocketAddr,
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
            addr,
            ip,
            ip_value: HeaderValue::from_maybe_shared(bytes::Bytes::from(s))
                .expect("an IP address is a valid header value"),
        }
    }
}

/// Removes hop-by-hop headers, including those listed in `Connection`.
/// One pass over the names finds which are present (usually none or just
/// `Connection`), so the common case does no extra hash lookups.
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    const CONN: u8 = 1;
    const OTHER: u8 = 2;
    let mut found = 0u8;
    for name in h.keys() {
        match name.as_str() {
            "connection" => found |= CONN,
            "keep-alive" | "proxy-connection" | "te" | "trailer" | "transfer-encoding"
            | "proxy-authenticate" => found |= OTHER,
            "upgrade" if !keep_upgrade => found |= OTHER,
            _ => {}
        }
    }
    if found == 0 {
        return;
    }
    if found & CONN != 0 {
        let custom = h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().unwrap_or("").split(',').any(|t| {
                let t = t.trim();
                !t.is_empty()
                    && !t.eq_ignore_ascii_case("close")
                    && !t.eq_ignore_ascii_case("keep-alive")
                    && !t.eq_ignore_ascii_case("upgrade")
            })
        });
        if custom {
            // Custom tokens (rare) name further hop-by-hop headers.
            let extra: Vec<HeaderName> = h
                .get_all(header::CONNECTION)
                .iter()
                .flat_map(|v| v.to_str().unwrap_or("").split(','))
                .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
                .filter(|n| n != header::UPGRADE || !keep_upgrade)
                .collect();
            for name in extra {
                h.remove(name);
            }
        }
        h.remove(header::CONNECTION);
    }
    if found & OTHER != 0 {
        h.remove(&KEEP_ALIVE);
        h.remove(&PROXY_CONNECTION);
        h.remove(header::TE);
        h.remove(header::TRAILER);
        h.remove(header::TRANSFER_ENCODING);
        h.remove(header::PROXY_AUTHENTICATE);
        if !keep_upgrade {
            h.remove(header::UPGRADE);
        }
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

/// Rewrites a client request head for the upstream.
pub fn prepare_request(parts: &mut request::Parts, conn: &ConnInfo, upgrade: bool) {
    let via = match parts.version {
        Version::HTTP_2 => VIA_2,
        Version::HTTP_10 => VIA_10,
        _ => VIA_11,
    };
    let h = &mut parts.headers;
    strip_hop_by_hop(h, upgrade);
    // Room for the four headers added below, so the map grows at most once.
    h.reserve(4);
    if upgrade {
        h.insert(header::CONNECTION, UPGRADE);
    }
    if !h.contains_key(header::HOST) {
        // HTTP/2 carries the host in :authority.
        if let Some(auth) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(auth.as_str()) {
                h.insert(header::HOST, v);
            }
        }
    }
    append_value(h, &X_FORWARDED_FOR, &conn.ip_value);
    h.insert(X_REAL_IP.clone(), conn.ip_value.clone());
    h.insert(X_FORWARDED_PROTO.clone(), HTTP);
    append_value(h, &header::VIA, &via);
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        parts.uri = parts
            .uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    }
    parts.version = Version::HTTP_11;
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

    #[test]
    fn request_headers() {
        let (mut parts, _) = Request::builder()
            .uri("/a?b=1")
            .header("host", "example.com")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("te", "trailers")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .body(())
            .unwrap()
            .into_parts();
        let conn = ConnInfo::new("[::ffff:192.0.2.7]:5555".parse().unwrap());
        prepare_request(&mut parts, &conn, false);
        let h = &parts.headers;
        assert_eq!(h["host"], "example.com");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 192.0.2.7");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-real-ip"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["via"], "1.1 balancer");
        for gone in ["connection", "x-secret", "keep-alive", "te"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn h2_authority_becomes_host() {
        let (mut parts, _) = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://svc.local:8080/x")
            .body(())
            .unwrap()
            .into_parts();
        prepare_request(
            &mut parts,
            &ConnInfo::new("127.0.0.1:1".parse().unwrap()),
            false,
        );
        assert_eq!(parts.headers["host"], "svc.local:8080");
        assert_eq!(parts.uri, "/x");
        assert_eq!(parts.version, Version::HTTP_11);
        assert_eq!(parts.headers["via"], "2.0 balancer");
    }
}
