//! HTTP/1.1 as loadgen speaks it, over buffers only: the request writer, the
//! response head parser and the chunked-body decoder. No I/O and no async:
//! [`crate::client`] drives these against a socket, as the balancer's
//! `proxy::client` drives `proxy::h1`.
//!
//! Which body follows a head, and whether the connection may be reused, is
//! not decided here but by `plumbing::http1` (RFC 9112 §6.3), the rule the
//! balancer's parser follows too; `response` only feeds it the headers it
//! meets. Everything works in place on the client's reused buffers: nothing
//! here allocates on the success path.

mod chunked;
mod request;
mod response;

pub use request::valid_header_value;

pub(crate) use chunked::{Chunk, ChunkDecoder};
pub(crate) use request::RequestBuf;
pub(crate) use response::{parse_head, split_header, Head, WireError};

#[cfg(test)]
pub(crate) use response::head_end;
