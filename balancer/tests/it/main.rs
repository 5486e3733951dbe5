//! The balancer end to end: real sockets, small real hyper backends, the
//! balancer in-process (and as a process where signals matter).

mod admin;
mod algorithms;
mod config_errors;
mod hostile;
mod hostile_conn;
mod http1;
mod hygiene;
mod queue;
mod reload;
mod retry;
mod support;
mod timeouts;
mod uploads;
mod upstream_framing;
