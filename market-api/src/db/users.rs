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

/// `Some(is_staff)` for an active user, `None` when missing or inactive.
pub async fn active_staff_flag(
    exec: impl SqliteExecutor<'_>,
    id: i64,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar("SELECT is_staff FROM users WHERE id = ? AND is_active = 1")
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

/// The ids in `ids` that are not users.
pub async fn missing_ids(
    tx: &mut Transaction<'static, Sqlite>,
    ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut missing = Vec::new();
    for &id in ids {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        if found.is_none() {
            missing.push(id);
        }
    }
    Ok(missing)
}
