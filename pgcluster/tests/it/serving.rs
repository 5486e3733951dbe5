//! A started cluster serves: over loopback TCP only, with a password that is
//! really checked, as its own unprivileged user, beside another cluster.

use crate::support::{bounded, is_root, psql, query, scratch, start_in};
use pgcluster::{Cluster, Options};

#[tokio::test]
async fn a_cluster_serves_psql_on_loopback() {
    bounded(async {
        let dir = scratch();
        let pg = start_in(dir.path()).await;
        assert_eq!(query(&pg, "select 40 + 2"), "42");
        assert_eq!(query(&pg, "show listen_addresses"), "127.0.0.1");
        assert_eq!(query(&pg, "show fsync"), "on");
        assert_eq!(query(&pg, "show unix_socket_directories"), "");
        assert!(pg.url().starts_with(&format!(
            "postgres://lab:{}@127.0.0.1:{}/postgres",
            pg.password(),
            pg.port()
        )));
        assert!(pg.log_path().starts_with(pg.data_dir()) && pg.log_path().exists());
        assert!(pg
            .data_dir()
            .starts_with(dir.path().canonicalize().unwrap()));
        let status = std::fs::read_to_string(format!("/proc/{}/status", pg.pid())).unwrap();
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap();
        if is_root() {
            assert_ne!(uid, "0", "PostgreSQL must not run as root");
        }
        pg.stop().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    bounded(async {
        let dir = scratch();
        let pg = Cluster::start(Options {
            password: Some("right horse".into()),
            ..Options::new(dir.path().join("pg"))
        })
        .await
        .unwrap();
        assert_eq!(
            pg.url(),
            format!(
                "postgres://lab:right%20horse@127.0.0.1:{}/postgres",
                pg.port()
            )
        );
        assert_eq!(query(&pg, "select current_user"), "lab");
        let wrong = format!("postgres://lab:wrong@127.0.0.1:{}/postgres", pg.port());
        let out = psql(&pg, &wrong, "select 1");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("password authentication failed"),
            "{stderr}"
        );
        let nobody = format!(
            "postgres://someone:right%20horse@127.0.0.1:{}/postgres",
            pg.port()
        );
        assert!(
            !psql(&pg, &nobody, "select 1").status.success(),
            "an unknown user must be refused"
        );
        pg.stop().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn two_clusters_run_at_once_on_their_own_ports() {
    bounded(async {
        let (a_dir, b_dir) = (scratch(), scratch());
        let (a, b) = tokio::join!(start_in(a_dir.path()), start_in(b_dir.path()));
        assert_ne!(a.port(), b.port());
        query(&a, "create table only_in_a (x int)");
        assert_eq!(
            query(
                &a,
                "select count(*) from pg_tables where tablename = 'only_in_a'"
            ),
            "1"
        );
        assert_eq!(
            query(
                &b,
                "select count(*) from pg_tables where tablename = 'only_in_a'"
            ),
            "0"
        );
        let cross = format!(
            "postgres://lab:{}@127.0.0.1:{}/postgres",
            a.password(),
            b.port()
        );
        assert!(
            !psql(&b, &cross, "select 1").status.success(),
            "each cluster has its own password"
        );
        a.stop().await.unwrap();
        b.stop().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn databases_are_created_and_reported_processes_are_the_servers() {
    bounded(async {
        let dir = scratch();
        let pg = start_in(dir.path()).await;
        pg.create_database("market").await.unwrap();
        let out = psql(&pg, &pg.url_for("market"), "select current_database()");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "market");
        let again = pg.create_database("market").await.unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        let bad = pg
            .create_database("market; drop")
            .await
            .unwrap_err()
            .to_string();
        assert!(bad.starts_with("invalid database name"), "{bad}");

        let children = pg.child_pids().unwrap();
        assert!(
            !children.is_empty(),
            "a running server has a checkpointer and friends"
        );
        for pid in &children {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
            assert_eq!(comm.trim(), "postgres");
        }
        pg.stop().await.unwrap();
    })
    .await;
}

/// `Options::listen` and `clients`: a server on 127.0.0.2 (still loopback,
/// so the test needs no namespace) is reached there and not on 127.0.0.1,
/// and a client network that is not one is refused before anything starts.
#[tokio::test]
async fn a_cluster_listens_on_the_address_it_is_given() {
    bounded(async {
        let dir = scratch();
        let pg = Cluster::start(Options {
            listen: [127, 0, 0, 2].into(),
            clients: vec!["127.0.0.0/8".into()],
            ..Options::new(dir.path().join("pg"))
        })
        .await
        .unwrap();
        assert_eq!(pg.host().to_string(), "127.0.0.2");
        assert!(pg.url().contains(&format!("@127.0.0.2:{}/", pg.port())));
        assert_eq!(query(&pg, "show listen_addresses"), "127.0.0.2");
        // The kernel may pick 127.0.0.1 as the source: `clients` lets it in.
        assert_eq!(query(&pg, "select 40 + 2"), "42");
        let elsewhere = pg.url().replace("@127.0.0.2:", "@127.0.0.1:");
        let out = psql(&pg, &elsewhere, "select 1");
        assert!(!out.status.success(), "nothing listens on 127.0.0.1");
        pg.stop().await.unwrap();

        let err = Cluster::start(Options {
            clients: vec!["10.0.0.0/33".into()],
            ..Options::new(dir.path().join("bad"))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("client network \"10.0.0.0/33\""), "{err}");
        assert!(!dir.path().join("bad").exists(), "refused before initdb");
    })
    .await;
}
