//! Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), with
//! colour only for a person at a terminal.

use std::io::IsTerminal;

/// Installs the process's `tracing` subscriber: stderr, `RUST_LOG` (default
/// `info`), coloured only when [`colour_enabled`]. For binaries (and the
/// lab's re-executed roles, whose stderr is a log file); libraries never
/// call it. A second call is a no-op.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_enabled())
        .try_init();
}

/// Colour escapes only when stderr is a terminal: a log file or a pipe gets
/// plain text (tracing-subscriber colours wherever stderr goes by default).
/// `NO_COLOR` (<https://no-color.org>), set and not empty, turns them off on
/// a terminal too.
pub fn colour_enabled() -> bool {
    std::io::stderr().is_terminal() && no_color_unset(std::env::var_os("NO_COLOR"))
}

fn no_color_unset(value: Option<std::ffi::OsString>) -> bool {
    value.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_counts_only_when_set_and_not_empty() {
        assert!(no_color_unset(None));
        assert!(no_color_unset(Some("".into())));
        assert!(!no_color_unset(Some("1".into())));
        assert!(
            !no_color_unset(Some("false".into())),
            "any value counts, as no-color.org says"
        );
    }
}
