//! The report files a run or a merge was asked for (`--csv`, `--html`,
//! `--json`): checked before anything runs, written each on its own after.
//!
//! A typo in one path must not cost a whole test: `check` tries every file
//! before the run starts and refuses it with the path and what to do, and
//! `write` writes every file it can even when another one fails, then names
//! each failure.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{write_csv, write_html, write_json, RunReport};
use crate::Error;
use clap::Args;

/// The report files to write, after a run or a merge.
#[derive(Debug, Clone, Args)]
pub struct Outputs {
    /// Write Locust-compatible CSV files PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the whole result as JSON (mergeable with `loadgen merge`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Every file `o` asks for, with the flag that asked for it.
fn files(o: &Outputs) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    if let Some(prefix) = &o.csv {
        out.extend(
            super::csv::csv_paths(prefix)
                .into_iter()
                .map(|p| ("--csv", p)),
        );
    }
    if let Some(p) = &o.html {
        out.push(("--html", p.clone()));
    }
    if let Some(p) = &o.json {
        out.push(("--json", p.clone()));
    }
    out
}

/// Opens `path` for writing without changing it: an existing file is opened
/// for appending (nothing appended), a new one is created and removed again.
fn probe(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => {
            drop(file);
            std::fs::remove_file(path)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path).map(drop)
        }
        Err(e) => Err(e),
    }
}

/// What the user can do about a path that cannot be written.
fn advice(path: &Path, e: &std::io::Error) -> String {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
        _ => ".".to_string(),
    };
    match e.kind() {
        ErrorKind::NotFound => format!("create the directory {dir} or choose another path"),
        ErrorKind::PermissionDenied => {
            format!("choose a path where you may write (check the permissions of {dir})")
        }
        _ if path.is_dir() => "it is a directory: give a file name".to_string(),
        _ => "choose another path".to_string(),
    }
}

/// Checks, before the run, that every requested report file can be written.
/// The error names the flag, the file and what to do; nothing has run yet.
pub fn check(o: &Outputs) -> Result<(), Error> {
    let mut problems: Vec<String> = Vec::new();
    let mut refused: Vec<&str> = Vec::new();
    for (flag, path) in files(o) {
        // One line per flag: the four CSV files usually fail together.
        if refused.contains(&flag) {
            continue;
        }
        if let Err(e) = probe(&path) {
            refused.push(flag);
            problems.push(format!(
                "{flag}: cannot write {}: {e}; {}",
                path.display(),
                advice(&path, &e)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} (nothing was run)",
            problems.join("\n")
        )))
    }
}

/// Writes every requested report, each independently of the others. Every
/// file that fails is named in the error (not logged as well: the binary
/// prints the error); the others are written.
pub fn write(r: &RunReport, o: &Outputs) -> Result<(), Error> {
    let mut failed = Vec::new();
    let mut note = |flag: &str, res: Result<(), Error>| {
        if let Err(e) = res {
            failed.push(format!("{flag}: {e}"));
        }
    };
    if let Some(p) = &o.csv {
        note("--csv", write_csv(r, p).map(drop));
    }
    if let Some(p) = &o.html {
        note("--html", write_html(r, p));
    }
    if let Some(p) = &o.json {
        note("--json", write_json(r, p));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::ReportsNotWritten(failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(dir: &Path, csv: &str, html: &str, json: &str) -> Outputs {
        Outputs {
            csv: Some(dir.join(csv)),
            html: Some(dir.join(html)),
            json: Some(dir.join(json)),
        }
    }

    #[test]
    fn check_names_every_bad_path_and_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.json"), "old").unwrap();
        let ok = outputs(dir.path(), "out", "r.html", "keep.json");
        check(&ok).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["keep.json"], "the probe creates nothing");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.json")).unwrap(),
            "old",
            "an existing file is not touched"
        );

        let bad = outputs(dir.path(), "nodir/x", "r.html", ".");
        let Err(Error::Usage(msg)) = check(&bad) else {
            panic!("expected a usage error");
        };
        assert!(msg.contains("--csv: cannot write"), "{msg}");
        assert!(msg.contains("nodir/x_stats.csv"), "{msg}");
        assert!(msg.contains("create the directory"), "{msg}");
        assert!(msg.contains("--json"), "{msg}");
        assert!(msg.contains("nothing was run"), "{msg}");
        assert!(!msg.contains("--html"), "{msg}");
    }

    #[test]
    fn write_writes_what_it_can_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let r = RunReport::from_state(
            &crate::stats::StatsState::new(Default::default()),
            Default::default(),
        );
        let o = outputs(dir.path(), "nodir/x", "r.html", "r.json");
        let Err(Error::ReportsNotWritten(failed)) = write(&r, &o) else {
            panic!("expected the CSV to fail");
        };
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].starts_with("--csv: ") && failed[0].contains("nodir/x_stats.csv"),
            "{failed:?}"
        );
        assert!(
            dir.path().join("r.html").exists(),
            "HTML written after the CSV failed"
        );
        assert!(
            dir.path().join("r.json").exists(),
            "JSON written after the CSV failed"
        );
    }
}
