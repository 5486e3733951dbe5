//! Report files: a path that cannot be written is refused before the run
//! (nothing is sent), and one that fails at the end does not take the other
//! reports, nor the summary, with it.

use std::path::Path;

use crate::support::{loadgen, path_in, Reply, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_output_is_refused_before_the_run() {
    let srv = Server::start(|_| Reply::ok("fine")).await;
    let dir = tempfile::tempdir().unwrap();
    let (csv, json, html) = (
        path_in(&dir, "nodir/x"),
        path_in(&dir, "ok.json"),
        path_in(&dir, "ok.html"),
    );
    let url = format!("{}/", srv.url());
    let o = loadgen(&[
        &url, "-u", "1", "-t", "30s", "--csv", &csv, "--json", &json, "--html", &html,
    ])
    .await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("--csv: cannot write")
            && o.stderr.contains("nodir/x_stats.csv")
            && o.stderr.contains("create the directory"),
        "the message names the flag, the file and the remedy: {o:?}"
    );
    assert_eq!(srv.count(), 0, "nothing was sent");
    assert!(!Path::new(&json).exists() && !Path::new(&html).exists());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_failing_at_the_end_does_not_take_the_others() {
    let srv = Server::start(|_| Reply::ok("fine")).await;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let json = sub.join("r.json").to_string_lossy().into_owned();
    let (csv, html) = (path_in(&dir, "out"), path_in(&dir, "ok.html"));
    let url = format!("{}/", srv.url());
    let args: Vec<String> = [
        url.as_str(),
        "-u",
        "1",
        "-t",
        "2s",
        "--only-summary",
        "--json",
        &json,
        "--csv",
        &csv,
        "--html",
        &html,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = tokio::spawn(async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        loadgen(&refs).await
    });
    // The paths were checked when the first request arrives: now make one fail.
    srv.wait_for(1).await;
    std::fs::remove_dir_all(&sub).unwrap();
    let o = run.await.unwrap();
    assert_eq!(o.code, 4, "{o:?}");
    assert!(
        o.stderr.contains("--json") && o.stderr.contains("sub/r.json"),
        "the failed file is named: {o:?}"
    );
    assert!(
        o.stdout.contains("Aggregated"),
        "the summary is still printed: {o:?}"
    );
    let page = std::fs::read_to_string(&html).expect("the HTML report was written");
    assert!(page.contains("<h2>Request statistics</h2>"));
    let stats = std::fs::read_to_string(format!("{csv}_stats.csv")).expect("the CSV was written");
    assert!(stats.contains("Aggregated"), "{stats}");
    srv.stop().await;
}
