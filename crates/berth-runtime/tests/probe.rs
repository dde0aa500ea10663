//! The start-up probe against the host's real OCI runtimes. Needs root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use berth_runtime::{RuntimeConfig, SandboxError, SandboxRuntime};
use common::{Harness, require_root};

#[test]
fn crun_where_it_works_else_runc() {
    let Some(()) = require_root("crun_where_it_works_else_runc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let chosen = SandboxRuntime::new(Harness::config(dir.path()))
        .unwrap()
        .probe()
        .clone();
    eprintln!(
        "probe chose {} on cgroup {:?}",
        chosen.oci_runtime.display(),
        chosen.cgroups
    );
    let Some(crun) = berth_runtime::probe::find_binary("crun") else {
        eprintln!(
            "SKIPPED: crun_where_it_works_else_runc: crun is not installed (Debian package crun); runc chosen"
        );
        assert!(chosen.oci_runtime.ends_with("runc"));
        return;
    };
    let forced = SandboxRuntime::new(RuntimeConfig {
        oci_runtime: Some(crun.clone()),
        ..Harness::config(dir.path())
    });
    match forced {
        Ok(_) => assert_eq!(
            chosen.oci_runtime, crun,
            "crun works here, so it is preferred"
        ),
        Err(e) => {
            eprintln!("crun refused here: {e}");
            assert!(matches!(e, SandboxError::NoWorkingRuntime { .. }));
            assert!(e.to_string().contains("crun"), "{e}");
            assert!(chosen.oci_runtime.ends_with("runc"));
        }
    }
    // Probes leave nothing behind.
    let mine = format!("probe-{}-", std::process::id());
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for cg in std::fs::read_dir(entry.path().join("berth"))
            .into_iter()
            .flatten()
            .flatten()
        {
            assert!(
                !cg.file_name().to_string_lossy().starts_with(&mine),
                "left {}",
                cg.path().display()
            );
        }
    }
    let tasks = std::fs::read_dir(dir.path().join("state/tasks"))
        .unwrap()
        .count();
    assert_eq!(tasks, 0, "probe bundles are removed");
}

#[test]
fn no_working_runtime_is_a_clear_error() {
    let Some(()) = require_root("no_working_runtime_is_a_clear_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        oci_runtime: Some("/nonexistent/runc".into()),
        ..Harness::config(dir.path())
    };
    let err = SandboxRuntime::new(config).unwrap_err();
    assert!(
        matches!(err, SandboxError::NoWorkingRuntime { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/runc"), "{err}");
    let config = RuntimeConfig {
        shim: Some("/nonexistent/berth-shim".into()),
        ..Harness::config(dir.path())
    };
    assert!(matches!(
        SandboxRuntime::new(config),
        Err(SandboxError::ShimNotFound { .. })
    ));
}
