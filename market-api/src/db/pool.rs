//! Connection pools: WAL journal (readers never block the writer), a 5 s busy
//! timeout (a writer waits for another process's write to finish), foreign
//! keys on, `synchronous = NORMAL` (durable at checkpoints, safe with WAL).
//!
//! Reads go to a pool sized to the cores; writes go to a single connection so
//! that the replicas' processes, not this process's own tasks, are the only
//! writers SQLite ever has to arbitrate between.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

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
            .map_err(|source| Error::DatabaseUrl {
                url: url.to_owned(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .statement_cache_capacity(256);
        // The write pool first: it creates the file and switches it to WAL.
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
