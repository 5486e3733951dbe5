//! The change counter and the viewer's login state for a read, without a
//! query while nothing has committed. Every cached read asks two things of
//! the database first: the change counter (which rendered JSON is current,
//! see [`crate::render_cache`]) and whether the viewer is still an active
//! user. On SQLite both answers stay true as long as the WAL-index header
//! has not moved ([`Db::commit_stamp`]): any commit, from any process,
//! moves it, including a deactivation. So a read-only stretch costs one
//! `pread` per request instead of a query; after a commit the first request
//! of each user asks the database again.
//!
//! PostgreSQL has no such header here, so every read asks. Whenever the
//! database is asked (on SQLite after a commit), the readers waiting at the
//! same moment share one query ([`Batches`]): while one
//! look-up is in flight, the readers that arrive join the next, which asks
//! for all their users at once when the first returns. Each reader's answer
//! comes from a query that started after the reader arrived, so it sees
//! every write acknowledged before (by any replica): the read-after-write
//! contract of a query per request, at a fraction of the round trips.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

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
    batches: Batches,
}

/// What one batched look-up answered: the change counter, and the active
/// flag of each user that exists among the batch's viewers (sorted).
struct Answer {
    generation: i64,
    users: Vec<(i64, bool)>,
}

/// One look-up shared by the readers that joined it. `answer` is set once
/// the query returned: `None` inside when it failed (each reader then asks
/// alone, so its error is its own); never set when the reader running it
/// was cancelled (the same).
#[derive(Default)]
struct Batch {
    answer: OnceLock<Option<Answer>>,
}

/// The batch readers are joining now, with their users.
#[derive(Default)]
struct Pending {
    batch: Arc<Batch>,
    viewers: Vec<i64>,
}

/// Readers of the change counter that must ask the database, batched: see
/// the module doc.
#[derive(Default)]
struct Batches {
    /// The batch not started yet; `None` once taken by the reader running it.
    next: Mutex<Option<Pending>>,
    /// Held while a batch's query runs: one look-up in flight at a time.
    turn: tokio::sync::Mutex<()>,
}

impl Batches {
    /// The change counter and `viewer`'s state, from a look-up that started
    /// after this call: its batch's, run (`look_up` with the batch's users,
    /// sorted) by the first of its readers to get the turn; the others find
    /// the answer when they get it. `None` when that look-up failed or its
    /// reader was cancelled: the caller then asks alone.
    async fn current<F, Fut>(&self, viewer: i64, look_up: F) -> Option<(i64, Option<bool>)>
    where
        F: FnOnce(Vec<i64>) -> Fut,
        Fut: Future<Output = Option<(i64, Vec<(i64, bool)>)>>,
    {
        let batch = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let pending = next.get_or_insert_with(Pending::default);
            pending.viewers.push(viewer);
            pending.batch.clone()
        };
        {
            let _turn = self.turn.lock().await;
            if batch.answer.get().is_none() {
                // Still pending, unless its reader was cancelled mid-query.
                let mine = {
                    let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                    let ours = next.as_ref().is_some_and(|p| Arc::ptr_eq(&p.batch, &batch));
                    ours.then(|| next.take()).flatten()
                };
                if let Some(Pending { batch, mut viewers }) = mine {
                    viewers.sort_unstable();
                    viewers.dedup();
                    let answer = look_up(viewers).await;
                    let answer = answer.map(|(generation, users)| Answer { generation, users });
                    let _ = batch.answer.set(answer);
                }
            }
        }
        let a = batch.answer.get()?.as_ref()?;
        let at = a.users.binary_search_by_key(&viewer, |u| u.0);
        Some((a.generation, at.ok().map(|i| a.users[i].1)))
    }
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
        let look_up =
            |users: Vec<i64>| async move { products::generation_for_many(db, &users).await.ok() };
        let (generation, active) = match self.batches.current(viewer, look_up).await {
            Some(answer) => answer,
            None => products::generation(db, viewer).await?,
        };
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::{oneshot, Notify};

    use super::*;

    /// A database stand-in whose look-ups read a commit counter when they
    /// start, so a test can order commits against look-ups in flight.
    #[derive(Default)]
    struct Clock {
        commits: AtomicI64,
        look_ups: AtomicUsize,
    }

    impl Clock {
        /// Every user of `users` active, at the commits counted now.
        fn answer(&self, users: &[i64]) -> (i64, Vec<(i64, bool)>) {
            self.look_ups.fetch_add(1, Ordering::SeqCst);
            let at = self.commits.load(Ordering::SeqCst);
            (at, users.iter().map(|&u| (u, u % 2 == 0)).collect())
        }
    }

    /// Waits until `n` readers are queued behind the look-up in flight.
    async fn until_waiting(b: &Batches, n: usize) {
        for _ in 0..1000 {
            let waiting = b
                .next
                .lock()
                .unwrap()
                .as_ref()
                .map_or(0, |p| p.viewers.len());
            if waiting == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{n} readers never queued");
    }

    #[tokio::test]
    async fn readers_arriving_during_a_look_up_share_the_next_and_see_what_committed_before() {
        let batches = Arc::new(Batches::default());
        let clock = Arc::new(Clock::default());
        // Reader 1's look-up starts, then holds until released.
        let (release, held) = oneshot::channel::<()>();
        let started = Arc::new(Notify::new());
        let first = tokio::spawn({
            let (b, c, started) = (batches.clone(), clock.clone(), started.clone());
            async move {
                let look_up = |users: Vec<i64>| async move {
                    let answer = c.answer(&users);
                    started.notify_one();
                    held.await.unwrap();
                    Some(answer)
                };
                b.current(2, look_up).await
            }
        });
        started.notified().await;
        // A write commits (and is acknowledged) while that look-up runs;
        // then readers 3, 4 and 4 again arrive.
        clock.commits.fetch_add(1, Ordering::SeqCst);
        let later: Vec<_> = [3, 4, 4]
            .into_iter()
            .map(|viewer| {
                let (b, c) = (batches.clone(), clock.clone());
                tokio::spawn(async move {
                    let look_up = |users: Vec<i64>| async move {
                        assert_eq!(users, [3, 4], "one look-up for the waiting readers' users");
                        Some(c.answer(&users))
                    };
                    b.current(viewer, look_up).await
                })
            })
            .collect();
        until_waiting(&batches, 3).await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Some((0, Some(true))));
        let mut answers = Vec::new();
        for reader in later {
            answers.push(reader.await.unwrap());
        }
        // Each sees the commit that preceded it, with its own user's state
        // (3 inactive, 4 active in this stand-in).
        assert_eq!(
            answers,
            [
                Some((1, Some(false))),
                Some((1, Some(true))),
                Some((1, Some(true)))
            ]
        );
        assert_eq!(
            clock.look_ups.load(Ordering::SeqCst),
            2,
            "two look-ups for four readers"
        );
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_look_up_sends_its_readers_to_ask_alone() {
        let batches = Batches::default();
        let failed = |_: Vec<i64>| async { None };
        assert_eq!(batches.current(1, failed).await, None);
        // Two readers in one batch, and the one running its look-up is
        // dropped mid-flight: the other finds no answer and asks alone.
        let batches = Arc::new(Batches::default());
        let turn = batches.turn.lock().await;
        let (_never, held) = oneshot::channel::<()>();
        let started = Arc::new(Notify::new());
        let runner = tokio::spawn({
            let (b, started) = (batches.clone(), started.clone());
            async move {
                let look_up = |_: Vec<i64>| async move {
                    started.notify_one();
                    let _ = held.await;
                    Some((0, Vec::new()))
                };
                b.current(1, look_up).await
            }
        });
        until_waiting(&batches, 1).await;
        let b = batches.clone();
        let unused = |_: Vec<i64>| async { panic!("its batch was taken by the other reader") };
        let member = tokio::spawn(async move { b.current(2, unused).await });
        until_waiting(&batches, 2).await;
        drop(turn);
        started.notified().await;
        runner.abort();
        assert_eq!(member.await.unwrap(), None, "no answer: ask alone");
        // The next batch runs as usual.
        let fresh = |users: Vec<i64>| async move { Some((7, vec![(users[0], true)])) };
        assert_eq!(batches.current(4, fresh).await, Some((7, Some(true))));
        // A viewer the answer does not list is no such user.
        let none = |_: Vec<i64>| async { Some((3, Vec::new())) };
        assert_eq!(batches.current(9, none).await, Some((3, None)));
    }
}
