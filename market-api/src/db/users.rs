//! Users: look-ups for login and authorization, registration, staff listing.

use serde::Serialize;
use sqlx::{FromRow, Sqlite, SqliteExecutor, Transaction};

use crate::db::Db;

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
    sqlx::query_as("SELECT id, password, is_active FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.read)
        .await
}

/// `(is_active, is_staff)` of user `id`, or `None` when there is no such user.
pub async fn status(
    exec: impl SqliteExecutor<'_>,
    id: i64,
) -> Result<Option<(bool, bool)>, sqlx::Error> {
    sqlx::query_as("SELECT is_active, is_staff FROM users WHERE id = ?")
        .bind(id)
        .fetch_optional(exec)
        .await
}

pub async fn email_taken(
    tx: &mut Transaction<'static, Sqlite>,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = ?")
        .bind(email)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

/// Inserts an active, non-staff user; returns its id.
pub async fn insert(
    tx: &mut Transaction<'static, Sqlite>,
    email: &str,
    password_hash: &str,
    first_name: &str,
    last_name: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (email, password, first_name, last_name, is_active, is_staff, date_joined) \
         VALUES (?, ?, ?, ?, 1, 0, ?) RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .bind(first_name)
    .bind(last_name)
    .bind(crate::db::now())
    .fetch_one(&mut **tx)
    .await
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&db.read)
        .await
}

const USER_COLUMNS: &str =
    "SELECT id, email, first_name, last_name, image, is_active, is_staff, date_joined FROM users";

pub async fn page(db: &Db, limit: i64, offset: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{USER_COLUMNS} ORDER BY id LIMIT ? OFFSET ?"))
        .bind(limit)
        .bind(offset)
        .fetch_all(&db.read)
        .await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{USER_COLUMNS} WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.read)
        .await
}

/// The first id of `ids` (in their order) that is not a user, in one
/// query whatever the list's length: the ids travel as one JSON array
/// (`json_each`), so there is no bound-parameter limit to meet either.
pub async fn first_missing(
    exec: impl SqliteExecutor<'_>,
    ids: &[i64],
) -> Result<Option<i64>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT j.value FROM json_each(?) j LEFT JOIN users u ON u.id = j.value \
         WHERE u.id IS NULL ORDER BY j.key LIMIT 1",
    )
    .bind(id_list(ids))
    .fetch_optional(exec)
    .await
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
