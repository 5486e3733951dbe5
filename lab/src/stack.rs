//! The system under test: N market-api replicas sharing one database (a
//! SQLite file or PostgreSQL, migrated and seeded once by the lab: the
//! `database` module), optionally one more replica to be
//! measured on its own, and the balancer in front of the N.
//!
//! Every process is a [`ChildGuard`]; the [`Stack`] owns them all, so
//! dropping it (on success, error, panic or Ctrl-C) stops everything, and
//! only then removes the CPU-budget cgroups (field order = drop order).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::affinity::{self, Placement};
use crate::cgroup::CpuGroups;
use crate::cli::{CpuBudget, DatabaseChoice, StackArgs};
use crate::database::{Database, DatabasePlan};
use crate::process::{ChildGuard, Spec};
use crate::status::Probe;
use crate::Error;

/// One running replica.
#[derive(Debug)]
pub struct Replica {
    /// `single`, `r1`, `r2`… (also its `X-Replica` header value).
    pub id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process.
    pub guard: ChildGuard,
}

/// The running balancer.
#[derive(Debug)]
pub struct Balancer {
    /// Where it proxies.
    pub addr: SocketAddr,
    /// Its admin endpoint (`/status`, `/metrics`).
    pub admin: SocketAddr,
    /// Its process.
    pub guard: ChildGuard,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct StackPlan {
    /// Replicas behind the balancer.
    pub replicas: u16,
    /// Also start a replica that is measured on its own, outside the balancer.
    pub single: bool,
    /// CPU budget per replica.
    pub budget: CpuBudget,
    /// With a budget, keep the tools and the replicas on separate CPUs
    /// ([`crate::affinity`]).
    pub pin: bool,
    /// Tokio workers per replica.
    pub workers: Option<u16>,
    /// Balancing algorithm.
    pub algorithm: String,
    /// The shared database.
    pub database: DatabaseChoice,
    /// Database connections per replica (`--pool-size`).
    pub pool_size: u16,
    /// The run folder (logs go here).
    pub run_dir: PathBuf,
    /// Start-up timeout per process.
    pub startup_timeout: Duration,
    /// Extra `serve` arguments for every replica.
    pub replica_args: Vec<String>,
    /// Extra `serve` arguments for one replica only (index into the group).
    pub replica_extra: Option<(usize, Vec<String>)>,
    /// Extra balancer arguments.
    pub balancer_args: Vec<String>,
    /// Balancer listen address.
    pub listen: String,
    /// Balancer admin address.
    pub admin: String,
}

impl StackPlan {
    /// `max_connections` for a lab-started PostgreSQL: every replica's pool
    /// (the group, the single one, and up to five added later by `demo`),
    /// plus a few for migrate, seed and a person with `psql`.
    pub fn max_connections(&self) -> u32 {
        (u32::from(self.replicas) + 1 + 5) * u32::from(self.pool_size) + 5
    }

    /// The plan for a stack command's flags, writing into `run_dir`.
    pub fn from_args(args: &StackArgs, run_dir: &Path, single: bool) -> StackPlan {
        StackPlan {
            replicas: args.replicas,
            single,
            budget: args.replica_cpus,
            pin: !args.no_pin,
            workers: args.replica_workers.or(match args.replica_cpus {
                CpuBudget::Cores(c) if c <= 1.0 => Some(1),
                _ => None,
            }),
            algorithm: args.algorithm.clone(),
            database: args.database.clone(),
            pool_size: args.pool_size,
            run_dir: run_dir.to_path_buf(),
            startup_timeout: args.startup_timeout,
            replica_args: args.replica_args.clone(),
            replica_extra: None,
            balancer_args: args.balancer_args.clone(),
            listen: "127.0.0.1:0".into(),
            admin: "127.0.0.1:0".into(),
        }
    }
}

/// The running stack. Fields drop in order: balancer, replicas, cgroups, then the database.
#[derive(Debug)]
pub struct Stack {
    /// The balancer (absent if `replicas == 0`).
    pub balancer: Balancer,
    /// The replicas behind the balancer.
    pub replicas: Vec<Replica>,
    /// The replica measured alone, if asked for.
    pub single: Option<Replica>,
    /// Replicas added later ([`Stack::add_replica`]), outside the main balancer.
    pub extras: Vec<Replica>,
    /// The plan it was started from.
    pub plan: StackPlan,
    /// The JWT secret every replica shares (tokens work on any of them).
    jwt_secret: String,
    /// CPU budget groups, if a budget was asked for and could be applied.
    pub cgroups: Option<CpuGroups>,
    /// The budget actually in force (`None` if asked but impossible).
    pub budget_applied: CpuBudget,
    /// A sentence explaining the budget situation for the report.
    pub budget_note: String,
    /// The shared database URL.
    pub database_url: String,
    /// The database; after the replicas, so a lab-started server stops last.
    pub database: Database,
}

impl Stack {
    /// Prepares the database, starts replicas and balancer, and waits until
    /// each answers `/healthz`. On any failure everything started so far is
    /// stopped before the error is returned.
    pub async fn start(plan: &StackPlan) -> Result<Stack, Error> {
        let database = Database::prepare(&DatabasePlan {
            choice: &plan.database,
            run_dir: &plan.run_dir,
            max_connections: plan.max_connections(),
            startup_timeout: plan.startup_timeout,
        })
        .await?;
        println!("lab: {}", database.note);
        let database_url = database.url.clone();
        let (cgroups, budget_applied, budget_note) = cpu_budget(
            plan.budget,
            plan.pin,
            plan.replicas as usize + usize::from(plan.single),
        );
        let jwt_secret = format!(
            "lab-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        );
        let mut single = None;
        if plan.single {
            single = Some(
                start_replica(
                    plan,
                    "single",
                    &database_url,
                    &jwt_secret,
                    cgroups.as_ref(),
                    &[],
                )
                .await?,
            );
        }
        let mut replicas = Vec::with_capacity(plan.replicas as usize);
        for i in 0..plan.replicas as usize {
            let extra: &[String] = match &plan.replica_extra {
                Some((idx, extra)) if *idx == i => extra,
                _ => &[],
            };
            let id = format!("r{}", i + 1);
            replicas.push(
                start_replica(
                    plan,
                    &id,
                    &database_url,
                    &jwt_secret,
                    cgroups.as_ref(),
                    extra,
                )
                .await?,
            );
        }
        let balancer = start_balancer(plan, &replicas).await?;
        let probe = Probe::new();
        for r in single.iter().chain(replicas.iter()) {
            probe
                .wait_ok(&format!("http://{}/healthz", r.addr), plan.startup_timeout)
                .await?;
        }
        probe
            .wait_ok(
                &format!("http://{}/status", balancer.admin),
                plan.startup_timeout,
            )
            .await?;
        Ok(Stack {
            balancer,
            replicas,
            single,
            extras: Vec::new(),
            plan: plan.clone(),
            jwt_secret,
            cgroups,
            budget_applied,
            budget_note: if database.is_lab_postgres() {
                format!("{budget_note}; the PostgreSQL server runs outside the replicas' CPU budget, like the balancer")
            } else {
                budget_note
            },
            database_url,
            database,
        })
    }

    /// `http://ADDR` of the balancer.
    pub fn balancer_url(&self) -> String {
        format!("http://{}", self.balancer.addr)
    }

    /// The balancer's `/status` URL.
    pub fn status_url(&self) -> String {
        format!("http://{}/status", self.balancer.admin)
    }

    /// The id (`r1`, `single`…) of the replica listening on `addr` (`IP:port`).
    pub fn replica_id(&self, addr: &str) -> Option<&str> {
        self.replicas
            .iter()
            .chain(self.single.iter())
            .chain(self.extras.iter())
            .find(|r| r.addr.to_string() == addr)
            .map(|r| r.id.as_str())
    }

    /// `(name, pid)` of every process, for [`crate::procstat::Sampler`].
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = Vec::new();
        if let Some(s) = &self.single {
            v.push(("replica single".into(), s.guard.pid()));
        }
        for r in &self.replicas {
            v.push((format!("replica {}", r.id), r.guard.pid()));
        }
        v.push(("balancer".into(), self.balancer.guard.pid()));
        v.extend(self.database.processes());
        v
    }

    /// Starts one more replica on the shared database (same budget), with
    /// `extra` serve flags, e.g. `--fault-delay 200ms`; returns its address.
    pub async fn add_replica(&mut self, id: &str, extra: &[String]) -> Result<SocketAddr, Error> {
        let r = start_replica(
            &self.plan,
            id,
            &self.database_url,
            &self.jwt_secret,
            self.cgroups.as_ref(),
            extra,
        )
        .await?;
        Probe::new()
            .wait_ok(
                &format!("http://{}/healthz", r.addr),
                self.plan.startup_timeout,
            )
            .await?;
        let addr = r.addr;
        self.extras.push(r);
        Ok(addr)
    }

    /// Stops everything gracefully (the same happens, less gently, on drop).
    pub async fn shutdown(mut self) {
        self.balancer.guard.stop().await;
        for r in self
            .replicas
            .iter_mut()
            .chain(self.single.iter_mut())
            .chain(self.extras.iter_mut())
        {
            r.guard.stop().await;
        }
        self.database.stop().await;
    }
}

/// The cgroups for a CPU budget per replica, the budget actually applied
/// (none when no cgroup could be written) and the sentence that says so;
/// with `pin`, the tools and the replicas get CPUs of their own, and the
/// budget is lowered where the `replicas` running at once would not all get
/// theirs on the replicas' CPUs ([`Placement::fit`]).
fn cpu_budget(
    budget: CpuBudget,
    pin: bool,
    replicas: usize,
) -> (Option<CpuGroups>, CpuBudget, String) {
    let CpuBudget::Cores(asked) = budget else {
        return (
            None,
            CpuBudget::None,
            "no CPU budget: every replica may use every core of this machine, so the replicas compete for the same cores".to_string(),
        );
    };
    let placement = pin.then(Placement::of_this_machine).flatten();
    let c = placement.as_ref().map_or(asked, |p| p.fit(asked, replicas));
    match CpuGroups::create(c) {
        Ok(mut g) => {
            let mut note = format!(
                "each replica is limited to {c} of a core (cgroup {:?} quota under {}), modelling separate servers",
                g.version(),
                g.base().display()
            );
            if let (Some(p), true) = (&placement, c < asked) {
                note.push_str(&format!(
                    " ({asked} asked for, lowered so that the {replicas} replicas running at once fit in {} of {}: a budget a replica cannot get models no server)",
                    p.room(),
                    p.replica_cpus()
                ));
            }
            if pin {
                note.push_str(&keep_tools_apart(&mut g, placement));
            }
            (Some(g), CpuBudget::Cores(c), note)
        }
        Err(why) => (
            None,
            CpuBudget::None,
            format!(
                "asked for {asked} of a core per replica, but no cgroup could be written ({why}); the replicas share all cores, so read the result as one machine, not N servers (run as root or with a delegated cgroup to model separate servers)"
            ),
        ),
    }
}

/// Puts this process (and so the balancer it starts later) on the tools'
/// CPUs and has `groups` move replicas to the others; the report's words.
fn keep_tools_apart(groups: &mut CpuGroups, placement: Option<Placement>) -> String {
    let Some(placement) = placement else {
        return "; one CPU only, so the load generator and the balancer share it with the replicas"
            .into();
    };
    match affinity::pin(None, &placement.tools) {
        Ok(()) => {
            let note = format!("; {}", placement.describe());
            groups.keep_apart(placement);
            note
        }
        Err(why) => format!("; the tools could not be kept off the replicas' CPUs ({why})"),
    }
}

async fn start_replica(
    plan: &StackPlan,
    id: &str,
    database_url: &str,
    jwt_secret: &str,
    cgroups: Option<&CpuGroups>,
    extra: &[String],
) -> Result<Replica, Error> {
    let mut args: Vec<OsString> = [
        "market-api",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--no-seed",
        "--database-url",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(database_url.into());
    args.push("--jwt-secret".into());
    args.push(jwt_secret.into());
    args.push("--replica-id".into());
    args.push(id.into());
    args.push("--pool-size".into());
    args.push(plan.pool_size.to_string().into());
    if let Some(w) = plan.workers {
        args.push("--workers".into());
        args.push(w.to_string().into());
    }
    args.extend(plan.replica_args.iter().chain(extra).map(OsString::from));
    let spec = Spec {
        name: format!("replica {id}"),
        args,
        log: plan.run_dir.join(format!("replica-{id}.log")),
        run_dir: plan.run_dir.clone(),
    };
    let (guard, addrs) = ChildGuard::start(&spec, &["listening on"], plan.startup_timeout).await?;
    if let Some(g) = cgroups {
        g.add(id, guard.pid()).map_err(Error::Cgroup)?;
    }
    Ok(Replica {
        id: id.to_string(),
        addr: addrs[0],
        guard,
    })
}

async fn start_balancer(plan: &StackPlan, replicas: &[Replica]) -> Result<Balancer, Error> {
    let opts = BalancerOptions {
        name: "balancer".into(),
        listen: plan.listen.clone(),
        admin: plan.admin.clone(),
        algorithm: plan.algorithm.clone(),
        server_params: String::new(),
        extra: plan.balancer_args.clone(),
    };
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    launch_balancer(plan, &addrs, &opts).await
}

/// How to start an additional balancer (the demo compares several).
#[derive(Debug, Clone)]
pub struct BalancerOptions {
    /// Name for messages and the log file (`balancer-least_conn`).
    pub name: String,
    /// Listen address.
    pub listen: String,
    /// Admin address.
    pub admin: String,
    /// Algorithm.
    pub algorithm: String,
    /// Parameters appended to every `--upstream ADDR` (e.g. `,max_conns=2`).
    pub server_params: String,
    /// Extra flags.
    pub extra: Vec<String>,
}

impl BalancerOptions {
    /// Loopback, free ports, `algorithm`, nothing else.
    pub fn new(name: &str, algorithm: &str) -> BalancerOptions {
        BalancerOptions {
            name: name.into(),
            listen: "127.0.0.1:0".into(),
            admin: "127.0.0.1:0".into(),
            algorithm: algorithm.into(),
            server_params: String::new(),
            extra: Vec::new(),
        }
    }
}

/// Starts a balancer in front of `upstreams` and waits for its admin endpoint.
pub async fn launch_balancer(
    plan: &StackPlan,
    upstreams: &[SocketAddr],
    opts: &BalancerOptions,
) -> Result<Balancer, Error> {
    let mut args: Vec<OsString> = vec![
        "balancer".into(),
        "--listen".into(),
        opts.listen.clone().into(),
        "--admin".into(),
        opts.admin.clone().into(),
        "--upstream-header".into(),
        "--algorithm".into(),
        opts.algorithm.clone().into(),
    ];
    for a in upstreams {
        args.push("--upstream".into());
        args.push(format!("{a}{}", opts.server_params).into());
    }
    args.extend(opts.extra.iter().map(OsString::from));
    let spec = Spec {
        name: opts.name.clone(),
        args,
        log: plan.run_dir.join(format!("{}.log", opts.name)),
        run_dir: plan.run_dir.clone(),
    };
    let (guard, addrs) = ChildGuard::start(
        &spec,
        &["balancer listening on", "balancer admin on"],
        plan.startup_timeout,
    )
    .await?;
    let b = Balancer {
        addr: addrs[0],
        admin: addrs[1],
        guard,
    };
    Probe::new()
        .wait_ok(&format!("http://{}/status", b.admin), plan.startup_timeout)
        .await?;
    Ok(b)
}

/// Refuses an explicit address that is already taken, with a clear message.
pub fn check_port_free(addr: &str) -> Result<(), Error> {
    let Ok(sa) = addr.parse::<SocketAddr>() else {
        return Err(Error::Usage(format!(
            "`{addr}` is not an address like 127.0.0.1:8080"
        )));
    };
    if sa.port() == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind(sa) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::PortInUse {
            addr: addr.to_string(),
            port: sa.port(),
        }),
        Err(e) => Err(Error::io(addr, e)),
    }
}
