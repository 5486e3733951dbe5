//! "Has anything committed since?" for SQLite in WAL mode, for the price of
//! one `pread`: the WAL-index header at the start of the `-shm` file changes
//! on every commit, from any process (its `iChange` counter, the last frame
//! and the checksums move; a WAL restart changes the salts). SQLite's own
//! readers look at the same 48 bytes to decide whether their snapshot is
//! current (<https://www.sqlite.org/walformat.html>, "The WAL-Index Header").
//!
//! The header is kept twice and written copy 1 then copy 0; a read that finds
//! the copies different (a writer in the middle) or the header not yet
//! initialised gives no stamp, and callers fall back to asking the database.
//! A `-shm` file unlinked under us (the last connection of every process
//! closed, and SQLite removed it) is noticed by its link count and reopened,
//! so a stale copy can never pass for "nothing changed".

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The WAL-index header as last committed: equal stamps, no commit between.
pub type Stamp = [u8; HEADER];

/// Bytes of one copy of the header.
const HEADER: usize = 48;
/// Offset of `isInit` inside the header.
const IS_INIT: usize = 12;

/// A reader of one database's WAL-index header.
#[derive(Debug)]
pub struct WalStamp {
    path: PathBuf,
    // Written only to swap a reopened file in.
    shm: RwLock<File>,
}

impl WalStamp {
    /// For the database file `db`; `None` when its `-shm` file cannot be
    /// opened (e.g. an in-memory database).
    pub fn open(db: &Path) -> Option<WalStamp> {
        let mut path = db.as_os_str().to_owned();
        path.push("-shm");
        let path = PathBuf::from(path);
        let shm = File::open(&path).ok()?;
        Some(WalStamp {
            path,
            shm: RwLock::new(shm),
        })
    }

    /// The current stamp, or `None` when it cannot be read consistently.
    pub fn read(&self) -> Option<Stamp> {
        let unlinked = self.shm.read().ok()?.metadata().ok()?.nlink() == 0;
        if unlinked {
            *self.shm.write().ok()? = File::open(&self.path).ok()?;
        }
        let mut both = [0u8; 2 * HEADER];
        self.shm.read().ok()?.read_exact_at(&mut both, 0).ok()?;
        let (first, second) = both.split_at(HEADER);
        if first != second || first[IS_INIT] == 0 {
            return None;
        }
        first.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, Connection};

    #[tokio::test]
    async fn a_commit_from_another_connection_changes_the_stamp_and_a_read_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut writer = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut writer)
            .await
            .unwrap();
        let stamp = WalStamp::open(&file).expect("the -shm file exists in WAL mode");
        let before = stamp.read().expect("a consistent header");
        let mut reader = options.connect().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(stamp.read(), Some(before), "a read changed the stamp");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut writer)
            .await
            .unwrap();
        let after = stamp.read().expect("a consistent header");
        assert_ne!(after, before, "a commit left the stamp as it was");
        reader.close().await.unwrap();
        writer.close().await.unwrap();
    }

    #[test]
    fn no_shm_file_no_stamp() {
        let dir = tempfile::tempdir().unwrap();
        assert!(WalStamp::open(&dir.path().join("missing.db")).is_none());
    }
}
