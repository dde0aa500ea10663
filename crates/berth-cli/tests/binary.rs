//! The real `berth` binary: start-up, data dir lock, shutdown, crash
//! safety, and the PostgreSQL store, driven with signed requests.

use std::path::Path;

use berth_testinfra::server::BerthProcess;
use serde_json::json;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

#[test]
fn up_prints_endpoint_and_writes_private_credentials_and_config() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let b = BerthProcess::start(bin(), &data, &[], &[]).unwrap();
    assert!(b.endpoint.starts_with("http://127.0.0.1:"), "{}", b.banner);
    assert!(b.banner.contains(&data.join("credentials").display().to_string()), "{}", b.banner);
    for f in ["credentials", "config"] {
        let mode = std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} must be private");
    }
    let config = std::fs::read_to_string(data.join("config")).unwrap();
    assert!(config.contains(&format!("endpoint_url = {}", b.endpoint)), "{config}");
    assert!(config.contains("region = us-east-1"), "{config}");
    assert!(config.contains("disable_host_prefix_injection = true"), "one endpoint for every operation: {config}");
    let creds = b.creds().unwrap();
    assert!(!b.banner.contains(&creds.secret_access_key), "the secret is never printed");
    let (status, v) = b.ecs("ListClusters", &json!({})).unwrap();
    assert_eq!(status, 200, "{v}");
}

#[test]
fn second_up_on_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = BerthProcess::start(bin(), &data, &[], &[]).unwrap();
    let out = std::process::Command::new(bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another berth"), "{err}");
    assert!(err.contains(&first.pid().to_string()), "names the holder: {err}");
    let (status, _) = first.ecs("ListClusters", &json!({})).unwrap();
    assert_eq!(status, 200, "the first server is unharmed");
}

#[test]
fn sigterm_exits_cleanly_and_frees_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = BerthProcess::start(bin(), &data, &[], &[]).unwrap();
    let status = b.terminate().unwrap();
    assert!(status.success(), "{status}");
    BerthProcess::start(bin(), &data, &[], &[]).expect("the lock is free after a clean stop");
}

#[test]
fn state_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = BerthProcess::start(bin(), &data, &[], &[]).unwrap();
    let creds = b.creds().unwrap();
    b.ecs("CreateCluster", &json!({"clusterName": "survivor"})).unwrap();
    for _ in 0..3 {
        let (s, v) = b.ecs("RegisterTaskDefinition", &seed()).unwrap();
        assert_eq!(s, 200, "{v}");
    }
    b.kill9().unwrap();
    let b = BerthProcess::start(bin(), &data, &[], &[]).unwrap();
    assert_eq!(b.creds().unwrap().secret_access_key, creds.secret_access_key, "the key is kept");
    let (_, v) = b.ecs("DescribeClusters", &json!({"clusters": ["survivor"]})).unwrap();
    assert_eq!(v["clusters"][0]["status"], "ACTIVE", "{v}");
    let (_, v) = b.ecs("RegisterTaskDefinition", &seed()).unwrap();
    assert_eq!(v["taskDefinition"]["revision"], 4, "{v}");
}

#[test]
fn env_chooses_the_first_key_and_bad_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let b = BerthProcess::start(
        bin(),
        &data,
        &["--region", "eu-central-1", "--account-id", "111122223333"],
        &[("BERTH_ACCESS_KEY_ID", "AKIDFROMENV00000001"), ("BERTH_SECRET_ACCESS_KEY", "from-env-secret")],
    )
    .unwrap();
    assert_eq!(b.creds().unwrap().access_key_id, "AKIDFROMENV00000001");
    let creds = b.creds().unwrap();
    let (s, v) = berth_testinfra::server::call(
        &b.endpoint,
        "AmazonEC2ContainerServiceV20141113.CreateCluster",
        br#"{"clusterName":"eu"}"#,
        Some((&creds, "eu-central-1", "ecs")),
    )
    .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["cluster"]["clusterArn"], "arn:aws:ecs:eu-central-1:111122223333:cluster/eu");

    let out = std::process::Command::new(bin())
        .args(["up", "--account-id", "12ab", "--data-dir"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 digits"));
}

#[test]
fn postgres_store_serves_the_api_and_survives_restart() {
    let pg = berth_testinfra::postgres::TempPostgres::start().unwrap();
    let url = pg.create_database("berth_binary").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = BerthProcess::start(bin(), &data, &["--store", &url], &[]).unwrap();
    assert!(b.banner.contains("postgres://"), "{}", b.banner);
    let (s, v) = b.ecs("RegisterTaskDefinition", &seed()).unwrap();
    assert_eq!(s, 200, "{v}");
    b.kill9().unwrap();
    let b = BerthProcess::start(bin(), &data, &["--store", &url], &[]).unwrap();
    let (_, v) = b.ecs("DescribeTaskDefinition", &json!({"taskDefinition": "api-service"})).unwrap();
    assert_eq!(v["taskDefinition"]["revision"], 1, "{v}");
    assert!(!data.join("berth.db").exists(), "no SQLite file when the store is PostgreSQL");
}

fn seed() -> serde_json::Value {
    json!({"family":"api-service","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"512","memory":"1024",
      "containerDefinitions":[{"name":"api","image":"123456789.dkr.ecr.us-east-1.amazonaws.com/api:latest",
        "portMappings":[{"containerPort":8080}]}]})
}

/// `berth up` on a store file it must not use: fails at once (no pool
/// timeouts), the last line naming the file and what to do, and nothing
/// new is made (no new root key beside an empty store).
#[test]
fn up_refuses_an_empty_or_damaged_store_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, needle) in [
        ("empty", Vec::new(), "is empty (0 bytes)"),
        ("damaged", [b"SQLite format 3\0".as_slice(), &[0xA5; 8176]].concat(), "cannot be read as an SQLite database"),
    ] {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let db = data.join("berth.db");
        std::fs::write(&db, &bytes).unwrap();
        let started = std::time::Instant::now();
        let out = std::process::Command::new(bin())
            .args(["up", "--no-agent", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{name}: took {:?}", started.elapsed());
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.trim_end().lines().last().unwrap_or_default();
        assert!(last.contains(&db.display().to_string()) && last.contains(needle), "{name}: {err}");
        assert!(!data.join("credentials").exists(), "{name}: no new root key was made");
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "{name}: the file is left as it was");
    }
}

/// A second server on the same database, from another data dir, is
/// refused: the lock is the store's, not only the data dir's.
#[test]
fn second_up_on_the_same_store_from_another_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = BerthProcess::start(bin(), &data, &["--no-agent"], &[]).unwrap();
    let store = format!("sqlite://{}", data.join("berth.db").display());
    let out = std::process::Command::new(bin())
        .args(["up", "--no-agent", "--listen", "127.0.0.1:0", "--store", &store, "--data-dir"])
        .arg(dir.path().join("other"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another berth"), "{err}");
    assert!(err.contains(&format!("pid {}", first.pid())), "names the holder: {err}");
    let (status, _) = first.ecs("ListClusters", &json!({})).unwrap();
    assert_eq!(status, 200, "the first server is unharmed");
}

/// The client subcommands read the exported AWS files and profile as the
/// aws CLI does, before the data dir's.
#[test]
fn client_subcommands_honour_aws_config_file_and_profile() {
    let dir = tempfile::tempdir().unwrap();
    let b = BerthProcess::start(bin(), &dir.path().join("data"), &[], &[]).unwrap();
    let creds = b.creds().unwrap();
    let (config, credentials) = (dir.path().join("aws-config"), dir.path().join("aws-credentials"));
    std::fs::write(&config, format!("[default]\nregion = eu-west-3\n[profile berth]\nregion = us-east-1\nendpoint_url = {}\n", b.endpoint))
        .unwrap();
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n[berth]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        ),
    )
    .unwrap();
    let empty = dir.path().join("no-data-dir");
    let whoami = |envs: &[(&str, &std::ffi::OsStr)]| {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(["iam", "whoami", "--data-dir"]).arg(&empty);
        for var in ["BERTH_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"] {
            cmd.env_remove(var);
        }
        cmd.envs(envs.iter().copied()).output().unwrap()
    };
    let files = [("AWS_CONFIG_FILE", config.as_os_str()), ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_os_str())];
    let out = whoami(&[files[0], files[1], ("AWS_PROFILE", "berth".as_ref())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("arn:aws:iam::000000000000:root"), "{stdout}");
    // Without the profile: the default one, which names no endpoint here.
    let out = whoami(&files);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Berth endpoint"), "{}", String::from_utf8_lossy(&out.stderr));
}
