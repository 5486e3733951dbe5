//! The Kubernetes manifests in `deploy/k8s/`: no cluster runs here, so they
//! are checked in the two ways that need none. Every file is validated
//! against the Kubernetes JSON schemas by `kubernetes-validate` (PyPI, the
//! schemas bundled, so it works offline), and every container command line
//! that starts one of our binaries is parsed by that binary's own clap
//! parser, with the balancer's nginx-style ConfigMap loaded as the balancer
//! would load it. Shell scripts (the Indexed Job's segment arithmetic, the
//! merge's glob) are run by a real `sh` with our binaries replaced by small
//! scripts that record their arguments, so what is parsed is what the pod
//! would run.
//!
//! The tools come from outside the workspace (`kubernetes-validate`,
//! `python3` with PyYAML, which it depends on): when one is missing the test
//! fails under `CI` and is skipped with the reason otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde_json::Value;

/// Our binaries, as a container's `command` names them.
const BINARIES: [&str; 3] = ["market-api", "balancer", "loadgen"];

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

/// Every `*.yaml` file in `deploy/k8s/`, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .expect("deploy/k8s exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", k8s_dir().display());
    files
}

/// Runs `cmd`, or says why it could not: `None` means the tool is missing and
/// the test was skipped (outside CI); under `CI` a missing tool fails.
fn run_tool(mut cmd: Command, what: &str) -> Option<std::process::Output> {
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let reason =
                format!("{what} is not installed ({e}); `pip install kubernetes-validate==1.37.0` (.ci/run installs it)");
            assert!(std::env::var_os("CI").is_none(), "{reason}");
            eprintln!("skipped: {reason}");
            None
        }
        Err(e) => panic!("cannot run {what}: {e}"),
    }
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let mut cmd = Command::new("kubernetes-validate");
    // --strict: an unknown field (a typo such as `completionMod`) is an error,
    // not silently dropped as the API server would.
    cmd.args(["--strict", "--quiet"]).args(manifest_files());
    let Some(out) = run_tool(cmd, "kubernetes-validate") else {
        return;
    };
    assert!(
        out.status.success(),
        "kubernetes-validate failed ({})\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The documents of every manifest file, as JSON (PyYAML reads them: the
/// workspace's YAML crate is not a dependency of `lab`).
fn documents() -> Option<Vec<Value>> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(
        "import json, sys, yaml\n\
         docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]\n\
         print(json.dumps(docs))",
    );
    cmd.args(manifest_files());
    let out = run_tool(cmd, "python3")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'yaml'") {
        let reason = "python3 has no PyYAML (it comes with kubernetes-validate)";
        assert!(std::env::var_os("CI").is_none(), "{reason}");
        eprintln!("skipped: {reason}");
        return None;
    }
    assert!(
        out.status.success(),
        "reading the manifests failed:\n{stderr}"
    );
    Some(serde_json::from_slice(&out.stdout).expect("PyYAML printed JSON"))
}

/// One container of a workload, with what it needs to be run here.
struct Container<'a> {
    /// `Kind/name/container`, for messages.
    label: String,
    spec: &'a Value,
    /// The pod's volumes by name.
    volumes: BTreeMap<&'a str, &'a Value>,
    /// An Indexed Job's completions (its pods differ by JOB_COMPLETION_INDEX).
    indexed: Option<u64>,
    /// Every document, for the ConfigMaps a container mounts.
    docs: &'a [Value],
}

/// Every container (init containers too) of every workload.
fn containers(docs: &[Value]) -> Vec<Container<'_>> {
    let mut all = Vec::new();
    for doc in docs {
        let Some(pod) = doc.pointer("/spec/template/spec") else {
            continue;
        };
        let volumes = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect::<BTreeMap<_, _>>();
        let indexed =
            (doc.pointer("/spec/completionMode") == Some(&Value::from("Indexed"))).then(|| {
                doc.pointer("/spec/completions")
                    .and_then(Value::as_u64)
                    .unwrap()
            });
        for key in ["initContainers", "containers"] {
            for c in pod[key].as_array().into_iter().flatten() {
                all.push(Container {
                    label: format!(
                        "{}/{}/{}",
                        doc["kind"].as_str().unwrap_or("?"),
                        doc["metadata"]["name"].as_str().unwrap_or("?"),
                        c["name"].as_str().unwrap_or("?")
                    ),
                    spec: c,
                    volumes: volumes.clone(),
                    indexed,
                    docs,
                });
            }
        }
    }
    all
}

/// `command` + `args`, with Kubernetes' `$(VAR)` expanded from the
/// container's `env` (a value from a Secret or the pod becomes `x`).
fn argv(c: &Value, extra_env: &BTreeMap<String, String>) -> Vec<String> {
    let mut env = extra_env.clone();
    for e in c["env"].as_array().into_iter().flatten() {
        let value = e["value"].as_str().unwrap_or("x");
        env.insert(e["name"].as_str().unwrap().to_string(), value.to_string());
    }
    let words = c["command"].as_array().into_iter().flatten();
    let words = words.chain(c["args"].as_array().into_iter().flatten());
    words
        .map(|w| {
            let mut w = w.as_str().unwrap().to_string();
            for (k, v) in &env {
                w = w.replace(&format!("$({k})"), v);
            }
            w
        })
        .collect()
}

/// The calls of our binaries a `sh -c` script makes, in order: the script runs
/// in a real shell with each binary replaced, first on `PATH`, by a script
/// that records its arguments. Scripts that call none of them (wait loops)
/// are not run.
fn script_calls(script: &str, env: &BTreeMap<String, String>) -> Vec<Vec<String>> {
    let calls_ours = script.lines().any(|l| {
        let first = l.split_whitespace().next().unwrap_or("");
        BINARIES.contains(&first)
    });
    if !calls_ours {
        return Vec::new();
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("calls");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // The stubs are written by the shell itself: an executable written by this
    // (multi-threaded) process could still be open in a child forked meanwhile
    // by another test, and exec would fail with "text file busy".
    let stub = "#!/bin/sh\nprintf '%s\\0' \"${0##*/}\" \"$@\" >> \"$RECORD\"\nprintf '\\n' >> \"$RECORD\"\n";
    let prelude = format!(
        "for b in {}; do printf '%s' \"$STUB\" > \"$BIN/$b\"; chmod +x \"$BIN/$b\"; done\n",
        BINARIES.join(" ")
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("set -e\n{prelude}{script}"))
        .env("RECORD", &record)
        .env("STUB", stub)
        .env("BIN", &bin)
        .env("PATH", format!("{}:{path}", bin.display()))
        .envs(env)
        .current_dir(dir.path())
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&record).unwrap_or_default();
    text.split_terminator("\0\n")
        .map(|call| call.split('\0').map(str::to_string).collect())
        .collect()
}

/// The balancer's `--config` path, rewritten to a copy of the ConfigMap's file
/// in which each `server NAME:PORT` host is `127.0.0.1`: the balancer resolves
/// names when it loads the file, and the cluster's names do not resolve here.
fn local_config(c: &Container<'_>, path: &str, tmp: &Path) -> PathBuf {
    for m in c.spec["volumeMounts"].as_array().into_iter().flatten() {
        let Some(key) = path.strip_prefix(&format!("{}/", m["mountPath"].as_str().unwrap())) else {
            continue;
        };
        let volume = c.volumes[m["name"].as_str().unwrap()];
        let map_name = volume["configMap"]["name"]
            .as_str()
            .expect("a ConfigMap volume");
        let map = c
            .docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == map_name)
            .unwrap_or_else(|| panic!("{}: no ConfigMap {map_name}", c.label));
        let text = map["data"][key]
            .as_str()
            .expect("the key is in the ConfigMap");
        let local: String = text
            .lines()
            .map(|l| match l.trim_start().strip_prefix("server ") {
                Some(rest) if rest.contains(':') => {
                    let indent = &l[..l.len() - l.trim_start().len()];
                    let port_on = &rest[rest.find(':').unwrap()..];
                    format!("{indent}server 127.0.0.1{port_on}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        let file = tmp.join(key);
        std::fs::write(&file, local).unwrap();
        return file;
    }
    panic!("{}: {path} is not mounted from a ConfigMap", c.label)
}

/// Parses one call of our binaries with that binary's own parser.
fn check_call(c: &Container<'_>, mut call: Vec<String>, tmp: &Path) {
    let label = &c.label;
    match call[0].as_str() {
        "market-api" => {
            if let Err(e) = market_api::Cli::try_parse_from(&call) {
                panic!("{label}: {call:?}\n{e}");
            }
        }
        "balancer" => {
            if let Some(i) = call.iter().position(|a| a == "--config" || a == "-c") {
                call[i + 1] = local_config(c, &call[i + 1], tmp).display().to_string();
            }
            let cli = balancer::Cli::try_parse_from(&call)
                .unwrap_or_else(|e| panic!("{label}: {call:?}\n{e}"));
            if let Err(e) = cli.to_config() {
                panic!("{label}: the balancer refuses its configuration: {e}");
            }
        }
        "loadgen" => {
            if let Err(e) = loadgen::Cli::try_parse_from(&call) {
                panic!("{label}: {call:?}\n{e}");
            }
        }
        other => panic!("{label}: not one of ours: {other}"),
    }
}

/// The value after `flag` in a call, if any.
fn flag_value<'a>(call: &'a [String], flag: &str) -> Option<&'a str> {
    let i = call.iter().position(|a| a == flag)?;
    call.get(i + 1).map(String::as_str)
}

#[test]
fn every_command_line_parses_with_the_binaries_own_flags() {
    let Some(docs) = documents() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = BTreeSet::new();
    for c in containers(&docs) {
        let indices = c.indexed.map_or(vec![None], |n| (0..n).map(Some).collect());
        let mut segments = BTreeSet::new();
        let mut outputs = BTreeSet::new();
        for index in &indices {
            let mut env = BTreeMap::new();
            if let Some(i) = index {
                env.insert("JOB_COMPLETION_INDEX".to_string(), i.to_string());
            }
            let words = argv(c.spec, &env);
            let calls = match words.first().map(String::as_str) {
                Some("sh") => {
                    assert_eq!(words[1], "-c", "{}: sh without -c", c.label);
                    script_calls(&words[2], &env)
                }
                Some(b) if BINARIES.contains(&b) => vec![words.clone()],
                _ => Vec::new(),
            };
            for call in calls {
                checked.insert(call[0].clone());
                segments.extend(flag_value(&call, "--segment").map(str::to_string));
                outputs.extend(flag_value(&call, "--json").map(str::to_string));
                check_call(&c, call, tmp.path());
            }
        }
        if let Some(n) = c.indexed {
            // Every pod of the Indexed Job runs its own share, 1/N to N/N
            // (segments are 1-based, JOB_COMPLETION_INDEX is 0-based), and
            // writes its own file.
            let want: BTreeSet<String> = (1..=n).map(|i| format!("{i}/{n}")).collect();
            assert_eq!(
                segments, want,
                "{}: the segments of the indexed pods",
                c.label
            );
            assert_eq!(
                outputs.len() as u64,
                n,
                "{}: one --json file per pod",
                c.label
            );
        }
    }
    let want: BTreeSet<String> = BINARIES.iter().map(|b| b.to_string()).collect();
    assert_eq!(checked, want, "every binary is started by some manifest");
}
