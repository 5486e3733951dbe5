//! The request's first phase: refuse what nginx refuses before a request
//! goes anywhere, with nginx's status, so the balancer is no more lenient
//! than the proxy people put it beside (a request two proxies read
//! differently is how smuggling starts).
//!
//! - `CONNECT` → 405 (nginx: "client sent CONNECT method"; a reverse proxy
//!   has no tunnel to offer);
//! - `Host`: none in HTTP/1.1, or two → 400 (RFC 9112 §3.2); a value
//!   `ngx_http_validate_host` refuses (a `/`, a space, `..`, a bad port) →
//!   400; the same rule for an absolute-form or HTTP/2 authority, which
//!   may not carry `user:password@` either;
//! - framing: a `Content-Length` that is not decimal digits, or two of them,
//!   → 400; `Transfer-Encoding` twice, on HTTP/1.0, or beside
//!   `Content-Length` → 400; any coding but a lone `chunked` → 501 (we do
//!   not apply gzip, so we may not drop it silently);
//! - the path: a `..` that climbs above the root, counting `%2e` and `%2f`
//!   as nginx's `ngx_http_parse_complex_uri` decodes them, a bad `%`
//!   escape or `%00` → 400. A path that stays inside is forwarded as it
//!   came, as nginx does with `proxy_pass` without a URI.
//!
//! Pure functions over the head, no allocation: a few header look-ups and
//! one scan of the path per request.

use http::{header, Method, Request, StatusCode, Version};

use super::h1;

/// Checks a request head; `Ok` carries its `Content-Length`, if any.
pub fn screen<B>(req: &Request<B>) -> Result<Option<u64>, StatusCode> {
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    if req.method() == Method::CONNECT {
        return Err(StatusCode::METHOD_NOT_ALLOWED);
    }
    let headers = req.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err(BAD),
        (None, None) if req.version() == Version::HTTP_11 => return Err(BAD),
        (Some(h), None) if !valid_host(h.as_bytes()) => return Err(BAD),
        _ => {}
    }
    if let Some(a) = req.uri().authority() {
        if a.as_str().contains('@') || !valid_host(a.as_str().as_bytes()) {
            return Err(BAD);
        }
    }
    let minor = u8::from(req.version() > Version::HTTP_10);
    let raw = headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    let length = h1::screen_framing(raw, minor)?;
    if !path_stays_inside(req.uri().path().as_bytes()) {
        return Err(BAD);
    }
    Ok(length)
}

/// nginx's `ngx_http_validate_host`: a reg-name (letters, digits, `-._~`,
/// sub-delims, `%`) or an IP literal in brackets, an optional port of
/// digits up to 65535, no empty label (`..`), not empty.
pub fn valid_host(host: &[u8]) -> bool {
    let (name, port) = match host.first() {
        Some(b'[') => {
            let Some(end) = host.iter().position(|&b| b == b']') else {
                return false;
            };
            let literal = &host[1..end];
            if !literal
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b":.-_~!$&'()*+,;=".contains(&b))
            {
                return false;
            }
            match &host[end + 1..] {
                [] => (&host[..=end], None),
                [b':', port @ ..] => (&host[..=end], Some(port)),
                _ => return false,
            }
        }
        _ => match host.iter().position(|&b| b == b':') {
            Some(i) => (&host[..i], Some(&host[i + 1..])),
            None => (host, None),
        },
    };
    if let Some(port) = port {
        let digits_ok = port.iter().all(u8::is_ascii_digit);
        let value = port.iter().try_fold(0u32, |n, &d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        });
        if !digits_ok || value.is_none_or(|v| v > 65535) {
            return false;
        }
    }
    if name.first() == Some(&b'[') {
        return !name.windows(2).any(|w| w == b"..");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b);
    // A trailing dot is dropped, as nginx does ("example.com." is fine).
    let name = name.strip_suffix(b".").unwrap_or(name);
    !name.is_empty() && name.iter().all(|&b| allowed(b)) && !name.windows(2).any(|w| w == b"..")
}

/// Whether `path` stays at or below `/` once `.` and `..` segments are
/// applied (nginx answers 400 otherwise), with `%XX` decoded first as nginx
/// does; a malformed escape or `%00` is refused too. Paths without `.` or
/// `%` (most) are decided by one scan.
pub fn path_stays_inside(path: &[u8]) -> bool {
    if !path.iter().any(|&b| b == b'.' || b == b'%') {
        return true;
    }
    let mut depth = 0usize;
    // The current segment: its length, and whether it is all dots.
    let (mut len, mut dots_only) = (0usize, true);
    let mut i = 0;
    loop {
        let byte = match path.get(i) {
            None => None,
            Some(b'%') => {
                let hex = |b: u8| (b as char).to_digit(16);
                let (Some(hi), Some(lo)) = (
                    path.get(i + 1).and_then(|&b| hex(b)),
                    path.get(i + 2).and_then(|&b| hex(b)),
                ) else {
                    return false;
                };
                i += 2;
                match (hi * 16 + lo) as u8 {
                    0 => return false,
                    b => Some(b),
                }
            }
            Some(&b) => Some(b),
        };
        i += 1;
        match byte {
            None | Some(b'/') => {
                // Empty segments merge (nginx's `merge_slashes`), `.` stays.
                match (len, dots_only) {
                    (2, true) if depth == 0 => return false,
                    (2, true) => depth -= 1,
                    (0, _) | (1, true) => {}
                    _ => depth += 1,
                }
                if byte.is_none() {
                    return true;
                }
                (len, dots_only) = (0, true);
            }
            Some(b) => {
                len += 1;
                dots_only &= b == b'.';
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_nginx_validates_them() {
        for ok in [
            "example.com",
            "example.com.",
            "a-b_c~d:8080",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "x:",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "evil.test/../admin",
            "a b",
            "a..b",
            "user@host",
            "host:65536",
            "host:8o",
            "[::1",
            "[::1]x",
            "a\tb",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn paths_that_climb_above_the_root() {
        for ok in [
            "/",
            "/a/b",
            "/a/../b",
            "/a/./b/..",
            "/...",
            "/a/..b/..",
            "/a%2Fb",
            "/.well-known/x",
            "/a//..",
        ] {
            assert!(path_stays_inside(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "/..",
            "/../x",
            "/a/../../etc/passwd",
            "/%2e%2e/x",
            "/a/%2E./..",
            "/a%2f..%2f..",
            "/./../",
            "/%zz",
            "/%2",
            "/a%00b",
        ] {
            assert!(!path_stays_inside(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn framing_as_nginx() {
        let req = |lines: &[(&str, &str)], version| {
            let mut b = Request::post("/").version(version);
            for (k, v) in lines {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap()
        };
        use Version as V;
        let h = ("host", "x");
        assert_eq!(
            screen(&req(&[h, ("content-length", "5")], V::HTTP_11)),
            Ok(Some(5))
        );
        assert_eq!(
            screen(&req(&[h, ("content-length", "+5")], V::HTTP_11)),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            screen(&req(
                &[h, ("content-length", "5"), ("content-length", "5")],
                V::HTTP_11
            )),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            screen(&req(&[h, ("transfer-encoding", "chunked")], V::HTTP_11)),
            Ok(None)
        );
        assert_eq!(
            screen(&req(
                &[h, ("transfer-encoding", "gzip, chunked")],
                V::HTTP_11
            )),
            Err(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(
            screen(&req(
                &[
                    h,
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ],
                V::HTTP_11
            )),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            screen(&req(
                &[h, ("transfer-encoding", "chunked"), ("content-length", "3")],
                V::HTTP_11
            )),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            screen(&req(&[("transfer-encoding", "chunked")], V::HTTP_10)),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(screen(&req(&[], V::HTTP_11)), Err(StatusCode::BAD_REQUEST));
        let connect = Request::connect("evil.test:443")
            .header("host", "evil.test:443")
            .body(())
            .unwrap();
        assert_eq!(screen(&connect), Err(StatusCode::METHOD_NOT_ALLOWED));
        let userinfo = Request::get("http://user:pw@evil.test/x")
            .header("host", "x")
            .body(())
            .unwrap();
        assert_eq!(screen(&userinfo), Err(StatusCode::BAD_REQUEST));
    }
}
