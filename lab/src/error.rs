//! The lab's error type at the crate boundary.
//!
//! Every variant's message says what went wrong *and* what to do about it,
//! because the lab is the first thing a newcomer runs: "port in use", "the
//! database cannot be created", "replica 2 exited before listening" must read
//! as instructions, not as stack traces.

use std::path::PathBuf;

/// Everything that can go wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or a combination of flags makes no sense.
    #[error("{0}")]
    Usage(String),
    /// A file or folder could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A child process (replica, balancer, seeding) could not be started.
    #[error("cannot start {what}: {source} (is the lab binary still on disk? rebuild with `cargo build -p lab`)")]
    Spawn {
        /// Which role.
        what: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A child process exited (or never announced its address) during start-up.
    #[error("{what} did not start: {reason}\n  log: {log}\n{tail}")]
    StartFailed {
        /// Which role.
        what: String,
        /// Why the lab gave up on it.
        reason: String,
        /// The log file that holds its full stderr.
        log: PathBuf,
        /// The last lines of its stderr, indented.
        tail: String,
    },
    /// A one-shot child (migrate, seed) exited with an error.
    #[error("{what} failed ({status}); see {log}\n{tail}")]
    TaskFailed {
        /// Which role.
        what: String,
        /// Its exit status.
        status: String,
        /// The log file that holds its full stderr.
        log: PathBuf,
        /// The last lines of its stderr, indented.
        tail: String,
    },
    /// An address the user asked for is taken.
    #[error("{addr} is already in use: stop whatever listens there (`ss -ltnp | grep {port}`) or choose another port")]
    PortInUse {
        /// The address asked for.
        addr: String,
        /// Its port, for the hint.
        port: u16,
    },
    /// The SQLite database file cannot be created where asked.
    #[error(
        "cannot create the database {path}: {reason} (choose a writable place with --database)"
    )]
    Database {
        /// The file asked for.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The throwaway PostgreSQL cluster could not be started or used (its
    /// message says what to install or change).
    #[error("PostgreSQL for the lab: {0}")]
    Postgres(#[from] pgcluster::Error),
    /// A CPU budget was asked for but no cgroup could be written.
    #[error("{0}")]
    Cgroup(String),
    /// Talking to a part of the stack over HTTP failed.
    #[error("{what}: {message}")]
    Http {
        /// What the lab asked for.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The load generator failed.
    #[error("load generator: {0}")]
    Load(#[from] loadgen::Error),
    /// The load generator refused a change of load.
    #[error("load generator: {0}")]
    Control(#[from] loadgen::ControlError),
    /// A role run in this process (`lab market-api`, `lab balancer`) failed.
    #[error("{0}")]
    Role(String),
    /// Ctrl-C or SIGTERM arrived; everything was torn down.
    #[error("interrupted; all lab processes were stopped")]
    Interrupted,
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code `main` should use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Interrupted => 130,
            _ => 1,
        }
    }
}
