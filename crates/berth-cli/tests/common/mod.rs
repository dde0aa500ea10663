//! What the CLI's integration tests share: the binary, the skip rule, and
//! a Berth with a loopback registry holding busybox. Each test file adds
//! its own helpers in an `impl World` of its own.

#![allow(dead_code)] // each test binary uses a part of it

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testinfra::registry::{ImageSpec, LayerBuilder, OciLayout, Registry, registry_tools_available};
use berth_testinfra::server::BerthProcess;
use serde_json::{Value, json};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// Root and the registry tools, or a loud skip (CI fails on one: see CI=true).
pub fn can_run(test: &str) -> bool {
    let ok = nix::unistd::geteuid().is_root() && registry_tools_available(true);
    if !ok {
        eprintln!("SKIPPED: {test}: needs root, runc, docker-registry, skopeo and busybox-static");
        assert!(std::env::var_os("CI").is_none(), "{test} must run in CI");
    }
    ok
}

/// A `berth up` on a fresh data dir, and a registry with `busybox:latest`.
pub struct World {
    pub registry: Registry,
    pub berth: BerthProcess,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `berth up` arguments.
    pub fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start().unwrap();
        let layer = LayerBuilder::new().busybox().unwrap().build();
        let mut layout = OciLayout::create(&dir.path().join("layout")).unwrap();
        layout.add_image(Some("latest"), &[layer], &ImageSpec::default()).unwrap();
        registry.push(&layout, "latest", "busybox:latest").unwrap();
        let berth = BerthProcess::start(bin(), &dir.path().join("data"), args, &[]).unwrap();
        Self { registry, berth, dir }
    }

    pub fn restart_after_kill9(&mut self) {
        self.berth.kill9().unwrap();
        self.berth = BerthProcess::start(bin(), &self.dir.path().join("data"), &[], &[]).unwrap();
    }

    /// An ECS call that must succeed.
    pub fn ecs(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.berth.ecs(op, &body).unwrap();
        assert_eq!(status, 200, "{op} {body} → {v}");
        v
    }

    /// A Berth operator call that must succeed.
    pub fn operator(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.berth.operator(op, &body).unwrap();
        assert_eq!(status, 200, "{op} {body} → {v}");
        v
    }

    pub fn describe(&self, arn: &str) -> Value {
        self.ecs("DescribeTasks", json!({"tasks": [arn]}))["tasks"][0].clone()
    }

    /// Polls until the task's lastStatus is `status`.
    pub fn wait_for(&self, arn: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let t = self.describe(arn);
            if t["lastStatus"] == status {
                return t;
            }
            assert!(Instant::now() < deadline, "task not {status} within {within:?}: {t:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for World {
    /// Stops every task of this Berth and waits (bounded) until they are
    /// STOPPED, so a failing test leaves no container, mount or cgroup.
    fn drop(&mut self) {
        let list = |desired: &str| -> Vec<String> {
            self.berth
                .ecs("ListTasks", &json!({"desiredStatus": desired}))
                .ok()
                .and_then(|(_, v)| v["taskArns"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        };
        for arn in list("RUNNING") {
            let _ = self.berth.ecs("StopTask", &json!({"task": arn, "reason": "test teardown"}));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let live = list("STOPPED").into_iter().any(|arn| {
                self.berth
                    .ecs("DescribeTasks", &json!({"tasks": [arn]}))
                    .is_ok_and(|(_, v)| v["tasks"][0]["lastStatus"] != "STOPPED")
            });
            if !live {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("teardown: tasks still not STOPPED after 60 s");
    }
}

/// The id of the task an ARN names.
pub fn task_id(arn: &str) -> String {
    arn.parse::<berth_model::arn::TaskArn>().expect("a task ARN").id
}
