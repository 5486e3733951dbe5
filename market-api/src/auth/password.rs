//! Password hashing with argon2id, always on the blocking pool and bounded by
//! a semaphore (one hash per core), so a login storm queues here instead of
//! stalling the async workers that serve reads.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::config::PasswordCost;
use crate::error::ApiError;

/// Hashes and verifies passwords (cheap to clone).
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// Limits concurrent hashes to the number of cores (each takes ~19 MiB).
    permits: Arc<Semaphore>,
    /// Hash checked when the e-mail is unknown, so that a login for a missing
    /// user costs as much as one for a real user (no user enumeration by timing).
    dummy: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(cost: PasswordCost) -> Self {
        let params = match cost {
            PasswordCost::Default => Params::default(),
            // 64 KiB, one pass: only for tests and throw-away seeds.
            PasswordCost::Fast => Params::new(64, 1, 1, None).unwrap_or_default(),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// The PHC string for `password` (random salt).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let argon = self.argon.clone();
        self.blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ApiError::Internal(format!("argon2 hash: {e}")))
        })
        .await
    }

    /// Whether `password` matches `hash`; with `hash == None` (unknown user)
    /// a dummy hash is checked and `false` returned.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => {
                let dummy = self
                    .dummy
                    .get_or_try_init(|| self.hash("dummy-password-!1".to_owned()))
                    .await?;
                (dummy.clone(), false)
            }
        };
        let argon = self.argon.clone();
        let ok = self
            .blocking(move || {
                Ok(PasswordHash::new(&hash)
                    .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
                    .unwrap_or(false))
            })
            .await?;
        Ok(ok && real)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("password semaphore closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(format!("password task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new(PasswordCost::Fast);
        let h = p.hash("Passw0rd!".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("Passw0rd!".into(), Some(h.clone())).await.unwrap());
        assert!(!p.verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!p.verify("Passw0rd!".into(), None).await.unwrap());
        assert!(!p
            .verify("x".into(), Some("not a phc string".into()))
            .await
            .unwrap());
    }
}
