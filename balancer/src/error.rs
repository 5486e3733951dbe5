//! The crate's error type, for callers of [`crate::run`] and [`crate::serve`].

use std::net::SocketAddr;

use crate::config::ConfigError;

/// What can stop the balancer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    // The cause is part of the message and deliberately not a `source`:
    // printers of the whole chain (`{:#}`) would show it twice.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        cause: std::io::Error,
    },
    /// Any other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
