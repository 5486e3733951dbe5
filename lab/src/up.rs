//! `lab up`: the tutorial's hands-on session in one command.
//!
//! Starts N replicas and the balancer, and serves the load generator's
//! dashboard in this process with the balancer as its target and the
//! balancer's `/status` as the source of the per-replica view. It prints the
//! URLs and runs until Ctrl-C (or `--duration`), then tears everything down.

use std::time::Duration;

use loadgen::control::Controller;
use loadgen::plan::TestPlan;

use crate::cli::UpArgs;
use crate::compare::make_run_dir;
use crate::load;
use crate::stack::{check_port_free, Stack, StackPlan};
use crate::status::Probe;
use crate::Error;

/// Runs `lab up`.
pub async fn run(args: UpArgs) -> Result<(), Error> {
    for a in [&args.listen, &args.admin, &args.web] {
        check_port_free(a)?;
    }
    let scenario = load::scenario("market-api")?;
    let run_dir = make_run_dir(&args.stack.out)?;
    let mut plan = StackPlan::from_args(&args.stack, &run_dir, false);
    plan.listen = args.listen.clone();
    plan.admin = args.admin.clone();
    println!(
        "lab up: starting {} replicas (CPU budget {}) and the balancer ({})…",
        args.stack.replicas, args.stack.replica_cpus, args.stack.algorithm
    );
    let stack = crate::until_signal(Stack::start(&plan)).await?;

    let web = tokio::net::TcpListener::bind(&args.web)
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                let port = args
                    .web
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                Error::PortInUse {
                    addr: args.web.clone(),
                    port,
                }
            } else {
                Error::io(&args.web, e)
            }
        })?;
    let web_addr = web.local_addr().map_err(|e| Error::io(&args.web, e))?;
    let mut base = TestPlan::new(&stack.balancer_url(), scenario);
    base.users = 20;
    base.spawn_rate = 5.0;
    base.timeout = load::REQUEST_TIMEOUT;
    base.balancer_status = Some(stack.status_url());
    let controller = Controller::new(base);
    // Dropping `stop_tx` (on return, error or Ctrl-C) ends the dashboard.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let dashboard = tokio::spawn(loadgen::web::serve(web, controller.clone(), async move {
        let _ = stop_rx.await;
    }));
    let probe = Probe::new();
    let dashboard_url = format!("http://{web_addr}/");
    probe
        .wait_ok(&dashboard_url, Duration::from_secs(10))
        .await?;

    println!(
        "lab up: the stack is running ({}); Ctrl-C stops everything",
        stack.budget_note
    );
    for r in &stack.replicas {
        println!(
            "  API replica {:<4}     http://{}/api/v1/products/",
            r.id, r.addr
        );
    }
    println!(
        "  balancer             {}/api/v1/products/",
        stack.balancer_url()
    );
    println!("  balancer status      {}", stack.status_url());
    println!(
        "  balancer metrics     http://{}/metrics",
        stack.balancer.admin
    );
    println!("  dashboard            {dashboard_url}");
    println!("  logs                 {}", run_dir.display());
    println!("  login                demo@example.com / Passw0rd!");
    println!("lab up: ready");

    // Ctrl-C is the normal way to stop `lab up`: tear down and exit 0.
    let wait = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
        Ok::<(), Error>(())
    };
    let _ = crate::until_signal(wait).await;
    println!("lab up: stopping…");
    controller.stop();
    drop(stop_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), dashboard).await;
    stack.shutdown().await;
    println!("lab up: stopped");
    Ok(())
}
