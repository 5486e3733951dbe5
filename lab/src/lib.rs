//! Market Lab's orchestrator: replicas, balancer and load, measured side by side.
//!
//! The `lab` binary re-executes itself in each role (`lab market-api …`,
//! `lab balancer …`), so one `cargo run -p lab` needs no other binary. The
//! load generator runs in this process through [`loadgen::run_test`], which
//! makes its CPU use this process's CPU use.
//!
//! Module map (every module is crate-private: the binary needs only
//! [`Cli`], [`run`], [`runtime_workers`] and [`Error`]):
//! - `cli`: the command line (`compare`, `scale`, `up`, `demo`, hidden roles);
//! - `process`: child processes in their own process group, stopped on drop;
//! - `cgroup`: CPU budgets per replica (cgroup v1 or v2 quotas);
//! - `procstat`: CPU% and memory from `/proc`;
//! - `status`: the balancer's `/status` document and HTTP probes;
//! - `database`: the shared SQLite file or PostgreSQL (lab-started or existing);
//! - `stack`: N replicas sharing one seeded database + the balancer;
//! - `load`: the bridge to `loadgen` (plans and step summaries);
//! - `capacity`: stepping the load up until the objective breaks;
//! - `knee`: where it breaks, fitted to every window of a search;
//! - `step`: one measured step, read by the search, diagnosis and reports;
//! - `spread`, `usl`, `progress`: medians over repeats, the scalability fit,
//!   the time-left estimate;
//! - `campaign`: capacity searches on one stack, window by window;
//! - `compare`, `scale`, `up`, `demo`: the commands;
//! - `diagnosis`: the bottleneck in plain words;
//! - `report`: terminal table, HTML and JSON output.

mod affinity;
mod campaign;
mod capacity;
mod cgroup;
pub mod cli;
mod compare;
mod database;
mod demo;
mod diagnosis;
mod error;
mod explain;
mod knee;
mod load;
mod process;
mod procstat;
mod progress;
mod report;
mod scale;
mod spread;
mod stack;
mod status;
mod step;
mod up;
mod usl;

use std::future::Future;

use clap::Parser;

pub use cli::Cli;
pub use error::Error;

use cli::{Command, RoleArgs};

/// Runs one lab command to completion. Ctrl-C and SIGTERM stop it and every
/// process it started (the command's future is dropped, and with it every
/// [`process::ChildGuard`]).
pub async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::MarketApi(RoleArgs { args }) => {
            run_role("market-api", args, market_api::run).await
        }
        Command::Balancer(RoleArgs { args }) => run_role("balancer", args, balancer::run).await,
        // compare handles signals itself: it reports the steps finished so far.
        Command::Compare(args) => compare::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Demo(args) => until_signal(demo::run(args)).await,
        // scale, as compare, reports what it measured before a signal.
        Command::Scale(args) => scale::run(args).await,
    }
}

/// Worker threads the runtime should have for this command: the role's own
/// `--workers` when running as a replica or balancer, tokio's default otherwise.
pub fn runtime_workers(cli: &Cli) -> Option<usize> {
    match &cli.command {
        Command::MarketApi(RoleArgs { args }) => market_api::Cli::try_parse_from(
            std::iter::once("market-api".to_string()).chain(args.iter().cloned()),
        )
        .ok()
        .and_then(|c| c.workers()),
        Command::Balancer(RoleArgs { args }) => args
            .iter()
            .position(|a| a == "--workers")
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
            .or_else(|| args.iter().find_map(|a| a.strip_prefix("--workers=")))
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0),
        _ => None,
    }
}

/// Runs this process in a child role (`lab market-api …`, `lab balancer …`):
/// it dies with the lab, parses its arguments with the role's own parser and
/// reports the role's error as text.
async fn run_role<C: Parser, F, E>(
    name: &str,
    args: Vec<String>,
    run: impl FnOnce(C) -> F,
) -> Result<(), Error>
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    process::adopt_parent_death_signal();
    let Some(role) = parse_role::<C>(name, args)? else {
        return Ok(());
    };
    run(role).await.map_err(|e| Error::Role(format!("{e:#}")))
}

/// Parses a role's raw arguments with its own parser. `--help`/`--version`
/// are printed and yield `None`.
fn parse_role<C: Parser>(name: &str, args: Vec<String>) -> Result<Option<C>, Error> {
    match C::try_parse_from(std::iter::once(name.to_string()).chain(args)) {
        Ok(c) => Ok(Some(c)),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                print!("{}", e.render());
                Ok(None)
            }
            _ => Err(Error::Usage(e.render().to_string())),
        },
    }
}

/// Runs `f` until it finishes or SIGINT/SIGTERM arrives; on a signal, `f` is
/// dropped (tearing down everything it owns) and [`Error::Interrupted`] returned.
pub(crate) async fn until_signal<T>(f: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let mut stop = Interrupt::install()?;
    tokio::select! {
        r = f => r,
        () = stop.recv() => Err(Error::Interrupted),
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, caught: once installed, they no longer end
/// the process but wake [`Interrupt::recv`].
pub(crate) struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Catches SIGINT and SIGTERM from now on.
    pub(crate) fn install() -> Result<Interrupt, Error> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Interrupt {
            int: signal(SignalKind::interrupt()).map_err(|e| Error::io("SIGINT handler", e))?,
            term: signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM handler", e))?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
