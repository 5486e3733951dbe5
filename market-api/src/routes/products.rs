//! `products/`: reads and writes for logged-in users (as in the original),
//! changes by the owner only. Retrieve never writes (the stored `views` counter is not bumped
//! per GET: on SQLite that would turn every read into a write; see
//! docs/market-api.md).

use crate::db::Conn;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::{admit, AuthUser, MaybeAuthUser, TokenUser};
use crate::db::products::{self, OrderField, ProductFilter, ProductRow, ProductWrite};
use crate::db::{users, Db};
use crate::error::ApiError;
use crate::fields::{Field, Kind};
use crate::pagination::{Page, PageParams};
use crate::render_cache::{ListKey, ProductKey};
use crate::request::{IdParam, Origin, QueryParams};
use crate::routes::metadata::{Access, Owned, View};
use crate::state::AppState;
use crate::validation::{Form, JsonBody, Nullable};

/// The owner as the product serializer nests it.
const OWNER_FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("first_name", Kind::String).read_only(),
    Field::new("last_name", Kind::String).read_only(),
    Field::new("image", Kind::String).nullable().read_only(),
];

const TITLE: Field = Field::new("title", Kind::String).required().max_length(130);
const DESCRIPTION: Field = Field::new("description", Kind::String).max_length(1500);
const IMAGE: Field = Field::new("image", Kind::String).nullable().max_length(255);
const CATEGORY: Field = Field::new("category", Kind::Related).nullable();
const TAGS: Field = Field::new("tags", Kind::String).max_length(70);
/// The original put no bound on the voters list; 1,000 keeps one request
/// from costing more than a few milliseconds (a 165k-id list once held the
/// write lock for 7 s) and is far above any real product's voters.
const VOTES: Field = Field::new("votes", Kind::RelatedMany).max_length(1000);
/// `user` is read-only in the table (the owner is the token's user), but a
/// body may carry it if it names that user.
const OWNER: Field = Field::new("user", Kind::Related);

/// Search terms a list request may give; beyond them SQLite's expression
/// tree overflows (about 330 terms) long before the results would narrow.
const MAX_SEARCH_TERMS: usize = 20;
/// Longest search term: well above any word, far below SQLite's LIKE
/// pattern limit (50,000 bytes).
const MAX_SEARCH_TERM_CHARS: usize = 100;

/// The product serializer's fields, in [`ProductOut`]'s order: `validate`
/// checks with them, OPTIONS and the OpenAPI schema describe them.
pub(crate) const FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("product_id", Kind::Uuid).read_only(),
    TITLE,
    Field::new("slug", Kind::Slug).read_only(),
    DESCRIPTION,
    IMAGE,
    CATEGORY,
    TAGS,
    VOTES,
    Field::new("views", Kind::Integer).read_only(),
    Field::new("user", Kind::Nested(OWNER_FIELDS)).read_only(),
    Field::new("votes_count", Kind::Integer).read_only(),
];

/// `OPTIONS products/`
pub(crate) static LIST_VIEW: View = View {
    name: "Product List",
    description: "Products: logged-in users read the list; a user creates one and owns it.",
    allow: "GET, POST, HEAD, OPTIONS",
    access: Access::LoggedIn,
    post: Some(FIELDS),
    put: None,
};

/// `OPTIONS products/{id}/`
pub(crate) static DETAIL_VIEW: View = View {
    name: "Product Instance",
    description: "One product: logged-in users read it; its owner changes or deletes it.",
    allow: "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
    access: Access::LoggedIn,
    post: None,
    put: Some((Owned::Product, FIELDS)),
};

/// `OPTIONS products/has-product/`
pub(crate) static HAS_PRODUCT_VIEW: View = View {
    name: "Has product",
    description: "Whether user `client` owns at least one product.",
    allow: "GET, HEAD, OPTIONS",
    access: Access::Anyone,
    post: None,
    put: None,
};

#[derive(Debug, Serialize, Deserialize)]
pub struct Vote {
    pub id: i64,
    pub first_name: String,
}

#[derive(Debug, Serialize)]
pub struct Owner<'a> {
    pub id: i64,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub image: Option<String>,
}

/// The product representation of the original serializer.
#[derive(Debug, Serialize)]
pub struct ProductOut<'a> {
    pub id: i64,
    pub product_id: &'a str,
    pub title: &'a str,
    pub slug: &'a str,
    pub description: &'a str,
    pub image: Option<String>,
    pub category: Option<i64>,
    pub tags: &'a str,
    pub votes: Vec<Vote>,
    pub views: i64,
    pub user: Owner<'a>,
    pub votes_count: usize,
}

impl<'a> ProductOut<'a> {
    pub fn new(row: &'a ProductRow, origin: &Origin) -> Self {
        let votes: Vec<Vote> = serde_json::from_str(&row.votes).unwrap_or_default();
        ProductOut {
            id: row.id,
            product_id: &row.product_id,
            title: &row.title,
            slug: &row.slug,
            description: &row.description,
            image: row.image.as_deref().map(|p| origin.media_url(p)),
            category: row.category_id,
            tags: &row.tags,
            votes_count: votes.len(),
            votes,
            views: row.views,
            user: Owner {
                id: row.user_id,
                first_name: &row.user_first_name,
                last_name: &row.user_last_name,
                image: row.user_image.as_deref().map(|p| origin.media_url(p)),
            },
        }
    }
}

fn int_filter(query: &QueryParams, name: &str) -> Result<Option<i64>, ApiError> {
    match query.get(name) {
        None | Some("") => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::field(name, "Enter a number.")),
    }
}

/// An exact-match text filter on `field`. A value longer than the field
/// could never match, so it is refused with django-filter's (Django form
/// field's) message rather than sent to SQLite.
fn text_filter(query: &QueryParams, field: &Field) -> Result<Option<String>, ApiError> {
    let Some(value) = query.get(field.name).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let max = field.cap();
    let len = value.chars().count();
    if len > max {
        return Err(ApiError::field(
            field.name,
            format!("Ensure this value has at most {max} characters (it has {len})."),
        ));
    }
    if value.contains('\0') {
        return Err(ApiError::field(
            field.name,
            "Null characters are not allowed.",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// DRF's `SearchFilter` terms (NUL characters stripped, then split on
/// whitespace and commas), bounded in number and length.
fn search_terms(search: &str) -> Result<Vec<String>, ApiError> {
    let refuse = |message: String| Err(ApiError::field("search", message));
    let search = search.replace('\0', "");
    let mut terms = Vec::new();
    for term in search
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        if terms.len() == MAX_SEARCH_TERMS {
            return refuse(format!(
                "Ensure this field has no more than {MAX_SEARCH_TERMS} search terms."
            ));
        }
        if term.chars().nth(MAX_SEARCH_TERM_CHARS).is_some() {
            return refuse(format!(
                "Ensure each search term has no more than {MAX_SEARCH_TERM_CHARS} characters."
            ));
        }
        terms.push(term.to_owned());
    }
    Ok(terms)
}

/// DRF's `OrderingFilter`: unknown fields are ignored. A field named again
/// changes nothing (the rows are already ordered by its first mention), so
/// only first mentions are kept: there are at most four sort keys, however
/// long the parameter.
fn ordering(ordering: &str) -> Vec<(OrderField, bool)> {
    let mut fields: Vec<(OrderField, bool)> = Vec::new();
    for f in ordering.split(',') {
        let f = f.trim();
        let (name, desc) = match f.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (f, false),
        };
        if let Some(field) = OrderField::parse(name) {
            if !fields.iter().any(|(known, _)| *known == field) {
                fields.push((field, desc));
            }
        }
    }
    fields
}

/// The list endpoint's filters, search and ordering.
fn filter_from_query(query: &QueryParams) -> Result<ProductFilter, ApiError> {
    let mut filter = ProductFilter {
        user: int_filter(query, "user")?,
        title: text_filter(query, &TITLE)?,
        category: int_filter(query, "category")?,
        tags: text_filter(query, &TAGS)?,
        ..ProductFilter::default()
    };
    if let Some(search) = query.get("search") {
        filter.search = search_terms(search)?;
    }
    if let Some(fields) = query.get("ordering").map(ordering) {
        if !fields.is_empty() {
            filter.ordering = fields;
        }
    }
    Ok(filter)
}

/// `GET products/` (login required). Rendered pages are cached by what
/// selects their rows (host, page, filters: unknown parameters play no
/// part); the links around them are the request's own, as DRF builds them.
pub(crate) async fn list(
    State(state): State<AppState>,
    user: TokenUser,
    query: QueryParams,
    origin: Origin,
) -> Result<Response, ApiError> {
    let params = PageParams::from_query(&query)?;
    let filter = filter_from_query(&query)?;
    // Read before rendering: see `render_cache` for why this order is safe.
    let (generation, active) = state.generations.current(&state.db, user.user_id).await?;
    admit(active)?;
    let key = ListKey {
        host: origin.base(),
        page: params.request(),
        page_size: params.page_size,
        filter,
    };
    if let Some((page, items)) = state.pages.get(&key, generation) {
        return Ok(json_response(page.wrap_json(&origin, &items)));
    }
    let (page, items) = render_page(&state.db, &key.filter, &params, &origin).await?;
    let items = bytes::Bytes::from(items);
    let body = page.wrap_json(&origin, &items);
    state.pages.put(key, generation, page, items);
    Ok(json_response(body))
}

/// The page asked for and its products as one JSON array's inside
/// (`{…},{…}`). One query for a numbered page (rows carry the total);
/// `last` and pages past the end need the count on its own.
async fn render_page(
    db: &Db,
    filter: &ProductFilter,
    params: &PageParams,
    origin: &Origin,
) -> Result<(Page, String), ApiError> {
    let media = origin.media_base();
    let limit = params.page_size as i64;
    let (page, items) = match params.number() {
        Some(n) => {
            let (items, total) =
                products::page_json(db, filter, &media, limit, params.offset_of(n)).await?;
            let count = match total {
                Some(total) => total,
                None if n == 1 => 0,
                None => return Err(ApiError::InvalidPage),
            };
            (params.resolve(count)?, items)
        }
        None => {
            let page = params.resolve(products::count(db, filter).await?)?;
            let (items, _) =
                products::page_json(db, filter, &media, page.limit(), page.offset()).await?;
            (page, items)
        }
    };
    Ok((page, items.join(",")))
}

/// A 200 with a JSON body that is already encoded.
fn json_response(body: impl Into<axum::body::Body>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// `GET products/{id}/`: from the cache while the change counter stands
/// (on SQLite, while nothing commits, without any query).
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    user: TokenUser,
    IdParam(id): IdParam,
    origin: Origin,
) -> Result<Response, ApiError> {
    let (generation, active) = state.generations.current(&state.db, user.user_id).await?;
    admit(active)?;
    let key = ProductKey {
        id,
        media: origin.media_base(),
    };
    if let Some(((), body)) = state.products.get(&key, generation) {
        return Ok(json_response(body));
    }
    let (active, body) = products::get_json(&state.db, user.user_id, id, &key.media).await?;
    admit(active)?;
    let body = bytes::Bytes::from(body.ok_or(ApiError::NotFound)?);
    state.products.put(key, generation, (), body.clone());
    Ok(json_response(body))
}

/// A validated body: the fields given (`None`: keep the stored value).
struct ProductInput {
    title: Option<String>,
    description: Option<String>,
    tags: Option<String>,
    image: Nullable<String>,
    category: Nullable<i64>,
    /// The new voters, deduplicated; `None` when `votes` was not sent.
    votes: Option<Vec<i64>>,
}

/// Checks the body before any write transaction starts, so a bad or huge
/// body never holds SQLite's write lock: the form checks are linear, and
/// the related ids cost one read-pool query each for `category` and for
/// the whole `votes` list.
async fn validate(
    db: &Db,
    data: &Map<String, Value>,
    user: AuthUser,
    partial: bool,
) -> Result<ProductInput, ApiError> {
    let mut form = Form::new(data, partial);
    let input = ProductInput {
        title: form.string(&TITLE),
        description: form.string(&DESCRIPTION),
        tags: form.string(&TAGS),
        image: form.nullable_string(&IMAGE),
        category: form.pk(&CATEGORY),
        votes: form.pk_list(&VOTES),
    };
    if let Some(Some(owner)) = form.pk(&OWNER) {
        if owner != user.user_id {
            form.error("user", "Must be the authenticated user.");
        }
    }
    if let Some(Some(category)) = input.category {
        if !products::category_exists(db.reader(), category).await? {
            form.error(
                "category",
                format!("Invalid pk \"{category}\" - object does not exist."),
            );
        }
    }
    if let Some(votes) = &input.votes {
        if let Some(missing) = users::first_missing(db.reader(), votes).await? {
            form.error(
                "votes",
                format!("Invalid pk \"{missing}\" - object does not exist."),
            );
        }
    }
    form.finish()?;
    Ok(input)
}

impl ProductInput {
    /// The row to write: `base` (the stored product for updates) with the
    /// given fields over it. Fields not given keep their stored value, for
    /// PUT as for PATCH: DRF's `ModelSerializer.update()` sets only the
    /// fields it validated. The two differ only in that PUT requires the
    /// required fields.
    fn apply(self, base: Option<&ProductRow>) -> (ProductWrite, Option<Vec<i64>>) {
        let mut write = match base {
            Some(row) => ProductWrite {
                title: row.title.clone(),
                description: row.description.clone(),
                image: row.image.clone(),
                category_id: row.category_id,
                tags: row.tags.clone(),
            },
            None => ProductWrite::default(),
        };
        if let Some(title) = self.title {
            write.title = title;
        }
        if let Some(description) = self.description {
            write.description = description;
        }
        if let Some(tags) = self.tags {
            write.tags = tags;
        }
        if let Some(image) = self.image {
            write.image = image.filter(|s| !s.is_empty());
        }
        if let Some(category) = self.category {
            write.category_id = category;
        }
        (write, self.votes)
    }
}

/// `POST products/` → 201 (login required; the owner is the token's user).
pub(crate) async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    origin: Origin,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let data = body.parse()?;
    let (write, votes) = validate(&state.db, &data, user, false).await?.apply(None);
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    let id = products::insert(&mut tx, user.user_id, &write, &crate::db::now()).await?;
    products::set_votes(&mut tx, id, votes.as_deref().unwrap_or(&[])).await?;
    let row = products::get_in(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(ProductOut::new(&row, &origin))).into_response())
}

/// 404 unless product `id` exists, 403 unless `user` owns it.
async fn check_owner(exec: Conn<'_>, id: i64, user: AuthUser) -> Result<(), ApiError> {
    let owner = products::owner(exec, id).await?.ok_or(ApiError::NotFound)?;
    if owner != user.user_id {
        return Err(ApiError::PermissionDenied);
    }
    Ok(())
}

async fn change(
    state: AppState,
    user: AuthUser,
    id: i64,
    origin: Origin,
    body: JsonBody,
    partial: bool,
) -> Result<Response, ApiError> {
    // Existence and ownership first (DRF's order: 404/403 before the body's
    // 415/400), on the read pool; checked again under the write lock.
    check_owner(state.db.reader(), id, user).await?;
    let data = body.parse()?;
    let input = validate(&state.db, &data, user, partial).await?;
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    let row = products::get_in(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if row.user_id != user.user_id {
        return Err(ApiError::PermissionDenied);
    }
    let (write, votes) = input.apply(Some(&row));
    products::update(&mut tx, id, &write).await?;
    if let Some(votes) = &votes {
        products::set_votes(&mut tx, id, votes).await?;
    }
    let row = products::get_in(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(ProductOut::new(&row, &origin)).into_response())
}

/// `PUT products/{id}/` (owner only).
pub(crate) async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    origin: Origin,
    body: JsonBody,
) -> Result<Response, ApiError> {
    change(state, user, id, origin, body, false).await
}

/// `PATCH products/{id}/` (owner only).
pub(crate) async fn partial_update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    origin: Origin,
    body: JsonBody,
) -> Result<Response, ApiError> {
    change(state, user, id, origin, body, true).await
}

/// `DELETE products/{id}/` (owner only) → 204; the product is really gone.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    check_owner(tx.conn(), id, user).await?;
    products::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET products/has-product/?client=ID` → `{"has_product": bool}`: whether
/// user `ID` owns at least one product.
pub(crate) async fn has_product(
    State(state): State<AppState>,
    _user: MaybeAuthUser,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let client = match query.get("client") {
        None | Some("") => return Err(ApiError::field("client", "This field is required.")),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::field("client", "A valid integer is required."))?,
    };
    let has = products::user_has_product(&state.db, client).await?;
    Ok(Json(json!({ "has_product": has })))
}
