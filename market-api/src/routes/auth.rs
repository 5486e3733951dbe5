//! `auth/token/`, `auth/token/refresh/`, `auth/token/verify/`: simplejwt's
//! obtain/refresh/verify views.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{TokenError, TokenType};
use crate::db::users;
use crate::error::ApiError;
use crate::routes::metadata::{Access, Field, Kind, View};
use crate::state::AppState;
use crate::validation::{Form, JsonBody};

/// `TokenObtainPairSerializer`'s fields.
pub const OBTAIN_FIELDS: &[Field] = &[
    Field::new("email", Kind::String).required(),
    Field::new("password", Kind::String).required(),
];

/// `TokenRefreshSerializer`'s fields.
pub const REFRESH_FIELDS: &[Field] = &[
    Field::new("refresh", Kind::String).required(),
    Field::new("access", Kind::String).read_only(),
];

/// `TokenVerifySerializer`'s fields.
pub const VERIFY_FIELDS: &[Field] = &[Field::new("token", Kind::String).required()];

/// `OPTIONS auth/token/` (names and descriptions are simplejwt's views').
pub static OBTAIN_VIEW: View = View {
    name: "Token Obtain Pair",
    description: "Takes a set of user credentials and returns an access and refresh JSON web\n\
                  token pair to prove the authentication of those credentials.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(OBTAIN_FIELDS),
    put: None,
};

/// `OPTIONS auth/token/refresh/`
pub static REFRESH_VIEW: View = View {
    name: "Token Refresh",
    description: "Takes a refresh type JSON web token and returns an access type JSON web\n\
                  token if the refresh token is valid.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(REFRESH_FIELDS),
    put: None,
};

/// `OPTIONS auth/token/verify/`
pub static VERIFY_VIEW: View = View {
    name: "Token Verify",
    description: "Takes a token and indicates if it is valid.  This view provides no\n\
                  information about a token's fitness for a particular use.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(VERIFY_FIELDS),
    put: None,
};

/// `POST auth/token/ {email, password}` → `{refresh, access}`.
pub async fn obtain(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let data = body.parse()?;
    let mut form = Form::new(&data, false);
    let email = form.string("email", true, false, 254);
    // Passwords are not trimmed: take the raw string when it is one.
    let password = form.string("password", true, false, 4096).and_then(|_| {
        data.get("password")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    form.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::field("password", "Not a valid string."));
    };
    let account = users::credentials(&state.db, &email).await?;
    let (hash, user) = match account {
        Some(acc) => (Some(acc.password), Some((acc.id, acc.is_active))),
        None => (None, None),
    };
    let ok = state.passwords.verify(password, hash).await?;
    match user {
        Some((id, true)) if ok => Ok(Json(json!({
            "refresh": state.jwt.issue(id, TokenType::Refresh),
            "access": state.jwt.issue(id, TokenType::Access),
        }))),
        _ => Err(ApiError::NoActiveAccount),
    }
}

fn token_field(body: &JsonBody, name: &str) -> Result<String, ApiError> {
    let data = body.parse()?;
    let mut form = Form::new(&data, false);
    let token = form.string(name, true, false, 8192);
    form.finish()?;
    token.ok_or(ApiError::TokenNotValid(TokenError::Invalid))
}

/// `POST auth/token/refresh/ {refresh}` → `{access}`.
pub async fn refresh(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let token = token_field(&body, "refresh")?;
    let claims = state
        .jwt
        .decode_as(&token, TokenType::Refresh)
        .map_err(ApiError::TokenNotValid)?;
    Ok(Json(
        json!({ "access": state.jwt.issue(claims.user_id, TokenType::Access) }),
    ))
}

/// `POST auth/token/verify/ {token}` → `{}` for any valid token.
pub async fn verify(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let token = token_field(&body, "token")?;
    state.jwt.decode(&token).map_err(ApiError::TokenNotValid)?;
    Ok(Json(json!({})))
}
