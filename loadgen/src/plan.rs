//! The validated test plan: what to run, against what, how hard, for how long.
//!
//! `Cli` → `TestPlan` (`from_cli`) does every check before anything runs, so
//! errors come early and whole. A `TestPlan` is also what the `lab` crate and
//! the dashboard build directly (`TestPlan::new`).

use std::path::Path;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::scenario::{builtin, Scenario};
use crate::threshold::Threshold;
pub use crate::units::{parse_host, Segment, Stage, Target};
use crate::Error;

/// The open model: iterations start at a rate, whatever the responses do.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Iterations per second at the start (constant when `stages` is empty).
    pub rate: f64,
    /// Ramping profile of the rate (k6's `ramping-arrival-rate`).
    pub stages: Vec<Stage>,
    /// Most iterations in flight; an arrival finding all busy is dropped and counted.
    pub max_vus: u32,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// Target base URL (`http://127.0.0.1:8000`).
    pub host: String,
    /// What users do.
    pub scenario: Scenario,
    /// Users at the end of spawning (closed model).
    pub users: u32,
    /// Users started per second; `f64::INFINITY` starts them all at once.
    pub spawn_rate: f64,
    /// Stop after this long (`None`: until stopped).
    pub run_time: Option<Duration>,
    /// Stop after this many task iterations in total.
    pub iterations: Option<u64>,
    /// Closed-model ramp profile (overrides `users`/`spawn_rate`).
    pub stages: Vec<Stage>,
    /// Open model, when set.
    pub arrival: Option<Arrival>,
    /// Per-request timeout (connect + response + body).
    pub timeout: Duration,
    /// This process's share of a distributed test.
    pub segment: Option<Segment>,
    /// Seed of every random choice (task picks, waits, `{{rand}}`).
    pub seed: u64,
    /// Balancer admin `/status` URL to poll and show.
    pub balancer_status: Option<String>,
    /// k6-style pass/fail criteria.
    pub thresholds: Vec<Threshold>,
    /// How long stopping users may take (on_stop), before they are dropped.
    pub stop_timeout: Duration,
}

impl TestPlan {
    /// The most users (or iterations in flight) this plan can have at once:
    /// each holds a connection, so this is how many sockets it may open.
    pub fn peak_concurrency(&self) -> u32 {
        let staged = self.stages.iter().map(|s| s.target).fold(0.0, f64::max) as u32;
        let open = self.arrival.as_ref().map_or(0, |a| a.max_vus);
        self.users.max(staged).max(open)
    }

    /// A plan with Locust's defaults: 1 user, spawn rate 1/s, no time limit, 60 s timeout.
    pub fn new(host: &str, scenario: Scenario) -> TestPlan {
        TestPlan {
            host: host.to_string(),
            scenario,
            users: 1,
            spawn_rate: 1.0,
            run_time: None,
            iterations: None,
            stages: Vec::new(),
            arrival: None,
            timeout: Duration::from_secs(60),
            segment: None,
            seed: 0x5eed,
            balancer_status: None,
            thresholds: Vec::new(),
            stop_timeout: Duration::from_secs(5),
        }
    }

    /// Checks the numbers and the host; the message says what is wrong.
    pub fn validate(&self) -> Result<Target, String> {
        let target = parse_host(&self.host)?;
        if self.arrival.is_none() && self.stages.is_empty() && self.users == 0 {
            return Err("the number of users must be at least 1".into());
        }
        if self.spawn_rate.is_nan() || self.spawn_rate <= 0.0 {
            return Err("the spawn rate must be above 0".into());
        }
        if self.timeout.is_zero() {
            return Err("the request timeout must be above 0".into());
        }
        if let Some(a) = &self.arrival {
            let bad = |r: f64| !r.is_finite() || r < 0.0;
            if bad(a.rate) || a.stages.iter().any(|s| bad(s.target)) {
                return Err("arrival rates must be finite and >= 0".into());
            }
            if a.rate == 0.0 && a.stages.iter().all(|s| s.target == 0.0) {
                return Err("the arrival rate must be above 0".into());
            }
            if a.max_vus == 0 {
                return Err("--max-vus must be at least 1".into());
            }
        }
        if let Some(s) = &self.segment {
            if s.count == 0 || s.index >= s.count {
                return Err("--segment must be I/N with 1 <= I <= N".into());
            }
        }
        if let Some(b) = &self.balancer_status {
            parse_host(b).map_err(|e| format!("--balancer-status: {e}"))?;
        }
        self.scenario.validate().map_err(|e| e.to_string())?;
        Ok(target)
    }

    /// Builds and validates the plan of a run from the command line.
    /// `require_host` is false for the dashboard, where the host can be typed in.
    pub fn from_cli(a: &RunArgs, require_host: bool) -> Result<TestPlan, Error> {
        let usage = |m: String| Error::Usage(m);
        let (scenario, quick_host) = match (&a.url, &a.scenario) {
            (Some(_), Some(_)) => {
                return Err(usage(
                    "give either a URL (quick mode) or -f SCENARIO, not both".into(),
                ))
            }
            (Some(url), None) => {
                let u = url::Url::parse(url).map_err(|e| usage(format!("invalid URL {url:?}: {e}")))?;
                parse_host(url).map_err(usage)?;
                let mut pq = u.path().to_string();
                if let Some(q) = u.query() {
                    pq.push('?');
                    pq.push_str(q);
                }
                let host = format!("{}://{}", u.scheme(), &u[url::Position::BeforeHost..url::Position::AfterPort]);
                (Scenario::single_get(&pq)?, Some(host))
            }
            (None, Some(f)) => match builtin::builtin(f, &a.email, &a.password) {
                Some(s) => (s, None),
                None => (crate::scenario::file::load(Path::new(f))?, None),
            },
            (None, None) => {
                return Err(usage(
                    "nothing to run: give a URL (quick mode) or -f SCENARIO (a YAML/TOML file or `market-api`)".into(),
                ))
            }
        };
        let quick = quick_host.is_some();
        let load = scenario.load.clone();
        let host = a
            .host
            .clone()
            .or(quick_host)
            .or_else(|| scenario.host.clone());
        let host = match host {
            Some(h) => h,
            None if !require_host => String::new(),
            None => {
                return Err(usage(
                    "no target: give --host URL (or `host:` in the scenario)".into(),
                ))
            }
        };
        let mut plan = TestPlan::new(&host, scenario);
        plan.users = a.users.or(load.users).unwrap_or(1);
        plan.spawn_rate =
            a.spawn_rate
                .or(load.spawn_rate)
                .unwrap_or(if quick { f64::INFINITY } else { 1.0 });
        // Stages given on the command line decide how long the run lasts: the
        // file's `run_time`/`iterations` (defaults for -t/-i) must not cut
        // them short. An explicit -t or -i still applies.
        let cli_stages = a.stages.is_some() || a.arrival_stages.is_some();
        plan.run_time = a.run_time.or(load.run_time.filter(|_| !cli_stages));
        plan.iterations = a.iterations.or(load.iterations.filter(|_| !cli_stages));
        plan.stages = match (&a.stages, &load.stages) {
            (Some(s), _) => s.0.clone(),
            (None, Some(text)) => {
                crate::units::parse_stages(text)
                    .map_err(|e| usage(format!("scenario load.stages: {e}")))?
                    .0
            }
            (None, None) => Vec::new(),
        };
        let rate = a.arrival_rate.or(load.arrival_rate);
        if rate.is_some() || a.arrival_stages.is_some() {
            if !plan.stages.is_empty() {
                return Err(usage(
                    "--stages (closed model) and an arrival rate (open model) exclude each other"
                        .into(),
                ));
            }
            plan.arrival = Some(Arrival {
                rate: rate.unwrap_or(0.0),
                stages: a.arrival_stages.clone().map(|s| s.0).unwrap_or_default(),
                max_vus: a.max_vus,
            });
        }
        plan.timeout = a
            .timeout
            .or(load.timeout)
            .unwrap_or(Duration::from_secs(60));
        plan.segment = a.segment;
        plan.seed = a.seed;
        plan.stop_timeout = a.stop_timeout;
        plan.balancer_status = a.balancer_status.clone();
        let texts = plan.scenario.thresholds.iter().chain(a.thresholds.iter());
        plan.thresholds = texts
            .map(|t| Threshold::parse(t))
            .collect::<Result<_, _>>()
            .map_err(usage)?;
        if require_host || !plan.host.is_empty() {
            plan.validate().map_err(usage)?;
        }
        Ok(plan)
    }

    /// The total duration of the stages, if any.
    pub fn stages_duration(stages: &[Stage]) -> Duration {
        stages.iter().map(|s| s.duration).sum()
    }
}

/// The value of a ramp profile at `t`, starting from `start`.
pub fn ramp_at(start: f64, stages: &[Stage], t: Duration) -> f64 {
    let mut from = start;
    let mut elapsed = Duration::ZERO;
    for s in stages {
        if t < elapsed + s.duration {
            let frac = (t - elapsed).as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
            return from + (s.target - from) * frac;
        }
        elapsed += s.duration;
        from = s.target;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_exactly() {
        for total in 0..20u64 {
            let sum: u64 = (0..3)
                .map(|i| Segment { index: i, count: 3 }.share(total))
                .sum();
            assert_eq!(sum, total);
        }
        let s = Segment { index: 1, count: 3 };
        assert_eq!(s.share(7), 2);
        assert_eq!(s.global(0), 1);
        assert_eq!(s.global(1), 4);
    }

    #[test]
    fn hosts_parse() {
        let t = parse_host("http://127.0.0.1:8081/").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8081");
        assert_eq!(t.base_path, "");
        let t = parse_host("http://localhost/api").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.base_path.as_str()),
            ("localhost:80", "/api")
        );
        let t = parse_host("http://[::1]:9/").unwrap();
        assert_eq!(t.authority, "[::1]:9");
        assert!(parse_host("https://x/").unwrap_err().contains("https"));
        assert!(parse_host("ftp://x/").is_err());
        assert!(parse_host("nonsense").is_err());
    }

    /// A file's `load.run_time` is the default of -t: it must not cut
    /// stages given on the command line, while -t and file stages still mix.
    #[test]
    fn command_line_stages_are_not_cut_by_the_files_run_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(
            &file,
            "host: http://127.0.0.1:9\nload: {users: 4, run_time: 3s, iterations: 50}\nusers:\n  - tasks:\n      - steps:\n          - get: /\n",
        )
        .unwrap();
        let plan = |extra: &[&str]| {
            let mut args = vec!["loadgen", "-f", file.to_str().unwrap(), "--headless"];
            args.extend_from_slice(extra);
            let cli = <crate::Cli as clap::Parser>::try_parse_from(args).unwrap();
            TestPlan::from_cli(&cli.run, true).unwrap()
        };
        let p = plan(&["--stages", "2s:4,2s:4,2s:0"]);
        assert_eq!((p.run_time, p.iterations), (None, None));
        assert_eq!(TestPlan::stages_duration(&p.stages), Duration::from_secs(6));
        let p = plan(&["--arrival-stages", "2s:10,2s:0"]);
        assert_eq!((p.run_time, p.iterations), (None, None));
        let p = plan(&["--stages", "2s:4,2s:0", "-t", "1s"]);
        assert_eq!(p.run_time, Some(Duration::from_secs(1)));
        let p = plan(&[]);
        assert_eq!(
            (p.run_time, p.iterations),
            (Some(Duration::from_secs(3)), Some(50))
        );
    }

    #[test]
    fn ramps_interpolate() {
        let st = [
            Stage {
                duration: Duration::from_secs(10),
                target: 100.0,
            },
            Stage {
                duration: Duration::from_secs(10),
                target: 0.0,
            },
        ];
        assert_eq!(ramp_at(0.0, &st, Duration::from_secs(5)), 50.0);
        assert_eq!(ramp_at(0.0, &st, Duration::from_secs(15)), 50.0);
        assert_eq!(ramp_at(0.0, &st, Duration::from_secs(25)), 0.0);
    }
}
