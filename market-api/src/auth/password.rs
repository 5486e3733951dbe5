//! Password hashing with argon2id on a small dedicated thread pool (one
//! thread per core), so a login storm queues here instead of stalling the
//! async workers that serve reads. Dedicated threads, not `spawn_blocking`:
//! each hash allocates 19 MiB, and glibc keeps a freed block in the arena
//! of the thread that used it, so hashing on hundreds of blocking threads
//! left hundreds of megabytes resident; on a fixed pool it stays bounded.

use std::sync::{mpsc, Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{oneshot, OnceCell};

use crate::config::PasswordCost;
use crate::error::ApiError;

/// Hashes and verifies passwords (cheap to clone).
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// Queue of the hashing threads (one per core); they exit when the last
    /// clone of this sender is dropped.
    jobs: mpsc::Sender<Job>,
    /// Hash checked when the e-mail is unknown, so that a login for a missing
    /// user costs as much as one for a real user (no user enumeration by timing).
    dummy: Arc<OnceCell<String>>,
}

type Job = Box<dyn FnOnce() + Send>;

fn start_pool(threads: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || loop {
                // The lock is held only while waiting for the next job; a hash
                // takes tens of milliseconds, so the queue is never contended.
                let job = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    tx
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
            jobs: start_pool(cores),
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
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::Internal("password threads gone".into()))?;
        rx.await
            .map_err(|_| ApiError::Internal("password job dropped".into()))?
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
