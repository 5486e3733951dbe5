//! Which operating-system user the server runs as. PostgreSQL refuses to run
//! as root (`initdb` and `postgres` both check), and the lab and the tests do
//! run as root in CI, so a root owner hands the cluster to an unprivileged
//! user: it owns the data folder and `setpriv` switches to it before exec.
//! Anyone else runs the cluster as themselves.
//!
//! Only the data folder is handed over, never its parents: when the user
//! cannot walk down to it (a folder under a 0700 `/root`), the start fails
//! with a message saying so rather than loosening permissions it does not own.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::Error;

/// The account that runs `initdb` and `postgres`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunAs {
    /// For messages: the user's name, or `the current user`.
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// True when the owner is root and the processes must switch to `uid`/`gid`.
    pub(crate) switch: bool,
}

/// The account for an owner whose effective uid is `euid`: as root, the user
/// named `unprivileged`; otherwise the owner itself.
pub(crate) fn resolve(unprivileged: &str) -> Result<RunAs, Error> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(Error::io("reading /proc/self/status"))?;
    let (euid, egid) = effective_ids(&status).ok_or_else(|| Error::Io {
        what: "reading /proc/self/status".into(),
        source: std::io::Error::other("no Uid/Gid lines"),
    })?;
    if euid != 0 {
        return Ok(RunAs {
            name: "the current user".into(),
            uid: euid,
            gid: egid,
            switch: false,
        });
    }
    let out = std::process::Command::new("getent")
        .args(["passwd", unprivileged])
        .output()
        .map_err(Error::io(
            "running getent to look up the user to run PostgreSQL as",
        ))?;
    let entry = String::from_utf8_lossy(&out.stdout);
    match passwd_ids(entry.lines().next().unwrap_or("")) {
        Some((uid, gid)) if out.status.success() && uid != 0 => Ok(RunAs {
            name: unprivileged.to_string(),
            uid,
            gid,
            switch: true,
        }),
        _ => Err(Error::UnknownUser(unprivileged.to_string())),
    }
}

/// The effective uid and gid from `/proc/self/status` (the second field of its
/// `Uid:` and `Gid:` lines): the workspace forbids `unsafe`, so no `geteuid()`.
fn effective_ids(status: &str) -> Option<(u32, u32)> {
    let field = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(2)?.parse().ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// Uid and gid from one `getent passwd` line (`name:x:uid:gid:…`).
fn passwd_ids(line: &str) -> Option<(u32, u32)> {
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// Fails with [`Error::Unreachable`] when `who` cannot search one of the
/// folders above `data_dir` (an absolute, canonical path). Mode bits only:
/// the user's groups are cleared at switch time, so only its primary group counts.
pub(crate) fn check_reachable(data_dir: &Path, who: &RunAs) -> Result<(), Error> {
    for dir in data_dir.ancestors().skip(1) {
        let meta =
            std::fs::metadata(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
        if !can_search(meta.mode(), meta.uid(), meta.gid(), who) {
            return Err(Error::Unreachable {
                user: who.name.clone(),
                blocked: dir.to_path_buf(),
                data_dir: data_dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn can_search(mode: u32, owner: u32, group: u32, who: &RunAs) -> bool {
    if owner == who.uid {
        mode & 0o100 != 0
    } else if group == who.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Hands `path` to `who` (a no-op when the owner runs the cluster itself).
pub(crate) fn give(path: &Path, who: &RunAs) -> Result<(), Error> {
    if !who.switch {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid)).map_err(Error::io(format!(
        "handing {} to user {}",
        path.display(),
        who.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nobody() -> RunAs {
        RunAs {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            switch: true,
        }
    }

    #[test]
    fn effective_ids_are_the_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1000\t27\t27\t27\n";
        assert_eq!(effective_ids(status), Some((0, 27)));
        assert_eq!(effective_ids("Name:\tx\n"), None);
    }

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        assert_eq!(
            passwd_ids("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"),
            Some((65534, 65534))
        );
        assert_eq!(passwd_ids(""), None);
        assert_eq!(passwd_ids("broken:x:uid"), None);
    }

    #[test]
    fn search_permission_follows_owner_group_other() {
        let who = nobody();
        assert!(can_search(0o755, 0, 0, &who));
        assert!(!can_search(0o700, 0, 0, &who));
        assert!(can_search(0o700, 65534, 0, &who));
        assert!(can_search(0o710, 0, 65534, &who));
        assert!(
            !can_search(0o701, 0, 65534, &who),
            "the group bits decide for a group member"
        );
        assert!(can_search(0o1777, 0, 0, &who));
    }

    #[test]
    fn a_closed_parent_is_named() {
        let root = tempfile::tempdir().unwrap();
        let closed = root.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let mut who = nobody();
        // Whoever runs this test owns `closed`; pretend to be someone else.
        who.uid = std::fs::metadata(&closed).unwrap().uid().wrapping_add(1);
        who.gid = std::fs::metadata(&closed).unwrap().gid().wrapping_add(1);
        let data = closed.join("pg");
        match check_reachable(&data, &who) {
            Err(Error::Unreachable { blocked, .. }) => assert_eq!(blocked, closed),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}
