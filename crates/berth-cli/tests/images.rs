//! `berth image pull|ls|rm|import|load` through the real binary against a
//! real `berth up` and a real registry (Debian's docker-registry) on
//! loopback. Needs root (berth up runs the node agent).

use std::process::Command;
use std::time::{Duration, Instant};

use berth_testinfra::registry::{
    ImageSpec, LayerBuilder, OciLayout, Registry, busybox_rootfs,
};
use berth_testinfra::server::BerthProcess;
use serde_json::{Value, json};

mod common;
use common::{bin, can_run};

/// Runs `berth image ARGS --output json` against `berth`; (success, stdout JSON or stderr).
fn image(berth: &BerthProcess, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(bin())
        .arg("image")
        .args(args)
        .args(["--output", "json", "--data-dir"])
        .arg(&berth.data_dir)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("BERTH_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr,
    )
}

fn ok(berth: &BerthProcess, args: &[&str]) -> Value {
    let (success, v, stderr) = image(berth, args);
    assert!(success, "berth image {args:?} failed: {stderr}");
    v
}

fn references(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn pull_list_import_load_and_remove_through_the_cli() {
    if !can_run("pull_list_import_load_and_remove_through_the_cli") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start().unwrap();
    let mut layout = OciLayout::create(&dir.path().join("layout")).unwrap();
    layout
        .add_image(
            Some("latest"),
            &[LayerBuilder::new().busybox().unwrap().build()],
            &ImageSpec::default(),
        )
        .unwrap();
    registry.push(&layout, "latest", "busybox:latest").unwrap();
    let berth = BerthProcess::start(bin(), &dir.path().join("data"), &[], &[]).unwrap();
    let busybox = registry.reference("busybox:latest");

    // pull
    let v = ok(&berth, &["pull", &busybox]);
    assert_eq!(references(&v), [busybox.clone()]);
    assert_eq!(v["images"][0]["source"], "registry");
    assert!(
        v["images"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{v}"
    );
    // A missing image is a clear error, not a crash.
    let (success, _, stderr) = image(&berth, &["pull", &registry.reference("nope:latest")]);
    assert!(
        !success && stderr.contains("ImageNotFoundException") && stderr.contains("nope"),
        "{stderr}"
    );

    // import a directory and a tarball of a root filesystem
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello.txt"), "imported\n").unwrap();
    let v = ok(
        &berth,
        &["import", rootfs.to_str().unwrap(), "--name", "local/app:1"],
    );
    assert_eq!(v["images"][0]["source"], "import", "{v}");
    let imported = v["images"][0]["reference"].as_str().unwrap().to_owned();
    assert!(imported.ends_with("local/app:1"), "{imported}");

    // load an OCI layout directory
    let v = ok(
        &berth,
        &[
            "load",
            dir.path().join("layout").to_str().unwrap(),
            "--name",
            "loaded/busybox",
        ],
    );
    assert_eq!(v["images"][0]["source"], "load", "{v}");
    let loaded = v["images"][0]["reference"].as_str().unwrap().to_owned();

    let v = ok(&berth, &["ls"]);
    let mut listed = references(&v);
    listed.sort();
    let mut want = vec![busybox.clone(), imported.clone(), loaded.clone()];
    want.sort();
    assert_eq!(listed, want);

    // The imported image runs: a task reads the file it carries.
    let (status, _) = berth
        .ecs(
            "RegisterTaskDefinition",
            &json!({"family": "imported", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                    "cpu": "256", "memory": "512",
                    "containerDefinitions": [{"name": "main", "image": "local/app:1", "stopTimeout": 2,
                                              "command": ["sh", "-c", "grep -q imported /hello.txt && sleep 1000"]}]}),
        )
        .unwrap();
    assert_eq!(status, 200);
    let (_, v) = berth
        .ecs("RunTask", &json!({"taskDefinition": "imported", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}))
        .unwrap();
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = berth
            .ecs("DescribeTasks", &json!({"tasks": [arn]}))
            .unwrap();
        let t = &v["tasks"][0];
        assert_ne!(
            t["lastStatus"], "STOPPED",
            "the imported image should run: {t:#}"
        );
        if t["lastStatus"] == "RUNNING" {
            break;
        }
        assert!(Instant::now() < deadline, "{t:#}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // rm is refused while the task runs from the image, and works after.
    let (success, _, stderr) = image(&berth, &["rm", "local/app:1"]);
    assert!(
        !success && stderr.contains("ImageInUseException"),
        "{stderr}"
    );
    berth.ecs("StopTask", &json!({"task": arn})).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while berth
        .ecs("DescribeTasks", &json!({"tasks": [arn]}))
        .unwrap()
        .1["tasks"][0]["lastStatus"]
        != "STOPPED"
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = ok(&berth, &["rm", "local/app:1"]);
    assert!(
        v["bytesFreed"].as_u64().unwrap() > 0,
        "its own layer is freed: {v}"
    );
    let v = ok(&berth, &["ls"]);
    assert!(!references(&v).contains(&imported), "{v}");
    let (success, _, stderr) = image(&berth, &["rm", "local/app:1"]);
    assert!(
        !success && stderr.contains("ImageNotFoundException"),
        "{stderr}"
    );
}

#[test]
fn wrong_credentials_are_refused() {
    if !can_run("wrong_credentials_are_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let berth = BerthProcess::start(bin(), &dir.path().join("data"), &[], &[]).unwrap();
    let out = Command::new(bin())
        .args(["image", "ls", "--endpoint", &berth.endpoint, "--data-dir"])
        .arg(dir.path().join("elsewhere"))
        .env("AWS_ACCESS_KEY_ID", "AKIDNOTBERTHS")
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("UnrecognizedClientException"),
        "{stderr}"
    );
}
