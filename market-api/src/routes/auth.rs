//! `auth/token/`, `auth/token/refresh/`, `auth/token/verify/`: simplejwt's
//! obtain/refresh/verify views.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{TokenError, TokenType};
use crate::db::users;
use crate::error::ApiError;
use crate::fields::{Field, Kind};
use crate::routes::metadata::{Access, View};
use crate::state::AppState;
use crate::validation::{Form, JsonBody};

// simplejwt's serializers state no lengths: these fields get the crate-wide
// `UNBOUNDED_TEXT_CAP` (see `fields`).
const EMAIL: Field = Field::new("email", Kind::String).required();
const PASSWORD: Field = Field::new("password", Kind::String).required();
const REFRESH: Field = Field::new("refresh", Kind::String).required();
const TOKEN: Field = Field::new("token", Kind::String).required();

/// `TokenObtainPairSerializer`'s fields.
pub(crate) const OBTAIN_FIELDS: &[Field] = &[EMAIL, PASSWORD];

/// `TokenRefreshSerializer`'s fields.
pub(crate) const REFRESH_FIELDS: &[Field] =
    &[REFRESH, Field::new("access", Kind::String).read_only()];

/// `TokenVerifySerializer`'s fields.
pub(crate) const VERIFY_FIELDS: &[Field] = &[TOKEN];

/// `OPTIONS auth/token/` (names and descriptions are simplejwt's views').
pub(crate) static OBTAIN_VIEW: View = View {
    name: "Token Obtain Pair",
    description: "Takes a set of user credentials and returns an access and refresh JSON web\n\
                  token pair to prove the authentication of those credentials.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(OBTAIN_FIELDS),
    put: None,
};

/// `OPTIONS auth/token/refresh/`
pub(crate) static REFRESH_VIEW: View = View {
    name: "Token Refresh",
    description: "Takes a refresh type JSON web token and returns an access type JSON web\n\
                  token if the refresh token is valid.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(REFRESH_FIELDS),
    put: None,
};

/// `OPTIONS auth/token/verify/`
pub(crate) static VERIFY_VIEW: View = View {
    name: "Token Verify",
    description: "Takes a token and indicates if it is valid.  This view provides no\n\
                  information about a token's fitness for a particular use.",
    allow: "POST, OPTIONS",
    access: Access::Anyone,
    post: Some(VERIFY_FIELDS),
    put: None,
};

/// `POST auth/token/ {email, password}` → `{refresh, access}`.
pub(crate) async fn obtain(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let data = body.parse()?;
    let mut form = Form::new(&data, false);
    let email = form.string(&EMAIL);
    // Passwords are not trimmed: take the raw string when it is one.
    let password = form.string(&PASSWORD).and_then(|_| {
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

fn token_field(body: &JsonBody, field: &Field) -> Result<String, ApiError> {
    let data = body.parse()?;
    let mut form = Form::new(&data, false);
    let token = form.string(field);
    form.finish()?;
    token.ok_or(ApiError::TokenNotValid(TokenError::Invalid))
}

/// `POST auth/token/refresh/ {refresh}` → `{access}`. A user deactivated
/// since the refresh token was issued gets none, as simplejwt (5.3 and
/// later) answers: 401 `no_active_account`. A deleted user is let through
/// here, as there, and refused wherever the access token is used.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let token = token_field(&body, &REFRESH)?;
    let claims = state
        .jwt
        .decode_as(&token, TokenType::Refresh)
        .map_err(ApiError::TokenNotValid)?;
    let (_, active) = state.generations.current(&state.db, claims.user_id).await?;
    if active == Some(false) {
        return Err(ApiError::NoActiveAccount);
    }
    Ok(Json(
        json!({ "access": state.jwt.issue(claims.user_id, TokenType::Access) }),
    ))
}

/// `POST auth/token/verify/ {token}` → `{}` for any valid token.
pub(crate) async fn verify(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let token = token_field(&body, &TOKEN)?;
    state.jwt.decode(&token).map_err(ApiError::TokenNotValid)?;
    Ok(Json(json!({})))
}
