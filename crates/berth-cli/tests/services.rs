//! Services through the real binary: a service's rolling deployment
//! survives `kill -9` of `berth up` in its middle — started again on the
//! same data dir, Berth carries the deployment on to the same end state,
//! with no slot filled twice and no task lost — and the `berth service`
//! client subcommands show it. Busybox from a real registry on loopback;
//! needs root, like tasks.rs.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{World, bin, can_run, task_id};

/// A [`World`] whose services are deleted (force) and drained when it is
/// dropped, before the World's own teardown stops what is left: a service
/// would otherwise replace the tasks the teardown stops.
struct Services {
    w: World,
}

impl std::ops::Deref for Services {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let Ok((_, v)) = self.w.berth.ecs("ListServices", &json!({})) else { return };
        let arns: Vec<String> =
            v["serviceArns"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)).collect();
        for arn in &arns {
            let _ = self.w.berth.ecs("DeleteService", &json!({"service": arn, "force": true}));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok((_, v)) = self.w.berth.ecs("DescribeServices", &json!({"services": arns})) else { return };
            let services = v["services"].as_array().cloned().unwrap_or_default();
            if services.iter().all(|s| s["status"] == "INACTIVE") {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("teardown: services not INACTIVE after 60 s");
    }
}

impl Services {
    fn start() -> Self {
        Self { w: World::start() }
    }

    /// Registers revision `revision` of `family`: busybox sleeping until TERM.
    fn register(&self, family: &str, revision: u32) -> String {
        let image = self.registry.reference("busybox:latest");
        let v = self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512",
                   "containerDefinitions": [{"name": "main", "image": image, "stopTimeout": 2,
                       "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
                       "environment": [{"name": "REVISION", "value": revision.to_string()}]}]}),
        );
        v["taskDefinition"]["taskDefinitionArn"].as_str().unwrap().to_owned()
    }

    fn service(&self, name: &str) -> Value {
        let v = self.ecs("DescribeServices", json!({"services": [name]}));
        assert_eq!(v["failures"], json!([]), "{v}");
        v["services"][0].clone()
    }

    /// Every task the service started (its group), as DescribeTasks shows it.
    fn tasks(&self, name: &str) -> Vec<Value> {
        let mut arns: Vec<Value> = Vec::new();
        for desired in ["RUNNING", "STOPPED"] {
            let v = self.ecs("ListTasks", json!({"desiredStatus": desired, "maxResults": 100}));
            for a in v["taskArns"].as_array().unwrap() {
                if !arns.contains(a) {
                    arns.push(a.clone());
                }
            }
        }
        if arns.is_empty() {
            return Vec::new();
        }
        let v = self.ecs("DescribeTasks", json!({"tasks": arns}));
        let group = format!("service:{name}");
        v["tasks"].as_array().unwrap().iter().filter(|t| t["group"] == group.as_str()).cloned().collect()
    }

    /// Polls until the service has one deployment, COMPLETED, with every task running.
    fn wait_steady(&self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let s = self.service(name);
            if steady(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{name} not steady within {within:?}: {s:#}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `berth ARGS --data-dir DIR` (the client finds the endpoint and
    /// credentials there): success, stdout, stderr.
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(&self.berth.data_dir)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("BERTH_ENDPOINT")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let (ok, out, err) = self.cli(&all);
        assert!(ok, "berth {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("berth {args:?} printed no JSON ({e}): {out}"))
    }
}

fn steady(s: &Value) -> bool {
    let ds = s["deployments"].as_array().map(Vec::as_slice).unwrap_or_default();
    s["status"] == "ACTIVE"
        && ds.len() == 1
        && ds[0]["rolloutState"] == "COMPLETED"
        && s["runningCount"] == s["desiredCount"]
        && s["pendingCount"] == 0
}

fn alive(tasks: &[Value]) -> Vec<&Value> {
    tasks.iter().filter(|t| t["lastStatus"] != "STOPPED").collect()
}

#[test]
fn a_deployment_survives_kill_9_of_berth_and_completes_without_filling_a_slot_twice() {
    if !can_run("a_deployment_survives_kill_9_of_berth_and_completes_without_filling_a_slot_twice") {
        return;
    }
    let mut w = Services::start();
    let td1 = w.register("web", 1);
    let network = json!({"awsvpcConfiguration": {"subnets": ["subnet-default"]}});
    // maximumPercent 150 of 2 is 3 alive: one new task at a time, so the
    // rollout has a middle (new tasks started, old ones not all stopped).
    w.ecs(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2, "launchType": "FARGATE",
               "networkConfiguration": network,
               "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 150}}),
    );
    let s = w.wait_steady("web", Duration::from_secs(90));
    assert_eq!(s["taskDefinition"], td1.as_str());
    let old: Vec<String> = w.tasks("web").iter().map(|t| t["taskArn"].as_str().unwrap().to_owned()).collect();
    assert_eq!(old.len(), 2, "{old:?}");

    let td2 = w.register("web", 2);
    let v = w.ecs("UpdateService", json!({"service": "web", "taskDefinition": "web:2"}));
    let new_id = v["service"]["deployments"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, s["deployments"][0]["id"].as_str().unwrap());
    let most_alive = |tasks: &[Value], when: &str| {
        let n = alive(tasks).len();
        assert!(n <= 3, "{when}: {n} tasks alive, more than maximumPercent 150 of 2 allows: {tasks:#?}");
    };

    // Mid-rollout: a task of the new deployment exists, an old one still runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = w.tasks("web");
        most_alive(&tasks, "before the kill");
        let started_new = tasks.iter().any(|t| t["startedBy"] == new_id.as_str());
        let old_left = tasks.iter().any(|t| old.iter().any(|a| t["taskArn"] == a.as_str()) && t["lastStatus"] != "STOPPED");
        if started_new && old_left {
            eprintln!("killing berth (pid {}) with {} tasks of {new_id} started", w.berth.pid(), tasks.iter().filter(|t| t["startedBy"] == new_id.as_str()).count());
            break;
        }
        assert!(Instant::now() < deadline, "no middle of the rollout within 60 s: {tasks:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    w.w.restart_after_kill9();

    // It carries on to the same end state.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (s, tasks) = loop {
        let tasks = w.tasks("web");
        most_alive(&tasks, "after the restart");
        let s = w.service("web");
        let old_left = tasks.iter().any(|t| old.iter().any(|a| t["taskArn"] == a.as_str()) && t["lastStatus"] != "STOPPED");
        if steady(&s) && !old_left {
            break (s, tasks);
        }
        assert!(Instant::now() < deadline, "the deployment did not complete within 120 s of the restart: {s:#}\n{tasks:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let p = &s["deployments"][0];
    assert_eq!((p["id"].as_str().unwrap(), p["taskDefinition"].as_str().unwrap()), (new_id.as_str(), td2.as_str()), "{s:#}");
    assert_eq!(p["failedTasks"], 0, "{s:#}");
    let running: Vec<&Value> = tasks.iter().filter(|t| t["lastStatus"] == "RUNNING").collect();
    assert_eq!(running.len(), 2, "{tasks:#?}");
    assert!(running.iter().all(|t| t["taskDefinitionArn"] == td2.as_str() && t["startedBy"] == new_id.as_str()), "{running:#?}");
    for t in tasks.iter().filter(|t| old.iter().any(|a| t["taskArn"] == a.as_str())) {
        assert_eq!(t["lastStatus"], "STOPPED", "{t:#}");
        assert_eq!(t["stopCode"], "ServiceSchedulerInitiated", "{t:#}");
    }
    // No slot filled twice: the new deployment started exactly the 2 it needed.
    let by_new: Vec<&Value> = tasks.iter().filter(|t| t["startedBy"] == new_id.as_str()).collect();
    assert_eq!(by_new.len(), 2, "the new deployment started {} tasks for 2 slots: {by_new:#?}", by_new.len());
    assert_eq!(tasks.len(), 4, "2 old and 2 new, nothing else: {tasks:#?}");

    // The client subcommands show it.
    let ls = w.cli_json(&["service", "ls"]);
    let listed = ls["services"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{ls:#}");
    assert_eq!((listed[0]["serviceName"].clone(), listed[0]["runningCount"].clone()), (json!("web"), json!(2)));
    let (ok, table, err) = w.cli(&["service", "ls"]);
    assert!(ok, "{err}");
    let mut lines = table.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NAME", "STATUS", "DESIRED", "RUNNING", "PENDING", "TASK", "DEFINITION", "ROLLOUT"], "{table}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, ["web", "ACTIVE", "2", "2", "0", "web:2", "COMPLETED"], "{table}");

    let d = w.cli_json(&["service", "describe", "web"]);
    assert_eq!((d["serviceName"].clone(), d["taskDefinition"].clone()), (json!("web"), json!(td2)), "{d:#}");
    let (ok, text, err) = w.cli(&["service", "describe", "web"]);
    assert!(ok, "{err}");
    for needle in ["Name:", "web", "Status:", "ACTIVE", "2 running, 0 pending, 2 desired", "web:2", &new_id, "COMPLETED", "(service web) has reached a steady state."] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    assert!(text.contains("at least 100% healthy, at most 150% running"), "{text}");

    let events = w.cli_json(&["service", "events", "web", "--limit", "3"]);
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{events:#?}");
    let all = s["events"].as_array().unwrap();
    assert_eq!(events.as_slice(), &all[..3], "the newest three, as DescribeServices has them");
    let (ok, text, err) = w.cli(&["service", "events", "web"]);
    assert!(ok, "{err}");
    assert!(text.starts_with("TIME"), "{text}");
    assert!(text.contains("(service web) has reached a steady state."), "{text}");
    for t in &by_new {
        let id = task_id(t["taskArn"].as_str().unwrap());
        assert!(text.contains(&format!("(task {id})")), "the start of {id} is among the events:\n{text}");
    }
    assert_eq!(text.lines().count(), all.len() + 1, "a header and every event, one a line:\n{text}");

    let (ok, _, err) = w.cli(&["service", "describe", "nope"]);
    assert!(!ok && err.contains("no service nope in cluster default"), "{err}");
    let (ok, _, err) = w.cli(&["service", "ls", "--cluster", "nope"]);
    assert!(!ok && err.contains("ClusterNotFoundException"), "{err}");
}
