//! Integration tests, one binary (`it`) with a module per topic: real HTTP on
//! 127.0.0.1:0 against real databases, each test once on a SQLite file in a
//! temporary directory and once on a fresh database of a throwaway
//! PostgreSQL cluster (see [`on_both_backends!`]), in-process
//! router tests through `oneshot` ([`router`]), and the built binary as child
//! processes ([`processes`]: two replicas on one database, SIGTERM with a
//! request in flight, usage errors). Shared helpers live in [`support`].

/// Runs each listed `async fn NAME(backend: Backend)` as two tests,
/// `NAME::sqlite` and `NAME::postgres`: the suite is written once, as
/// functions of the backend, and pinned on both (`cargo test -p market-api
/// --test it -- postgres` runs one half). A function left off the list is
/// dead code, which clippy refuses.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )+};
}

mod auth;
mod comments;
mod errors;
mod hostile;
mod options;
mod postgres;
mod processes;
mod products;
mod router;
mod support;
mod users;
