//! The binary's exit codes: 0 all good, 1 a request failed (Locust's
//! convention), 3 a threshold was breached (it wins over 1), 2 bad input.

use crate::support::{loadgen, Reply, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_failures_and_thresholds() {
    let ok = Server::start(|_| Reply::ok("fine")).await;
    let flaky = Server::start(|s| Reply::failing_every(s, 5, 500, "fine")).await;
    let quick = |url: String, extra: &[&str]| {
        let mut args: Vec<String> = vec![url, "-u".into(), "2".into(), "-i".into(), "50".into()];
        args.extend(
            ["-t", "20s", "--only-summary"]
                .iter()
                .map(|s| s.to_string()),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        loadgen(&refs).await
    };

    let o = run(quick(format!("{}/", ok.url()), &[])).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("Aggregated"),
        "the end summary is printed: {o:?}"
    );

    let o = run(quick(format!("{}/", flaky.url()), &[])).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("10 of 50 requests failed"), "{o:?}");

    let o = run(quick(format!("{}/", ok.url()), &["--threshold", "p50<1us"])).await;
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.contains("p50<1us"), "{o:?}");

    // A threshold that holds does not hide failed requests…
    let o = run(quick(
        format!("{}/", flaky.url()),
        &["--threshold", "fail_ratio<0.5"],
    ))
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    // …and a breached one wins over them.
    let o = run(quick(
        format!("{}/", flaky.url()),
        &[
            "--threshold",
            "fail_ratio<0.1",
            "--threshold",
            "requests==50",
        ],
    ))
    .await;
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr.contains("fail_ratio<0.1") && !o.stderr.contains("requests==50"),
        "{o:?}"
    );

    // Bad thresholds and flags are usage errors.
    let o = run(quick(format!("{}/", ok.url()), &["--threshold", "speed>1"])).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("unknown metric"), "{o:?}");
    assert_eq!(ok.count(), 100, "the usage error sent nothing");
    ok.stop().await;
    flaky.stop().await;
}
