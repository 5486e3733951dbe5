//! [`Cluster`]: one throwaway PostgreSQL server, from `initdb` to shutdown.
//!
//! Starting is a sequence of named phases (locate the binaries, pick the
//! account, prepare the data folder, `initdb`, write the settings, launch and
//! wait for `ready`), each in its own function below. The data folder is the
//! caller's (the lab puts it in the run's output folder) and is left in place
//! after a stop, with the server's log in it; a later start on the same folder
//! replaces a stopped cluster that this crate made, and refuses anything else.

use std::fmt;
use std::fs;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rand::{distributions::Alphanumeric, Rng};

use crate::account::{self, RunAs};
use crate::binaries::{which, Binaries};
use crate::procs;
use crate::server::Server;
use crate::settings::{self, Settings, CONF_FILE};
use crate::Error;

/// The address the server listens on unless told another.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The server's stderr, in the data folder.
const LOG_FILE: &str = "postgres.log";
/// Tries with a fresh port when a library-chosen one was taken meanwhile.
const PORT_ATTEMPTS: u32 = 3;
/// The bound on one client tool run (`createdb`).
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// How many lines of a log or tool output an error quotes.
const TAIL_LINES: usize = 20;

/// How to start a cluster. `Options::new(dir)` gives the defaults; set fields
/// with struct-update syntax (`Options { port: Some(5433), ..Options::new(dir) }`).
#[derive(Debug, Clone)]
pub struct Options {
    /// The data folder: created, and replaced when it holds a stopped cluster
    /// that this crate made. Its parents must be reachable by [`run_as`](Self::run_as).
    pub data_dir: PathBuf,
    /// The port; `None` lets the library pick one that is free on
    /// [`listen`](Self::listen) (seen from the calling thread's network namespace).
    pub port: Option<u16>,
    /// The one address the server listens on: 127.0.0.1 by default. Another
    /// address must exist where the server runs: the multi-host test starts
    /// the cluster from a thread inside a network namespace holding it (the
    /// server is spawned by a thread that one starts, so it runs there too).
    pub listen: IpAddr,
    /// Networks let in besides `listen` itself, as `ADDR/LEN`
    /// (`10.213.0.0/24`); every client still needs the password.
    pub clients: Vec<String>,
    /// The database superuser's name (1–63 of `a-z`, `0-9`, `_`).
    pub user: String,
    /// Its password; `None` makes a random one (see [`Cluster::password`]).
    pub password: Option<String>,
    /// Client connections the server accepts: the replicas × their pool size,
    /// plus a few for the lab's own tools.
    pub max_connections: u32,
    /// `shared_buffers`, in MiB.
    pub shared_buffers_mb: u32,
    /// The unprivileged account that runs the server when the owner is root.
    pub run_as: String,
    /// The folder of `initdb` and `postgres`; `None` searches (see [`Binaries::locate`]).
    pub bin_dir: Option<PathBuf>,
    /// The bound on `initdb`, and again on the server's start.
    pub start_timeout: Duration,
    /// How long a fast shutdown may take before the server is killed.
    pub stop_timeout: Duration,
}

impl Options {
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            data_dir: data_dir.into(),
            port: None,
            listen: LOOPBACK,
            clients: Vec::new(),
            user: "lab".into(),
            password: None,
            max_connections: 100,
            shared_buffers_mb: 64,
            run_as: "nobody".into(),
            bin_dir: None,
            start_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
        }
    }
}

/// A running throwaway PostgreSQL server. [`stop`](Self::stop) it; dropping it
/// instead asks for a fast shutdown without waiting, and if the owning process
/// dies the server is killed with it.
pub struct Cluster {
    binaries: Binaries,
    data_dir: PathBuf,
    host: IpAddr,
    port: u16,
    user: String,
    password: String,
    stop_timeout: Duration,
    /// Kept for [`Cluster::restart_with`], which launches the server again.
    launcher: Launcher,
    start_timeout: Duration,
    server: Server,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("pid", &self.server.pid())
            .field("port", &self.port)
            .field("user", &self.user)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Makes a fresh cluster in `options.data_dir`, starts it and waits until
    /// it accepts connections.
    pub async fn start(options: Options) -> Result<Cluster, Error> {
        validate_name("user name", &options.user)?;
        for net in &options.clients {
            settings::check_network(net).map_err(|why| Error::Invalid {
                what: "client network",
                value: net.clone(),
                why,
            })?;
        }
        let password = match &options.password {
            Some(p) => validate_password(p)?.to_string(),
            None => random_password(),
        };
        let binaries = Binaries::locate(options.bin_dir.as_deref())?;
        let launcher = Launcher::new(account::resolve(&options.run_as)?)?;
        let data_dir = prepare_data_dir(&options.data_dir, &launcher.who)?;
        initdb(
            &binaries,
            &launcher,
            &data_dir,
            &options.user,
            &password,
            options.start_timeout,
        )
        .await?;
        write_settings(&data_dir, &options, &launcher.who)?;
        let (server, port) = launch(&binaries, &launcher, &data_dir, &options).await?;
        tracing::info!(pid = server.pid(), port, data_dir = %data_dir.display(), "PostgreSQL is ready");
        Ok(Cluster {
            binaries,
            data_dir,
            host: options.listen,
            port,
            user: options.user,
            password,
            stop_timeout: options.stop_timeout,
            launcher,
            start_timeout: options.start_timeout,
            server,
        })
    }

    /// Stops the server (fast shutdown, as [`stop`](Self::stop)), runs
    /// `while_down`, then starts the server again on the same port with the
    /// same data, user and password, and waits until it is ready: what a
    /// database restart looks like to its clients (connections reset, then
    /// refused, then accepted again). Returns what `while_down` returned.
    ///
    /// The port stays the same so that clients' URLs keep working; if
    /// another process took it meanwhile, the start fails and says so. With
    /// [`Options::listen`] inside a network namespace, call it from a thread
    /// in that namespace, as for the start.
    pub async fn restart_with<F: Future>(&mut self, while_down: F) -> Result<F::Output, Error> {
        self.stop_server().await?;
        let output = while_down.await;
        let options = Options {
            port: Some(self.port),
            // The settings file already names it; `launch` waits on it.
            listen: self.host,
            start_timeout: self.start_timeout,
            ..Options::new(&self.data_dir)
        };
        let (server, _) = launch(&self.binaries, &self.launcher, &self.data_dir, &options).await?;
        tracing::info!(pid = server.pid(), port = self.port, "PostgreSQL restarted");
        self.server = server;
        Ok(output)
    }

    /// [`restart_with`](Self::restart_with) with nothing to do while down.
    pub async fn restart(&mut self) -> Result<(), Error> {
        self.restart_with(async {}).await
    }

    /// A fast shutdown (clients disconnected, a checkpoint written), killed
    /// with its children if it takes longer than the stop timeout; returns
    /// once no process of the server is left.
    pub async fn stop(self) -> Result<(), Error> {
        self.stop_server().await
    }

    /// The body of [`stop`](Self::stop), which leaves `self` usable for a
    /// restart.
    async fn stop_server(&self) -> Result<(), Error> {
        let pid = self.server.pid();
        let children = procs::children_of(pid).unwrap_or_default();
        self.server.signal(Signal::SIGINT);
        self.server.kill_after(self.stop_timeout);
        let bound = self.stop_timeout + Duration::from_secs(5);
        if self.server.wait(bound).await.is_none() {
            return Err(Error::StopTimeout {
                pid,
                timeout: bound,
            });
        }
        // A fast shutdown waits for every child; a kill does not.
        let deadline = Instant::now() + Duration::from_secs(5);
        while children.iter().any(|&c| procs::is_live_postgres(c)) {
            if Instant::now() >= deadline {
                return Err(Error::StopTimeout {
                    pid,
                    timeout: bound,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(pid, "PostgreSQL stopped");
        Ok(())
    }

    /// `postgres://USER:PASSWORD@HOST:PORT/postgres` (HOST: 127.0.0.1 unless
    /// [`Options::listen`] said otherwise).
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `database` on this cluster.
    pub fn url_for(&self, database: &str) -> String {
        let password = utf8_percent_encode(&self.password, NON_ALPHANUMERIC);
        let host = match self.host {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        format!(
            "postgres://{}:{password}@{host}:{}/{database}",
            self.user, self.port
        )
    }

    /// Creates database `name` (owned by the superuser) with `createdb`.
    pub async fn create_database(&self, name: &str) -> Result<(), Error> {
        validate_name("database name", name)?;
        let mut createdb = self.client("createdb");
        createdb.arg("--maintenance-db=postgres").arg(name);
        run_tool("createdb", createdb, TOOL_TIMEOUT).await.map(drop)
    }

    /// A PostgreSQL client program of the same installation (`psql`,
    /// `createdb`, `pg_dump`, `pgbench`…) with its connection environment
    /// (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE=postgres`) set.
    pub fn client(&self, program: &str) -> Command {
        let mut command = Command::new(self.binaries.tool(program));
        command
            .env("PGHOST", self.host.to_string())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", "postgres")
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null());
        command
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The pids of the postmaster's children (checkpointer, WAL writer, one
    /// backend per connection…), read from `/proc` now.
    pub fn child_pids(&self) -> Result<Vec<u32>, Error> {
        procs::children_of(self.pid()).map_err(Error::io("listing PostgreSQL's processes in /proc"))
    }

    /// The address the server listens on.
    pub fn host(&self) -> IpAddr {
        self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The data folder, canonical.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log, in the data folder.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }
}

/// Starts programs under `setpriv`: with a death signal always, and as the
/// unprivileged account when the owner is root (see the `server` module).
struct Launcher {
    setpriv: PathBuf,
    who: RunAs,
}

impl Launcher {
    fn new(who: RunAs) -> Result<Launcher, Error> {
        let setpriv = which("setpriv", std::env::var_os("PATH").as_deref())
            .or_else(|| {
                ["/usr/bin/setpriv", "/bin/setpriv"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.exists())
            })
            .ok_or(Error::SetprivMissing)?;
        Ok(Launcher { setpriv, who })
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(&self.setpriv);
        if self.who.switch {
            command
                .arg(format!("--reuid={}", self.who.uid))
                .arg(format!("--regid={}", self.who.gid))
                .arg("--clear-groups");
        }
        // The working folder is the owner's and may be closed to the account.
        command
            .arg("--pdeathsig=KILL")
            .arg(program)
            .current_dir("/")
            .stdin(Stdio::null());
        command
    }
}

/// Creates the data folder (after removing a stopped cluster of ours there)
/// and hands it to the account; returns its canonical path.
fn prepare_data_dir(dir: &Path, who: &RunAs) -> Result<PathBuf, Error> {
    if dir.exists() {
        clear_previous(dir)?;
    }
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(Error::io(format!("resolving {}", dir.display())))?;
    if who.switch {
        account::check_reachable(&dir, who)?;
    }
    account::give(&dir, who)?;
    Ok(dir)
}

fn clear_previous(dir: &Path) -> Result<(), Error> {
    let in_use = |why: String| Error::DataDirInUse {
        dir: dir.to_path_buf(),
        why,
    };
    let mut entries = fs::read_dir(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
    if entries.next().is_none() {
        return Ok(());
    }
    if !dir.join(CONF_FILE).exists() {
        return Err(in_use(format!(
            "it is not empty and holds no {CONF_FILE}, so it is not a throwaway cluster"
        )));
    }
    if let Some(running) = procs::read_pid_file(dir).filter(|f| procs::is_live_postgres(f.pid)) {
        return Err(in_use(format!(
            "its server (pid {}) is still running",
            running.pid
        )));
    }
    tracing::info!(data_dir = %dir.display(), "replacing a stopped throwaway cluster");
    fs::remove_dir_all(dir).map_err(Error::io(format!(
        "removing the old cluster in {}",
        dir.display()
    )))
}

/// `initdb` with the superuser's password (read from a file only the account
/// can read, next to the data folder, gone when this returns) and SCRAM
/// authentication. `--no-sync` skips flushing the template files: a crash
/// before the run makes the run's cluster worthless anyway, and the server's
/// own durability settings are untouched.
async fn initdb(
    binaries: &Binaries,
    launcher: &Launcher,
    data_dir: &Path,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let parent = data_dir.parent().unwrap_or(Path::new("/"));
    let secret = tempfile::Builder::new()
        .prefix(".pgcluster-")
        .tempdir_in(parent)
        .map_err(Error::io(format!(
            "creating a password file in {}",
            parent.display()
        )))?;
    let pw_file = secret.path().join("password");
    fs::write(&pw_file, format!("{password}\n")).map_err(Error::io("writing the password file"))?;
    account::give(secret.path(), &launcher.who)?;
    account::give(&pw_file, &launcher.who)?;
    let mut command = launcher.command(&binaries.tool("initdb"));
    command
        .arg("--pgdata")
        .arg(data_dir)
        .arg(format!("--username={user}"))
        .arg(format!("--pwfile={}", pw_file.display()))
        .args([
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
    run_tool("initdb", command, timeout).await.map(drop)
}

fn write_settings(data_dir: &Path, options: &Options, who: &RunAs) -> Result<(), Error> {
    let settings = Settings {
        listen: options.listen,
        clients: options.clients.clone(),
        max_connections: options.max_connections,
        shared_buffers_mb: options.shared_buffers_mb,
    };
    let write = |name: &str, text: &str| {
        let path = data_dir.join(name);
        fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
        account::give(&path, who)
    };
    write(CONF_FILE, &settings::server_conf(&settings))?;
    write("pg_hba.conf", &settings::hba_conf(&settings))?;
    let main_conf = data_dir.join("postgresql.conf");
    let mut text = fs::read_to_string(&main_conf)
        .map_err(Error::io(format!("reading {}", main_conf.display())))?;
    text.push_str(&format!("\ninclude = '{CONF_FILE}'\n"));
    write("postgresql.conf", &text)
}

/// Starts the server and waits for it, on a fresh port again when a port the
/// library picked was taken between the pick and the server's bind.
async fn launch(
    binaries: &Binaries,
    launcher: &Launcher,
    data_dir: &Path,
    options: &Options,
) -> Result<(Server, u16), Error> {
    let attempts = if options.port.is_some() {
        1
    } else {
        PORT_ATTEMPTS
    };
    let mut attempt = 1;
    loop {
        let port = match options.port {
            Some(port) => port,
            None => free_port(options.listen)?,
        };
        let log = LogSpan::from_end(data_dir.join(LOG_FILE));
        let server = spawn_server(binaries, launcher, data_dir, port, &log.path).await?;
        let addr = SocketAddr::new(options.listen, port);
        match wait_ready(&server, data_dir, addr, options.start_timeout, &log).await {
            Ok(()) => return Ok((server, port)),
            Err(Error::Exited { tail, .. })
                if attempt < attempts && tail.contains("could not bind") =>
            {
                tracing::warn!(
                    port,
                    "the port was taken before PostgreSQL bound it; trying another"
                );
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn spawn_server(
    binaries: &Binaries,
    launcher: &Launcher,
    data_dir: &Path,
    port: u16,
    log_path: &Path,
) -> Result<Server, Error> {
    let open_log = || {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(Error::io(format!("opening {}", log_path.display())))
    };
    let mut command = launcher.command(&binaries.tool("postgres"));
    command
        .arg("-D")
        .arg(data_dir)
        .arg("-p")
        .arg(port.to_string())
        .stdout(open_log()?)
        .stderr(open_log()?);
    account::give(log_path, &launcher.who)?;
    Server::spawn(command)
        .await
        .map_err(Error::io("starting postgres"))
}

/// Waits for `postmaster.pid` to say `ready` (as `pg_ctl -w` does), for the
/// server to exit, or for the timeout, which kills it.
async fn wait_ready(
    server: &Server,
    data_dir: &Path,
    addr: SocketAddr,
    timeout: Duration,
    log: &LogSpan,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = server.exit_status() {
            return Err(Error::Exited {
                status,
                log: log.path.clone(),
                tail: log.tail(),
            });
        }
        if procs::read_pid_file(data_dir).is_some_and(|f| f.ready && f.pid == server.pid()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            server.kill_after(Duration::ZERO);
            server.wait(Duration::from_secs(5)).await;
            return Err(Error::StartTimeout {
                addr,
                timeout,
                log: log.path.clone(),
                tail: log.tail(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The part of a log file written after a point: one start attempt's lines.
struct LogSpan {
    path: PathBuf,
    from: u64,
}

impl LogSpan {
    fn from_end(path: PathBuf) -> LogSpan {
        let from = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        LogSpan { path, from }
    }

    fn tail(&self) -> String {
        let bytes = fs::read(&self.path).unwrap_or_default();
        let start = usize::try_from(self.from).unwrap_or(0).min(bytes.len());
        tail(&String::from_utf8_lossy(&bytes[start..]))
    }
}

/// The last [`TAIL_LINES`] lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Runs a short-lived tool to completion within `timeout`, killing it past
/// that; its stdout on success, its last output lines in the error otherwise.
async fn run_tool(
    program: &'static str,
    command: Command,
    timeout: Duration,
) -> Result<String, Error> {
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    tracing::debug!(?command, "running");
    let output = match tokio::time::timeout(timeout, command.output()).await {
        Ok(done) => done.map_err(Error::io(format!("running {program}")))?,
        Err(_) => {
            let outcome = format!("no answer within {timeout:?}, killed");
            return Err(Error::Tool {
                program,
                outcome,
                output: String::new(),
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    Err(Error::Tool {
        program,
        outcome: output.status.to_string(),
        output: tail(all.trim_end()),
    })
}

/// A port that was free on `host` a moment ago (see [`launch`] for the race).
fn free_port(host: IpAddr) -> Result<u16, Error> {
    let what = || format!("finding a free port on {host}");
    let listener = std::net::TcpListener::bind((host, 0)).map_err(Error::io(what()))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(Error::io(what()))
}

fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// User and database names are kept to plain identifiers: no quoting is then
/// needed anywhere (URLs, `createdb`, SQL in the lab), and PostgreSQL's
/// 63-byte limit and reserved `pg_` prefix are checked before they bite.
fn validate_name(what: &'static str, name: &str) -> Result<(), Error> {
    let invalid = |why| Error::Invalid {
        what,
        value: name.to_string(),
        why,
    };
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(invalid(
            "use lowercase letters, digits and underscores, not starting with a digit",
        ));
    }
    if name.len() > 63 {
        return Err(invalid("PostgreSQL names are at most 63 bytes"));
    }
    if name.starts_with("pg_") {
        return Err(invalid(
            "names starting with pg_ are reserved by PostgreSQL",
        ));
    }
    Ok(())
}

/// `initdb` reads the password as the first line of a file.
fn validate_password(password: &str) -> Result<&str, Error> {
    let invalid = |why| Error::Invalid {
        what: "password",
        value: "(hidden)".into(),
        why,
    };
    if password.is_empty() {
        return Err(invalid("it is empty"));
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err(invalid("it holds a line break or NUL"));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        for ok in ["market", "lab", "_x", "db_2"] {
            assert!(validate_name("database name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2db",
            "Market",
            "a-b",
            "a b",
            "x;drop",
            "pg_market",
            &"a".repeat(64),
        ] {
            let err = validate_name("database name", bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid database name"),
                "{err}"
            );
        }
    }

    #[test]
    fn passwords_must_fit_one_line() {
        assert!(validate_password("s3cret pass").is_ok());
        assert!(validate_password("").is_err());
        let err = validate_password("a\nb").unwrap_err().to_string();
        assert!(err.contains("line break") && !err.contains("a\nb"), "{err}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text);
        assert!(t.starts_with("line 11\n") && t.ends_with("line 30"), "{t}");
        assert_eq!(tail(""), "");
    }

    #[test]
    fn random_passwords_differ() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
