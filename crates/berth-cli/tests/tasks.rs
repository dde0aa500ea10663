//! Tasks for real, through the real binary: a busybox image built by the
//! test and pushed into a real registry (Debian's docker-registry) on
//! loopback, pulled by Berth over the distribution API and run by the
//! node agent through the OCI runtime. Needs root (mounts, cgroups,
//! namespaces); CI runs as root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testinfra::server::BerthProcess;
use serde_json::{Value, json};

mod common;
use common::{World, can_run, task_id};

impl World {
    /// Registers `family` running `script` in busybox sh, and runs it.
    fn run(&self, family: &str, script: &str, cpu: &str, memory: &str, image: Option<&str>) -> String {
        let image = image.map_or_else(|| self.registry.reference("busybox:latest"), str::to_owned);
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": cpu, "memory": memory,
                   "containerDefinitions": [{"name": "main", "image": image, "command": ["sh", "-c", script],
                                             "stopTimeout": 2}]}),
        );
        let v = self.ecs(
            "RunTask",
            json!({"taskDefinition": family, "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}),
        );
        assert_eq!(v["failures"], json!([]), "{v}");
        v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
    }

}

#[test]
fn a_task_runs_and_reports_its_exit_code() {
    if !can_run("a_task_runs_and_reports_its_exit_code") {
        return;
    }
    let w = World::start();
    let arn = w.run("exit3", "echo hi; exit 3", "256", "512", None);
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 3, "{t:#}");
    assert_eq!(t["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(t["desiredStatus"], "STOPPED", "ECS sets desiredStatus STOPPED when a task stops by itself");
    for ts in ["createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt", "executionStoppedAt", "stoppedAt"] {
        assert!(t[ts].is_number(), "{ts} missing: {t:#}");
    }
    let order = |a: &str, b: &str| t[a].as_f64().unwrap() <= t[b].as_f64().unwrap();
    assert!(order("createdAt", "pullStartedAt") && order("pullStoppedAt", "startedAt") && order("startedAt", "stoppedAt"), "{t:#}");
    // The node's capacity is free again.
    let (_, v) = w.berth.ecs("DescribeClusters", &json!({})).unwrap();
    assert_eq!(v["clusters"][0]["runningTasksCount"], 0, "{v}");
}

#[test]
fn a_missing_image_fails_the_task_with_cannot_pull() {
    if !can_run("a_missing_image_fails_the_task_with_cannot_pull") {
        return;
    }
    let w = World::start();
    let missing = w.registry.reference("no-such-image:latest");
    let arn = w.run("ghost", "true", "256", "512", Some(&missing));
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");
    assert!(reason.contains("no-such-image"), "{reason}");
}

#[test]
fn stop_task_ends_a_sleeper_within_its_stop_timeout() {
    if !can_run("stop_task_ends_a_sleeper_within_its_stop_timeout") {
        return;
    }
    let w = World::start();
    // A process that ignores SIGTERM: SIGKILL must follow after stopTimeout (2 s).
    let arn = w.run("sleeper", "trap '' TERM; sleep 1000", "256", "512", None);
    w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    let asked = Instant::now();
    let v = w.ecs("StopTask", json!({"task": arn, "reason": "enough"}));
    assert_eq!(v["task"]["desiredStatus"], "STOPPED");
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "enough");
    assert_eq!(t["containers"][0]["exitCode"], 137, "SIGKILLed: {t:#}");
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    if !can_run("memory_limit_oom_kills_and_is_reported") {
        return;
    }
    let w = World::start();
    let arn = w.run("hog", "x=0123456789abcdef; while :; do x=$x$x; done", "256", "512", None);
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(90));
    assert_eq!(t["containers"][0]["reason"], "OutOfMemoryError: Container killed due to memory usage", "{t:#}");
    assert_eq!(t["containers"][0]["exitCode"], 137);
    assert_eq!(t["stopCode"], "EssentialContainerExited");
}

#[test]
fn cpu_is_held_to_the_task_size() {
    if !can_run("cpu_is_held_to_the_task_size") {
        return;
    }
    let w = World::start();
    let arn = w.run("spin", "while :; do :; done", "256", "512", None);
    w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    let id = task_id(&arn);
    let id = id.as_str();
    let usage = || cpu_usage_ns(id).expect("the task's cgroup");
    std::thread::sleep(Duration::from_millis(500));
    let (t0, u0) = (Instant::now(), usage());
    std::thread::sleep(Duration::from_secs(3));
    let (t1, u1) = (Instant::now(), usage());
    let cores = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    eprintln!("a 256-CPU task used {cores:.3} cores");
    assert!((0.15..=0.35).contains(&cores), "256 CPU units should hold it to a quarter core, got {cores:.3}");
    w.ecs("StopTask", json!({"task": arn}));
    w.wait_for(&arn, "STOPPED", Duration::from_secs(30));
    assert!(cpu_usage_ns(id).is_none(), "the task's cgroup is removed at stop");
}

/// CPU time of the task's cgroup (v1 cpuacct, else v2 cpu.stat).
fn cpu_usage_ns(id: &str) -> Option<u64> {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/cpuacct/berth/{id}/cpuacct.usage"));
    if let Ok(s) = std::fs::read_to_string(&v1) {
        return s.trim().parse().ok();
    }
    for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        if let Ok(s) = std::fs::read_to_string(format!("{root}/berth/{id}/cpu.stat")) {
            let usec: u64 = s.lines().find_map(|l| l.strip_prefix("usage_usec "))?.trim().parse().ok()?;
            return Some(usec * 1000);
        }
    }
    None
}

#[test]
fn a_running_task_survives_sigkill_of_berth_and_its_exit_is_recorded() {
    if !can_run("a_running_task_survives_sigkill_of_berth_and_its_exit_is_recorded") {
        return;
    }
    let mut w = World::start();
    let arn = w.run("survivor", "sleep 4; exit 7", "256", "512", None);
    w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    w.restart_after_kill9();
    assert_eq!(w.describe(&arn)["lastStatus"], "RUNNING", "the task outlives berth");
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 7, "the real exit code, seen after the restart: {t:#}");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
}

#[test]
fn a_hundred_run_stop_cycles_leak_nothing() {
    if !can_run("a_hundred_run_stop_cycles_leak_nothing") {
        return;
    }
    let w = World::start();
    let runtime_dir = w.dir.path().join("data/runtime");
    let table = w.berth.net.as_ref().expect("a test network").table.clone();
    // Warm up: the image is pulled and unpacked once, outside the count.
    let arn = w.run("cycle", "sleep 60", "256", "512", None);
    w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    w.ecs("StopTask", json!({"task": arn}));
    w.wait_for(&arn, "STOPPED", Duration::from_secs(30));
    let mut ids = vec![task_id(&arn)];
    let before = Footprint::now(&runtime_dir, &ids, &w.berth, &table);

    // 20 rounds of 5: the node (2048 CPU units on a 2-core host) never
    // holds more than it can give, and Berth never over-commits it.
    for round in 0..20 {
        let v = w.ecs(
            "RunTask",
            json!({"taskDefinition": "cycle", "count": 5,
                   "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}),
        );
        assert_eq!(v["failures"], json!([]), "round {round}: {v}");
        let arns: Vec<String> = v["tasks"].as_array().unwrap().iter().map(|t| t["taskArn"].as_str().unwrap().to_owned()).collect();
        ids.extend(arns.iter().map(|a| task_id(a)));
        for arn in &arns {
            w.wait_for(arn, "RUNNING", Duration::from_secs(60));
        }
        for arn in &arns {
            w.ecs("StopTask", json!({"task": arn}));
        }
        for arn in &arns {
            let t = w.wait_for(arn, "STOPPED", Duration::from_secs(60));
            assert_eq!(t["stopCode"], "UserInitiated");
        }
    }
    assert_eq!(ids.len(), 101);
    let after = Footprint::now(&runtime_dir, &ids, &w.berth, &table);
    assert_eq!(after, before, "100 run/stop cycles left something behind");
    assert_eq!((after.overlay_mounts, after.task_cgroups, after.shims), (0, 0, 0), "{after:?}");
    assert_eq!((after.netns, after.veths), (0, 0), "{after:?}");
    assert_eq!(after.free_addresses, 256 - 3, "every address is back: {after:?}");
}

/// What this Berth's tasks hold on the host: overlay mounts under its data
/// dir, cgroups of its tasks, shim processes working for it, task state.
/// (Scoped to this instance: other tests run tasks at the same time.)
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    overlay_mounts: usize,
    task_cgroups: usize,
    shims: usize,
    runtime_entries: usize,
    runtime_bytes: u64,
    /// Network namespace files of these tasks.
    netns: usize,
    /// Host ends of these tasks' veths.
    veths: usize,
    /// Free addresses in the default subnet.
    free_addresses: u64,
    /// Rules in this Berth's nftables tables.
    nft_rules: String,
}

impl Footprint {
    fn now(runtime_dir: &Path, task_ids: &[String], berth: &BerthProcess, table: &str) -> Self {
        let ours = runtime_dir.display().to_string();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let task_cgroups = ["memory", "cpu", "cpuacct", "pids", "unified"]
            .iter()
            .flat_map(|c| task_ids.iter().map(move |id| PathBuf::from(format!("/sys/fs/cgroup/{c}/berth/{id}"))))
            .filter(|p| p.exists())
            .count();
        let shims = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "berth-shim")
                    && std::fs::read(e.path().join("cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&ours))
            })
            .count();
        let (runtime_entries, runtime_bytes) = tree_size(runtime_dir);
        let names: Vec<berth_net::TaskNames> =
            task_ids.iter().map(|id| berth_net::TaskNames::for_task(id).unwrap()).collect();
        let netns = names.iter().filter(|n| n.netns_path.exists()).count();
        let veths = names.iter().filter(|n| Path::new("/sys/class/net").join(&n.host_veth).exists()).count();
        let (_, subnets) = berth.operator("ListSubnets", &json!({})).unwrap();
        let free_addresses = subnets["subnets"][0]["availableIpAddressCount"].as_u64().unwrap();
        // The ruleset without its handles and counters: what the rules say.
        let nft_rules = ["inet", "bridge"]
            .iter()
            .map(|family| {
                let out = std::process::Command::new("nft").args(["list", "table", family, table]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            overlay_mounts: mountinfo.lines().filter(|l| l.contains(" - overlay ") && l.contains(&ours)).count(),
            task_cgroups,
            shims,
            runtime_entries,
            runtime_bytes,
            netns,
            veths,
            free_addresses,
            nft_rules,
        }
    }
}

fn tree_size(dir: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    entries.filter_map(Result::ok).fold((0, 0), |(n, bytes), e| {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            let (sub_n, sub_bytes) = tree_size(&e.path());
            (n + 1 + sub_n, bytes + sub_bytes)
        } else {
            (n + 1, bytes + meta.len())
        }
    })
}

#[test]
fn dependencies_and_health_checks_through_the_api() {
    if !can_run("dependencies_and_health_checks_through_the_api") {
        return;
    }
    let w = World::start();
    let image = w.registry.reference("busybox:latest");
    let container = |name: &str, script: &str| {
        json!({"name": name, "image": image, "command": ["sh", "-c", script], "stopTimeout": 2})
    };
    let mut init = container("init", "sleep 1; exit 0");
    init["essential"] = json!(false);
    let mut web = container("web", "sleep 1000");
    web["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    web["healthCheck"] = json!({"command": ["CMD-SHELL", "test -d /proc/self"], "interval": 5, "retries": 2});
    let mut worker = container("worker", "sleep 1000");
    worker["dependsOn"] = json!([{"containerName": "web", "condition": "HEALTHY"}]);
    w.ecs(
        "RegisterTaskDefinition",
        json!({"family": "ordered", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512", "containerDefinitions": [init, web, worker]}),
    );
    let v = w.ecs("RunTask", json!({"taskDefinition": "ordered", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}));
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    assert_eq!(v["tasks"][0]["healthStatus"], "UNKNOWN", "{v}");
    let t = w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    let c = |name: &str| t["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!((c("init")["lastStatus"].clone(), c("init")["exitCode"].clone()), (json!("STOPPED"), json!(0)), "{t:#}");
    assert_eq!(c("web")["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(c("web")["healthStatus"], "HEALTHY", "worker started only once web was healthy: {t:#}");
    assert_eq!(c("worker")["lastStatus"], "RUNNING", "the task is RUNNING once no container waits: {t:#}");
    assert_eq!(t["healthStatus"], "HEALTHY", "{t:#}");
    w.ecs("StopTask", json!({"task": arn}));
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(30));
    assert_eq!(t["stopCode"], "UserInitiated");

    // An init container that fails keeps its dependents from starting:
    // the task fails to start, saying why.
    let mut failing = container("init", "exit 5");
    failing["essential"] = json!(false);
    let mut app = container("app", "sleep 1000");
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    w.ecs(
        "RegisterTaskDefinition",
        json!({"family": "doomed", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512", "containerDefinitions": [failing, app]}),
    );
    let v = w.ecs("RunTask", json!({"taskDefinition": "doomed", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}));
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(reason.starts_with("CannotStartContainerError: ") && reason.contains("init (SUCCESS)") && reason.contains("code 5"), "{reason}");
    let app = t["containers"].as_array().unwrap().iter().find(|c| c["name"] == "app").unwrap();
    assert_eq!(app["lastStatus"], "STOPPED");
    assert!(app.get("exitCode").is_none_or(Value::is_null), "it never ran: {app}");
}
