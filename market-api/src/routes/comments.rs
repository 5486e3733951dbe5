//! `products/comments/`: list and create for logged-in users; retrieve for
//! any logged-in user (the original answered 403), changes by the comment's
//! author only.

use crate::db::{Conn, WriteTx};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{Map, Value};

use crate::auth::AuthUser;
use crate::db::comments::{self, CommentRow, CommentWrite};
use crate::db::{products, Db};
use crate::error::ApiError;
use crate::fields::{Field, Kind};
use crate::pagination::{PageParams, Paginated};
use crate::request::{IdParam, Origin, QueryParams};
use crate::routes::metadata::{Access, Owned, View};
use crate::state::AppState;
use crate::validation::{Form, JsonBody, Nullable};

const RATING: Field = Field::new("rating", Kind::Integer).nullable().range(1, 5);
const REPLY: Field = Field::new("reply", Kind::String).required().max_length(300);
const POST: Field = Field::new("post", Kind::Related).required();

/// The comment serializer's fields, in [`CommentRow`]'s order: `validate`
/// checks with them, OPTIONS and the OpenAPI schema describe them.
pub(crate) const FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("created_at", Kind::DateTime).read_only(),
    Field::new("updated_at", Kind::DateTime).read_only(),
    Field::new("deleted_at", Kind::DateTime)
        .nullable()
        .read_only(),
    RATING,
    REPLY,
    Field::new("created_by", Kind::Related).read_only(),
    Field::new("updated_by", Kind::Related).read_only(),
    Field::new("user", Kind::Related).read_only(),
    POST,
];

/// `OPTIONS products/comments/`
pub(crate) static LIST_VIEW: View = View {
    name: "Comment List",
    description: "Comments, newest first (`?post=ID` for one product's); logged-in users only.",
    allow: "GET, POST, HEAD, OPTIONS",
    access: Access::LoggedIn,
    post: Some(FIELDS),
    put: None,
};

/// `OPTIONS products/comments/{id}/`
pub(crate) static DETAIL_VIEW: View = View {
    name: "Comment Instance",
    description: "One comment: any logged-in user reads it; its author changes or deletes it.",
    allow: "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
    access: Access::LoggedIn,
    post: None,
    put: Some((Owned::Comment, FIELDS)),
};

/// `GET products/comments/[?post=ID]`, newest first, paginated.
pub(crate) async fn list(
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

/// A validated body: the fields given (`None`: keep the stored value).
struct CommentInput {
    reply: Option<String>,
    rating: Nullable<i64>,
    post: Option<i64>,
}

/// Checks the body before any write transaction starts (so a bad body never
/// holds SQLite's write lock); `products::exists` on the read pool gives
/// the message for a missing post, and [`CommentInput::apply`] checks again
/// under the lock.
async fn validate(
    db: &Db,
    data: &Map<String, Value>,
    partial: bool,
) -> Result<CommentInput, ApiError> {
    let mut form = Form::new(data, partial);
    let reply = form.string(&REPLY);
    let rating = form.integer(&RATING);
    let post = form.pk(&POST).flatten();
    if let Some(post) = post {
        if !products::exists(db.reader(), post).await? {
            form.error("post", missing_post(post));
        }
    }
    form.finish()?;
    Ok(CommentInput {
        reply,
        rating,
        post,
    })
}

fn missing_post(post: i64) -> String {
    format!("Invalid pk \"{post}\" - object does not exist.")
}

impl CommentInput {
    /// The row to write: `base` (the stored comment for updates) with the
    /// given fields over it. Fields not given keep their stored value, for
    /// PUT as for PATCH (DRF's `ModelSerializer.update()`); PUT only
    /// requires the required fields. Runs inside the write transaction: a
    /// post deleted since validation is refused as missing.
    async fn apply(
        self,
        tx: &mut WriteTx,
        base: Option<&CommentRow>,
    ) -> Result<CommentWrite, ApiError> {
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
        if let Some(reply) = self.reply {
            write.reply = reply;
        }
        if let Some(rating) = self.rating {
            write.rating = rating;
        }
        if let Some(post) = self.post {
            if !products::exists(tx.conn(), post).await? {
                return Err(ApiError::field("post", missing_post(post)));
            }
            write.post = post;
        }
        Ok(write)
    }
}

/// `POST products/comments/` → 201.
pub(crate) async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    body: JsonBody,
) -> Result<(StatusCode, Json<CommentRow>), ApiError> {
    let data = body.parse()?;
    let input = validate(&state.db, &data, false).await?;
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    let write = input.apply(&mut tx, None).await?;
    let id = comments::insert(&mut tx, user.user_id, &write, &crate::db::now()).await?;
    let row = comments::get_in(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// `GET products/comments/{id}/`
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    _user: AuthUser,
    IdParam(id): IdParam,
) -> Result<Json<CommentRow>, ApiError> {
    comments::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Comment `id`, which only its author may change (404, 403 otherwise).
async fn own_comment(exec: Conn<'_>, id: i64, user: AuthUser) -> Result<CommentRow, ApiError> {
    let row = comments::get_in(exec, id)
        .await?
        .ok_or(ApiError::NotFound)?;
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
    // Existence and ownership first (DRF's order: 404/403 before the body's
    // 415/400), on the read pool; checked again under the write lock.
    own_comment(state.db.reader(), id, user).await?;
    let data = body.parse()?;
    let input = validate(&state.db, &data, partial).await?;
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    comments::lock(&mut tx, id).await?;
    let row = own_comment(tx.conn(), id, user).await?;
    let write = input.apply(&mut tx, Some(&row)).await?;
    comments::update(&mut tx, id, user.user_id, &write).await?;
    let row = comments::get_in(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(row))
}

/// `PUT products/comments/{id}/` (author only).
pub(crate) async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    body: JsonBody,
) -> Result<Json<CommentRow>, ApiError> {
    change(state, user, id, body, false).await
}

/// `PATCH products/comments/{id}/` (author only).
pub(crate) async fn partial_update(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
    body: JsonBody,
) -> Result<Json<CommentRow>, ApiError> {
    change(state, user, id, body, true).await
}

/// `DELETE products/comments/{id}/` (author only) → 204.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.begin_write().await?;
    user.require_active(&mut tx).await?;
    comments::lock(&mut tx, id).await?;
    own_comment(tx.conn(), id, user).await?;
    comments::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
