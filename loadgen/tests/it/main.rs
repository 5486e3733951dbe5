//! End-to-end tests of loadgen against real local servers (in-process axum
//! on 127.0.0.1:0) and, where the process boundary matters (exit codes,
//! signals, files), the real `loadgen` binary. One module per topic.

mod support;

mod builtin;
mod csv;
mod dashboard;
mod exit_codes;
mod faults;
mod hostile;
mod latency;
mod lifecycle;
mod merge;
mod open_model;
mod outputs;
mod warnings;
