//! The change counter and the viewer's login state for a read, without a
//! query while nothing has committed. Every cached read asks two things of
//! the database first: the change counter (which rendered JSON is current,
//! see [`crate::render_cache`]) and whether the viewer is still an active
//! user. On SQLite both answers stay true as long as the WAL-index header
//! has not moved ([`Db::commit_stamp`]): any commit, from any process,
//! moves it, including a deactivation. So a read-only stretch costs one
//! `pread` per request instead of a query; after a commit the first request
//! of each user asks the database again. PostgreSQL has no such header here
//! and asks every time (one single-row query, as the list always did).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::db::wal_stamp::Stamp;
use crate::db::{products, Db};

/// Users whose login state is remembered per stamp; past it the map starts
/// over (an extra query each, never a wrong answer).
const MAX_USERS: usize = 1 << 16;

/// What the database said while the header read `stamp`.
#[derive(Default)]
struct Known {
    stamp: Option<Stamp>,
    generation: i64,
    /// `is_active` per user id (`None`: no such user).
    users: HashMap<i64, Option<bool>>,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Generations {
    known: RwLock<Known>,
}

impl std::fmt::Debug for Generations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generations").finish_non_exhaustive()
    }
}

impl Generations {
    /// The change counter and whether `viewer` is active (`None`: no such
    /// user), as of now.
    ///
    /// The stamp is read before the database is asked, so an answer filed
    /// under a stamp is never older than that stamp: a commit in between
    /// leaves a newer answer under an older stamp, which the next request
    /// (reading the newer stamp) does not use.
    pub(crate) async fn current(
        &self,
        db: &Db,
        viewer: i64,
    ) -> Result<(i64, Option<bool>), sqlx::Error> {
        let stamp = db.commit_stamp();
        if let Some(stamp) = stamp {
            if let Some(known) = self.lookup(&stamp, viewer) {
                return Ok(known);
            }
        }
        let (generation, active) = products::generation(db, viewer).await?;
        if let Some(stamp) = stamp {
            self.remember(stamp, generation, viewer, active);
        }
        Ok((generation, active))
    }

    fn lookup(&self, stamp: &Stamp, viewer: i64) -> Option<(i64, Option<bool>)> {
        let known = self.known.read().ok()?;
        if known.stamp.as_ref() != Some(stamp) {
            return None;
        }
        Some((known.generation, *known.users.get(&viewer)?))
    }

    fn remember(&self, stamp: Stamp, generation: i64, viewer: i64, active: Option<bool>) {
        let Ok(mut known) = self.known.write() else {
            return;
        };
        if known.stamp != Some(stamp) {
            known.stamp = Some(stamp);
            known.generation = generation;
            known.users.clear();
        }
        if known.users.len() >= MAX_USERS {
            known.users.clear();
        }
        known.users.insert(viewer, active);
    }
}
