//! A throwaway PostgreSQL cluster for one run: the lab's `--database postgres`
//! runs and every test that needs PostgreSQL start their own and stop it at
//! the end, so nothing depends on a server a machine happens to run.
//!
//! It is built from the server binaries on the machine (Debian's `postgresql`
//! package: `initdb` and `postgres` under `/usr/lib/postgresql/<major>/bin/`),
//! not from a download or a container: the lab must run where its tests run.
//! [`Cluster::start`] makes a fresh data folder with `initdb`, writes settings
//! for a small shared box, starts `postgres` on a free loopback port and waits
//! until it accepts connections; [`Cluster::stop`] shuts it down fast and, past
//! a bound, kills it; [`Cluster::restart_with`] stops it and starts it again on
//! the same port and data (what a database restart looks like to its clients). The server also dies with its owner, even after SIGKILL
//! (the `server` module explains the death signal and the guardian thread),
//! and PostgreSQL's refusal to run as root is met by running it as an
//! unprivileged user (`nobody` by default) when the owner is root (the
//! `account` module). `docs/pgcluster.md` is the guide.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pgcluster::Error> {
//! let pg = pgcluster::Cluster::start(pgcluster::Options::new("lab-out/postgres")).await?;
//! pg.create_database("market").await?;
//! println!("{}", pg.url_for("market")); // postgres://lab:…@127.0.0.1:PORT/market
//! pg.stop().await?;
//! # Ok(()) }
//! ```

mod account;
mod binaries;
mod cluster;
mod error;
mod procs;
mod server;
mod settings;

pub use binaries::{Binaries, BIN_DIR_ENV};
pub use cluster::{Cluster, Options};
pub use error::Error;
