//! `--json FILE`: the whole `RunReport`, pretty-printed (and read back by `merge`).

use std::path::Path;

use super::{write_file, RunReport};
use crate::Error;

/// The report as JSON text.
pub fn to_json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Writes the report to `path`.
pub fn write_json(r: &RunReport, path: &Path) -> Result<(), Error> {
    write_file(path, &to_json(r))
}

/// Reads a report written by `write_json`.
pub fn read_json(path: &Path) -> Result<RunReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::BadReport {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
