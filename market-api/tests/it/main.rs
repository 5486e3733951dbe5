//! Integration tests, one binary (`it`) with a module per topic: real HTTP on
//! 127.0.0.1:0 against real SQLite files in temporary directories, in-process
//! router tests through `oneshot` ([`router`]), and the built binary as child
//! processes ([`processes`]: two replicas on one database, SIGTERM with a
//! request in flight, usage errors). Shared helpers live in [`support`].

mod auth;
mod comments;
mod errors;
mod hostile;
mod options;
mod processes;
mod products;
mod router;
mod support;
mod users;
