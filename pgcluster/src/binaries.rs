//! Finding the PostgreSQL server binaries. Debian installs them under
//! `/usr/lib/postgresql/<major>/bin/`, off PATH (its `/usr/bin/psql` is a
//! wrapper script that picks a cluster from `/etc/postgresql`, which a
//! throwaway cluster is not), so that folder comes first, newest major
//! winning; then `postgres` on PATH (other distributions, source builds);
//! and [`BIN_DIR_ENV`] overrides both for machines with several installs.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The environment variable that names the folder holding `initdb` and `postgres`.
pub const BIN_DIR_ENV: &str = "PGCLUSTER_BIN_DIR";

const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The folder of one PostgreSQL installation's programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the server binaries: in `dir` when given, else in `$PGCLUSTER_BIN_DIR`
    /// when set, else in Debian's newest `/usr/lib/postgresql/<major>/bin`, else
    /// beside `postgres` on PATH.
    pub fn locate(dir: Option<&Path>) -> Result<Binaries, Error> {
        let chosen = dir.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(BIN_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        locate_in(chosen, Path::new(DEBIAN_ROOT), std::env::var_os("PATH"))
    }

    /// The folder holding `initdb` and `postgres`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the installation's programs (`psql`, `createdb`,
    /// `pg_isready`…): the one in [`dir`](Self::dir) when present, else the bare
    /// name, found on PATH when run.
    pub fn tool(&self, name: &str) -> PathBuf {
        let beside = self.dir.join(name);
        if is_executable(&beside) {
            beside
        } else {
            PathBuf::from(name)
        }
    }
}

/// [`Binaries::locate`] with its inputs named, so that every branch is testable
/// on a machine that has PostgreSQL installed.
pub(crate) fn locate_in(
    chosen: Option<PathBuf>,
    debian_root: &Path,
    path_var: Option<OsString>,
) -> Result<Binaries, Error> {
    if let Some(dir) = chosen {
        return if has_server(&dir) {
            Ok(Binaries { dir })
        } else {
            Err(Error::NotInstalled {
                looked_in: dir.display().to_string(),
            })
        };
    }
    if let Some(dir) = newest_major(debian_root) {
        return Ok(Binaries { dir });
    }
    // A PATH entry is often a folder of symlinks (/usr/local/bin): follow
    // `postgres` to the installation's own folder, where its tools live too.
    let on_path = which("postgres", path_var.as_deref())
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|dir| has_server(dir));
    on_path
        .map(|dir| Binaries { dir })
        .ok_or_else(|| Error::NotInstalled {
            looked_in: format!("{}/<major>/bin and PATH", debian_root.display()),
        })
}

/// The `bin` folder of the highest `<major>` under `root` that holds a server.
fn newest_major(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = parse_major(e.file_name().to_str()?)?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything else is not a version folder.
fn parse_major(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres"))
}

/// The first executable `name` in the PATH-style list `path_var`.
pub(crate) fn which(name: &str, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_install(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for name in ["initdb", "postgres"] {
            let p = dir.join(name);
            fs::write(&p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_major("15"), Some(vec![15]));
        assert_eq!(parse_major("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_major("common"), None);
        assert!(parse_major("10") > parse_major("9.6"));
    }

    #[test]
    fn newest_debian_major_wins() {
        let root = tempfile::tempdir().unwrap();
        fake_install(&root.path().join("9.6/bin"));
        fake_install(&root.path().join("16/bin"));
        fake_install(&root.path().join("10/bin"));
        fs::create_dir_all(root.path().join("17/bin")).unwrap(); // client-only install
        let found = locate_in(None, root.path(), None).unwrap();
        assert_eq!(found.dir(), root.path().join("16/bin"));
    }

    #[test]
    fn path_is_the_fallback_and_symlinks_lead_home() {
        let root = tempfile::tempdir().unwrap();
        let install = root.path().join("opt/pg/bin");
        fake_install(&install);
        let links = root.path().join("links");
        fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(install.join("postgres"), links.join("postgres")).unwrap();
        let path = std::env::join_paths([root.path().join("nothing"), links]).unwrap();
        let found = locate_in(None, &root.path().join("no-debian"), Some(path)).unwrap();
        assert_eq!(found.dir(), install.canonicalize().unwrap());
    }

    #[test]
    fn nothing_found_names_the_package() {
        let root = tempfile::tempdir().unwrap();
        let err = locate_in(None, root.path(), Some(root.path().into())).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::NotInstalled { .. }));
        assert!(msg.contains("apt-get install postgresql"), "{msg}");
        assert!(msg.contains("PATH"), "{msg}");
    }

    #[test]
    fn a_chosen_folder_is_used_as_is() {
        let root = tempfile::tempdir().unwrap();
        fake_install(&root.path().join("16/bin"));
        let empty = root.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let err = locate_in(Some(empty.clone()), root.path(), None).unwrap_err();
        assert!(err.to_string().contains(&empty.display().to_string()));
        let mine = root.path().join("16/bin");
        assert_eq!(
            locate_in(Some(mine.clone()), root.path(), None)
                .unwrap()
                .dir(),
            mine
        );
    }

    #[test]
    fn tools_missing_beside_the_server_come_from_path() {
        let root = tempfile::tempdir().unwrap();
        fake_install(root.path());
        let b = Binaries {
            dir: root.path().to_path_buf(),
        };
        assert_eq!(b.tool("initdb"), root.path().join("initdb"));
        assert_eq!(b.tool("psql"), PathBuf::from("psql"));
    }
}
