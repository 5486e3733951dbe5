//! JSON Web Tokens with djangorestframework-simplejwt's conventions: HS256,
//! claims `token_type` ("access"/"refresh"), `exp`, `iat`, `jti` (uuid hex)
//! and `user_id`. Only HS256 is accepted, so `alg: none` and any other
//! algorithm are refused before the signature is even looked at.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Which kind of token a claim set describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// Why a token was refused, with simplejwt's message for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Bad signature, algorithm, shape or expiry.
    Invalid,
    /// A valid token of the other type (an access token given to refresh,
    /// a refresh token sent as `Bearer`).
    WrongType,
}

impl TokenError {
    /// simplejwt's `TokenError` text.
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Invalid => "Token is invalid or expired",
            TokenError::WrongType => "Token has wrong type",
        }
    }
}

/// The claims carried by every token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: i64,
}

/// Distinguishes [`Jwt`] instances (several servers can share a process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Access tokens already verified on this thread, keyed by the full token
/// text (signature included, so only byte-identical tokens hit).
struct Verified {
    keys: u64,
    user_id: i64,
    exp: i64,
}

/// Entries kept per thread before the cache is emptied.
const CACHE_CAPACITY: usize = 4096;

thread_local! {
    // Thread-local, not shared: the hot path takes no lock at all. A load test
    // reuses each user's token for hours, so a hit saves base64, JSON and HMAC
    // work on every request.
    static VERIFIED: RefCell<HashMap<Box<str>, Verified>> = RefCell::new(HashMap::new());
}

/// Signs and checks tokens with one shared secret.
#[derive(Clone)]
pub struct Jwt {
    /// Identity of this key set in the per-thread verification cache.
    id: u64,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    header: Header,
    /// Lifetime of access tokens (simplejwt default here: 7 hours).
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (1 day).
    pub refresh_ttl: Duration,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp"]);
        Jwt {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            header: Header::new(Algorithm::HS256),
            access_ttl,
            refresh_ttl,
        }
    }

    /// A new signed token of the given type for `user_id`.
    pub fn issue(&self, user_id: i64, token_type: TokenType) -> String {
        let now = chrono::Utc::now().timestamp();
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            token_type,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2)),
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
        };
        // Encoding an owned struct with an HMAC key cannot fail.
        jsonwebtoken::encode(&self.header, &claims, &self.encoding).unwrap_or_default()
    }

    /// Checks signature, algorithm and expiry.
    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }

    /// Like [`Jwt::decode`], but only accepts the given token type. The type
    /// is checked last, as simplejwt does, so an expired token of the other
    /// type is `Invalid`, not `WrongType`.
    pub fn decode_as(&self, token: &str, token_type: TokenType) -> Result<Claims, TokenError> {
        let claims = self.decode(token)?;
        if claims.token_type == token_type {
            Ok(claims)
        } else {
            Err(TokenError::WrongType)
        }
    }

    /// The user of a valid *access* token. Same checks as
    /// `decode_as(token, Access)`; verified tokens are remembered per thread
    /// until they expire, so repeated requests skip the signature check.
    pub fn access_user(&self, token: &str) -> Result<i64, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let hit = VERIFIED.with_borrow(|cache| {
            cache
                .get(token)
                .filter(|v| v.keys == self.id && v.exp >= now)
                .map(|v| v.user_id)
        });
        if let Some(user_id) = hit {
            return Ok(user_id);
        }
        let claims = self.decode_as(token, TokenType::Access)?;
        VERIFIED.with_borrow_mut(|cache| {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(
                token.into(),
                Verified {
                    keys: self.id,
                    user_id: claims.user_id,
                    exp: claims.exp,
                },
            );
        });
        Ok(claims.user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::new(
            b"test-secret",
            Duration::from_secs(60),
            Duration::from_secs(120),
        )
    }

    #[test]
    fn round_trip_and_types() {
        let jwt = jwt();
        let access = jwt.issue(7, TokenType::Access);
        let claims = jwt.decode_as(&access, TokenType::Access).expect("valid");
        assert_eq!(claims.user_id, 7);
        assert_eq!(claims.jti.len(), 32);
        assert_eq!(claims.exp - claims.iat, 60);
        assert_eq!(
            jwt.decode_as(&access, TokenType::Refresh).unwrap_err(),
            TokenError::WrongType
        );
        let refresh = jwt.issue(7, TokenType::Refresh);
        assert_eq!(
            jwt.decode_as(&refresh, TokenType::Access).unwrap_err(),
            TokenError::WrongType
        );
        // Expired beats wrong type, as in simplejwt.
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            token_type: TokenType::Access,
            exp: now - 10,
            iat: now - 70,
            jti: "0".repeat(32),
            user_id: 7,
        };
        let expired = jsonwebtoken::encode(
            &jwt.header,
            &claims,
            &EncodingKey::from_secret(b"test-secret"),
        )
        .unwrap();
        assert_eq!(
            jwt.decode_as(&expired, TokenType::Refresh).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn access_cache_is_per_key_and_type() {
        let jwt = jwt();
        let access = jwt.issue(9, TokenType::Access);
        assert_eq!(jwt.access_user(&access), Ok(9));
        assert_eq!(jwt.access_user(&access), Ok(9), "cached");
        // Another key set in the same thread does not reuse the entry.
        let other = Jwt::new(b"other", Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(other.access_user(&access), Err(TokenError::Invalid));
        assert_eq!(
            jwt.access_user(&jwt.issue(9, TokenType::Refresh)),
            Err(TokenError::WrongType)
        );
        let expired = Jwt::new(b"test-secret", Duration::ZERO, Duration::ZERO);
        let token = expired.issue(1, TokenType::Access);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expired.access_user(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn wrong_key_and_garbage_refused() {
        let token = jwt().issue(1, TokenType::Access);
        let other = Jwt::new(b"other", Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(other.decode(&token).unwrap_err(), TokenError::Invalid);
        assert_eq!(
            jwt().decode("not.a.token").unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(jwt().decode("").unwrap_err(), TokenError::Invalid);
    }
}
