//! Repository policies, as tests (after firecracker's
//! verify_dependencies): which crates may depend on what, which do no I/O,
//! and who may speak the AWS wire shapes.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The names in a crate's `[dependencies]` table (not dev or build ones).
fn dependencies(krate: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml")).expect("Cargo.toml");
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_end_matches(".workspace").to_owned();
            if !name.is_empty() && !name.starts_with('#') {
                names.push(name);
            }
        }
    }
    names
}

/// Every `.rs` file under `dir`, with its text up to its first
/// `#[cfg(test)]` (tests may use what the code may not).
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
                out.push((path, code));
            }
        }
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace()).unwrap_or(path).display().to_string()
}

#[test]
fn the_pure_crates_depend_only_on_their_allow_list() {
    let allowed: &[(&str, &[&str])] = &[
        // The domain: data and rules.
        ("berth-model", &["berth-wire", "ipnet", "serde", "serde_json", "thiserror"]),
        // Controllers: rules, the runner's queue and clock, logs. The store
        // is behind traits.
        ("berth-control", &["berth-model", "futures-util", "tokio", "tracing"]),
        // The runtime boundary: types and pure rules.
        ("berth-runtime-api", &["async-trait", "serde", "thiserror"]),
        // The IAM policy language: documents in, decisions out.
        ("berth-iam", &["ipnet", "serde_json", "thiserror", "time"]),
        // The DNS server (not pure: it serves sockets) answers from the
        // records it is given: no store, no wire shapes.
        ("berth-dns", &["async-trait", "hickory-server", "thiserror", "tokio", "tracing"]),
        // Secrets at rest and their resolution (the API and the agent share
        // it): the store's traits, a cipher, no HTTP and no wire shapes.
        ("berth-secrets", &["berth-model", "berth-store", "chacha20poly1305", "rand", "serde_json", "thiserror", "zeroize"]),
    ];
    for (krate, allow) in allowed {
        let extra: Vec<String> = dependencies(krate).into_iter().filter(|d| !allow.contains(&d.as_str())).collect();
        assert!(extra.is_empty(), "{krate} may depend only on {allow:?}; it also depends on {extra:?}");
    }
}

/// The load balancers' data plane proxies and health-checks: it is fed
/// plain configuration and knows no store, no wire shape, no other crate
/// of Berth.
#[test]
fn the_data_plane_depends_on_no_berth_crate() {
    let berth: Vec<String> = dependencies("berth-lb").into_iter().filter(|d| d.starts_with("berth-")).collect();
    assert!(berth.is_empty(), "berth-lb depends on {berth:?}; it takes its configuration as plain values");
}

#[test]
fn the_pure_crates_do_no_io() {
    const IO: &[&str] = &[
        "std::fs",
        "std::net::Tcp",
        "std::net::Udp",
        "std::process",
        "std::os::unix::net",
        "tokio::fs",
        "tokio::net",
        "tokio::process",
        "File::",
        "sqlx",
        "reqwest",
        "hyper",
    ];
    for krate in ["berth-model", "berth-control", "berth-runtime-api", "berth-iam"] {
        for (path, code) in sources(&workspace().join("crates").join(krate).join("src")) {
            for needle in IO {
                assert!(!code.contains(needle), "{} does I/O ({needle}); {krate} must not", relative(&path));
            }
        }
    }
}

/// Only the API edge (and the clients of the API: the CLI, the bench,
/// test infrastructure) speak the wire shapes. The one exception inside
/// the system is the task definition document — the user's, which ECS
/// returns as registered — and the cluster record: the files that read or
/// keep those are listed, and no other may import `berth_wire`.
#[test]
fn only_the_edge_speaks_the_wire_shapes() {
    let edge_and_clients = ["berth-wire", "berth-api", "berth-cli", "berth-bench", "berth-testinfra"];
    let documents = [
        // berth-model: the task definition and cluster rules, and the
        // definition a new task is built from.
        "crates/berth-model/src/cluster.rs",
        "crates/berth-model/src/records.rs",
        "crates/berth-model/src/tags.rs",
        "crates/berth-model/src/task.rs",
        "crates/berth-model/src/task_definition.rs",
        // Task definition documents for other crates' tests.
        "crates/berth-model/src/testing.rs",
        // berth-store: cluster and task definition rows.
        "crates/berth-store/src/lib.rs",
        "crates/berth-store/src/backend.rs",
        // berth-agent: container definitions onto the runtime's spec and
        // the log shipper's destinations; the plane hands definitions over.
        "crates/berth-agent/src/spec.rs",
        "crates/berth-agent/src/logs/config.rs",
        "crates/berth-agent/src/logs/mod.rs",
        "crates/berth-agent/src/plane.rs",
        "crates/berth-agent/src/driver.rs",
    ];
    let crates = std::fs::read_dir(workspace().join("crates")).expect("crates");
    for krate in crates.flatten().map(|e| e.file_name().to_string_lossy().into_owned()) {
        if edge_and_clients.contains(&krate.as_str()) {
            continue;
        }
        for (path, code) in sources(&workspace().join("crates").join(&krate).join("src")) {
            let rel = relative(&path);
            if code.contains("berth_wire") {
                assert!(documents.contains(&rel.as_str()), "{rel} uses berth_wire: only berth-api converts to and from the wire shapes");
            }
        }
    }
    // And the pure controllers never do.
    assert!(!dependencies("berth-control").iter().any(|d| d == "berth-wire"));
}
