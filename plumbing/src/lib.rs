//! The plumbing every Market Lab binary shares and none owns: how logs look,
//! when colour is used, which signals stop a program, how a usage error is
//! printed, how report pages escape text, and how an HTTP/1.1 response
//! body is delimited (`http1`, shared by loadgen's and the balancer's clients).
//!
//! It exists so that a rule is written once: before it, four `init_tracing`s
//! had three behaviours and two HTML escapers disagreed on `'`. Like
//! ripgrep's `grep-cli`, it holds no domain logic; each crate keeps its own.

pub mod args;
pub mod html;
pub mod http1;
pub mod log;
pub mod signal;
pub mod svg;

pub use args::parse_or_exit;
pub use log::{colour_enabled, init_tracing};
pub use signal::shutdown_signal;
