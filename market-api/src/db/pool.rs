//! Connection pools: WAL journal (readers never block the writer), a 5 s busy
//! timeout (a writer waits for another process's write to finish), foreign
//! keys on, `synchronous = NORMAL` (durable at checkpoints, safe with WAL).
//! The file is switched to WAL once, before the pools open (see
//! [`switch_to_wal`]), because that switch is the one start-up step the busy
//! timeout does not cover.
//!
//! Reads go to a pool sized to the cores; writes go to a single connection so
//! that the replicas' processes, not this process's own tasks, are the only
//! writers SQLite ever has to arbitrate between.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Sqlite, Transaction};

use crate::error::Error;

/// How long a connection waits for another writer's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The read and write pools of one SQLite database.
#[derive(Clone, Debug)]
pub struct Db {
    /// Connections for queries (no writes).
    pub read: SqlitePool,
    /// One connection: all writes of this process, serialized.
    pub write: SqlitePool,
}

impl Db {
    /// Opens (and creates when missing) the database at `url`.
    pub async fn open(url: &str, read_connections: Option<u32>) -> Result<Db, Error> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| Error::DatabaseUrl {
                url: url.to_owned(),
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
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        let readers = read_connections.unwrap_or(cores * 2).max(1);
        let read = SqlitePoolOptions::new()
            .max_connections(readers)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        Ok(Db { read, write })
    }

    /// Applies the embedded migrations. Several replicas may start at once on
    /// a fresh file; the loser of a race sees the winner's work and retries.
    pub async fn migrate(&self) -> Result<(), Error> {
        let migrator = sqlx::migrate!("../migrations");
        let mut attempt = 0;
        loop {
            match migrator.run(&self.write).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 10 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "migration race, retrying");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A write transaction holding SQLite's write lock from its first statement.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.read)
            .await
            .is_ok()
    }

    /// Closes both pools (waits for checked-out connections).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
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

    /// Several replicas opening one fresh file at once must all get in: the
    /// WAL switch races (see [`switch_to_wal`]), so run the race many times.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_opens_of_a_fresh_file_succeed() {
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
            let opens = (0..3).map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Db::open(&url, Some(1)).await })
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
