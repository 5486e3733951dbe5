//! `--balancer-status` problems are warned about once each, in words that
//! say what is wrong: a URL that answers something other than the
//! balancer's JSON, and a URL where nothing listens.

use crate::support::{loadgen, Output, Reply, Server};

/// How often `needle` appears in everything the process printed.
fn times(o: &Output, needle: &str) -> usize {
    o.stdout.matches(needle).count() + o.stderr.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancer_status_problems_are_warned_once() {
    let srv = Server::start(|_| Reply::ok("<html>not the balancer</html>")).await;
    let url = format!("{}/", srv.url());
    let run = |status: String| {
        let url = url.clone();
        async move {
            loadgen(&[
                &url,
                "-u",
                "1",
                "-t",
                "2s",
                "--only-summary",
                "--balancer-status",
                &status,
            ])
            .await
        }
    };

    // Answers 200, but HTML: the page would just stay empty without a word.
    let o = run(format!("{}/status", srv.url())).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(times(&o, "--balancer-status"), 1, "{o:?}");
    assert!(o.stdout.contains("not JSON"), "{o:?}");

    // Nothing listens there (a port just bound and released).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/status", free.local_addr().unwrap());
    drop(free);
    let o = run(down).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(times(&o, "--balancer-status"), 1, "warned once: {o:?}");
    assert!(o.stdout.contains("cannot read it"), "{o:?}");
    srv.stop().await;
}
