//! An HTTP load balancer with nginx's upstream semantics, on hyper and tower.
//!
//! - [`config`]: the validated configuration, from flags ([`cli`]) or an
//!   nginx-style file ([`config::nginx`]);
//! - `upstream`: the server group at run time (peers, `max_conns`,
//!   passive failures, queue);
//! - `algorithms`: the balancing methods;
//! - `proxy`: the request path (headers, bodies, upstream pool, retries);
//! - `health`: active health checks; `admin`: status, metrics, control;
//! - `server`: the listener, our HTTP/1.1 loop (hyper for the rest),
//!   connection timeouts, graceful shutdown; `state`: reloads; `io`: timed
//!   socket reads and writes.
//!
//! Entry points: [`run`] (what the binary does, signals included),
//! [`serve`] (in-process, with a bound listener and a shutdown future) and
//! [`bind`] (a listener with nginx's listen queue). Only the configuration,
//! the flags and these are public: what the binary, the lab and the tests
//! use; the machinery stays inside the crate.

pub(crate) mod admin;
pub(crate) mod algorithms;
pub mod cli;
pub mod config;
pub mod error;
pub(crate) mod health;
pub(crate) mod io;
// `proxy` and `upstream` stay public only until three items nothing uses
// (`ConnInfo::addr`, `Upstream::needs_key`, `Peer::max_conns`) are removed
// with those modules' own work; `pub(crate)` would make them dead code.
pub mod proxy;
pub(crate) mod server;
pub(crate) mod state;
pub mod upstream;

pub use cli::Cli;
pub use config::Config;
pub use error::Error;
pub use server::serve;

use std::io::Write as _;

use tokio::net::{TcpListener, TcpSocket};

/// Binds a listener with a listen queue of `backlog` (nginx's `listen ...
/// backlog=N`). tokio's `TcpListener::bind` always asks for 128: a burst of
/// a thousand connects then waits out SYN retransmits (1 s each).
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> Result<TcpListener, Error> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    socket
        .and_then(|s| {
            // As std and tokio do: a restarted balancer can bind at once.
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(backlog)
        })
        .map_err(|cause| Error::Bind { addr, cause })
}

/// Runs the balancer as the binary does: builds the config, binds, prints
/// `balancer listening on http://ADDR` (and the admin address), reloads on
/// SIGHUP, drains and stops on SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let config = cli.to_config()?;
    run_with(cli, config).await
}

/// [`run`] with the configuration `cli` gave, already read (the binary reads
/// it first, to size the runtime).
pub async fn run_with(cli: Cli, config: Config) -> Result<(), Error> {
    let listener = bind(config.listen, config.backlog)?;
    let admin = match config.admin {
        Some(a) => Some(bind(a, config::DEFAULT_BACKLOG)?),
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "balancer listening on http://{}",
            listener.local_addr()?
        )?;
        if let Some(a) = &admin {
            writeln!(out, "balancer admin on http://{}", a.local_addr()?)?;
        }
        out.flush()?;
    }
    let reload_cli = cli.clone();
    let reloader = config.source.is_some().then(|| {
        Box::new(move || reload_cli.to_config())
            as Box<dyn Fn() -> Result<Config, config::ConfigError> + Send + Sync>
    });
    let state = state::State::new(config, reloader);

    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let hup_state = state.clone();
    let hup_task = tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match hup_state.reload() {
                Ok(done) => tracing::info!(generation = done.generation, "reloaded on SIGHUP"),
                Err(e) => tracing::error!("reload failed, keeping the running configuration: {e}"),
            }
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    let r = server::serve_state(state, listener, admin, shutdown).await;
    hup_task.abort();
    r
}
