//! The `lab` binary: parse, set up tracing, build the runtime, run, exit code.

fn main() -> std::process::ExitCode {
    let cli: lab::Cli = plumbing::parse_or_exit();
    // Also the subscriber of every role (`lab market-api …` is this binary):
    // the replicas' log files get plain text.
    plumbing::init_tracing();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = lab::runtime_workers(&cli) {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lab: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(lab::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: {e}");
            std::process::ExitCode::from(e.exit_code() as u8)
        }
    }
}
