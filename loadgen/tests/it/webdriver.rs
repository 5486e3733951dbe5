//! A small W3C WebDriver client: enough of the protocol to drive headless
//! Chromium through `chromedriver` (navigate, find, type, click, run
//! scripts, take screenshots, read the browser log).
//!
//! `chromedriver` runs in its own process group, and dropping the [`Driver`]
//! kills that whole group, so neither chromedriver nor the Chromium it
//! started outlive the test, even when an assertion panics.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use http::Method;
use serde_json::{json, Value};

use crate::support::Http;

/// The key W3C uses for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and the driver are expected (Debian's `chromium` and `chromium-driver`).
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Finds chromium and chromedriver (`CHROMIUM`/`CHROMEDRIVER` env override the paths).
pub fn find_browser() -> Option<Browser> {
    let pick = |env: &str, candidates: &[&str]| -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(env) {
            return Some(PathBuf::from(p)).filter(|p| p.exists());
        }
        candidates.iter().map(PathBuf::from).find(|p| p.exists())
    };
    Some(Browser {
        chromium: pick(
            "CHROMIUM",
            &[
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ],
        )?,
        chromedriver: pick(
            "CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        )?,
    })
}

/// A running chromedriver; killed with its process group on drop.
pub struct Driver {
    child: Child,
    pub url: String,
    http: Http,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits (bounded) until it answers.
    pub async fn start(browser: &Browser) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(&browser.chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.chromedriver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: Http::default(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let probe = tokio::time::timeout(Duration::from_secs(2), async {
                tokio::net::TcpStream::connect(("127.0.0.1", port)).await
            })
            .await;
            if matches!(probe, Ok(Ok(_))) {
                let status = driver.http.get(&format!("{}/status", driver.url)).await;
                if status.status.is_success() && status.json()["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    /// Opens a headless Chromium session with a fresh profile in `profile_dir`.
    pub async fn session(
        &self,
        browser: &Browser,
        profile_dir: &Path,
        width: u32,
        height: u32,
    ) -> Session {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "script": 20000, "pageLoad": 20000, "implicit": 0 },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "goog:chromeOptions": {
                        "binary": browser.chromium,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-quic",
                            "--disable-dev-shm-usage",
                            "--hide-scrollbars",
                            format!("--window-size={width},{height}"),
                            format!("--user-data-dir={}", profile_dir.display()),
                        ]
                    }
                }
            }
        });
        let reply = self
            .http
            .post_json(&format!("{}/session", self.url), &caps)
            .await;
        let v = reply.json();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Kill the whole group (chromedriver and the browsers it started),
        // then reap chromedriver so no zombie is left.
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{pgid}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Session {
    base: String,
    http: Http,
}

/// A reference to an element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let reply = match (&method, body) {
            (&Method::GET, _) => self.http.get(&url).await,
            (&Method::DELETE, _) => self.http.delete(&url).await,
            (_, body) => {
                self.http
                    .post_json(&url, &body.unwrap_or_else(|| json!({})))
                    .await
            }
        };
        let v = reply.json();
        assert!(
            reply.status.is_success(),
            "WebDriver {method} {path} failed with {}: {}",
            reply.status,
            v["value"]
        );
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn refresh(&self) {
        self.call(Method::POST, "/refresh", None).await;
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.call(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Emulates a phone screen of `width`×`height` CSS pixels (headless
    /// Chromium will not make its window narrower than 500 px).
    pub async fn emulate_phone(&self, width: u32, height: u32) {
        let params =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": true});
        self.call(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": params})),
        )
        .await;
    }

    /// Back to the window's own size.
    pub async fn clear_emulation(&self) {
        self.call(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.clearDeviceMetricsOverride", "params": {}})),
        )
        .await;
    }

    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .call(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        Element(
            v[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {v}"))
                .to_string(),
        )
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(Method::POST, &format!("/element/{}/click", e.0), None)
            .await;
    }

    /// Clears the input and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(Method::POST, &format!("/element/{}/clear", e.0), None)
            .await;
        self.call(
            Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Types `text` into the element (WebDriver key codes allowed, e.g. `\u{E014}` = ArrowRight).
    pub async fn keys(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(Method::GET, &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs an asynchronous script: it must call `arguments[arguments.length - 1](result)`.
    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.call(
            Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.call(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is not base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Console entries of level SEVERE since the last call (chromedriver's log
    /// endpoint; empty if this chromedriver does not offer it).
    pub async fn severe_console_entries(&self) -> Vec<String> {
        let url = format!("{}/se/log", self.base);
        let reply = self.http.post_json(&url, &json!({"type": "browser"})).await;
        if !reply.status.is_success() {
            return Vec::new();
        }
        reply.json()["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == json!("SEVERE"))
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session (Chromium exits).
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.http.delete(&self.base)).await;
    }
}
