//! Storage: SQLite or PostgreSQL through sqlx, shared by several processes
//! (the lab's replicas). On SQLite, [`Db`] holds a read pool and a
//! one-connection write pool; every write transaction starts with `BEGIN
//! IMMEDIATE`, so it takes SQLite's write lock up front and waits (busy
//! timeout) instead of failing with `SQLITE_BUSY` half-way when another
//! process writes at the same time. On PostgreSQL it holds one pool, and the
//! server arbitrates between transactions.
//!
//! The SQL lives in one module per table family ([`users`], [`products`],
//! [`comments`]); handlers never build SQL themselves. Each query is one
//! function holding both backends' statements side by side (most through
//! [`run!`]), so a reader compares them at a glance; the rendered JSON is
//! the same bytes on both (the exact-JSON tests run on both).

pub mod comments;
pub mod pool;
pub mod products;
pub mod seed;
pub mod settings;
pub mod setup;
pub mod users;
pub mod wal_stamp;

pub use pool::{Conn, Db, WriteTx};

/// Runs one statement on a [`Conn`], picking the backend's SQL:
///
/// ```ignore
/// run!(conn, query_scalar, fetch_optional,
///      sqlite: "SELECT user_id FROM products WHERE id = ?",
///      postgres: "SELECT user_id FROM products WHERE id = $1",
///      id)
/// ```
///
/// `query`, `query_as` or `query_scalar`, then the fetch method; `execute`
/// returns `()` (the two drivers' results differ). The arguments are bound in
/// order on both. It expands to a `match` on the connection: no allocation,
/// no dynamic dispatch.
macro_rules! run {
    ($conn:expr, query, execute, sqlite: $sqlite:expr, postgres: $pg:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::Conn::SqlitePool(e) => sqlx::query($sqlite)$(.bind($arg))*.execute(e).await.map(drop),
            $crate::db::Conn::Sqlite(e) => sqlx::query($sqlite)$(.bind($arg))*.execute(e).await.map(drop),
            $crate::db::Conn::PgPool(e) => sqlx::query($pg)$(.bind($arg))*.execute(e).await.map(drop),
            $crate::db::Conn::Pg(e) => sqlx::query($pg)$(.bind($arg))*.execute(e).await.map(drop),
        }
    };
    ($conn:expr, $kind:ident, $fetch:ident, sqlite: $sqlite:expr, postgres: $pg:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::Conn::SqlitePool(e) => sqlx::$kind($sqlite)$(.bind($arg))*.$fetch(e).await,
            $crate::db::Conn::Sqlite(e) => sqlx::$kind($sqlite)$(.bind($arg))*.$fetch(e).await,
            $crate::db::Conn::PgPool(e) => sqlx::$kind($pg)$(.bind($arg))*.$fetch(e).await,
            $crate::db::Conn::Pg(e) => sqlx::$kind($pg)$(.bind($arg))*.$fetch(e).await,
        }
    };
}
pub(crate) use run;

/// The current time as Django REST Framework renders it
/// (`2024-01-31T12:00:00.123456Z`); stored as text, which sorts correctly.
pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// A UTC time in the stored/rendered format.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
