//! The sandbox runtime against the real kernel and OCI runtime. Needs root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use berth_runtime::{ContainerState, OOM_REASON, TaskRuntime};
use common::{Harness, require_root};

fn exited(state: Option<&ContainerState>) -> &berth_runtime::ContainerExit {
    match state {
        Some(ContainerState::Exited(e)) => e,
        other => panic!("expected an exit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_and_stdout_are_captured() {
    let Some(()) = require_root("exit_code_and_stdout_are_captured") else {
        return;
    };
    let h = Harness::new();
    let spec = h.task("exit", h.sh("main", "echo hi; echo oops >&2; exit 3"));
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    let exit = exited(status.container("main"));
    assert_eq!(
        (exit.exit_code, exit.signal, exit.oom_killed),
        (3, None, false)
    );
    assert_eq!(h.stdout(&spec.task_id, "main"), "hi\n");
    assert_eq!(h.stderr(&spec.task_id, "main"), "oops\n");
    let stopped = h.runtime.stop(&spec.task_id).await.unwrap();
    assert_eq!(stopped, status);
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_is_held_to_the_quota() {
    let Some(()) = require_root("cpu_is_held_to_the_quota") else {
        return;
    };
    let h = Harness::new();
    let mut spec = h.task("cpu", h.sh("spin", "while :; do :; done"));
    spec.cpu = Some(256);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (t0, u0) = (
        Instant::now(),
        h.runtime.stats(&spec.task_id).await.unwrap().task.cpu_ns,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (t1, u1) = (
        Instant::now(),
        h.runtime.stats(&spec.task_id).await.unwrap().task.cpu_ns,
    );
    let cores = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    eprintln!("256 CPU units used {cores:.3} cores");
    assert!(
        (0.15..=0.35).contains(&cores),
        "256 units should be about a quarter core, got {cores:.3}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_oom_kills_and_says_so() {
    let Some(()) = require_root("memory_limit_oom_kills_and_says_so") else {
        return;
    };
    let h = Harness::new();
    // Doubling a shell variable: 200+ MiB of real heap within a second.
    let mut spec = h.task(
        "oom",
        h.sh("hog", "x=0123456789abcdef; while :; do x=$x$x; done"),
    );
    spec.memory_mib = Some(64);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let peak_seen = h
        .runtime
        .stats(&spec.task_id)
        .await
        .map(|s| s.task.memory_peak_bytes);
    let status = tokio::time::timeout(Duration::from_secs(30), h.runtime.wait(&spec.task_id))
        .await
        .unwrap()
        .unwrap();
    let exit = exited(status.container("hog"));
    assert!(exit.oom_killed, "expected an OOM kill, got {exit:?}");
    assert_eq!(exit.reason(), Some(OOM_REASON));
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    let stats = h.runtime.stats(&spec.task_id).await.unwrap();
    eprintln!(
        "peak memory {:?} (early {peak_seen:?})",
        stats.task.memory_peak_bytes
    );
    assert!(stats.task.memory_peak_bytes.unwrap_or(0) <= 64 << 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_kills_after_the_stop_timeout() {
    let Some(()) = require_root("stop_kills_after_the_stop_timeout") else {
        return;
    };
    let h = Harness::new();
    // PID 1 without a TERM handler (sleep) and one that traps TERM and goes on.
    let mut sleeper = h.sh("sleeper", "unused");
    sleeper.command = Some(vec!["sleep".into(), "1000".into()]);
    sleeper.stop_timeout = Some(Duration::from_secs(2));
    let mut trapper = h.sh(
        "trapper",
        "trap 'echo got TERM' TERM; echo ready; while :; do sleep 1; done",
    );
    trapper.stop_timeout = Some(Duration::from_secs(2));
    let spec = berth_runtime::TaskSpec::new(common::unique_id("stop"), vec![sleeper, trapper]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let started = h.runtime.status(&spec.task_id).await.unwrap();
    assert!(
        matches!(started.container("sleeper"), Some(ContainerState::Running { pid }) if *pid > 0)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let status = h.runtime.stop(&spec.task_id).await.unwrap();
    let took = t.elapsed();
    eprintln!("stop took {took:?}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "stop took {took:?}"
    );
    for name in ["sleeper", "trapper"] {
        let exit = exited(status.container(name));
        assert_eq!((exit.exit_code, exit.signal), (137, Some(9)), "{name}");
    }
    assert!(
        h.stdout(&spec.task_id, "trapper").contains("got TERM"),
        "the trap saw SIGTERM first"
    );
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn init_process_forwards_sigterm() {
    let Some(()) = require_root("init_process_forwards_sigterm") else {
        return;
    };
    let h = Harness::new();
    let mut c = h.sh("main", "unused");
    c.command = Some(vec!["sleep".into(), "1000".into()]);
    c.init_process_enabled = true;
    let spec = h.task("init", c);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let status = h.runtime.stop(&spec.task_id).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the init passed SIGTERM on: {:?}",
        t.elapsed()
    );
    let exit = exited(status.container("main"));
    assert_eq!(
        exit.exit_code, 143,
        "sleep died of SIGTERM (128+15), reported by the init"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_dockers_default_capabilities_and_seccomp() {
    let Some(()) = require_root("only_dockers_default_capabilities_and_seccomp") else {
        return;
    };
    let h = Harness::new();
    let spec = h.task(
        "caps",
        h.sh(
            "main",
            "cat /proc/self/status; cat /proc/kcore | head -c 1 | wc -c",
        ),
    );
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    assert_eq!(
        exited(status.container("main")).exit_code,
        0,
        "{}",
        h.stderr(&spec.task_id, "main")
    );
    let out = h.stdout(&spec.task_id, "main");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert_eq!(field("CapEff:"), "00000000a80425fb");
    assert_eq!(field("CapBnd:"), "00000000a80425fb");
    assert_eq!(field("CapInh:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    assert!(
        out.trim_end().ends_with('0'),
        "/proc/kcore is masked (reads nothing)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readonly_root_and_user() {
    let Some(()) = require_root("readonly_root_and_user") else {
        return;
    };
    let h = Harness::new();
    let mut ro = h.sh("ro", "touch /f && echo wrote");
    ro.readonly_root_filesystem = true;
    let mut rw = h.sh("rw", "touch /f && echo wrote");
    rw.essential = false;
    let mut user = h.sh("user", "id -u; id -g");
    user.user = Some("1000:1000".into());
    user.essential = false;
    let mut named = h.sh("named", "id -u; id -g");
    named.user = Some("app".into());
    named.essential = false;
    let spec = berth_runtime::TaskSpec::new(common::unique_id("ro"), vec![rw, user, named, ro]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    assert_ne!(exited(status.container("ro")).exit_code, 0);
    assert!(
        h.stderr(&spec.task_id, "ro")
            .contains("Read-only file system"),
        "{}",
        h.stderr(&spec.task_id, "ro")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = h.runtime.stop(&spec.task_id).await.unwrap();
    assert_eq!(exited(status.container("rw")).exit_code, 0);
    assert_eq!(h.stdout(&spec.task_id, "rw"), "wrote\n");
    assert_eq!(h.stdout(&spec.task_id, "user"), "1000\n1000\n");
    assert_eq!(h.stdout(&spec.task_id, "named"), "1000\n1000\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_after_the_runtime_is_dropped() {
    let Some(()) = require_root("recover_after_the_runtime_is_dropped") else {
        return;
    };
    let h = Harness::new();
    let spec = h.task("recover", h.sh("main", "sleep 3"));
    let _guard = h.guard(&spec.task_id);
    {
        let first = h.restart();
        first.start(&spec).await.unwrap();
    } // the agent is gone; the task is not
    let second = h.restart();
    assert_eq!(second.list().await.unwrap(), vec![spec.task_id.clone()]);
    let status = second.recover(&spec.task_id).await.unwrap();
    assert!(
        matches!(
            status.container("main"),
            Some(ContainerState::Running { .. })
        ),
        "{status:?}"
    );
    let status = second.wait(&spec.task_id).await.unwrap();
    assert_eq!(exited(status.container("main")).exit_code, 0);
}

#[test]
fn a_failed_start_leaves_nothing() {
    let Some(()) = require_root("a_failed_start_leaves_nothing") else {
        return;
    };
    let h = Harness::new();
    let mut ok = h.sh("ok", "sleep 1000");
    ok.essential = false;
    let mut bad = h.sh("bad", "unused");
    bad.command = Some(vec!["/no/such/binary".into()]);
    let spec = berth_runtime::TaskSpec::new(common::unique_id("fail"), vec![ok, bad]);
    let _guard = h.guard(&spec.task_id);
    let err = h.runtime.start_blocking(&spec).unwrap_err();
    eprintln!("start failed as expected: {err}");
    assert!(err.to_string().contains("bad"), "{err}");
    assert_eq!(
        common::leftovers(&spec.task_id, &h.state_dir()),
        Vec::<String>::new()
    );
    assert!(
        !h.state_dir()
            .join("tasks")
            .join(spec.task_id.as_str())
            .exists()
    );
    let mut user = h.sh("u", "true");
    user.user = Some("nobody".into());
    let spec = h.task("fail", user);
    let err = h.runtime.start_blocking(&spec).unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
    assert_eq!(
        common::leftovers(&spec.task_id, &h.state_dir()),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_cycles_leak_nothing() {
    let Some(()) = require_root("twenty_cycles_leak_nothing") else {
        return;
    };
    let h = Harness::new();
    for _ in 0..20 {
        let mut c = h.sh("main", "unused");
        c.command = Some(vec!["sleep".into(), "1000".into()]);
        c.init_process_enabled = true;
        let mut spec = h.task("cycle", c);
        spec.cpu = Some(512);
        spec.memory_mib = Some(128);
        let _guard = h.guard(&spec.task_id);
        h.runtime.start(&spec).await.unwrap();
        let status = h.runtime.stop(&spec.task_id).await.unwrap();
        assert!(status.all_done());
        h.runtime.remove(&spec.task_id).await.unwrap();
        assert_eq!(
            common::leftovers(&spec.task_id, &h.state_dir()),
            Vec::<String>::new()
        );
        assert!(
            !h.state_dir()
                .join("tasks")
                .join(spec.task_id.as_str())
                .exists()
        );
    }
    assert!(h.runtime.list().await.unwrap().is_empty());
}
