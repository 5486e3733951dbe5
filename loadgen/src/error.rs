//! The crate's error type, and the exit codes the binary maps it to.
//!
//! Exit codes (documented in `docs/loadgen.md`): 0 all good, 1 at least one
//! request failed (Locust's convention), 2 usage or input error (bad flag,
//! invalid scenario file, bad JSON to merge), 3 a threshold was breached,
//! 4 any other runtime failure (cannot write a report, cannot bind). An
//! output path that cannot be written is found before the run: exit code 2.

use std::path::PathBuf;

/// Everything that can go wrong in loadgen, at the crate boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or a combination of flags makes no sense.
    #[error("{0}")]
    Usage(String),
    /// The scenario file could not be read or is invalid (message names file:line).
    #[error("{0}")]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Some report files could not be written (the others were): one
    /// `flag: path: reason` per failure.
    #[error("cannot write every report: {}", .0.join("; "))]
    ReportsNotWritten(Vec<String>),
    /// A result file given to `merge` is not a loadgen JSON report.
    #[error("{path}: not a loadgen JSON report: {message}")]
    BadReport {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The controller refused a request (bad start parameters, nothing running).
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// Binding a listener (dashboard) failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The dashboard server failed.
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    /// The run finished, but at least one request failed (exit code 1).
    #[error("{failures} of {requests} requests failed")]
    RequestsFailed {
        /// Failed requests.
        failures: u64,
        /// All requests.
        requests: u64,
    },
    /// The run finished, but thresholds were breached (exit code 3).
    #[error("thresholds breached: {}", .0.join("; "))]
    ThresholdsBreached(Vec<String>),
}

impl Error {
    /// The process exit code for this error (see the module documentation).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::RequestsFailed { .. } => 1,
            Error::Usage(_) | Error::Scenario(_) | Error::BadReport { .. } | Error::Control(_) => 2,
            Error::ThresholdsBreached(_) => 3,
            Error::Io { .. } | Error::ReportsNotWritten(_) | Error::Bind { .. } | Error::Web(_) => {
                4
            }
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
