//! The database the replicas share: a SQLite file (the default), a throwaway
//! PostgreSQL cluster the lab starts for the run (`--database postgres`), or an
//! existing PostgreSQL server (`--database postgres://…`).
//!
//! Either way the lab migrates and seeds it once, through `market-api migrate`
//! and `seed` child processes, before any replica starts, so a wrong URL or
//! password fails early with market-api's own message. A lab-started cluster
//! (the `pgcluster` crate) lives in the run folder when its unprivileged user
//! can reach it, else under the system temp folder (PostgreSQL refuses root,
//! so as root it runs as `nobody`); it is stopped after the replicas, and dies
//! with the lab even on SIGKILL. Its processes are sampled like the
//! balancer's: they are outside the replicas' CPU budget.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::DatabaseChoice;
use crate::process::{ChildGuard, Spec};
use crate::Error;

/// The process name prefix of the database server's processes in reports.
pub const POSTGRES: &str = "postgres";

/// A prepared database.
#[derive(Debug)]
pub struct Database {
    /// The URL every replica gets (`sqlite://…` or `postgres://…`).
    pub url: String,
    /// The cluster the lab started, if it did.
    cluster: Option<pgcluster::Cluster>,
    /// A sentence for the output and the report.
    pub note: String,
}

/// What [`Database::prepare`] needs.
#[derive(Debug)]
pub struct DatabasePlan<'a> {
    /// The user's choice.
    pub choice: &'a DatabaseChoice,
    /// The run folder (data, logs).
    pub run_dir: &'a Path,
    /// Connections a lab-started cluster must accept.
    pub max_connections: u32,
    /// Bound on each start-up task.
    pub startup_timeout: Duration,
}

impl Database {
    /// Makes the database ready: starts a cluster if asked, then runs
    /// `migrate` and `seed` once.
    pub async fn prepare(plan: &DatabasePlan<'_>) -> Result<Database, Error> {
        let (url, cluster, note) = match plan.choice {
            DatabaseChoice::Sqlite(file) => {
                let path = file
                    .clone()
                    .unwrap_or_else(|| plan.run_dir.join("market.db"));
                let url = sqlite_url(&path)?;
                let note = format!("database: SQLite file {}", path.display());
                (url, None, note)
            }
            DatabaseChoice::Postgres => {
                let (cluster, note) = start_cluster(plan).await?;
                cluster.create_database("market").await?;
                (cluster.url_for("market"), Some(cluster), note)
            }
            DatabaseChoice::PostgresUrl(url) => (
                url.clone(),
                None,
                format!(
                    "database: the existing PostgreSQL server at {}",
                    redact(url)
                ),
            ),
        };
        let db = Database { url, cluster, note };
        db.migrate_and_seed(plan).await?;
        Ok(db)
    }

    async fn migrate_and_seed(&self, plan: &DatabasePlan<'_>) -> Result<(), Error> {
        let log = plan.run_dir.join("seed.log");
        for task in ["migrate", "seed"] {
            let spec = Spec {
                name: format!("market-api {task}"),
                args: vec![
                    "market-api".into(),
                    task.into(),
                    "--database-url".into(),
                    self.url.clone().into(),
                ],
                log: log.clone(),
                run_dir: plan.run_dir.to_path_buf(),
            };
            ChildGuard::run_to_end(&spec, Duration::from_secs(120).max(plan.startup_timeout))
                .await?;
        }
        Ok(())
    }

    /// `(name, pid)` of the lab-started server's processes now: the
    /// postmaster and its children (one backend per pool connection, the
    /// checkpointer, the WAL writer…).
    pub fn processes(&self) -> Vec<(String, u32)> {
        let Some(c) = &self.cluster else {
            return Vec::new();
        };
        let mut v = vec![(format!("{POSTGRES} server"), c.pid())];
        for pid in c.child_pids().unwrap_or_default() {
            v.push((postgres_title(pid), pid));
        }
        v
    }

    /// Whether the lab started (and samples) the server.
    pub fn is_lab_postgres(&self) -> bool {
        self.cluster.is_some()
    }

    /// Stops a lab-started cluster (bounded; it is killed past the bound).
    pub async fn stop(self) {
        if let Some(c) = self.cluster {
            if let Err(e) = c.stop().await {
                eprintln!("lab: stopping PostgreSQL: {e}");
            }
        }
    }
}

/// Starts the cluster in the run folder, or under the system temp folder
/// when the unprivileged account PostgreSQL runs as cannot reach the run
/// folder (e.g. below a 0700 `/root`): loosening permissions the lab does
/// not own is not its call.
async fn start_cluster(plan: &DatabasePlan<'_>) -> Result<(pgcluster::Cluster, String), Error> {
    let options = |dir: PathBuf| pgcluster::Options {
        max_connections: plan.max_connections,
        start_timeout: plan.startup_timeout.max(Duration::from_secs(60)),
        ..pgcluster::Options::new(dir)
    };
    let dir = plan.run_dir.join("postgres");
    match pgcluster::Cluster::start(options(dir)).await {
        Ok(c) => {
            let note = format!(
                "database: a throwaway PostgreSQL cluster on 127.0.0.1:{}, data in {} (max_connections {})",
                c.port(),
                c.data_dir().display(),
                plan.max_connections
            );
            Ok((c, note))
        }
        Err(pgcluster::Error::Unreachable { user, blocked, .. }) => {
            let name = plan
                .run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp =
                std::env::temp_dir().join(format!("lab-postgres-{}-{name}", std::process::id()));
            let c = pgcluster::Cluster::start(options(tmp.clone())).await?;
            let note = format!(
                "database: a throwaway PostgreSQL cluster on 127.0.0.1:{}, data in {} (PostgreSQL runs as `{user}`, who cannot enter {}, so not in the run folder; max_connections {})",
                c.port(),
                tmp.display(),
                blocked.display(),
                plan.max_connections
            );
            Ok((c, note))
        }
        Err(e) => Err(e.into()),
    }
}

/// A child's title as PostgreSQL sets it (`postgres: checkpointer`,
/// `postgres: lab market 127.0.0.1(41234) idle`), cut to its role.
fn postgres_title(pid: u32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&cmd).replace('\0', " ");
    let role = text
        .trim()
        .strip_prefix("postgres: ")
        .map(|r| {
            // A backend's title is `USER DB HOST(PORT) STATE`: keep "backend".
            if r.contains('(') {
                "backend".to_string()
            } else {
                r.split_whitespace().collect::<Vec<_>>().join(" ")
            }
        })
        .unwrap_or_else(|| "process".to_string());
    format!("{POSTGRES} {role}")
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((cred, host)) => match cred.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Checks the SQLite file can be created; its absolute `sqlite://` URL.
fn sqlite_url(path: &Path) -> Result<String, Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(Error::Database {
                path: path.to_path_buf(),
                reason: format!("the folder {} does not exist", parent.display()),
            });
        }
    }
    let fail = |e: std::io::Error| Error::Database {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)?;
    let abs = std::fs::canonicalize(path).map_err(fail)?;
    Ok(format!("sqlite://{}", abs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password() {
        assert_eq!(
            redact("postgres://lab:s3cret@10.0.0.5:5432/market"),
            "postgres://lab:***@10.0.0.5:5432/market"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
