//! Password hashing with argon2id on a small dedicated thread pool (one
//! thread per core), so a login storm queues here instead of stalling the
//! async workers that serve reads. A queued hash whose request has gone
//! (the client disconnected) is skipped.
//!
//! Each hashing thread owns one argon2 memory buffer (19 MiB at the default
//! cost) for its whole life. Allocating and freeing it per hash let glibc
//! raise its mmap threshold after the first free, so later buffers came from
//! the heap and stayed resident (~226 MB after a login storm); a kept buffer
//! bounds the hashing memory at one buffer per thread.

use std::sync::{mpsc, Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OnceCell};

use crate::config::PasswordCost;
use crate::error::ApiError;

/// Hashes and verifies passwords (cheap to clone).
#[derive(Clone)]
pub struct Passwords {
    /// Cost of new hashes (stored hashes carry their own).
    params: Params,
    /// Queue of the hashing threads (one per core); they exit when the last
    /// clone of this sender is dropped.
    jobs: mpsc::Sender<Job>,
    /// Hash checked when the e-mail is unknown, so that a login for a missing
    /// user costs as much as one for a real user (no user enumeration by timing).
    dummy: Arc<OnceCell<String>>,
}

/// The argon2 memory of one hashing thread, reused by every hash it runs.
struct Memory {
    blocks: Vec<Block>,
    /// Blocks kept between hashes: those of the configured cost. A stored
    /// hash of a higher cost gets a temporary buffer instead, so an odd row
    /// cannot pin more memory for good.
    keep: usize,
}

impl Memory {
    /// Hashes into `out` with this thread's buffer (or a temporary one).
    fn hash_into(
        &mut self,
        argon: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let needed = argon.params().block_count();
        if needed > self.keep {
            let mut temporary = vec![Block::default(); needed];
            return argon.hash_password_into_with_memory(password, salt, out, &mut temporary);
        }
        if self.blocks.len() < needed {
            // Once per thread: grown to the configured cost and kept.
            self.blocks.resize(self.keep, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut self.blocks[..needed])
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

fn start_pool(threads: usize, keep: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                // Allocated on the first hash, so an idle server holds none.
                let mut memory = Memory {
                    blocks: Vec::new(),
                    keep,
                };
                loop {
                    // The lock is held only while waiting for the next job; a
                    // hash takes tens of milliseconds, so it is never contended.
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut memory),
                        Err(_) => return,
                    }
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

/// The PHC string (argon2id, v19) of `password` under `params` with a new
/// random salt: the same string `PasswordHasher::hash_password` writes.
fn hash_phc(
    memory: &mut Memory,
    params: &Params,
    password: &[u8],
) -> argon2::password_hash::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        Ok(memory.hash_into(&argon, password, salt_bytes, out)?)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, recomputed with the
/// algorithm, version, cost and salt it names; `false` for any malformed or
/// non-argon2 string. The outputs are compared in constant time
/// (`password_hash::Output`'s `PartialEq`).
fn verify_phc(memory: &mut Memory, password: &[u8], phc: &str) -> bool {
    let mut check = || -> argon2::password_hash::Result<bool> {
        let parsed = PasswordHash::new(phc)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let argon = Argon2::new(algorithm, version, params);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let computed = Output::init_with(expected.len(), |out| {
            Ok(memory.hash_into(&argon, password, salt_bytes, out)?)
        })?;
        Ok(computed == expected)
    };
    check().unwrap_or(false)
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
            jobs: start_pool(cores, params.block_count()),
            params,
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// The PHC string for `password` (random salt).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.blocking(move |memory| {
            hash_phc(memory, &params, password.as_bytes())
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
        let ok = self
            .blocking(move |memory| Ok(verify_phc(memory, password.as_bytes(), &hash)))
            .await?;
        Ok(ok && real)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The request is gone (its client disconnected and the server
            // dropped its handler while this job queued): skip the hash.
            // Without this, logins abandoned in an overload are still hashed,
            // seconds of CPU nobody waits for, and the server stays
            // overloaded after the load has dropped.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(f(memory));
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

    /// A hash queued behind busy threads is skipped if its caller gave up
    /// meanwhile (as a login does when its client disconnects).
    #[tokio::test]
    async fn a_hash_whose_caller_left_is_skipped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Condvar;
        use std::time::Duration;

        let p = Passwords::new(PasswordCost::Fast);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let mut busy = Vec::new();
        for _ in 0..threads {
            let (p, gate) = (p.clone(), gate.clone());
            busy.push(tokio::spawn(async move {
                p.blocking(move |_| {
                    let (open, cv) = &*gate;
                    let mut open = open.lock().unwrap();
                    while !*open {
                        open = cv.wait(open).unwrap();
                    }
                    Ok(())
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let abandoned = p.blocking(move |_| {
            r.store(true, Ordering::SeqCst);
            Ok(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(50), abandoned)
                .await
                .is_err(),
            "every thread is busy"
        );
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        for b in busy {
            b.await.unwrap().unwrap();
        }
        for _ in 0..2 * threads {
            p.blocking(|_| Ok(())).await.unwrap();
        }
        assert!(!ran.load(Ordering::SeqCst), "the abandoned hash ran");
    }

    /// Hashes stay standard PHC strings: ours verify with the `argon2`
    /// crate's own verifier, and the crate's hashes (also of another cost,
    /// which takes the temporary-buffer path) verify with ours.
    #[tokio::test]
    async fn compatible_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = Passwords::new(PasswordCost::Fast);
        let ours = p.hash("Passw0rd!".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        let crate_argon = Argon2::default();
        assert!(crate_argon.verify_password(b"Passw0rd!", &parsed).is_ok());
        assert!(crate_argon.verify_password(b"wrong", &parsed).is_err());

        for params in [
            Params::new(64, 1, 1, None).unwrap(),
            Params::new(256, 2, 1, None).unwrap(),
        ] {
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"Passw0rd!", &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string();
            assert!(p
                .verify("Passw0rd!".into(), Some(theirs.clone()))
                .await
                .unwrap());
            assert!(!p
                .verify("Passw0rd?".into(), Some(theirs.clone()))
                .await
                .unwrap());
            // Tampered output: still a valid PHC string, no longer a match.
            let mut tampered = theirs.into_bytes();
            let last = tampered.len() - 2;
            tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert!(!p.verify("Passw0rd!".into(), Some(tampered)).await.unwrap());
        }
        // Argon2i strings are verified with their own algorithm too.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"Passw0rd!", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(p.verify("Passw0rd!".into(), Some(argon2i)).await.unwrap());
    }
}
