//! The `loadgen` binary: parse, build the runtime, run, map the error to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = loadgen::Cli::parse();
    loadgen::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return std::process::ExitCode::from(4);
        }
    };
    match runtime.block_on(loadgen::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::from(e.exit_code() as u8)
        }
    }
}
