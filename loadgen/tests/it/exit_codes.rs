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

/// Dropped iterations change nothing by themselves (k6 does the same), but a
/// `dropped_iterations` threshold fails the run on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_iterations_threshold_fails_the_run() {
    // One virtual user, 50 arrivals/s, 100 ms answers: most arrivals find it busy.
    let slow =
        Server::start(|_| Reply::ok("late").after(std::time::Duration::from_millis(100))).await;
    let url = format!("{}/", slow.url());
    let open = |extra: &'static [&'static str]| {
        let url = url.clone();
        async move {
            let mut args = vec![
                url.as_str(),
                "--arrival-rate",
                "50",
                "--max-vus",
                "1",
                "-t",
                "1s",
                "--only-summary",
            ];
            args.extend_from_slice(extra);
            loadgen(&args).await
        }
    };
    let o = open(&[]).await;
    assert_eq!(o.code, 0, "drops alone do not fail the run: {o:?}");
    assert!(o.stdout.contains("iterations could not start"), "{o:?}");
    let o = open(&["--threshold", "dropped_iterations<1"]).await;
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr.contains("dropped_iterations<1")
            && o.stdout.contains("FAIL threshold dropped_iterations<1"),
        "{o:?}"
    );
    let o = open(&["--threshold", "dropped_iterations<1@/"]).await;
    assert_eq!(o.code, 2, "{o:?}");
    slow.stop().await;
}
