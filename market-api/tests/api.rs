//! Integration tests: real HTTP on 127.0.0.1:0 against real SQLite files in
//! temporary directories, one module per topic. `processes` runs the built
//! binary (two replicas on one database, SIGTERM with a request in flight).

mod api {
    pub mod auth;
    pub mod comments;
    pub mod errors;
    pub mod options;
    pub mod processes;
    pub mod products;
    pub mod support;
    pub mod users;
}
