//! Comments on products (`products/comments/`).

use serde::Serialize;
use sqlx::{FromRow, Sqlite, SqliteExecutor, Transaction};

use crate::db::Db;

/// A comment as the API renders it (`post` is the product id).
#[derive(Debug, FromRow, Serialize)]
pub struct CommentRow {
    pub id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub rating: Option<i64>,
    pub reply: String,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
    pub user: Option<i64>,
    pub post: i64,
}

const SELECT_COMMENT: &str = "SELECT id, created_at, updated_at, deleted_at, rating, reply, \
     created_by, updated_by, user_id AS user, post_id AS post FROM comments";

/// Number of comments (optionally of one product).
pub async fn count(db: &Db, post: Option<i64>) -> Result<i64, sqlx::Error> {
    match post {
        Some(post) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE post_id = ?")
                .bind(post)
                .fetch_one(&db.read)
                .await
        }
        None => {
            sqlx::query_scalar("SELECT COUNT(*) FROM comments")
                .fetch_one(&db.read)
                .await
        }
    }
}

/// A page of comments, newest first.
pub async fn page(
    db: &Db,
    post: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    match post {
        Some(post) => {
            sqlx::query_as(&format!(
            "{SELECT_COMMENT} WHERE post_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        ))
            .bind(post)
            .bind(limit)
            .bind(offset)
            .fetch_all(&db.read)
            .await
        }
        None => {
            sqlx::query_as(&format!(
                "{SELECT_COMMENT} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
            ))
            .bind(limit)
            .bind(offset)
            .fetch_all(&db.read)
            .await
        }
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Option<CommentRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_COMMENT} WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.read)
        .await
}

/// One comment through `exec` (a pool, or a write transaction, which sees
/// its own changes).
pub async fn get_in(
    exec: impl SqliteExecutor<'_>,
    id: i64,
) -> Result<Option<CommentRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_COMMENT} WHERE id = ?"))
        .bind(id)
        .fetch_optional(exec)
        .await
}

/// Fields written by create and update.
#[derive(Debug, Clone)]
pub struct CommentWrite {
    pub rating: Option<i64>,
    pub reply: String,
    pub post: i64,
}

pub async fn insert(
    tx: &mut Transaction<'static, Sqlite>,
    user_id: i64,
    c: &CommentWrite,
    created_at: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO comments (created_at, updated_at, rating, reply, created_by, updated_by, \
         user_id, post_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(created_at)
    .bind(created_at)
    .bind(c.rating)
    .bind(&c.reply)
    .bind(user_id)
    .bind(user_id)
    .bind(user_id)
    .bind(c.post)
    .fetch_one(&mut **tx)
    .await
}

pub async fn update(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
    by: i64,
    c: &CommentWrite,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE comments SET rating = ?, reply = ?, post_id = ?, updated_by = ?, updated_at = ? \
         WHERE id = ?",
    )
    .bind(c.rating)
    .bind(&c.reply)
    .bind(c.post)
    .bind(by)
    .bind(crate::db::now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut Transaction<'static, Sqlite>, id: i64) -> Result<(), sqlx::Error> {
    crate::db::execute_for_id(tx, "DELETE FROM comments WHERE id = ?", id).await
}
