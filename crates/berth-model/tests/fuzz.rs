//! Fuzzing RegisterTaskDefinition's validator with proptest: a valid
//! Fargate definition with one member (of the task or of a container)
//! replaced by random JSON, and definitions built wholly from the
//! container definition's member names with random values. Whatever
//! serde reads into the request goes through `validate` and, when it
//! passes, `build`: an `Ok` or a `ModelError` with an ECS exception type
//! and a message, never a panic.
//!
//! Bounded by default (2048 cases each, under a second); `PROPTEST_CASES`
//! raises it.

use berth_model::Account;
use berth_model::task_definition::{build, validate, validate_size};
use berth_wire::ecs::RegisterTaskDefinitionRequest;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn config(default_cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    c
}

const TASK_MEMBERS: &[&str] = &[
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes", "placementConstraints",
    "requiresCompatibilities", "cpu", "memory", "tags", "pidMode", "ipcMode", "proxyConfiguration", "inferenceAccelerators",
    "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
];

const CONTAINER_MEMBERS: &[&str] = &[
    "name", "image", "repositoryCredentials", "cpu", "memory", "memoryReservation", "links", "portMappings", "essential",
    "restartPolicy", "entryPoint", "command", "environment", "environmentFiles", "mountPoints", "volumesFrom",
    "linuxParameters", "secrets", "dependsOn", "startTimeout", "stopTimeout", "versionConsistency", "hostname", "user",
    "workingDirectory", "disableNetworking", "privileged", "readonlyRootFilesystem", "dnsServers", "dnsSearchDomains",
    "extraHosts", "dockerSecurityOptions", "interactive", "pseudoTerminal", "dockerLabels", "ulimits", "logConfiguration",
    "healthCheck", "systemControls", "resourceRequirements", "firelensConfiguration", "credentialSpecs",
];

/// Names nested members use (port mappings, health checks, Linux
/// parameters, log configuration, volumes, dependencies …).
const NESTED_MEMBERS: &[&str] = &[
    "containerPort", "hostPort", "protocol", "appProtocol", "containerPortRange", "command", "interval", "timeout",
    "retries", "startPeriod", "capabilities", "add", "drop", "devices", "initProcessEnabled", "sharedMemorySize", "tmpfs",
    "maxSwap", "swappiness", "logDriver", "options", "secretOptions", "sourceVolume", "containerPath", "readOnly",
    "condition", "containerName", "name", "value", "valueFrom", "softLimit", "hardLimit", "namespace", "type", "host",
    "sourcePath", "efsVolumeConfiguration", "fileSystemId", "rootDirectory", "sizeInGiB", "restartAttemptPeriod",
    "ignoredExitCodes", "enabled", "cpuArchitecture", "operatingSystemFamily", "awslogs-group", "awslogs-region",
];

const TEXTS: &[&str] = &[
    "", "0", "-1", "256", "512", "1024", "4096", "16384", "120000", "0.25 vCPU", "1 GB", "2GB", "99999999999999999999", "FARGATE",
    "EC2", "awsvpc", "bridge", "host", "none", "tcp", "udp", "http2", "START", "COMPLETE", "SUCCESS", "HEALTHY", "CMD-SHELL",
    "awslogs", "nginx", "web", "a:b", "../x", "/", "é", "\u{0}", "task", "ALL", "SYS_ADMIN", "X86_64", "ARM64", "LINUX",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        (-2i64..70000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(TEXTS).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn nested() -> impl Strategy<Value = Value> {
    let names = || proptest::sample::select([NESTED_MEMBERS, CONTAINER_MEMBERS].concat());
    scalar().prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((names(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn container() -> impl Strategy<Value = Value> {
    proptest::collection::vec((proptest::sample::select(CONTAINER_MEMBERS), nested()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn valid() -> Value {
    json!({
        "family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{
            "name": "app", "image": "nginx", "essential": true, "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 30},
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1"}},
            "dependsOn": [{"containerName": "side", "condition": "START"}]
        }, {"name": "side", "image": "busybox", "essential": false}]
    })
}

fn exercise(value: &Value) {
    let text = value.to_string();
    let _ = validate_size(text.len());
    let Ok(req) = serde_json::from_str::<RegisterTaskDefinitionRequest>(&text) else { return };
    match validate(&req) {
        Ok(()) => {
            let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
            let _ = build(&account, req, 1, 1.7e9, None);
        }
        Err(e) => {
            assert!(matches!(e.aws_type(), "ClientException" | "InvalidParameterException"), "{e:?}");
            assert!(!e.to_string().is_empty(), "{e:?}: an empty message");
        }
    }
}

#[test]
fn the_valid_base_passes() {
    let req: RegisterTaskDefinitionRequest = serde_json::from_value(valid()).expect("the base reads");
    validate(&req).expect("the base is valid");
}

proptest! {
    // Cheap cases, and about one in ten random values reads as a request
    // (serde refuses the rest): more cases than the other fuzz tests.
    #![proptest_config(config(2048))]

    /// One task member replaced by random JSON.
    #[test]
    fn one_task_member_wrong(which in proptest::sample::select(TASK_MEMBERS), value in nested()) {
        let mut doc = valid();
        doc[which] = value;
        exercise(&doc);
    }

    /// One container member replaced by random JSON.
    #[test]
    fn one_container_member_wrong(which in proptest::sample::select(CONTAINER_MEMBERS), value in nested(), second in any::<bool>()) {
        let mut doc = valid();
        doc["containerDefinitions"][usize::from(second)][which] = value;
        exercise(&doc);
    }

    /// Whole containers from random members, with the task's own members
    /// random too.
    #[test]
    fn random_containers(containers in proptest::collection::vec(container(), 0..4),
                         task in proptest::collection::vec((proptest::sample::select(TASK_MEMBERS), nested()), 0..4)) {
        let mut doc = valid();
        doc["containerDefinitions"] = Value::Array(containers);
        for (k, v) in task {
            if k != "containerDefinitions" {
                doc[k] = v;
            }
        }
        exercise(&doc);
    }

    /// Port numbers, sizes and limits at and past their bounds.
    #[test]
    fn numbers_at_the_edges(port in any::<i32>(), host in any::<i32>(), cpu in any::<i32>(), mem in any::<i32>(),
                            reservation in any::<i32>(), timeout in any::<i32>(), retries in any::<i32>(), shm in any::<i32>(),
                            range in "[0-9-]{0,12}", task_cpu in prop_oneof![proptest::sample::select(TEXTS).prop_map(str::to_owned), ".{0,8}"]) {
        let mut doc = valid();
        doc["cpu"] = json!(task_cpu);
        let c = &mut doc["containerDefinitions"][0];
        c["portMappings"] = json!([{"containerPort": port, "hostPort": host}, {"containerPortRange": range, "protocol": "udp"}]);
        c["cpu"] = json!(cpu);
        c["memory"] = json!(mem);
        c["memoryReservation"] = json!(reservation);
        c["stopTimeout"] = json!(timeout);
        c["startTimeout"] = json!(timeout);
        c["healthCheck"] = json!({"command": ["CMD", "x"], "retries": retries, "timeout": timeout, "interval": timeout, "startPeriod": timeout});
        c["linuxParameters"] = json!({"sharedMemorySize": shm, "maxSwap": shm, "swappiness": retries, "tmpfs": [{"containerPath": "/t", "size": shm}]});
        exercise(&doc);
    }
}
