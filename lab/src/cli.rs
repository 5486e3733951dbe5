//! Command-line interface: `lab compare`, `lab up`, `lab demo`, and the hidden
//! roles the lab re-executes itself in (`lab market-api …`, `lab balancer …`).
//!
//! The hidden roles forward their raw arguments to the other crates' own
//! clap parsers, so a fresh clone needs exactly one binary: the lab spawns
//! `current_exe() market-api serve …` for every replica and
//! `current_exe() balancer …` for the balancer.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Market Lab: how many users can one API server take, and what does a
/// balancer in front of N replicas change?
#[derive(Debug, Parser)]
#[command(name = "lab", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The lab's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure one replica directly against N replicas behind the balancer,
    /// stepping the load up until the service-level objective breaks.
    Compare(CompareArgs),
    /// Start replicas, balancer and the load generator's dashboard, print the
    /// URLs and keep running until Ctrl-C.
    Up(UpArgs),
    /// A guided tour in five chapters that measures what the tutorial claims.
    Demo(DemoArgs),
    /// Measure capacity at several replica counts with the same objective and
    /// method, and fit the Universal Scalability Law: where does adding
    /// replicas stop paying?
    Scale(ScaleArgs),
    /// (internal) Run as a market-api process: `lab market-api serve …`.
    #[command(name = "market-api", hide = true, disable_help_flag = true)]
    MarketApi(RoleArgs),
    /// (internal) Run as a balancer process: `lab balancer …`.
    #[command(hide = true, disable_help_flag = true)]
    Balancer(RoleArgs),
}

/// Raw arguments forwarded to another crate's parser.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// Everything after the role name, passed on untouched.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// A CPU budget per replica: a fraction of one core, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CpuBudget {
    /// No quota: every replica may use every core (the honest one-box result).
    None,
    /// At most this many cores per replica (e.g. 0.25).
    Cores(f64),
}

impl CpuBudget {
    /// The budget in cores, if any.
    pub fn cores(self) -> Option<f64> {
        match self {
            CpuBudget::None => None,
            CpuBudget::Cores(c) => Some(c),
        }
    }
}

impl std::fmt::Display for CpuBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuBudget::None => f.write_str("none"),
            CpuBudget::Cores(c) => write!(f, "{c}"),
        }
    }
}

/// Parses `none` or a positive fraction of a core (`0.25`, `1`, `1.5`).
pub fn parse_cpu_budget(s: &str) -> Result<CpuBudget, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("off") {
        return Ok(CpuBudget::None);
    }
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{s}` is not a number of cores (try 0.25) or `none`"))?;
    if !v.is_finite() || !(0.01..=1024.0).contains(&v) {
        return Err(format!(
            "`{s}`: a CPU budget must be between 0.01 and 1024 cores"
        ));
    }
    Ok(CpuBudget::Cores(v))
}

/// Parses a human duration (`500ms`, `5s`, `1m`), refusing zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration_or_zero(s)?;
    if d.is_zero() {
        return Err(format!("`{s}`: the duration must be greater than zero"));
    }
    Ok(d)
}

/// Parses a duration where `0s` means "none" (`--confirm 0s`).
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration (try 5s or 500ms): {e}"))
}

/// Parses a percentage (`1`, `0.5`, `1%`) in 0..=100.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage (try 1 or 0.5%)"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("`{s}`: a percentage must be between 0 and 100"));
    }
    Ok(v)
}

/// Checks an algorithm with the balancer's own parser (the one its
/// `--algorithm` flag uses), so a typo fails here, before the lab seeds a
/// database and starts replicas, with the balancer's message.
pub fn parse_algorithm(s: &str) -> Result<String, String> {
    match s.parse::<balancer::config::Algorithm>() {
        Ok(_) => Ok(s.to_string()),
        Err(why) => Err(format!(
            "{why} (try round_robin, least_conn, ip_hash, hash:KEY, random, random_two, random_two_least_conn, least_time or p2c_ewma)"
        )),
    }
}

/// Parses a load: a whole number of users (closed model) or of iterations
/// per second (open model), at least 1. The search steps through whole
/// numbers, so `0.5` is refused with what to write instead.
pub fn parse_load(s: &str) -> Result<u32, String> {
    let t = s.trim();
    match t.parse::<u32>() {
        Ok(0) => Err(format!(
            "`{s}`: the load must be at least 1 (users, or iterations/s with --model open)"
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(format!(
            "`{s}` is not a whole number: the load counts users (closed model) or iterations per second (--model open), from 1 up, e.g. 10"
        )),
    }
}

/// How the load is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// Closed model (Locust's): a number of users, each waiting between tasks.
    Closed,
    /// Open model: a fixed arrival rate of scenario iterations per second.
    Open,
}

/// Where the replicas keep their data (`--database`).
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseChoice {
    /// A SQLite file: the one given, or `market.db` in the run folder.
    Sqlite(Option<PathBuf>),
    /// A throwaway PostgreSQL cluster started (and stopped) by the lab.
    Postgres,
    /// An existing PostgreSQL server, by URL (possibly on another host).
    PostgresUrl(String),
}

impl DatabaseChoice {
    /// Whether the replicas run on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        !matches!(self, DatabaseChoice::Sqlite(_))
    }
}

/// `sqlite`, `postgres`, `postgres://…`/`postgresql://…`, or a SQLite file.
pub fn parse_database(s: &str) -> Result<DatabaseChoice, String> {
    match s {
        "" => Err("expected sqlite, postgres, a postgres:// URL or a SQLite file".into()),
        "sqlite" => Ok(DatabaseChoice::Sqlite(None)),
        "postgres" | "postgresql" => Ok(DatabaseChoice::Postgres),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(DatabaseChoice::PostgresUrl(url.to_string()))
        }
        file => Ok(DatabaseChoice::Sqlite(Some(PathBuf::from(
            file.strip_prefix("sqlite://").unwrap_or(file),
        )))),
    }
}

/// What every command that starts the stack needs.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// Number of market-api replicas behind the balancer.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// CPU budget per replica in cores (cgroup CPU quota), or `none`.
    /// A budget models N separate servers on one machine. With the tools
    /// kept apart (no --no-pin) it is lowered where the replicas running at
    /// once would not all get it on the CPUs left to them (0.18 for the
    /// five of `compare --replicas 4` on 2 cores); the report says so.
    #[arg(long, default_value = "0.25", value_parser = parse_cpu_budget)]
    pub replica_cpus: CpuBudget,
    /// Tokio worker threads per replica (default: 1 with a CPU budget below
    /// one core, the replica's own default otherwise).
    #[arg(long)]
    pub replica_workers: Option<u16>,
    /// Let the load generator and the balancer share CPUs with the replicas.
    /// By default, with a CPU budget, they run on the first half of the
    /// CPUs and the replicas on the rest, so the two never take turns
    /// inside the replicas' CFS periods (a source of run-to-run variance).
    #[arg(long)]
    pub no_pin: bool,
    /// Balancing algorithm (any of the balancer's: round_robin, least_conn,
    /// ip_hash, hash:KEY, random, random_two, random_two_least_conn,
    /// least_time, p2c_ewma).
    #[arg(long, default_value = "round_robin", value_parser = parse_algorithm)]
    pub algorithm: String,
    /// The database the replicas share: `sqlite` (a `market.db` in the
    /// output folder), a SQLite FILE, `postgres` (a throwaway PostgreSQL
    /// cluster for the run, from Debian's `postgresql` server binaries), or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (an existing server). Migrated
    /// and seeded once by the lab.
    #[arg(long, default_value = "sqlite", value_parser = parse_database)]
    pub database: DatabaseChoice,
    /// Database connections per replica (`market-api serve --pool-size`); a
    /// lab-started PostgreSQL gets replicas × this + a few `max_connections`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub pool_size: u16,
    /// Output folder; each run writes into a `<timestamp>` folder inside it.
    #[arg(long, default_value = "lab-out")]
    pub out: PathBuf,
    /// How long a process may take to announce its address.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub startup_timeout: Duration,
    /// Extra argument for every replica's `serve` (repeatable), e.g.
    /// `--replica-arg=--fault-delay=20ms`.
    #[arg(long = "replica-arg", allow_hyphen_values = true, value_name = "ARG")]
    pub replica_args: Vec<String>,
    /// Extra argument for the balancer (repeatable), e.g.
    /// `--balancer-arg=--queue=100`.
    #[arg(long = "balancer-arg", allow_hyphen_values = true, value_name = "ARG")]
    pub balancer_args: Vec<String>,
}

/// `lab compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The stack to measure.
    #[command(flatten)]
    pub stack: StackArgs,
    /// How each capacity search runs.
    #[command(flatten)]
    pub search: SearchArgs,
}

/// The capacity search's flags, shared by `compare` and `scale`.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Scenario: `market-api` (built in) or a scenario file.
    #[arg(short = 'f', long, default_value = "market-api")]
    pub scenario: String,
    /// Closed model (users) or open model (arrival rate).
    #[arg(long, value_enum, default_value_t = LoadModel::Closed)]
    pub model: LoadModel,
    /// First load step: a whole number of users (closed) or of
    /// iterations/s (open), at least 1. With CPU budgets a group of N
    /// replicas starts at N times this.
    #[arg(long, default_value = "10", value_parser = parse_load)]
    pub start_load: u32,
    /// Never go above this load (a whole number, as --start-load).
    #[arg(long, default_value = "2000", value_parser = parse_load)]
    pub max_load: u32,
    /// Multiply the load by this much after a step that kept the objective.
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// After the objective broke, bisect between the last good load and the
    /// broken one until the gap is 1/2^N of a growth step, in at most N
    /// steps (3: an eighth, 5 users below 80 when the growth doubles).
    #[arg(long, default_value_t = 3)]
    pub refine: u32,
    /// At most this many steps per run (single and group each).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_steps: u32,
    /// Length of each step's measurement window (after the ramp and warm-up).
    /// A whole number of 10 ms CFS periods.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    pub step_duration: Duration,
    /// Length of the window of the steps that narrow the capacity down, once
    /// a step has broken the objective. Default: twice --step-duration. Near
    /// the knee a login queue grows slowly, and reaches the request timeout
    /// only after several seconds: a short window there keeps loads that a
    /// longer one breaks. A whole number of 10 ms CFS periods.
    #[arg(long, value_parser = parse_duration)]
    pub refine_duration: Option<Duration>,
    /// After the search, each side is measured once more at its capacity for
    /// this long, and its capacity figures (goodput, req/s, latency) come
    /// from that window: the search's short windows decide the load, a long
    /// one measures it (a 4 s window at capacity varies by ±15% from one run
    /// to the next, mostly with the number of logins it happens to hold).
    /// When that window breaks the objective, the capacity steps down by the
    /// search's last gap and is measured again (three windows at most). `0s`
    /// keeps the search's step. A whole number of 10 ms CFS periods.
    #[arg(long, default_value = "20s", value_parser = parse_duration_or_zero)]
    pub confirm: Duration,
    /// Users started per second and per replica when a step adds users (the
    /// group, with N replicas, adds them N times as fast). Each new user logs
    /// in first, an argon2 hash of about 20 ms of CPU, so the default is 20
    /// users/s per core of a replica's CPU budget (5/s at 0.25): joining
    /// users then take under half the budget instead of timing out.
    #[arg(long)]
    pub spawn_rate: Option<f64>,
    /// Time after the ramp before the measurement window opens (more if the
    /// latest second still breaks the objective, up to --settle-max).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest wait for a step to settle after its ramp (backlogs of the
    /// previous step, logins of new users) before measuring anyway.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub settle_max: Duration,
    /// Per-request timeout; a request not answered in time is a failure.
    /// Default: 4 × --slo-p95 (at least 1 s), so a stuck server shows up as
    /// failures within the step instead of as requests that never finished.
    #[arg(long, value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Objective: at most this percentage of requests may fail, over all
    /// requests and on every route (by request name), so failing logins are
    /// not hidden by the many reads around them.
    #[arg(long, default_value = "1", value_parser = parse_percent)]
    pub slo_failures: f64,
    /// Objective: the 95th percentile must stay at or below this.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub slo_p95: Duration,
    /// Do not write the HTML report.
    #[arg(long)]
    pub no_html: bool,
    /// Run each search this many times (interleaved: both sides in the
    /// same windows) and report the median and range.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
}

/// `lab scale`.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// Replica counts to measure, comma-separated (each behind its own balancer).
    #[arg(long = "replicas", value_delimiter = ',', default_value = "1,2,4,8",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub counts: Vec<u16>,
    /// CPU budget per replica in cores, or `none` (default: one core shared
    /// by the largest count, e.g. 0.125 for 8, so it fits on a 2-core box
    /// beside the balancer and the load generator).
    #[arg(long, value_parser = parse_cpu_budget)]
    pub replica_cpus: Option<CpuBudget>,
    /// Balancing algorithm (as for `compare`).
    #[arg(long, default_value = "round_robin", value_parser = parse_algorithm)]
    pub algorithm: String,
    /// Output folder; each run writes into a `<timestamp>` folder inside it.
    #[arg(long, default_value = "lab-out")]
    pub out: PathBuf,
    /// The database (as for `compare`: `sqlite`, a FILE, `postgres` or a
    /// `postgres://` URL).
    #[arg(long, default_value = "sqlite", value_parser = parse_database)]
    pub database: DatabaseChoice,
    /// Database connections per replica (as for `compare`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub pool_size: u16,
    /// Let the load generator and the balancer share CPUs with the
    /// replicas (see `compare --help`).
    #[arg(long)]
    pub no_pin: bool,
    /// How each capacity search runs.
    #[command(flatten)]
    pub search: SearchArgs,
}

impl SearchArgs {
    /// `--refine-duration`, or twice `--step-duration`.
    pub fn refine_window(&self) -> Duration {
        self.refine_duration.unwrap_or(self.step_duration * 2)
    }
}

impl ScaleArgs {
    /// The stack to start: the largest count of replicas, no single one.
    pub fn stack(&self) -> StackArgs {
        let max = self.counts.iter().copied().max().unwrap_or(1);
        StackArgs {
            replicas: max,
            replica_cpus: self
                .replica_cpus
                .unwrap_or(CpuBudget::Cores(1.0 / f64::from(max))),
            replica_workers: None,
            no_pin: self.no_pin,
            algorithm: self.algorithm.clone(),
            database: self.database.clone(),
            pool_size: self.pool_size,
            out: self.out.clone(),
            startup_timeout: Duration::from_secs(30),
            replica_args: Vec::new(),
            balancer_args: Vec::new(),
        }
    }
}

/// `lab up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The stack to start.
    #[command(flatten)]
    pub stack: StackArgs,
    /// Address for the balancer (default: a free loopback port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Address for the balancer's admin endpoint.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin: String,
    /// Address for the load generator's dashboard.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub web: String,
    /// Stop by itself after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// `lab demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Run only these chapters (1-5; repeatable; default all).
    #[arg(long = "chapter", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub chapters: Vec<u8>,
    /// Length of each measured run inside a chapter.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub run_time: Duration,
    /// Users for the fixed-load runs (chapters 2-5).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub users: u32,
    /// The stack (replica count, budget, output folder…).
    #[command(flatten)]
    pub stack: StackArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_budget_parses_none_and_fractions() {
        assert_eq!(parse_cpu_budget("none"), Ok(CpuBudget::None));
        assert_eq!(parse_cpu_budget("0.25"), Ok(CpuBudget::Cores(0.25)));
        assert!(parse_cpu_budget("0").is_err());
        assert!(parse_cpu_budget("-1").is_err());
        assert!(parse_cpu_budget("abc").is_err());
        assert!(parse_cpu_budget("NaN").is_err());
    }

    #[test]
    fn durations_and_percentages() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_percent("1%"), Ok(1.0));
        assert!(parse_percent("101").is_err());
    }

    #[test]
    fn algorithms_are_the_balancers_and_loads_whole_numbers() {
        assert_eq!(parse_algorithm("least_conn"), Ok("least_conn".into()));
        assert_eq!(
            parse_algorithm("hash:$request_uri"),
            Ok("hash:$request_uri".into())
        );
        let e = parse_algorithm("bogus").unwrap_err();
        assert!(e.starts_with("unknown algorithm \"bogus\""), "{e}");
        let e = parse_algorithm("hash:$nonsense").unwrap_err();
        assert!(e.contains("nonsense"), "{e}");
        assert_eq!(parse_load("12"), Ok(12));
        assert!(parse_load("0").unwrap_err().contains("at least 1"));
        let e = parse_load("0.5").unwrap_err();
        assert!(
            e.contains("not a whole number") && e.contains("iterations per second"),
            "{e}"
        );
        let e = Cli::try_parse_from(["lab", "compare", "--algorithm", "bogus"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown algorithm"), "{e}");
    }

    #[test]
    fn roles_forward_raw_arguments() {
        let cli = Cli::parse_from([
            "lab",
            "market-api",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--help",
        ]);
        match cli.command {
            Command::MarketApi(r) => {
                assert_eq!(r.args, ["serve", "--bind", "127.0.0.1:0", "--help"])
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::parse_from(["lab", "balancer", "--upstream", "127.0.0.1:1,weight=2"]);
        assert!(matches!(cli.command, Command::Balancer(r) if r.args.len() == 2));
    }

    #[test]
    fn compare_defaults_and_repeatable_extra_args() {
        let cli = Cli::parse_from([
            "lab",
            "compare",
            "--replicas",
            "2",
            "--replica-arg=--fault-delay=5ms",
            "--replica-arg",
            "--workers=1",
        ]);
        let Command::Compare(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.stack.replicas, 2);
        assert_eq!(c.stack.replica_cpus, CpuBudget::Cores(0.25));
        assert_eq!(c.stack.replica_args, ["--fault-delay=5ms", "--workers=1"]);
        assert_eq!(c.search.slo_p95, Duration::from_millis(500));
        assert_eq!(c.search.step_duration, Duration::from_secs(4));
        assert_eq!(c.search.confirm, Duration::from_secs(20));
        let Command::Compare(c) = Cli::parse_from(["lab", "compare", "--confirm", "0s"]).command
        else {
            panic!()
        };
        assert!(c.search.confirm.is_zero(), "0s: no confirmation");
        assert_eq!(c.search.repeat, 1);
        let Command::Scale(s) = Cli::parse_from(["lab", "scale"]).command else {
            panic!()
        };
        assert_eq!(s.counts, [1, 2, 4, 8]);
        // The largest count shares one core.
        assert_eq!(s.stack().replica_cpus, CpuBudget::Cores(0.125));
        assert!(Cli::try_parse_from(["lab", "compare", "--replicas", "0"]).is_err());
    }
}
