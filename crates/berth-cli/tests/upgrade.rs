//! Upgrades, for real: a task started by the release before this one is
//! still this release's to supervise, stop and clean up. CI has only this
//! release's binary, so the test makes the on-disk state exactly what the
//! old release left: Berth is killed (-9) with the task running, its store
//! row is rewritten in format 0 (the ECS wire `Task` as DescribeTasks
//! showed it, under `task`, with `node_id`, `cpu`, `memory` and
//! `network_configuration` beside it; no `formatVersion`), and its shim's
//! `task.json` loses its `formatVersion`. Then this release starts on the
//! same data dir. Needs root, like tasks.rs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_testinfra::server::BerthProcess;
use serde_json::{Value, json};
use sqlx::{Connection as _, Row as _};

mod common;
use common::{World, bin, can_run, task_id};

/// What one task looked like to this release before its state was made
/// old, kept so that a failed upgrade can be undone and the task stopped
/// by the teardown rather than left running with no Berth to stop it.
struct Saved {
    arn: String,
    body: String,
    manifest: Option<(PathBuf, Vec<u8>)>,
}

/// A [`World`] whose tasks' state can be turned into the old release's.
struct Upgrade {
    w: World,
    saved: Vec<Saved>,
}

impl std::ops::Deref for Upgrade {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl Upgrade {
    fn start() -> Self {
        Self { w: World::start(), saved: Vec::new() }
    }

    fn data_dir(&self) -> PathBuf {
        self.w.berth.data_dir.clone()
    }

    /// Registers `family` running `script` in busybox sh (stopTimeout 2 s)
    /// and runs it with a tag.
    fn run(&self, family: &str, script: &str) -> String {
        let image = self.registry.reference("busybox:latest");
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512",
                   "containerDefinitions": [{"name": "main", "image": image, "command": ["sh", "-c", script],
                                             "stopTimeout": 2}]}),
        );
        let v = self.ecs(
            "RunTask",
            json!({"taskDefinition": family, "startedBy": "upgrade-test",
                   "tags": [{"key": "release", "value": "old"}],
                   "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}),
        );
        assert_eq!(v["failures"], json!([]), "{v}");
        v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
    }

    /// The task as DescribeTasks shows it, tags included: the wire JSON the
    /// old release kept in its rows.
    fn wire(&self, arn: &str) -> Value {
        let v = self.ecs("DescribeTasks", json!({"tasks": [arn], "include": ["TAGS"]}));
        assert_eq!(v["failures"], json!([]), "{v}");
        v["tasks"][0].clone()
    }

    /// The "upgrade": kills Berth (-9), rewrites the tasks `wire` (each as
    /// DescribeTasks showed it just before) into the old release's on-disk
    /// formats, and starts this release on the same data dir. If either
    /// step fails, the state is put back and Berth started on it, so that
    /// the teardown can stop the tasks; then the test fails.
    fn upgrade(&mut self, wire: &[Value]) {
        self.w.berth.kill9().unwrap();
        let data = self.data_dir();
        let made_old = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for t in wire {
                let saved = make_old(&data, t);
                self.saved.push(saved);
            }
        }));
        let started = made_old.is_ok().then(|| BerthProcess::start(bin(), &data, &[], &[]));
        match (made_old, started) {
            (Ok(()), Some(Ok(berth))) => self.w.berth = berth,
            (made_old, started) => {
                self.restore();
                if let Err(panic) = made_old {
                    std::panic::resume_unwind(panic);
                }
                panic!("this release does not start on the old release's state: {:#}", started.unwrap().err().unwrap());
            }
        }
    }

    /// Puts back the rows and manifests [`Self::upgrade`] replaced, and
    /// starts Berth on them (best effort: this runs on failures).
    fn restore(&mut self) {
        let _ = self.w.berth.kill9();
        let data = self.data_dir();
        for s in &self.saved {
            let _ = block_on(async {
                let mut db = open_db(&data).await?;
                sqlx::query("UPDATE tasks SET body = $1 WHERE task_arn = $2").bind(&s.body).bind(&s.arn).execute(&mut db).await?;
                db.close().await
            });
            if let Some((path, bytes)) = &s.manifest {
                let _ = std::fs::write(path, bytes);
            }
        }
        self.saved.clear();
        match BerthProcess::start(bin(), &data, &[], &[]) {
            Ok(berth) => self.w.berth = berth,
            Err(e) => eprintln!("restore: berth does not start even on the restored state: {e:#}"),
        }
    }
}

impl Drop for Upgrade {
    /// On a failure after the upgrade, a task whose old state this
    /// release cannot read (row or manifest) would outlive the test: its
    /// shim outlives Berth, and the teardown can only ask Berth to stop
    /// it. Unless each such task is STOPPED already, put back its current
    /// state, so that the teardown's StopTask works.
    fn drop(&mut self) {
        if !std::thread::panicking() || self.saved.is_empty() {
            return;
        }
        let stopped = self.saved.iter().all(|s| {
            self.w.berth.ecs("DescribeTasks", &json!({"tasks": [s.arn]})).is_ok_and(|(status, v)| {
                status == 200 && v["tasks"][0]["taskArn"] == s.arn.as_str() && v["tasks"][0]["lastStatus"] == "STOPPED"
            })
        });
        if !stopped {
            eprintln!("upgrade failed: restoring the tasks' current-format state so the teardown can stop them");
            self.restore();
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

async fn open_db(data: &Path) -> Result<sqlx::SqliteConnection, sqlx::Error> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("berth.db")).create_if_missing(false);
    sqlx::SqliteConnection::connect_with(&options).await
}

/// The task's row: its version column and its body.
fn row(data: &Path, arn: &str) -> (i64, Value) {
    block_on(async {
        let mut db = open_db(data).await.unwrap();
        let r = sqlx::query("SELECT version, body FROM tasks WHERE task_arn = $1").bind(arn).fetch_one(&mut db).await.unwrap();
        let (version, body): (i64, String) = (r.get(0), r.get(1));
        db.close().await.unwrap();
        (version, serde_json::from_str(&body).unwrap())
    })
}

/// Rewrites one task's state as the old release left it; returns what was
/// there. `wire` is the task as DescribeTasks showed it just before Berth
/// was killed.
fn make_old(data: &Path, wire: &Value) -> Saved {
    let arn = wire["taskArn"].as_str().unwrap().to_owned();
    let (version, current) = row(data, &arn);
    assert_eq!(current["formatVersion"], 1, "this release writes format 1: {current:#}");
    assert_eq!(json!(version), wire["version"], "the row was written after DescribeTasks: {current:#}");
    // Format 0: the wire task, and beside it what the wire shape lacks.
    let net = &current["network"];
    let old = json!({
        "task": wire,
        "node_id": current["nodeId"],
        "cpu": current["size"]["cpu"],
        "memory": current["size"]["memory"],
        "network_configuration": {"awsvpcConfiguration": {
            "subnets": net["subnets"],
            "securityGroups": net["securityGroups"],
            "assignPublicIp": if net["assignPublicIp"] == true { "ENABLED" } else { "DISABLED" },
        }},
    });
    assert!(old["node_id"].is_string() && old["cpu"] == 256 && old["memory"] == 512, "{current:#}");
    assert!(net["subnets"].is_array() && net["securityGroups"].is_array(), "{current:#}");
    let body = serde_json::to_string(&current).unwrap();
    block_on(async {
        let mut db = open_db(data).await.unwrap();
        let done = sqlx::query("UPDATE tasks SET body = $1 WHERE task_arn = $2")
            .bind(old.to_string())
            .bind(&arn)
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        db.close().await.unwrap();
    });
    // The shim's manifest, if the task still has a directory.
    let path = task_dir(data, &arn).join("task.json");
    let manifest = std::fs::read(&path).ok().map(|bytes| {
        let mut m: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m["formatVersion"], 1, "{m:#}");
        m.as_object_mut().unwrap().remove("formatVersion");
        std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        (path, bytes)
    });
    Saved { arn, body, manifest }
}

fn task_dir(data: &Path, arn: &str) -> PathBuf {
    data.join("runtime/tasks").join(task_id(arn))
}

/// A process by pid and start time (field 22 of /proc/PID/stat), so that
/// a restarted one (or a reused pid) does not compare equal.
fn process(pid: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    (fields[0] != "Z").then(|| (pid.to_owned(), fields[19].parse().unwrap()))
}

/// The task's shim and its container's init, as host processes.
fn processes(data: &Path, t: &Value) -> [(String, u64); 2] {
    let shim = std::fs::read_to_string(task_dir(data, t["taskArn"].as_str().unwrap()).join("shim.pid")).unwrap();
    let shim = shim.split_whitespace().next().unwrap().to_owned();
    // runtimeId is NAME-PID, PID the container's init on the host.
    let runtime_id = t["containers"][0]["runtimeId"].as_str().unwrap();
    let init = runtime_id.rsplit('-').next().unwrap();
    [process(&shim).expect("the shim runs"), process(init).expect("the container's process runs")]
}

/// What the task holds on the host: its netns file, host veth, cgroups and
/// task directory, those that exist.
fn held(data: &Path, arn: &str) -> Vec<PathBuf> {
    let id = task_id(arn);
    let id = id.as_str();
    let names = berth_net::TaskNames::for_task(id).unwrap();
    let mut paths = vec![names.netns_path.clone(), Path::new("/sys/class/net").join(&names.host_veth), task_dir(data, arn)];
    // Its cgroup: under every v1 hierarchy, or the v2 one.
    paths.push(Path::new("/sys/fs/cgroup/berth").join(id));
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().filter_map(Result::ok) {
        paths.push(hierarchy.path().join("berth").join(id));
    }
    paths.retain(|p| p.exists());
    paths
}

/// The task as DescribeTasks shows it, but for `version`, which counts
/// writes.
fn unversioned(t: &Value) -> Value {
    let mut t = t.clone();
    t.as_object_mut().unwrap().remove("version");
    t
}

#[test]
fn a_task_started_by_the_old_release_survives_the_upgrade() {
    if !can_run("a_task_started_by_the_old_release_survives_the_upgrade") {
        return;
    }
    let mut w = Upgrade::start();
    let data = w.data_dir();
    // SIGTERM is ignored: only the SIGKILL at stopTimeout (2 s) ends it.
    let arn = w.run("veteran", "trap '' TERM; while :; do sleep 1; done");
    w.wait_for(&arn, "RUNNING", Duration::from_secs(60));
    let before = w.wire(&arn);
    assert_eq!(before["tags"], json!([{"key": "release", "value": "old"}]), "{before:#}");
    let eni = before["attachments"][0].clone();
    assert_eq!(eni["status"], "ATTACHED", "{before:#}");
    let address = eni["details"].as_array().unwrap().iter().find(|d| d["name"] == "privateIPv4Address").unwrap()
        ["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let procs = processes(&data, &before);
    let holding = held(&data, &arn);
    let netns = berth_net::TaskNames::for_task(&task_id(&arn)).unwrap().netns_path;
    assert!(holding.contains(&netns) && holding.contains(&task_dir(&data, &arn)), "{holding:?}");
    assert!(holding.iter().any(|p| p.starts_with("/sys/fs/cgroup")), "the test sees the task's cgroup: {holding:?}");

    w.upgrade(std::slice::from_ref(&before));

    // The same task, untouched: the same address, ENI and containers, and
    // the same shim and container process (pid and start time).
    let after = w.wire(&arn);
    assert_eq!(after["lastStatus"], "RUNNING", "{after:#}");
    assert_eq!(unversioned(&after), unversioned(&before), "DescribeTasks shows the task as before the upgrade");
    assert_eq!(processes(&data, &after), procs, "its shim and container process were never restarted");
    let listed = w.ecs("ListTasks", json!({"desiredStatus": "RUNNING"}));
    assert!(listed["taskArns"].as_array().unwrap().contains(&json!(arn)), "{listed}");

    // A second task runs beside it, on an address of its own.
    let second = w.run("newcomer", "trap '' TERM; while :; do sleep 1; done");
    let t2 = w.wait_for(&second, "RUNNING", Duration::from_secs(60));
    let address2 = t2["attachments"][0]["details"].as_array().unwrap().iter().find(|d| d["name"] == "privateIPv4Address").unwrap()
        ["value"]
        .clone();
    assert!(address2.is_string() && address2 != address.as_str(), "the old task's address {address} was handed out again: {t2:#}");
    assert_eq!(w.describe(&arn)["lastStatus"], "RUNNING");

    // StopTask stops it the way its definition says: SIGKILL at stopTimeout.
    let asked = Instant::now();
    let v = w.ecs("StopTask", json!({"task": arn, "reason": "upgraded"}));
    assert_eq!(v["task"]["desiredStatus"], "STOPPED", "{v}");
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "stopped in {took:?}, stopTimeout is 2 s");
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    assert_eq!(t["stoppedReason"], "upgraded");
    assert_eq!(t["containers"][0]["exitCode"], 137, "SIGKILLed at stopTimeout: {t:#}");
    assert_eq!(t["attachments"][0]["id"], eni["id"]);

    // Its row is written in this release's format now.
    let (_, body) = row(&data, &arn);
    assert_eq!(body["formatVersion"], 1, "{body:#}");
    assert_eq!(body["status"], "STOPPED", "{body:#}");
    assert!(body.get("task").is_none(), "{body:#}");

    // And nothing of it is left on the host.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !held(&data, &arn).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(held(&data, &arn), Vec::<PathBuf>::new(), "left behind by the stopped task");
    for (pid, start) in &procs {
        assert_ne!(process(pid).as_ref().map(|p| p.1), Some(*start), "process {pid} still runs");
    }

    w.ecs("StopTask", json!({"task": second}));
    w.wait_for(&second, "STOPPED", Duration::from_secs(30));
}

#[test]
fn a_stopped_task_of_the_old_release_still_shows_after_the_upgrade() {
    if !can_run("a_stopped_task_of_the_old_release_still_shows_after_the_upgrade") {
        return;
    }
    let mut w = Upgrade::start();
    let arn = w.run("finished", "echo done; exit 3");
    w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    let before = w.wire(&arn);
    assert_eq!(before["containers"][0]["exitCode"], 3, "{before:#}");
    let listings = |w: &Upgrade| {
        ["RUNNING", "STOPPED"].map(|desired| w.ecs("ListTasks", json!({"desiredStatus": desired}))["taskArns"].clone())
    };
    let listed = listings(&w);
    assert!(listed.iter().any(|arns| arns.as_array().unwrap().contains(&json!(arn))), "{listed:?}");

    w.upgrade(std::slice::from_ref(&before));

    let after = w.wire(&arn);
    assert_eq!(unversioned(&after), unversioned(&before), "DescribeTasks shows the task as before the upgrade");
    assert_eq!(after["lastStatus"], "STOPPED");
    assert_eq!(after["containers"][0]["exitCode"], 3);
    assert_eq!(after["stopCode"], "EssentialContainerExited");
    assert_eq!(after["tags"], json!([{"key": "release", "value": "old"}]));
    assert_eq!(listings(&w), listed, "ListTasks lists it as before");
}
