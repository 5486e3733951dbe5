//! Authentication: simplejwt-compatible HS256 tokens ([`jwt`]), argon2id
//! password hashing off the async workers ([`password`]), and the extractors
//! handlers use to require or accept a logged-in user ([`extractor`]).

pub(crate) mod extractor;
pub(crate) mod jwt;
pub(crate) mod password;

pub(crate) use extractor::{admit, AuthUser, MaybeAuthUser, TokenUser};
pub(crate) use jwt::{Jwt, TokenError, TokenType};
pub(crate) use password::Passwords;
