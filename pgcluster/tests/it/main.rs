//! pgcluster's integration tests: real PostgreSQL servers from the machine's
//! binaries, real `psql`, real child processes; one module per topic.

mod lifecycle;
mod serving;
mod setup;
mod support;
