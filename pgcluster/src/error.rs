//! The one error type of the crate. Each variant's message says what the
//! person running the lab or the tests can do about it, since that message is
//! usually all they see (the lab prints it with `{:#}` and exits).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a cluster could not be started, used or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `initdb`/`postgres` pair was found.
    #[error(
        "the PostgreSQL server binaries (initdb, postgres) were not found (looked in {looked_in}): \
         install them with `apt-get install postgresql` (Debian/Ubuntu), \
         or set PGCLUSTER_BIN_DIR to the folder that holds them"
    )]
    NotInstalled { looked_in: String },

    /// `setpriv` (util-linux) starts the server with a death signal and, as root,
    /// under an unprivileged user.
    #[error("`setpriv` was not found on PATH: install it with `apt-get install util-linux`")]
    SetprivMissing,

    /// The unprivileged user to run PostgreSQL as (when the owner is root) is unknown.
    #[error("PostgreSQL refuses to run as root and must run as another user, but user `{0}` does not exist (or is root itself): name an existing unprivileged user")]
    UnknownUser(String),

    /// The unprivileged user cannot reach the data folder.
    #[error(
        "PostgreSQL refuses to run as root, so it runs as `{user}`, but `{user}` cannot enter {blocked} \
         (on the way to {data_dir}): choose a data folder that `{user}` can reach, \
         or let it in with `chmod o+x {blocked}`"
    )]
    Unreachable {
        user: String,
        blocked: PathBuf,
        data_dir: PathBuf,
    },

    /// The data folder holds something that is not a stopped throwaway cluster.
    #[error("data folder {dir} cannot be used: {why}")]
    DataDirInUse { dir: PathBuf, why: String },

    /// A name or password that the cluster cannot take.
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },

    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },

    /// A PostgreSQL client or tool (`initdb`, `createdb`) failed or hung.
    #[error("{program} failed ({outcome}): {output}")]
    Tool {
        program: &'static str,
        outcome: String,
        output: String,
    },

    /// The server exited before it accepted connections.
    #[error("PostgreSQL exited while starting ({status}); the end of {log}:\n{tail}")]
    Exited {
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },

    /// The server did not accept connections in time.
    #[error("PostgreSQL did not accept connections on {addr} within {timeout:?}; the end of {log}:\n{tail}")]
    StartTimeout {
        addr: std::net::SocketAddr,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },

    /// The server's processes outlived the stop bound and a SIGKILL.
    #[error("PostgreSQL (pid {pid}) did not stop within {timeout:?}, even after SIGKILL")]
    StopTimeout { pid: u32, timeout: Duration },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
