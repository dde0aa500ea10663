//! Faults injected into a real `berth up`: `kill -9` of Berth in the
//! middle of 30 concurrent RunTask calls (after a restart every task
//! accepted is RUNNING or STOPPED with a reason; a retry with the same
//! clientToken finds its task, none lost, none made twice; nothing of a
//! stopped task left on the host), and `kill -9` of a task's shim (the
//! task is STOPPED with a clear reason, its cgroup, mounts and network
//! released), `kill -9` of a container's process from the host (its
//! exit code, 137, recorded), a full disk under the store; and a bounded load of 20
//! clients. Busybox from a real registry on loopback; needs root.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testinfra::server::BerthProcess;
use serde_json::{Value, json};

mod common;
use common::{World, bin, can_run, task_id};

/// Room for 30 small tasks on a 2-core host (the node's capacity is a
/// flag; the tasks sleep).
const ROOMY: &[&str] = &["--node-cpu", "8192", "--node-memory", "16384"];

fn register_sleeper(w: &World, family: &str) {
    let image = w.registry.reference("busybox:latest");
    w.ecs(
        "RegisterTaskDefinition",
        json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "main", "image": image, "stopTimeout": 2,
                   "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]}]}),
    );
}

fn run_body(family: &str, token: &str) -> Value {
    json!({"taskDefinition": family, "clientToken": token,
           "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}})
}

/// Every task of the cluster, by ARN.
fn all_tasks(b: &BerthProcess) -> BTreeMap<String, Value> {
    let mut arns = BTreeSet::new();
    for desired in ["RUNNING", "STOPPED"] {
        let (_, v) = b.ecs("ListTasks", &json!({"desiredStatus": desired, "maxResults": 100})).unwrap();
        arns.extend(v["taskArns"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()));
    }
    let mut out = BTreeMap::new();
    let arns: Vec<String> = arns.into_iter().collect();
    for chunk in arns.chunks(100) {
        let (_, v) = b.ecs("DescribeTasks", &json!({"tasks": chunk})).unwrap();
        for t in v["tasks"].as_array().unwrap() {
            out.insert(t["taskArn"].as_str().unwrap().to_owned(), t.clone());
        }
    }
    out
}

/// The task's cgroup directories and network namespace still on the host.
fn held_on_host(id: &str) -> Vec<PathBuf> {
    let mut held: Vec<PathBuf> = ["memory", "cpu", "pids", "unified"]
        .iter()
        .map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}/berth/{id}")))
        .filter(|p| p.exists())
        .collect();
    let names = berth_net::TaskNames::for_task(id).unwrap();
    if names.netns_path.exists() {
        held.push(names.netns_path.clone());
    }
    if Path::new("/sys/class/net").join(&names.host_veth).exists() {
        held.push(PathBuf::from("/sys/class/net").join(&names.host_veth));
    }
    held
}

#[test]
fn kill_9_of_berth_during_30_concurrent_run_tasks_loses_and_duplicates_nothing() {
    if !can_run("kill_9_of_berth_during_30_concurrent_run_tasks_loses_and_duplicates_nothing") {
        return;
    }
    let mut w = World::start_with(ROOMY);
    register_sleeper(&w, "burst");
    const N: usize = 30;
    let tokens: Vec<String> = (0..N).map(|i| format!("burst-token-{i}")).collect();
    // 30 clients at once; Berth is killed once a few have been answered.
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let pid = w.berth.pid();
    let (outcomes, killed_at): (Vec<Option<String>>, Instant) = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while answered.load(std::sync::atomic::Ordering::SeqCst) < 5 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
            Instant::now()
        });
        let calls: Vec<_> = tokens
            .iter()
            .map(|token| {
                let (b, answered) = (&w.berth, &answered);
                s.spawn(move || {
                    let r = b.ecs("RunTask", &run_body("burst", token));
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match r {
                        Ok((200, v)) => {
                            assert_eq!(v["failures"], json!([]), "{v}");
                            Some(v["tasks"][0]["taskArn"].as_str().unwrap().to_owned())
                        }
                        // The answer was lost with Berth (or refused as it went down).
                        _ => None,
                    }
                })
            })
            .collect();
        let outcomes = calls.into_iter().map(|c| c.join().unwrap()).collect();
        (outcomes, killer.join().unwrap())
    });
    let accepted: BTreeMap<&str, &str> =
        tokens.iter().zip(&outcomes).filter_map(|(t, a)| a.as_deref().map(|a| (t.as_str(), a))).collect();
    eprintln!("{} of {N} RunTask calls answered before the kill", accepted.len());
    assert!(accepted.len() >= 5 && accepted.len() < N, "the kill came in the middle of the burst: {}", accepted.len());
    w.w_restart(ROOMY);

    // Every accepted task is there and settles: RUNNING, or STOPPED with a reason.
    let deadline = Instant::now() + Duration::from_secs(120);
    let tasks = loop {
        let tasks = all_tasks(&w.berth);
        let settled = tasks.values().all(|t| t["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED");
        if settled && accepted.values().all(|a| tasks.contains_key(*a)) {
            break tasks;
        }
        assert!(Instant::now() < deadline, "tasks did not settle within 120 s of the restart: {tasks:#?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    for t in tasks.values().filter(|t| t["lastStatus"] == "STOPPED") {
        assert!(t["stoppedReason"].as_str().is_some_and(|r| !r.is_empty()), "a stopped task says why: {t:#}");
    }
    assert!(tasks.len() <= N, "no more tasks than calls: {}", tasks.len());

    // The retries an SDK makes after a lost answer: the same token finds
    // the task the first call made, or makes the one it never made. A
    // claim the dead server never settled lapses after 60 s (Berth holds
    // a retry until then); the retries come after it, within the
    // client's read timeout.
    let lapse = killed_at + Duration::from_secs(61);
    std::thread::sleep(lapse.saturating_duration_since(Instant::now()));
    let mut by_token: BTreeMap<String, String> = BTreeMap::new();
    for token in &tokens {
        let v = w.ecs("RunTask", run_body("burst", token));
        assert_eq!(v["failures"], json!([]), "{v}");
        let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
        if let Some(first) = accepted.get(token.as_str()) {
            assert_eq!(&arn, first, "a retry of an accepted call returns its task");
        }
        by_token.insert(token.clone(), arn);
    }
    let distinct: BTreeSet<&String> = by_token.values().collect();
    assert_eq!(distinct.len(), N, "one task per token: {by_token:#?}");
    let tasks = all_tasks(&w.berth);
    assert_eq!(tasks.len(), N, "exactly one task per call, none made twice: {:#?}", tasks.keys().collect::<Vec<_>>());

    // Every task runs or stops; a stopped one holds nothing on the host.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let tasks = all_tasks(&w.berth);
        let unsettled: Vec<&Value> = tasks.values().filter(|t| t["lastStatus"] != "RUNNING" && t["lastStatus"] != "STOPPED").collect();
        if unsettled.is_empty() {
            for t in tasks.values().filter(|t| t["lastStatus"] == "STOPPED") {
                let id = task_id(t["taskArn"].as_str().unwrap());
                assert_eq!(held_on_host(&id), Vec::<PathBuf>::new(), "a stopped task holds nothing: {t:#}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {unsettled:#?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Stopped, every task gives everything back.
    let arns: Vec<String> = tasks.keys().cloned().collect();
    for arn in &arns {
        w.ecs("StopTask", json!({"task": arn}));
    }
    for arn in &arns {
        let t = w.wait_for(arn, "STOPPED", Duration::from_secs(90));
        let id = task_id(arn);
        assert_eq!(held_on_host(&id), Vec::<PathBuf>::new(), "{t:#}");
    }
    let runtime = w.dir.path().join("data/runtime");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = mountinfo.lines().filter(|l| l.contains(runtime.to_str().unwrap())).collect();
    assert!(mounts.is_empty(), "no mount of a task left: {mounts:#?}");
}

#[test]
fn kill_9_of_a_tasks_shim_stops_the_task_with_a_clear_reason_and_releases_it() {
    if !can_run("kill_9_of_a_tasks_shim_stops_the_task_with_a_clear_reason_and_releases_it") {
        return;
    }
    let w = World::start();
    register_sleeper(&w, "orphan");
    let v = w.ecs("RunTask", run_body("orphan", "orphan-1"));
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    let id = task_id(&arn);
    let pid_file = w.dir.path().join("data/runtime/tasks").join(&id).join("shim.pid");
    let shim: i32 = std::fs::read_to_string(&pid_file).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), nix::sys::signal::Signal::SIGKILL).unwrap();
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    eprintln!("after the shim's kill: {} / {}", t["stopCode"], t["stoppedReason"]);
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(reason.contains("supervisor on the node died"), "a clear reason: {reason}");
    assert_eq!(t["containers"][0]["reason"], "Container exit status unknown: its supervisor was gone.", "{t:#}");
    assert_eq!(t["desiredStatus"], "STOPPED");
    assert_eq!(held_on_host(&id), Vec::<PathBuf>::new(), "released: {t:#}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&id), "no mount of the task left");
}

#[test]
fn a_container_process_killed_from_the_host_has_its_exit_code_recorded() {
    if !can_run("a_container_process_killed_from_the_host_has_its_exit_code_recorded") {
        return;
    }
    let w = World::start();
    register_sleeper(&w, "victim");
    let v = w.ecs("RunTask", run_body("victim", "victim-1"));
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let t = w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    // runtimeId is NAME-PID, PID the container's init as the host sees it.
    let runtime_id = t["containers"][0]["runtimeId"].as_str().unwrap();
    let init: i32 = runtime_id.rsplit('-').next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::Signal::SIGKILL).unwrap();
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 137, "128 + SIGKILL, as ECS reports it: {t:#}");
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    assert_eq!(t["desiredStatus"], "STOPPED", "{t:#}");
    assert_eq!(held_on_host(&task_id(&arn)), Vec::<PathBuf>::new(), "released: {t:#}");
}

impl World {
    /// `kill -9` of Berth if it still runs, then `berth up` again on the
    /// same data dir with `args`.
    fn w_restart(&mut self, args: &[&str]) {
        let _ = self.berth.kill9();
        self.berth = BerthProcess::start(bin(), &self.dir.path().join("data"), args, &[]).unwrap();
    }
}

/// A tmpfs of `size` at `path`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path).status().unwrap();
        assert!(ok.success(), "mounting a tmpfs at {}", path.display());
        Self(path.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_under_the_store_answers_server_exception_loses_nothing_and_recovers() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: a_full_disk_under_the_store_answers_server_exception_loses_nothing_and_recovers: needs root (a tmpfs)");
        assert!(std::env::var_os("CI").is_none(), "must run in CI");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"), "48m");
    let data = disk.0.join("data");
    let mut b = BerthProcess::start(bin(), &data, &["--no-agent"], &[]).unwrap();
    let create = |b: &BerthProcess, name: &str| b.ecs("CreateCluster", &json!({"clusterName": name})).unwrap();
    let names = |b: &BerthProcess| -> BTreeSet<String> {
        let (status, v) = b.ecs("ListClusters", &json!({})).unwrap();
        assert_eq!(status, 200, "{v}");
        v["clusterArns"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().rsplit('/').next().unwrap().to_owned()).collect()
    };
    let (status, _) = create(&b, "before");
    assert_eq!(status, 200);

    // The disk fills up (the store's WAL has nowhere to grow).
    let filler = disk.0.join("filler");
    let _ = std::process::Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", filler.display())).arg("bs=1M").output().unwrap();
    for i in 0..3 {
        let (status, v) = create(&b, &format!("during{i}"));
        assert_eq!(status, 500, "a write that cannot be stored: {v}");
        assert_eq!(v["__type"], "ServerException", "AWS's shape: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.contains("sqlite") && !m.contains("disk")), "internals stay inside: {v}");
    }
    assert_eq!(names(&b), BTreeSet::from(["before".to_owned()]), "reads go on; what was committed is there");

    // Space returns: writes work again at once.
    std::fs::remove_file(&filler).unwrap();
    let (status, v) = create(&b, "after");
    assert_eq!(status, 200, "{v}");
    assert_eq!(names(&b), BTreeSet::from(["after".to_owned(), "before".to_owned()]));
    // And the store is whole for the next Berth.
    b.terminate().unwrap();
    let b = BerthProcess::start(bin(), &data, &["--no-agent"], &[]).unwrap();
    assert_eq!(names(&b), BTreeSet::from(["after".to_owned(), "before".to_owned()]), "nothing lost, nothing half-written");
    drop(b);
}

/// The p-th percentile of `xs` (sorted here).
fn percentile(xs: &mut [Duration], p: f64) -> Duration {
    xs.sort();
    xs.get(((xs.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
}

/// 20 clients on loopback for `BERTH_LOAD_SECONDS` (15 here; the long
/// form is 60), each running a task, describing it until it runs,
/// stopping it, and again: no 5xx, the latencies per action printed,
/// and after the cleanup no task left running nor anything on the host.
#[test]
fn twenty_clients_mixing_run_describe_and_stop_get_no_server_error() {
    if !can_run("twenty_clients_mixing_run_describe_and_stop_get_no_server_error") {
        return;
    }
    let w = World::start_with(ROOMY);
    register_sleeper(&w, "load");
    let seconds: u64 = std::env::var("BERTH_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let until = Instant::now() + Duration::from_secs(seconds);
    type Seen = Vec<(&'static str, u16, Duration)>;
    let seen: Vec<Seen> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..20)
            .map(|client| {
                let b = &w.berth;
                s.spawn(move || {
                    let mut seen: Seen = Vec::new();
                    let mut call = |op: &'static str, body: Value| -> Value {
                        let t = Instant::now();
                        let (status, v) = b.ecs(op, &body).unwrap_or_else(|e| panic!("{op}: no answer: {e}"));
                        seen.push((op, status, t.elapsed()));
                        assert!(status < 500, "{op}: {status} {v}");
                        v
                    };
                    let mut round = 0;
                    while Instant::now() < until {
                        round += 1;
                        let v = call("RunTask", run_body("load", &format!("load-{client}-{round}")));
                        let Some(arn) = v["tasks"][0]["taskArn"].as_str().map(str::to_owned) else {
                            // No room just now (RESOURCE:*): a 200 with failures.
                            assert!(!v["failures"].as_array().unwrap().is_empty(), "{v}");
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        };
                        let deadline = Instant::now() + Duration::from_secs(60);
                        loop {
                            let t = call("DescribeTasks", json!({"tasks": [arn]}));
                            let status = t["tasks"][0]["lastStatus"].as_str().unwrap_or_default().to_owned();
                            if status == "RUNNING" || status == "STOPPED" || Instant::now() > deadline {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        call("ListTasks", json!({"desiredStatus": "RUNNING"}));
                        call("StopTask", json!({"task": arn, "reason": "load test"}));
                    }
                    seen
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let all: Vec<&(&str, u16, Duration)> = seen.iter().flatten().collect();
    for op in ["RunTask", "DescribeTasks", "ListTasks", "StopTask"] {
        let mut times: Vec<Duration> = all.iter().filter(|s| s.0 == op).map(|s| s.2).collect();
        let n = times.len();
        let (p50, p99, max) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99), times.last().copied().unwrap_or_default());
        eprintln!("load: {op}: {n} calls, p50 {p50:?}, p99 {p99:?}, max {max:?}");
        assert!(n > 0, "{op} was called");
    }
    let server_errors = all.iter().filter(|s| s.1 >= 500).count();
    assert_eq!(server_errors, 0);
    eprintln!("load: {} calls from 20 clients in {seconds} s, no 5xx", all.len());

    // Cleanup: every task stopped, nothing of any left on the host.
    let deadline = Instant::now() + Duration::from_secs(120);
    let tasks = loop {
        let tasks = all_tasks(&w.berth);
        let live: Vec<&Value> = tasks.values().filter(|t| t["lastStatus"] != "STOPPED").collect();
        if live.is_empty() {
            break tasks;
        }
        for t in &live {
            let _ = w.berth.ecs("StopTask", &json!({"task": t["taskArn"]}));
        }
        assert!(Instant::now() < deadline, "tasks still not STOPPED: {live:#?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("load: {} tasks ran", tasks.len());
    for arn in tasks.keys() {
        assert_eq!(held_on_host(&task_id(arn)), Vec::<PathBuf>::new());
    }
}
