//! The `balancer` binary: parse flags, set up tracing, build the runtime
//! (`--workers`), run [`balancer::run`], turn an error into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: balancer::Cli = plumbing::parse_or_exit();
    plumbing::init_tracing();
    // The configuration is read once, before the runtime it sizes.
    let result = cli
        .to_config()
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let runtime = match config.workers {
                Some(1) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_all()
                    .build(),
                None => tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build(),
            }?;
            Ok(runtime.block_on(balancer::run_with(cli, config))?)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("balancer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
