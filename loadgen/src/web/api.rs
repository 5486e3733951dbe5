//! The JSON API the page drives runs with: start, change the user count,
//! stop, reset, the latest snapshot, and the start form's defaults.
//!
//! The defaults are the plan loadgen was started with (`-u -r -t -H`, else
//! the scenario's `load:` and `host:`): the page fills its form with them,
//! as Locust's does, and a start request may leave out any of `users`,
//! `spawn_rate`, `host` and `run_time` to use them.
//!
//! Bodies are read as raw bytes and validated here, so that every refusal is
//! a 400 with a sentence the page can show (`{"error": "..."}`), never
//! axum's plain-text rejection. POSTs must say `Content-Type:
//! application/json`: a cross-site form cannot send that without a CORS
//! preflight, which this server never grants, so another web page open in
//! the same browser cannot start a load test against a host of its choosing.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::WebState;
use crate::control::StartRequest;

/// Largest user count the form accepts (the runner would refuse more anyway).
const MAX_USERS: u64 = 1_000_000;

/// A refused API request: the status and the sentence shown on the page.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

fn ok() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// Checks the content type and parses the body as a JSON object (an empty
/// body counts as `{}`).
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the request body as JSON with Content-Type: application/json".into(),
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// The field `name`, `None` when absent or `null` (then the plan's value applies).
fn given<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// `users`: a whole number from 1 to [`MAX_USERS`].
fn users_field(body: &Map<String, Value>) -> Result<u32, ApiError> {
    let value = body
        .get("users")
        .ok_or_else(|| ApiError::bad_request("the number of users is missing"))?;
    let n = match value {
        Value::Number(n) => n,
        Value::String(s) => {
            return s
                .trim()
                .parse::<i64>()
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "the number of users must be a whole number, got {s:?}"
                    ))
                })
                .and_then(|n| users_in_range(n as f64, &n.to_string()))
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "the number of users must be a whole number, got {other}"
            )))
        }
    };
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() != 0.0 {
        return Err(ApiError::bad_request(format!(
            "the number of users must be a whole number, got {n}"
        )));
    }
    users_in_range(f, &n.to_string())
}

fn users_in_range(f: f64, shown: &str) -> Result<u32, ApiError> {
    if f < 1.0 {
        return Err(ApiError::bad_request(format!(
            "the number of users must be at least 1, got {shown}"
        )));
    }
    if f > MAX_USERS as f64 {
        return Err(ApiError::bad_request(format!(
            "the number of users must be at most {MAX_USERS}, got {shown}"
        )));
    }
    Ok(f as u32)
}

/// `spawn_rate`: users started per second, finite and above zero.
fn spawn_rate_field(body: &Map<String, Value>) -> Result<f64, ApiError> {
    let rate = match body.get("spawn_rate") {
        None => return Err(ApiError::bad_request("the spawn rate is missing")),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match rate {
        Some(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(ApiError::bad_request(
            "the spawn rate must be a number above 0 (users started per second)",
        )),
    }
}

/// `run_time`: absent, null or empty for "until stopped"; a number of
/// seconds; or a duration like `30s`, `5m`, `1h30m` (a bare `90` means seconds).
fn run_time_field(body: &Map<String, Value>) -> Result<Option<Duration>, ApiError> {
    let text = match body.get("run_time") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s.is_finite() && s > 0.0 => return Ok(Some(Duration::from_secs_f64(s))),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "the run time must be above zero, got {n}"
                )))
            }
        },
        Some(Value::String(s)) => s.trim(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the run time must be a duration like 30s or 5m, got {other}"
            )))
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        humantime::parse_duration(text).ok()
    };
    match parsed {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        Some(_) => Err(ApiError::bad_request("the run time must be above zero")),
        None => Err(ApiError::bad_request(format!(
            "the run time must be a duration like 30s, 5m or 1h30m, got {text:?}"
        ))),
    }
}

/// `host`: an absolute http(s) URL with a host name.
fn host_field(body: &Map<String, Value>) -> Result<String, ApiError> {
    let host = match body.get("host") {
        Some(Value::String(s)) => s.trim(),
        None | Some(Value::Null) => return Err(ApiError::bad_request("the host is missing")),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the host must be an http:// or https:// URL, got {other}"
            )))
        }
    };
    match url::Url::parse(host) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(host.to_owned())
        }
        _ => Err(ApiError::bad_request(format!(
            "the host must be an http:// or https:// URL like http://127.0.0.1:8000, got {host:?}"
        ))),
    }
}

/// `GET /api/snapshot`: the latest snapshot, history included.
pub async fn snapshot(State(state): State<WebState>) -> Response {
    let snap = state.controller.snapshot();
    Json(&*snap).into_response()
}

/// `GET /api/defaults`: what the start form shows first, from the plan
/// loadgen was started with. `run_time` is text like `"1m 30s"` or `null`
/// (until stopped); `host` is `null` when neither `-H` nor the scenario set one.
pub async fn defaults(State(state): State<WebState>) -> Response {
    let plan = state.controller.base_plan();
    // Quick mode starts every user at once (an infinite rate, which JSON
    // cannot carry): the form shows the user count, all started within a second.
    let rate = if plan.spawn_rate.is_finite() {
        plan.spawn_rate
    } else {
        f64::from(plan.users)
    };
    Json(json!({
        "users": plan.users,
        "spawn_rate": rate,
        "host": (!plan.host.is_empty()).then_some(&plan.host),
        "run_time": plan.run_time.map(|d| humantime::format_duration(d).to_string()),
    }))
    .into_response()
}

/// `POST /api/start` `{users?, spawn_rate?, host?, run_time?}`: starts a run.
/// A field left out (or `null`) takes the plan's value ([`defaults`]);
/// `"run_time": ""` runs until stopped whatever the plan says.
pub async fn start(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_object(&headers, &body)?;
    let plan = state.controller.base_plan();
    let users = match given(&body, "users") {
        Some(_) => users_field(&body)?,
        None => plan.users,
    };
    let spawn_rate = match given(&body, "spawn_rate") {
        Some(_) => spawn_rate_field(&body)?,
        None => plan.spawn_rate,
    };
    let host = match given(&body, "host") {
        Some(_) => host_field(&body)?,
        None if !plan.host.is_empty() => plan.host.clone(),
        None => {
            return Err(ApiError::bad_request(
                "the host is missing: give one, or start loadgen with --host (or `host:` in the scenario)",
            ))
        }
    };
    let run_time = match given(&body, "run_time") {
        None => plan.run_time,
        Some(_) => run_time_field(&body)?,
    };
    let request = StartRequest {
        users,
        spawn_rate,
        host,
        run_time,
    };
    state
        .controller
        .start(request)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(ok())
}

/// `POST /api/users` `{users, spawn_rate}`: changes the user count of the
/// running test (Locust's "Edit").
pub async fn set_users(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_object(&headers, &body)?;
    let users = users_field(&body)?;
    let rate = spawn_rate_field(&body)?;
    state
        .controller
        .set_users(users, rate)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(ok())
}

/// `POST /api/stop`: stops the users; the statistics stay.
pub async fn stop(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    json_object(&headers, &body)?;
    state.controller.stop();
    Ok(ok())
}

/// `POST /api/reset`: clears the statistics (the run, if any, goes on).
pub async fn reset(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    json_object(&headers, &body)?;
    state.controller.reset_stats();
    Ok(ok())
}

/// Anything else: 404 with a JSON body.
pub async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "not found".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test bodies are objects"),
        }
    }

    #[test]
    fn users_must_be_a_positive_whole_number() {
        assert_eq!(users_field(&obj(json!({"users": 5}))).unwrap(), 5);
        assert_eq!(users_field(&obj(json!({"users": "7"}))).unwrap(), 7);
        for bad in [
            json!(-3),
            json!(0),
            json!(2.5),
            json!("x"),
            json!(true),
            json!(2_000_000),
        ] {
            let err = users_field(&obj(json!({ "users": bad }))).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains("users"), "{}", err.message);
        }
        assert!(users_field(&obj(json!({})))
            .unwrap_err()
            .message
            .contains("missing"));
        assert!(users_field(&obj(json!({"users": -3})))
            .unwrap_err()
            .message
            .contains("at least 1"));
    }

    #[test]
    fn spawn_rate_must_be_above_zero() {
        assert_eq!(
            spawn_rate_field(&obj(json!({"spawn_rate": 0.5}))).unwrap(),
            0.5
        );
        for bad in [json!(0), json!(-1), json!("fast"), json!(null)] {
            assert!(spawn_rate_field(&obj(json!({ "spawn_rate": bad }))).is_err());
        }
    }

    #[test]
    fn host_must_be_an_http_url() {
        assert_eq!(
            host_field(&obj(json!({"host": " http://127.0.0.1:8000 "}))).unwrap(),
            "http://127.0.0.1:8000"
        );
        assert!(host_field(&obj(json!({"host": "https://example.test/api"}))).is_ok());
        for bad in [
            "not a url",
            "ftp://127.0.0.1/",
            "127.0.0.1:8000",
            "http://",
            "",
        ] {
            let err = host_field(&obj(json!({ "host": bad }))).unwrap_err();
            assert!(
                err.message.contains("http:// or https://"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn run_time_accepts_durations_and_seconds() {
        let rt = |v: Value| run_time_field(&obj(json!({ "run_time": v })));
        assert_eq!(rt(json!(null)).unwrap(), None);
        assert_eq!(rt(json!("")).unwrap(), None);
        assert_eq!(rt(json!("90")).unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(rt(json!(2)).unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(rt(json!("1m30s")).unwrap(), Some(Duration::from_secs(90)));
        assert!(rt(json!("soon")).is_err());
        assert!(rt(json!("0s")).is_err());
        assert!(rt(json!(-1)).is_err());
    }

    #[test]
    fn bodies_must_be_json_objects() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            json_object(&headers, &Bytes::from_static(b"{}"))
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(json_object(&headers, &Bytes::from_static(b""))
            .unwrap()
            .is_empty());
        assert_eq!(
            json_object(&headers, &Bytes::from_static(b"[1]"))
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        assert!(json_object(&headers, &Bytes::from_static(b"{bad"))
            .unwrap_err()
            .message
            .contains("not valid JSON"));
    }
}
