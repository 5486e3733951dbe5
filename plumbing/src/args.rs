//! Usage errors as one line: `PROGRAM: error: WHAT`, exit code 2.
//!
//! clap's own rendering adds a usage block and "For more information, try
//! '--help'" under every error; in a script's log that is four lines for one
//! mistake. The first line already names the flag and the rule, so that is
//! the line we keep.

use clap::error::ErrorKind;
use clap::Parser;

/// The exit code of a usage error, as clap, Locust and the BSD tools use.
pub const USAGE_EXIT: i32 = 2;

/// Parses the process's arguments. `--help` and `--version` print and exit 0;
/// any other error prints [`one_line`] to stderr and exits with [`USAGE_EXIT`].
pub fn parse_or_exit<C: Parser>() -> C {
    match C::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on(e),
    }
}

/// What [`parse_or_exit`] does with an error, for callers that parse
/// arguments themselves (`lab`'s roles).
pub fn exit_on(e: clap::Error) -> ! {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            eprintln!("{}", one_line(&e));
            std::process::exit(USAGE_EXIT)
        }
    }
}

/// The error's first line, prefixed with the program's name:
/// `loadgen: error: invalid value '-1' for '--users <USERS>': …`.
pub fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("error: invalid arguments");
    let program = std::env::args_os()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "error".into());
    format!("{program}: {first}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    #[command(name = "demo", allow_negative_numbers = true)]
    struct Demo {
        /// How many.
        #[arg(short = 'u', long, value_parser = clap::value_parser!(u32).range(1..))]
        users: u32,
    }

    #[test]
    fn a_usage_error_is_one_line_naming_the_flag() {
        let e = Demo::try_parse_from(["demo", "-u", "-1"]).unwrap_err();
        let line = one_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--users"), "{line}");
        assert!(line.contains("-1"), "{line}");
        assert!(!line.contains("For more information"), "{line}");
    }
}
