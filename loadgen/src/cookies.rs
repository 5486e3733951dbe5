//! A user's cookie jar: the `name=value` pairs the server set, sent back as
//! one `Cookie` header, as a browser session would for a single site.
//!
//! Deliberately small: one target per run, so domains, paths and expiry
//! dates are ignored; `Max-Age=0` removes a cookie (docs/loadgen.md). The
//! `Cookie` header is rebuilt only when a response changed the jar, so a
//! request costs one copy of ready bytes, not a join.

use http::HeaderValue;

use crate::wire::split_header;

/// The cookies of one user.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    /// `(name, value)`, in the order they were first set.
    cookies: Vec<(String, String)>,
    /// The `Cookie` header for them (`None`: no cookies).
    header: Option<HeaderValue>,
}

impl CookieJar {
    /// The cookies, `(name, value)`.
    pub(crate) fn cookies(&self) -> &[(String, String)] {
        &self.cookies
    }

    /// The `Cookie` header value to send, if the jar holds any cookie.
    pub(crate) fn header(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }

    /// Applies the `Set-Cookie` headers of a response `head` (status line
    /// first, as read from the wire).
    pub(crate) fn store(&mut self, head: &[u8]) {
        let mut changed = false;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some((name, value)) = split_header(line) else {
                continue;
            };
            if name.eq_ignore_ascii_case(b"set-cookie") {
                changed |= self.set(value);
            }
        }
        if changed {
            let joined = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            self.header = if joined.is_empty() {
                None
            } else {
                HeaderValue::from_str(&joined).ok()
            };
        }
    }

    /// Applies one `Set-Cookie` value; false when it is not a cookie.
    fn set(&mut self, value: &[u8]) -> bool {
        let Ok(s) = std::str::from_utf8(value) else {
            return false;
        };
        let pair = s.split(';').next().unwrap_or("");
        let Some((name, value)) = pair.split_once('=') else {
            return false;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return false;
        }
        let expired = s.to_ascii_lowercase().contains("max-age=0");
        self.cookies.retain(|(n, _)| n != name);
        if !expired {
            self.cookies.push((name.to_string(), value.to_string()));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(jar: &CookieJar) -> Vec<(&str, &str)> {
        jar.cookies()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn keeps_replaces_and_expires() {
        let mut jar = CookieJar::default();
        jar.store(b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=42; Path=/\r\nset-cookie: theme = dark\r\nX: a=b\r\n\r\n");
        assert_eq!(pairs(&jar), [("sid", "42"), ("theme", "dark")]);
        assert_eq!(jar.header().unwrap(), "sid=42; theme=dark");
        jar.store(b"HTTP/1.1 200 OK\r\nset-cookie: sid=43\r\n\r\n");
        assert_eq!(jar.header().unwrap(), "theme=dark; sid=43");
        jar.store(b"HTTP/1.1 200 OK\r\nset-cookie: theme=; Max-Age=0\r\nset-cookie: sid=x; max-age=0\r\n\r\n");
        assert!(jar.cookies().is_empty());
        assert_eq!(jar.header(), None);
    }

    #[test]
    fn ignores_what_is_not_a_cookie() {
        let mut jar = CookieJar::default();
        jar.store(b"HTTP/1.1 200 OK\r\nset-cookie: novalue\r\nset-cookie: =x\r\nset-cookie-2: a=1\r\n\r\n");
        assert!(jar.cookies().is_empty());
        assert_eq!(jar.header(), None);
    }
}
