//! The workspace keeps its shape, and the checker sees what it claims to.

mod fixtures;

/// The rule the project holds itself to: run on the real workspace.
#[test]
fn the_workspace_has_no_import_cycle_and_no_long_function() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let findings = structure::check(&root).expect("the workspace parses");
    assert!(
        findings.is_clean(),
        "the workspace's structure broke its rules (module imports flow one way; functions ≤ {} lines):\n{findings}",
        structure::MAX_FUNCTION_LINES
    );
}
