//! Connection pools for the two backends, picked by the URL's scheme:
//! `sqlite://…` (the default) or `postgres://…`.
//!
//! **SQLite**: WAL journal (readers never block the writer), a 5 s busy
//! timeout (a writer waits for another process's write to finish), foreign
//! keys on, `synchronous = NORMAL` (durable at checkpoints, safe with WAL).
//! The file is switched to WAL once, before the pools open (see
//! [`switch_to_wal`]), because that switch is the one start-up step the busy
//! timeout does not cover. Reads go to a pool sized to the cores; writes go
//! to a single connection so that the replicas' processes, not this
//! process's own tasks, are the only writers SQLite ever has to arbitrate
//! between.
//!
//! **PostgreSQL**: one pool (`--pool-size`), statements prepared once per
//! connection (sqlx's statement cache), each connection tested before it is
//! handed out so that a restarted server's dead connections are replaced
//! rather than failing a request. The server may come up after the API: the
//! first connection is retried with backoff up to `--startup-timeout` (see
//! [`connect_postgres`]).
//!
//! [`Db`] is an enum, not a trait object: every query function matches on it
//! and runs its backend's statement, so SQLite's path costs one branch and no
//! allocation or dynamic dispatch more than before.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Postgres, Sqlite, Transaction};

use super::wal_stamp::{Stamp, WalStamp};
use crate::error::{Error, PgFault, PgStartError, PgTarget};

/// How long a connection waits for another writer's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for a PostgreSQL connection before it answers
/// 503: long enough for a busy pool, short enough that a client of a server
/// that went away hears so within seconds.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The database of this process: SQLite's two pools or PostgreSQL's one.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// The read and write pools of one SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    /// Connections for queries (no writes).
    pub read: SqlitePool,
    /// One connection: all writes of this process, serialized.
    pub write: SqlitePool,
    /// The WAL-index header's reader (`None` for an in-memory database).
    pub stamp: Option<Arc<WalStamp>>,
}

/// Where a query runs: a pool (reads) or the connection of a write
/// transaction (which sees its own changes). Query functions take one and
/// match on it; see the `run!` macro in [`crate::db`].
pub enum Conn<'c> {
    SqlitePool(&'c SqlitePool),
    Sqlite(&'c mut SqliteConnection),
    PgPool(&'c PgPool),
    Pg(&'c mut PgConnection),
}

/// A write transaction. On SQLite it holds the database's write lock from
/// its first statement (`BEGIN IMMEDIATE`); on PostgreSQL it is a plain
/// `BEGIN` (read committed), and the few writes that check-then-insert
/// (slugs, e-mails) take a transaction-level advisory lock first.
pub enum WriteTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl WriteTx {
    /// The transaction's connection, for a query function.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            WriteTx::Sqlite(tx) => Conn::Sqlite(tx),
            WriteTx::Postgres(tx) => Conn::Pg(tx),
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await,
            WriteTx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Which backend a URL names, from its scheme alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// How to open the database (from [`crate::ServeConfig`] or the CLI).
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Connections in SQLite's read pool or PostgreSQL's pool (`None`: two
    /// per core).
    pub pool_size: Option<u32>,
    /// How long to keep trying to reach PostgreSQL at start.
    pub startup_timeout: Duration,
}

impl Db {
    /// Opens the database at `url`: creates a missing SQLite file, or waits
    /// (bounded by `startup_timeout`) for PostgreSQL to accept a connection.
    pub async fn open(url: &str, options: OpenOptions) -> Result<Db, Error> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        let pool_size = options.pool_size.unwrap_or(cores * 2).max(1);
        match Backend::of_url(url) {
            Some(Backend::Sqlite) => open_sqlite(url, pool_size).await.map(Db::Sqlite),
            Some(Backend::Postgres) => connect_postgres(url, pool_size, options.startup_timeout)
                .await
                .map(Db::Postgres),
            None => Err(Error::DatabaseScheme { url: redact(url) }),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite WAL-index header as it stands (see [`WalStamp`]): equal
    /// stamps mean no transaction committed between them, from any process.
    /// `None` on PostgreSQL, or when the header cannot be read consistently.
    pub fn commit_stamp(&self) -> Option<Stamp> {
        match self {
            Db::Sqlite(db) => db.stamp.as_ref()?.read(),
            Db::Postgres(_) => None,
        }
    }

    /// Where reads run: SQLite's read pool, or PostgreSQL's pool.
    pub fn reader(&self) -> Conn<'_> {
        match self {
            Db::Sqlite(db) => Conn::SqlitePool(&db.read),
            Db::Postgres(pool) => Conn::PgPool(pool),
        }
    }

    /// A write transaction (see [`WriteTx`]).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self {
            Db::Sqlite(db) => Ok(WriteTx::Sqlite(
                db.write.begin_with("BEGIN IMMEDIATE").await?,
            )),
            Db::Postgres(pool) => Ok(WriteTx::Postgres(pool.begin().await?)),
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        match self {
            Db::Sqlite(db) => sqlx::query_scalar::<_, i64>("SELECT 1")
                .fetch_one(&db.read)
                .await
                .is_ok(),
            Db::Postgres(pool) => sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(pool)
                .await
                .is_ok(),
        }
    }

    /// Closes the pools (waits for checked-out connections).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(db) => {
                db.read.close().await;
                db.write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

async fn open_sqlite(url: &str, readers: u32) -> Result<SqliteDb, Error> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| Error::DatabaseUrl {
            url: redact(url),
            error,
        })?
        .create_if_missing(true)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .statement_cache_capacity(256);
    switch_to_wal(&options).await?;
    // WAL is now recorded in the file, so the pools' connections use it
    // without being told (and never try to switch it themselves).
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone())
        .await?;
    let read = SqlitePoolOptions::new()
        .max_connections(readers)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone().pragma("query_only", "ON"))
        .await?;
    // After the pools: their connections made the `-shm` file.
    let stamp = WalStamp::open(options.get_filename()).map(Arc::new);
    Ok(SqliteDb { read, write, stamp })
}

/// Connects to PostgreSQL, retrying what may pass (refused, reset, the
/// server starting or shutting down) with a doubling backoff up to
/// `timeout`, and giving up at once on what will not (wrong credentials, a
/// missing database). Each failed attempt logs one line saying what to
/// check; the final error says it again, naming user and host but never the
/// password.
async fn connect_postgres(url: &str, pool_size: u32, timeout: Duration) -> Result<PgPool, Error> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|error| Error::DatabaseUrl {
            url: redact(url),
            error,
        })?
        .statement_cache_capacity(256)
        .application_name("market-api");
    let target = PgTarget {
        user: options.get_username().to_owned(),
        host: options.get_host().to_owned(),
        port: options.get_port(),
        database: options.get_database().unwrap_or("postgres").to_owned(),
    };
    let password = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned));
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        // A host that drops packets would hang a connect: each attempt gets
        // what is left of the timeout (at least a second).
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let error = match tokio::time::timeout(left, options.connect()).await {
            Ok(Ok(conn)) => {
                drop(conn.close().await);
                break;
            }
            Ok(Err(e)) => e,
            Err(_) => sqlx::Error::Io(std::io::ErrorKind::TimedOut.into()),
        };
        let failure = PgStartError {
            target: target.clone(),
            fault: PgFault::classify(&error),
            waited: started.elapsed(),
            cause: redacted_cause(&error, password.as_deref()),
        };
        if !failure.fault.is_transient() || started.elapsed() + backoff >= timeout {
            return Err(Error::Postgres(failure));
        }
        tracing::warn!("{failure}; retrying in {backoff:?}");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .min_connections(1)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .test_before_acquire(true)
        .connect_lazy_with(options);
    Ok(pool)
}

/// The error's text, with the password cut out should a driver ever quote it.
fn redacted_cause(error: &sqlx::Error, password: Option<&str>) -> String {
    let text = error.to_string();
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text,
    }
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Puts the database file in WAL mode, a setting SQLite keeps in the file.
///
/// On a fresh file, replicas starting together race to do this, and SQLite
/// answers the loser with `SQLITE_BUSY` at once instead of waiting on the
/// busy timeout: the switch reads the header under a shared lock and then
/// needs the write lock, and SQLite never waits in that upgrade (two waiting
/// upgraders would deadlock). The winner holds its lock for a few
/// milliseconds, so the loser retries with a short backoff, for as long as
/// the busy timeout would have let it wait, and then finds WAL already on.
async fn switch_to_wal(options: &SqliteConnectOptions) -> Result<(), sqlx::Error> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut backoff = Duration::from_millis(5);
    let mut attempt = 1;
    loop {
        match try_switch_to_wal(options).await {
            Ok(mode) => {
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(%mode, "database did not switch to WAL");
                }
                return Ok(());
            }
            Err(e) if is_busy(&e) && Instant::now() + backoff < deadline => {
                tracing::debug!(error = %e, attempt, "WAL switch raced another process, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(100));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt on its own connection; returns the journal mode now in force.
async fn try_switch_to_wal(options: &SqliteConnectOptions) -> Result<String, sqlx::Error> {
    let mut conn = options.connect().await?;
    let mode = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(mode)
}

/// Whether `e` is `SQLITE_BUSY` (any of its extended codes).
fn is_busy(e: &sqlx::Error) -> bool {
    crate::error::is_busy(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(Backend::of_url("sqlite://m.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://u:p@h/d"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("PostgreSQL://u@h/d"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://u@h/d"), None);
        assert_eq!(Backend::of_url("market.db"), None);
    }

    #[test]
    fn urls_and_causes_never_show_the_password() {
        assert_eq!(
            redact("postgres://lab:s3cret@10.0.0.5:5432/market"),
            "postgres://lab:***@10.0.0.5:5432/market"
        );
        assert_eq!(redact("sqlite://m.db"), "sqlite://m.db");
        let e = sqlx::Error::Protocol("server said s3cret".into());
        assert!(!redacted_cause(&e, Some("s3cret")).contains("s3cret"));
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_by_name() {
        let options = OpenOptions {
            pool_size: None,
            startup_timeout: Duration::from_secs(1),
        };
        let e = Db::open("mysql://root:pw@h/db", options).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("unsupported database url \"mysql://root:***@h/db\""),
            "{text}"
        );
    }

    /// Several replicas opening one fresh file at once must all get in: the
    /// WAL switch races (see [`switch_to_wal`]), so run the race many times.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_opens_of_a_fresh_file_succeed() {
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
            let opens = (0..3).map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let options = OpenOptions {
                        pool_size: Some(1),
                        startup_timeout: Duration::from_secs(1),
                    };
                    Db::open(&url, options).await
                })
            });
            for open in futures::future::join_all(opens).await {
                let db = open
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
                db.close().await;
            }
        }
    }
}
