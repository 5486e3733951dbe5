//! The four CSV files carry Locust's exact headers (copied from Locust 2.47
//! `locust/stats.py`: `requests_csv_columns`, `stats_history_csv_columns`,
//! `failures_columns`, `exceptions_columns`, with `PERCENTILES_TO_REPORT`
//! through `get_readable_percentiles`), written like Python's csv module.

use loadgen::Scenario;

use crate::support::{plan, run, Reply, Server};

const PCT: &str = "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

fn locust_stats() -> String {
    format!("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,{PCT}\r\n")
}

fn locust_history() -> String {
    format!("Timestamp,User Count,Type,Name,Requests/s,Failures/s,{PCT},Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size\r\n")
}

const LOCUST_FAILURES: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen\r\n";
const LOCUST_EXCEPTIONS: &str = "Count,Message,Traceback,Nodes\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_headers_are_locusts_byte_for_byte() {
    let srv = Server::start(|s| Reply::failing_every(s, 4, 503, "{}")).await;
    let r = run(plan(
        &srv.url(),
        Scenario::single_get("/a,b").unwrap(),
        2,
        40,
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("run");
    let files = loadgen::write_csv(&r, &prefix).unwrap();
    assert_eq!(files.len(), 4);
    let read =
        |suffix: &str| std::fs::read_to_string(dir.path().join(format!("run{suffix}"))).unwrap();

    let stats = read("_stats.csv");
    assert!(stats.starts_with(&locust_stats()), "{stats}");
    let lines: Vec<&str> = stats.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "header, one endpoint, Aggregated: {stats}");
    // A name with a comma is quoted, as Python's csv.writer does.
    assert!(lines[1].starts_with("GET,\"/a,b\",40,10,"), "{}", lines[1]);
    assert!(lines[2].starts_with(",Aggregated,40,10,"), "{}", lines[2]);
    assert_eq!(lines[2].split(',').count(), 22);

    let history = read("_stats_history.csv");
    assert!(history.starts_with(&locust_history()), "{history}");
    let row = history.split("\r\n").nth(1).unwrap();
    assert_eq!(row.split(',').count(), 24, "{row}");
    assert!(row.contains(",,Aggregated,"), "{row}");

    let failures = read("_failures.csv");
    assert!(failures.starts_with(LOCUST_FAILURES), "{failures}");
    let row: Vec<&str> = failures.split("\r\n").nth(1).unwrap().split(',').collect();
    assert_eq!(&row[..3], ["GET", "\"/a", "b\""]);
    assert_eq!(row[3], "status: HTTP 503 Service Unavailable");
    assert_eq!(row[4], "10");
    assert!(
        row[5].ends_with('Z') && row[5].len() == 20,
        "first seen {}",
        row[5]
    );

    assert_eq!(read("_exceptions.csv"), LOCUST_EXCEPTIONS);
    srv.stop().await;
}
