//! The dashboard in a real browser: headless Chromium driven through
//! chromedriver (W3C WebDriver) against the dashboard and a real local
//! target, both on loopback sockets in this process.
//!
//! Skips with a message only when Chromium is absent and `CI` is unset; in
//! CI a missing browser is a failure.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{self, eventually, start_dashboard, start_target};
use crate::webdriver::{self, find_browser, Driver, Session};
use serde_json::{json, Value};

/// `target/` of the workspace (screenshots are kept there as test artifacts).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Reads the statistics table as `[[cell, …], …]` (body rows only).
async fn stats_rows(s: &Session) -> Vec<Vec<String>> {
    let v = s
        .exec(
            "return Array.from(document.querySelectorAll('#stats-body tr')).map(tr => \
             Array.from(tr.cells).map(td => td.textContent.trim()));",
            json!([]),
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

fn num(cell: &str) -> f64 {
    cell.replace(',', "").parse().unwrap_or(f64::NAN)
}

async fn page_errors(s: &Session) -> Vec<String> {
    let v = s
        .exec(
            "return window.__errors || ['__errors hook missing'];",
            json!([]),
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

async fn chart_points(s: &Session, id: &str) -> (bool, u64) {
    let v: Value = s
        .exec(
            "const d = document.getElementById(arguments[0]); \
             return [!!d.querySelector('canvas') && d.querySelector('canvas').width > 0, Number(d.dataset.points || 0)];",
            json!([id]),
        )
        .await;
    (v[0].as_bool().unwrap_or(false), v[1].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_drives_a_real_run_in_chromium() {
    let _turn = crate::support::EXCLUSIVE.lock().await;
    let Some(browser) = find_browser() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium/chromedriver not found, and CI is set: install chromium and chromium-driver");
        }
        eprintln!("SKIPPED dashboard_drives_a_real_run_in_chromium: chromium or chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let overall = tokio::time::timeout(Duration::from_secs(180), run(browser)).await;
    overall.expect("the browser test took more than 180 s");
}

async fn run(browser: webdriver::Browser) {
    let target = start_target().await;
    let controller = support::controller(&target.url());
    let dash = start_dashboard(controller.clone()).await;
    let page = dash.url() + "/";
    let profile = tempfile::tempdir().unwrap();

    let driver = Driver::start(&browser).await;
    let s = driver.session(&browser, profile.path(), 1280, 1000).await;
    s.goto(&page).await;

    // The page connects and shows the idle state from the first snapshot.
    eventually("the event stream to connect", || async {
        (s.text("#conn").await == "live").then_some(())
    })
    .await;
    assert_eq!(s.text("#h-state").await.to_lowercase(), "ready");
    assert_eq!(
        s.text("#h-host").await,
        target.url(),
        "host comes from the base plan"
    );

    // The start form shows the plan loadgen was started with (-u 4 -r 3 -t 90s).
    eventually("the form's defaults to load", || async {
        let v = s
            .exec(
                "return document.getElementById('start-form').dataset.defaults || '';",
                json!([]),
            )
            .await;
        (v == json!("loaded")).then_some(())
    })
    .await;
    let form = s
        .exec(
            "return ['f-users', 'f-rate', 'f-host', 'f-time'].map(id => document.getElementById(id).value);",
            json!([]),
        )
        .await;
    assert_eq!(
        form,
        json!(["4", "3", target.url(), "1m 30s"]),
        "the form is prefilled from the plan"
    );
    assert!(
        s.text("#e-users").await.is_empty(),
        "the defaults are valid input"
    );

    // Keyboard: arrow keys move between the tabs (and focus follows).
    s.keys("#tab-stats", "\u{E014}").await;
    let focused = s
        .exec(
            "return [document.activeElement.id, document.getElementById('tab-charts').getAttribute('aria-selected'), \
             document.getElementById('view-charts').hidden];",
            json!([]),
        )
        .await;
    assert_eq!(
        focused,
        json!(["tab-charts", "true", false]),
        "ArrowRight on the tabs"
    );
    s.keys("#tab-charts", "\u{E012}").await;
    assert_eq!(
        s.exec("return document.activeElement.id;", json!([])).await,
        json!("tab-stats"),
        "ArrowLeft on the tabs"
    );

    // Bad input gets messages on the page and starts nothing.
    s.fill("#f-users", "-3").await;
    s.fill("#f-host", "not a url").await;
    s.click("#btn-start").await;
    let users_msg = s.text("#e-users").await;
    let host_msg = s.text("#e-host").await;
    assert!(
        users_msg.contains("at least 1"),
        "users message: {users_msg:?}"
    );
    assert!(host_msg.contains("http://"), "host message: {host_msg:?}");
    let invalid = s
        .exec(
            "return document.getElementById('f-host').getAttribute('aria-invalid');",
            json!([]),
        )
        .await;
    assert_eq!(invalid, json!("true"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        controller.snapshot().state,
        loadgen::control::RunState::Ready,
        "an invalid form must not start a run"
    );

    // A run time the form cannot read is refused on the page.
    s.fill("#f-users", "3").await;
    s.fill("#f-rate", "10").await;
    s.fill("#f-host", &target.url()).await;
    s.fill("#f-time", "soon").await;
    s.click("#btn-start").await;
    assert!(s.text("#e-time").await.contains("30s"), "run time message");
    s.fill("#f-time", "").await;

    // What only the server knows is refused by the server and shown as well:
    // https passes the page's URL check, but loadgen speaks plain HTTP.
    s.fill("#f-host", "https://127.0.0.1:9").await;
    s.click("#btn-start").await;
    let refusal = eventually("the server's refusal on the page", || async {
        let t = s.text("#e-start").await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert!(refusal.contains("https"), "refusal: {refusal}");
    // Chromium logs every 4xx response as a console error; this deliberate
    // refusal must be the only entry so far.
    let severe = s.severe_console_entries().await;
    assert!(
        severe
            .iter()
            .all(|e| e.contains("/api/start") && e.contains("400")),
        "console errors before the run: {severe:#?}"
    );
    assert_eq!(
        controller.snapshot().state,
        loadgen::control::RunState::Ready
    );
    s.fill("#f-host", &target.url()).await;

    // A real run from the form.
    s.click("#btn-start").await;
    eventually("the run to start", || async {
        matches!(
            s.text("#h-state").await.to_lowercase().as_str(),
            "spawning" | "running"
        )
        .then_some(())
    })
    .await;
    assert!(
        s.text("#e-users").await.is_empty(),
        "messages cleared after a valid submit"
    );

    // The table fills with real numbers; Aggregated is the last row.
    let rows = eventually("the statistics table to show requests", || async {
        let rows = stats_rows(&s).await;
        let last = rows.last()?;
        (last.get(1).map(String::as_str) == Some("Aggregated")
            && num(&last[2]) >= 20.0
            && rows.len() >= 4)
            .then_some(rows)
    })
    .await;
    let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    for want in ["/items", "/items/[id]", "/flaky"] {
        assert!(names.contains(&want), "row {want} missing: {names:?}");
    }
    let agg = rows.last().unwrap();
    let per_row: f64 = rows[..rows.len() - 1].iter().map(|r| num(&r[2])).sum();
    assert!(per_row > 0.0 && agg.len() >= 11, "{agg:?}");
    assert!(num(&agg[4]) > 0.0, "median is a real number: {agg:?}");
    assert!(num(&agg[7]) >= num(&agg[6]), "max >= min: {agg:?}");
    let align = s
        .exec(
            "return getComputedStyle(document.querySelector('#stats-body tr td:nth-child(3)')).textAlign;",
            json!([]),
        )
        .await;
    assert_eq!(align, json!("right"), "numbers are right-aligned");

    // Failures and status codes from /flaky's 503s.
    eventually("failures to appear", || async {
        let text = s
            .exec(
                "return document.getElementById('failures-body').textContent;",
                json!([]),
            )
            .await;
        text.as_str()
            .unwrap_or_default()
            .contains("503")
            .then_some(())
    })
    .await;
    s.click("#tab-codes").await;
    let codes = s.text("#codes-body").await;
    assert!(
        codes.contains("200") && codes.contains("503"),
        "status codes: {codes}"
    );

    // Upstreams: one share bar per server of the (stand-in) balancer status.
    s.click("#tab-upstreams").await;
    let shares = eventually("the upstream share bars", || async {
        let v = s
            .exec(
                "return Array.from(document.querySelectorAll('#upstreams [role=meter]'))\
                 .map(m => Number(m.getAttribute('aria-valuenow')));",
                json!([]),
            )
            .await;
        let shares: Vec<f64> = serde_json::from_value(v).unwrap_or_default();
        (shares.len() == 3 && shares.iter().all(|x| *x > 0.0)).then_some(shares)
    })
    .await;
    let sum: f64 = shares.iter().sum();
    assert!(
        (sum - 100.0).abs() < 0.5,
        "shares add up to 100 %: {shares:?}"
    );
    let upstream_text = s.text("#upstreams").await;
    assert!(upstream_text.contains("route /flaky"), "{upstream_text}");

    // Charts: canvases drawn with real points.
    s.click("#tab-charts").await;
    for id in ["chart-rps", "chart-lat", "chart-users"] {
        eventually(&format!("{id} to draw at least 4 points"), || async {
            let (canvas, points) = chart_points(&s, id).await;
            (canvas && points >= 4).then_some(())
        })
        .await;
    }
    let (canvas, buckets) = chart_points(&s, "chart-hist").await;
    assert!(
        canvas && buckets > 0,
        "latency histogram drawn ({buckets} buckets)"
    );
    let legend = s.text("#chart-lat .u-legend").await;
    assert!(
        legend.contains("p95") && legend.contains("p99"),
        "legend: {legend}"
    );

    let shots = target_dir();
    s.screenshot(&shots.join("dashboard-screenshot.png")).await;
    s.click("#tab-stats").await;
    s.screenshot(&shots.join("dashboard-screenshot-stats.png"))
        .await;

    // Edit the user count while running.
    s.click("#btn-edit").await;
    s.fill("#e-f-users", "0").await;
    s.click("#btn-apply").await;
    assert!(s.text("#e-e-users").await.contains("at least 1"));
    s.fill("#e-f-users", "6").await;
    s.fill("#e-f-rate", "20").await;
    s.click("#btn-apply").await;
    eventually("the header to show 6 users", || async {
        (s.text("#h-users").await == "6").then_some(())
    })
    .await;
    assert_eq!(controller.snapshot().target_users, 6);
    assert_eq!(controller.snapshot().user_count, 6);

    // The phone layout: nothing wider than the screen, the table scrolls in its box.
    s.emulate_phone(390, 844).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let widths = s
        .exec(
            "return [window.innerWidth, document.documentElement.scrollWidth];",
            json!([]),
        )
        .await;
    assert_eq!(widths[0], json!(390), "phone emulation active: {widths}");
    assert!(
        widths[1].as_i64().unwrap_or(9999) <= 390,
        "page wider than a phone: {widths}"
    );
    s.screenshot(&shots.join("dashboard-screenshot-phone.png"))
        .await;
    s.clear_emulation().await;

    // Stop: the state changes, the figures stay.
    s.click("#btn-stop").await;
    eventually("the run to stop", || async {
        (s.text("#h-state").await.to_lowercase() == "stopped").then_some(())
    })
    .await;
    let stopped_rows = stats_rows(&s).await;
    assert!(num(&stopped_rows.last().unwrap()[2]) >= num(&agg[2]));
    assert_eq!(
        s.text("#h-rps").await,
        "0",
        "a stopped run sends nothing: the header's RPS is 0"
    );

    // The CSV download has Locust's header and the aggregated row.
    let csv = s
        .exec_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/download/stats.csv').then(r => r.text().then(t => done([r.status, r.headers.get('content-type'), t])))\
             .catch(e => done([0, '', String(e)]));",
            json!([]),
        )
        .await;
    assert_eq!(csv[0], json!(200), "{csv}");
    assert!(
        csv[1].as_str().unwrap_or_default().starts_with("text/csv"),
        "{csv}"
    );
    let text = csv[2].as_str().unwrap_or_default();
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%"),
        "CSV header: {header}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .contains("Aggregated"),
        "{text}"
    );

    // A reload shows the same run, history included.
    s.refresh().await;
    eventually("the page to reconnect after reload", || async {
        (s.text("#h-state").await.to_lowercase() == "stopped" && stats_rows(&s).await.len() >= 4)
            .then_some(())
    })
    .await;
    s.click("#tab-charts").await;
    let (_, points) = chart_points(&s, "chart-users").await;
    assert!(
        points >= 2,
        "history restored after reload ({points} points)"
    );

    // No uncaught errors and nothing logged as an error in the console.
    assert_eq!(
        page_errors(&s).await,
        Vec::<String>::new(),
        "errors on the page"
    );
    let severe = s.severe_console_entries().await;
    assert!(severe.is_empty(), "console errors: {severe:#?}");

    s.close().await;
    drop(driver);
    controller.stop();
    tokio::time::timeout(Duration::from_secs(10), controller.wait())
        .await
        .expect("run did not stop");
    dash.stop().await;
    target.stop().await;

    eprintln!("screenshots in {}", shots.display());
}
