//! `products/comments/`: list and create for logged-in users; retrieve for
//! any logged-in user (the original answered 403), changes by the comment's
//! author only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{Map, Value};
use sqlx::{Sqlite, Transaction};

use crate::auth::AuthUser;
use crate::db::comments::{self, CommentRow, CommentWrite};
use crate::db::products;
use crate::error::ApiError;
use crate::pagination::{PageParams, Paginated};
use crate::request::{IdParam, Origin, QueryParams};
use crate::routes::metadata::{Access, Field, Kind, Owned, View};
use crate::state::AppState;
use crate::validation::{Form, JsonBody};

/// The comment serializer's fields, in [`CommentRow`]'s order, with the
/// limits `validate` enforces (for OPTIONS and the OpenAPI schema).
pub const FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("created_at", Kind::DateTime).read_only(),
    Field::new("updated_at", Kind::DateTime).read_only(),
    Field::new("deleted_at", Kind::DateTime)
        .nullable()
        .read_only(),
    Field::new("rating", Kind::Integer).nullable().range(1, 5),
    Field::new("reply", Kind::String).required().max_length(300),
    Field::new("created_by", Kind::Related).read_only(),
    Field::new("updated_by", Kind::Related).read_only(),
    Field::new("user", Kind::Related).read_only(),
    Field::new("post", Kind::Related).required(),
];

/// `OPTIONS products/comments/`
pub static LIST_VIEW: View = View {
    name: "Comment List",
    description: "Comments, newest first (`?post=ID` for one product's); logged-in users only.",
    allow: "GET, POST, HEAD, OPTIONS",
    access: Access::LoggedIn,
    post: Some(FIELDS),
    put: None,
};

/// `OPTIONS products/comments/{id}/`
pub static DETAIL_VIEW: View = View {
    name: "Comment Instance",
    description: "One comment: any logged-in user reads it; its author changes or deletes it.",
    allow: "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
    access: Access::LoggedIn,
    post: None,
    put: Some((Owned::Comment, FIELDS)),
};

/// `GET products/comments/[?post=ID]`, newest first, paginated.
pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
    query: QueryParams,
    origin: Origin,
) -> Result<Json<Paginated<CommentRow>>, ApiError> {
    let params = PageParams::from_query(&query)?;
    let post = match query.get("post") {
        None | Some("") => None,
        Some(s) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::field("post", "Enter a number."))?,
        ),
    };
    let page = params.resolve(comments::count(&state.db, post).await?)?;
    let rows = comments::page(&state.db, post, page.limit(), page.offset()).await?;
    Ok(Json(page.wrap(&origin, rows)))
}

/// Checks the body against `base` (the stored comment for updates). Fields
/// not given keep their stored value, for PUT as for PATCH (DRF's
/// `ModelSerializer.update()`); PUT only requires the required fields.
async fn validate(
    tx: &mut Transaction<'static, Sqlite>,
    data: &Map<String, Value>,
    base: Option<&CommentRow>,
    partial: bool,
) -> Result<CommentWrite, ApiError> {
    let mut form = Form::new(data, partial);
    let reply = form.string("reply", true, false, 300);
    let rating = form.integer("rating", false, true, 1, 5);
    let post = form.pk("post", true, false);
    if let Some(Some(post)) = post {
        if !products::exists(tx, post).await? {
            form.error(
                "post",
                format!("Invalid pk \"{post}\" - object does not exist."),
            );
        }
    }
    form.finish()?;
    let mut write = match base {
        Some(c) => CommentWrite {
            rating: c.rating,
            reply: c.reply.clone(),
            post: c.post,
        },
        None => CommentWrite {
            rating: None,
            reply: String::new(),
            post: 0,
        },
    };
    if let Some(reply) = reply {
        write.reply = reply;
    }
    if let Some(rating) = rating {
        write.rating = rating;
    }
    if let Some(Some(post)) = post {
        write.post = post;
    }
    Ok(write)
}

/// `POST products/comments/` → 201.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    body: JsonBody,
) -> Result<(StatusCode, Json<CommentRow>), ApiError> {
    let data = body.parse()?;
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    let write = validate(&mut tx, &data, None, false).await?;
    let id = comments::insert(&mut tx, user.user_id, &write, &crate::db::now()).await?;
    let row = comments::get_in(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// `GET products/comments/{id}/`
pub async fn retrieve(
    State(state): State<AppState>,
    _user: AuthUser,
    IdParam(id): IdParam,
) -> Result<Json<CommentRow>, ApiError> {
    comments::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Comment `id`, read inside the write transaction that will change it;
/// only its author may.
async fn own_comment(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
    user: AuthUser,
) -> Result<CommentRow, ApiError> {
    let row = comments::get_in(tx, id).await?.ok_or(ApiError::NotFound)?;
    if row.user != Some(user.user_id) {
        return Err(ApiError::PermissionDenied);
    }
    Ok(row)
}

async fn change(
    state: AppState,
    user: AuthUser,
    id: i64,
    body: JsonBody,
    partial: bool,
) -> Result<Json<CommentRow>, ApiError> {
    let mut tx = state.db.begin_write().await?;
    let row = own_comment(&mut tx, id, user).await?;
    let data = body.parse()?;
    let write = validate(&mut tx, &data, Some(&row), partial).await?;
    comments::update(&mut tx, id, user.user_id, &write).await?;
    let row = comments::get_in(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(row))
}

/// `PUT products/comments/{id}/` (author only).
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    body: JsonBody,
) -> Result<Json<CommentRow>, ApiError> {
    change(state, user, id, body, false).await
}

/// `PATCH products/comments/{id}/` (author only).
pub async fn partial_update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    body: JsonBody,
) -> Result<Json<CommentRow>, ApiError> {
    change(state, user, id, body, true).await
}

/// `DELETE products/comments/{id}/` (author only) → 204.
pub async fn destroy(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.begin_write().await?;
    own_comment(&mut tx, id, user).await?;
    comments::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
