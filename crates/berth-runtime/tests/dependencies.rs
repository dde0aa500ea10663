//! Container dependencies (`dependsOn`), health checks and the shutdown
//! order, against the real kernel and OCI runtime. Needs root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime_api::{
    BindMount, Condition, ContainerSpec, ContainerState, Dependency, HealthCheck, HealthStatus,
    TaskId, TaskRuntime, TaskSpec, TaskReport,
};
use common::{Harness, require_root, unique_id};

fn depends(c: &mut ContainerSpec, on: &str, condition: Condition) {
    c.depends_on.push(Dependency {
        container: on.into(),
        condition,
    });
}

/// Mounts the host dir `shared` at /shared in the container.
fn share(c: &mut ContainerSpec, shared: &Path) {
    c.mounts.push(BindMount {
        source: shared.to_path_buf(),
        destination: "/shared".into(),
        read_only: false,
    });
}

fn check(script: &str, interval_ms: u64, retries: u32) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_secs(2),
        retries,
        ..HealthCheck::new(vec!["/bin/sh".into(), "-c".into(), script.into()])
    }
}

/// Polls the task's status until `done` holds (at most `within`).
async fn until(
    h: &Harness,
    task: &TaskId,
    within: Duration,
    done: impl Fn(&TaskReport) -> bool,
) -> TaskReport {
    let deadline = Instant::now() + within;
    loop {
        let status = h.runtime.status(task).await.unwrap();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "not within {within:?}: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn not_started_reason(status: &TaskReport, name: &str) -> String {
    match status.container(name) {
        Some(ContainerState::NotStarted(n)) => n.reason.clone(),
        other => panic!("{name}: expected NotStarted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_init_container_runs_to_success_before_the_app_starts() {
    let Some(()) = require_root("an_init_container_runs_to_success_before_the_app_starts") else {
        return;
    };
    let h = Harness::new();
    let shared = tempfile::tempdir().unwrap();
    let mut init = h.sh("init", "sleep 1; echo init >> /shared/order");
    init.essential = false;
    share(&mut init, shared.path());
    let mut app = h.sh("app", "echo app >> /shared/order; exit 4");
    depends(&mut app, "init", Condition::Success);
    share(&mut app, shared.path());
    let spec = TaskSpec::new(unique_id("deps"), vec![init, app]);
    let _guard = h.guard(&spec.task_id);

    let started = h.runtime.start(&spec).await.unwrap();
    assert!(
        matches!(
            started.container("init"),
            Some(ContainerState::Running { .. })
        ),
        "{started:?}"
    );
    assert_eq!(started.container("app"), Some(&ContainerState::Waiting));
    assert!(started.any_waiting() && !started.is_finished());

    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    match status.container("app") {
        Some(ContainerState::Exited(e)) => assert_eq!(e.exit_code, 4),
        other => panic!("app: {other:?}"),
    }
    let order = std::fs::read_to_string(shared.path().join("order")).unwrap();
    assert_eq!(
        order, "init\napp\n",
        "the app started only after init succeeded"
    );
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_init_container_keeps_the_app_from_starting() {
    let Some(()) = require_root("a_failed_init_container_keeps_the_app_from_starting") else {
        return;
    };
    let h = Harness::new();
    let mut init = h.sh("init", "exit 2");
    init.essential = false;
    let mut app = h.sh("app", "sleep 1000");
    app.stop_timeout = Some(Duration::from_millis(200));
    depends(&mut app, "init", Condition::Success);
    let mut after_app = h.sh("reporter", "sleep 1000");
    after_app.essential = false;
    depends(&mut after_app, "app", Condition::Start);
    let spec = TaskSpec::new(unique_id("deps"), vec![init, app, after_app]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    assert!(
        status.is_finished(),
        "an essential container that will never start ends the task"
    );
    let reason = not_started_reason(&status, "app");
    assert!(
        reason.starts_with("CannotStartContainerError: ")
            && reason.contains("init (SUCCESS)")
            && reason.contains("exited with code 2"),
        "{reason}"
    );
    let reason = not_started_reason(&status, "reporter");
    assert!(
        reason.contains("app (START)") && reason.contains("never started"),
        "{reason}"
    );
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_condition_waits_for_the_health_check() {
    let Some(()) = require_root("healthy_condition_waits_for_the_health_check") else {
        return;
    };
    let h = Harness::new();
    let mut db = h.sh("db", "sleep 1; touch /tmp/ready; sleep 1000");
    // Failures in the start period do not count: 3 retries of 300 ms
    // would be over long before the file appears.
    db.health_check = Some(HealthCheck {
        start_period: Duration::from_secs(10),
        ..check("test -f /tmp/ready", 300, 3)
    });
    db.stop_timeout = Some(Duration::from_millis(200));
    let mut app = h.sh("app", "sleep 1000");
    app.stop_timeout = Some(Duration::from_millis(200));
    depends(&mut app, "db", Condition::Healthy);
    let spec = TaskSpec::new(unique_id("healthy"), vec![db, app]);
    let _guard = h.guard(&spec.task_id);
    let started = h.runtime.start(&spec).await.unwrap();
    assert_eq!(started.container("app"), Some(&ContainerState::Waiting));
    assert_eq!(
        started.containers[0].health.as_ref().map(|h| h.status),
        Some(HealthStatus::Unknown)
    );
    let status = until(&h, &spec.task_id, Duration::from_secs(20), |s| {
        !s.any_waiting()
    })
    .await;
    assert!(
        matches!(
            status.container("app"),
            Some(ContainerState::Running { .. })
        ),
        "{status:#?}"
    );
    let db_health = status.containers[0].health.clone().unwrap();
    assert_eq!(db_health.status, HealthStatus::Healthy, "{db_health:?}");
    assert_eq!(db_health.last_exit_code, Some(0));
    assert!(status.containers[1].health.is_none(), "app has no check");
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_checks_make_a_container_unhealthy_and_the_task_runs_on() {
    let Some(()) = require_root("failing_checks_make_a_container_unhealthy_and_the_task_runs_on")
    else {
        return;
    };
    let h = Harness::new();
    let mut main = h.sh("main", "sleep 1000");
    main.health_check = Some(check("exit 3", 200, 2));
    main.stop_timeout = Some(Duration::from_millis(200));
    let spec = h.task("unhealthy", main);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = until(&h, &spec.task_id, Duration::from_secs(20), |s| {
        s.containers[0]
            .health
            .as_ref()
            .is_some_and(|h| h.status == HealthStatus::Unhealthy)
    })
    .await;
    let health = status.containers[0].health.clone().unwrap();
    assert!(
        health.failing_streak >= 2 && health.checks >= 2,
        "{health:?}"
    );
    assert_eq!(health.last_exit_code, Some(3));
    assert!(
        !status.is_finished(),
        "a standalone task is not stopped for being unhealthy"
    );
    // A check that hangs past its timeout is a failure too.
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();

    let mut hung = h.sh("main", "sleep 1000");
    hung.stop_timeout = Some(Duration::from_millis(200));
    hung.health_check = Some(HealthCheck {
        timeout: Duration::from_millis(300),
        ..check("sleep 100", 200, 1)
    });
    let spec = h.task("hung", hung);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = until(&h, &spec.task_id, Duration::from_secs(20), |s| {
        s.containers[0]
            .health
            .as_ref()
            .is_some_and(|h| h.status == HealthStatus::Unhealthy)
    })
    .await;
    assert_eq!(
        status.containers[0].health.as_ref().unwrap().last_exit_code,
        None,
        "timed out"
    );
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(
        common::leftovers(&spec.task_id, &h.state_dir()).is_empty(),
        "no check process left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_that_misses_its_start_timeout_fails_its_dependent() {
    let Some(()) = require_root("a_dependency_that_misses_its_start_timeout_fails_its_dependent")
    else {
        return;
    };
    let h = Harness::new();
    let mut init = h.sh("init", "sleep 1000");
    init.essential = false;
    init.start_timeout = Some(Duration::from_secs(1));
    init.stop_timeout = Some(Duration::from_millis(200));
    let mut app = h.sh("app", "true");
    depends(&mut app, "init", Condition::Complete);
    let spec = TaskSpec::new(unique_id("timeout"), vec![init, app]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = until(&h, &spec.task_id, Duration::from_secs(10), |s| {
        !s.any_waiting()
    })
    .await;
    let reason = not_started_reason(&status, "app");
    assert!(reason.contains("startTimeout of 1 s"), "{reason}");
    assert!(status.is_finished());
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_dependents_first_and_starts_no_waiting_container() {
    let Some(()) = require_root("stop_ends_dependents_first_and_starts_no_waiting_container")
    else {
        return;
    };
    let h = Harness::new();
    let shared = tempfile::tempdir().unwrap();
    // Each writes its name when told to stop, after a moment, then exits.
    let on_term = |name: &str| {
        format!(
            "trap 'sleep 0.3; echo {name} >> /shared/stopped; exit 0' TERM; while :; do sleep 0.05; done"
        )
    };
    let mut sidecar = h.sh("sidecar", &on_term("sidecar"));
    share(&mut sidecar, shared.path());
    let mut app = h.sh("app", &on_term("app"));
    depends(&mut app, "sidecar", Condition::Start);
    share(&mut app, shared.path());
    let mut never = h.sh("late", "true");
    never.essential = false;
    depends(&mut never, "app", Condition::Complete);
    let spec = TaskSpec::new(unique_id("order"), vec![sidecar, app, never]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    until(&h, &spec.task_id, Duration::from_secs(10), |s| {
        matches!(s.container("app"), Some(ContainerState::Running { .. }))
    })
    .await;
    let status = h.runtime.stop(&spec.task_id).await.unwrap();
    let stopped = std::fs::read_to_string(shared.path().join("stopped")).unwrap();
    assert_eq!(
        stopped, "app\nsidecar\n",
        "dependents stop before what they depend on"
    );
    for name in ["sidecar", "app"] {
        match status.container(name) {
            Some(ContainerState::Exited(e)) => {
                assert_eq!(e.exit_code, 0, "{name} exited on SIGTERM")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let reason = not_started_reason(&status, "late");
    assert!(
        reason.contains("stopped before the container started"),
        "{reason}"
    );
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
}
