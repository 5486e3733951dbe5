//! The chunked-body decoder (RFC 9112 §7.1), incremental and in place.
//!
//! It consumes the framing (size lines, the CRLF after each chunk, the
//! trailers) from the front of the read buffer and says how many bytes of
//! body data come next; the caller keeps those (moving them out without a
//! copy when a whole chunk is there) or skips them. So a body nobody asked
//! for is only counted, and the decoder never allocates.

use bytes::{Buf, BytesMut};

use super::response::MAX_HEAD;
use super::WireError;

/// What the front of the buffer holds, after [`ChunkDecoder::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// The first `n` bytes are body data: the caller removes them
    /// (`n` ≥ 1), then calls again.
    Data(usize),
    /// Read more, then call again.
    More,
    /// The body is complete; what follows belongs to the next response.
    Done,
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: data bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line (ignored).
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes one chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkDecoder(State);

impl ChunkDecoder {
    /// At the start of a body.
    pub(crate) fn new() -> Self {
        ChunkDecoder(State::Size)
    }

    /// Consumes framing from the front of `buf` and reports what is next.
    /// After `Chunk::Data(n)` the caller must remove exactly `n` bytes.
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Chunk, WireError> {
        loop {
            match self.0 {
                State::Size => {
                    let Some((len, next)) = line(buf)? else {
                        return Ok(Chunk::More);
                    };
                    let size = chunk_size(&buf[..len])?;
                    buf.advance(next);
                    self.0 = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Chunk::More);
                    }
                    let n = (buf.len() as u64).min(left);
                    self.0 = if n == left {
                        State::DataEnd
                    } else {
                        State::Data(left - n)
                    };
                    // `n` ≤ `buf.len()`, so it fits a usize.
                    return Ok(Chunk::Data(n as usize));
                }
                State::DataEnd => match (buf.first().copied(), buf.get(1).copied()) {
                    (None, _) | (Some(b'\r'), None) => return Ok(Chunk::More),
                    (Some(b'\n'), _) => {
                        buf.advance(1);
                        self.0 = State::Size;
                    }
                    (Some(b'\r'), Some(b'\n')) => {
                        buf.advance(2);
                        self.0 = State::Size;
                    }
                    _ => return Err(WireError::ChunkEnd),
                },
                State::Trailers => {
                    let Some((len, next)) = line(buf)? else {
                        return Ok(Chunk::More);
                    };
                    buf.advance(next);
                    if len == 0 {
                        self.0 = State::Done;
                    }
                }
                State::Done => return Ok(Chunk::Done),
            }
        }
    }
}

/// The line at the front of `buf`, if complete: its length without the line
/// end (CRLF or LF), and with it.
fn line(buf: &[u8]) -> Result<Option<(usize, usize)>, WireError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && buf[i - 1] == b'\r' => Ok(Some((i - 1, i + 1))),
        Some(i) => Ok(Some((i, i + 1))),
        None if buf.len() > MAX_HEAD => Err(WireError::ChunkLine),
        None => Ok(None),
    }
}

/// The size in a chunk-size line (`1a`, `1a;ext=1`).
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let hex = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if hex.is_empty() {
        return Err(WireError::ChunkSize);
    }
    hex.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(16).ok_or(WireError::ChunkSize)?;
        acc.checked_mul(16)
            .and_then(|a| a.checked_add(u64::from(digit)))
            .ok_or(WireError::ChunkSize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` delivered in the given pieces: the body, and what is
    /// left in the buffer after it (the next response).
    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, Vec<u8>), WireError> {
        let mut dec = ChunkDecoder::new();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut pieces = pieces.iter();
        loop {
            match dec.next(&mut buf)? {
                Chunk::Data(n) => {
                    assert!(n > 0 && n <= buf.len());
                    body.extend_from_slice(&buf.split_to(n));
                }
                Chunk::More => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return Err(incomplete()),
                },
                Chunk::Done => return Ok((body, buf.to_vec())),
            }
        }
    }

    /// Stands for "the connection closed mid-body" in these tests.
    fn incomplete() -> WireError {
        WireError::NotHttp("incomplete".into())
    }

    const GOOD: &[(&str, &[u8], &[u8])] = &[
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            "two chunks",
            b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
            b"Wikipedia",
        ),
        ("empty body", b"0\r\n\r\n", b""),
        ("hex sizes", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (
            "upper and lower hex",
            b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
            b"abcdefghijklmnopqrstuvwxyz",
        ),
        ("leading zeros", b"0003\r\nabc\r\n000\r\n\r\n", b"abc"),
        (
            "extensions",
            b"3;name=value\r\nabc\r\n2 ; a ; b=\"q\"\r\nde\r\n0;last\r\n\r\n",
            b"abcde",
        ),
        (
            "trailers",
            b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
            b"abc",
        ),
        ("bare LF", b"3\nabc\n0\n\n", b"abc"),
        ("CRLF inside data", b"4\r\na\r\nb\r\n0\r\n\r\n", b"a\r\nb"),
    ];

    #[test]
    fn decodes_split_at_every_byte_boundary() {
        for (name, wire, body) in GOOD {
            // The next response's start follows: it must be left in the buffer.
            let after: &[u8] = b"HTTP/1.1 200 OK\r\n";
            let mut stream = wire.to_vec();
            stream.extend_from_slice(after);
            for cut in 0..=stream.len() {
                let (a, b) = stream.split_at(cut);
                let (got, rest) = decode(&[a, b]).unwrap_or_else(|e| panic!("{name} @{cut}: {e}"));
                assert_eq!(got, *body, "{name} @{cut}");
                // The second piece is read only if the body needs it.
                let left = if cut < wire.len() {
                    after
                } else {
                    &after[..cut - wire.len()]
                };
                assert_eq!(rest, left, "{name} @{cut}");
            }
            // And one byte at a time, as the worst network would.
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            assert_eq!(decode(&bytes).unwrap().0, *body, "{name} bytewise");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        let cases: &[(&str, &[u8], WireError)] = &[
            ("bad hex", b"zz\r\n", WireError::ChunkSize),
            ("hex then junk", b"1g\r\nx\r\n", WireError::ChunkSize),
            ("empty size", b"\r\n", WireError::ChunkSize),
            ("only an extension", b";x=1\r\n", WireError::ChunkSize),
            ("signed size", b"+1\r\nx\r\n", WireError::ChunkSize),
            (
                "size overflow",
                b"10000000000000000\r\n",
                WireError::ChunkSize,
            ),
            ("data too long", b"3\r\nabcX\r\n", WireError::ChunkEnd),
            ("CR without LF", b"3\r\nabc\rX", WireError::ChunkEnd),
        ];
        for (name, wire, error) in cases {
            for cut in 0..=wire.len() {
                let (a, b) = wire.split_at(cut);
                assert_eq!(decode(&[a, b]).unwrap_err(), *error, "{name} @{cut}");
            }
        }
    }

    #[test]
    fn an_oversized_line_is_refused_without_waiting_for_its_end() {
        let mut size_line = b"1".to_vec();
        size_line.resize(MAX_HEAD + 1, b'0');
        assert_eq!(decode(&[&size_line[..]]).unwrap_err(), WireError::ChunkLine);
        let mut ext = b"1;".to_vec();
        ext.resize(MAX_HEAD + 1, b'x');
        assert_eq!(decode(&[&ext[..]]).unwrap_err(), WireError::ChunkLine);
        let mut trailer = b"0\r\nX-Big: ".to_vec();
        trailer.resize(MAX_HEAD + 12, b'x');
        assert_eq!(decode(&[&trailer[..]]).unwrap_err(), WireError::ChunkLine);
        // A long line that does end is only a matter of its content.
        let mut long_ext = b"3;".to_vec();
        long_ext.resize(4096, b'x');
        long_ext.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
        assert_eq!(decode(&[&long_ext[..]]).unwrap().0, b"abc");
    }

    #[test]
    fn a_body_cut_short_asks_for_more() {
        for wire in [
            &b"5\r\nhel"[..],
            b"5\r\nhello",
            b"5\r\nhello\r\n",
            b"0\r\nX: 1\r\n",
        ] {
            assert_eq!(decode(&[wire]).unwrap_err(), incomplete());
        }
    }

    #[test]
    fn done_stays_done() {
        let mut dec = ChunkDecoder::new();
        let mut buf = BytesMut::from(&b"0\r\n\r\nNEXT"[..]);
        assert_eq!(dec.next(&mut buf), Ok(Chunk::Done));
        assert_eq!(dec.next(&mut buf), Ok(Chunk::Done));
        assert_eq!(&buf[..], b"NEXT");
    }
}
