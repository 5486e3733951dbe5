//! The workspace's shape, checked: within each crate, module imports flow one
//! way (no cycle), and no function outside tests is longer than a screen.
//!
//! Why a crate and not a lint: clippy has no cross-module rule, and a cycle
//! is what makes a codebase hard to enter (STYLE.md, "layers that import each
//! other"). `cargo test -p structure` runs [`check`] on this workspace, so the
//! test command keeps the rule, not a reviewer's memory.
//!
//! The rules, as the project's structure figures count them:
//! - a module depends on another when its code names it by a `crate::`,
//!   `super::` or `self::` path (in `use`, in code, or inside a macro call);
//!   a path to one of its own ancestors is not a dependency (a child reading
//!   its parent's types is the normal direction);
//! - a cycle is a strongly connected set of two or more modules;
//! - a function's length runs from `fn` to its closing brace; modules and
//!   files under `#[cfg(test)]` are left out.

mod graph;
mod source;

use std::path::{Path, PathBuf};

pub use graph::cycles;
pub use source::{CrateSource, Function, Module, ModulePath};

/// Functions longer than this many lines are reported.
pub const MAX_FUNCTION_LINES: usize = 100;

/// Why the workspace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot parse {path}: {cause}")]
    Parse { path: PathBuf, cause: syn::Error },
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Per crate, each cycle's modules (`crate: a, b::c`).
    pub cycles: Vec<String>,
    /// `(lines, crate/module::function)`, longest first.
    pub long_functions: Vec<(usize, String)>,
}

impl Findings {
    /// True when nothing breaks the rules.
    pub fn is_clean(&self) -> bool {
        self.cycles.is_empty() && self.long_functions.is_empty()
    }
}

impl std::fmt::Display for Findings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "import cycles: {}", self.cycles.len())?;
        for c in &self.cycles {
            writeln!(f, "  {c}")?;
        }
        writeln!(
            f,
            "functions over {MAX_FUNCTION_LINES} lines (tests excluded): {}",
            self.long_functions.len()
        )?;
        for (lines, name) in &self.long_functions {
            writeln!(f, "  {lines:4} {name}")?;
        }
        Ok(())
    }
}

/// Checks every crate directly under `root` that has a `src/` folder.
pub fn check(root: &Path) -> Result<Findings, Error> {
    let mut findings = Findings::default();
    let mut crates: Vec<PathBuf> = read_dir(root)?
        .into_iter()
        .filter(|p| p.join("src").is_dir() && p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    for dir in crates {
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let krate = CrateSource::read(&dir.join("src"))?;
        for cycle in cycles(&krate) {
            let names: Vec<String> = cycle.iter().map(ModulePath::to_string).collect();
            findings
                .cycles
                .push(format!("{name}: {}", names.join(", ")));
        }
        for f in krate.functions() {
            if f.lines > MAX_FUNCTION_LINES {
                findings
                    .long_functions
                    .push((f.lines, format!("{name}/{}::{}", f.module, f.name)));
            }
        }
    }
    findings.long_functions.sort_by(|a, b| b.cmp(a));
    Ok(findings)
}

pub(crate) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read = |cause| Error::Read {
        path: dir.to_path_buf(),
        cause,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        out.push(entry.map_err(read)?.path());
    }
    Ok(out)
}
