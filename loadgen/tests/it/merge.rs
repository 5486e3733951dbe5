//! `--segment I/N` splits a test; `loadgen merge` puts it back together with
//! the same counts as one combined run.

use crate::support::{loadgen, path_in, read_report, Reply, Server};

const SCENARIO: &str = r#"
name: two endpoints
users:
  - name: U
    tasks:
      - name: both
        steps:
          - get: /ok
          - get: /missing
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_segments_equal_the_combined_run() {
    let srv = Server::start(|s| {
        if s.path == "/ok" {
            // Slower than any 404, so the successful latency is told apart.
            Reply::ok("12345").after(std::time::Duration::from_millis(20))
        } else {
            Reply::status(404)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = path_in(&dir, "two.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let url = srv.url();
    let go = |json: String, segment: Option<&'static str>| {
        let (scenario, url) = (scenario.clone(), url.clone());
        async move {
            let mut args = vec![
                "-f",
                &scenario,
                "-H",
                &url,
                "-u",
                "3",
                "-r",
                "100",
                "-i",
                "101",
                "-t",
                "20s",
                "--headless",
                "--only-summary",
                "--json",
                &json,
            ];
            if let Some(s) = segment {
                args.extend(["--segment", s]);
            }
            let o = loadgen(&args).await;
            assert_eq!(o.code, 1, "every iteration has a 404: {o:?}");
            read_report(std::path::Path::new(&json))
        }
    };
    let combined = go(path_in(&dir, "all.json"), None).await;
    let s1 = go(path_in(&dir, "s1.json"), Some("1/2")).await;
    let s2 = go(path_in(&dir, "s2.json"), Some("2/2")).await;
    assert_eq!(
        srv.count(),
        2 * 202,
        "each run sent 101 iterations of 2 requests"
    );
    assert_eq!(combined.counts(), (202, 101));
    // 101 iterations split 51 + 50; 3 users split 2 + 1.
    assert_eq!(s1.counts(), (102, 51));
    assert_eq!(s2.counts(), (100, 50));
    assert_eq!(s1.meta.segment.as_deref(), Some("1/2"));

    let (mjson, mcsv) = (path_in(&dir, "merged.json"), path_in(&dir, "merged"));
    let (a, b) = (path_in(&dir, "s1.json"), path_in(&dir, "s2.json"));
    let o = loadgen(&["merge", &a, &b, "--json", &mjson, "--csv", &mcsv]).await;
    assert_eq!(o.code, 1, "the merged result has failures too: {o:?}");
    let merged = read_report(std::path::Path::new(&mjson));
    let key = |r: &loadgen::RunReport| {
        r.stats
            .iter()
            .map(|s| {
                (
                    s.method.clone(),
                    s.name.clone(),
                    s.num_requests,
                    s.num_failures,
                    s.avg_content_length,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&merged), key(&combined));
    assert_eq!(merged.status_codes, combined.status_codes);
    let fails = |r: &loadgen::RunReport| {
        r.failures
            .iter()
            .map(|f| (f.name.clone(), f.error.clone(), f.occurrences))
            .collect::<Vec<_>>()
    };
    assert_eq!(fails(&merged), fails(&combined));
    assert_eq!(merged.meta.max_users, s1.meta.max_users + s2.meta.max_users);
    // The histograms were merged, not the rounded figures: every request is in them.
    let agg = merged.hdr.last().unwrap();
    assert_eq!(agg.num_requests, 202);
    let t = merged.total().unwrap();
    assert!(
        t.max_response_time
            >= s1
                .total()
                .unwrap()
                .max_response_time
                .max(s2.total().unwrap().max_response_time)
                - 0.01
    );
    // The successful requests' latency is merged too: all 101 of `/ok`,
    // none of the 404s.
    let ok = t
        .successful
        .as_ref()
        .expect("both segments kept their failures");
    assert_eq!(ok.num_requests, 101);
    assert!(ok.min_response_time >= 20.0, "{ok:?}");
    assert_eq!(
        ok.num_requests,
        combined
            .total()
            .unwrap()
            .successful
            .as_ref()
            .unwrap()
            .num_requests
    );
    let missing = merged.stats.iter().find(|s| s.name == "/missing").unwrap();
    assert_eq!(missing.successful.as_ref().unwrap().num_requests, 0);
    let stats = std::fs::read_to_string(format!("{mcsv}_stats.csv")).unwrap();
    assert!(stats.contains(",Aggregated,202,101,"), "{stats}");
    // A file that is not a report is refused with exit code 2.
    let o = loadgen(&["merge", &a, &scenario]).await;
    assert_eq!(o.code, 2, "{o:?}");
    // So are sums that would be wrong: a segment twice (its requests would
    // count double), a segment with a whole run of the test.
    let o = loadgen(&["merge", &a, &a, "--json", &mjson]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr
            .contains("is given twice: merging it twice would count its requests twice"),
        "{o:?}"
    );
    let all = path_in(&dir, "all.json");
    let o = loadgen(&["merge", &a, &all]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("is a segment but") && o.stderr.contains("is a whole run"),
        "{o:?}"
    );
    merge_with_an_older_report(&dir, &a, &b).await;
    srv.stop().await;
}

/// Segment 1 as an older loadgen wrote it (no failures' histograms, no
/// successful latency) merges with segment 2: where failures were counted
/// the successful latency is unknown and left out, elsewhere it is kept.
async fn merge_with_an_older_report(dir: &tempfile::TempDir, a: &str, b: &str) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a).unwrap()).unwrap();
    for key in ["stats", "hdr"] {
        for row in v[key].as_array_mut().unwrap() {
            let row = row.as_object_mut().unwrap();
            for field in ["successful", "failed", "sum_failed_us"] {
                row.remove(field);
            }
        }
    }
    let old = path_in(dir, "s1-old.json");
    std::fs::write(&old, v.to_string()).unwrap();
    let out = path_in(dir, "merged-old.json");
    let o = loadgen(&["merge", &old, b, "--json", &out]).await;
    assert_eq!(o.code, 1, "{o:?}");
    let merged = read_report(std::path::Path::new(&out));
    assert_eq!(merged.counts(), (202, 101));
    let row = |name: &str| merged.stats.iter().find(|s| s.name == name).unwrap();
    assert_eq!(row("Aggregated").successful, None);
    assert_eq!(row("/missing").successful, None);
    let ok = row("/ok").successful.as_ref().expect("/ok never failed");
    assert_eq!(ok.num_requests, 101);
    assert!(!std::fs::read_to_string(&out)
        .unwrap()
        .contains("\"successful\": null"));
}
