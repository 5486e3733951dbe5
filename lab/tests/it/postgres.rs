//! `--database postgres`: a throwaway PostgreSQL cluster (real server
//! binaries, through pgcluster) for a short compare, listed in the report and
//! gone afterwards, after SIGINT too; an existing server with wrong
//! credentials; and a machine without the server binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{
    assert_no_processes, lab, lab_out, report_in, run_fails, spawn_lines, SHORT_SEARCH,
};

/// The compare e2e test's short profile, on PostgreSQL, stepping up to
/// `max_load` users in at most `max_steps` steps.
fn short_pg(max_load: &str, max_steps: &str) -> Vec<String> {
    [
        "compare",
        "--database",
        "postgres",
        "--replicas",
        "2",
        "--replica-cpus",
        "0.5",
        "--pool-size",
        "2",
        "--step-duration",
        "2s",
        "--start-load",
        "2",
        "--max-load",
        max_load,
        "--max-steps",
        max_steps,
        "--refine",
        "0",
        "--confirm",
        "0s",
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The data folder from the lab's `database: a throwaway PostgreSQL cluster
/// on 127.0.0.1:PORT, data in DIR …` line.
fn data_dir_of(out: &str) -> PathBuf {
    let line = out
        .lines()
        .find(|l| l.contains("throwaway PostgreSQL cluster"))
        .unwrap_or_else(|| panic!("no database line:\n{out}"));
    let rest = line.split("data in ").nth(1).unwrap();
    let end = rest.find(" (").unwrap_or(rest.len());
    PathBuf::from(&rest[..end])
}

/// Live processes of the cluster in `data`: the postmaster named in
/// `postmaster.pid` and its children.
fn postgres_pids(data: &Path) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return Vec::new();
    };
    let Some(pm) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return Vec::new();
    };
    let mut pids = vec![pm];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pm) {
            pids.push(pid);
        }
    }
    pids
}

fn is_live_postgres(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|r| r.trim_start().starts_with('Z'));
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !zombie && String::from_utf8_lossy(&cmd).starts_with("postgres")
}

fn assert_postgres_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|&p| is_live_postgres(p)) {
        assert!(
            Instant::now() < deadline,
            "postgres processes left: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `lab ARGS` to its end (at most 240 s); when a line starts with
/// `marker`, notes the cluster's processes, to check later that they end.
/// Returns the output, those processes and the output folder.
fn run_noting_postgres(args: &[&str], marker: &str) -> (String, Vec<u32>, tempfile::TempDir) {
    let (cmd, tmp) = lab_out(args);
    let (mut child, rx) = spawn_lines(cmd, false);
    let mut lines = Vec::new();
    let mut pids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if pids.is_empty() && line.starts_with(marker) {
            pids = postgres_pids(&data_dir_of(&lines.join("\n")));
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let out = lines.join("\n");
    assert!(status.success(), "{out}");
    assert!(
        pids.len() > 2,
        "the postmaster and its children: {pids:?}\n{out}"
    );
    (out, pids, tmp)
}

#[test]
fn compare_on_postgres_lists_the_database_and_stops_it() {
    let args = short_pg("4", "2");
    let (out, pids, tmp) = run_noting_postgres(&strs(&args), "[single] step 1/");
    // `nobody` can walk down to the (0755) temporary folder: the data stays
    // in the run folder. (The 0700 case is the SIGINT test's.)
    let data = data_dir_of(&out);
    assert!(data.starts_with(tmp.path()), "{}\n{out}", data.display());
    assert!(out.contains("outside the replicas' CPU budget"), "{out}");
    assert!(out.contains("postgres server"), "process table:\n{out}");

    let (_, report) = report_in(tmp.path());
    for side in ["single", "group"] {
        let step = &report[side]["steps"][0];
        let names: Vec<&str> = step["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"postgres server"), "{side}: {names:?}");
        assert!(names.contains(&"postgres backend"), "{side}: {names:?}");
        let evidence = report[side]["diagnosis"]["evidence"].to_string();
        assert!(evidence.contains("PostgreSQL server"), "{side}: {evidence}");
    }
    assert_postgres_gone(&pids);
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn scale_on_postgres_measures_each_count_and_stops_it() {
    let (out, pids, tmp) = run_noting_postgres(
        &[
            &[
                "scale",
                "--database",
                "postgres",
                "--pool-size",
                "2",
                "--replicas",
                "1,2",
                "--replica-cpus",
                "0.5",
            ],
            SHORT_SEARCH,
        ]
        .concat(),
        "[n1    ] step 1/",
    );
    assert!(out.contains("[n2    ] step 1/2"), "{out}");
    let run_dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("scale.json").exists())
        .expect("a run folder with scale.json");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("scale.json")).unwrap()).unwrap();
    for p in report["points"].as_array().unwrap() {
        let run = &p["runs"][0];
        assert!(run["goodput"].as_f64().unwrap() > 0.0, "{p}");
        // Each count's steps list the database server beside its replicas.
        let names: Vec<&str> = run["steps"][0]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"postgres server"), "{names:?}");
    }
    assert_postgres_gone(&pids);
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn demo_on_postgres_serves_through_the_balancer_and_stops_it() {
    let (out, pids, tmp) = run_noting_postgres(
        &[
            "demo",
            "--database",
            "postgres",
            "--pool-size",
            "2",
            "--chapter",
            "2",
            "--run-time",
            "2s",
            "--users",
            "4",
            "--replicas",
            "2",
            "--replica-cpus",
            "0.5",
        ],
        "── chapter 2",
    );
    // Both replicas served their share, each from the one database.
    for r in ["r1 ", "r2 "] {
        let served: u64 = out
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(r) && l.contains(" requests "))
            .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or_else(|| panic!("no share line for {r}\n{out}"));
        assert!(served > 0, "{r} served nothing\n{out}");
    }
    assert!(out.contains("every process stopped"), "{out}");
    assert_postgres_gone(&pids);
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn sigint_mid_run_stops_postgres() {
    let args = short_pg("64", "6");
    let (cmd, tmp) = lab_out(&strs(&args));
    // A 0700 output folder, as under root's home: `nobody` cannot enter it,
    // so the data goes under the system temp folder and the lab says why.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (mut child, rx) = spawn_lines(cmd, false);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no finished step in time:\n{}", lines.join("\n"))
            });
        let done = line.starts_with("[group ] step 1/");
        lines.push(line);
        if done {
            break;
        }
    }
    let out = lines.join("\n");
    assert!(out.contains("cannot enter"), "{out}");
    let data = data_dir_of(&out);
    assert!(
        data.starts_with(std::env::temp_dir()) && !data.starts_with(tmp.path()),
        "{}",
        data.display()
    );
    let pids = postgres_pids(&data);
    assert!(pids.len() > 2, "{pids:?}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "lab did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert_postgres_gone(&pids);
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn up_on_postgres_answers_and_sigint_stops_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, urls, rx) = crate::up::start_up(
        tmp.path(),
        &["--database", "postgres", "--replica-cpus", "none"],
    );
    let before: Vec<String> = rx.try_iter().collect();
    // `nobody` can reach the (0755) temporary folder: the data is in the run folder.
    let data = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path().join("postgres"))
        .find(|p| p.join("postmaster.pid").exists())
        .unwrap_or_else(|| panic!("no cluster in the run folder: {before:?}"));
    let pids = postgres_pids(&data);
    assert!(pids.len() > 2, "{pids:?}");
    // A replica answers through PostgreSQL: the login reads the seeded user.
    let login = urls
        .iter()
        .find(|u| u.ends_with("/api/v1/products/"))
        .unwrap()
        .replace("/api/v1/products/", "/api/v1/auth/token/");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
            .post(&login)
            .json(&serde_json::json!({"email": "demo@example.com", "password": "Passw0rd!"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(200), "login via {login}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = crate::up::wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "lab up exited with {status}");
    assert_postgres_gone(&pids);
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn wrong_credentials_fail_early_with_market_apis_message() {
    // A real server to refuse them, in a folder `nobody` can reach.
    let dir = std::env::temp_dir().join(format!("lab-it-pg-{}", std::process::id()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = rt
        .block_on(pgcluster::Cluster::start(pgcluster::Options::new(&dir)))
        .expect("a throwaway cluster (Debian's postgresql package)");
    let url = format!("postgres://wrong:creds@127.0.0.1:{}/x", pg.port());
    let (cmd, tmp) = lab_out(&[
        "compare",
        "--replicas",
        "1",
        "--database",
        &url,
        "--startup-timeout",
        "5s",
    ]);
    let started = Instant::now();
    let (stderr, _) = run_fails(cmd, Duration::from_secs(60), 1);
    assert!(
        stderr.contains("refused user \"wrong\"") && stderr.contains("password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("creds@"),
        "the password is not printed: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(45), "not early");
    rt.block_on(pg.stop()).unwrap();
    assert_no_processes(tmp.path(), Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_server_binaries_name_the_package() {
    let empty = tempfile::tempdir().unwrap();
    let (mut cmd, tmp) = lab_out(&["compare", "--replicas", "1", "--database", "postgres"]);
    cmd.env("PGCLUSTER_BIN_DIR", empty.path());
    let (stderr, _) = run_fails(cmd, Duration::from_secs(60), 1);
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert_no_processes(tmp.path(), Duration::from_secs(10));
}

#[test]
fn every_stack_command_takes_the_database_and_sqlite_stays_the_default() {
    for command in ["compare", "scale", "up", "demo"] {
        let out = lab().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--database"), "{command}: {help}");
        assert!(help.contains("[default: sqlite]"), "{command}: {help}");
        assert!(help.contains("--pool-size"), "{command}: {help}");
    }
    // A value that is neither a keyword, a URL nor a file name is refused early.
    let out = lab()
        .args(["compare", "--database", "", "--out", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected sqlite, postgres"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
