//! Users: look-ups for login and authorization, registration, staff listing.
//!
//! SQLite's `email` column is `COLLATE NOCASE`; PostgreSQL's has a unique
//! index on `lower(email)`, so its statements compare `lower(email)`.

use serde::Serialize;
use sqlx::FromRow;

use crate::db::{run, Conn, Db, WriteTx};

/// What login needs.
#[derive(Debug, FromRow)]
pub struct Credentials {
    pub id: i64,
    pub password: String,
    pub is_active: bool,
}

/// The staff view of a user (`GET users/`).
#[derive(Debug, FromRow, Serialize)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub image: Option<String>,
    pub is_active: bool,
    pub is_staff: bool,
    pub date_joined: String,
}

pub async fn credentials(db: &Db, email: &str) -> Result<Option<Credentials>, sqlx::Error> {
    run!(db.reader(), query_as, fetch_optional,
        sqlite: "SELECT id, password, is_active FROM users WHERE email = ?",
        postgres: "SELECT id, password, is_active FROM users WHERE lower(email) = lower($1)",
        email)
}

/// `(is_active, is_staff)` of user `id`, or `None` when there is no such user.
pub async fn status(conn: Conn<'_>, id: i64) -> Result<Option<(bool, bool)>, sqlx::Error> {
    run!(conn, query_as, fetch_optional,
        sqlite: "SELECT is_active, is_staff FROM users WHERE id = ?",
        postgres: "SELECT is_active, is_staff FROM users WHERE id = $1",
        id)
}

/// Whether a user has this e-mail (case-insensitively). On PostgreSQL it
/// first takes a transaction-level advisory lock on the e-mail, so that two
/// registrations of one address serialize here and the second sees the
/// first (SQLite's `BEGIN IMMEDIATE` already serializes every write).
pub async fn email_taken(tx: &mut WriteTx, email: &str) -> Result<bool, sqlx::Error> {
    if let WriteTx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(lower($1)))")
            .bind(email)
            .execute(&mut **tx)
            .await?;
    }
    let n: i64 = run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "SELECT COUNT(*) FROM users WHERE email = ?",
        postgres: "SELECT COUNT(*) FROM users WHERE lower(email) = lower($1)",
        email)?;
    Ok(n > 0)
}

/// Inserts an active, non-staff user; returns its id.
pub async fn insert(
    tx: &mut WriteTx,
    email: &str,
    password_hash: &str,
    first_name: &str,
    last_name: &str,
) -> Result<i64, sqlx::Error> {
    run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "INSERT INTO users (email, password, first_name, last_name, is_active, is_staff, \
                 date_joined) VALUES (?, ?, ?, ?, 1, 0, ?) RETURNING id",
        postgres: "INSERT INTO users (email, password, first_name, last_name, is_active, is_staff, \
                   date_joined) VALUES ($1, $2, $3, $4, TRUE, FALSE, $5) RETURNING id",
        email, password_hash, first_name, last_name, crate::db::now())
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    run!(db.reader(), query_scalar, fetch_one,
        sqlite: "SELECT COUNT(*) FROM users",
        postgres: "SELECT COUNT(*) FROM users")
}

pub async fn page(db: &Db, limit: i64, offset: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    run!(db.reader(), query_as, fetch_all,
        sqlite: "SELECT id, email, first_name, last_name, image, is_active, is_staff, date_joined \
                 FROM users ORDER BY id LIMIT ? OFFSET ?",
        postgres: "SELECT id, email, first_name, last_name, image, is_active, is_staff, date_joined \
                   FROM users ORDER BY id LIMIT $1 OFFSET $2",
        limit, offset)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    run!(db.reader(), query_as, fetch_optional,
        sqlite: "SELECT id, email, first_name, last_name, image, is_active, is_staff, date_joined \
                 FROM users WHERE id = ?",
        postgres: "SELECT id, email, first_name, last_name, image, is_active, is_staff, date_joined \
                   FROM users WHERE id = $1",
        id)
}

/// The first id of `ids` (in their order) that is not a user, in one
/// query whatever the list's length: the ids travel as one value (a JSON
/// array for SQLite's `json_each`, an array for PostgreSQL's `unnest`), so
/// there is no bound-parameter limit to meet either.
pub async fn first_missing(conn: Conn<'_>, ids: &[i64]) -> Result<Option<i64>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(None);
    }
    const SQLITE: &str = "SELECT j.value FROM json_each(?) j LEFT JOIN users u ON u.id = j.value \
         WHERE u.id IS NULL ORDER BY j.key LIMIT 1";
    const POSTGRES: &str = "SELECT j.v FROM unnest($1::bigint[]) WITH ORDINALITY AS j (v, k) \
         LEFT JOIN users u ON u.id = j.v WHERE u.id IS NULL ORDER BY j.k LIMIT 1";
    match conn {
        Conn::SqlitePool(e) => {
            sqlx::query_scalar(SQLITE)
                .bind(id_list(ids))
                .fetch_optional(e)
                .await
        }
        Conn::Sqlite(e) => {
            sqlx::query_scalar(SQLITE)
                .bind(id_list(ids))
                .fetch_optional(e)
                .await
        }
        Conn::PgPool(e) => {
            sqlx::query_scalar(POSTGRES)
                .bind(ids)
                .fetch_optional(e)
                .await
        }
        Conn::Pg(e) => {
            sqlx::query_scalar(POSTGRES)
                .bind(ids)
                .fetch_optional(e)
                .await
        }
    }
}

/// `ids` as a JSON array, the form `json_each` reads.
pub(crate) fn id_list(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push(']');
    out
}
