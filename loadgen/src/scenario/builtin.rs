//! Built-in scenarios, written with the Rust API (`RequestSpec` builders).
//!
//! `market-api` reproduces the tutorial's Locust file request for request:
//! `wait_time = between(0, 1.9)`, `on_start` logs in, tasks `login` (weight 1),
//! `list_items` (2), `view_products` (3) and `refresh_token` (4), with the
//! bearer token on every request after login. The Locust file uses paths
//! relative to the host (`api/v1/...`); Locust names a request by its URL path,
//! so the names are `/api/v1/...`. The 49 product requests of `view_products`
//! share the name `/api/v1/products/[id]/` (Locust would show 49 rows). The
//! same scenario ships as `loadgen/scenarios/market-api.yaml`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{LoadDefaults, RequestSpec, Scenario, ScenarioError, Step, Task, UserClass, WaitTime};

/// Default login of the Market API's demo data.
pub const DEFAULT_EMAIL: &str = "demo@example.com";
/// Default password of the Market API's demo data.
pub const DEFAULT_PASSWORD: &str = "Passw0rd!";

/// Names of the built-in scenarios (`-f NAME`).
pub const BUILTIN_NAMES: &[&str] = &["market-api"];

/// The built-in scenario called `name`, if there is one.
pub fn builtin(name: &str, email: &str, password: &str) -> Option<Scenario> {
    match name {
        "market-api" => Some(market_api(email, password).expect("built-in scenario is valid")),
        _ => None,
    }
}

const BASE: &str = "/api/v1";

fn login() -> Result<RequestSpec, ScenarioError> {
    RequestSpec::post(&format!("{BASE}/auth/token/"))?
        .json(&json!({"email": "{{email}}", "password": "{{password}}"}))?
        .capture("access", "$.access")?
        .capture("refresh", "$.refresh")
}

fn authed_get(path: &str) -> Result<RequestSpec, ScenarioError> {
    RequestSpec::get(path)?.header("Authorization", "Bearer {{access}}")
}

/// The tutorial's `MarketAPI` Locust user, logging in as `email`/`password`.
pub fn market_api(email: &str, password: &str) -> Result<Scenario, ScenarioError> {
    let list_items = vec![
        authed_get(&format!("{BASE}/products/"))?.into(),
        authed_get(&format!("{BASE}/products/comments/"))?.into(),
    ];
    let view_products = vec![Step::Loop {
        var: "id".into(),
        from: 1,
        to: 49,
        steps: vec![authed_get(&format!("{BASE}/products/{{{{id}}}}/"))?
            .name(&format!("{BASE}/products/[id]/"))
            .into()],
    }];
    let refresh = RequestSpec::post(&format!("{BASE}/auth/token/refresh/"))?
        .json(&json!({"refresh": "{{refresh}}"}))?
        .header("Authorization", "Bearer {{access}}")?;
    let mut vars = BTreeMap::new();
    vars.insert("email".to_string(), email.to_string());
    vars.insert("password".to_string(), password.to_string());
    let user = UserClass {
        wait: WaitTime::Between(0.0, 1.9),
        vars,
        on_start: vec![login()?.into()],
        ..UserClass::new(
            "MarketAPI",
            vec![
                Task::new("login", 1, vec![login()?.into()]),
                Task::new("list_items", 2, list_items),
                Task::new("view_products", 3, view_products),
                Task::new("refresh_token", 4, vec![refresh.into()]),
            ],
        )
    };
    let s = Scenario {
        name: "market-api".into(),
        host: Some("http://127.0.0.1:8000".into()),
        load: LoadDefaults::default(),
        thresholds: Vec::new(),
        users: vec![user],
    };
    s.validate()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_api_has_the_seed_tasks() {
        let s = builtin("market-api", DEFAULT_EMAIL, DEFAULT_PASSWORD).unwrap();
        let u = &s.users[0];
        let tasks: Vec<(&str, u32)> = u
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.weight))
            .collect();
        assert_eq!(
            tasks,
            [
                ("login", 1),
                ("list_items", 2),
                ("view_products", 3),
                ("refresh_token", 4)
            ]
        );
        assert_eq!(u.wait, WaitTime::Between(0.0, 1.9));
        assert_eq!(u.on_start.len(), 1);
        assert!(builtin("nope", "", "").is_none());
    }
}
