//! How an HTTP/1.1 response body is delimited, and whether its connection
//! may carry another request: the rule of RFC 9112 §6.3, written once for
//! both of our HTTP/1.1 clients (loadgen's `wire`, the balancer's `proxy::h1`).
//!
//! Before this module the two parsers disagreed: given both
//! `Transfer-Encoding` and `Content-Length`, the balancer closed the
//! connection and loadgen kept it alive. Each parser still reads heads its
//! own way (loadgen scans bytes in place, the balancer uses `httparse`);
//! both hand the framing headers to [`FramingHeaders`] as they meet them and
//! ask [`response_framing`] for the verdict. [`RESPONSE_FRAMING_CASES`] is
//! the table both test suites iterate.
//!
//! The rule, in the order of RFC 9112 §6.3 (the first that applies wins):
//!
//! 1. A response to `HEAD`, and any 1xx, 204 or 304 response, has no body,
//!    whatever its headers say (so an odd `Content-Length` there is not an
//!    error). A 101 leaves HTTP: its connection is never reused for HTTP.
//! 2. (`CONNECT` 2xx: neither client sends `CONNECT`, so it is not modelled.)
//! 3. `Transfer-Encoding` and `Content-Length` together: `Transfer-Encoding`
//!    decides the framing (the length is ignored, even when invalid) and the
//!    connection is not reused, since the two may disagree on where the next
//!    response starts (request smuggling).
//! 4. `Transfer-Encoding` whose final coding is `chunked` (codings listed in
//!    several headers are one list): chunked. Any other final coding,
//!    including one we do not know: the body runs until the server closes.
//!    In an HTTP/1.0 response `Transfer-Encoding` makes the framing faulty
//!    (RFC 9112 §6.1): an error, as in hyper.
//! 5. A `Content-Length` that is not `1*DIGIT` (`+5`, `-1`, `0x10`, empty),
//!    that overflows `u64`, or whose values differ (`1, 2` in one header or
//!    across several): an error; the caller closes the connection and drops
//!    the response. Repeated identical values (`5, 5`) are one length
//!    (RFC 9110 §8.6 allows either; hyper does the same).
//! 6. A valid `Content-Length`: exactly that many bytes.
//! 7. Otherwise: until the server closes, connection not reused.
//!
//! Reuse also follows RFC 9112 §9.3: HTTP/1.1 persists unless a
//! `Connection: close` token appears (in any `Connection` header, whatever
//! else is listed); HTTP/1.0 persists only with `keep-alive` and no `close`.
//!
//! No allocation and no I/O: both callers run it once per response on their
//! hot paths.

use std::fmt;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (`HEAD`, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// The verdict on one response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFraming {
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// A response whose framing cannot be trusted: the caller closes the
/// connection and discards the response (RFC 9112 §6.3, rule 5).
///
/// `Display` and `Error` are written out rather than derived with
/// `thiserror`, so that this shared crate needs no dependency for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// A `Content-Length` value is not a decimal number (`+5`, `-1`, empty).
    InvalidContentLength,
    /// `Content-Length` values differ (`1, 2`, or two headers).
    ConflictingContentLength,
    /// A `Content-Length` larger than `u64`.
    ContentLengthOverflow,
    /// `Transfer-Encoding` in an HTTP/1.0 response (RFC 9112 §6.1).
    TransferEncodingInHttp10,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::InvalidContentLength => "invalid Content-Length",
            FramingError::ConflictingContentLength => "conflicting Content-Length values",
            FramingError::ContentLengthOverflow => "Content-Length too large",
            FramingError::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 response",
        })
    }
}

impl std::error::Error for FramingError {}

/// The framing headers of one response as the parser met them, several
/// headers of one name folded together. Judged by [`response_framing`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramingHeaders {
    /// `Content-Length`: absent, one agreed value, or the first fault found.
    content_length: Option<Result<u64, FramingError>>,
    /// `Transfer-Encoding`: absent, or whether the last coding so far is `chunked`.
    transfer_encoding: Option<bool>,
    /// A `Connection` header listed `close`.
    close: bool,
    /// A `Connection` header listed `keep-alive`.
    keep_alive: bool,
}

impl FramingHeaders {
    /// Nothing seen yet.
    pub const fn new() -> Self {
        FramingHeaders {
            content_length: None,
            transfer_encoding: None,
            close: false,
            keep_alive: false,
        }
    }

    /// Records the header `name: value` if it is one of `Content-Length`,
    /// `Transfer-Encoding` or `Connection` (any case); returns whether it
    /// was. `value` is the field value with or without its surrounding
    /// whitespace.
    #[inline]
    pub fn observe(&mut self, name: &[u8], value: &[u8]) -> bool {
        // The length first: most headers are none of these three.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => self.content_length(value),
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => self.transfer_encoding(value),
            10 if name.eq_ignore_ascii_case(b"connection") => self.connection(value),
            _ => return false,
        }
        true
    }

    /// Records one `Content-Length` header's value.
    pub fn content_length(&mut self, value: &[u8]) {
        for item in value.split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(item));
            self.content_length = match (self.content_length, n) {
                (Some(Err(e)), _) | (_, Err(e)) => Some(Err(e)),
                (Some(Ok(m)), Ok(n)) if m != n => Some(Err(FramingError::ConflictingContentLength)),
                (_, Ok(n)) => Some(Ok(n)),
            };
        }
    }

    /// Records one `Transfer-Encoding` header's value.
    pub fn transfer_encoding(&mut self, value: &[u8]) {
        // Empty list elements are allowed and ignored (RFC 9110 §5.6.1);
        // a header with no coding at all still counts as present.
        let last = value
            .split(|&b| b == b',')
            .map(trim_ows)
            .rfind(|t| !t.is_empty());
        match last {
            Some(coding) => {
                self.transfer_encoding = Some(coding.eq_ignore_ascii_case(b"chunked"));
            }
            None => {
                self.transfer_encoding.get_or_insert(false);
            }
        }
    }

    /// Records one `Connection` header's value.
    pub fn connection(&mut self, value: &[u8]) {
        for token in value.split(|&b| b == b',').map(trim_ows) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }
}

/// The framing of a response with status `status` and HTTP version
/// `1.minor`, to a request that was a `HEAD` when `head_request`, given the
/// framing headers `seen` (see the module doc for the rule).
#[inline]
pub fn response_framing(
    head_request: bool,
    status: u16,
    minor: u8,
    seen: &FramingHeaders,
) -> Result<ResponseFraming, FramingError> {
    let persists = !seen.close && (minor >= 1 || seen.keep_alive);
    let done = |framing, keep_alive| {
        Ok(ResponseFraming {
            framing,
            keep_alive,
        })
    };
    // Rule 1.
    if status == 101 {
        return done(Framing::None, false);
    }
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return done(Framing::None, persists);
    }
    // Rules 3 and 4.
    if let Some(chunked) = seen.transfer_encoding {
        if minor == 0 {
            return Err(FramingError::TransferEncodingInHttp10);
        }
        return match chunked {
            true => done(Framing::Chunked, persists && seen.content_length.is_none()),
            false => done(Framing::UntilClose, false),
        };
    }
    // Rules 5 to 7.
    match seen.content_length {
        Some(Err(e)) => Err(e),
        Some(Ok(n)) => done(Framing::Length(n), persists),
        None => done(Framing::UntilClose, false),
    }
}

/// `1*DIGIT` as a `u64`.
fn parse_decimal(v: &[u8]) -> Result<u64, FramingError> {
    if v.is_empty() {
        return Err(FramingError::InvalidContentLength);
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(FramingError::InvalidContentLength);
        }
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(b - b'0')))
            .ok_or(FramingError::ContentLengthOverflow)
    })
}

/// `v` without surrounding spaces and tabs (OWS).
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t');
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

/// One row of [`RESPONSE_FRAMING_CASES`].
#[derive(Debug, Clone, Copy)]
pub struct FramingCase {
    /// What the row is about.
    pub name: &'static str,
    /// A whole response head, blank line included (no body).
    pub head: &'static [u8],
    /// The request's method: `"GET"` or `"HEAD"`.
    pub method: &'static str,
    /// What the parser must conclude.
    pub expected: Result<ResponseFraming, FramingError>,
}

const fn ok(framing: Framing, keep_alive: bool) -> Result<ResponseFraming, FramingError> {
    Ok(ResponseFraming {
        framing,
        keep_alive,
    })
}

const fn case(
    name: &'static str,
    head: &'static [u8],
    method: &'static str,
    expected: Result<ResponseFraming, FramingError>,
) -> FramingCase {
    FramingCase {
        name,
        head,
        method,
        expected,
    }
}

use Framing::{Chunked, Length, UntilClose};
use FramingError::{
    ConflictingContentLength, ContentLengthOverflow, InvalidContentLength, TransferEncodingInHttp10,
};

/// The framing rule as examples: every HTTP/1.1 response parser of the
/// workspace is tested against each row (its own head parser, then the
/// rule). Heads use CRLF; 1xx rows other than 101 are interim responses,
/// which a parser may skip rather than return.
#[rustfmt::skip]
pub const RESPONSE_FRAMING_CASES: &[FramingCase] = &[
    // Content-Length.
    case("length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", ok(Length(5), true)),
    case("length zero", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "GET", ok(Length(0), true)),
    case("length with leading zeros", b"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n", "GET", ok(Length(7), true)),
    case("largest length", b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n", "GET", ok(Length(u64::MAX), true)),
    case("repeated equal lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "GET", ok(Length(5), true)),
    case("equal lengths in one list", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", "GET", ok(Length(5), true)),
    case("different lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "GET", Err(ConflictingContentLength)),
    case("different lengths in one list", b"HTTP/1.1 200 OK\r\nContent-Length: 1,2\r\n\r\n", "GET", Err(ConflictingContentLength)),
    case("signed length", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", "GET", Err(InvalidContentLength)),
    case("negative length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "GET", Err(InvalidContentLength)),
    case("hex length", b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "GET", Err(InvalidContentLength)),
    case("empty length", b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "GET", Err(InvalidContentLength)),
    case("length with a space inside", b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", "GET", Err(InvalidContentLength)),
    case("length overflow", b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", "GET", Err(ContentLengthOverflow)),
    // Transfer-Encoding.
    case("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", ok(Chunked, true)),
    case("chunked in capitals", b"HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n", "GET", ok(Chunked, true)),
    case("chunked after gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", ok(Chunked, true)),
    case("chunked last across headers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", ok(Chunked, true)),
    case("chunked not last", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "GET", ok(UntilClose, false)),
    case("chunked not last across headers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", ok(UntilClose, false)),
    case("unknown coding", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom\r\n\r\n", "GET", ok(UntilClose, false)),
    case("chunked and length", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "GET", ok(Chunked, false)),
    case("length and chunked", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", ok(Chunked, false)),
    case("chunked and an invalid length", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n", "GET", ok(Chunked, false)),
    case("unknown coding and length", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom\r\nContent-Length: 5\r\n\r\n", "GET", ok(UntilClose, false)),
    case("chunked in HTTP/1.0", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", Err(TransferEncodingInHttp10)),
    // Neither.
    case("no length", b"HTTP/1.1 200 OK\r\n\r\n", "GET", ok(UntilClose, false)),
    case("no length, keep-alive asked", b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", "GET", ok(UntilClose, false)),
    // No body whatever the headers say.
    case("HEAD with a length", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD", ok(Framing::None, true)),
    case("HEAD with chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", ok(Framing::None, true)),
    case("HEAD with an invalid length", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "HEAD", ok(Framing::None, true)),
    case("HEAD without a length", b"HTTP/1.1 200 OK\r\n\r\n", "HEAD", ok(Framing::None, true)),
    case("204 with a length", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "GET", ok(Framing::None, true)),
    case("204 with different lengths", b"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "GET", ok(Framing::None, true)),
    case("304 with a length", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", "GET", ok(Framing::None, true)),
    case("304 with chunked", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", ok(Framing::None, true)),
    case("100 Continue", b"HTTP/1.1 100 Continue\r\n\r\n", "GET", ok(Framing::None, true)),
    case("103 Early Hints with a length", b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n", "GET", ok(Framing::None, true)),
    case("101 Switching Protocols", b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", ok(Framing::None, false)),
    // Connection persistence.
    case("close", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", "GET", ok(Length(1), false)),
    case("close among other tokens", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive, Close\r\n\r\n", "GET", ok(Length(1), false)),
    case("close, then keep-alive in a later header", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", "GET", ok(Length(1), false)),
    case("close on a 204", b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", "GET", ok(Framing::None, false)),
    case("HTTP/1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", ok(Length(1), false)),
    case("HTTP/1.0 keep-alive", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n", "GET", ok(Length(1), true)),
    case("HTTP/1.0 keep-alive and close", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: close, keep-alive\r\n\r\n", "GET", ok(Length(1), false)),
    case("HTTP/1.0 keep-alive without a length", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", "GET", ok(UntilClose, false)),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A deliberately plain head reader, so the table is checked against
    /// the rule alone (each client checks it against its own parser).
    fn judge(head: &[u8], method: &str) -> Result<ResponseFraming, FramingError> {
        let text = std::str::from_utf8(head).unwrap();
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap();
        let minor = status_line.as_bytes()[7] - b'0';
        let status: u16 = status_line[9..12].parse().unwrap();
        let mut seen = FramingHeaders::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').unwrap();
            seen.observe(name.as_bytes(), value.as_bytes());
        }
        response_framing(method == "HEAD", status, minor, &seen)
    }

    #[test]
    fn every_row_follows_the_rule() {
        for c in RESPONSE_FRAMING_CASES {
            assert!(c.head.ends_with(b"\r\n\r\n"), "{}", c.name);
            assert!(c.method == "GET" || c.method == "HEAD", "{}", c.name);
            assert_eq!(judge(c.head, c.method), c.expected, "{}", c.name);
        }
    }

    #[test]
    fn row_names_are_unique() {
        let mut names: Vec<_> = RESPONSE_FRAMING_CASES.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len);
    }

    #[test]
    fn only_framing_headers_are_observed() {
        let mut seen = FramingHeaders::new();
        assert!(!seen.observe(b"Content-Type", b"text/plain"));
        assert!(!seen.observe(b"content-lengthx", b"5"));
        assert!(seen.observe(b"CONTENT-LENGTH", b"5"));
        assert_eq!(response_framing(false, 200, 1, &seen), ok(Length(5), true));
    }

    #[test]
    fn an_empty_transfer_encoding_is_not_chunked() {
        let mut seen = FramingHeaders::new();
        seen.transfer_encoding(b" , ");
        assert_eq!(
            response_framing(false, 200, 1, &seen),
            ok(UntilClose, false)
        );
        // A later header with a coding decides.
        seen.transfer_encoding(b"chunked");
        assert_eq!(response_framing(false, 200, 1, &seen), ok(Chunked, true));
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(InvalidContentLength.to_string(), "invalid Content-Length");
        assert_eq!(
            TransferEncodingInHttp10.to_string(),
            "Transfer-Encoding in an HTTP/1.0 response"
        );
    }
}
