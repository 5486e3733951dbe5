//! Authentication: simplejwt-compatible HS256 tokens ([`jwt`]), argon2id
//! password hashing off the async workers ([`password`]), and the extractors
//! handlers use to require or accept a logged-in user ([`extractor`]).

pub mod extractor;
pub mod jwt;
pub mod password;

pub use extractor::{AuthUser, MaybeAuthUser};
pub use jwt::{Claims, Jwt, TokenError, TokenType};
pub use password::Passwords;
