//! The checker on small crates written for the test: it must find what is
//! there and nothing else.

use std::path::Path;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn check(files: &[(&str, &str)]) -> structure::Findings {
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("demo");
    write(&krate, &[("Cargo.toml", "[package]\nname = \"demo\"\n")]);
    write(&krate, files);
    structure::check(dir.path()).unwrap()
}

#[test]
fn a_two_module_cycle_is_found_through_use_code_and_macros() {
    let f = check(&[
        ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "src/b.rs",
            "pub struct B;\nfn f() { let _ = crate::a::A; }\n",
        ),
        ("src/c.rs", "fn g() { println!(\"{:?}\", super::a::A); }\n"),
    ]);
    assert_eq!(f.cycles, vec!["demo: a, b".to_string()], "{f}");
}

#[test]
fn a_child_naming_its_parent_is_no_cycle_and_tests_are_left_out() {
    let f = check(&[
        ("src/lib.rs", "mod p;\n"),
        (
            "src/p/mod.rs",
            "mod child;\npub struct P;\nfn f() { let _ = child::C; }\nuse self::child::C;\n",
        ),
        (
            "src/p/child.rs",
            "use super::P;\npub struct C;\n#[cfg(test)]\nmod tests { use crate::p::P; }\n",
        ),
    ]);
    assert!(f.cycles.is_empty(), "{f}");
}

#[test]
fn long_functions_are_counted_from_fn_to_the_closing_brace() {
    let body = "    let _x = 1;\n".repeat(100);
    let long = format!("fn long() {{\n{body}}}\nfn short() {{}}\n#[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{body}    }}\n}}\n");
    let f = check(&[("src/lib.rs", &long)]);
    assert_eq!(
        f.long_functions,
        vec![(102, "demo/lib::long".to_string())],
        "{f}"
    );
}
