//! Extractors that authenticate a request from its `Authorization: Bearer`
//! header, with simplejwt's `JWTAuthentication` behaviour: a header of
//! another scheme counts as "no credentials"; a malformed `Bearer` header or
//! a bad token is a 401 even where anonymous access is allowed; and a valid
//! token of a user who is gone or inactive is a 401 (`user_not_found`,
//! `user_inactive`) on every request, reads included.
//!
//! [`AuthUser`] looks the user up (one indexed query on the read pool).
//! [`TokenUser`] only checks the token: the two hottest reads (product list
//! and retrieve) take it and fold the look-up into their own query, then
//! call [`admit`] with the answer, so a read still costs one query.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::db::WriteTx;

use crate::auth::TokenError;
use crate::db::users;
use crate::error::ApiError;
use crate::state::AppState;

/// A valid access token; the user is not checked yet (see [`admit`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenUser {
    pub(crate) user_id: i64,
}

/// A valid access token of an existing, active user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthUser {
    pub(crate) user_id: i64,
    pub(crate) is_staff: bool,
}

/// simplejwt's verdict on a token's user, given `is_active` as stored
/// (`None`: no such user).
pub(crate) fn admit(is_active: Option<bool>) -> Result<(), ApiError> {
    match is_active {
        None => Err(ApiError::UserNotFound),
        Some(false) => Err(ApiError::UserInactive),
        Some(true) => Ok(()),
    }
}

impl AuthUser {
    /// Checks the user again inside the write transaction about to change
    /// something, so a deactivation that landed after the request was
    /// authenticated still stops it (and a row never references a user
    /// deleted in between).
    pub(crate) async fn require_active(self, tx: &mut WriteTx) -> Result<(), ApiError> {
        admit(users::status(tx.conn(), self.user_id).await?.map(|s| s.0))
    }

    /// DRF's `IsAdminUser`: 403 unless staff.
    pub(crate) fn require_staff(self) -> Result<(), ApiError> {
        if self.is_staff {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied)
        }
    }
}

/// A request that may be anonymous; a *bad* token is still a 401.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaybeAuthUser(pub(crate) Option<AuthUser>);

fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<TokenUser>, ApiError> {
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
        .map(|user_id| Some(TokenUser { user_id }))
        .map_err(ApiError::InvalidAccessToken)
}

/// The stored state of the token's user, as an [`AuthUser`] or a 401.
async fn load(state: &AppState, token: TokenUser) -> Result<AuthUser, ApiError> {
    let status = users::status(state.db.reader(), token.user_id).await?;
    admit(status.map(|s| s.0))?;
    Ok(AuthUser {
        user_id: token.user_id,
        is_staff: status.is_some_and(|s| s.1),
    })
}

impl FromRequestParts<AppState> for TokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)?.ok_or(ApiError::NotAuthenticated)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = authenticate(parts, state)?.ok_or(ApiError::NotAuthenticated)?;
        load(state, token).await
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Some(token) => Ok(MaybeAuthUser(Some(load(state, token).await?))),
            None => Ok(MaybeAuthUser(None)),
        }
    }
}
