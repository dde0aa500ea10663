//! The micro-VM runtime against real QEMU guests (TCG on hosts without a
//! KVM that runs them). Each boot costs seconds under TCG, so the set is
//! small: every test runs several things in one or two guests.
//!
//! Needs root, qemu-system-x86_64, e2fsprogs, /bin/busybox, the guest
//! kernel (`scripts/microvm-kernel.sh`, dir in `BERTH_GUEST_KERNEL` or the
//! default) and the guest agent (`BERTH_GUEST_INIT`, else
//! target/debug/berth-guest). Where one is missing
//! the test is skipped with a loud message.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_microvm::{AccelChoice, MicroVmConfig, MicroVmRuntime};
use berth_runtime_api::{ContainerExit, ContainerSpec, ContainerState, ImageConfig, OOM_REASON, TaskId, TaskRuntime, TaskSpec};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn guest_init() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BERTH_GUEST_INIT") {
        return Some(PathBuf::from(p));
    }
    // The workspace build's (`cargo build --workspace --bins`), never a
    // static build that may be older than the code under test; the
    // runtime puts its shared libraries into the initramfs.
    Some(workspace().join("target/debug/berth-guest")).filter(|p| p.is_file())
}

fn kernel_dir() -> PathBuf {
    std::env::var("BERTH_GUEST_KERNEL").map_or_else(|_| MicroVmConfig::default().kernel_dir, PathBuf::from)
}

/// None (after a loud message) when this host cannot run the tests.
fn require(test: &str) -> Option<PathBuf> {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root".to_owned())
    } else if !Path::new("/bin/busybox").is_file() {
        Some("/bin/busybox (Debian package busybox-static)".to_owned())
    } else if std::process::Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        Some("qemu-system-x86_64 (Debian package qemu-system-x86)".to_owned())
    } else if !kernel_dir().join("vmlinux").is_file() {
        Some(format!("a guest kernel in {} (scripts/microvm-kernel.sh)", kernel_dir().display()))
    } else {
        None
    };
    if let Some(m) = missing {
        eprintln!("SKIPPED: {test}: needs {m}");
        return None;
    }
    let Some(init) = guest_init() else {
        eprintln!("SKIPPED: {test}: needs the guest agent (cargo build -p berth-guest)");
        return None;
    };
    Some(init)
}

struct Harness {
    dir: tempfile::TempDir,
    layer: PathBuf,
    runtime: MicroVmRuntime,
    init: PathBuf,
}

impl Harness {
    fn new(init: PathBuf) -> Self {
        let dir = tempfile::Builder::new().prefix("berth-microvm-test").tempdir().unwrap();
        let layer = dir.path().join("layer");
        busybox_rootfs(&layer);
        let runtime = MicroVmRuntime::new(Self::config(dir.path(), &init)).unwrap();
        Self { dir, layer, runtime, init }
    }

    fn config(dir: &Path, init: &Path) -> MicroVmConfig {
        MicroVmConfig {
            kernel_dir: kernel_dir(),
            guest_init: Some(init.to_path_buf()),
            shim: Some(PathBuf::from(env!("CARGO_BIN_EXE_berth-vm-shim"))),
            // The probe boot is the agent's; here the guests run as the
            // host allows without it.
            accel: if Path::new("/dev/kvm").exists() { AccelChoice::Auto } else { AccelChoice::Tcg },
            ..MicroVmConfig::in_dir(&dir.join("state"))
        }
    }

    /// Another runtime over the same state (an agent restart).
    fn restart(&self) -> MicroVmRuntime {
        MicroVmRuntime::new(Self::config(self.dir.path(), &self.init)).unwrap()
    }

    fn sh(&self, name: &str, script: &str) -> ContainerSpec {
        let image = ImageConfig { env: vec!["PATH=/bin".into()], cmd: Some(vec!["sh".into()]), ..ImageConfig::default() };
        let mut c = ContainerSpec::new(name, vec![self.layer.clone()], image);
        c.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
        c
    }

    fn task(&self, prefix: &str, containers: Vec<ContainerSpec>) -> TaskSpec {
        let mut t = TaskSpec::new(unique_id(prefix), containers);
        t.memory_mib = Some(256);
        t
    }

    fn stdout(&self, task: &TaskId, container: &str) -> String {
        std::fs::read_to_string(self.runtime.logs(task, container).stdout).unwrap_or_default()
    }

    fn guard(&self, task: &TaskId) -> Guard {
        Guard { runtime: self.runtime.clone(), task: task.clone() }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// Stops (the guest, or its VMM) and removes a task on drop.
struct Guard {
    runtime: MicroVmRuntime,
    task: TaskId,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.runtime.stop_blocking(&self.task);
        let rt = self.runtime.clone();
        let task = self.task.clone();
        let _ = std::thread::spawn(move || {
            let r = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            r.block_on(rt.remove(&task))
        })
        .join();
    }
}

fn unique_id(prefix: &str) -> TaskId {
    static N: AtomicUsize = AtomicUsize::new(0);
    TaskId::new(format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))).unwrap()
}

fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "sleep", "cat", "uname", "seq", "true", "false", "id", "yes", "head", "hostname", "ip"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
}

fn exited(s: Option<&ContainerState>) -> ContainerExit {
    match s {
        Some(ContainerState::Exited(e)) => e.clone(),
        other => panic!("expected an exit, got {other:?}"),
    }
}

async fn wait(h: &Harness, task: &TaskId, within: Duration) -> berth_runtime_api::TaskReport {
    tokio::time::timeout(within, h.runtime.wait(task)).await.expect("the task did not finish in time").unwrap()
}

/// What a task leaves on the host: its cgroup, its VMM, its directory.
fn leftovers(task: &TaskId, state: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = hierarchy.path().join("berth").join(task.as_str());
        if dir.exists() {
            found.push(format!("cgroup: {}", dir.display()));
        }
    }
    if Path::new("/sys/fs/cgroup/berth").join(task.as_str()).exists() {
        found.push("cgroup: /sys/fs/cgroup/berth/TASK".into());
    }
    let task_dir = state.join("tasks").join(task.as_str());
    if task_dir.exists() {
        found.push(format!("task dir: {}", task_dir.display()));
    }
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(proc.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains(task_dir.to_str().unwrap()) {
            found.push(format!("process {}: {}", proc.file_name().to_string_lossy(), cmdline.replace('\0', " ")));
        }
    }
    found
}

/// The guest has its own kernel: `uname -r` is the guest kernel's and not
/// the host's, and two tasks have two boot ids. Exit codes come back; the
/// containers of one task share the guest (one boot id, localhost).
#[tokio::test(flavor = "multi_thread")]
async fn each_task_has_its_own_kernel_and_its_exit_code() {
    let Some(init) = require("each_task_has_its_own_kernel_and_its_exit_code") else { return };
    let h = Harness::new(init);
    let release = std::fs::read_to_string(kernel_dir().join("release")).unwrap().trim().to_owned();
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim().to_owned();
    let a = h.task(
        "kern",
        vec![
            h.sh("main", "uname -r; cat /proc/sys/kernel/random/boot_id; echo oops >&2; exit 3"),
            {
                let mut side = h.sh("side", "cat /proc/sys/kernel/random/boot_id; echo $$");
                side.essential = false;
                side
            },
        ],
    );
    let b = h.task("kern", vec![h.sh("main", "cat /proc/sys/kernel/random/boot_id")]);
    let (_ga, _gb) = (h.guard(&a.task_id), h.guard(&b.task_id));
    let t0 = Instant::now();
    let (ra, rb) = tokio::join!(h.runtime.start(&a), h.runtime.start(&b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    eprintln!("two micro-VM tasks started together in {:?} ({})", t0.elapsed(), h.runtime.accel().as_str());
    assert!(!ra.any_waiting() && !rb.any_waiting());
    let fa = wait(&h, &a.task_id, Duration::from_secs(60)).await;
    let fb = wait(&h, &b.task_id, Duration::from_secs(60)).await;
    let main = exited(fa.container("main"));
    assert_eq!((main.exit_code, main.signal, main.oom_killed), (3, None, false));
    assert_eq!(exited(fb.container("main")).exit_code, 0);
    let out = h.stdout(&a.task_id, "main");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(release.as_str()), "the guest kernel's release: {out:?}");
    assert_ne!(release, host, "the test needs a guest kernel other than the host's");
    let boot_a = lines.next().unwrap().to_owned();
    let stderr = std::fs::read_to_string(h.runtime.logs(&a.task_id, "main").stderr).unwrap();
    assert_eq!(stderr, "oops\n");
    // The non-essential container ran in the same guest, as PID 1 of its
    // own PID namespace.
    let side = h.stdout(&a.task_id, "side");
    assert_eq!(side, format!("{boot_a}\n1\n"), "side: {side:?}");
    let boot_b = h.stdout(&b.task_id, "main").trim().to_owned();
    assert_eq!(boot_b.len(), 36, "{boot_b:?}");
    assert_ne!(boot_a, boot_b, "two tasks, two kernels");
    for t in [&a.task_id, &b.task_id] {
        h.runtime.stop(t).await.unwrap();
        h.runtime.remove(t).await.unwrap();
        assert_eq!(leftovers(t, &h.state()), Vec::<String>::new());
    }
}

/// StopTask semantics: SIGTERM, then SIGKILL once the stopTimeout passed
/// (a PID 1 without a handler ignores SIGTERM, as in a sandbox); and the
/// VM outlives the runtime value: a new instance (an agent restart)
/// re-attaches and stops it.
// The timeout is measured on the host (a guest's clock under TCG, with
// the fixed tsc_early_khz the command line needs against hangs, can run
// fast: a guest-measured 2 s once fired at 1.5 s).
#[tokio::test(flavor = "multi_thread")]
async fn stop_honours_stop_timeout_after_an_agent_restart() {
    let Some(init) = require("stop_honours_stop_timeout_after_an_agent_restart") else { return };
    let h = Harness::new(init);
    let mut stubborn = h.sh("stubborn", "trap '' TERM; echo up; while :; do sleep 1; done");
    stubborn.stop_timeout = Some(Duration::from_secs(2));
    let polite = h.sh("polite", "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done");
    let spec = h.task("stop", vec![stubborn, polite]);
    let _g = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    // A SIGTERM before the trap is set would be lost (PID 1 ignores what
    // it has no handler for), as in any container.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(h.stdout(&spec.task_id, "polite").contains("ready") && h.stdout(&spec.task_id, "stubborn").contains("up")) {
        assert!(Instant::now() < deadline, "the containers did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restarted = h.restart();
    assert_eq!(restarted.list().await.unwrap(), vec![spec.task_id.clone()]);
    let report = restarted.recover(&spec.task_id).await.unwrap();
    assert!(
        report.containers.iter().all(|c| matches!(c.state, ContainerState::Running { .. })),
        "{report:?}"
    );
    let t0 = Instant::now();
    let stopped = restarted.stop(&spec.task_id).await.unwrap();
    let took = t0.elapsed();
    let s = exited(stopped.container("stubborn"));
    assert_eq!((s.exit_code, s.signal), (137, Some(9)), "{s:?}");
    assert!(took >= Duration::from_secs(2), "SIGKILL only after the stop timeout: {took:?}");
    assert!(took < Duration::from_secs(20), "the polite container ended at SIGTERM: {took:?}");
    let p = exited(stopped.container("polite"));
    assert_eq!((p.exit_code, p.signal), (0, None), "{p:?}");
    assert!(h.stdout(&spec.task_id, "polite").contains("bye"));
    assert!(h.stdout(&spec.task_id, "stubborn").starts_with("up"));
    restarted.remove(&spec.task_id).await.unwrap();
    assert_eq!(leftovers(&spec.task_id, &h.state()), Vec::<String>::new());
}

/// A container over its memory limit is killed by the guest kernel's OOM
/// killer and reported as ECS reports it.
#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_oom_kills_and_says_so() {
    let Some(init) = require("memory_limit_oom_kills_and_says_so") else { return };
    let h = Harness::new(init);
    let mut hog = h.sh("hog", "x=0123456789abcdef; while :; do x=$x$x; done");
    hog.memory_mib = Some(48);
    let spec = h.task("oom", vec![hog]);
    let _g = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let done = wait(&h, &spec.task_id, Duration::from_secs(60)).await;
    let exit = exited(done.container("hog"));
    assert!(exit.oom_killed, "expected an OOM kill, got {exit:?}");
    assert_eq!(exit.reason(), Some(OOM_REASON));
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
}

/// A network namespace as the agent makes one: `eth0` (a veth) with an
/// address and a default route; the peer end in a second namespace.
struct Netns {
    task: String,
    peer: String,
}

impl Netns {
    fn new(n: u8) -> Self {
        let tag = format!("bmv{}-{n}", std::process::id());
        let (task, peer) = (format!("{tag}-t"), format!("{tag}-p"));
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip").args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let me = Self { task: task.clone(), peer: peer.clone() };
        ip(&["netns", "add", &task]);
        ip(&["netns", "add", &peer]);
        ip(&["-n", &task, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &peer]);
        ip(&["-n", &task, "addr", "add", &format!("10.251.{n}.2/24"), "dev", "eth0"]);
        ip(&["-n", &peer, "addr", "add", &format!("10.251.{n}.1/24"), "dev", "eth0"]);
        for ns in [&task, &peer] {
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&["-n", &task, "route", "add", "default", "via", &format!("10.251.{n}.1")]);
        me
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.task)
    }

    fn mac(&self) -> String {
        let out = std::process::Command::new("ip").args(["-n", &self.task, "-o", "link", "show", "eth0"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).unwrap().to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.task, &self.peer] {
            let _ = std::process::Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The guest's eth0 is the task's interface (its address and MAC, the
/// route out through the TAP), and output written just before the guest
/// powers off is all there.
#[tokio::test(flavor = "multi_thread")]
async fn the_guest_has_the_task_interface_and_no_output_is_lost_at_exit() {
    let Some(init) = require("the_guest_has_the_task_interface_and_no_output_is_lost_at_exit") else { return };
    let h = Harness::new(init);
    let ns = Netns::new(1);
    let mut spec = h.task(
        "net",
        vec![h.sh("main", "ip -o addr show dev eth0; ip -o link show dev eth0; ping -c 1 -W 10 10.251.1.1 >/dev/null && echo reached; seq 1 20000")],
    );
    spec.netns = Some(ns.path());
    let _g = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let done = wait(&h, &spec.task_id, Duration::from_secs(90)).await;
    assert_eq!(exited(done.container("main")).exit_code, 0);
    let out = h.stdout(&spec.task_id, "main");
    assert!(out.contains("inet 10.251.1.2/24"), "{out}");
    assert!(out.contains(&ns.mac()), "the guest has the task's MAC: {out}");
    assert!(out.contains("\nreached\n"), "the gateway answered through the TAP: {out}");
    let numbers: Vec<&str> = out.lines().skip_while(|l| *l != "reached").skip(1).collect();
    assert_eq!(numbers.len(), 20000, "every line written before power-off arrives");
    assert_eq!(numbers.last(), Some(&"20000"));
    h.runtime.stop(&spec.task_id).await.unwrap();
    h.runtime.remove(&spec.task_id).await.unwrap();
    let taps = std::process::Command::new("ip").args(["-n", &ns.task, "-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&taps.stdout).contains("tap0"), "the TAP goes with the task");
    assert_eq!(leftovers(&spec.task_id, &h.state()), Vec::<String>::new());
}

/// Run/stop cycles leave no VMM, TAP, disk or cgroup behind
/// (`BERTH_MICROVM_CYCLES`, default 3; the acceptance run is 20).
#[tokio::test(flavor = "multi_thread")]
async fn run_stop_cycles_leave_nothing_behind() {
    let Some(init) = require("run_stop_cycles_leave_nothing_behind") else { return };
    let h = Harness::new(init);
    let cycles: usize = std::env::var("BERTH_MICROVM_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    let ns = Netns::new(2);
    let mut starts = Vec::new();
    for _ in 0..cycles {
        // PID 1 without a handler ignores SIGTERM: SIGKILL after 1 s.
        let mut main = h.sh("main", "echo hi; sleep 1000");
        main.stop_timeout = Some(Duration::from_secs(1));
        let mut spec = h.task("cycle", vec![main]);
        spec.netns = Some(ns.path());
        let _g = h.guard(&spec.task_id);
        let t0 = Instant::now();
        h.runtime.start(&spec).await.unwrap();
        starts.push(t0.elapsed());
        let stopped = h.runtime.stop(&spec.task_id).await.unwrap();
        assert!(exited(stopped.container("main")).exit_code > 0);
        h.runtime.remove(&spec.task_id).await.unwrap();
        assert_eq!(leftovers(&spec.task_id, &h.state()), Vec::<String>::new());
        let rw: Vec<_> = std::fs::read_dir(h.state().join("tasks")).unwrap().flatten().collect();
        assert!(rw.is_empty(), "no task state left: {rw:?}");
        let links = std::process::Command::new("ip").args(["-n", &ns.task, "-o", "link"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&links.stdout).contains("tap0"), "no TAP left");
    }
    starts.sort();
    eprintln!("micro-VM start (RunTask to RUNNING in the runtime) over {cycles} cycles: p50 {:?}, max {:?}", starts[starts.len() / 2], starts.last().unwrap());
    let images: Vec<_> = std::fs::read_dir(h.state().join("images")).unwrap().flatten().collect();
    assert_eq!(images.len(), 1, "one shared image disk for all the cycles: {images:?}");
}

/// Figures for docs/PERFORMANCE.md (run by hand, `--ignored`): start
/// latency p50 over 11 tasks, memory of an idle guest (the VMM's RSS and
/// PSS, and its cgroup's charge) with 5 idle guests up at once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check: cargo test -p berth-microvm --test microvm -- --ignored --nocapture"]
async fn measure_start_latency_and_idle_memory() {
    let Some(init) = require("measure_start_latency_and_idle_memory") else { return };
    let h = Harness::new(init);
    let mut starts = Vec::new();
    for _ in 0..11 {
        let spec = h.task("measure", vec![h.sh("main", "true")]);
        let _g = h.guard(&spec.task_id);
        let t0 = Instant::now();
        h.runtime.start(&spec).await.unwrap();
        starts.push(t0.elapsed());
        wait(&h, &spec.task_id, Duration::from_secs(60)).await;
        h.runtime.stop(&spec.task_id).await.unwrap();
        h.runtime.remove(&spec.task_id).await.unwrap();
    }
    starts.sort();
    eprintln!("MEASURE start to RUNNING p50 {:?} min {:?} max {:?}", starts[5], starts[0], starts[10]);
    let mut guards = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let mut spec = h.task("idle", vec![h.sh("main", "sleep 1000")]);
        spec.memory_mib = Some(512);
        guards.push(h.guard(&spec.task_id));
        h.runtime.start(&spec).await.unwrap();
        ids.push(spec.task_id.clone());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    for id in &ids {
        let pid = std::fs::read_to_string(h.state().join("tasks").join(id.as_str()).join("qemu.pid")).unwrap();
        let pid = pid.split_whitespace().next().unwrap().to_owned();
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
        let field = |k: &str| rollup.lines().find(|l| l.starts_with(k)).unwrap_or_default().split_whitespace().nth(1).unwrap_or_default().to_owned();
        let stats = h.runtime.stats(id).await.unwrap();
        eprintln!(
            "MEASURE idle 512 MiB task: VMM RSS {} kB, PSS {} kB, cgroup {} MiB",
            field("Rss:"),
            field("Pss:"),
            stats.task.memory_bytes / (1024 * 1024)
        );
    }
}
