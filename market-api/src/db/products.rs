//! Products and their votes. Reads for the API (retrieve, list pages) get
//! each product as one JSON text rendered by SQLite, owner and votes joined
//! in, so a retrieve and a page each cost one prepared statement and one
//! value per product. Writes read the typed [`ProductRow`] instead.
//!
//! PostgreSQL renders the same JSON with `json_build_object`/`json_agg`.
//! Its JSON text has spaces after `:` and `,` (and line breaks in arrays),
//! which [`compact_json`] removes, so both backends send the same bytes:
//! the keys, their order, numbers and string escaping are otherwise
//! PostgreSQL's and SQLite's own and agree with serde's (the exact-JSON
//! tests pin that on both). Text sorts byte-wise on both (`COLLATE "C"`
//! columns on PostgreSQL); `search` is case-insensitive on both (`LIKE` on
//! SQLite, `ILIKE` on PostgreSQL, which also folds non-ASCII letters).

use sqlx::{Database, Encode, FromRow, Type};

use crate::db::pool::Backend;
use crate::db::{run, Conn, Db, WriteTx};

/// One product with its owner's public fields and its votes as a JSON array
/// (`[{"id":1,"first_name":"Demo"}]`).
#[derive(Debug, FromRow)]
pub struct ProductRow {
    pub id: i64,
    pub product_id: String,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub image: Option<String>,
    pub category_id: Option<i64>,
    pub tags: String,
    pub views: i64,
    pub user_id: i64,
    pub user_first_name: String,
    pub user_last_name: String,
    pub user_image: Option<String>,
    pub votes: String,
}

/// [`ProductRow`]'s columns (a macro, so that `concat!` can add the
/// `WHERE`).
macro_rules! select_product {
    (sqlite) => {
        "SELECT p.id, p.product_id, p.title, p.slug, p.description, p.image, \
         p.category_id, p.tags, p.views, p.user_id, u.first_name AS user_first_name, \
         u.last_name AS user_last_name, u.image AS user_image, \
         (SELECT json_group_array(json_object('id', vu.id, 'first_name', vu.first_name)) \
            FROM (SELECT vu.id, vu.first_name FROM product_votes v JOIN users vu ON vu.id = v.user_id \
                  WHERE v.product_id = p.id ORDER BY vu.id) AS vu) AS votes \
         FROM products p JOIN users u ON u.id = p.user_id"
    };
    (postgres) => {
        "SELECT p.id, p.product_id, p.title, p.slug, p.description, p.image, \
         p.category_id, p.tags, p.views, p.user_id, u.first_name AS user_first_name, \
         u.last_name AS user_last_name, u.image AS user_image, \
         COALESCE((SELECT json_agg(json_build_object('id', vu.id, 'first_name', vu.first_name) \
                                   ORDER BY vu.id) \
            FROM product_votes v JOIN users vu ON vu.id = v.user_id \
            WHERE v.product_id = p.id), '[]')::text AS votes \
         FROM products p JOIN users u ON u.id = p.user_id"
    };
}

/// Sort keys accepted by `?ordering=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderField {
    Id,
    Title,
    CreatedAt,
    UpdatedAt,
}

impl OrderField {
    pub fn parse(name: &str) -> Option<OrderField> {
        Some(match name {
            "id" => OrderField::Id,
            "title" => OrderField::Title,
            "created_at" => OrderField::CreatedAt,
            "updated_at" => OrderField::UpdatedAt,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            OrderField::Id => "p.id",
            OrderField::Title => "p.title",
            OrderField::CreatedAt => "p.created_at",
            OrderField::UpdatedAt => "p.updated_at",
        }
    }
}

/// `?user=&title=&category=&tags=&search=&ordering=` of the list endpoint.
/// Also the list cache's key (with the page), so it holds only what
/// changes the rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProductFilter {
    pub user: Option<i64>,
    pub title: Option<String>,
    pub category: Option<i64>,
    pub tags: Option<String>,
    /// Each term must appear (case-insensitively) in title, description or tags.
    pub search: Vec<String>,
    /// Sort keys, `true` = descending. Empty means `-updated_at`.
    pub ordering: Vec<(OrderField, bool)>,
}

impl Default for ProductFilter {
    fn default() -> Self {
        ProductFilter {
            user: None,
            title: None,
            category: None,
            tags: None,
            search: Vec::new(),
            ordering: vec![(OrderField::UpdatedAt, true)],
        }
    }
}

enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Owned(String),
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A statement being built, with its arguments: `?` placeholders for
/// SQLite, `$1, $2, …` for PostgreSQL.
struct Sql<'a> {
    text: String,
    args: Vec<Arg<'a>>,
    backend: Backend,
}

impl<'a> Sql<'a> {
    fn new(backend: Backend, capacity: usize) -> Sql<'a> {
        Sql {
            text: String::with_capacity(capacity),
            args: Vec::new(),
            backend,
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Appends the placeholder of `arg` and keeps `arg` to bind.
    fn param(&mut self, arg: Arg<'a>) {
        self.args.push(arg);
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => {
                use std::fmt::Write;
                let _ = write!(self.text, "${}", self.args.len());
            }
        }
    }
}

impl ProductFilter {
    fn where_clause<'a>(&'a self, sql: &mut Sql<'a>) {
        let mut first = true;
        let mut and = |sql: &mut Sql<'a>| {
            sql.push(if first { " WHERE " } else { " AND " });
            first = false;
        };
        if let Some(user) = self.user {
            and(sql);
            sql.push("p.user_id = ");
            sql.param(Arg::Int(user));
        }
        if let Some(title) = &self.title {
            and(sql);
            sql.push("p.title = ");
            sql.param(Arg::Text(title));
        }
        if let Some(category) = self.category {
            and(sql);
            sql.push("p.category_id = ");
            sql.param(Arg::Int(category));
        }
        if let Some(tags) = &self.tags {
            and(sql);
            sql.push("p.tags = ");
            sql.param(Arg::Text(tags));
        }
        let like = match sql.backend {
            Backend::Sqlite => " LIKE ",
            Backend::Postgres => " ILIKE ",
        };
        for term in &self.search {
            and(sql);
            let pattern = like_pattern(term);
            for (i, column) in ["(p.title", " OR p.description", " OR p.tags"]
                .iter()
                .enumerate()
            {
                sql.push(column);
                sql.push(like);
                sql.param(Arg::Owned(pattern.clone()));
                sql.push(if i == 2 {
                    " ESCAPE '\\')"
                } else {
                    " ESCAPE '\\'"
                });
            }
        }
    }
}

fn bind_all<'q, DB, O>(
    mut query: sqlx::query::QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>,
    args: Vec<Arg<'q>>,
) -> sqlx::query::QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Owned(v) => query.bind(v),
        };
    }
    query
}

/// Runs the built statement on the read pool, fetching all rows.
async fn fetch_all_built<O>(db: &Db, sql: Sql<'_>) -> Result<Vec<O>, sqlx::Error>
where
    O: Send + Unpin,
    O: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> FromRow<'r, sqlx::postgres::PgRow>,
{
    match db {
        Db::Sqlite(sqlite) => {
            bind_all(sqlx::query_as(&sql.text), sql.args)
                .fetch_all(&sqlite.read)
                .await
        }
        Db::Postgres(pool) => {
            bind_all(sqlx::query_as(&sql.text), sql.args)
                .fetch_all(pool)
                .await
        }
    }
}

/// Number of products matching `filter`.
pub async fn count(db: &Db, filter: &ProductFilter) -> Result<i64, sqlx::Error> {
    let mut sql = Sql::new(db.backend(), 128);
    sql.push("SELECT COUNT(*) FROM products p");
    filter.where_clause(&mut sql);
    let (n,): (i64,) = match db {
        Db::Sqlite(sqlite) => {
            bind_all(sqlx::query_as(&sql.text), sql.args)
                .fetch_one(&sqlite.read)
                .await?
        }
        Db::Postgres(pool) => {
            bind_all(sqlx::query_as(&sql.text), sql.args)
                .fetch_one(pool)
                .await?
        }
    };
    Ok(n)
}

/// The product as the API renders it, built by the database as one JSON
/// text (same keys, order and escaping as `routes::products::ProductOut`):
/// a page then costs one value per row instead of fifteen, and nothing is
/// decoded, parsed and re-encoded in Rust. The two placeholders take the
/// media base URL (`http://host/media/`) that relative image paths are
/// joined to; they are the statement's first two parameters on both
/// backends.
macro_rules! product_json {
    (sqlite) => {
        "json_object('id', p.id, 'product_id', p.product_id, 'title', p.title, \
         'slug', p.slug, 'description', p.description, \
         'image', CASE WHEN p.image IS NULL THEN NULL \
            WHEN substr(p.image, 1, 7) = 'http://' OR substr(p.image, 1, 8) = 'https://' THEN p.image \
            ELSE ? || ltrim(p.image, '/') END, \
         'category', p.category_id, 'tags', p.tags, \
         'votes', json((SELECT json_group_array(json_object('id', vu.id, 'first_name', vu.first_name)) \
            FROM (SELECT vu.id, vu.first_name FROM product_votes v JOIN users vu ON vu.id = v.user_id \
                  WHERE v.product_id = p.id ORDER BY vu.id) AS vu)), \
         'views', p.views, \
         'user', json_object('id', u.id, 'first_name', u.first_name, 'last_name', u.last_name, \
            'image', CASE WHEN u.image IS NULL THEN NULL \
            WHEN substr(u.image, 1, 7) = 'http://' OR substr(u.image, 1, 8) = 'https://' THEN u.image \
            ELSE ? || ltrim(u.image, '/') END), \
         'votes_count', (SELECT COUNT(*) FROM product_votes v JOIN users vu ON vu.id = v.user_id \
            WHERE v.product_id = p.id))"
    };
    (postgres) => {
        "json_build_object('id', p.id, 'product_id', p.product_id, 'title', p.title, \
         'slug', p.slug, 'description', p.description, \
         'image', CASE WHEN p.image IS NULL THEN NULL \
            WHEN substr(p.image, 1, 7) = 'http://' OR substr(p.image, 1, 8) = 'https://' THEN p.image \
            ELSE $1::text || ltrim(p.image, '/') END, \
         'category', p.category_id, 'tags', p.tags, \
         'votes', COALESCE((SELECT json_agg(json_build_object('id', vu.id, 'first_name', vu.first_name) \
                                            ORDER BY vu.id) \
            FROM product_votes v JOIN users vu ON vu.id = v.user_id \
            WHERE v.product_id = p.id), '[]'), \
         'views', p.views, \
         'user', json_build_object('id', u.id, 'first_name', u.first_name, 'last_name', u.last_name, \
            'image', CASE WHEN u.image IS NULL THEN NULL \
            WHEN substr(u.image, 1, 7) = 'http://' OR substr(u.image, 1, 8) = 'https://' THEN u.image \
            ELSE $2::text || ltrim(u.image, '/') END), \
         'votes_count', (SELECT COUNT(*) FROM product_votes v JOIN users vu ON vu.id = v.user_id \
            WHERE v.product_id = p.id))::text"
    };
}

/// PostgreSQL's JSON text without the whitespace it puts between tokens
/// (`{"id" : 1, "votes" : [{"id" : 2}, \n {"id" : 3}]}`), so that it is
/// byte for byte what SQLite and serde write. Whitespace inside strings is
/// kept: PostgreSQL escapes control characters, so a raw space, tab or line
/// break outside a string can only be formatting.
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\n' | '\t' | '\r') {
            continue;
        }
        out.push(c);
    }
    out
}

/// One page of products matching `filter`, each already rendered as JSON
/// (see [`product_json!`]), and the number of matching rows (`None` when the
/// page is empty: the count then needs its own query). One query.
pub async fn page_json(
    db: &Db,
    filter: &ProductFilter,
    media_base: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<String>, Option<i64>), sqlx::Error> {
    let backend = db.backend();
    let mut sql = Sql::new(backend, 2048);
    let mut order = String::from(" ORDER BY ");
    for (field, desc) in &filter.ordering {
        order.push_str(field.column());
        order.push_str(if *desc { " DESC, " } else { " ASC, " });
    }
    order.push_str("p.id DESC");
    // The count is an uncorrelated subquery (evaluated once)
    // and the page's ids are chosen on the bare table first.
    sql.push("SELECT ");
    sql.push(match backend {
        Backend::Sqlite => product_json!(sqlite),
        Backend::Postgres => product_json!(postgres),
    });
    // The JSON's two media-base placeholders come first (`?` on SQLite,
    // `$1` and `$2`, written into the JSON text, on PostgreSQL).
    sql.args.push(Arg::Text(media_base));
    sql.args.push(Arg::Text(media_base));
    sql.push(", (SELECT COUNT(*) FROM products p");
    filter.where_clause(&mut sql);
    sql.push(") AS total FROM (SELECT p.id FROM products p");
    filter.where_clause(&mut sql);
    sql.push(&order);
    sql.push(" LIMIT ");
    sql.param(Arg::Int(limit));
    sql.push(" OFFSET ");
    sql.param(Arg::Int(offset));
    sql.push(") AS pg JOIN products p ON p.id = pg.id JOIN users u ON u.id = p.user_id");
    sql.push(&order);
    let rows: Vec<(String, i64)> = fetch_all_built(db, sql).await?;
    let total = rows.first().map(|r| r.1);
    let pages = match backend {
        Backend::Sqlite => rows.into_iter().map(|r| r.0).collect(),
        Backend::Postgres => rows.into_iter().map(|r| compact_json(&r.0)).collect(),
    };
    Ok((pages, total))
}

/// The change counter: moves on every write that can change how a product
/// renders, in any process (triggers; see the `change_counter` migrations).
/// Also answers whether user `viewer` is active (`None`: no such user), so
/// that the list's cache-hit path stays one query with the login check in it.
pub async fn generation(db: &Db, viewer: i64) -> Result<(i64, Option<bool>), sqlx::Error> {
    run!(db.reader(), query_as, fetch_one,
        sqlite: "SELECT generation, (SELECT is_active FROM users WHERE id = ?) \
                 FROM change_counter WHERE id = 1",
        postgres: "SELECT generation, (SELECT is_active FROM users WHERE id = $1) \
                   FROM change_counter WHERE id = 1",
        viewer)
}

/// The change counter and, for each of `viewers` that exists, whether it is
/// active: [`generation`] for many readers in one query (see
/// [`crate::generation`], which batches the readers waiting at once). A
/// viewer missing from the answer is no such user.
pub async fn generation_for_many(
    db: &Db,
    viewers: &[i64],
) -> Result<(i64, Vec<(i64, bool)>), sqlx::Error> {
    type Row = (i64, Option<i64>, Option<bool>);
    let rows: Vec<Row> = match db {
        Db::Sqlite(sqlite) => {
            let ids = serde_json::to_string(viewers).unwrap_or_else(|_| "[]".into());
            sqlx::query_as(
                "SELECT c.generation, u.id, u.is_active FROM change_counter c \
                 LEFT JOIN users u ON u.id IN (SELECT value FROM json_each(?)) WHERE c.id = 1",
            )
            .bind(ids)
            .fetch_all(&sqlite.read)
            .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT c.generation, u.id, u.is_active FROM change_counter c \
                 LEFT JOIN users u ON u.id = ANY($1) WHERE c.id = 1",
            )
            .bind(viewers)
            .fetch_all(pool)
            .await?
        }
    };
    let generation = rows.first().ok_or(sqlx::Error::RowNotFound)?.0;
    let users = rows
        .into_iter()
        .filter_map(|(_, id, active)| Some((id?, active?)))
        .collect();
    Ok((generation, users))
}

/// Whether user `viewer` is active (`None`: no such user) and product `id`
/// rendered as JSON (see [`product_json!`]; `None` when missing), in one
/// query: the login check rides along with the read instead of costing a
/// second round trip on the API's hottest route.
pub async fn get_json(
    db: &Db,
    viewer: i64,
    id: i64,
    media_base: &str,
) -> Result<(Option<bool>, Option<String>), sqlx::Error> {
    // SQLite numbers its `?` in text order (viewer, media, media, id);
    // PostgreSQL's JSON has the media base as $1 and $2 wherever it is
    // used, so there the viewer is $3 and the id $4.
    const SQLITE: &str = concat!(
        "SELECT (SELECT is_active FROM users WHERE id = ?), (SELECT ",
        product_json!(sqlite),
        " FROM products p JOIN users u ON u.id = p.user_id WHERE p.id = ?)"
    );
    const POSTGRES: &str = concat!(
        "SELECT (SELECT is_active FROM users WHERE id = $3), (SELECT ",
        product_json!(postgres),
        " FROM products p JOIN users u ON u.id = p.user_id WHERE p.id = $4)"
    );
    let (active, json): (Option<bool>, Option<String>) = match db {
        Db::Sqlite(sqlite) => {
            return sqlx::query_as(SQLITE)
                .bind(viewer)
                .bind(media_base)
                .bind(media_base)
                .bind(id)
                .fetch_one(&sqlite.read)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as(POSTGRES)
                .bind(media_base)
                .bind(media_base)
                .bind(viewer)
                .bind(id)
                .fetch_one(pool)
                .await?
        }
    };
    Ok((active, json.as_deref().map(compact_json)))
}
/// One product, or `None`.
pub async fn get(db: &Db, id: i64) -> Result<Option<ProductRow>, sqlx::Error> {
    get_in(db.reader(), id).await
}

/// One product through `conn` (a write transaction sees its own changes).
pub async fn get_in(conn: Conn<'_>, id: i64) -> Result<Option<ProductRow>, sqlx::Error> {
    run!(conn, query_as, fetch_optional,
        sqlite: concat!(select_product!(sqlite), " WHERE p.id = ?"),
        postgres: concat!(select_product!(postgres), " WHERE p.id = $1"),
        id)
}

/// The owner of a product, or `None` when it does not exist. Inside a
/// PostgreSQL write transaction the row is locked (`FOR UPDATE`), so two
/// deletes of one product serialize here and the second finds it gone
/// (a 404, as on SQLite, whose single writer serializes them anyway).
pub async fn owner(conn: Conn<'_>, id: i64) -> Result<Option<i64>, sqlx::Error> {
    const SQLITE: &str = "SELECT user_id FROM products WHERE id = ?";
    const POSTGRES: &str = "SELECT user_id FROM products WHERE id = $1";
    const POSTGRES_TX: &str = "SELECT user_id FROM products WHERE id = $1 FOR UPDATE";
    match conn {
        Conn::SqlitePool(e) => sqlx::query_scalar(SQLITE).bind(id).fetch_optional(e).await,
        Conn::Sqlite(e) => sqlx::query_scalar(SQLITE).bind(id).fetch_optional(e).await,
        Conn::PgPool(e) => {
            sqlx::query_scalar(POSTGRES)
                .bind(id)
                .fetch_optional(e)
                .await
        }
        Conn::Pg(e) => {
            sqlx::query_scalar(POSTGRES_TX)
                .bind(id)
                .fetch_optional(e)
                .await
        }
    }
}

pub async fn category_exists(conn: Conn<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = run!(conn, query_scalar, fetch_optional,
        sqlite: "SELECT id FROM categories WHERE id = ?",
        postgres: "SELECT id FROM categories WHERE id = $1",
        id)?;
    Ok(found.is_some())
}

/// Whether product `id` exists. In a PostgreSQL write transaction the row
/// is then locked against deletion until commit (`FOR KEY SHARE`, the lock a
/// foreign key check takes), so a comment checked here cannot meet a
/// foreign-key error, and a 500, when the product is deleted meanwhile
/// (SQLite's single writer rules that out already).
pub async fn exists(conn: Conn<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = run!(conn, query_scalar, fetch_optional,
        sqlite: "SELECT id FROM products WHERE id = ?",
        postgres: "SELECT id FROM products WHERE id = $1 FOR KEY SHARE",
        id)?;
    Ok(found.is_some())
}

/// Whether the user owns at least one product.
pub async fn user_has_product(db: &Db, user_id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = run!(db.reader(), query_scalar, fetch_optional,
        sqlite: "SELECT id FROM products WHERE user_id = ? LIMIT 1",
        postgres: "SELECT id FROM products WHERE user_id = $1 LIMIT 1",
        user_id)?;
    Ok(found.is_some())
}

/// Django's `slugify`: ASCII letters, digits, `_` and `-`; spaces and
/// repeated dashes collapse into one `-`; lower case.
pub fn slugify(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut dash = false;
    for c in title.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else if c.is_whitespace() || c == '-' {
            dash = true;
        }
    }
    if out.is_empty() {
        out.push_str("product");
    }
    out
}

/// The advisory lock key that serializes slug choices on PostgreSQL
/// ("slug" in ASCII).
const PG_SLUG_LOCK: i64 = 0x736c_7567;

/// A slug derived from `title` that no product has yet: `lamp`, `lamp-1`, …
/// Must run inside the write transaction that inserts the product. On
/// PostgreSQL that transaction first takes a transaction-level advisory
/// lock, so that two replicas creating "Lamp" at once do not both pick
/// `lamp` (SQLite's `BEGIN IMMEDIATE` already serializes them). It costs no
/// concurrency: the insert's change-counter trigger serializes product
/// writes until commit anyway.
pub async fn unique_slug(tx: &mut WriteTx, title: &str) -> Result<String, sqlx::Error> {
    if let WriteTx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_SLUG_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let base = slugify(title);
    let mut candidate = base.clone();
    let mut n = 0u32;
    loop {
        let taken: Option<i64> = run!(tx.conn(), query_scalar, fetch_optional,
            sqlite: "SELECT id FROM products WHERE slug = ?",
            postgres: "SELECT id FROM products WHERE slug = $1",
            &candidate)?;
        if taken.is_none() {
            return Ok(candidate);
        }
        n += 1;
        candidate = format!("{base}-{n}");
    }
}

/// Fields written by create and update.
#[derive(Debug, Clone, Default)]
pub struct ProductWrite {
    pub title: String,
    pub description: String,
    pub image: Option<String>,
    pub category_id: Option<i64>,
    pub tags: String,
}

/// Inserts a product (slug and uuid generated); returns its id.
pub async fn insert(
    tx: &mut WriteTx,
    user_id: i64,
    p: &ProductWrite,
    created_at: &str,
) -> Result<i64, sqlx::Error> {
    let slug = unique_slug(tx, &p.title).await?;
    run!(tx.conn(), query_scalar, fetch_one,
        sqlite: "INSERT INTO products (product_id, title, slug, description, image, category_id, \
                 tags, views, user_id, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id",
        postgres: "INSERT INTO products (product_id, title, slug, description, image, category_id, \
                   tags, views, user_id, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10) RETURNING id",
        uuid::Uuid::new_v4().to_string(), &p.title, &slug, &p.description, &p.image,
        p.category_id, &p.tags, user_id, created_at, created_at)
}

/// Replaces the stored fields of product `id`.
pub async fn update(tx: &mut WriteTx, id: i64, p: &ProductWrite) -> Result<(), sqlx::Error> {
    run!(tx.conn(), query, execute,
        sqlite: "UPDATE products SET title = ?, description = ?, image = ?, category_id = ?, \
                 tags = ?, updated_at = ? WHERE id = ?",
        postgres: "UPDATE products SET title = $1, description = $2, image = $3, category_id = $4, \
                   tags = $5, updated_at = $6 WHERE id = $7",
        &p.title, &p.description, &p.image, p.category_id, &p.tags, crate::db::now(), id)
}

/// Replaces the votes of product `id` in two statements whatever their
/// number (the ids travel as one value, as in [`users::first_missing`]).
/// Ids that are not (or no longer) users are skipped: validation refused
/// missing ones before the transaction, so a voter missing here was deleted
/// since, and its vote would have gone with it.
///
/// [`users::first_missing`]: crate::db::users::first_missing
pub async fn set_votes(tx: &mut WriteTx, id: i64, voters: &[i64]) -> Result<(), sqlx::Error> {
    run!(tx.conn(), query, execute,
        sqlite: "DELETE FROM product_votes WHERE product_id = ?",
        postgres: "DELETE FROM product_votes WHERE product_id = $1",
        id)?;
    if voters.is_empty() {
        return Ok(());
    }
    match tx {
        WriteTx::Sqlite(tx) => {
            sqlx::query(
                "INSERT OR IGNORE INTO product_votes (product_id, user_id) \
                 SELECT ?, u.id FROM json_each(?) j JOIN users u ON u.id = j.value",
            )
            .bind(id)
            .bind(crate::db::users::id_list(voters))
            .execute(&mut **tx)
            .await?;
        }
        WriteTx::Postgres(tx) => {
            sqlx::query(
                "INSERT INTO product_votes (product_id, user_id) \
                 SELECT $1, u.id FROM unnest($2::bigint[]) AS j (v) JOIN users u ON u.id = j.v \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(voters)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Deletes product `id` (its votes and comments go with it).
pub async fn delete(tx: &mut WriteTx, id: i64) -> Result<(), sqlx::Error> {
    run!(tx.conn(), query, execute,
        sqlite: "DELETE FROM products WHERE id = ?",
        postgres: "DELETE FROM products WHERE id = $1",
        id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Lamp"), "lamp");
        assert_eq!(slugify("  Red  Desk -- Lamp! "), "red-desk-lamp");
        assert_eq!(slugify("!!!"), "product");
        assert_eq!(slugify("café 2"), "caf-2");
    }

    #[test]
    fn postgres_json_compacts_to_serde_bytes() {
        let pg = "{\"id\" : 1, \"t\" : \"a , b : \\\" c\", \"v\" : [{\"id\" : 2}, \n {\"id\" : 3}], \"n\" : null}";
        let compact = compact_json(pg);
        assert_eq!(
            compact,
            r#"{"id":1,"t":"a , b : \" c","v":[{"id":2},{"id":3}],"n":null}"#
        );
        let value: serde_json::Value = serde_json::from_str(pg).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&compact).unwrap(),
            value
        );
    }

    #[test]
    fn like_escapes() {
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
