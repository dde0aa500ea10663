//! Upgrades: a task whose state was written by the Berth before versioned
//! manifests is found, recovered, stopped and removed by this one.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;

use berth_runtime_api::{
    Capabilities, ContainerState, HealthStatus, NetworkForm, RootfsForm, RuntimeKind, TaskId,
    TaskRuntime,
};
use common::{Harness, require_root};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture(from), to).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_is_layers_and_netns() {
    let Some(()) = require_root("the_sandbox_is_layers_and_netns") else {
        return;
    };
    let h = Harness::new();
    assert_eq!(h.runtime.kind(), RuntimeKind::Sandbox);
    assert_eq!(
        h.runtime.capabilities(),
        Capabilities {
            rootfs: RootfsForm::Layers,
            network: NetworkForm::Netns
        }
    );
}

/// The v0 fixtures as a task directory whose shim is gone: everything it
/// recorded comes out of `recover`, and the task can be removed.
#[tokio::test(flavor = "multi_thread")]
async fn a_finished_task_from_before_versioning_recovers() {
    let Some(()) = require_root("a_finished_task_from_before_versioning_recovers") else {
        return;
    };
    let h = Harness::new();
    let id = TaskId::new("0f3c9a7e5b2d4c1a8e6f7a9b0c1d2e3f").unwrap();
    let dir = h.state_dir().join("tasks").join(id.as_str());
    copy("task-manifest-v0.json", &dir.join("task.json"));
    copy("shim-v0.pid", &dir.join("shim.pid"));
    copy("exit-v0.json", &dir.join("containers/web/exit.json"));
    copy("health-v0.json", &dir.join("containers/web/health.json"));
    copy(
        "not-started-v0.json",
        &dir.join("containers/log-router/not-started.json"),
    );
    let _guard = h.guard(&id);

    let runtime = h.restart();
    assert_eq!(runtime.list().await.unwrap(), vec![id.clone()]);
    let report = runtime.recover(&id).await.unwrap();
    assert_eq!(report.task_id, id);
    let names: Vec<_> = report.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "log-router"]);
    let (web, router) = (&report.containers[0], &report.containers[1]);
    assert!(web.essential && !router.essential);
    let ContainerState::Exited(exit) = &web.state else {
        panic!("web: {:?}", web.state);
    };
    assert_eq!((exit.exit_code, exit.signal, exit.oom_killed), (137, Some(9), true));
    let health = web.health.as_ref().unwrap();
    assert_eq!((health.status, health.failing_streak), (HealthStatus::Unhealthy, 3));
    let ContainerState::NotStarted(never) = &router.state else {
        panic!("log-router: {:?}", router.state);
    };
    assert!(never.reason.starts_with("CannotStartContainerError"), "{}", never.reason);
    assert_eq!(router.health, None, "log-router has no health check");
    assert!(report.is_finished());

    runtime.remove(&id).await.unwrap();
    assert!(!dir.exists());
}

/// A running task whose manifest is in the format before versioning (as
/// an agent before the upgrade wrote it): a new runtime instance recovers
/// it running, and stops and removes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_task_from_before_versioning_survives_the_upgrade() {
    let Some(()) = require_root("a_running_task_from_before_versioning_survives_the_upgrade") else {
        return;
    };
    let h = Harness::new();
    let mut main = h.sh("main", "sleep 1000");
    main.stop_timeout = Some(std::time::Duration::from_millis(200));
    let spec = h.task("upgrade", main);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    // Rewrite its manifest as the old code wrote it.
    let path = h
        .state_dir()
        .join("tasks")
        .join(spec.task_id.as_str())
        .join("task.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["formatVersion"], berth_runtime::MANIFEST_FORMAT);
    json.as_object_mut().unwrap().remove("formatVersion");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    let upgraded = h.restart();
    let report = upgraded.recover(&spec.task_id).await.unwrap();
    assert!(
        matches!(report.container("main"), Some(ContainerState::Running { .. })),
        "{report:?}"
    );
    let stopped = upgraded.stop(&spec.task_id).await.unwrap();
    assert!(stopped.all_done(), "{stopped:?}");
    upgraded.remove(&spec.task_id).await.unwrap();
    assert_eq!(
        common::leftovers(&spec.task_id, &h.state_dir()),
        Vec::<String>::new()
    );
}
