//! Command line: `market-api serve | seed | migrate`, parsed with clap derive.
//!
//! The parsed [`Cli`] is turned into a validated [`ServeConfig`] /
//! [`SeedConfig`] before anything runs, so bad flags fail early and whole.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{FaultConfig, PasswordCost, SeedConfig, ServeConfig};

/// Market API: the Rust port of the tutorial's Django REST API.
#[derive(Debug, Clone, Parser)]
#[command(name = "market-api", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Command {
    /// Serve the HTTP API (migrations are applied at start).
    Serve(ServeArgs),
    /// Insert the demo data (idempotent).
    Seed(SeedArgs),
    /// Apply the embedded migrations and exit.
    Migrate(DbArgs),
}

/// Where the database lives.
#[derive(Debug, Clone, Args)]
pub(crate) struct DbArgs {
    /// `sqlite://PATH` (the file is created when missing) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    #[arg(
        long,
        default_value = "sqlite://market.db",
        env = "MARKET_API_DATABASE_URL"
    )]
    pub(crate) database_url: String,
    /// How long to keep trying to reach PostgreSQL at start (with backoff).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) startup_timeout: Duration,
}

impl DbArgs {
    /// Options for [`crate::db::Db::open`], with a one-connection pool (the
    /// `seed` and `migrate` commands).
    pub(crate) fn open_options(&self) -> crate::db::pool::OpenOptions {
        crate::db::pool::OpenOptions {
            pool_size: Some(1),
            startup_timeout: self.startup_timeout,
        }
    }
}

/// How much demo data to insert.
#[derive(Debug, Clone, Args)]
pub(crate) struct SeedSizeArgs {
    /// Number of users (at least 2: demo@example.com and other@example.com).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..))]
    pub(crate) users: u32,
    /// Number of products (ids from 1).
    #[arg(long, default_value_t = 120)]
    pub(crate) products: u32,
    /// Number of comments.
    #[arg(long, default_value_t = 250)]
    pub(crate) comments: u32,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SeedArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    #[command(flatten)]
    pub(crate) size: SeedSizeArgs,
    /// Argon2 cost for the seeded users' (single, shared) password hash.
    #[arg(long, value_enum, default_value_t = PasswordCost::Default)]
    pub(crate) password_cost: PasswordCost,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub(crate) bind: SocketAddr,
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Do not insert the demo data into an empty database.
    #[arg(long)]
    pub(crate) no_seed: bool,
    /// HS256 signing secret; without it a random secret is created once and
    /// kept in the database, so replicas sharing it accept each other's tokens.
    #[arg(long, env = "MARKET_API_JWT_SECRET", hide_env_values = true)]
    pub(crate) jwt_secret: Option<String>,
    /// Adds `X-Replica: ID` to every response.
    #[arg(long)]
    pub(crate) replica_id: Option<String>,
    /// Lifetime of access tokens.
    #[arg(long, default_value = "7h", value_parser = parse_duration)]
    pub(crate) access_ttl: Duration,
    /// Lifetime of refresh tokens.
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub(crate) refresh_ttl: Duration,
    /// Delay every /api/ response by this long (fault injection).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) fault_delay: Option<Duration>,
    /// Answer this fraction of /api/ and /healthz requests with 503.
    #[arg(long, default_value_t = 0.0, value_parser = parse_ratio)]
    pub(crate) fault_error_rate: f64,
    /// Largest accepted request body in bytes (413 above).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub(crate) body_limit: usize,
    /// Database connections of this process: SQLite's read pool (writes
    /// have one connection of their own) or the PostgreSQL pool. Default: 2
    /// per core.
    #[arg(long, alias = "read-connections")]
    pub(crate) pool_size: Option<u32>,
    /// Argon2 cost for new password hashes (`fast` is for tests only).
    #[arg(long, value_enum, default_value_t = PasswordCost::Default)]
    pub(crate) password_cost: PasswordCost,
    #[command(flatten)]
    pub(crate) seed: SeedSizeArgs,
}

/// Parses `250ms`, `5s`, `7h`, `1d` (humantime) and plain seconds (`1.5`).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!(
            "invalid duration {s:?}: must be a non-negative number"
        ));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Parses a probability in `0.0..=1.0`.
pub(crate) fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "invalid ratio {s:?}: expected a number between 0.0 and 1.0"
        )),
    }
}

impl SeedSizeArgs {
    pub(crate) fn to_config(&self, password_cost: PasswordCost) -> SeedConfig {
        SeedConfig {
            users: self.users,
            products: self.products,
            comments: self.comments,
            password_cost,
        }
    }
}

impl ServeArgs {
    /// Validated configuration for [`crate::serve`].
    pub(crate) fn to_config(&self) -> ServeConfig {
        ServeConfig {
            database_url: self.db.database_url.clone(),
            seed: (!self.no_seed).then(|| self.seed.to_config(self.password_cost)),
            jwt_secret: self.jwt_secret.clone().filter(|s| !s.is_empty()),
            replica_id: self.replica_id.clone(),
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            fault: FaultConfig {
                delay: self.fault_delay.filter(|d| !d.is_zero()),
                error_rate: self.fault_error_rate,
            },
            body_limit: self.body_limit,
            pool_size: self.pool_size,
            startup_timeout: self.db.startup_timeout,
            password_cost: self.password_cost,
        }
    }
}

impl Cli {
    /// Worker threads the runtime should have (`None`: tokio's default).
    pub fn workers(&self) -> Option<usize> {
        match &self.command {
            Command::Serve(args) => args.workers.filter(|&n| n > 0),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7h").unwrap(), Duration::from_secs(7 * 3600));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("0.25").unwrap(), 0.25);
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("x").is_err());
    }

    #[test]
    fn serve_flags() {
        let cli = Cli::parse_from([
            "market-api",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--replica-id",
            "r1",
            "--fault-error-rate",
            "0.5",
            "--workers",
            "3",
            "--no-seed",
        ]);
        assert_eq!(cli.workers(), Some(3));
        let Command::Serve(args) = &cli.command else {
            panic!("not serve")
        };
        let config = args.to_config();
        assert_eq!(config.replica_id.as_deref(), Some("r1"));
        assert_eq!(config.fault.error_rate, 0.5);
        assert!(config.seed.is_none());
        assert_eq!(config.access_ttl, Duration::from_secs(7 * 3600));
    }

    #[test]
    fn fewer_than_two_seed_users_is_a_usage_error() {
        for args in [
            ["market-api", "serve", "--users", "1"],
            ["market-api", "seed", "--users", "0"],
        ] {
            let e = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
        assert!(Cli::try_parse_from(["market-api", "seed", "--users", "2"]).is_ok());
    }
}
