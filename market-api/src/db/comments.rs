//! Comments on products (`products/comments/`). Rendered in Rust from
//! [`CommentRow`] on both backends; `"user"` is quoted because PostgreSQL
//! reserves the word.

use serde::Serialize;
use sqlx::FromRow;

use crate::db::{run, Conn, Db, WriteTx};

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

/// The columns of [`CommentRow`], the same text on both backends.
macro_rules! select_comment {
    () => {
        "SELECT id, created_at, updated_at, deleted_at, rating, reply, created_by, updated_by, \
         user_id AS \"user\", post_id AS post FROM comments"
    };
}

/// Number of comments (optionally of one product).
pub async fn count(db: &Db, post: Option<i64>) -> Result<i64, sqlx::Error> {
    match post {
        Some(post) => run!(db.reader(), query_scalar, fetch_one,
            sqlite: "SELECT COUNT(*) FROM comments WHERE post_id = ?",
            postgres: "SELECT COUNT(*) FROM comments WHERE post_id = $1",
            post),
        None => run!(db.reader(), query_scalar, fetch_one,
            sqlite: "SELECT COUNT(*) FROM comments",
            postgres: "SELECT COUNT(*) FROM comments"),
    }
}

/// A page of comments, newest first: one query.
pub async fn page(
    db: &Db,
    post: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    match post {
        Some(post) => run!(db.reader(), query_as, fetch_all,
            sqlite: concat!(select_comment!(),
                " WHERE post_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"),
            postgres: concat!(select_comment!(),
                " WHERE post_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"),
            post, limit, offset),
        None => run!(db.reader(), query_as, fetch_all,
            sqlite: concat!(select_comment!(), " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"),
            postgres: concat!(select_comment!(),
                " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"),
            limit, offset),
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Option<CommentRow>, sqlx::Error> {
    get_in(db.reader(), id).await
}

/// One comment through `conn` (a pool, or a write transaction, which sees
/// its own changes).
pub async fn get_in(conn: Conn<'_>, id: i64) -> Result<Option<CommentRow>, sqlx::Error> {
    run!(conn, query_as, fetch_optional,
        sqlite: concat!(select_comment!(), " WHERE id = ?"),
        postgres: concat!(select_comment!(), " WHERE id = $1"),
        id)
}

/// Locks comment `id` until the write transaction ends, so that changes of
/// one comment apply one after the other, each to the row the previous one
/// left. On PostgreSQL (read committed) two PATCHes otherwise both read the
/// old row and the second wrote its stale copy of the other field back;
/// SQLite's single writer (`BEGIN IMMEDIATE`) serializes them already.
pub async fn lock(tx: &mut WriteTx, id: i64) -> Result<(), sqlx::Error> {
    if let WriteTx::Postgres(tx) = tx {
        sqlx::query("SELECT id FROM comments WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Fields written by create and update.
#[derive(Debug, Clone)]
pub struct CommentWrite {
    pub rating: Option<i64>,
    pub reply: String,
    pub post: i64,
}

pub async fn insert(
    tx: &mut WriteTx,
    user_id: i64,
    c: &CommentWrite,
    created_at: &str,
) -> Result<i64, sqlx::Error> {
    run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "INSERT INTO comments (created_at, updated_at, rating, reply, created_by, \
                 updated_by, user_id, post_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        postgres: "INSERT INTO comments (created_at, updated_at, rating, reply, created_by, \
                   updated_by, user_id, post_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        created_at, created_at, c.rating, &c.reply, user_id, user_id, user_id, c.post)
}

pub async fn update(
    tx: &mut WriteTx,
    id: i64,
    by: i64,
    c: &CommentWrite,
) -> Result<(), sqlx::Error> {
    run!(tx.conn(), query, execute,
        sqlite: "UPDATE comments SET rating = ?, reply = ?, post_id = ?, updated_by = ?, \
                 updated_at = ? WHERE id = ?",
        postgres: "UPDATE comments SET rating = $1, reply = $2, post_id = $3, updated_by = $4, \
                   updated_at = $5 WHERE id = $6",
        c.rating, &c.reply, c.post, by, crate::db::now(), id)
}

pub async fn delete(tx: &mut WriteTx, id: i64) -> Result<(), sqlx::Error> {
    run!(tx.conn(), query, execute,
        sqlite: "DELETE FROM comments WHERE id = ?",
        postgres: "DELETE FROM comments WHERE id = $1",
        id)
}
