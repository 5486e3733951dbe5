//! `products/`: public reads, writes for logged-in users, changes by the
//! owner only. Retrieve never writes (the stored `views` counter is not bumped
//! per GET: on SQLite that would turn every read into a write; see
//! docs/market-api.md).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::{Sqlite, Transaction};

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::db::products::{self, OrderField, ProductFilter, ProductRow, ProductWrite};
use crate::db::users;
use crate::error::ApiError;
use crate::pagination::PageParams;
use crate::request::{IdParam, Origin, QueryParams};
use crate::routes::metadata::{Access, Field, Kind, Owned, View};
use crate::state::AppState;
use crate::validation::{Form, JsonBody};

/// The owner as the product serializer nests it.
const OWNER_FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("first_name", Kind::String).read_only(),
    Field::new("last_name", Kind::String).read_only(),
    Field::new("image", Kind::String).nullable().read_only(),
];

/// The product serializer's fields, in [`ProductOut`]'s order, with the
/// limits `validate` enforces (for OPTIONS and the OpenAPI schema). The
/// owner is the token's user, so `user` is read-only here.
pub const FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("product_id", Kind::Uuid).read_only(),
    Field::new("title", Kind::String).required().max_length(130),
    Field::new("slug", Kind::Slug).read_only(),
    Field::new("description", Kind::String).max_length(1500),
    Field::new("image", Kind::String).nullable().max_length(255),
    Field::new("category", Kind::Related).nullable(),
    Field::new("tags", Kind::String).max_length(70),
    Field::new("votes", Kind::RelatedMany),
    Field::new("views", Kind::Integer).read_only(),
    Field::new("user", Kind::Nested(OWNER_FIELDS)).read_only(),
    Field::new("votes_count", Kind::Integer).read_only(),
];

/// `OPTIONS products/`
pub static LIST_VIEW: View = View {
    name: "Product List",
    description: "Products: anyone reads the list; a logged-in user creates one and owns it.",
    allow: "GET, POST, HEAD, OPTIONS",
    access: Access::LoggedInToWrite,
    post: Some(FIELDS),
    put: None,
};

/// `OPTIONS products/{id}/`
pub static DETAIL_VIEW: View = View {
    name: "Product Instance",
    description: "One product: anyone reads it; its owner changes or deletes it.",
    allow: "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
    access: Access::LoggedInToWrite,
    post: None,
    put: Some((Owned::Product, FIELDS)),
};

/// `OPTIONS products/has-product/`
pub static HAS_PRODUCT_VIEW: View = View {
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

fn text_filter(query: &QueryParams, name: &str) -> Option<String> {
    query.get(name).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The list endpoint's filters, search and ordering.
fn filter_from_query(query: &QueryParams) -> Result<ProductFilter, ApiError> {
    let mut filter = ProductFilter {
        user: int_filter(query, "user")?,
        title: text_filter(query, "title"),
        category: int_filter(query, "category")?,
        tags: text_filter(query, "tags"),
        ..ProductFilter::default()
    };
    if let Some(search) = query.get("search") {
        filter.search = search
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(ordering) = query.get("ordering") {
        // Unknown fields are ignored, as DRF's OrderingFilter does.
        let fields: Vec<(OrderField, bool)> = ordering
            .split(',')
            .filter_map(|f| {
                let f = f.trim();
                let (name, desc) = match f.strip_prefix('-') {
                    Some(rest) => (rest, true),
                    None => (f, false),
                };
                OrderField::parse(name).map(|field| (field, desc))
            })
            .collect();
        if !fields.is_empty() {
            filter.ordering = fields;
        }
    }
    Ok(filter)
}

/// `GET products/`
pub async fn list(
    State(state): State<AppState>,
    _user: MaybeAuthUser,
    query: QueryParams,
    origin: Origin,
) -> Result<Response, ApiError> {
    let params = PageParams::from_query(&query)?;
    let filter = filter_from_query(&query)?;
    // Read before rendering: see `page_cache` for why this order is safe.
    let generation = products::generation(&state.db).await?;
    let mut key = origin.base();
    key.push_str(&origin.uri.to_string());
    if let Some(body) = state.pages.get(&key, generation) {
        return Ok(json_response(body));
    }
    let media = origin.media_base();
    // One query for a numbered page (rows carry the total); `last` and
    // pages past the end need the count on its own.
    let limit = params.page_size as i64;
    let (page, items) = match params.number() {
        Some(n) => {
            let (items, total) =
                products::page_json(&state.db, &filter, &media, limit, params.offset_of(n)).await?;
            let count = match total {
                Some(total) => total,
                None if n == 1 => 0,
                None => return Err(ApiError::InvalidPage),
            };
            (params.resolve(count)?, items)
        }
        None => {
            let page = params.resolve(products::count(&state.db, &filter).await?)?;
            let (items, _) =
                products::page_json(&state.db, &filter, &media, page.limit(), page.offset())
                    .await?;
            (page, items)
        }
    };
    let body = bytes::Bytes::from(page.wrap_json(&origin, &items));
    state.pages.put(key, generation, body.clone());
    Ok(json_response(body))
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

/// `GET products/{id}/`
pub async fn retrieve(
    State(state): State<AppState>,
    _user: MaybeAuthUser,
    IdParam(id): IdParam,
    origin: Origin,
) -> Result<Response, ApiError> {
    let body = products::get_json(&state.db, id, &origin.media_base())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(json_response(body))
}

/// Validated body of a create/update.
struct ProductInput {
    write: ProductWrite,
    /// The new voters; `None` when `votes` was not sent (no change).
    votes: Option<Vec<i64>>,
}

/// Checks the body against `base` (the stored product for updates). Fields
/// not given keep their stored value, for PUT as for PATCH: DRF's
/// `ModelSerializer.update()` sets only the fields it validated. The two
/// differ only in that PUT requires the required fields.
async fn validate(
    tx: &mut Transaction<'static, Sqlite>,
    data: &Map<String, Value>,
    user: AuthUser,
    base: Option<&ProductRow>,
    partial: bool,
) -> Result<ProductInput, ApiError> {
    let mut form = Form::new(data, partial);
    let title = form.string("title", true, false, 130);
    let description = form.string("description", false, true, 1500);
    let tags = form.string("tags", false, true, 70);
    let image = form.nullable_string("image", false, true, 255);
    let category = form.pk("category", false, true);
    let votes = form.pk_list("votes", false);
    if let Some(Some(owner)) = form.pk("user", false, false) {
        if owner != user.user_id {
            form.error("user", "Must be the authenticated user.");
        }
    }
    if let Some(Some(category)) = category {
        if !products::category_exists(tx, category).await? {
            form.error(
                "category",
                format!("Invalid pk \"{category}\" - object does not exist."),
            );
        }
    }
    if let Some(votes) = &votes {
        if let Some(missing) = users::missing_ids(tx, votes).await?.first() {
            form.error(
                "votes",
                format!("Invalid pk \"{missing}\" - object does not exist."),
            );
        }
    }
    form.finish()?;
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
    if let Some(title) = title {
        write.title = title;
    }
    if let Some(description) = description {
        write.description = description;
    }
    if let Some(tags) = tags {
        write.tags = tags;
    }
    if let Some(image) = image {
        write.image = image.filter(|s| !s.is_empty());
    }
    if let Some(category) = category {
        write.category_id = category;
    }
    Ok(ProductInput { write, votes })
}

/// `POST products/` → 201 (login required; the owner is the token's user).
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    origin: Origin,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let data = body.parse()?;
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    let input = validate(&mut tx, &data, user, None, false).await?;
    let id = products::insert(&mut tx, user.user_id, &input.write, &crate::db::now()).await?;
    products::set_votes(&mut tx, id, input.votes.as_deref().unwrap_or(&[])).await?;
    let row = products::get_in(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(ProductOut::new(&row, &origin))).into_response())
}

async fn change(
    state: AppState,
    user: AuthUser,
    id: i64,
    origin: Origin,
    body: JsonBody,
    partial: bool,
) -> Result<Response, ApiError> {
    let mut tx = state.db.begin_write().await?;
    let row = products::get_in(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if row.user_id != user.user_id {
        return Err(ApiError::PermissionDenied);
    }
    let data = body.parse()?;
    let input = validate(&mut tx, &data, user, Some(&row), partial).await?;
    products::update(&mut tx, id, &input.write).await?;
    if let Some(votes) = &input.votes {
        products::set_votes(&mut tx, id, votes).await?;
    }
    let row = products::get_in(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(ProductOut::new(&row, &origin)).into_response())
}

/// `PUT products/{id}/` (owner only).
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    origin: Origin,
    body: JsonBody,
) -> Result<Response, ApiError> {
    change(state, user, id, origin, body, false).await
}

/// `PATCH products/{id}/` (owner only).
pub async fn partial_update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    origin: Origin,
    body: JsonBody,
) -> Result<Response, ApiError> {
    change(state, user, id, origin, body, true).await
}

/// `DELETE products/{id}/` (owner only) → 204; the product is really gone.
pub async fn destroy(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.begin_write().await?;
    let owner = products::owner(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if owner != user.user_id {
        return Err(ApiError::PermissionDenied);
    }
    products::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET products/has-product/?client=ID` → `{"has_product": bool}`: whether
/// user `ID` owns at least one product.
pub async fn has_product(
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
