//! Scenario files: YAML (or TOML, by the `.toml` extension) into a `Scenario`.
//!
//! Parsing happens in two passes: serde reads the text into the `Raw*`
//! structs below (unknown keys and wrong types are rejected there, with the
//! parser's line number), then `convert` checks the meaning (methods, paths,
//! templates, loops, wait times) and reports the line where the offending
//! text appears. Every error names `file:line`.
//!
//! The format is documented with an example in `docs/loadgen.md`; the
//! tutorial's scenario is `loadgen/scenarios/market-api.yaml`.

use std::collections::BTreeMap;
use std::path::Path;

use http::Method;
use serde::Deserialize;

use super::{
    Body, Check, JsonPath, LoadDefaults, RequestSpec, Scenario, ScenarioError, Step, Task,
    Template, UserClass, WaitTime,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    host: Option<String>,
    #[serde(default)]
    load: RawLoad,
    #[serde(default)]
    thresholds: Vec<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    users: Vec<RawUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    users: Option<u32>,
    spawn_rate: Option<f64>,
    run_time: Option<String>,
    iterations: Option<u64>,
    arrival_rate: Option<f64>,
    stages: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Option<String>,
    weight: Option<u32>,
    count: Option<u32>,
    wait: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    on_start: Vec<RawStep>,
    #[serde(default)]
    on_stop: Vec<RawStep>,
    #[serde(default)]
    sequential: bool,
    tasks: Vec<RawTask>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    name: Option<String>,
    weight: Option<u32>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    get: Option<String>,
    post: Option<String>,
    put: Option<String>,
    patch: Option<String>,
    delete: Option<String>,
    head: Option<String>,
    options: Option<String>,
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    json: Option<serde_json::Value>,
    form: Option<BTreeMap<String, String>>,
    body: Option<String>,
    name: Option<String>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    check: Option<RawCheck>,
    #[serde(rename = "for")]
    for_: Option<String>,
    steps: Option<Vec<RawStep>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    status: Option<StatusList>,
    body_contains: Option<String>,
    json_exists: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: Some(path.to_path_buf()),
        line: None,
        message: format!("cannot read scenario file: {e}"),
    })?;
    let toml = path.extension().is_some_and(|e| e == "toml");
    let mut s = parse(&src, toml).map_err(|mut e| {
        e.file = Some(path.to_path_buf());
        e
    })?;
    if s.name.is_empty() {
        s.name = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    Ok(s)
}

/// Parses scenario text (YAML, or TOML when `toml`); errors carry a line but no file.
pub fn parse(src: &str, toml: bool) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = if toml {
        ::toml::from_str(src).map_err(|e| ScenarioError {
            file: None,
            line: e.span().map(|s| line_at(src, s.start)),
            message: e.message().to_string(),
        })?
    } else {
        serde_yaml::from_str(src).map_err(|e| ScenarioError {
            file: None,
            line: e.location().map(|l| l.line()),
            message: strip_yaml_location(&e.to_string()),
        })?
    };
    convert(raw, src)
}

fn strip_yaml_location(msg: &str) -> String {
    // serde_yaml appends " at line L column C"; the line is reported separately.
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn line_at(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The first line containing `needle` (the best location for a meaning error).
fn line_of(src: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    src.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

struct Ctx<'a> {
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, near: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: None,
            line: line_of(self.src, near),
            message: message.into(),
        }
    }
}

fn convert(raw: RawScenario, src: &str) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { src };
    let dur =
        |text: &Option<String>, key: &str| -> Result<Option<std::time::Duration>, ScenarioError> {
            text.as_deref()
                .map(|t| {
                    crate::units::parse_positive_duration(t)
                        .map_err(|e| cx.err(&format!("{key}:"), format!("load.{key}: {e}")))
                })
                .transpose()
        };
    if raw.load.iterations == Some(0) {
        return Err(cx.err("iterations:", "load.iterations: must be at least 1"));
    }
    let load = LoadDefaults {
        users: raw.load.users,
        spawn_rate: raw.load.spawn_rate,
        run_time: dur(&raw.load.run_time, "run_time")?,
        iterations: raw.load.iterations,
        arrival_rate: raw.load.arrival_rate,
        stages: raw.load.stages.clone(),
        timeout: dur(&raw.load.timeout, "timeout")?,
    };
    if let Some(h) = &raw.host {
        crate::units::parse_host(h).map_err(|e| cx.err(h, e))?;
    }
    for t in &raw.thresholds {
        crate::threshold::Threshold::parse(t).map_err(|e| cx.err(t, e))?;
    }
    if raw.users.is_empty() {
        return Err(cx.err("users:", "`users` must list at least one user class"));
    }
    let mut users = Vec::new();
    for (i, u) in raw.users.into_iter().enumerate() {
        let name = u.name.clone().unwrap_or_else(|| format!("User{}", i + 1));
        let wait = match &u.wait {
            Some(w) => WaitTime::parse(w).map_err(|e| cx.err(w, e))?,
            None => WaitTime::None,
        };
        let mut vars = raw.vars.clone();
        vars.extend(u.vars);
        if u.tasks.is_empty() {
            return Err(cx.err(&name, format!("user class {name:?}: `tasks` is empty")));
        }
        let mut tasks = Vec::new();
        for (j, t) in u.tasks.into_iter().enumerate() {
            let tname = t.name.unwrap_or_else(|| format!("task{}", j + 1));
            if t.steps.is_empty() {
                return Err(cx.err(&tname, format!("task {tname:?} has no steps")));
            }
            tasks.push(Task {
                weight: t.weight.unwrap_or(1),
                steps: steps(&cx, t.steps)?,
                name: tname,
            });
        }
        let class = UserClass {
            weight: u.weight.unwrap_or(1),
            fixed_count: u.count,
            wait,
            vars,
            on_start: steps(&cx, u.on_start)?,
            on_stop: steps(&cx, u.on_stop)?,
            tasks,
            sequential: u.sequential,
            name,
        };
        users.push(class);
    }
    let s = Scenario {
        name: raw.name.unwrap_or_default(),
        host: raw.host,
        load,
        thresholds: raw.thresholds,
        users,
    };
    s.validate().map_err(|mut e| {
        // Point at the first line that mentions the offending variable, if any.
        if let Some(start) = e.message.find("{{") {
            if let Some(end) = e.message[start..].find("}}") {
                e.line = line_of(src, &e.message[start..start + end + 2]);
            }
        }
        e
    })?;
    Ok(s)
}

fn steps(cx: &Ctx<'_>, raw: Vec<RawStep>) -> Result<Vec<Step>, ScenarioError> {
    raw.into_iter().map(|s| step(cx, s)).collect()
}

fn step(cx: &Ctx<'_>, mut s: RawStep) -> Result<Step, ScenarioError> {
    if let Some(expr) = &s.for_ {
        let body = s
            .steps
            .ok_or_else(|| cx.err(expr, format!("`for: {expr}` needs `steps`")))?;
        let (var, from, to) = parse_for(expr).map_err(|e| cx.err(expr, e))?;
        return Ok(Step::Loop {
            var,
            from,
            to,
            steps: steps(cx, body)?,
        });
    }
    if s.steps.is_some() {
        return Err(cx.err("steps:", "`steps` inside a step is only allowed with `for`"));
    }
    let (method, path) = method_and_path(cx, &s)?;
    if !path.starts_with('/') {
        return Err(cx.err(&path, format!("path {path:?} must start with '/'")));
    }
    let mut req = RequestSpec::new(method, &path).map_err(|e| cx.err(&path, e.message))?;
    req.name = s.name.take();
    for (k, v) in &s.headers {
        req = req.header(k, v).map_err(|e| cx.err(k, e.message))?;
    }
    let mut req = request_body(cx, &s, &path, req)?;
    captures(cx, &s, &mut req)?;
    if let Some(c) = s.check.take() {
        checks(cx, c, &mut req)?;
    }
    Ok(req.into())
}

/// The one request of a step: a `get: PATH` shorthand or `method` + `path`.
fn method_and_path(cx: &Ctx<'_>, s: &RawStep) -> Result<(Method, String), ScenarioError> {
    let shorthand = [
        (Method::GET, &s.get),
        (Method::POST, &s.post),
        (Method::PUT, &s.put),
        (Method::PATCH, &s.patch),
        (Method::DELETE, &s.delete),
        (Method::HEAD, &s.head),
        (Method::OPTIONS, &s.options),
    ];
    let mut chosen: Vec<(Method, String)> = shorthand
        .iter()
        .filter_map(|(m, p)| p.as_ref().map(|p| (m.clone(), p.clone())))
        .collect();
    if let Some(m) = &s.method {
        let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|_| m.chars().all(|c| c.is_ascii_alphabetic()))
            .ok_or_else(|| cx.err(m, format!("invalid HTTP method {m:?}")))?;
        let path = s
            .path
            .clone()
            .ok_or_else(|| cx.err(m, "`method` needs `path`"))?;
        chosen.push((method, path));
    } else if let Some(p) = &s.path {
        return Err(cx.err(p, "`path` needs `method` (or write `get: PATH`)"));
    }
    match chosen.len() {
        1 => Ok(chosen.pop().unwrap_or((Method::GET, String::new()))),
        0 => {
            let near = s.name.clone().unwrap_or_default();
            Err(cx.err(
                &near,
                "a step needs a request (`get: /path`, `post: /path`, … or `method`+`path`) or `for`",
            ))
        }
        _ => Err(cx.err(&chosen[1].1, "a step can send only one request")),
    }
}

/// At most one of `json`, `form` and `body`.
fn request_body(
    cx: &Ctx<'_>,
    s: &RawStep,
    path: &str,
    mut req: RequestSpec,
) -> Result<RequestSpec, ScenarioError> {
    let bodies = [s.json.is_some(), s.form.is_some(), s.body.is_some()];
    if bodies.iter().filter(|b| **b).count() > 1 {
        return Err(cx.err(path, "use only one of `json`, `form` and `body`"));
    }
    if let Some(j) = &s.json {
        req = req.json(j).map_err(|e| cx.err("json:", e.message))?;
    } else if let Some(form) = &s.form {
        let mut fields = Vec::new();
        for (k, v) in form {
            fields.push((k.clone(), Template::parse(v).map_err(|e| cx.err(v, e))?));
        }
        req.body = Body::Form(fields);
    } else if let Some(b) = &s.body {
        req.body = Body::Raw(Template::parse(b).map_err(|e| cx.err(b, e))?);
    }
    Ok(req)
}

/// `capture: {var: $.json.path}`.
fn captures(cx: &Ctx<'_>, s: &RawStep, req: &mut RequestSpec) -> Result<(), ScenarioError> {
    for (var, p) in &s.capture {
        if !super::template::is_ident(var) {
            return Err(cx.err(
                var,
                format!("capture: {var:?} is not a valid variable name"),
            ));
        }
        let jp = JsonPath::parse(p).map_err(|e| cx.err(p, e))?;
        req.captures.push((var.clone(), jp));
    }
    Ok(())
}

/// `check: {status, body_contains, json_exists}`.
fn checks(cx: &Ctx<'_>, c: RawCheck, req: &mut RequestSpec) -> Result<(), ScenarioError> {
    if let Some(st) = c.status {
        let list = match st {
            StatusList::One(s) => vec![s],
            StatusList::Many(v) => v,
        };
        if list.iter().any(|s| !(100..=599).contains(s)) {
            return Err(cx.err("status:", "check.status: codes must be within 100..=599"));
        }
        req.checks.push(Check::Status(list));
    }
    if let Some(b) = c.body_contains {
        req.checks.push(Check::BodyContains(b));
    }
    if let Some(p) = c.json_exists {
        let jp = JsonPath::parse(&p).map_err(|e| cx.err(&p, e))?;
        req.checks.push(Check::JsonExists(jp));
    }
    Ok(())
}

/// Parses `id in 1..49` (inclusive; `1..=49` is accepted too).
fn parse_for(expr: &str) -> Result<(String, i64, i64), String> {
    let (var, range) = expr
        .split_once(" in ")
        .ok_or_else(|| format!("`for: {expr}`: expected `VAR in FROM..TO`"))?;
    let var = var.trim();
    if !super::template::is_ident(var) {
        return Err(format!(
            "`for: {expr}`: {var:?} is not a valid variable name"
        ));
    }
    let (a, b) = range
        .trim()
        .split_once("..")
        .ok_or_else(|| format!("`for: {expr}`: expected a range FROM..TO"))?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let from: i64 = a
        .trim()
        .parse()
        .map_err(|_| format!("`for: {expr}`: {a:?} is not an integer"))?;
    let to: i64 = b
        .trim()
        .parse()
        .map_err(|_| format!("`for: {expr}`: {b:?} is not an integer"))?;
    if from > to {
        return Err(format!("`for: {expr}`: the start is after the end"));
    }
    if to - from > 1_000_000 {
        return Err(format!("`for: {expr}`: more than a million iterations"));
    }
    Ok((var.to_string(), from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: demo
host: http://127.0.0.1:8000
thresholds: ["p99<300ms"]
vars: {email: a@b.c}
users:
  - name: U
    wait: between(0, 1.9)
    on_start:
      - post: /login
        json: {email: "{{email}}"}
        capture: {access: $.access}
    tasks:
      - name: view
        weight: 3
        steps:
          - for: id in 1..49
            steps:
              - get: /p/{{id}}/
                name: /p/[id]/
                headers: {Authorization: "Bearer {{access}}"}
                check: {status: 200}
"#;

    #[test]
    fn parses_a_full_file() {
        let s = parse(GOOD, false).unwrap();
        assert_eq!(s.name, "demo");
        let u = &s.users[0];
        assert_eq!(u.wait, WaitTime::Between(0.0, 1.9));
        assert_eq!(u.tasks[0].weight, 3);
        match &u.tasks[0].steps[0] {
            Step::Loop { var, from, to, .. } => {
                assert_eq!((var.as_str(), *from, *to), ("id", 1, 49))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line() {
        // GOOD opens with a newline: line 1 is empty, `wait:` is line 8,
        // `for:` line 17, `- get:` line 19, `headers:` line 21.
        let bad = GOOD.replace("get: /p/{{id}}/", "gett: /p/{{id}}/");
        let e = parse(&bad, false).unwrap_err();
        assert_eq!(e.line, Some(19), "{e}");
        assert!(e.message.contains("gett"), "{e}");

        let bad = GOOD.replace("between(0, 1.9)", "sometimes(3)");
        let e = parse(&bad, false).unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");

        let bad = GOOD.replace("{{access}}", "{{acess}}");
        let e = parse(&bad, false).unwrap_err();
        assert_eq!(e.line, Some(21), "{e}");

        let bad = GOOD.replace("1..49", "9..1");
        let e = parse(&bad, false).unwrap_err();
        assert_eq!(e.line, Some(17), "{e}");

        let e = parse("users: [", false).unwrap_err();
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn toml_works_too() {
        let src = r#"
name = "t"
[[users]]
wait = "constant(1)"
[[users.tasks]]
steps = [{ get = "/" }]
"#;
        let s = parse(src, true).unwrap();
        assert_eq!(s.users[0].wait, WaitTime::Constant(1.0));
        let e = parse("name = \n", true).unwrap_err();
        assert_eq!(e.line, Some(1));
    }
}
