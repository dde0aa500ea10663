//! The sandbox runtime against the real kernel and OCI runtime. Needs root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use berth_runtime_api::{ContainerState, OOM_REASON, TaskRuntime};
use common::{Harness, require_root};

fn exited(state: Option<&ContainerState>) -> &berth_runtime_api::ContainerExit {
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
    let spec = berth_runtime_api::TaskSpec::new(common::unique_id("stop"), vec![sleeper, trapper]);
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
    let Some(()) = common::require_init("init_process_forwards_sigterm") else {
        return;
    };
    let h = Harness::new();
    let mut c = h.sh("main", "unused");
    c.command = Some(vec!["sleep".into(), "1000".into()]);
    c.init_process_enabled = true;
    c.stop_timeout = Some(Duration::from_secs(20));
    let spec = h.task("init", c);
    let _guard = h.guard(&spec.task_id);
    let status = h.runtime.start(&spec).await.unwrap();
    let Some(ContainerState::Running { pid }) = status.container("main") else {
        panic!("{status:?}")
    };
    // A SIGTERM before the init has set up its handlers would be dropped
    // (PID 1 of a namespace): wait until it has started its child.
    let children = format!("/proc/{pid}/task/{pid}/children");
    let t = Instant::now();
    while std::fs::read_to_string(&children)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the init never started its child"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
            "cat /proc/self/status; echo kcore=$(head -c 1 /proc/kcore | wc -c); \
             touch /proc/sysrq-trigger 2>/dev/null && echo sysrq=rw || echo sysrq=ro",
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
    assert_eq!(field("kcore="), "0", "/proc/kcore is masked");
    assert_eq!(field("sysrq="), "ro", "/proc/sysrq-trigger is read-only");
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
    let spec = berth_runtime_api::TaskSpec::new(common::unique_id("ro"), vec![rw, user, named, ro]);
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
    let spec = berth_runtime_api::TaskSpec::new(common::unique_id("fail"), vec![ok, bad]);
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
    let Some(()) = common::require_init("twenty_cycles_leak_nothing") else {
        return;
    };
    let h = Harness::new();
    for _ in 0..20 {
        let mut c = h.sh("main", "unused");
        c.command = Some(vec!["sleep".into(), "1000".into()]);
        c.init_process_enabled = true;
        // SIGTERM right after start can come before the init handles it.
        c.stop_timeout = Some(Duration::from_secs(1));
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

const AGENT_ENV: &str = "BERTH_RUNTIME_TEST_AGENT";

/// Not a test by itself: the fake agent `agent_killed_...` runs in a child
/// process and SIGKILLs. Does nothing unless that test set its variable.
#[tokio::test(flavor = "multi_thread")]
async fn agent_child() {
    let Ok(args) = std::env::var(AGENT_ENV) else {
        return;
    };
    let mut args = args.lines();
    let (dir, layer, task) = (
        args.next().unwrap(),
        args.next().unwrap(),
        args.next().unwrap(),
    );
    let runtime =
        berth_runtime::SandboxRuntime::new(Harness::config(std::path::Path::new(dir))).unwrap();
    let mut c = berth_runtime_api::ContainerSpec::new("main", vec![layer.into()], common::image());
    c.command = Some(vec!["sh".into(), "-c".into(), "sleep 2; exit 7".into()]);
    let spec = berth_runtime_api::TaskSpec::new(berth_runtime_api::TaskId::new(task).unwrap(), vec![c]);
    runtime.start(&spec).await.unwrap();
    println!("\nBERTH-AGENT-STARTED");
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_killed_task_runs_on_and_its_exit_is_recorded() {
    use std::io::BufRead;
    let Some(()) = require_root("agent_killed_task_runs_on_and_its_exit_is_recorded") else {
        return;
    };
    let h = Harness::new();
    let task = common::unique_id("killed");
    let _guard = h.guard(&task);
    let mut agent = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["agent_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            AGENT_ENV,
            format!(
                "{}\n{}\n{}",
                h.dir.path().display(),
                h.layer.display(),
                task
            ),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = agent.stdout.take().unwrap();
    let started = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("BERTH-AGENT-STARTED"));
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    assert!(started, "the fake agent did not start its task");

    let runtime = h.restart();
    let status = runtime.recover(&task).await.unwrap();
    assert!(
        matches!(
            status.container("main"),
            Some(ContainerState::Running { .. })
        ),
        "{status:?}"
    );
    drop(runtime);
    // The container exits (after 2 s) while no runtime exists.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runtime = h.restart();
    let status = runtime.recover(&task).await.unwrap();
    assert!(status.is_finished());
    assert_eq!(exited(status.container("main")).exit_code, 7);
    runtime.stop(&task).await.unwrap();
    runtime.remove(&task).await.unwrap();
    assert_eq!(
        common::leftovers(&task, &h.state_dir()),
        Vec::<String>::new()
    );
}

/// A network namespace made with `ip netns`, deleted on drop.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_join_the_tasks_network_namespace() {
    let Some(()) = require_root("containers_join_the_tasks_network_namespace") else {
        return;
    };
    let name = format!("berth-rt-{}", std::process::id());
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .is_ok_and(|s| s.success());
    let netns = NetNs(name);
    if !ok {
        eprintln!(
            "SKIPPED: containers_join_the_tasks_network_namespace: `ip netns add` failed (iproute2 needed)"
        );
        return;
    }
    let path = std::path::Path::new("/run/netns").join(&netns.0);
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let h = Harness::new();
    let mut a = h.sh("a", "readlink /proc/self/ns/net");
    a.essential = false;
    let b = h.sh("b", "sleep 0.3; readlink /proc/self/ns/net");
    let mut spec = berth_runtime_api::TaskSpec::new(common::unique_id("netns"), vec![a, b]);
    spec.netns = Some(path);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    h.runtime.wait(&spec.task_id).await.unwrap();
    let expected = format!("net:[{inode}]\n");
    assert_eq!(h.stdout(&spec.task_id, "a"), expected);
    assert_eq!(h.stdout(&spec.task_id, "b"), expected);

    let own = h.task("netns", h.sh("c", "readlink /proc/self/ns/net"));
    let _guard = h.guard(&own.task_id);
    h.runtime.start(&own).await.unwrap();
    h.runtime.wait(&own.task_id).await.unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let seen = h.stdout(&own.task_id, "c");
    assert!(
        seen.starts_with("net:[") && seen.trim() != host.to_string_lossy() && seen != expected,
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pids_limit_holds() {
    let Some(()) = require_root("pids_limit_holds") else {
        return;
    };
    let h = Harness::new();
    let mut spec = h.task(
        "pids",
        h.sh("main", "for i in $(seq 30); do sleep 5 & done; echo done"),
    );
    spec.pids_limit = Some(10);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    h.runtime.wait(&spec.task_id).await.unwrap();
    let stderr = h.stderr(&spec.task_id, "main");
    assert!(stderr.contains("can't fork"), "{stderr}");
}

/// Prints the start latency of a busybox `true` task through the runtime
/// (start until the exit is recorded) beside a bare `runc run`.
#[tokio::test(flavor = "multi_thread")]
async fn start_latency_against_bare_runc() {
    let Some(()) = require_root("start_latency_against_bare_runc") else {
        return;
    };
    let h = Harness::new();
    const RUNS: usize = 10;
    let (mut ours, mut starts) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let mut c = h.sh("main", "unused");
        c.command = Some(vec!["true".into()]);
        let spec = h.task("latency", c);
        let _guard = h.guard(&spec.task_id);
        let t = Instant::now();
        h.runtime.start(&spec).await.unwrap();
        starts.push(t.elapsed());
        let status = h.runtime.wait(&spec.task_id).await.unwrap();
        ours.push(t.elapsed());
        assert_eq!(exited(status.container("main")).exit_code, 0);
        h.runtime.stop(&spec.task_id).await.unwrap();
        h.runtime.remove(&spec.task_id).await.unwrap();
    }
    // The same container for bare runc: runc's own default config, `true`.
    let bundle = h.dir.path().join("bare");
    std::fs::create_dir(&bundle).unwrap();
    std::os::unix::fs::symlink(&h.layer, bundle.join("rootfs")).unwrap();
    let runc = h.runtime.probe().oci_runtime.clone();
    assert!(
        std::process::Command::new(&runc)
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .unwrap()
            .success()
    );
    let config = bundle.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json["process"]["terminal"] = false.into();
    json["process"]["args"] = serde_json::json!(["true"]);
    json["root"]["path"] = h.layer.display().to_string().into();
    std::fs::write(&config, serde_json::to_vec(&json).unwrap()).unwrap();
    let root = h.dir.path().join("bare-root");
    let mut bare = Vec::new();
    for i in 0..RUNS {
        let t = Instant::now();
        let ok = std::process::Command::new(&runc)
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("bare-{}-{i}", std::process::id()))
            .status()
            .unwrap()
            .success();
        bare.push(t.elapsed());
        assert!(ok);
    }
    ours.sort();
    starts.sort();
    bare.sort();
    eprintln!(
        "start latency of busybox `true` (median of {RUNS}): berth-runtime start {:?}, start+wait {:?}, bare `{} run` {:?}",
        starts[RUNS / 2],
        ours[RUNS / 2],
        runc.display(),
        bare[RUNS / 2]
    );
    assert!(ours[RUNS / 2] < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_shim_still_lets_the_task_be_stopped_and_released() {
    let Some(()) = require_root("a_dead_shim_still_lets_the_task_be_stopped_and_released") else {
        return;
    };
    let h = Harness::new();
    let mut c = h.sh("main", "unused");
    c.command = Some(vec!["sleep".into(), "1000".into()]);
    c.stop_timeout = Some(Duration::from_secs(1));
    let spec = h.task("noshim", c);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let pid_file = h
        .state_dir()
        .join("tasks")
        .join(spec.task_id.as_str())
        .join("shim.pid");
    let shim_pid = std::fs::read_to_string(pid_file).unwrap();
    let shim_pid: i32 = shim_pid.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = h.runtime.status(&spec.task_id).await.unwrap();
    assert!(
        matches!(
            status.container("main"),
            Some(ContainerState::Running { .. })
        ),
        "unsupervised but running: {status:?}"
    );
    // Nobody records its exit: wait kills it and reports the task ended.
    let status = tokio::time::timeout(Duration::from_secs(15), h.runtime.wait(&spec.task_id)).await.unwrap().unwrap();
    assert_eq!(status.container("main"), Some(&ContainerState::Lost), "{status:?}");
    let status = h.runtime.stop(&spec.task_id).await.unwrap();
    assert_eq!(
        status.container("main"),
        Some(&ContainerState::Lost),
        "nobody saw how it ended"
    );
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert_eq!(
        common::leftovers(&spec.task_id, &h.state_dir()),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn task_and_container_limits_reach_the_cgroups() {
    let Some(()) = require_root("task_and_container_limits_reach_the_cgroups") else {
        return;
    };
    let h = Harness::new();
    let mut c = h.sh("main", "sleep 1000");
    c.memory_mib = Some(32);
    c.memory_reservation_mib = Some(16);
    c.cpu = Some(128);
    let mut spec = h.task("limits", c);
    spec.cpu = Some(512);
    spec.memory_mib = Some(128);
    spec.pids_limit = Some(50);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let t = spec.task_id.as_str();
    let read = |p: String| {
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .to_string()
    };
    match h.runtime.probe().cgroups {
        berth_runtime::CgroupVersion::V1 => {
            let g =
                |ctrl: &str, rest: &str| read(format!("/sys/fs/cgroup/{ctrl}/berth/{t}/{rest}"));
            assert_eq!(g("cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(g("cpu", "cpu.cfs_period_us"), "100000");
            assert_eq!(
                g("memory", "memory.limit_in_bytes"),
                (128u64 << 20).to_string()
            );
            if std::path::Path::new(&format!(
                "/sys/fs/cgroup/memory/berth/{t}/memory.memsw.limit_in_bytes"
            ))
            .exists()
            {
                assert_eq!(
                    g("memory", "memory.memsw.limit_in_bytes"),
                    (128u64 << 20).to_string()
                );
            }
            assert_eq!(g("pids", "pids.max"), "50");
            assert_eq!(
                g("memory", "main/memory.limit_in_bytes"),
                (32u64 << 20).to_string()
            );
            assert_eq!(
                g("memory", "main/memory.soft_limit_in_bytes"),
                (16u64 << 20).to_string()
            );
            assert_eq!(g("cpu", "main/cpu.shares"), "128");
        }
        berth_runtime::CgroupVersion::V2 => {
            let g = |rest: &str| read(format!("/sys/fs/cgroup/berth/{t}/{rest}"));
            assert_eq!(g("cpu.max"), "50000 100000");
            assert_eq!(g("memory.max"), (128u64 << 20).to_string());
            assert_eq!(g("pids.max"), "50");
            assert_eq!(g("main/memory.max"), (32u64 << 20).to_string());
            assert_eq!(g("main/memory.low"), (16u64 << 20).to_string());
        }
    }
    let stats = h.runtime.stats(&spec.task_id).await.unwrap();
    assert!(stats.task.memory_bytes > 0);
    assert_eq!(stats.containers.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_capabilities_drop_all_and_add_sys_ptrace() {
    let Some(()) = require_root("fargate_capabilities_drop_all_and_add_sys_ptrace") else {
        return;
    };
    let h = Harness::new();
    let mut only_ptrace = h.sh("ptrace", "grep -E '^Cap(Eff|Bnd):' /proc/self/status");
    only_ptrace.cap_drop = vec!["ALL".into()];
    only_ptrace.cap_add = vec!["SYS_PTRACE".into()];
    only_ptrace.essential = false;
    let mut less = h.sh("less", "grep -E '^CapEff:' /proc/self/status");
    less.cap_drop = vec!["NET_RAW".into(), "CHOWN".into()];
    // One after the other: the task ends when `less` does, `ptrace` ended before.
    less.depends_on = vec![berth_runtime_api::Dependency {
        container: "ptrace".into(),
        condition: berth_runtime_api::Condition::Complete,
    }];
    let spec = berth_runtime_api::TaskSpec::new(common::unique_id("caps"), vec![only_ptrace, less]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    for c in ["ptrace", "less"] {
        assert_eq!(exited(status.container(c)).exit_code, 0, "{c}: {}", h.stderr(&spec.task_id, c));
    }
    // CAP_SYS_PTRACE is bit 19, and nothing else.
    assert_eq!(h.stdout(&spec.task_id, "ptrace"), "CapEff:\t0000000000080000\nCapBnd:\t0000000000080000\n");
    // Docker's default set (a80425fb) without NET_RAW (bit 13) and CHOWN (bit 0).
    assert_eq!(h.stdout(&spec.task_id, "less"), format!("CapEff:\t{:016x}\n", 0xa804_25fb_u64 & !(1 << 13) & !1));
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_nofile_maximum_starts_the_container() {
    let Some(()) = require_root("fargate_nofile_maximum_starts_the_container") else {
        return;
    };
    let h = Harness::new();
    let mut c = h.sh("main", "ulimit -Sn; ulimit -Hn");
    c.ulimits = vec![berth_runtime_api::Ulimit { name: "nofile".into(), soft_limit: 1_048_576, hard_limit: 1_048_576 }];
    let spec = h.task("nofile", c);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    assert_eq!(exited(status.container("main")).exit_code, 0, "{}", h.stderr(&spec.task_id, "main"));
    // All of it where the host may raise limits; else the host's own hard
    // limit (a nested host without CAP_SYS_RESOURCE), never a failed start.
    let caps = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = caps.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim();
    let can_raise = u64::from_str_radix(eff, 16).unwrap() & (1 << 24) != 0;
    let (_, own) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let want = if can_raise { 1_048_576 } else { own.min(1_048_576) };
    assert_eq!(h.stdout(&spec.task_id, "main"), format!("{want}\n{want}\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_volume_is_shared_between_its_containers_and_goes_with_the_task() {
    let Some(()) = require_root("a_task_volume_is_shared_between_its_containers_and_goes_with_the_task") else {
        return;
    };
    let h = Harness::new();
    let mount = |path: &str, read_only: bool| berth_runtime_api::VolumeMount {
        volume: "scratch".into(),
        container_path: path.into(),
        read_only,
    };
    let mut writer = h.sh("writer", "echo shared-data > /out/file; sync");
    writer.essential = false;
    writer.volume_mounts = vec![mount("/out", false)];
    let mut reader = h.sh("reader", "cat /in/file; echo x > /in/other 2>/dev/null && echo rw || echo ro");
    reader.volume_mounts = vec![mount("/in", true)];
    reader.depends_on = vec![berth_runtime_api::Dependency {
        container: "writer".into(),
        condition: berth_runtime_api::Condition::Success,
    }];
    let spec = berth_runtime_api::TaskSpec::new(common::unique_id("vol"), vec![writer, reader]);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let status = h.runtime.wait(&spec.task_id).await.unwrap();
    assert_eq!(exited(status.container("reader")).exit_code, 0, "{}", h.stderr(&spec.task_id, "reader"));
    assert_eq!(h.stdout(&spec.task_id, "reader"), "shared-data\nro\n");
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn output_files_are_capped_while_the_container_writes() {
    let Some(()) = require_root("output_files_are_capped_while_the_container_writes") else {
        return;
    };
    const CAP: u64 = 4 << 20;
    const CHUNK: u64 = 4 << 20;
    let mut h = Harness::new();
    h.runtime = berth_runtime::SandboxRuntime::new(berth_runtime::RuntimeConfig {
        log_file_max_bytes: CAP,
        ..common::Harness::config(h.dir.path())
    })
    .unwrap();
    // 120 MiB in 4 MiB chunks, 0.2 s apart: far more than the cap.
    let script = format!(
        "i=0; while [ $i -lt 30 ]; do yes 0123456789abcdef | head -c {CHUNK}; sleep 0.2; i=$((i+1)); done; \
         echo after the rotations"
    );
    let spec = h.task("cap", h.sh("main", &script));
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let paths = berth_runtime_api::TaskRuntime::logs(&h.runtime, &spec.task_id, "main");
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let copy = berth_runtime::logcap::rotated(&paths.stdout);
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.runtime.status(&spec.task_id).await.unwrap().container("main").is_some_and(|c| !c.is_done()) {
        assert!(Instant::now() < deadline, "the writer never finished");
        largest = largest.max(size(&paths.stdout)).max(size(&copy));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A check every second: the file passes the cap by at most what one
    // second writes (5 chunks here) and the chunk being written.
    let slack = 6 * CHUNK;
    assert!(largest <= CAP + slack, "a file reached {largest} bytes (cap {CAP})");
    assert!(size(&copy) > 0, "the file was rotated");
    assert!(size(&paths.stdout) <= CAP, "left under the cap: {}", size(&paths.stdout));
    assert!(
        std::fs::read_to_string(&paths.stdout).unwrap().ends_with("after the rotations\n")
            || std::fs::read_to_string(&copy).unwrap().ends_with("after the rotations\n"),
        "the last line is kept"
    );
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
}
