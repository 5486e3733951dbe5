//! Storage: SQLite through sqlx, shared by several processes (the lab's
//! replicas). [`Db`] holds a read pool and a one-connection write pool; every
//! write transaction starts with `BEGIN IMMEDIATE`, so it takes SQLite's write
//! lock up front and waits (busy timeout) instead of failing with
//! `SQLITE_BUSY` half-way when another process writes at the same time.
//!
//! The SQL lives in one module per table family ([`users`], [`products`],
//! [`comments`]); handlers never build SQL themselves.

pub mod comments;
pub mod pool;
pub mod products;
pub mod seed;
pub mod settings;
pub mod users;

pub use pool::Db;

use sqlx::{Sqlite, Transaction};

/// Runs `sql`, whose one parameter is an id (`DELETE FROM … WHERE id = ?`),
/// inside a write transaction: the deletes of every table family.
pub(crate) async fn execute_for_id(
    tx: &mut Transaction<'static, Sqlite>,
    sql: &'static str,
    id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// The current time as Django REST Framework renders it
/// (`2024-01-31T12:00:00.123456Z`); stored as text, which sorts correctly.
pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// A UTC time in the stored/rendered format.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
