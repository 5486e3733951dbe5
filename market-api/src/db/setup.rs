//! Start-up: migrations and demo data, once, however many replicas start
//! together against the same empty database.
//!
//! **SQLite**: the migrator runs on the one-connection write pool, retrying
//! when another process won a race; seeding is one `BEGIN IMMEDIATE`
//! transaction that tops the data up, so a second replica finds it done.
//!
//! **PostgreSQL**: one transaction takes a transaction-level advisory lock
//! ([`PG_SETUP_LOCK`]), applies the migrations (PostgreSQL's DDL is
//! transactional) and seeds, then commits. The other replicas wait on the
//! lock and, once the winner commits, find the migrations applied and the
//! users there, so they change nothing: no race, no duplicate rows, no
//! failed replica. A replica that dies half-way rolls everything back and
//! releases the lock with its connection, so the next one starts clean.

use std::time::Duration;

use sqlx::migrate::Migrator;

use crate::config::SeedConfig;
use crate::db::{seed, Db, WriteTx};
use crate::error::Error;

/// The advisory lock key of start-up ("market" in ASCII): only this
/// process family takes it.
pub const PG_SETUP_LOCK: i64 = 0x6d61_726b_6574;

/// What to do about demo data at start.
#[derive(Debug, Clone, Copy)]
pub enum Seeding<'a> {
    /// Nothing (`--no-seed`, `migrate`).
    None,
    /// Seed only a database without users (`serve`).
    IfEmpty(&'a SeedConfig),
    /// Top the data up to these counts (`seed`).
    TopUp(&'a SeedConfig),
}

fn sqlite_migrator() -> Migrator {
    sqlx::migrate!("../migrations")
}

fn postgres_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/postgres");
    // The start-up lock already serializes us; sqlx's own session lock
    // inside our transaction would only add a round trip.
    migrator.set_locking(false);
    migrator
}

/// Applies the migrations and the demo data (see the module doc).
pub async fn migrate_and_seed(db: &Db, seeding: Seeding<'_>) -> Result<(), Error> {
    match db {
        Db::Sqlite(sqlite) => {
            migrate_sqlite(&sqlite.write).await?;
            if !matches!(seeding, Seeding::None) {
                let mut tx = db.begin_write().await?;
                seeding.apply(&mut tx).await?;
                tx.commit().await?;
            }
            Ok(())
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_SETUP_LOCK)
                .execute(&mut *tx)
                .await?;
            postgres_migrator().run(&mut *tx).await?;
            let mut tx = WriteTx::Postgres(tx);
            seeding.apply(&mut tx).await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

impl Seeding<'_> {
    /// Seeds inside `tx` if this seeding asks for it. Whether the database
    /// is empty is decided inside the transaction, and the password is
    /// hashed only then: a replica starting on a seeded database never pays
    /// for (or keeps the memory of) a hash at the default cost.
    async fn apply(&self, tx: &mut WriteTx) -> Result<(), Error> {
        let config = match self {
            Seeding::None => return Ok(()),
            Seeding::IfEmpty(config) => {
                if !seed::is_empty(tx.conn()).await? {
                    return Ok(());
                }
                config
            }
            Seeding::TopUp(config) => config,
        };
        let hash = seed::demo_hash(config).await?;
        seed::fill(tx, &hash, config).await
    }
}

/// Several replicas may start at once on a fresh file; the loser of a race
/// sees the winner's work and retries.
async fn migrate_sqlite(write: &sqlx::SqlitePool) -> Result<(), Error> {
    let migrator = sqlite_migrator();
    let mut attempt = 0;
    loop {
        match migrator.run(write).await {
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
