//! loadgen: Locust's user model and outputs, at wrk's speed, without
//! coordinated omission.
//!
//! Module map (see `docs/loadgen.md` for usage):
//! - `cli` — the command line (Locust's flags, quick mode, `merge`); `plan` —
//!   the validated `TestPlan` built from it.
//! - `scenario` — the model (user classes, tasks, requests, wait times), the
//!   YAML/TOML file format, templates, JSON captures, the built-in `market-api`.
//! - `users` — the user loop and the two load models (`spawner`: closed,
//!   `arrival`: open); `client` — one keep-alive connection per user, driving
//!   `wire` (its HTTP/1.1 over buffers, no I/O) with a `cookies` jar, to an
//!   `endpoint` resolved once; `runtime` — worker threads for a run.
//! - `stats` — samples, per-endpoint HDR histograms, failures, history.
//! - `control` — the `Controller` every run goes through (CLI and dashboard);
//!   `run` — the state the run's tasks share; `snapshot` — what a run looks
//!   like from outside.
//! - `units` — the leaf every layer may use: durations, counts, rates,
//!   stages, segments, hosts, Unix ms. Imports flow one way, downwards.
//! - `report` — `RunReport` and its CSV/JSON/HTML/terminal writers;
//!   `threshold` — k6-style pass/fail; `merge` — combining segments;
//!   `selfcheck` — loadgen's own CPU and lag warnings; `web` — the dashboard.
//!
//! Library use (what `lab` does):
//! ```no_run
//! # async fn demo() -> Result<(), loadgen::Error> {
//! use std::time::Duration;
//! let scenario = loadgen::scenario::builtin::market_api("demo@example.com", "Passw0rd!")?;
//! let mut plan = loadgen::TestPlan::new("http://127.0.0.1:8000", scenario);
//! plan.users = 50;
//! plan.spawn_rate = 10.0;
//! plan.run_time = Some(Duration::from_secs(30));
//! let report = loadgen::run_test(plan).await?;
//! loadgen::write_csv(&report, std::path::Path::new("out"))?;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod client;
pub mod control;
mod cookies;
pub mod endpoint;
pub(crate) mod error;
pub(crate) mod merge;
pub mod plan;
pub mod report;
pub(crate) mod run;
pub mod runtime;
pub mod scenario;
pub(crate) mod selfcheck;
pub(crate) mod snapshot;
pub mod stats;
pub(crate) mod threshold;
pub(crate) mod units;
pub(crate) mod users;
pub mod web;
mod wire;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::time::Duration;

pub use cli::Cli;
pub use control::{ControlError, Controller, RunState, Snapshot, StartRequest};
pub use error::Error;
pub use plan::TestPlan;
pub use report::{write_csv, write_html, write_json, RunReport};
pub use scenario::Scenario;
pub use stats::{FailureRow, HistoryPoint, StatsRow};

/// Runs one test to its end (run time, iterations, stages) and returns its report,
/// thresholds evaluated. No signal handling: stop it by dropping the future or
/// use a `Controller`.
pub async fn run_test(plan: TestPlan) -> Result<RunReport, Error> {
    let controller = Controller::new(plan.clone());
    controller.start_plan(plan)?;
    controller.wait().await;
    Ok(controller.report())
}

/// The binary's entry: parse → run → outputs. Errors map to exit codes via `Error::exit_code`.
pub async fn run(cli: Cli) -> Result<(), Error> {
    run_with_shutdown(cli, plumbing::shutdown_signal()).await
}

/// `run`, stopping on `shutdown` instead of SIGINT/SIGTERM (for tests and `lab`).
pub async fn run_with_shutdown(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if let Some(cli::Command::Merge(m)) = &cli.command {
        return run_merge(m);
    }
    let a = &cli.run;
    let web = a.web || (!a.headless && a.url.is_none());
    let plan = TestPlan::from_cli(a, !web || a.autostart)?;
    // A run can take hours: refuse an unwritable report path before it starts.
    report::outputs::check(&a.outputs)?;
    let controller = Controller::new(plan.clone());
    let shutdown = Box::pin(shutdown);
    if web {
        return run_dashboard(a, plan, controller, shutdown).await;
    }
    run_headless(a, plan, controller, shutdown).await
}

/// The stop a run waits for besides its own end.
type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Binds the dashboard's listener and says where it is (and warns when
/// other machines can reach it).
async fn bind_dashboard(a: &cli::RunArgs) -> Result<tokio::net::TcpListener, Error> {
    let addr = format!("{}:{}", a.web_host, a.web_port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::Bind {
            addr: addr.clone(),
            source: e,
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Bind { addr, source: e })?;
    println!("Dashboard: http://{local}/");
    let _ = std::io::stdout().flush();
    if !a
        .web_host
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        tracing::warn!(
            "the dashboard listens on {local}, reachable from other machines: it can start load tests, keep it on a trusted network"
        );
    }
    Ok(listener)
}

/// With the dashboard: serve it until the shutdown (or the end of an
/// autostarted timed run), then write the reports of the run, if any.
async fn run_dashboard(
    a: &cli::RunArgs,
    plan: TestPlan,
    controller: Controller,
    mut shutdown: Shutdown,
) -> Result<(), Error> {
    let listener = bind_dashboard(a).await?;
    if a.autostart {
        controller.start_plan(plan)?;
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, controller.clone(), async move {
        let _ = rx.await;
    }));
    if a.autostart && a.run_time.is_some() {
        tokio::select! {
            _ = controller.wait() => {}
            _ = &mut shutdown => {}
        }
    } else {
        shutdown.await;
    }
    controller.stop();
    controller.wait().await;
    let _ = tx.send(());
    match server.await {
        Ok(r) => r?,
        Err(e) => tracing::warn!("dashboard task ended abnormally: {e}"),
    }
    if controller.snapshot().state == RunState::Ready {
        return Ok(());
    }
    finish(&controller.report(), a, false)
}

/// Without the dashboard: run to the end or the shutdown, with the live
/// table on stderr unless `--only-summary`.
async fn run_headless(
    a: &cli::RunArgs,
    plan: TestPlan,
    controller: Controller,
    mut shutdown: Shutdown,
) -> Result<(), Error> {
    controller.start_plan(plan)?;
    let live = (!a.only_summary).then(|| tokio::spawn(live_table(controller.clone())));
    tokio::select! {
        _ = controller.wait() => {}
        _ = &mut shutdown => {
            tracing::info!("stopping: waiting for users to finish");
            controller.stop();
            controller.wait().await;
        }
    }
    if let Some(l) = live {
        l.abort();
    }
    finish(&controller.report(), a, true)
}

/// Prints the live table to stderr every 2 s (redrawn in place on a terminal).
async fn live_table(c: Controller) {
    let mut rx = c.subscribe();
    let mut last = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    while rx.changed().await.is_ok() {
        let snap = rx.borrow_and_update().clone();
        if snap.state == RunState::Stopped {
            break;
        }
        if last.elapsed() >= Duration::from_secs(2) {
            last = std::time::Instant::now();
            let text = report::terminal::live(&snap);
            let mut err = std::io::stderr().lock();
            if tty {
                let _ = write!(err, "\x1b[2J\x1b[H");
            }
            let _ = writeln!(err, "{text}");
        }
    }
}

/// Writes the requested outputs, prints the summary and decides the exit
/// status. A report that cannot be written (exit code 4) wins over the
/// verdict, but only after every other report was written and the summary
/// printed: the results of the run are not lost with it.
fn finish(r: &RunReport, a: &cli::RunArgs, print: bool) -> Result<(), Error> {
    let written = report::outputs::write(r, &a.outputs);
    if print {
        println!("{}", report::terminal::summary(r));
    }
    written?;
    verdict(r)
}

/// Exit status of a finished run: thresholds first (3), then failed requests (1).
pub fn verdict(r: &RunReport) -> Result<(), Error> {
    let breached: Vec<String> = r
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.threshold.clone())
        .collect();
    if !breached.is_empty() {
        return Err(Error::ThresholdsBreached(breached));
    }
    let (requests, failures) = r.counts();
    if failures > 0 {
        return Err(Error::RequestsFailed { failures, requests });
    }
    Ok(())
}

fn run_merge(m: &cli::MergeArgs) -> Result<(), Error> {
    report::outputs::check(&m.outputs)?;
    let mut inputs = Vec::new();
    for f in &m.files {
        inputs.push((f.display().to_string(), report::json::read_json(f)?));
    }
    let mut merged = merge::merge(&inputs)
        .map_err(|message| Error::Usage(format!("cannot merge: {message}")))?;
    let thresholds = m
        .thresholds
        .iter()
        .map(|t| threshold::Threshold::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Usage)?;
    merged.thresholds = thresholds.iter().map(|t| t.evaluate(&merged)).collect();
    let written = report::outputs::write(&merged, &m.outputs);
    println!("{}", report::terminal::summary(&merged));
    written?;
    verdict(&merged)
}
