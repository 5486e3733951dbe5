//! Errors: [`Error`] at the crate boundary (start-up, CLI), and [`ApiError`],
//! which every handler returns and which maps each failure to the status and
//! Django REST Framework-style JSON body the original API answered with.
//! Internal details (SQL errors, join errors) are logged, never sent.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::TokenError;

/// Failures of [`crate::run`] / [`crate::serve`].
///
/// Each message already ends with its cause's text, so no variant reports
/// that cause again as its `source()`: a caller printing the whole chain
/// (`anyhow`'s `{:#}`) and one printing only `Display` (the lab) both show
/// it once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database url {url:?}: {error}")]
    DatabaseUrl { url: String, error: sqlx::Error },
    #[error("unsupported database url {url:?}: expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    DatabaseScheme { url: String },
    #[error("{0}")]
    Postgres(PgStartError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    #[error("password hashing failed: {0}")]
    Password(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// The PostgreSQL server a URL names, for messages (never the password).
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

/// Why PostgreSQL could not be reached at start, as far as it tells what to
/// check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgFault {
    /// Refused, reset, timed out, or the server is starting or stopping:
    /// worth retrying until the start-up timeout.
    Unreachable,
    /// Wrong user name or password (SQLSTATE 28000, 28P01).
    Credentials,
    /// The database does not exist (3D000).
    NoDatabase,
    /// Anything else the server answered.
    Other,
}

impl PgFault {
    pub fn classify(error: &sqlx::Error) -> PgFault {
        match error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => PgFault::Unreachable,
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("28000" | "28P01") => PgFault::Credentials,
                Some("3D000") => PgFault::NoDatabase,
                Some(code) if is_connection_lost_code(code) => PgFault::Unreachable,
                _ => PgFault::Other,
            },
            _ => PgFault::Other,
        }
    }

    pub fn is_transient(self) -> bool {
        self == PgFault::Unreachable
    }
}

/// A failed connection to PostgreSQL at start: one line naming the server
/// and user (never the password) and what to check.
#[derive(Debug, Clone)]
pub struct PgStartError {
    pub target: PgTarget,
    pub fault: PgFault,
    /// How long start-up had been trying.
    pub waited: std::time::Duration,
    /// The driver's message, password cut out.
    pub cause: String,
}

impl std::fmt::Display for PgStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let PgTarget {
            user,
            host,
            port,
            database,
        } = &self.target;
        let cause = &self.cause;
        match self.fault {
            PgFault::Unreachable => write!(
                f,
                "cannot reach PostgreSQL at {host}:{port} (tried for {:.1} s): {cause}; check \
                 that the server is running and accepts TCP connections on {host}:{port} \
                 (listen_addresses, port, firewall), or allow longer with --startup-timeout",
                self.waited.as_secs_f64()
            ),
            PgFault::Credentials => write!(
                f,
                "PostgreSQL at {host}:{port} refused user \"{user}\": {cause}; check the user \
                 name and password in --database-url and the server's pg_hba.conf"
            ),
            PgFault::NoDatabase => write!(
                f,
                "PostgreSQL at {host}:{port} has no database \"{database}\" (user \"{user}\"): \
                 create it (createdb {database}) or fix --database-url"
            ),
            PgFault::Other => write!(
                f,
                "cannot connect to PostgreSQL at {host}:{port} as user \"{user}\": {cause}"
            ),
        }
    }
}

/// SQLSTATEs that mean the connection or the server went away rather than
/// that the statement was wrong: class 08 (connection exception), 57P01
/// (admin shutdown), 57P02 (crash shutdown), 57P03 (cannot connect now).
pub fn is_connection_lost_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// Whether `e` means the database is unreachable for now (a PostgreSQL
/// server restarting, refused, reset; a pool that cannot hand out a
/// connection) rather than that a statement failed: such a request is
/// answered 503 with `Retry-After`, never 500.
pub fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_connection_lost_code(&c)),
        _ => false,
    }
}

/// Per-field validation messages, serialized as `{"field": ["message", …]}`.
pub(crate) type FieldErrors = BTreeMap<String, Vec<String>>;

/// A failed request, as the client sees it.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400 with per-field messages (or `non_field_errors`).
    Validation(FieldErrors),
    /// 400 `{"detail": "JSON parse error - …"}`.
    JsonParse(String),
    /// 400 with a plain detail message.
    BadRequest(String),
    /// 401: no credentials on a protected endpoint.
    NotAuthenticated,
    /// 401: an `Authorization` header that is not `Bearer <token>`.
    BadAuthorizationHeader,
    /// 401: a bearer token that is not a valid access token (simplejwt's
    /// `JWTAuthentication`: the reason goes in `messages`).
    InvalidAccessToken(TokenError),
    /// 401: refresh/verify given a bad token (simplejwt's token views: the
    /// reason is the `detail`).
    TokenNotValid(TokenError),
    /// 401: the token's user no longer exists.
    UserNotFound,
    /// 401: the token's user has been deactivated.
    UserInactive,
    /// 401: wrong e-mail/password at login.
    NoActiveAccount,
    /// 403
    PermissionDenied,
    /// 404 `Not found.`
    NotFound,
    /// 404 `Invalid page.`
    InvalidPage,
    /// 405 with the `Allow` header.
    MethodNotAllowed {
        method: String,
        allow: Option<HeaderValue>,
    },
    /// 413
    PayloadTooLarge,
    /// 415
    UnsupportedMediaType(String),
    /// 503 (an injected fault).
    Unavailable(&'static str),
    /// 503 with `Retry-After`: the database cannot be reached for now (a
    /// PostgreSQL restart, an exhausted pool). No write was acknowledged.
    DatabaseUnavailable,
    /// 503 with `Retry-After`: another process held SQLite's write lock for
    /// longer than the busy timeout. The request changed nothing.
    Busy,
    /// 500; the cause is logged, not sent.
    Internal(String),
}

impl ApiError {
    /// One message for one field.
    pub(crate) fn field(name: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(name.to_owned(), vec![message.into()]);
        ApiError::Validation(errors)
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::JsonParse(_) | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NotAuthenticated
            | ApiError::BadAuthorizationHeader
            | ApiError::InvalidAccessToken(_)
            | ApiError::TokenNotValid(_)
            | ApiError::UserNotFound
            | ApiError::UserInactive
            | ApiError::NoActiveAccount => StatusCode::UNAUTHORIZED,
            ApiError::PermissionDenied => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::InvalidPage => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable | ApiError::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            _ if is_connection_lost(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::DatabaseUnavailable
            }
            _ if is_busy(&e) => {
                tracing::warn!(error = %e, "database busy past the busy timeout");
                ApiError::Busy
            }
            _ => {
                tracing::error!(error = %e, "database error");
                ApiError::Internal(e.to_string())
            }
        }
    }
}

/// Whether `e` is SQLite's `SQLITE_BUSY` or `SQLITE_LOCKED` (any extended
/// code): another connection kept the lock past the busy timeout; or
/// PostgreSQL ending a transaction that lost a lock race (deadlock detected,
/// serialization failure, lock not available), which a retry can pass: e.g.
/// a comment PATCH moving it to a product while that product is deleted
/// takes the two rows' locks in the other order.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    const PG_LOST_RACE: [&str; 3] = ["40P01", "40001", "55P03"];
    let code = match e {
        sqlx::Error::Database(db) => db.code(),
        _ => None,
    };
    if code.as_deref().is_some_and(|c| PG_LOST_RACE.contains(&c)) {
        return true;
    }
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Validation(errors) => json!(errors),
            ApiError::JsonParse(msg) => json!({ "detail": format!("JSON parse error - {msg}") }),
            ApiError::BadRequest(msg) => json!({ "detail": msg }),
            ApiError::NotAuthenticated => {
                json!({ "detail": "Authentication credentials were not provided." })
            }
            ApiError::BadAuthorizationHeader => json!({
                "detail": "Authorization header must contain two space-delimited values",
                "code": "bad_authorization_header",
            }),
            ApiError::InvalidAccessToken(reason) => json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
                "messages": [{
                    "token_class": "AccessToken",
                    "token_type": "access",
                    "message": reason.message(),
                }],
            }),
            ApiError::TokenNotValid(reason) => {
                json!({ "detail": reason.message(), "code": "token_not_valid" })
            }
            ApiError::UserNotFound => {
                json!({ "detail": "User not found", "code": "user_not_found" })
            }
            ApiError::UserInactive => {
                json!({ "detail": "User is inactive", "code": "user_inactive" })
            }
            ApiError::NoActiveAccount => {
                json!({ "detail": "No active account found with the given credentials" })
            }
            ApiError::PermissionDenied => {
                json!({ "detail": "You do not have permission to perform this action." })
            }
            ApiError::NotFound => json!({ "detail": "Not found." }),
            ApiError::InvalidPage => json!({ "detail": "Invalid page." }),
            ApiError::MethodNotAllowed { method, .. } => {
                json!({ "detail": format!("Method \"{method}\" not allowed.") })
            }
            ApiError::PayloadTooLarge => json!({ "detail": "Request body too large." }),
            ApiError::UnsupportedMediaType(ct) => {
                json!({ "detail": format!("Unsupported media type \"{ct}\" in request.") })
            }
            ApiError::Unavailable(msg) => json!({ "detail": msg }),
            ApiError::DatabaseUnavailable => {
                json!({ "detail": "Database unavailable, try again later." })
            }
            ApiError::Busy => json!({ "detail": "Database busy, try again later." }),
            ApiError::Internal(cause) => {
                // Its cause was logged where it arose; this ties it to the 500.
                tracing::debug!(%cause, "answering 500");
                json!({ "detail": "A server error occurred." })
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            );
        }
        if matches!(self, ApiError::Busy | ApiError::DatabaseUnavailable) {
            // The lock holder is another request, which takes milliseconds
            // unless something is wrong, and a restarting PostgreSQL is back
            // within seconds: one second is a polite retry.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::MethodNotAllowed {
            allow: Some(allow), ..
        } = self
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}
