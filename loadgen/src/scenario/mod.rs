//! What simulated users do: user classes, tasks, requests and think time.
//!
//! This is the data model every scenario ends up as, whichever way it was
//! written: a YAML/TOML file (`file`), the built-in `market-api` scenario
//! (`builtin`, written with the Rust API below), or quick mode (one URL).
//! The user loop in `users` interprets it; nothing here does I/O.
//!
//! Locust words are kept: a scenario has user classes (`UserClass`, with a
//! weight or a fixed count), each with `on_start`/`on_stop` steps, weighted or
//! sequential tasks and a wait time.

pub mod builtin;
pub mod capture;
pub mod file;
pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

pub use capture::JsonPath;
pub use template::Template;

/// An invalid scenario: where (file and line when known) and what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{message}", location(.file, *.line))]
pub struct ScenarioError {
    /// The scenario file, if the scenario came from one.
    pub file: Option<PathBuf>,
    /// 1-based line number, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn location(file: &Option<PathBuf>, line: Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{}:{l}: ", f.display()),
        (Some(f), None) => format!("{}: ", f.display()),
        (None, Some(l)) => format!("line {l}: "),
        (None, None) => String::new(),
    }
}

impl ScenarioError {
    /// An error without a location.
    pub fn new(message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: None,
            line: None,
            message: message.into(),
        }
    }
}

/// A complete scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Shown in reports (`market-api`, the file name, or `GET URL` in quick mode).
    pub name: String,
    /// Default target (`--host` overrides it).
    pub host: Option<String>,
    /// Default load settings from a file's `load:` section (flags override them).
    pub load: LoadDefaults,
    /// Thresholds written in the file (`--threshold` adds to them).
    pub thresholds: Vec<String>,
    /// The user classes; at least one.
    pub users: Vec<UserClass>,
}

/// Load settings a scenario file may carry; each is overridden by its flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadDefaults {
    /// `-u`
    pub users: Option<u32>,
    /// `-r`
    pub spawn_rate: Option<f64>,
    /// `-t`
    pub run_time: Option<Duration>,
    /// `--iterations`
    pub iterations: Option<u64>,
    /// `--arrival-rate`
    pub arrival_rate: Option<f64>,
    /// `--stages`
    pub stages: Option<String>,
    /// `--timeout`
    pub timeout: Option<Duration>,
}

/// A kind of simulated user (Locust's `User` class).
#[derive(Debug, Clone)]
pub struct UserClass {
    /// Class name, for display.
    pub name: String,
    /// Relative share of spawned users (ignored when `fixed_count` is set).
    pub weight: u32,
    /// Exactly this many users of this class (Locust's `fixed_count`).
    pub fixed_count: Option<u32>,
    /// Think time between tasks.
    pub wait: WaitTime,
    /// Variables every user of this class starts with.
    pub vars: BTreeMap<String, String>,
    /// Run once when the user starts (login).
    pub on_start: Vec<Step>,
    /// Run once when the user stops.
    pub on_stop: Vec<Step>,
    /// The tasks; at least one.
    pub tasks: Vec<Task>,
    /// Run tasks in order (Locust's `SequentialTaskSet`) instead of picking by weight.
    pub sequential: bool,
}

/// Locust's wait times, applied after each task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitTime {
    /// No wait: the next task starts at once (wrk-like).
    None,
    /// `between(a, b)`: uniform random seconds.
    Between(f64, f64),
    /// `constant(s)`.
    Constant(f64),
    /// `constant_pacing(s)`: each task *starts* every `s` seconds.
    ConstantPacing(f64),
    /// `constant_throughput(n)`: n tasks per second per user (pacing of 1/n s).
    ConstantThroughput(f64),
}

impl WaitTime {
    /// Parses `between(0, 1.9)`, `constant(1)`, `constant_pacing(2)`, `constant_throughput(0.5)`, `none`.
    pub fn parse(text: &str) -> Result<WaitTime, String> {
        let t = text.trim();
        if t == "none" || t == "0" {
            return Ok(WaitTime::None);
        }
        let (name, args) = t
            .split_once('(')
            .and_then(|(n, rest)| rest.strip_suffix(')').map(|a| (n.trim(), a)))
            .ok_or_else(|| {
                format!("wait time {t:?}: expected between(a, b), constant(s), constant_pacing(s), constant_throughput(n) or none")
            })?;
        let nums: Result<Vec<f64>, _> = args.split(',').map(|a| a.trim().parse::<f64>()).collect();
        let nums = nums.map_err(|_| format!("wait time {t:?}: arguments must be numbers"))?;
        if nums.iter().any(|n| !n.is_finite() || *n < 0.0) {
            return Err(format!(
                "wait time {t:?}: arguments must be finite and >= 0"
            ));
        }
        match (name, nums.as_slice()) {
            ("between", [a, b]) if a <= b => Ok(WaitTime::Between(*a, *b)),
            ("between", [_, _]) => Err(format!("wait time {t:?}: a must be <= b")),
            ("constant", [s]) => Ok(WaitTime::Constant(*s)),
            ("constant_pacing", [s]) if *s > 0.0 => Ok(WaitTime::ConstantPacing(*s)),
            ("constant_throughput", [n]) if *n > 0.0 => Ok(WaitTime::ConstantThroughput(*n)),
            _ => Err(format!("wait time {t:?}: wrong function or argument count")),
        }
    }

    /// True for the paced kinds, whose latency is measured from the due time.
    pub fn is_paced(&self) -> bool {
        matches!(
            self,
            WaitTime::ConstantPacing(_) | WaitTime::ConstantThroughput(_)
        )
    }
}

/// A task: a named list of steps with a weight.
#[derive(Debug, Clone)]
pub struct Task {
    /// Task name, for display.
    pub name: String,
    /// Relative probability of being picked.
    pub weight: u32,
    /// What it does.
    pub steps: Vec<Step>,
}

impl Task {
    /// A task with `weight` and `steps`.
    pub fn new(name: impl Into<String>, weight: u32, steps: Vec<Step>) -> Task {
        Task {
            name: name.into(),
            weight,
            steps,
        }
    }
}

/// One step of a task.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send a request.
    Request(Box<RequestSpec>),
    /// `for VAR in FROM..TO` (inclusive): run `steps` with `VAR` set to each value.
    Loop {
        /// Loop variable.
        var: String,
        /// First value.
        from: i64,
        /// Last value (inclusive).
        to: i64,
        /// Body.
        steps: Vec<Step>,
    },
}

impl From<RequestSpec> for Step {
    fn from(r: RequestSpec) -> Step {
        Step::Request(Box::new(r))
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// JSON text (a JSON-escaping template); sent with `content-type: application/json`.
    Json(Template),
    /// Form fields; sent url-encoded.
    Form(Vec<(String, Template)>),
    /// Raw text.
    Raw(Template),
}

/// A check on a response; a failed check counts the request as failed (kind `check`).
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The status must be one of these (default: any status below 400 passes, Locust's rule).
    Status(Vec<u16>),
    /// The body must contain this text.
    BodyContains(String),
    /// The JSON body must have a value at this path.
    JsonExists(JsonPath),
}

/// One HTTP request.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Method.
    pub method: Method,
    /// Path and query, relative to the host (a template).
    pub path: Template,
    /// Extra headers (values are templates).
    pub headers: Vec<(HeaderName, Template)>,
    /// The body.
    pub body: Body,
    /// Name for statistics; `None` means the rendered path (Locust's rule).
    pub name: Option<String>,
    /// Variables set from the JSON response.
    pub captures: Vec<(String, JsonPath)>,
    /// Checks; failing one makes the request a failure.
    pub checks: Vec<Check>,
}

impl RequestSpec {
    /// A request with `method` and a path template.
    ///
    /// # Errors
    /// When the path template is invalid.
    pub fn new(method: Method, path: &str) -> Result<RequestSpec, ScenarioError> {
        let path = Template::parse(path).map_err(ScenarioError::new)?;
        Ok(RequestSpec {
            method,
            path,
            headers: Vec::new(),
            body: Body::Empty,
            name: None,
            captures: Vec::new(),
            checks: Vec::new(),
        })
    }

    /// `GET path`.
    pub fn get(path: &str) -> Result<RequestSpec, ScenarioError> {
        RequestSpec::new(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Result<RequestSpec, ScenarioError> {
        RequestSpec::new(Method::POST, path)
    }

    /// Sets the statistics name.
    pub fn name(mut self, name: &str) -> RequestSpec {
        self.name = Some(name.to_string());
        self
    }

    /// Adds a header whose value is a template.
    pub fn header(mut self, name: &str, value: &str) -> Result<RequestSpec, ScenarioError> {
        let n = HeaderName::try_from(name)
            .map_err(|_| ScenarioError::new(format!("invalid header name {name:?}")))?;
        let v = Template::parse(value).map_err(ScenarioError::new)?;
        if v.is_static() && HeaderValue::try_from(value).is_err() {
            return Err(ScenarioError::new(format!(
                "invalid header value {value:?}"
            )));
        }
        self.headers.push((n, v));
        Ok(self)
    }

    /// Sets a JSON body from a value whose strings may hold `{{placeholders}}`.
    pub fn json(mut self, body: &serde_json::Value) -> Result<RequestSpec, ScenarioError> {
        let text = body.to_string();
        self.body = Body::Json(Template::parse(&text).map_err(ScenarioError::new)?.json());
        Ok(self)
    }

    /// Captures `var` from the JSON response at `path`.
    pub fn capture(mut self, var: &str, path: &str) -> Result<RequestSpec, ScenarioError> {
        let p = JsonPath::parse(path).map_err(ScenarioError::new)?;
        self.captures.push((var.to_string(), p));
        Ok(self)
    }

    /// Adds a check.
    pub fn check(mut self, check: Check) -> RequestSpec {
        self.checks.push(check);
        self
    }

    /// True when the user needs the response body (captures or body checks).
    pub fn needs_body(&self) -> bool {
        !self.captures.is_empty()
            || self
                .checks
                .iter()
                .any(|c| matches!(c, Check::BodyContains(_) | Check::JsonExists(_)))
    }
}

impl UserClass {
    /// A class with weight 1, no wait, no on_start/on_stop.
    pub fn new(name: impl Into<String>, tasks: Vec<Task>) -> UserClass {
        UserClass {
            name: name.into(),
            weight: 1,
            fixed_count: None,
            wait: WaitTime::None,
            vars: BTreeMap::new(),
            on_start: Vec::new(),
            on_stop: Vec::new(),
            tasks,
            sequential: false,
        }
    }
}

impl Scenario {
    /// Quick mode: every user GETs `path_and_query` in a loop, without waiting.
    pub fn single_get(path_and_query: &str) -> Result<Scenario, ScenarioError> {
        let req = RequestSpec {
            path: Template::literal(path_and_query),
            ..RequestSpec::get("/")?
        };
        Ok(Scenario {
            name: format!("GET {path_and_query}"),
            host: None,
            load: LoadDefaults::default(),
            thresholds: Vec::new(),
            users: vec![UserClass::new(
                "QuickUser",
                vec![Task::new("get", 1, vec![req.into()])],
            )],
        })
    }

    /// Checks the structure: at least one class with at least one task,
    /// weights, and that every `{{var}}` used can be set by something.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.users.is_empty() {
            return Err(ScenarioError::new("the scenario has no user classes"));
        }
        for class in &self.users {
            if class.tasks.is_empty() {
                return Err(ScenarioError::new(format!(
                    "user class {:?} has no tasks",
                    class.name
                )));
            }
            if class.fixed_count.is_none() && class.weight == 0 {
                return Err(ScenarioError::new(format!(
                    "user class {:?} has weight 0",
                    class.name
                )));
            }
            if !class.sequential && class.tasks.iter().all(|t| t.weight == 0) {
                return Err(ScenarioError::new(format!(
                    "user class {:?}: all task weights are 0",
                    class.name
                )));
            }
            let mut known: Vec<String> = class.vars.keys().cloned().collect();
            let all_steps = class
                .on_start
                .iter()
                .chain(class.on_stop.iter())
                .chain(class.tasks.iter().flat_map(|t| t.steps.iter()));
            for s in all_steps.clone() {
                collect_defined(s, &mut known);
            }
            for s in all_steps {
                check_used(s, &known, &class.name)?;
            }
        }
        Ok(())
    }
}

fn collect_defined(step: &Step, known: &mut Vec<String>) {
    match step {
        Step::Request(r) => known.extend(r.captures.iter().map(|(v, _)| v.clone())),
        Step::Loop { var, steps, .. } => {
            known.push(var.clone());
            for s in steps {
                collect_defined(s, known);
            }
        }
    }
}

fn check_used(step: &Step, known: &[String], class: &str) -> Result<(), ScenarioError> {
    match step {
        Step::Request(r) => {
            let mut used: Vec<&str> = r.path.vars().collect();
            for (_, v) in &r.headers {
                used.extend(v.vars());
            }
            match &r.body {
                Body::Json(t) | Body::Raw(t) => used.extend(t.vars()),
                Body::Form(f) => {
                    for (_, t) in f {
                        used.extend(t.vars());
                    }
                }
                Body::Empty => {}
            }
            for u in used {
                if !known.iter().any(|k| k == u) {
                    return Err(ScenarioError::new(format!(
                        "user class {class:?}: {{{{{u}}}}} is never set (not in vars, not captured, not a loop variable)"
                    )));
                }
            }
            Ok(())
        }
        Step::Loop {
            from, to, steps, ..
        } => {
            if from > to {
                return Err(ScenarioError::new(format!(
                    "loop {from}..{to}: the start is after the end"
                )));
            }
            for s in steps {
                check_used(s, known, class)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_times_parse() {
        assert_eq!(
            WaitTime::parse("between(0, 1.9)").unwrap(),
            WaitTime::Between(0.0, 1.9)
        );
        assert_eq!(
            WaitTime::parse("constant(2)").unwrap(),
            WaitTime::Constant(2.0)
        );
        assert!(WaitTime::parse("constant_pacing(0.5)").unwrap().is_paced());
        assert!(WaitTime::parse("constant_throughput(3)")
            .unwrap()
            .is_paced());
        assert_eq!(WaitTime::parse("none").unwrap(), WaitTime::None);
        assert!(WaitTime::parse("between(2,1)").is_err());
        assert!(WaitTime::parse("between(1)").is_err());
        assert!(WaitTime::parse("sometimes(1)").is_err());
        assert!(WaitTime::parse("constant(-1)").is_err());
        assert!(WaitTime::parse("constant_pacing(0)").is_err());
    }

    #[test]
    fn validation_finds_unset_variables() {
        let r = RequestSpec::get("/x/{{nope}}").unwrap();
        let s = Scenario {
            name: "t".into(),
            host: None,
            load: LoadDefaults::default(),
            thresholds: vec![],
            users: vec![UserClass::new("U", vec![Task::new("t", 1, vec![r.into()])])],
        };
        let e = s.validate().unwrap_err();
        assert!(e.message.contains("{{nope}}"), "{e}");
    }
}
