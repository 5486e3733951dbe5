//! Products and their votes. Reads for the API (retrieve, list pages) get
//! each product as one JSON text rendered by SQLite, owner and votes joined
//! in, so a retrieve and a page each cost one prepared statement and one
//! value per product. Writes read the typed [`ProductRow`] instead.

use sqlx::{FromRow, Sqlite, SqliteExecutor, Transaction};

use crate::db::Db;

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

const SELECT_PRODUCT: &str = "SELECT p.id, p.product_id, p.title, p.slug, p.description, p.image, \
     p.category_id, p.tags, p.views, p.user_id, u.first_name AS user_first_name, \
     u.last_name AS user_last_name, u.image AS user_image, \
     (SELECT json_group_array(json_object('id', vu.id, 'first_name', vu.first_name)) \
        FROM (SELECT vu.id, vu.first_name FROM product_votes v JOIN users vu ON vu.id = v.user_id \
              WHERE v.product_id = p.id ORDER BY vu.id) AS vu) AS votes \
     FROM products p JOIN users u ON u.id = p.user_id";

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

impl ProductFilter {
    fn where_clause<'a>(&'a self, sql: &mut String, args: &mut Vec<Arg<'a>>) {
        let mut first = true;
        let mut and = |sql: &mut String| {
            sql.push_str(if first { " WHERE " } else { " AND " });
            first = false;
        };
        if let Some(user) = self.user {
            and(sql);
            sql.push_str("p.user_id = ?");
            args.push(Arg::Int(user));
        }
        if let Some(title) = &self.title {
            and(sql);
            sql.push_str("p.title = ?");
            args.push(Arg::Text(title));
        }
        if let Some(category) = self.category {
            and(sql);
            sql.push_str("p.category_id = ?");
            args.push(Arg::Int(category));
        }
        if let Some(tags) = &self.tags {
            and(sql);
            sql.push_str("p.tags = ?");
            args.push(Arg::Text(tags));
        }
        for term in &self.search {
            and(sql);
            sql.push_str(
                "(p.title LIKE ? ESCAPE '\\' OR p.description LIKE ? ESCAPE '\\' OR p.tags LIKE ? ESCAPE '\\')",
            );
            let pattern = like_pattern(term);
            args.push(Arg::Owned(pattern.clone()));
            args.push(Arg::Owned(pattern.clone()));
            args.push(Arg::Owned(pattern));
        }
    }
}

fn bind_all<'q, O>(
    mut query: sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>,
    args: Vec<Arg<'q>>,
) -> sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Owned(v) => query.bind(v),
        };
    }
    query
}

/// Number of products matching `filter`.
pub async fn count(db: &Db, filter: &ProductFilter) -> Result<i64, sqlx::Error> {
    let mut sql = String::from("SELECT COUNT(*) FROM products p");
    let mut args = Vec::new();
    filter.where_clause(&mut sql, &mut args);
    let (n,): (i64,) = bind_all(sqlx::query_as(&sql), args)
        .fetch_one(&db.read)
        .await?;
    Ok(n)
}

/// The product as the API renders it, built by SQLite as one JSON text
/// (same keys, order and escaping as `routes::products::ProductOut`): a page
/// then costs one value per row instead of fifteen, and nothing is decoded,
/// parsed and re-encoded in Rust. The two `?` take the media base URL
/// (`http://host/media/`) that relative image paths are joined to.
const PRODUCT_JSON: &str = "json_object('id', p.id, 'product_id', p.product_id, 'title', p.title, \
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
        WHERE v.product_id = p.id))";

/// One page of products matching `filter`, each already rendered as JSON
/// (see [`PRODUCT_JSON`]), and the number of matching rows (`None` when the
/// page is empty: the count then needs its own query).
pub async fn page_json(
    db: &Db,
    filter: &ProductFilter,
    media_base: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<String>, Option<i64>), sqlx::Error> {
    let mut sql = String::with_capacity(PRODUCT_JSON.len() + 512);
    let mut args = vec![Arg::Text(media_base), Arg::Text(media_base)];
    let mut order = String::from(" ORDER BY ");
    for (field, desc) in &filter.ordering {
        order.push_str(field.column());
        order.push_str(if *desc { " DESC, " } else { " ASC, " });
    }
    order.push_str("p.id DESC");
    // The count is an uncorrelated subquery (evaluated once)
    // and the page's ids are chosen on the bare table first.
    sql.push_str("SELECT ");
    sql.push_str(PRODUCT_JSON);
    sql.push_str(", (SELECT COUNT(*) FROM products p");
    filter.where_clause(&mut sql, &mut args);
    sql.push_str(") AS total FROM (SELECT p.id FROM products p");
    filter.where_clause(&mut sql, &mut args);
    sql.push_str(&order);
    sql.push_str(
        " LIMIT ? OFFSET ?) AS pg JOIN products p ON p.id = pg.id JOIN users u ON u.id = p.user_id",
    );
    sql.push_str(&order);
    args.push(Arg::Int(limit));
    args.push(Arg::Int(offset));
    let rows: Vec<(String, i64)> = bind_all(sqlx::query_as(&sql), args)
        .fetch_all(&db.read)
        .await?;
    let total = rows.first().map(|r| r.1);
    Ok((rows.into_iter().map(|r| r.0).collect(), total))
}

/// The change counter: moves on every write that can change how a product
/// renders, in any process (triggers; see the `change_counter` migration).
/// Also answers whether user `viewer` is active (`None`: no such user), so
/// that the list's cache-hit path stays one query with the login check in it.
pub async fn generation(db: &Db, viewer: i64) -> Result<(i64, Option<bool>), sqlx::Error> {
    sqlx::query_as(
        "SELECT generation, (SELECT is_active FROM users WHERE id = ?) \
         FROM change_counter WHERE id = 1",
    )
    .bind(viewer)
    .fetch_one(&db.read)
    .await
}

/// Whether user `viewer` is active (`None`: no such user) and product `id`
/// rendered as JSON (see [`PRODUCT_JSON`]; `None` when missing), in one
/// query: the login check rides along with the read instead of costing a
/// second round trip to SQLite's thread on the API's hottest route.
pub async fn get_json(
    db: &Db,
    viewer: i64,
    id: i64,
    media_base: &str,
) -> Result<(Option<bool>, Option<String>), sqlx::Error> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT (SELECT is_active FROM users WHERE id = ?), (SELECT {PRODUCT_JSON} \
             FROM products p JOIN users u ON u.id = p.user_id WHERE p.id = ?)"
        )
    });
    sqlx::query_as(sql)
        .bind(viewer)
        .bind(media_base)
        .bind(media_base)
        .bind(id)
        .fetch_one(&db.read)
        .await
}

fn select_by_id() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("{SELECT_PRODUCT} WHERE p.id = ?"))
}

/// One product, or `None`.
pub async fn get(db: &Db, id: i64) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(select_by_id())
        .bind(id)
        .fetch_optional(&db.read)
        .await
}

/// One product, read inside a write transaction (sees its own changes).
pub async fn get_in(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(select_by_id())
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// The owner of a product, or `None` when it does not exist.
pub async fn owner(exec: impl SqliteExecutor<'_>, id: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM products WHERE id = ?")
        .bind(id)
        .fetch_optional(exec)
        .await
}

pub async fn category_exists(exec: impl SqliteExecutor<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE id = ?")
        .bind(id)
        .fetch_optional(exec)
        .await?;
    Ok(found.is_some())
}

pub async fn exists(exec: impl SqliteExecutor<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = ?")
        .bind(id)
        .fetch_optional(exec)
        .await?;
    Ok(found.is_some())
}

/// Whether the user owns at least one product.
pub async fn user_has_product(db: &Db, user_id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM products WHERE user_id = ? LIMIT 1")
            .bind(user_id)
            .fetch_optional(&db.read)
            .await?;
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

/// A slug derived from `title` that no product has yet: `lamp`, `lamp-1`, …
/// Must run inside the write transaction that inserts the product.
pub async fn unique_slug(
    tx: &mut Transaction<'static, Sqlite>,
    title: &str,
) -> Result<String, sqlx::Error> {
    let base = slugify(title);
    let mut candidate = base.clone();
    let mut n = 0u32;
    loop {
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE slug = ?")
            .bind(&candidate)
            .fetch_optional(&mut **tx)
            .await?;
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
    tx: &mut Transaction<'static, Sqlite>,
    user_id: i64,
    p: &ProductWrite,
    created_at: &str,
) -> Result<i64, sqlx::Error> {
    let slug = unique_slug(tx, &p.title).await?;
    sqlx::query_scalar(
        "INSERT INTO products (product_id, title, slug, description, image, category_id, tags, \
         views, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&p.title)
    .bind(&slug)
    .bind(&p.description)
    .bind(&p.image)
    .bind(p.category_id)
    .bind(&p.tags)
    .bind(user_id)
    .bind(created_at)
    .bind(created_at)
    .fetch_one(&mut **tx)
    .await
}

/// Replaces the stored fields of product `id`.
pub async fn update(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
    p: &ProductWrite,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE products SET title = ?, description = ?, image = ?, category_id = ?, tags = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(&p.title)
    .bind(&p.description)
    .bind(&p.image)
    .bind(p.category_id)
    .bind(&p.tags)
    .bind(crate::db::now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces the votes of product `id` in two statements whatever their
/// number. Ids that are not (or no longer) users are skipped: validation
/// refused missing ones before the transaction, so a voter missing here was
/// deleted since, and its vote would have gone with it.
pub async fn set_votes(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
    voters: &[i64],
) -> Result<(), sqlx::Error> {
    crate::db::execute_for_id(tx, "DELETE FROM product_votes WHERE product_id = ?", id).await?;
    if voters.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT OR IGNORE INTO product_votes (product_id, user_id) \
         SELECT ?, u.id FROM json_each(?) j JOIN users u ON u.id = j.value",
    )
    .bind(id)
    .bind(crate::db::users::id_list(voters))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes product `id` (its votes and comments go with it).
pub async fn delete(tx: &mut Transaction<'static, Sqlite>, id: i64) -> Result<(), sqlx::Error> {
    crate::db::execute_for_id(tx, "DELETE FROM products WHERE id = ?", id).await
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
    fn like_escapes() {
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
