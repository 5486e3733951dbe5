//! Validated run-time configuration, built from the CLI (or by hand in tests
//! and by the lab) before the server starts.

use std::time::Duration;

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `sqlite://path` (created when missing) or `postgres://…`.
    pub database_url: String,
    /// Demo data to insert into an empty database; `None` = `--no-seed`.
    pub seed: Option<SeedConfig>,
    /// HS256 secret; `None` = the shared one kept in the `settings` table.
    pub jwt_secret: Option<String>,
    /// Value of the `X-Replica` response header.
    pub replica_id: Option<String>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub fault: FaultConfig,
    /// Largest request body accepted (413 above).
    pub body_limit: usize,
    /// SQLite's read pool or PostgreSQL's pool (`None`: 2 per core).
    pub pool_size: Option<u32>,
    /// How long to keep trying to reach PostgreSQL at start.
    pub startup_timeout: Duration,
    /// Argon2 cost of new password hashes.
    pub password_cost: PasswordCost,
}

impl ServeConfig {
    /// How [`crate::db::Db::open`] opens the database.
    pub(crate) fn open_options(&self) -> crate::db::pool::OpenOptions {
        crate::db::pool::OpenOptions {
            pool_size: self.pool_size,
            startup_timeout: self.startup_timeout,
        }
    }

    /// Defaults matching `market-api serve` for the given database.
    pub fn new(database_url: impl Into<String>) -> Self {
        ServeConfig {
            database_url: database_url.into(),
            seed: Some(SeedConfig::default()),
            jwt_secret: None,
            replica_id: None,
            access_ttl: Duration::from_secs(7 * 3600),
            refresh_ttl: Duration::from_secs(24 * 3600),
            fault: FaultConfig::default(),
            body_limit: 1024 * 1024,
            pool_size: None,
            startup_timeout: Duration::from_secs(30),
            password_cost: PasswordCost::Default,
        }
    }
}

/// Injected faults (off by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultConfig {
    /// Delay added to every `/api/` response (not `/healthz`).
    pub delay: Option<Duration>,
    /// Fraction of `/api/` and `/healthz` requests answered with 503.
    pub error_rate: f64,
}

/// Size of the demo data set.
#[derive(Debug, Clone, Copy)]
pub struct SeedConfig {
    pub users: u32,
    pub products: u32,
    pub comments: u32,
    pub password_cost: PasswordCost,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            users: 10,
            products: 120,
            comments: 250,
            password_cost: PasswordCost::Default,
        }
    }
}

/// Argon2id cost. `Default` is the argon2 crate's (m=19 MiB, t=2, p=1);
/// `Fast` (m=64 KiB, t=1) exists so tests do not spend seconds hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PasswordCost {
    #[default]
    Default,
    Fast,
}
