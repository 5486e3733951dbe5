//! What goes wrong before a server runs says what to do: missing binaries
//! name the package, a data folder the server's account cannot reach is
//! named, and a taken port is reported with the server's own words.

use std::os::unix::fs::PermissionsExt;

use crate::support::{bounded, child_report, is_root, scratch, spawn_child, start_in};
use pgcluster::{Cluster, Error, Options, BIN_DIR_ENV};

#[tokio::test]
async fn an_empty_bin_dir_override_names_the_package() {
    bounded(async {
        let dir = scratch();
        let empty = dir.path().join("empty-bin");
        std::fs::create_dir(&empty).unwrap();
        // Through the real environment variable, in a child process, so no
        // other test in this binary sees it.
        let mut owner = spawn_child(
            &format!("start:{}", dir.path().display()),
            &[(BIN_DIR_ENV, &empty)],
        );
        let report = child_report(&mut owner);
        owner.wait().unwrap();
        assert!(report.starts_with("error "), "{report}");
        assert!(report.contains("apt-get install postgresql"), "{report}");
        assert!(report.contains(&empty.display().to_string()), "{report}");

        let err = Cluster::start(Options {
            bin_dir: Some(empty.clone()),
            ..Options::new(dir.path().join("pg"))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NotInstalled { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_data_folder_the_server_cannot_reach_is_named() {
    if !is_root() {
        return; // Only root hands the cluster to another account.
    }
    bounded(async {
        let dir = scratch();
        let closed = dir.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = Cluster::start(Options::new(closed.join("postgres")))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Unreachable { .. }), "{msg}");
        assert!(
            msg.contains("`nobody` cannot enter") && msg.contains("closed"),
            "{msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_taken_port_is_reported_with_the_log() {
    bounded(async {
        let dir = scratch();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = Cluster::start(Options {
            port: Some(port),
            ..Options::new(dir.path().join("pg"))
        })
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Exited { .. }), "{msg}");
        assert!(
            msg.contains("could not bind") && msg.contains("postgres.log"),
            "{msg}"
        );
        // The library picks another port when it chose one itself.
        let pg = start_in(dir.path()).await;
        assert_ne!(pg.port(), port);
        pg.stop().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn bad_names_are_refused_before_anything_runs() {
    let dir = scratch();
    let err = Cluster::start(Options {
        user: "Robert'); drop".into(),
        ..Options::new(dir.path().join("pg"))
    })
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("invalid user name"), "{err}");
    assert!(!dir.path().join("pg").exists());
}
