//! Hosts on one machine: Linux network namespaces joined by veth pairs to a
//! bridge, for the multi-host test (`multi_host`).
//!
//! Every host is a namespace of its own and the "switch" is one more: each
//! host's `eth0` is one end of a veth pair whose other end (`p-HOST`) is a
//! port of bridge `br0` inside the switch namespace. Nothing is attached to
//! the machine's own namespace: no interface, address or route is added
//! there, so traffic can only go between the namespaces this module made
//! (and each one's own loopback). Addresses are `10.213.0.N/24`, free to
//! choose because no packet ever leaves the switch.
//!
//! Namespaces are named `mlab-PID-N-HOST` after the test process and the
//! `N`th [`Net`] it made, so neither two runs nor two tests of one run (they
//! run on parallel threads) collide, and a [`Net`] deletes its own when
//! dropped, after killing every process still inside (a failed assertion or a
//! panic included). A run that was SIGKILLed cannot do that, so
//! [`Net::create`] first deletes the `mlab-PID-…` namespaces of processes that
//! no longer exist; never those of a live pid, which may be a parallel test's.
//!
//! Programs run in a host through `ip netns exec` ([`Net::command`]); code of
//! the test itself runs in a host on a thread that joined its namespace
//! ([`Net::enter`]): a network namespace is a property of a thread, and
//! sockets a thread opens (and threads it spawns) belong to it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Namespace names start with this, then the test process's pid.
const PREFIX: &str = "mlab-";
/// The `N` of the next [`Net`] this process makes.
static NEXT_NET: AtomicU32 = AtomicU32::new(0);
/// The first three octets of every host's address (a /24).
pub const SUBNET: &str = "10.213.0";
/// The bound on one `ip` command.
const IP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the test cannot build its hosts here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    if euid.as_deref() != Some("0") {
        return Some(format!(
            "network namespaces need root (effective uid {}); CI runs as root",
            euid.unwrap_or_else(|| "unknown".into())
        ));
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`ip` (iproute2) cannot be run: {e}")),
    }
}

/// One host: a namespace with one address on the switch.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name ("r2"), also the switch port's suffix.
    pub name: String,
    /// The namespace's name.
    pub ns: String,
    /// Its address on the switch.
    pub addr: Ipv4Addr,
}

/// The switch and its hosts; dropping it kills what runs inside and
/// deletes every namespace it made.
#[derive(Debug)]
pub struct Net {
    switch: String,
    hosts: Vec<Host>,
    /// Every namespace made so far, switch first (what `Drop` deletes).
    made: Vec<String>,
}

impl Net {
    /// Makes the switch and one host per `(name, last octet)`.
    pub fn create(hosts: &[(&str, u8)]) -> Result<Net, String> {
        delete_leftovers();
        let n = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{PREFIX}{}-{n}-", std::process::id());
        let mut net = Net {
            switch: format!("{prefix}sw"),
            hosts: Vec::new(),
            made: Vec::new(),
        };
        let sw = net.switch.clone();
        net.add_ns(&sw)?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for &(name, octet) in hosts {
            let host = Host {
                name: name.to_string(),
                ns: format!("{prefix}{name}"),
                addr: Ipv4Addr::new(10, 213, 0, octet),
            };
            net.add_ns(&host.ns)?;
            let port = format!("p-{name}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &host.ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let cidr = format!("{}/24", host.addr);
            ip(&["-n", &host.ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &host.ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
            net.hosts.push(host);
        }
        Ok(net)
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.made.push(ns.to_string());
        Ok(())
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Every namespace this `Net` made (switch first).
    pub fn namespaces(&self) -> &[String] {
        &self.made
    }

    /// Takes `host`'s link down at the switch: its packets go nowhere, with
    /// no reset or refusal to tell anyone (a pulled cable).
    pub fn cut(&self, host: &str) -> Result<(), String> {
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &format!("p-{host}"),
            "down",
        ])
    }

    /// `program` run inside `host`'s namespace (`ip netns exec NS program`).
    pub fn command(&self, host: &str, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.host(host).ns]).arg(program);
        c
    }

    /// Runs `f` on a thread that has joined `host`'s namespace and returns
    /// its result: the sockets `f` opens are the host's.
    pub fn enter<R: Send>(&self, host: &str, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.host(host).ns);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("joining {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Like [`enter`](Self::enter), with a current-thread Tokio runtime
    /// built after the join, so its tasks and timers live on that thread.
    pub fn block_on<F: std::future::Future + Send>(&self, host: &str, f: F) -> F::Output
    where
        F::Output: Send,
    {
        self.enter(host, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(f)
        })
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            remove_ns(ns);
        }
    }
}

/// Kills every process inside `ns`, then deletes it.
fn remove_ns(ns: &str) {
    let pids = |ns: &str| -> Vec<i32> {
        Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = pids(ns);
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        for p in left {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Err(e) = ip(&["netns", "del", ns]) {
        eprintln!("netns: could not delete {ns}: {e}");
    }
}

/// Deletes `mlab-PID-…` namespaces whose process is gone (a run that was
/// killed before its `Drop` ran).
fn delete_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netns: deleting leftover namespace {name}");
            remove_ns(name);
        }
    }
}

/// Runs `ip ARGS` within [`IP_TIMEOUT`]; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    let deadline = Instant::now() + IP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!("ip {} ({status}): {}", args.join(" "), err.trim()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "ip {}: no answer within {IP_TIMEOUT:?}",
                args.join(" ")
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process started in a host, in its own process group; stopped when
/// dropped (SIGTERM to the group, SIGKILL after a grace period).
pub struct Proc {
    name: String,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with stderr (and stdout, once read) appended to `log`, and
    /// waits up to `timeout` for a stdout line containing each of `announce`;
    /// returns those lines in order.
    pub fn start(
        name: &str,
        mut cmd: Command,
        log: &Path,
        announce: &[&str],
        timeout: Duration,
    ) -> Result<(Proc, Vec<String>), String> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file.try_clone().map_err(|e| e.to_string())?)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let proc = Proc {
            name: name.to_string(),
            child: Some(child),
        };
        let (tx, rx) = mpsc::channel();
        // Keeps reading to the end, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut file = file;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + timeout;
        let mut found = Vec::new();
        for pattern in announce {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) if line.contains(pattern) => {
                        found.push(line);
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let tail = std::fs::read_to_string(log).unwrap_or_default();
                        return Err(format!(
                            "{name} did not print {pattern:?} within {timeout:?}; its log:\n{tail}"
                        ));
                    }
                }
            }
        }
        Ok((proc, found))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = Pid::from_raw(child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                // The leader is gone; nothing else of its group may linger.
                let _ = killpg(group, Signal::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("netns: {} ignored SIGTERM for 3 s: killing it", self.name);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait();
    }
}

/// The scaffolding's own promises.
mod tests {
    use super::*;

    /// `ip ARGS` in the calling thread's namespace, its stdout.
    fn ip_out(args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn listed(ns: &str) -> bool {
        ip_out(&["netns", "list"])
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns))
    }

    /// What this module adds to the machine's own namespace: links named as
    /// ours, and addresses or routes in the test subnet. Must stay empty.
    fn ours_in_root_namespace() -> Vec<String> {
        let links = ip_out(&["-o", "link", "show"]);
        let addrs = ip_out(&["-o", "addr", "show"]);
        let routes = ip_out(&["route", "show"]);
        links
            .lines()
            .filter(|l| {
                let name = l.split(':').nth(1).unwrap_or("").trim();
                name.starts_with("p-") || name == "br0"
            })
            .chain(
                addrs
                    .lines()
                    .chain(routes.lines())
                    .filter(|l| l.contains(SUBNET)),
            )
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn hosts_reach_each_other_and_nothing_touches_the_root_namespace() {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let net = Net::create(&[("a", 101), ("b", 102)]).unwrap();
        assert!(net.namespaces().iter().all(|ns| listed(ns)));
        assert_eq!(ours_in_root_namespace(), Vec::<String>::new());
        let b = net.host("b").addr;
        let listener = net.enter("b", || std::net::TcpListener::bind((b, 0)).unwrap());
        let port = listener.local_addr().unwrap().port();
        net.enter("a", || {
            std::net::TcpStream::connect_timeout(&(b, port).into(), Duration::from_secs(5))
                .expect("a reaches b through the switch");
        });
        // From the machine's own namespace there is no way there.
        let from_root =
            std::net::TcpStream::connect_timeout(&(b, port).into(), Duration::from_millis(500));
        assert!(from_root.is_err(), "the root namespace reached {b}");
    }

    #[test]
    fn a_panicking_test_leaves_no_namespace_and_no_process() {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let mut made = Vec::new();
        let mut sleeper = 0;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let net = Net::create(&[("a", 111)]).unwrap();
            made = net.namespaces().to_vec();
            // A process that would outlive the test if nobody killed it.
            let child = net.command("a", "sleep").arg("600").spawn().unwrap();
            sleeper = child.id();
            std::mem::forget(child);
            panic!("a failed assertion");
        }));
        assert!(result.is_err());
        assert_eq!(made.len(), 2, "{made:?}");
        for ns in &made {
            assert!(!listed(ns), "{ns} left behind");
        }
        let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        let running = stat
            .rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'));
        assert!(!running, "the process inside ({sleeper}) is still running");
    }
}
