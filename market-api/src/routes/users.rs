//! `users/register/` (open; new users are active at once), and the staff-only
//! `users/` and `users/{id}/`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::AuthUser;
use crate::db::users::{self, UserRow};
use crate::error::ApiError;
use crate::pagination::{PageParams, Paginated};
use crate::request::{IdParam, Origin, QueryParams};
use crate::routes::metadata::{Access, Field, Kind, View};
use crate::state::AppState;
use crate::validation::{strong_password, valid_email, Form, JsonBody};

/// The registration serializer's fields, with the limits `register`
/// enforces (for OPTIONS and the OpenAPI schema).
pub const REGISTER_FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    Field::new("email", Kind::Email).required().max_length(254),
    Field::new("password", Kind::String)
        .required()
        .min_length(6)
        .max_length(128),
    Field::new("confirm_password", Kind::String)
        .required()
        .max_length(128),
    Field::new("first_name", Kind::String).max_length(150),
    Field::new("last_name", Kind::String).max_length(150),
    Field::new("image", Kind::String).nullable().read_only(),
];

/// `OPTIONS users/register/`
pub static REGISTER_VIEW: View = View {
    name: "Register",
    description: "Creates an account, active at once.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(REGISTER_FIELDS),
    put: None,
};

/// `OPTIONS users/`
pub static LIST_VIEW: View = View {
    name: "User List",
    description: "Every user (staff only).",
    allow: "GET, HEAD, OPTIONS",
    access: Access::Staff,
    post: None,
    put: None,
};

/// `OPTIONS users/{id}/`
pub static DETAIL_VIEW: View = View {
    name: "User Instance",
    description: "One user (staff only).",
    allow: "GET, HEAD, OPTIONS",
    access: Access::Staff,
    post: None,
    put: None,
};

/// `POST users/register/ {email, password, confirm_password}` → 201.
pub async fn register(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let data = body.parse()?;
    let mut form = Form::new(&data, false);
    let email = form.string("email", true, false, 254);
    let password = form.string("password", true, false, 128);
    let confirm = form.string("confirm_password", true, false, 128);
    let first_name = form
        .string("first_name", false, true, 150)
        .unwrap_or_default();
    let last_name = form
        .string("last_name", false, true, 150)
        .unwrap_or_default();
    if let Some(email) = &email {
        if !valid_email(email) {
            form.error("email", "Enter a valid email address.");
        }
    }
    if let Some(password) = &password {
        if !strong_password(password) {
            form.error(
                "password",
                "Password must be at least 6 characters long and contain a letter, a digit and a special character.",
            );
        }
    }
    if let Some(email) = &email {
        if !form.has_errors() && users::credentials(&state.db, email).await?.is_some() {
            form.error("email", "user with this email already exists.");
        }
    }
    form.finish()?;
    let (Some(email), Some(password), Some(confirm)) = (email, password, confirm) else {
        return Err(ApiError::BadRequest("Invalid data.".into()));
    };
    if password != confirm {
        return Err(ApiError::field(
            "non_field_errors",
            "Passwords do not match.",
        ));
    }
    // Hash before taking the write lock: hashing is the slow part.
    let hash = state.passwords.hash(password).await?;
    let mut tx = state.db.begin_write().await?;
    if users::email_taken(&mut tx, &email).await? {
        return Err(ApiError::field(
            "email",
            "user with this email already exists.",
        ));
    }
    let id = users::insert(&mut tx, &email, &hash, &first_name, &last_name).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "email": email, "image": null })),
    ))
}

/// 403 unless `user` is active staff (401 when the user is gone).
pub(crate) async fn require_staff(state: &AppState, user: AuthUser) -> Result<(), ApiError> {
    match users::active_staff_flag(&state.db.read, user.user_id).await? {
        None => Err(ApiError::UserNotFound),
        Some(false) => Err(ApiError::PermissionDenied),
        Some(true) => Ok(()),
    }
}

/// `GET users/` (staff only), paginated.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    query: QueryParams,
    origin: Origin,
) -> Result<Json<Paginated<UserRow>>, ApiError> {
    require_staff(&state, user).await?;
    let params = PageParams::from_query(&query)?;
    let page = params.resolve(users::count(&state.db).await?)?;
    let rows = users::page(&state.db, page.limit(), page.offset()).await?;
    Ok(Json(page.wrap(&origin, rows)))
}

/// `GET users/{id}/` (staff only).
pub async fn retrieve(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> Result<Json<UserRow>, ApiError> {
    require_staff(&state, user).await?;
    users::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}
