//! The command line, in Locust's words (`-f -H -u -r -t --headless --csv`),
//! plus wrk/oha's quick mode (`loadgen URL -u 32 -t 10s`) and `merge`.
//!
//! Value parsers (durations, stages, segments) live here with their tests;
//! `plan::TestPlan::from_cli` turns the parsed flags into a validated plan.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use crate::report::outputs::Outputs;
use crate::scenario::builtin;
use crate::units::Segment;
pub use crate::units::{
    parse_count, parse_duration, parse_positive_duration, parse_positive_rate, parse_rate,
    parse_segment, parse_stages, Stages,
};

/// Locust's user model and outputs, at wrk's speed, without coordinated omission.
#[derive(Debug, Clone, Parser)]
// `allow_negative_numbers`: `-u -1` reaches the value parser, which names
// the flag and the rule, instead of reading as an unknown flag `-1`.
#[command(
    name = "loadgen",
    version,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
pub struct Cli {
    /// `merge` (or nothing: run a test).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Run options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Combine the JSON results of several segments (`--segment I/N`) into exact totals.
    Merge(MergeArgs),
}

/// `loadgen merge A.json B.json ...`
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Result files written with `--json`.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub outputs: Outputs,
    /// Pass/fail criterion, e.g. `p99<300ms`, `fail_ratio<0.01`, `rps>1000@GET /x` (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

/// Options of a test run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Quick mode: load this one URL with GET requests (like wrk/oha); implies --headless.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Scenario: a YAML/TOML file, or a built-in name (`market-api`).
    #[arg(
        short = 'f',
        long = "locustfile",
        visible_alias = "scenario",
        value_name = "SCENARIO"
    )]
    pub scenario: Option<String>,
    /// Target base URL, e.g. http://127.0.0.1:8000 (overrides the scenario's host).
    #[arg(short = 'H', long, value_name = "URL")]
    pub host: Option<String>,
    /// Peak number of concurrent users [default: 1].
    #[arg(short = 'u', long = "users", value_name = "USERS")]
    pub users: Option<u32>,
    /// Users started per second [default: 1; quick mode: all at once].
    #[arg(short = 'r', long = "spawn-rate", value_parser = parse_positive_rate, value_name = "RATE")]
    pub spawn_rate: Option<f64>,
    /// Stop after this long, e.g. 30s, 5m, 1h30m [default: until Ctrl-C].
    #[arg(short = 't', long = "run-time", value_parser = parse_positive_duration, value_name = "TIME")]
    pub run_time: Option<Duration>,
    /// Stop after this many task iterations in total.
    #[arg(short = 'i', long, value_parser = parse_count, value_name = "N")]
    pub iterations: Option<u64>,
    /// Run without the web dashboard.
    #[arg(long)]
    pub headless: bool,
    /// Start the web dashboard (the default for scenario runs without --headless).
    #[arg(long)]
    pub web: bool,
    /// With the dashboard: start the test at once instead of waiting for the Start button.
    #[arg(long)]
    pub autostart: bool,
    /// Dashboard address.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub web_host: String,
    /// Dashboard port (0 picks a free one).
    #[arg(long, default_value_t = 8089, value_name = "PORT")]
    pub web_port: u16,
    #[command(flatten)]
    pub outputs: Outputs,
    /// Only print the end summary, not the live table.
    #[arg(long)]
    pub only_summary: bool,
    /// Balancer admin /status URL to poll: the dashboard and the HTML report show each server's share.
    #[arg(long, value_name = "URL")]
    pub balancer_status: Option<String>,
    /// Closed-model ramp profile DURATION:USERS,... e.g. `10s:50,30s:50,10s:0`.
    #[arg(long, value_parser = parse_stages, value_name = "STAGES")]
    pub stages: Option<Stages>,
    /// Open model: start this many iterations per second, whatever the responses do.
    #[arg(long, value_parser = parse_rate, value_name = "PER_SECOND")]
    pub arrival_rate: Option<f64>,
    /// Open model ramp DURATION:RATE,... starting from --arrival-rate (default 0).
    #[arg(long, value_parser = parse_stages, value_name = "STAGES")]
    pub arrival_stages: Option<Stages>,
    /// Open model: most iterations in flight; arrivals beyond are dropped and counted.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_vus: u32,
    /// Per-request timeout [default: 60s].
    #[arg(long, value_parser = parse_positive_duration, value_name = "TIME")]
    pub timeout: Option<Duration>,
    /// Pass/fail criterion, e.g. `p99<300ms`, `fail_ratio<0.01`, `rps>1000@GET /x` (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Run share I of N of the test (1-based), for distributed runs; merge the JSON results after.
    #[arg(long, value_parser = parse_segment, value_name = "I/N")]
    pub segment: Option<Segment>,
    /// Seed of all random choices (task picks, think times, {{rand}}).
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Time users get to finish on_stop when stopping.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "TIME")]
    pub stop_timeout: Duration,
    /// Login e-mail for the built-in market-api scenario.
    #[arg(long, env = "LOADGEN_EMAIL", default_value = builtin::DEFAULT_EMAIL)]
    pub email: String,
    /// Login password for the built-in market-api scenario.
    #[arg(long, env = "LOADGEN_PASSWORD", default_value = builtin::DEFAULT_PASSWORD, hide_env_values = true)]
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Stage;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn stages_and_segments() {
        let s = parse_stages("10s:50, 30s:50,10s:0").unwrap().0;
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            Stage {
                duration: Duration::from_secs(10),
                target: 50.0
            }
        );
        assert!(parse_stages("10s").is_err());
        assert!(parse_stages("0s:5").is_err());
        assert!(parse_stages("10s:-1").is_err());
        assert!(parse_stages("").is_err());
        assert_eq!(
            parse_segment("2/4").unwrap(),
            Segment { index: 1, count: 4 }
        );
        assert!(parse_segment("0/4").is_err());
        assert!(parse_segment("5/4").is_err());
        assert!(parse_segment("x").is_err());
    }

    #[test]
    fn locust_flags_and_quick_mode_parse() {
        let c = Cli::try_parse_from([
            "loadgen",
            "-f",
            "market-api",
            "-H",
            "http://127.0.0.1:8000",
            "-u",
            "10",
            "-r",
            "2",
            "-t",
            "30s",
            "--headless",
            "--csv",
            "out",
        ])
        .unwrap();
        assert_eq!(c.run.users, Some(10));
        assert_eq!(c.run.run_time, Some(Duration::from_secs(30)));
        assert!(c.command.is_none());
        let c = Cli::try_parse_from(["loadgen", "http://127.0.0.1:8081/", "-u", "32", "-t", "10s"])
            .unwrap();
        assert_eq!(c.run.url.as_deref(), Some("http://127.0.0.1:8081/"));
        let c = Cli::try_parse_from(["loadgen", "merge", "a.json", "b.json"]).unwrap();
        assert!(matches!(c.command, Some(Command::Merge(m)) if m.files.len() == 2));
        assert!(Cli::try_parse_from(["loadgen", "-u", "x"]).is_err());
    }
}
