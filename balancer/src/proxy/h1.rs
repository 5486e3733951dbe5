//! HTTP/1.1 on the upstream wire (RFC 9112): the request head written from
//! the already rewritten request parts, the response head parsed with
//! `httparse` without copying a header value, and body framing —
//! `Content-Length`, `chunked`, read-until-close, and no body after `HEAD`,
//! 1xx, 204 or 304.
//!
//! How a response is framed and whether its connection is reused is not
//! decided here: the header loop hands the framing headers to
//! [`plumbing::http1::FramingHeaders`] and asks
//! [`plumbing::http1::response_framing`], the one rule loadgen's parser
//! follows too (issue 11), and the tests run its table through
//! [`parse_response`]. A response the rule refuses is a [`ParseError`]
//! (`invalid_header`: 502, a failed attempt). Requests from clients follow
//! nginx's stricter rules instead ([`screen_framing`]).
//!
//! Pure functions over buffers, no I/O: [`super::client`] drives them.

use std::io::Write as _;
use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{response, Method, StatusCode, Version};
use plumbing::http1::{response_framing, FramingHeaders, ResponseFraming};

/// Most headers accepted in an upstream response (as hyper's default).
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why an upstream response could not be parsed (`proxy_next_upstream
/// invalid_header`).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not an HTTP/1.x response head.
    #[error("invalid response head: {0}")]
    Head(&'static str),
    /// The head is larger than the limit.
    #[error("response head larger than {0} bytes")]
    TooLarge(usize),
    /// A chunked body that does not follow the format.
    #[error("invalid chunked body: {0}")]
    Chunked(&'static str),
    /// Framing headers the rule of `plumbing::http1` refuses.
    #[error("invalid response framing: {0}")]
    Framing(#[from] plumbing::http1::FramingError),
}

/// How a body we send is delimited (a request upstream, a response to a
/// client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFraming {
    /// No body and no length header (GET and friends).
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked` (a client stream of unknown length).
    Chunked,
}

/// Writes a response head for a client: status line, headers (framing and
/// `Connection` decided here, not copied), `Date` if the response has none
/// (RFC 9110 §6.6.1: a proxy adds it), and the blank line. `no_body`: a
/// response to HEAD, or 1xx/204/304, whose `Content-Length` (if any) is
/// passed on as it is.
pub fn write_response_head(
    parts: &response::Parts,
    framing: SendFraming,
    no_body: bool,
    keep_alive: bool,
    http10: bool,
    out: &mut Vec<u8>,
) {
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if (name == header::CONTENT_LENGTH && !no_body)
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    write_framing(framing, out);
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the header that delimits a body we send.
pub fn write_framing(framing: SendFraming, out: &mut Vec<u8>) {
    match framing {
        SendFraming::None => {}
        SendFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        SendFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
}

/// Appends one chunk of a chunked body (`data` must not be empty: an empty
/// chunk ends the body).
pub fn write_chunk(data: &[u8], out: &mut Vec<u8>) {
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// How a response body is delimited: the workspace's one type for it.
pub use plumbing::http1::Framing;

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status, version and headers (values share the head's buffer).
    pub parts: response::Parts,
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection may carry another request afterwards.
    pub keep_alive: bool,
}

/// Where each parsed header sits in the buffer it was parsed from.
/// `httparse` borrows the buffer; these offsets outlive the borrow, so the
/// values can be sliced out of the frozen head afterwards without a copy
/// (`u32`: a head is bounded by the size limits).
pub struct HeaderIndex {
    ranges: [(u32, u32, u32, u32); MAX_HEADERS],
    len: usize,
}

impl HeaderIndex {
    /// An empty index.
    pub fn new() -> Self {
        HeaderIndex {
            ranges: [(0, 0, 0, 0); MAX_HEADERS],
            len: 0,
        }
    }

    /// Records `headers`, parsed from `buf`.
    pub fn record(&mut self, buf: &[u8], headers: &[httparse::Header<'_>]) {
        for (r, h) in self.ranges.iter_mut().zip(headers) {
            let (ns, vs) = (offset(buf, h.name.as_bytes()), offset(buf, h.value));
            *r = (ns, ns + h.name.len() as u32, vs, vs + h.value.len() as u32);
        }
        self.len = headers.len();
    }

    /// `(name, value)` pairs, read from `buf` (the same bytes, frozen or not).
    pub fn iter<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.ranges[..self.len]
            .iter()
            .map(move |&(ns, ne, vs, ve)| {
                (
                    &buf[ns as usize..ne as usize],
                    &buf[vs as usize..ve as usize],
                )
            })
    }

    /// The headers as a map whose values share `head` (room for `extra`
    /// more), without those `skip` refuses.
    pub fn to_map(
        &self,
        head: &Bytes,
        extra: usize,
        skip: impl Fn(&[u8]) -> bool,
    ) -> Option<HeaderMap> {
        let mut map = HeaderMap::with_capacity(self.len + extra);
        for &(ns, ne, vs, ve) in &self.ranges[..self.len] {
            let raw_name = &head[ns as usize..ne as usize];
            if skip(raw_name) {
                continue;
            }
            let name = HeaderName::from_bytes(raw_name).ok()?;
            let value =
                HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize)).ok()?;
            map.append(name, value);
        }
        Some(map)
    }
}

impl Default for HeaderIndex {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a header (by raw name) is hop-by-hop (RFC 9110 §7.6.1);
/// `upgrade` keeps `Upgrade`.
pub fn is_hop_by_hop(name: &[u8], upgrade: bool) -> bool {
    const HOP_BY_HOP: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"proxy-authenticate",
    ];
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || (!upgrade && name.eq_ignore_ascii_case(b"upgrade"))
}

/// The offset of `part`, a slice of `buf`, within `buf`.
pub fn offset(buf: &[u8], part: &[u8]) -> u32 {
    (part.as_ptr() as usize - buf.as_ptr() as usize) as u32
}

/// A `Content-Length` value: decimal digits only (RFC 9110 §8.6), as
/// nginx's `ngx_atoof` and hyper's parser. `str::parse` would take `+5`,
/// and a proxy that reads `+5` as 5 behind one that refuses it (or the
/// reverse) splits the stream differently: a desync.
pub fn parse_length(raw: &[u8]) -> Option<u64> {
    let digits = raw.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// nginx's framing rules for a request head, over its raw headers; its
/// `Content-Length`, if any. `Content-Length` not decimal digits, or twice,
/// → 400; `Transfer-Encoding` twice, on HTTP/1.0 (`minor` 0) or beside
/// `Content-Length` → 400; a coding other than a lone `chunked` → 501 (a
/// transfer coding we do not apply may not be dropped). The proxy applies
/// it to every request; a front end should apply it before handing a head
/// to a parser that hides some of it (hyper drops a `Content-Length` beside
/// `Transfer-Encoding`).
pub fn screen_framing<'a>(
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    minor: u8,
) -> Result<Option<u64>, StatusCode> {
    let (mut length, mut coding) = (None, None);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return Err(StatusCode::BAD_REQUEST);
            }
            length = Some(parse_length(value).ok_or(StatusCode::BAD_REQUEST)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if coding.is_some() {
                return Err(StatusCode::BAD_REQUEST);
            }
            coding = Some(value);
        }
    }
    match coding {
        None => Ok(length),
        Some(_) if minor == 0 || length.is_some() => Err(StatusCode::BAD_REQUEST),
        Some(v) if !v.eq_ignore_ascii_case(b"chunked") => Err(StatusCode::NOT_IMPLEMENTED),
        Some(_) => Ok(None),
    }
}

/// Whether the connection persists after this message, given its
/// `Connection` value: `close` ends it; `keep-alive` keeps an HTTP/1.0 one.
pub fn keep_alive_after(connection: &[u8], minor: u8, keep_alive: bool) -> bool {
    let mut keep = keep_alive;
    for token in connection.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if token.eq_ignore_ascii_case(b"close") {
            keep = false;
        } else if token.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
            keep = true;
        }
    }
    keep
}

/// Removes the complete interim responses (1xx but 101) at the front of
/// `buf`; true when nothing else is there yet, or only the start of what may
/// be another one (so a body upload continues), false once a final response
/// has begun.
pub fn skip_interim(buf: &mut BytesMut) -> bool {
    loop {
        if buf.is_empty() {
            return true;
        }
        // "HTTP/1.1 100 ": the status code is bytes 9..12.
        let Some(code) = buf.get(9..12) else {
            return b"HTTP/1.1 1".starts_with(&buf[..]) || b"HTTP/1.0 1".starts_with(&buf[..]);
        };
        if code[0] != b'1' || code == b"101" || !buf.starts_with(b"HTTP/1.") {
            return false;
        }
        match buf.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => buf.advance(end + 4),
            None => return true,
        }
    }
}

/// Parses the response head at the start of `buf`, removing it (and any
/// interim 1xx responses before it, but not a 101) from `buf`.
/// `Ok(None)`: incomplete, read more. `method` is the request's (a response
/// to HEAD has no body).
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
    max_size: usize,
) -> Result<Option<ResponseHead>, ParseError> {
    loop {
        let mut index = HeaderIndex::new();
        let (len, code, minor) = {
            let mut headers =
                [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut resp,
                buf,
                &mut headers,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => {
                    if buf.len() > max_size {
                        return Err(ParseError::TooLarge(max_size));
                    }
                    return Ok(None);
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ParseError::Head("too many headers"))
                }
                Err(_) => return Err(ParseError::Head("not an HTTP/1.x response")),
            };
            if len > max_size {
                return Err(ParseError::TooLarge(max_size));
            }
            index.record(buf, resp.headers);
            (len, resp.code.unwrap_or(0), resp.version.unwrap_or(1))
        };
        let status =
            StatusCode::from_u16(code).map_err(|_| ParseError::Head("status out of range"))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            // 100 Continue, 103 Early Hints: the real response follows.
            buf.advance(len);
            continue;
        }
        let head = buf.split_to(len).freeze();
        return build(head, &index, status, minor, method).map(Some);
    }
}

/// The response from its frozen head: framing and reuse by the one rule
/// of [`plumbing::http1`], the headers as a map without the hop-by-hop ones.
fn build(
    head: Bytes,
    index: &HeaderIndex,
    status: StatusCode,
    minor: u8,
    method: &Method,
) -> Result<ResponseHead, ParseError> {
    let mut seen = FramingHeaders::new();
    // `Connection` naming other headers (rare) is kept for the forwarding
    // step, which removes it and them.
    let mut names_others = false;
    for (name, raw) in index.iter(&head) {
        // `observe` matches on the name's length first: most headers cost
        // one comparison here, and the framing headers are read in this
        // same pass rather than in a second one.
        if seen.observe(name, raw) && name.eq_ignore_ascii_case(b"connection") {
            names_others |= raw.split(|&b| b == b',').map(<[u8]>::trim_ascii).any(|t| {
                !(t.is_empty()
                    || t.eq_ignore_ascii_case(b"close")
                    || t.eq_ignore_ascii_case(b"keep-alive")
                    || t.eq_ignore_ascii_case(b"upgrade"))
            });
        }
    }
    // Judged before the map is built: a response the rule refuses costs no
    // allocation.
    let ResponseFraming {
        framing,
        keep_alive,
    } = response_framing(*method == Method::HEAD, status.as_u16(), minor, &seen)?;
    // Hop-by-hop headers are for this connection only: left out of the map
    // the client's response is made from (a 101 keeps `Upgrade`).
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    let headers = index
        .to_map(&head, 2, |name| {
            is_hop_by_hop(name, upgrade)
                && !(names_others && name.eq_ignore_ascii_case(b"connection"))
        })
        .ok_or(ParseError::Head("invalid header"))?;
    let mut builder = http::Response::builder()
        .status(status)
        .version(if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|_| ParseError::Head("invalid response"))?
        .into_parts();
    Ok(ResponseHead {
        parts,
        framing,
        keep_alive,
    })
}

/// Decodes a chunked body incrementally from the connection's read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line (dropped).
    Trailers,
    /// The body is complete.
    Done,
}

impl Chunked {
    /// Takes what `buf` holds: `Ok(Some(data))` is a piece of the body;
    /// `Ok(None)` means read more, or the end when [`Chunked::Done`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ParseError> {
        loop {
            match *self {
                Chunked::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    let digits = line[..].split(|&b| b == b';').next().unwrap_or_default();
                    let digits = digits.trim_ascii();
                    if digits.is_empty() || digits.len() > 15 {
                        return Err(ParseError::Chunked("bad chunk size"));
                    }
                    let mut n = 0u64;
                    for &d in digits {
                        let v = (d as char)
                            .to_digit(16)
                            .ok_or(ParseError::Chunked("bad chunk size"))?;
                        n = n * 16 + u64::from(v);
                    }
                    *self = if n == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(n)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (buf.len() as u64).min(left);
                    let data = buf.split_to(n as usize).freeze();
                    *self = if n == left {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left - n)
                    };
                    return Ok(Some(data));
                }
                Chunked::DataEnd => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    if !line.is_empty() {
                        return Err(ParseError::Chunked("chunk not followed by CRLF"));
                    }
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    if line.is_empty() {
                        *self = Chunked::Done;
                    }
                }
                Chunked::Done => return Ok(None),
            }
        }
    }
}

/// One line (CRLF or LF removed) from the front of `buf`, if complete.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ParseError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(ParseError::Chunked("line too long")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_framing_as_nginx() {
        let check = |lines: &[(&str, &str)], minor| {
            screen_framing(
                lines.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
                minor,
            )
        };
        let bad = Err(StatusCode::BAD_REQUEST);
        assert_eq!(check(&[("Content-Length", "5")], 1), Ok(Some(5)));
        assert_eq!(check(&[("Content-Length", "+5")], 1), bad);
        assert_eq!(
            check(&[("content-length", "5"), ("Content-Length", "5")], 1),
            bad
        );
        assert_eq!(check(&[("Transfer-Encoding", "Chunked")], 1), Ok(None));
        assert_eq!(check(&[("Transfer-Encoding", "chunked")], 0), bad);
        assert_eq!(
            check(
                &[("Content-Length", "6"), ("Transfer-Encoding", "chunked")],
                1
            ),
            bad
        );
        assert_eq!(
            check(
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "6")],
                1
            ),
            bad
        );
        assert_eq!(
            check(
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ],
                1
            ),
            bad
        );
        assert_eq!(
            check(&[("Transfer-Encoding", "gzip, chunked")], 1),
            Err(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(parse_length(b" 12 "), Some(12));
        for lenient in [
            &b"+5"[..],
            b"-1",
            b"",
            b"5 5",
            b"0x5",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_length(lenient), None, "{lenient:?}");
        }
    }

    fn parse(bytes: &[u8], method: Method) -> (Result<Option<ResponseHead>, ParseError>, BytesMut) {
        let mut buf = BytesMut::from(bytes);
        let r = parse_response(&mut buf, &method, 64 * 1024);
        (r, buf)
    }

    #[test]
    fn response_head_owns_framing_and_connection() {
        let (parts, ()) = http::Response::builder()
            .status(404)
            .header("content-length", "999")
            .header("transfer-encoding", "chunked")
            .header("connection", "keep-alive")
            .header("date", "Sun, 29 Nov 2026 09:00:00 GMT")
            .header("x-one", "1")
            .body(())
            .unwrap()
            .into_parts();
        let mut out = Vec::new();
        write_response_head(
            &parts,
            SendFraming::Length(3),
            false,
            false,
            false,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\ndate: Sun, 29 Nov 2026 09:00:00 GMT\r\nx-one: 1\r\ncontent-length: 3\r\nconnection: close\r\n\r\n"
        );
        // A HEAD response passes the server's length on; 1.0 keep-alive is said.
        let mut out = Vec::new();
        write_response_head(&parts, SendFraming::None, true, true, true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("content-length: 999\r\n"), "{text}");
        assert!(text.ends_with("connection: keep-alive\r\n\r\n"), "{text}");
    }

    #[test]
    fn chunks_are_hex_sized() {
        let mut out = Vec::new();
        write_chunk(&[b'x'; 26], &mut out);
        assert!(out.starts_with(b"1a\r\nxxx"));
        assert!(out.ends_with(b"x\r\n"));
    }

    #[test]
    fn response_with_length_leaves_the_body_in_the_buffer() {
        let (r, buf) = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nok\nNEXT",
            Method::GET,
        );
        let h = r.unwrap().unwrap();
        assert_eq!(h.parts.status, 200);
        assert_eq!(h.framing, Framing::Length(3));
        assert!(h.keep_alive);
        assert_eq!(h.parts.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(&buf[..], b"ok\nNEXT");
    }

    #[test]
    fn hop_by_hop_headers_stay_out_of_the_map() {
        let (r, _) = parse(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nX-Kept: 1\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
        );
        let h = r.unwrap().unwrap().parts.headers;
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.contains_key("x-kept") && h.contains_key("content-length"));
        // A 101 keeps Upgrade; a Connection naming other headers is kept
        // for the forwarding step to act on.
        let (r, _) = parse(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade, x-private\r\nUpgrade: websocket\r\nX-Private: 1\r\n\r\n",
            Method::GET,
        );
        let h = r.unwrap().unwrap().parts.headers;
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade, x-private");
    }

    #[test]
    fn incomplete_head_asks_for_more() {
        let (r, buf) = parse(b"HTTP/1.1 200 OK\r\nContent-Le", Method::GET);
        assert!(r.unwrap().is_none());
        assert_eq!(buf.len(), 27);
    }

    /// The workspace's framing table (`plumbing::http1`), through this
    /// parser. Interim rows (1xx but 101) are swallowed: the parser waits
    /// for the final response, with the interim one gone from the buffer.
    #[test]
    fn follows_the_shared_framing_table() {
        use plumbing::http1::{ResponseFraming, RESPONSE_FRAMING_CASES};
        let mut wrong = Vec::new();
        for c in RESPONSE_FRAMING_CASES {
            let method = if c.method == "HEAD" {
                Method::HEAD
            } else {
                Method::GET
            };
            let (r, buf) = parse(c.head, method);
            let interim = c.head[9] == b'1' && !c.head.starts_with(b"HTTP/1.1 101");
            if interim {
                assert!(matches!(r, Ok(None)), "{}: {r:?}", c.name);
                assert!(
                    buf.is_empty(),
                    "{}: the interim response is skipped",
                    c.name
                );
                continue;
            }
            let got = match r {
                Ok(Some(h)) => {
                    assert!(buf.is_empty(), "{}: the head is consumed", c.name);
                    Ok(ResponseFraming {
                        framing: h.framing,
                        keep_alive: h.keep_alive,
                    })
                }
                Ok(None) => panic!("{}: a whole head read as incomplete", c.name),
                Err(ParseError::Framing(e)) => Err(e),
                Err(e) => {
                    wrong.push(format!("{}: {e}, rule {:?}", c.name, c.expected));
                    continue;
                }
            };
            if got != c.expected {
                wrong.push(format!("{}: got {got:?}, rule {:?}", c.name, c.expected));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn interim_responses_before_the_final_one_let_an_upload_go_on() {
        let mut b = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 1"[..]);
        assert!(
            skip_interim(&mut b),
            "an interim response, then maybe another"
        );
        assert_eq!(&b[..], b"HTTP/1.1 1");
        b.extend_from_slice(b"03 Early Hints\r\nLink: </a>\r\n\r\n");
        assert!(skip_interim(&mut b));
        assert!(b.is_empty());
        b.extend_from_slice(b"HTTP/1.1 413 Payload Too Large\r\n");
        assert!(!skip_interim(&mut b), "a final response");
        let mut b = BytesMut::from(&b"HTTP/1.1 101 Switching"[..]);
        assert!(!skip_interim(&mut b));
        let mut b = BytesMut::from(&b"HTTP/1.1 2"[..]);
        assert!(!skip_interim(&mut b));
        let mut b = BytesMut::from(&b"garbage"[..]);
        assert!(!skip_interim(&mut b));
    }

    #[test]
    fn interim_responses_are_skipped_but_101_is_not() {
        let (r, buf) = parse(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            Method::POST,
        );
        assert_eq!(r.unwrap().unwrap().parts.status, 201);
        assert!(buf.is_empty());
        let (r, _) = parse(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            Method::GET,
        );
        assert_eq!(r.unwrap().unwrap().parts.status, 101);
    }

    #[test]
    fn garbage_and_conflicts_are_errors() {
        for bytes in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 99 Odd\r\n\r\n",
        ] {
            let (r, _) = parse(bytes, Method::GET);
            assert!(r.is_err(), "{}", String::from_utf8_lossy(bytes));
        }
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 100));
        let mut buf = BytesMut::from(&big[..]);
        assert!(matches!(
            parse_response(&mut buf, &Method::GET, 64),
            Err(ParseError::TooLarge(64))
        ));
    }

    #[test]
    fn chunked_decodes_across_reads() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nREST";
        // Fed one byte at a time, as the worst network would.
        let mut dec = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for &b in &wire[..] {
            buf.extend_from_slice(&[b]);
            while let Some(d) = dec.decode(&mut buf).unwrap() {
                body.extend_from_slice(&d);
            }
            if dec == Chunked::Done {
                break;
            }
        }
        assert_eq!(body, b"Wikipedia");
        assert_eq!(dec, Chunked::Done);
        let mut rest = BytesMut::from(&b"REST"[..]);
        assert!(dec.decode(&mut rest).unwrap().is_none());
    }

    #[test]
    fn chunked_rejects_bad_sizes_and_missing_crlf() {
        for wire in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", b"\r\n"] {
            let mut dec = Chunked::Size;
            let mut buf = BytesMut::from(wire);
            let mut r = Ok(None);
            for _ in 0..4 {
                r = dec.decode(&mut buf);
                if r.is_err() {
                    break;
                }
            }
            assert!(r.is_err(), "{}", String::from_utf8_lossy(wire));
        }
    }
}
