//! RunTask, StopTask, DescribeTasks, ListTasks through the router, on a
//! real SQLite store with a registered node.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_model::node::{Node, NodeStatus};
use berth_store::{AccessKey, Store};
use berth_testinfra::sign::{Creds, sign};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const AKID: &str = "AKIDTASKTEST00000001";
const SECRET: &str = "task-test-secret";

struct Harness {
    api: Api,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// A store with one node of `cpu` units and `memory` MiB, none of it Spot.
async fn harness(cpu: u32, memory: u32) -> Harness {
    harness_with_spot(cpu, memory, 0, 0).await
}

/// A store with one node of `cpu` units and `memory` MiB, of which
/// `spot_cpu`/`spot_memory` are offered as FARGATE_SPOT capacity.
async fn harness_with_spot(cpu: u32, memory: u32, spot_cpu: u32, spot_memory: u32) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open store");
    let store = stores.records.clone();
    store
        .insert_access_key(&AccessKey { access_key_id: AKID.into(), secret_access_key: SECRET.into(), created_at: 0 })
        .await
        .expect("insert key");
    store
        .upsert_node(&Node {
            id: "node-1".into(),
            zone: "us-east-1a".into(),
            cpu,
            memory,
            status: NodeStatus::Active,
            spot_cpu,
            spot_memory,
            heartbeat_at: now_secs(),
        })
        .await
        .expect("register node");
    let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
    berth_api::ensure_network_defaults(store.as_ref(), "10.89.0.0/16").await.unwrap();
    Harness { api: Api::new(stores.clone(), ApiConfig::new(account)), store, _dir: dir }
}

async fn ecs(h: &Harness, op: &str, body: Value) -> (u16, Value) {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AmazonEC2ContainerServiceV20141113.{op}"))
        .body(body.to_string().into_bytes())
        .expect("request");
    let creds = Creds { access_key_id: AKID.into(), secret_access_key: SECRET.into() };
    sign(&mut req, &creds, "us-east-1", "ecs", SystemTime::now()).expect("sign");
    let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn register(h: &Harness, cpu: &str, memory: &str) {
    let td = json!({"family":"sleeper","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":cpu,"memory":memory,
        "containerDefinitions":[{"name":"main","image":"busybox","command":["sleep","1000"]}],
        "tags":[{"key":"team","value":"core"}]});
    let (s, v) = ecs(h, "RegisterTaskDefinition", td).await;
    assert_eq!(s, 200, "{v}");
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn net() -> Value {
    json!({"awsvpcConfiguration": {"subnets": ["subnet-default"]}})
}

#[tokio::test]
async fn run_places_tasks_and_reports_shortages_without_storing_them() {
    let h = harness(1024, 4096).await;
    register(&h, "256", "512").await;
    let (s, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper", "count": 6, "networkConfiguration": net(),
        "startedBy": "ci", "propagateTags": "TASK_DEFINITION"})).await;
    assert_eq!(s, 200, "{v}");
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "1024 CPU holds four 256-CPU tasks: {v}");
    assert_eq!(v["failures"], json!([{"reason": "RESOURCE:CPU"}, {"reason": "RESOURCE:CPU"}]));
    let t = &tasks[0];
    assert_eq!(t["lastStatus"], "PROVISIONING");
    assert_eq!(t["desiredStatus"], "RUNNING");
    assert_eq!(t["launchType"], "FARGATE");
    assert_eq!(t["availabilityZone"], "us-east-1a");
    assert_eq!(t["startedBy"], "ci");
    assert_eq!(t["group"], "family:sleeper");
    assert_eq!(t["tags"], json!([{"key": "team", "value": "core"}]), "tags propagated from the definition");
    assert!(t["taskArn"].as_str().unwrap().starts_with("arn:aws:ecs:us-east-1:123456789012:task/default/"));
    assert_eq!(t["containers"][0]["lastStatus"], "PENDING");

    let (_, v) = ecs(&h, "ListTasks", json!({})).await;
    assert_eq!(v["taskArns"].as_array().unwrap().len(), 4, "only placed tasks are stored: {v}");
    let nodes = h.store.list_nodes().await.unwrap();
    assert_eq!((nodes[0].cpu_used, nodes[0].memory_used), (1024, 2048));
}

#[tokio::test]
async fn memory_shortage_is_named() {
    let h = harness(4096, 1024).await;
    register(&h, "512", "2048").await;
    let (_, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper", "networkConfiguration": net()})).await;
    assert_eq!(v["failures"], json!([{"reason": "RESOURCE:MEMORY"}]), "{v}");
}

#[tokio::test]
async fn run_task_input_errors() {
    let h = harness(4096, 8192).await;
    register(&h, "256", "512").await;
    let cases = [
        (json!({"taskDefinition": "sleeper", "networkConfiguration": net(), "count": 11}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper"}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": net(), "launchType": "EC2"}), "InvalidParameterException"),
        (json!({"taskDefinition": "nope", "networkConfiguration": net()}), "ClientException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": net(), "cluster": "ghost"}), "ClusterNotFoundException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": net(),
            "overrides": {"containerOverrides": [{"name": "ghost", "command": ["true"]}]}}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": net(),
            "capacityProviderStrategy": [{"capacityProvider": "MY_ASG"}]}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": net(), "launchType": "FARGATE",
            "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default", "subnet-nope"]}}}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}}), "InvalidParameterException"),
        (json!({"taskDefinition": "sleeper", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"], "securityGroups": ["sg-nope"]}}}), "InvalidParameterException"),
    ];
    for (body, want) in cases {
        let (s, v) = ecs(&h, "RunTask", body.clone()).await;
        assert_eq!((s, v["__type"].as_str()), (400, Some(want)), "{body} → {v}");
    }
    let (_, v) = ecs(&h, "ListTasks", json!({})).await;
    assert_eq!(v["taskArns"], json!([]), "nothing was stored: {v}");
    let (_, v) = ecs(&h, "StartTask", json!({"taskDefinition": "sleeper", "containerInstances": ["x"]})).await;
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");

    ecs(&h, "DeregisterTaskDefinition", json!({"taskDefinition": "sleeper:1"})).await;
    let (_, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper:1", "networkConfiguration": net()})).await;
    assert_eq!(v["__type"], "ClientException", "an INACTIVE definition runs no new task: {v}");
}

#[tokio::test]
async fn stop_describe_and_list_filters() {
    let h = harness_with_spot(4096, 8192, 2048, 4096).await;
    register(&h, "256", "512").await;
    let (_, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper", "count": 3, "networkConfiguration": net(),
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]})).await;
    let arns: Vec<String> = v["tasks"].as_array().unwrap().iter().map(|t| t["taskArn"].as_str().unwrap().to_owned()).collect();
    assert_eq!(v["tasks"][0]["capacityProviderName"], "FARGATE_SPOT");
    let id = arns[0].parse::<berth_model::arn::TaskArn>().unwrap().id;
    let id = id.as_str();

    let (s, v) = ecs(&h, "StopTask", json!({"task": id, "reason": "done here"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["task"]["desiredStatus"], "STOPPED");
    assert_eq!(v["task"]["stopCode"], "UserInitiated");
    assert_eq!(v["task"]["stoppedReason"], "done here");

    let (_, v) = ecs(&h, "ListTasks", json!({})).await;
    assert_eq!(v["taskArns"].as_array().unwrap().len(), 2, "desiredStatus RUNNING by default: {v}");
    let (_, v) = ecs(&h, "ListTasks", json!({"desiredStatus": "STOPPED"})).await;
    assert_eq!(v["taskArns"], json!([arns[0]]));
    let (_, v) = ecs(&h, "ListTasks", json!({"desiredStatus": "PENDING"})).await;
    assert_eq!(v["taskArns"], json!([]), "no task is ever wanted PENDING, as ECS says");
    let (_, v) = ecs(&h, "ListTasks", json!({"family": "sleeper", "maxResults": 1})).await;
    assert_eq!(v["taskArns"].as_array().unwrap().len(), 1);
    let (_, v2) = ecs(&h, "ListTasks", json!({"family": "sleeper", "maxResults": 1, "nextToken": v["nextToken"]})).await;
    assert_ne!(v["taskArns"], v2["taskArns"]);
    let (_, v) = ecs(&h, "ListTasks", json!({"family": "other"})).await;
    assert_eq!(v["taskArns"], json!([]));
    let (_, v) = ecs(&h, "ListTasks", json!({"cluster": "ghost"})).await;
    assert_eq!(v["__type"], "ClusterNotFoundException");

    let (_, v) = ecs(&h, "DescribeTasks", json!({"tasks": [arns[1], "0000000000000000000000000000dead"], "include": ["TAGS"]})).await;
    assert_eq!(v["tasks"][0]["taskArn"], arns[1].as_str());
    assert_eq!(v["failures"][0]["reason"], "MISSING");
    let (_, v) = ecs(&h, "StopTask", json!({"task": "0000000000000000000000000000dead"})).await;
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");
    let (_, v) = ecs(&h, "DescribeTasks", json!({"tasks": []})).await;
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");

    // A cluster with live tasks cannot be deleted.
    let (_, v) = ecs(&h, "DeleteCluster", json!({"cluster": "default"})).await;
    assert_eq!(v["__type"], "ClusterContainsTasksException", "{v}");
}

#[tokio::test]
async fn a_node_whose_agent_went_quiet_takes_no_tasks() {
    let h = harness(4096, 8192).await;
    register(&h, "256", "512").await;
    let mut node = h.store.get_node("node-1").await.unwrap().unwrap();
    node.heartbeat_at = now_secs() - 120;
    h.store.upsert_node(&node).await.unwrap();
    let (_, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper", "networkConfiguration": net()})).await;
    assert_eq!(v["tasks"], json!([]), "{v}");
    assert_eq!(v["failures"], json!([{"reason": "RESOURCE:CPU"}]), "{v}");
}

#[tokio::test]
async fn awsvpc_names_berth_subnets_and_groups_and_shows_the_eni_attachment() {
    let h = harness(4096, 8192).await;
    register(&h, "256", "512").await;
    let (s, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-nope"]}}})).await;
    assert_eq!(s, 400);
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("The subnet ID 'subnet-nope' does not exist"), "names the unknown id: {msg}");
    let (_, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"], "securityGroups": ["sg-web"]}}})).await;
    assert!(v["message"].as_str().unwrap().contains("'sg-web' does not exist"), "{v}");

    let (s, v) = ecs(&h, "RunTask", json!({"taskDefinition": "sleeper", "networkConfiguration": net()})).await;
    assert_eq!(s, 200, "{v}");
    let att = &v["tasks"][0]["attachments"][0];
    assert_eq!(att["type"], "ElasticNetworkInterface");
    assert_eq!(att["status"], "PRECREATED");
    assert_eq!(att["details"], json!([{"name": "subnetId", "value": "subnet-default"}]));
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap();
    let stored = h.store.get_task(arn).await.unwrap().unwrap().value;
    let groups = stored.network.expect("an awsvpc task keeps its network").security_groups;
    assert_eq!(groups, vec!["sg-default".to_owned()], "the default group when none is given");
}
