//! Simulated users: one loop, parameterised by the load model.
//!
//! `compile` turns a `Scenario` into a form cheap to execute (static paths
//! parsed once into `Uri`s, static headers and bodies prepared, statistics
//! names interned to ids). A `User` owns its client (connection + cookies),
//! variables and random generator, and executes iterations: pick a task (by
//! weight, or in sequence), run its steps, report one `Sample` per request.
//! The two drivers decide *when* iterations run: `spawner` (closed model:
//! N users with think time, stages) and `arrival` (open model: iterations
//! start at a rate).
//!
//! Coordinated-omission correction: a request is measured from when it was
//! *due* only when it is late because of the server, i.e. a paced user
//! whose previous iteration overran its slot (it became free after the next
//! one was due). Otherwise (an idle user woken by its timer, an open-model
//! arrival, which never waits for a user) it is measured from the actual
//! send, so loadgen's own timer lateness is not charged to the server.
//!
//! A user whose `on_start` fails (a request in it fails: status, check,
//! capture, connection) does not run its tasks without it: it pauses and
//! runs `on_start` again, backing off exponentially while it keeps failing
//! (see `spawner::run_until_started`). Its failed requests are counted.

pub mod arrival;
pub mod spawner;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Uri};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::client::UserClient;
use crate::endpoint::Endpoint;
use crate::run::RunShared;
use crate::scenario::template::Lookup;
use crate::scenario::{Body, Check, RequestSpec, Scenario, Step, Template, WaitTime};
use crate::stats::{Failure, FailureKind, Key, Names, Recorder, Sample};
use crate::wire::valid_header_value;

/// A request ready to execute.
pub struct CReq {
    spec: RequestSpec,
    method: Method,
    /// Statistics id when the name is known in advance.
    key: Option<u32>,
    /// Parsed once when the path has no placeholders.
    static_uri: Option<Uri>,
    static_headers: Vec<(HeaderName, HeaderValue)>,
    dyn_headers: Vec<(HeaderName, Template)>,
    static_body: Option<Bytes>,
    content_type: Option<HeaderValue>,
    base_path: String,
    need_body: bool,
    /// Locust marks statuses >= 400 as failures unless a status check says otherwise.
    status_check: Option<Vec<u16>>,
}

/// A step ready to execute.
pub enum CStep {
    /// A request.
    Req(Box<CReq>),
    /// An inclusive loop.
    Loop {
        /// Variable.
        var: String,
        /// First value.
        from: i64,
        /// Last value.
        to: i64,
        /// Body.
        steps: Vec<CStep>,
    },
}

/// A task ready to execute.
pub struct CTask {
    weight: u32,
    steps: Vec<CStep>,
}

/// A user class ready to execute.
pub struct CClass {
    weight: u32,
    fixed_count: Option<u32>,
    wait: WaitTime,
    vars: Vec<(String, String)>,
    on_start: Vec<CStep>,
    on_stop: Vec<CStep>,
    tasks: Vec<CTask>,
    sequential: bool,
    total_weight: u32,
}

/// A scenario ready to execute.
pub struct Compiled {
    /// The classes.
    pub classes: Vec<CClass>,
    fixed_total: u64,
    weight_total: u64,
}

static UA: HeaderValue = HeaderValue::from_static(concat!("loadgen/", env!("CARGO_PKG_VERSION")));

/// Prepares `scenario` for execution against a host whose path prefix is `base_path`.
pub fn compile(scenario: &Scenario, base_path: &str) -> (Arc<Compiled>, Names) {
    let mut names = Names::default();
    let classes: Vec<CClass> = scenario
        .users
        .iter()
        .map(|c| CClass {
            weight: c.weight,
            fixed_count: c.fixed_count,
            wait: c.wait,
            vars: c.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            on_start: steps(&c.on_start, base_path, &mut names),
            on_stop: steps(&c.on_stop, base_path, &mut names),
            tasks: c
                .tasks
                .iter()
                .map(|t| CTask {
                    weight: t.weight,
                    steps: steps(&t.steps, base_path, &mut names),
                })
                .collect(),
            sequential: c.sequential,
            total_weight: c.tasks.iter().map(|t| t.weight).sum(),
        })
        .collect();
    let fixed_total = classes
        .iter()
        .filter_map(|c| c.fixed_count)
        .map(u64::from)
        .sum();
    let weight_total = classes
        .iter()
        .filter(|c| c.fixed_count.is_none())
        .map(|c| u64::from(c.weight))
        .sum();
    (
        Arc::new(Compiled {
            classes,
            fixed_total,
            weight_total,
        }),
        names,
    )
}

fn steps(list: &[Step], base: &str, names: &mut Names) -> Vec<CStep> {
    list.iter()
        .map(|s| match s {
            Step::Request(r) => CStep::Req(Box::new(creq(r, base, names))),
            Step::Loop {
                var,
                from,
                to,
                steps: inner,
            } => CStep::Loop {
                var: var.clone(),
                from: *from,
                to: *to,
                steps: steps(inner, base, names),
            },
        })
        .collect()
}

fn static_text(t: &Template) -> Option<String> {
    t.is_static().then(|| {
        t.segments()
            .iter()
            .map(|s| match s {
                crate::scenario::template::Segment::Literal(l) => l.as_str(),
                _ => "",
            })
            .collect()
    })
}

fn creq(r: &RequestSpec, base: &str, names: &mut Names) -> CReq {
    let static_path = static_text(&r.path).map(|p| format!("{base}{p}"));
    let key = match (&r.name, &static_path) {
        (Some(n), _) => Some(names.intern(r.method.as_str(), n)),
        (None, Some(p)) => Some(names.intern(r.method.as_str(), p)),
        (None, None) => None,
    };
    let mut static_headers = Vec::new();
    let mut dyn_headers = Vec::new();
    for (n, v) in &r.headers {
        match static_text(v).and_then(|t| HeaderValue::from_str(&t).ok()) {
            Some(hv) => static_headers.push((n.clone(), hv)),
            None => dyn_headers.push((n.clone(), v.clone())),
        }
    }
    let (static_body, content_type) = match &r.body {
        Body::Empty => (Some(Bytes::new()), None),
        Body::Json(t) => (
            static_text(t).map(Bytes::from),
            Some(HeaderValue::from_static("application/json")),
        ),
        Body::Raw(t) => (static_text(t).map(Bytes::from), None),
        Body::Form(_) => (
            None,
            Some(HeaderValue::from_static(
                "application/x-www-form-urlencoded",
            )),
        ),
    };
    let status_check = r.checks.iter().find_map(|c| match c {
        Check::Status(s) => Some(s.clone()),
        _ => None,
    });
    CReq {
        method: r.method.clone(),
        key,
        static_uri: static_path.and_then(|p| Uri::try_from(p).ok()),
        static_headers,
        dyn_headers,
        static_body,
        content_type,
        base_path: base.to_string(),
        need_body: r.needs_body(),
        status_check,
        spec: r.clone(),
    }
}

impl Compiled {
    /// The class of the user with global index `u` (fixed counts first, then by weight).
    pub fn class_of(&self, u: u64) -> usize {
        let mut left = u;
        for (i, c) in self.classes.iter().enumerate() {
            if let Some(n) = c.fixed_count {
                if left < u64::from(n) {
                    return i;
                }
                left -= u64::from(n);
            }
        }
        if self.weight_total == 0 {
            return 0;
        }
        let mut pos = (u - self.fixed_total.min(u)) % self.weight_total;
        for (i, c) in self.classes.iter().enumerate() {
            if c.fixed_count.is_none() {
                if pos < u64::from(c.weight) {
                    return i;
                }
                pos -= u64::from(c.weight);
            }
        }
        0
    }
}

/// A user's variables: a small vector beats a map for the handful a scenario uses.
#[derive(Default)]
struct Vars(Vec<(String, String)>);

impl Vars {
    fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl Lookup for Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One simulated user.
pub struct User {
    client: UserClient,
    vars: Vars,
    rng: SmallRng,
    recorder: Recorder,
    compiled: Arc<Compiled>,
    shared: Arc<RunShared>,
    class: usize,
    /// Next task index for sequential classes.
    seq_pos: usize,
    /// When the request now in flight was sent (`None` between requests);
    /// still set when the user is dropped mid-request, i.e. abandoned.
    in_flight: Option<Instant>,
    /// The rendered path of the current request (reused).
    scratch: String,
    /// A rendered header value (reused).
    scratch_header: String,
}

impl User {
    /// The user with global index `u`.
    pub(crate) fn new(
        u: u64,
        compiled: Arc<Compiled>,
        endpoint: Arc<Endpoint>,
        recorder: Recorder,
        shared: Arc<RunShared>,
    ) -> User {
        let class = compiled.class_of(u);
        let vars = Vars(compiled.classes[class].vars.clone());
        let seed = shared.plan.seed ^ u.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        User {
            client: UserClient::new(endpoint, shared.plan.timeout),
            vars,
            rng: SmallRng::seed_from_u64(seed),
            recorder,
            compiled,
            class,
            seq_pos: 0,
            in_flight: None,
            scratch: String::new(),
            scratch_header: String::new(),
            shared,
        }
    }

    /// The wait time of this user's class.
    pub fn wait_time(&self) -> WaitTime {
        self.compiled.classes[self.class].wait
    }

    /// Runs `on_start`; false when one of its requests failed, in which case
    /// its remaining steps are skipped (they would run without what the
    /// failed one should have given, e.g. a token).
    pub async fn on_start(&mut self) -> bool {
        let c = self.compiled.clone();
        self.run_steps(&c.classes[self.class].on_start, &mut None, true)
            .await
    }

    /// Runs `on_stop`.
    pub async fn on_stop(&mut self) {
        let c = self.compiled.clone();
        self.run_steps(&c.classes[self.class].on_stop, &mut None, false)
            .await;
    }

    /// Runs `on_stop` for at most `timeout` (`--stop-timeout`); a request it
    /// leaves unanswered is counted as abandoned.
    pub async fn stop(&mut self, timeout: Duration) {
        if tokio::time::timeout(timeout, self.on_stop()).await.is_err() {
            self.note_abandoned();
        }
    }

    /// Counts the request this user had in flight when it was stopped, if
    /// any: it is not in the statistics (it has no response), but the run
    /// says how many there were and how old.
    pub fn note_abandoned(&mut self) {
        if let Some(sent) = self.in_flight.take() {
            self.shared.abandon(sent.elapsed());
        }
    }

    /// Picks a task and runs it. `due`: the task is late because the server
    /// kept this user busy past the time it was due (see the module doc);
    /// its first request is then measured from `due`.
    pub async fn iteration(&mut self, due: Option<Instant>) {
        let c = self.compiled.clone();
        let class = &c.classes[self.class];
        let idx = if class.sequential {
            let i = self.seq_pos % class.tasks.len();
            self.seq_pos = self.seq_pos.wrapping_add(1);
            i
        } else {
            let mut pick = self.rng.gen_range(0..class.total_weight.max(1));
            let mut chosen = 0;
            for (i, t) in class.tasks.iter().enumerate() {
                if pick < t.weight {
                    chosen = i;
                    break;
                }
                pick -= t.weight;
            }
            chosen
        };
        let mut due = due;
        self.run_steps(&class.tasks[idx].steps, &mut due, false)
            .await;
    }

    /// How long to think after a task (non-paced wait times).
    /// A random factor in 0.5..1.0, to spread retries.
    pub fn jitter(&mut self) -> f64 {
        self.rng.gen_range(0.5..1.0)
    }

    pub fn think(&mut self) -> Duration {
        match self.wait_time() {
            WaitTime::None | WaitTime::ConstantPacing(_) | WaitTime::ConstantThroughput(_) => {
                Duration::ZERO
            }
            WaitTime::Constant(s) => Duration::from_secs_f64(s),
            WaitTime::Between(a, b) => {
                if b > a {
                    Duration::from_secs_f64(self.rng.gen_range(a..b))
                } else {
                    Duration::from_secs_f64(a)
                }
            }
        }
    }

    /// Runs `steps`; false when a request failed. `stop_on_failure`: skip the
    /// steps after a failed request (for `on_start`).
    async fn run_steps(
        &mut self,
        steps: &[CStep],
        due: &mut Option<Instant>,
        stop_on_failure: bool,
    ) -> bool {
        let mut all_ok = true;
        for s in steps {
            match s {
                CStep::Req(r) => {
                    let d = due.take();
                    all_ok &= self.exec(r, d).await;
                    if !all_ok && stop_on_failure {
                        return false;
                    }
                }
                CStep::Loop {
                    var,
                    from,
                    to,
                    steps: inner,
                } => {
                    for i in *from..=*to {
                        self.vars.set(var, i.to_string());
                        all_ok &= Box::pin(self.run_steps(inner, due, stop_on_failure)).await;
                        if !all_ok && stop_on_failure {
                            return false;
                        }
                    }
                }
            }
        }
        all_ok
    }

    /// Writes the request line and headers into the client and returns the
    /// body. Static parts were prepared by `compile`; only templated parts
    /// are rendered (into reused scratch strings), so a static request
    /// allocates nothing here.
    fn prepare(&mut self, r: &CReq) -> Result<Bytes, String> {
        let target = match &r.static_uri {
            Some(u) => u.path_and_query().map_or("/", |p| p.as_str()),
            None => {
                self.scratch.clear();
                self.scratch.push_str(&r.base_path);
                r.spec
                    .path
                    .render_into(&self.vars, &mut self.rng, &mut self.scratch);
                check_target(&self.scratch)
                    .map_err(|e| format!("invalid path {:?}: {e}", self.scratch))?;
                self.scratch.as_str()
            }
        };
        self.client.begin(&r.method, target);
        self.client.header(&USER_AGENT, UA.as_bytes());
        if let Some(ct) = &r.content_type {
            self.client.header(&CONTENT_TYPE, ct.as_bytes());
        }
        for (n, v) in &r.static_headers {
            self.client.header(n, v.as_bytes());
        }
        for (n, t) in &r.dyn_headers {
            self.scratch_header.clear();
            t.render_into(&self.vars, &mut self.rng, &mut self.scratch_header);
            if !valid_header_value(self.scratch_header.as_bytes()) {
                return Err(format!("invalid value for header {n}"));
            }
            self.client.header(n, self.scratch_header.as_bytes());
        }
        let body = match &r.static_body {
            Some(b) => b.clone(),
            None => match &r.spec.body {
                Body::Json(t) | Body::Raw(t) => Bytes::from(t.render(&self.vars, &mut self.rng)),
                Body::Form(fields) => {
                    let mut s = String::new();
                    for (i, (k, t)) in fields.iter().enumerate() {
                        if i > 0 {
                            s.push('&');
                        }
                        let v = t.render(&self.vars, &mut self.rng);
                        s.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
                        s.push('=');
                        s.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
                    }
                    Bytes::from(s)
                }
                Body::Empty => Bytes::new(),
            },
        };
        Ok(body)
    }

    /// Sends one request and records it; false when it failed.
    async fn exec(&mut self, r: &CReq, due: Option<Instant>) -> bool {
        let sent = Instant::now();
        let intended = due.map_or(sent, |d| d.min(sent));
        let prepared = self.prepare(r);
        let key = match r.key {
            Some(id) => Key::Id(id),
            // Locust names such a request by its path (rendered into `scratch`).
            None => Key::Named(Box::new((r.method.clone(), self.scratch.clone()))),
        };
        let body = match prepared {
            Ok(body) => body,
            Err(msg) => {
                self.recorder.record(Sample {
                    key,
                    latency_us: 0,
                    raw_us: 0,
                    content_len: 0,
                    status: 0,
                    failure: Some(Box::new(Failure {
                        kind: FailureKind::Check,
                        message: msg,
                    })),
                });
                return false;
            }
        };
        self.in_flight = Some(sent);
        let result = self.client.finish_at(&body, r.need_body, sent).await;
        self.in_flight = None;
        let end = Instant::now();
        let latency_us = (end - intended).as_micros() as u64;
        let raw_us = (end - sent).as_micros() as u64;
        let (status, len, failure) = match result {
            Err(f) => (0, 0, Some(Box::new(f))),
            Ok(resp) => {
                let code = resp.status.as_u16();
                let failure = self.evaluate(r, code, resp.body.as_deref());
                (code, resp.len, failure.map(Box::new))
            }
        };
        let ok = failure.is_none();
        self.recorder.record(Sample {
            key,
            latency_us,
            raw_us,
            content_len: len,
            status,
            failure,
        });
        ok
    }

    /// Applies the status rule, checks and captures.
    fn evaluate(&mut self, r: &CReq, code: u16, body: Option<&[u8]>) -> Option<Failure> {
        let status_ok = match &r.status_check {
            Some(list) => list.contains(&code),
            None => code < 400,
        };
        if !status_ok {
            let reason = http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let got = format!("{code} {reason}");
            let message = match &r.status_check {
                // A status check failed: say what it wanted.
                Some(list) => format!(
                    "expected {}, got {}",
                    expected_statuses(list),
                    got.trim_end()
                ),
                None => format!("HTTP {}", got.trim_end()),
            };
            return Some(Failure {
                kind: FailureKind::Status,
                message,
            });
        }
        if !r.need_body {
            return None;
        }
        let body = body.unwrap_or(&[]);
        let needs_json = !r.spec.captures.is_empty()
            || r.spec
                .checks
                .iter()
                .any(|c| matches!(c, Check::JsonExists(_)));
        let json: Option<serde_json::Value> = if needs_json {
            serde_json::from_slice(body).ok()
        } else {
            None
        };
        for c in &r.spec.checks {
            match c {
                Check::BodyContains(s) => {
                    let found = body.windows(s.len().max(1)).any(|w| w == s.as_bytes());
                    if !found {
                        return Some(Failure {
                            kind: FailureKind::Check,
                            message: format!("body does not contain {s:?}"),
                        });
                    }
                }
                Check::JsonExists(p) => {
                    if json.as_ref().and_then(|j| p.select(j)).is_none() {
                        return Some(Failure {
                            kind: FailureKind::Check,
                            message: format!("no JSON value at {}", p.as_str()),
                        });
                    }
                }
                Check::Status(_) => {}
            }
        }
        for (var, path) in &r.spec.captures {
            match json.as_ref().and_then(|j| path.select_string(j)) {
                Some(v) => self.vars.set(var, v),
                None => {
                    return Some(Failure {
                        kind: FailureKind::Capture,
                        message: format!("no value at {} for {{{{{var}}}}}", path.as_str()),
                    })
                }
            }
        }
        None
    }
}

/// `201`, `200 or 304`, `200, 201 or 304`.
fn expected_statuses(list: &[u16]) -> String {
    match list {
        [] => "no status".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(u16::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    }
}

/// Checks a rendered request target the way `http::Uri` would accept it in
/// origin form (`/path?query`), without building one.
fn check_target(t: &str) -> Result<(), &'static str> {
    if !t.starts_with('/') {
        return Err("must start with /");
    }
    if t.bytes().any(|b| !(0x21..0x7f).contains(&b) || b == b'#') {
        return Err("spaces, control, non-ASCII characters and # must be percent-encoded");
    }
    Ok(())
}

/// Sleeps for `d` unless the token is cancelled first; returns false when cancelled.
pub(crate) async fn sleep_or_cancel(
    d: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    if d.is_zero() {
        return !cancel.is_cancelled();
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}
