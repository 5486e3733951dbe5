//! Extractors that authenticate a request from its `Authorization: Bearer`
//! header, with simplejwt's behaviour: a header of another scheme counts as
//! "no credentials", a malformed `Bearer` header or a bad token is a 401 even
//! on endpoints that also allow anonymous access.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use sqlx::{Sqlite, Transaction};

use crate::auth::TokenError;
use crate::db::users;
use crate::error::ApiError;
use crate::state::AppState;

/// A request made with a valid access token. Rejects with 401 otherwise.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: i64,
}

impl AuthUser {
    /// A valid token may outlive its user: before a write, the user must
    /// still exist and be active (checked inside the write transaction).
    pub async fn require_active(
        self,
        tx: &mut Transaction<'static, Sqlite>,
    ) -> Result<(), ApiError> {
        users::active_staff_flag(&mut **tx, self.user_id)
            .await?
            .ok_or(ApiError::UserNotFound)?;
        Ok(())
    }
}

/// A request that may be anonymous; a *bad* token is still a 401.
#[derive(Debug, Clone, Copy)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<AuthUser>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Err(ApiError::InvalidAccessToken(TokenError::Invalid));
    };
    let mut words = value.split_ascii_whitespace();
    match words.next() {
        Some("Bearer") => {}
        // Another scheme (or an empty header): not ours, so anonymous.
        _ => return Ok(None),
    }
    let (Some(token), None) = (words.next(), words.next()) else {
        return Err(ApiError::BadAuthorizationHeader);
    };
    state
        .jwt
        .access_user(token)
        .map(|user_id| Some(AuthUser { user_id }))
        .map_err(ApiError::InvalidAccessToken)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)?.ok_or(ApiError::NotAuthenticated)
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).map(MaybeAuthUser)
    }
}
