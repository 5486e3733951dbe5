//! The response head parser: status, framing and what the client must act
//! on (cookies), read in place from the connection's buffer.
//!
//! It scans bytes rather than using `httparse`, because it needs no header
//! map: only four header names matter to a load generator, and the rest are
//! skipped without being validated beyond `name: value`. The framing
//! verdict is `plumbing::http1`'s.

use plumbing::http1::{response_framing, Framing, FramingError, FramingHeaders};

/// Largest response head accepted (status line and headers); also the
/// longest line of a chunked body.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Why a response cannot be read. The client reports it as an `io` failure
/// ("invalid HTTP response: …") and drops the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// The bytes are not an HTTP/1.x response.
    #[error("does not start with HTTP/: {0:?}")]
    NotHttp(String),
    /// The status line is malformed.
    #[error("bad status line {0:?}")]
    StatusLine(String),
    /// A status below 100.
    #[error("status {0}")]
    Status(u16),
    /// A header line without a colon.
    #[error("bad header line {0:?}")]
    HeaderLine(String),
    /// An empty header name, or one with whitespace.
    #[error("bad header name {0:?}")]
    HeaderName(String),
    /// The head exceeds [`MAX_HEAD`].
    #[error("head larger than {} KiB", MAX_HEAD / 1024)]
    HeadTooLarge,
    /// The framing headers are invalid (`plumbing::http1`).
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A chunk-size line that is not hex digits.
    #[error("bad chunk size")]
    ChunkSize,
    /// Chunk data not followed by CRLF.
    #[error("chunk not followed by CRLF")]
    ChunkEnd,
    /// A chunk-size or trailer line longer than [`MAX_HEAD`].
    #[error("chunk line too long")]
    ChunkLine,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Status code (100–999).
    pub status: u16,
    /// Bytes of the head, blank line included.
    pub len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection may carry the next request.
    pub keep_alive: bool,
    /// A 1xx response other than 101: another head follows.
    pub interim: bool,
    /// The head has `Set-Cookie` headers (for the jar).
    pub has_cookies: bool,
}

/// Parses the response head at the start of `buf`: `Ok(None)` until it is
/// complete. `head_request`: the request was a `HEAD` (no body follows).
pub(crate) fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, WireError> {
    let Some(end) = head_end(buf) else {
        if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            return Err(WireError::NotHttp(preview(buf)));
        }
        if buf.len() >= MAX_HEAD {
            return Err(WireError::HeadTooLarge);
        }
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n');
    let (minor, status) = status_line(lines.next().unwrap_or_default())?;
    let mut seen = FramingHeaders::new();
    let has_cookies = headers(lines, &mut seen)?;
    let verdict = response_framing(head_request, status, minor, &seen)?;
    Ok(Some(Head {
        status,
        len: end,
        framing: verdict.framing,
        keep_alive: verdict.keep_alive,
        interim: (100..200).contains(&status) && status != 101,
        has_cookies,
    }))
}

/// `HTTP/1.x SSS[ reason]`: the minor version and the status.
fn status_line(line: &[u8]) -> Result<(u8, u16), WireError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (minor, status) = match line {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, b' ', a, b, c, rest @ ..]
            if minor.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (rest.is_empty() || rest[0] == b' ') =>
        {
            let digit = |d: &u8| u16::from(d - b'0');
            (minor - b'0', digit(a) * 100 + digit(b) * 10 + digit(c))
        }
        _ => return Err(WireError::StatusLine(preview(line))),
    };
    if status < 100 {
        return Err(WireError::Status(status));
    }
    Ok((minor, status))
}

/// Reads the header lines into `seen`; returns whether `Set-Cookie` was among them.
fn headers<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    seen: &mut FramingHeaders,
) -> Result<bool, WireError> {
    let mut has_cookies = false;
    for line in lines {
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        if trimmed.is_empty() {
            break;
        }
        if trimmed[0] == b' ' || trimmed[0] == b'\t' {
            // Obsolete line folding: the value continues; nothing we read.
            continue;
        }
        let Some((name, value)) = split_header(trimmed) else {
            return Err(WireError::HeaderLine(preview(trimmed)));
        };
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(WireError::HeaderName(preview(name)));
        }
        if !seen.observe(name, value) && name.eq_ignore_ascii_case(b"set-cookie") {
            has_cookies = true;
        }
    }
    Ok(has_cookies)
}

/// The length of the head (through the blank line), if `buf` holds all of it.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        // "\n\n" or "\n\r\n" ends the head.
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// `name: value` of one header line (CR stripped, value trimmed).
pub(crate) fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    Some((name, value.trim_ascii()))
}

/// The start of `b`, for an error message.
pub(super) fn preview(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbing::http1::{ResponseFraming, RESPONSE_FRAMING_CASES};

    fn head(s: &str) -> Head {
        parse_head(s.as_bytes(), false).unwrap().unwrap()
    }

    /// The workspace's framing table, through this parser.
    #[test]
    fn follows_the_shared_framing_table() {
        for c in RESPONSE_FRAMING_CASES {
            let got = parse_head(c.head, c.method == "HEAD")
                .map(|h| {
                    let h = h.expect("a whole head");
                    assert_eq!(h.len, c.head.len(), "{}", c.name);
                    ResponseFraming {
                        framing: h.framing,
                        keep_alive: h.keep_alive,
                    }
                })
                .map_err(|e| match e {
                    WireError::Framing(f) => f,
                    other => panic!("{}: {other}", c.name),
                });
            assert_eq!(got, c.expected, "{}", c.name);
        }
    }

    #[test]
    fn reads_status_length_and_cookies() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(
            (h.status, h.framing, h.keep_alive, h.len, h.interim),
            (200, Framing::Length(2), true, 38, false)
        );
        let h = head("HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h.interim);
        assert!(!head("HTTP/1.1 101 Switching Protocols\r\n\r\n").interim);
        // Bare LF line ends, no reason phrase, folded lines skipped.
        let h = head("HTTP/1.1 200\nset-cookie: a=1\n\n");
        assert_eq!((h.status, h.len, h.has_cookies), (200, 30, true));
        let h = head("HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\ncontent-length: 1\r\n\r\n");
        assert_eq!((h.framing, h.has_cookies), (Framing::Length(1), false));
    }

    #[test]
    fn waits_for_a_whole_head_and_rejects_garbage() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false),
            Ok(None)
        );
        assert_eq!(parse_head(b"HTT", false), Ok(None));
        let cases: &[(&[u8], &str)] = &[
            (
                b"SSH-2.0-OpenSSH\r\n",
                "does not start with HTTP/: \"SSH-2.0-OpenSSH\\r\\n\"",
            ),
            (
                b"HTTP/1.1 2x0 OK\r\n\r\n",
                "bad status line \"HTTP/1.1 2x0 OK\"",
            ),
            (b"HTTP/2 200\r\n\r\n", "bad status line \"HTTP/2 200\""),
            (b"HTTP/1.1 099 Odd\r\n\r\n", "status 99"),
            (
                b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                "bad header line \"no colon\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n",
                "bad header name \"bad name\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "invalid Content-Length",
            ),
        ];
        for (bytes, message) in cases {
            let e = parse_head(bytes, false).unwrap_err();
            assert_eq!(e.to_string(), *message);
        }
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.resize(MAX_HEAD, b'x');
        assert_eq!(parse_head(&big, false), Err(WireError::HeadTooLarge));
    }
}
