//! End-to-end tests of the `lab` binary: real processes, real sockets, a
//! real SQLite file in a temporary folder (or a throwaway PostgreSQL). One binary, a module per topic.

mod compare;
mod demo;
mod failures;
mod manifests;
mod multi_host;
mod netns;
mod postgres;
mod scale;
mod support;
mod up;
