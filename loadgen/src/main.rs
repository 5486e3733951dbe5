//! The `loadgen` binary: parse, build the runtime, run, map the error to an exit code.

fn main() -> std::process::ExitCode {
    let cli: loadgen::Cli = plumbing::parse_or_exit();
    plumbing::init_tracing();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let target = cli.run.url.as_deref().or(cli.run.host.as_deref());
        builder.worker_threads(loadgen::runtime::worker_threads_for(target));
    }
    let runtime = match builder.enable_all().build() {
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
