//! A cluster's processes end: on `stop`, on drop, and when the owning
//! process is SIGKILLed; and a stopped cluster's folder can be reused.

use std::time::Duration;

use crate::support::{
    bounded, child_report, processes_mentioning, query, scratch, spawn_child, start_in,
    wait_all_gone,
};
use pgcluster::{Cluster, Error, Options};

/// "It stops" is bounded generously: a loaded two-core box is slow, not stuck.
const GONE_BOUND: Duration = Duration::from_secs(20);

#[tokio::test]
async fn stop_leaves_no_postgres_process_behind() {
    bounded(async {
        let dir = scratch();
        let pg = start_in(dir.path()).await;
        let data = pg.data_dir().display().to_string();
        // A connected backend too, so that stop has a client to cut off.
        let mut client = pg
            .client("psql")
            .args(["-X", "-c", "select pg_sleep(60)"])
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut pids = pg.child_pids().unwrap();
        pids.push(pg.pid());
        pg.stop().await.unwrap();
        assert!(
            wait_all_gone(&pids, Duration::ZERO).await.is_empty(),
            "stop returned with processes left"
        );
        assert!(processes_mentioning(&data).is_empty());
        let _ = client.kill();
        let _ = client.wait();
    })
    .await;
}

#[tokio::test]
async fn a_dropped_cluster_shuts_down_by_itself() {
    bounded(async {
        let dir = scratch();
        let pg = start_in(dir.path()).await;
        let mut pids = pg.child_pids().unwrap();
        pids.push(pg.pid());
        drop(pg);
        assert_eq!(wait_all_gone(&pids, GONE_BOUND).await, Vec::<u32>::new());
    })
    .await;
}

#[tokio::test]
async fn the_server_dies_with_a_sigkilled_owner() {
    bounded(async {
        let dir = scratch();
        let mut owner = spawn_child(&format!("hold:{}", dir.path().display()), &[]);
        let report = child_report(&mut owner);
        let pid: u32 = report
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("owner said {report}"))
            .parse()
            .unwrap();
        let data = dir
            .path()
            .join("postgres")
            .canonicalize()
            .unwrap()
            .display()
            .to_string();
        let mut pids = processes_mentioning(&data);
        pids.extend(pgcluster_children(pid));
        assert!(pids.contains(&pid));
        owner.kill().unwrap(); // SIGKILL: no destructor, no stop.
        owner.wait().unwrap();
        assert_eq!(wait_all_gone(&pids, GONE_BOUND).await, Vec::<u32>::new());
    })
    .await;
}

/// The children of `pid`, read from /proc here rather than through the library.
fn pgcluster_children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|c| {
            let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .nth(1)
                .map(str::to_string);
            ppid == Some(pid.to_string())
        })
        .collect()
}

#[tokio::test]
async fn a_folder_is_reused_when_stopped_and_refused_while_running() {
    bounded(async {
        let dir = scratch();
        let first = start_in(dir.path()).await;
        match Cluster::start(Options::new(dir.path().join("postgres"))).await {
            Err(Error::DataDirInUse { why, .. }) => assert!(why.contains("still running"), "{why}"),
            other => panic!("expected DataDirInUse, got {other:?}"),
        }
        first.stop().await.unwrap();
        let second = start_in(dir.path()).await;
        second.stop().await.unwrap();

        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
        let err = Cluster::start(Options::new(&foreign)).await.unwrap_err();
        assert!(matches!(err, Error::DataDirInUse { .. }), "{err}");
        assert!(
            foreign.join("notes.txt").exists(),
            "a folder that is not ours is left alone"
        );
    })
    .await;
}

/// The death signal follows the thread that spawned the server. Here that
/// thread is a blocking-pool thread that idles out 100 ms after the start
/// returns; the server must live on (the library spawns from a guardian
/// thread of its own) until it is stopped.
#[test]
fn a_server_outlives_the_thread_that_started_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bounded(async {
        let dir = scratch();
        let handle = tokio::runtime::Handle::current();
        let path = dir.path().to_path_buf();
        let pg = tokio::task::spawn_blocking(move || handle.block_on(start_in(&path)))
            .await
            .unwrap();
        // Long enough for the idle blocking thread to exit.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            crate::support::alive(pg.pid()),
            "the server died with the thread that started it"
        );
        assert_eq!(crate::support::query(&pg, "select 1"), "1");
        pg.stop().await.unwrap();
    }));
}

#[tokio::test]
async fn a_restart_keeps_data_port_and_password_and_refuses_while_down() {
    bounded(async {
        let dir = scratch();
        let mut pg = start_in(dir.path()).await;
        let url = pg.url();
        query(
            &pg,
            "create table kept (v int); insert into kept values (42)",
        );
        let (port, old_pid) = (pg.port(), pg.pid());
        // The future runs while `pg` is borrowed by the restart: it gets
        // the psql path and URL, not the cluster.
        let psql_path = pg.binaries().tool("psql");
        let refused = pg
            .restart_with(async {
                let out = std::process::Command::new(&psql_path)
                    .args(["-X", "-At", "-c", "select 1", &url])
                    .env("PGCONNECT_TIMEOUT", "5")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap();
                !out.status.success()
            })
            .await
            .unwrap();
        assert!(refused, "a query while the server was down succeeded");
        assert_eq!(pg.port(), port);
        assert_ne!(pg.pid(), old_pid, "the server was not restarted");
        assert_eq!(pg.url(), url);
        assert_eq!(query(&pg, "select v from kept"), "42");
        pg.stop().await.unwrap();
    })
    .await;
}
