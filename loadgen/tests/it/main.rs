//! loadgen's integration tests, one binary, one module per topic: runs
//! against real local servers (in-process axum on 127.0.0.1:0), the real
//! `loadgen` binary where the process boundary matters (exit codes, signals,
//! files), the dashboard's HTTP side (`web_api`) and the dashboard in headless
//! Chromium (`browser`, through `webdriver`). Shared helpers: `support`.

mod support;

mod browser;
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
mod web_api;
mod webdriver;
