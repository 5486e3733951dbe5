//! `users/register/` (open; new users are active at once), and the staff-only
//! `users/` and `users/{id}/`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::AuthUser;
use crate::db::users::{self, UserRow};
use crate::error::ApiError;
use crate::fields::{Field, Kind};
use crate::pagination::{PageParams, Paginated};
use crate::request::{IdParam, Origin, QueryParams};
use crate::routes::metadata::{Access, View};
use crate::state::AppState;
use crate::validation::{strong_password, valid_email, Form, JsonBody};

const EMAIL: Field = Field::new("email", Kind::Email).required().max_length(254);
const PASSWORD: Field = Field::new("password", Kind::String)
    .required()
    .min_length(6)
    .max_length(128);
const CONFIRM_PASSWORD: Field = Field::new("confirm_password", Kind::String)
    .required()
    .max_length(128);
const FIRST_NAME: Field = Field::new("first_name", Kind::String).max_length(150);
const LAST_NAME: Field = Field::new("last_name", Kind::String).max_length(150);

/// The registration serializer's fields: `register` validates with them,
/// OPTIONS and the OpenAPI schema describe them.
pub(crate) const REGISTER_FIELDS: &[Field] = &[
    Field::new("id", Kind::Integer).read_only(),
    EMAIL,
    PASSWORD,
    CONFIRM_PASSWORD,
    FIRST_NAME,
    LAST_NAME,
    Field::new("image", Kind::String).nullable().read_only(),
];

/// Django's unique-constraint message (`email`'s verbose name is "email address").
const EMAIL_TAKEN: &str = "user with this email address already exists.";

/// `OPTIONS users/register/`
pub(crate) static REGISTER_VIEW: View = View {
    name: "Register",
    description: "Creates an account, active at once.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(REGISTER_FIELDS),
    put: None,
};

/// `OPTIONS users/`
pub(crate) static LIST_VIEW: View = View {
    name: "User List",
    description: "Every user (staff only).",
    allow: "GET, HEAD, OPTIONS",
    access: Access::Staff,
    post: None,
    put: None,
};

/// `OPTIONS users/{id}/`
pub(crate) static DETAIL_VIEW: View = View {
    name: "User Instance",
    description: "One user (staff only).",
    allow: "GET, HEAD, OPTIONS",
    access: Access::Staff,
    post: None,
    put: None,
};

/// `POST users/register/ {email, password, confirm_password}` → 201.
pub(crate) async fn register(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let data = body.parse()?;
    let mut form = Form::new(&data, false);
    let email = form.string(&EMAIL);
    let password = form.string(&PASSWORD);
    let confirm = form.string(&CONFIRM_PASSWORD);
    let first_name = form.string(&FIRST_NAME).unwrap_or_default();
    let last_name = form.string(&LAST_NAME).unwrap_or_default();
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
            form.error("email", EMAIL_TAKEN);
        }
    }
    form.finish()?;
    let (Some(email), Some(password), Some(confirm)) = (email, password, confirm) else {
        return Err(ApiError::BadRequest("Invalid data.".into()));
    };
    if password != confirm {
        return Err(ApiError::field(
            "non_field_errors",
            "Passwords didn't match.",
        ));
    }
    // Hash before taking the write lock: hashing is the slow part.
    let hash = state.passwords.hash(password).await?;
    let mut tx = state.db.begin_write().await?;
    if users::email_taken(&mut tx, &email).await? {
        return Err(ApiError::field("email", EMAIL_TAKEN));
    }
    let id = users::insert(&mut tx, &email, &hash, &first_name, &last_name).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "email": email, "image": null })),
    ))
}

/// `GET users/` (staff only), paginated.
pub(crate) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    query: QueryParams,
    origin: Origin,
) -> Result<Json<Paginated<UserRow>>, ApiError> {
    user.require_staff()?;
    let params = PageParams::from_query(&query)?;
    let page = params.resolve(users::count(&state.db).await?)?;
    let rows = users::page(&state.db, page.limit(), page.offset()).await?;
    Ok(Json(page.wrap(&origin, rows)))
}

/// `GET users/{id}/` (staff only).
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    user: AuthUser,
    IdParam(id): IdParam,
) -> Result<Json<UserRow>, ApiError> {
    user.require_staff()?;
    users::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}
