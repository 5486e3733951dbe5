//! Config errors from the real binary: nginx-style messages with file:line,
//! a non-zero exit, nothing bound.

use std::process::Command;

fn run_with(conf: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.conf");
    std::fs::write(&path, conf).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_balancer"))
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn errors_name_file_and_line() {
    let cases = [
        (
            "upstream app {\n    server 127.0.0.1:9;\n    sticky cookie srv;\n}\n",
            "unknown or unsupported directive \"sticky\"",
            "bad.conf:3",
        ),
        (
            "upstream app {\n    hash $request_uri;\n    server 127.0.0.1:9;\n    server 127.0.0.1:10 backup;\n}\nserver { listen 1; location / { proxy_pass http://app; } }\n",
            "does not support parameter \"backup\"",
            "bad.conf:4",
        ),
        (
            "upstream app {\n    server 127.0.0.1:9 max_fails=two;\n}\n",
            "invalid max_fails value \"two\"",
            "bad.conf:2",
        ),
        (
            "upstream app {\n    server 127.0.0.1:9;\n    queue 10 timeout=soon;\n}\n",
            "invalid time value \"soon\"",
            "bad.conf:3",
        ),
        (
            "upstream app {\n    server 127.0.0.1:9;\n}\nserver {\n    listen 8080;\n    location / {\n        proxy_pass http://nowhere;\n    }\n}\n",
            "host not found in upstream \"nowhere\"",
            "bad.conf:7",
        ),
        ("upstream app {\n    server 127.0.0.1:9;\n", "unexpected end of file", "bad.conf:"),
    ];
    for (conf, msg, at) in cases {
        let (ok, err) = run_with(conf);
        assert!(!ok, "accepted: {conf}");
        assert!(err.contains(msg) && err.contains(at), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_balancer"))
        .args(["--config", "/nonexistent/lab.conf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/lab.conf"));
}
