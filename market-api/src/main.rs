//! `market-api` binary: parse, build the runtime, run, map the error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: market_api::Cli = plumbing::parse_or_exit();
    plumbing::init_tracing();
    let runtime = match market_api::runtime(cli.workers()) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("market-api: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(market_api::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("market-api: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
