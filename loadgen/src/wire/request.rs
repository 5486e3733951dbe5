//! The request writer: a request's head and body appended to one reused
//! buffer, so that it usually leaves in a single `write`.
//!
//! The client owns the framing headers (`Host`, `Content-Length`; it never
//! sends `Transfer-Encoding`): a scenario's header of those names is
//! ignored, so a template cannot make the request say one length and carry
//! another.

use http::header::{CONTENT_LENGTH, COOKIE, HOST, TRANSFER_ENCODING};
use http::{HeaderName, Method};

/// A request buffer larger than this is released after the request, so one
/// big upload does not pin memory in every user for the rest of the run.
const KEEP_BUFFER: usize = 64 * 1024;

/// The request being prepared (reused from one request to the next).
#[derive(Debug, Default)]
pub(crate) struct RequestBuf {
    /// Head, then body.
    buf: Vec<u8>,
    /// The request is a `HEAD` (its response has no body).
    head_request: bool,
    /// The request needs a `Content-Length` even when its body is empty.
    needs_length: bool,
}

impl RequestBuf {
    /// Starts a request: `METHOD target HTTP/1.1` and `Host`. `target` is
    /// the origin-form path and query (`/a?b=1`).
    pub(crate) fn begin(&mut self, method: &Method, target: &str, host: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(method.as_str().as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(target.as_bytes());
        self.buf.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        self.buf.extend_from_slice(host);
        self.buf.extend_from_slice(b"\r\n");
        self.head_request = method == Method::HEAD;
        self.needs_length =
            method == Method::POST || method == Method::PUT || method == Method::PATCH;
    }

    /// Adds a header. `value` must be valid (see [`valid_header_value`]).
    /// `Host`, `Content-Length` and `Transfer-Encoding` are ignored (the
    /// client sets them), and so is `Cookie` when `jar_cookie` (the jar's
    /// header wins).
    pub(crate) fn header(&mut self, name: &HeaderName, value: &[u8], jar_cookie: bool) {
        if name == HOST || name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            return;
        }
        if name == COOKIE && jar_cookie {
            return;
        }
        self.buf.extend_from_slice(name.as_str().as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Ends the head (`Content-Length` when there is a body or the method
    /// expects one, the jar's `cookie`) and appends `body`.
    pub(crate) fn end(&mut self, body: &[u8], cookie: Option<&[u8]>) {
        if !body.is_empty() || self.needs_length {
            self.buf.extend_from_slice(b"content-length: ");
            push_decimal(&mut self.buf, body.len() as u64);
            self.buf.extend_from_slice(b"\r\n");
        }
        if let Some(ck) = cookie {
            self.buf.extend_from_slice(b"cookie: ");
            self.buf.extend_from_slice(ck);
            self.buf.extend_from_slice(b"\r\n");
        }
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(body);
    }

    /// The prepared request.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the prepared request is a `HEAD`.
    pub(crate) fn is_head(&self) -> bool {
        self.head_request
    }

    /// Releases the buffer if an unusually large request grew it.
    pub(crate) fn trim(&mut self) {
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
    }
}

/// Appends `n` in decimal (no allocation).
fn push_decimal(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Whether `v` may be sent as a header value (visible ASCII, spaces, tabs,
/// obs-text; no control characters, so no header injection).
pub fn valid_header_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(r: &RequestBuf) -> &str {
        std::str::from_utf8(r.bytes()).unwrap()
    }

    #[test]
    fn writes_the_head_and_owns_the_framing_headers() {
        let mut r = RequestBuf::default();
        r.begin(&Method::POST, "/login?x=1", b"h:1");
        r.header(
            &HeaderName::from_static("content-type"),
            b"application/json",
            false,
        );
        r.header(&CONTENT_LENGTH, b"999", false);
        r.header(&HOST, b"evil", false);
        r.header(&TRANSFER_ENCODING, b"chunked", false);
        r.header(&COOKIE, b"mine=1", true);
        r.end(b"{}", Some(b"sid=42"));
        assert_eq!(
            written(&r),
            "POST /login?x=1 HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\n\
             content-length: 2\r\ncookie: sid=42\r\n\r\n{}"
        );
        assert!(!r.is_head());
        // Reused: a GET has no length; a scenario's own cookie goes when the jar is empty.
        r.begin(&Method::GET, "/", b"h:1");
        r.header(&COOKIE, b"mine=1", false);
        r.end(b"", None);
        assert_eq!(
            written(&r),
            "GET / HTTP/1.1\r\nhost: h:1\r\ncookie: mine=1\r\n\r\n"
        );
        r.begin(&Method::PUT, "/p", b"h");
        r.end(b"", None);
        assert!(written(&r).ends_with("content-length: 0\r\n\r\n"));
        r.begin(&Method::HEAD, "/", b"h");
        assert!(r.is_head());
    }

    #[test]
    fn decimals_and_header_values() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut b = Vec::new();
            push_decimal(&mut b, n);
            assert_eq!(b, n.to_string().as_bytes());
        }
        assert!(valid_header_value(b"Bearer abc\tdef"));
        assert!(!valid_header_value(b"a\r\nx: y"));
        assert!(!valid_header_value(b"a\x7f"));
    }
}
