//! Market API: a Rust port of the tutorial's Django REST "Market API" — the
//! target the lab load-tests. It keeps the original's HTTP contract (routes,
//! JSON shapes, simplejwt tokens, DRF error bodies) and fixes its bugs.
//!
//! Module map: `cli` (flags) → `config` (validated settings) → `state`
//! (pools, keys, hasher) → `routes` (handlers, one module per resource) over
//! `db` (all the SQL, one module per table family). Cross-cutting pieces:
//! `auth` (JWT, argon2, extractors), `fields` (each resource's field table,
//! read by validation, OPTIONS and OpenAPI), `validation` (bodies, DRF
//! messages), `pagination`, `render_cache` (rendered pages and products) with
//! `generation` (when they are current), `request`
//! (small extractors), `fault` (injected delays/errors), `error`.
//!
//! The public surface is what the binary, the lab and the tests use: [`run`]
//! for the CLI (what `main` and the lab call), [`serve`] / [`serve_state`]
//! to run the server on a bound listener in-process, [`app`] for the bare
//! router (`oneshot` tests), and the configuration types. Everything else is
//! crate-private, free to change.

mod auth;
mod cli;
mod config;
mod db;
mod error;
mod fault;
mod fields;
mod generation;
mod pagination;
mod render_cache;
mod request;
mod routes;
mod state;
mod validation;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use tokio::net::TcpListener;

pub use cli::Cli;
pub use config::{FaultConfig, PasswordCost, SeedConfig, ServeConfig};
pub use error::Error;
pub use routes::app;
pub use state::AppState;

/// How long in-flight requests may take to finish after shutdown is asked.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one CLI command to completion (`serve` until SIGINT/SIGTERM).
pub async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        cli::Command::Serve(args) => {
            let config = args.to_config();
            let state = AppState::open(&config).await?;
            let listener = TcpListener::bind(args.bind)
                .await
                .map_err(|error| Error::Bind {
                    addr: args.bind,
                    error,
                })?;
            let addr = listener.local_addr()?;
            announce(&format!("market-api listening on http://{addr}"));
            let database = db::pool::redact(&config.database_url);
            tracing::info!(%addr, %database, replica = ?config.replica_id, "serving");
            serve_state(listener, state, plumbing::shutdown_signal()).await
        }
        cli::Command::Seed(args) => {
            let db = db::Db::open(&args.db.database_url, args.db.open_options()).await?;
            let seed = args.size.to_config(args.password_cost);
            db::setup::migrate_and_seed(&db, db::setup::Seeding::TopUp(&seed)).await?;
            announce(&format!(
                "market-api seeded {} (users {}, products {}, comments {})",
                db::pool::redact(&args.db.database_url),
                seed.users,
                seed.products,
                seed.comments
            ));
            db.close().await;
            Ok(())
        }
        cli::Command::Migrate(args) => {
            let db = db::Db::open(&args.database_url, args.open_options()).await?;
            db::setup::migrate_and_seed(&db, db::setup::Seeding::None).await?;
            announce(&format!(
                "market-api migrated {}",
                db::pool::redact(&args.database_url)
            ));
            db.close().await;
            Ok(())
        }
    }
}

fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Opens the database described by `config` (migrating and seeding it), then
/// serves on `listener` until `shutdown` completes; in-flight requests get
/// [`DRAIN_TIMEOUT`] to finish.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let state = AppState::open(&config).await?;
    serve_state(listener, state, shutdown).await
}

/// Serves an already opened [`AppState`] (see [`serve`]).
pub async fn serve_state(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let db = state.db.clone();
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(signal);
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!("drain deadline passed; closing with requests in flight"),
    }
    if tokio::time::timeout(Duration::from_secs(2), db.close())
        .await
        .is_err()
    {
        tracing::warn!("database pools did not close in time");
    }
    Ok(())
}

/// A tokio runtime with `workers` worker threads (`None`: one per core).
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder.build()
}
