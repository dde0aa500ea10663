//! API tests through the router (`oneshot`), on a real SQLite store, with
//! requests signed by AWS's own SigV4 implementation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_model::lifecycle::{TaskEvent, TaskStatus};
use berth_store::{AccessKey, Store};
use berth_testinfra::sign::{Creds, sign};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const AKID: &str = "AKIDROUTERTEST000001";
const SECRET: &str = "router-test-secret";

struct Harness {
    api: Api,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open store");
    let store = stores.records.clone();
    store
        .insert_access_key(&AccessKey { access_key_id: AKID.into(), secret_access_key: SECRET.into(), created_at: 0 })
        .await
        .expect("insert key");
    let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
    Harness { api: Api::new(stores.clone(), ApiConfig::new(account)), store, _dir: dir }
}

fn request(op: &str, body: &[u8], signed: Option<(&str, SystemTime)>) -> http::Request<Vec<u8>> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AmazonEC2ContainerServiceV20141113.{op}"))
        .body(body.to_vec())
        .expect("request");
    if let Some((secret, at)) = signed {
        let creds = Creds { access_key_id: AKID.into(), secret_access_key: secret.into() };
        sign(&mut req, &creds, "us-east-1", "ecs", at).expect("sign");
    }
    req
}

async fn send(h: &Harness, req: http::Request<Vec<u8>>) -> (u16, Value) {
    let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
    (status, v)
}

async fn ecs(h: &Harness, op: &str, body: Value) -> (u16, Value) {
    send(h, request(op, body.to_string().as_bytes(), Some((SECRET, SystemTime::now())))).await
}

fn seed() -> Value {
    json!({"family":"api-service","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"512","memory":"1024",
      "containerDefinitions":[{"name":"api","image":"123456789.dkr.ecr.us-east-1.amazonaws.com/api:latest",
        "portMappings":[{"containerPort":8080}],
        "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/api-service","awslogs-region":"us-east-1","awslogs-stream-prefix":"ecs"}}}]})
}

#[tokio::test]
async fn create_and_list_clusters_with_pages() {
    let h = harness().await;
    for name in ["b", "a", "c"] {
        let (s, v) = ecs(&h, "CreateCluster", json!({"clusterName": name})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["cluster"]["clusterArn"], format!("arn:aws:ecs:us-east-1:123456789012:cluster/{name}"));
    }
    let (_, p1) = ecs(&h, "ListClusters", json!({"maxResults": 2})).await;
    assert_eq!(p1["clusterArns"].as_array().unwrap().len(), 2);
    let token = p1["nextToken"].as_str().expect("a second page exists");
    let (_, p2) = ecs(&h, "ListClusters", json!({"maxResults": 2, "nextToken": token})).await;
    assert_eq!(p2["clusterArns"].as_array().unwrap().len(), 1);
    assert!(p2.get("nextToken").is_none(), "{p2}");
}

#[tokio::test]
async fn register_describe_and_errors_in_ecs_shape() {
    let h = harness().await;
    let (s, v) = ecs(&h, "RegisterTaskDefinition", seed()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["taskDefinition"]["revision"], 1);
    assert_eq!(v["taskDefinition"]["taskDefinitionArn"], "arn:aws:ecs:us-east-1:123456789012:task-definition/api-service:1");

    let mut bad = seed();
    bad["memory"] = json!("4096");
    bad["cpu"] = json!("256");
    let (s, v) = ecs(&h, "RegisterTaskDefinition", bad).await;
    assert_eq!(s, 400);
    assert_eq!(v["__type"], "ClientException", "{v}");

    let (s, v) = ecs(&h, "DescribeTaskDefinition", json!({"taskDefinition": "api-service"})).await;
    assert_eq!(s, 200);
    assert_eq!(v["taskDefinition"]["status"], "ACTIVE");
}

#[tokio::test]
async fn authentication_failures_change_nothing() {
    let h = harness().await;
    let body = json!({"clusterName": "x"}).to_string();
    let (_, v) = send(&h, request("CreateCluster", body.as_bytes(), None)).await;
    assert_eq!(v["__type"], "MissingAuthenticationTokenException", "{v}");
    let (_, v) = send(&h, request("CreateCluster", body.as_bytes(), Some(("wrong", SystemTime::now())))).await;
    assert_eq!(v["__type"], "InvalidSignatureException", "{v}");
    let stale = SystemTime::now() - Duration::from_secs(16 * 60);
    let (_, v) = send(&h, request("CreateCluster", body.as_bytes(), Some((SECRET, stale)))).await;
    assert_eq!(v["__type"], "InvalidSignatureException", "{v}");
    let future = SystemTime::now() + Duration::from_secs(16 * 60);
    let (_, v) = send(&h, request("CreateCluster", body.as_bytes(), Some((SECRET, future)))).await;
    assert_eq!(v["__type"], "InvalidSignatureException", "{v}");
    assert!(h.store.get_cluster("x").await.unwrap().is_none(), "no unauthenticated write happened");
}

#[tokio::test]
async fn malformed_bodies_are_aws_errors() {
    let h = harness().await;
    let (s, v) = send(&h, request("CreateCluster", b"{nope", Some((SECRET, SystemTime::now())))).await;
    assert_eq!((s, v["__type"].as_str()), (400, Some("SerializationException")), "{v}");
    let (s, v) = ecs(&h, "ListClusters", json!({"maxResults": "ten"})).await;
    assert_eq!((s, v["__type"].as_str()), (400, Some("SerializationException")), "{v}");
    let (s, v) = ecs(&h, "DescribeTaskDefinition", json!({})).await;
    assert_eq!((s, v["__type"].as_str()), (400, Some("InvalidParameterException")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("taskDefinition"), "{v}");
    let (s, v) = ecs(&h, "NoSuchOperation", json!({})).await;
    assert_eq!((s, v["__type"].as_str()), (400, Some("UnknownOperationException")), "{v}");
    // an empty body is an empty request
    let (s, v) = send(&h, request("ListClusters", b"", Some((SECRET, SystemTime::now())))).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn delete_cluster_is_refused_while_tasks_or_services_live() {
    let h = harness().await;
    ecs(&h, "CreateCluster", json!({"clusterName": "busy"})).await;
    let cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/busy";
    let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
    let definition = berth_wire::ecs::TaskDefinition {
        task_definition_arn: Some(account.task_definition_arn("web", 1)),
        family: Some("web".into()),
        revision: Some(1),
        cpu: Some("256".into()),
        memory: Some("512".into()),
        ..Default::default()
    };
    let mut task = berth_model::task::build(berth_model::task::NewTask::plain(&account, "busy", "abc", &definition, 1.0))
        .expect("build task");
    assert_eq!(task.cluster_arn().to_string(), cluster_arn);
    task.apply_all(&[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated]).unwrap();
    assert_eq!(task.status(), TaskStatus::Running);
    let stored = h.store.put_task(&task, None).await.unwrap();
    let (s, v) = ecs(&h, "DeleteCluster", json!({"cluster": "busy"})).await;
    assert_eq!((s, v["__type"].as_str()), (400, Some("ClusterContainsTasksException")), "{v}");
    let (_, v) = ecs(&h, "DescribeClusters", json!({"clusters": ["busy"]})).await;
    assert_eq!(v["clusters"][0]["runningTasksCount"], 1, "{v}");

    let mut stopped = task;
    stopped
        .apply_all(&[
            TaskEvent::EssentialContainerExited,
            TaskEvent::Deactivated,
            TaskEvent::ContainersStopped,
            TaskEvent::Deprovisioned,
        ])
        .unwrap();
    assert_eq!(stopped.status(), TaskStatus::Stopped);
    h.store.put_task(&stopped, Some(stored.version)).await.unwrap();
    let service = berth_model::service::Service::new(
        "arn:aws:ecs:us-east-1:123456789012:service/busy/web".parse().unwrap(),
        account.task_definition("web", 1),
        1,
        1.0,
    );
    assert_eq!(service.cluster_arn().to_string(), cluster_arn);
    h.store.put_service(&service, None).await.unwrap();
    let (_, v) = ecs(&h, "DeleteCluster", json!({"cluster": "busy"})).await;
    assert_eq!(v["__type"], "ClusterContainsServicesException", "{v}");
}

#[tokio::test]
async fn tags_on_task_definitions() {
    let h = harness().await;
    let mut td = seed();
    td["tags"] = json!([{"key": "a", "value": "1"}]);
    ecs(&h, "RegisterTaskDefinition", td).await;
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/api-service:1";
    let (s, v) = ecs(&h, "TagResource", json!({"resourceArn": arn, "tags": [{"key": "b", "value": "2"}]})).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = ecs(&h, "UntagResource", json!({"resourceArn": arn, "tagKeys": ["a"]})).await;
    assert_eq!(v, json!({}));
    let (_, v) = ecs(&h, "ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(v["tags"], json!([{"key": "b", "value": "2"}]));
    let (_, v) = ecs(&h, "DescribeTaskDefinition", json!({"taskDefinition": "api-service:1", "include": ["TAGS"]})).await;
    assert_eq!(v["tags"], json!([{"key": "b", "value": "2"}]));
    let (_, v) = ecs(&h, "TagResource", json!({"resourceArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/nope:1", "tags": []})).await;
    assert_eq!(v["__type"], "ResourceNotFoundException", "{v}");
    let (_, v) = ecs(&h, "TagResource", json!({"resourceArn": arn, "tags": [{"key": "aws:x", "value": "1"}]})).await;
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");
}

#[tokio::test]
async fn metrics_count_calls_per_action() {
    let h = harness().await;
    ecs(&h, "ListClusters", json!({})).await;
    ecs(&h, "DeleteCluster", json!({"cluster": "ghost"})).await;
    let resp = router(h.api.clone())
        .oneshot(http::Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("action=\"ListClusters\",outcome=\"ok\"} 1"), "{text}");
    assert!(text.contains("action=\"DeleteCluster\",outcome=\"ClusterNotFoundException\"} 1"), "{text}");
}

#[tokio::test]
async fn services_are_created_updated_and_deleted_with_ecs_rules_and_errors() {
    let h = harness().await;
    berth_api::ensure_network_defaults(h.store.as_ref(), "10.250.0.0/24").await.expect("default subnet");
    ecs(&h, "RegisterTaskDefinition", seed()).await;
    let net = json!({"awsvpcConfiguration": {"subnets": ["subnet-default"]}});
    let create = |extra: Value| {
        let mut body = json!({"serviceName": "web", "taskDefinition": "api-service", "desiredCount": 2, "networkConfiguration": net});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, expect) in [
        (json!({"cluster": "nope"}), "ClusterNotFoundException"),
        (json!({"desiredCount": -1}), "InvalidParameterException"),
        (json!({"networkConfiguration": null}), "InvalidParameterException"),
        (json!({"launchType": "EC2"}), "InvalidParameterException"),
        (json!({"deploymentController": {"type": "CODE_DEPLOY"}}), "InvalidParameterException"),
        (json!({"serviceName": "bad name!"}), "InvalidParameterException"),
        (json!({"taskDefinition": "missing-family"}), "ClientException"),
    ] {
        let (s, v) = ecs(&h, "CreateService", create(extra.clone())).await;
        assert_eq!((s, v["__type"].as_str()), (400, Some(expect)), "{extra} → {v}");
    }
    let (_, v) = ecs(&h, "CreateService", create(json!({"deploymentConfiguration": {"minimumHealthyPercent": 150}}))).await;
    assert!(v["message"].as_str().unwrap().contains("minimumHealthyPercent"), "the member is named: {v}");
    let (_, v) = ecs(&h, "DescribeServices", json!({"services": ["web"]})).await;
    assert_eq!(v["failures"][0]["reason"], "MISSING", "a refused create stores nothing: {v}");

    let (s, v) = ecs(&h, "CreateService", create(json!({"tags": [{"key": "team", "value": "a"}]}))).await;
    assert_eq!(s, 200, "{v}");
    let svc = &v["service"];
    assert_eq!(svc["serviceArn"], "arn:aws:ecs:us-east-1:123456789012:service/default/web");
    assert_eq!((svc["status"].as_str(), svc["desiredCount"].as_i64()), (Some("ACTIVE"), Some(2)));
    let first = svc["deployments"][0]["id"].as_str().unwrap().to_owned();
    let number = first.strip_prefix("ecs-svc/").expect("ECS's deployment id");
    assert!(number.len() == 19 && number.bytes().all(|b| b.is_ascii_digit()), "{first}");
    assert_eq!(svc["deployments"][0]["rolloutState"], "IN_PROGRESS");
    let (_, v) = ecs(&h, "CreateService", create(json!({}))).await;
    assert_eq!(v["message"], "Creation of service was not idempotent.", "{v}");

    let (_, v) = ecs(&h, "DescribeServices", json!({"services": ["web", "nope"], "include": ["TAGS"]})).await;
    assert_eq!(v["services"][0]["tags"], json!([{"key": "team", "value": "a"}]));
    assert_eq!(v["failures"], json!([{"arn": "arn:aws:ecs:us-east-1:123456789012:service/default/nope", "reason": "MISSING"}]));
    let (_, v) = ecs(&h, "UpdateService", json!({"service": "nope", "desiredCount": 1})).await;
    assert_eq!((v["__type"].as_str(), v["message"].as_str()), (Some("ServiceNotFoundException"), Some("Service not found.")));
    let (_, v) = ecs(&h, "ListTasks", json!({"serviceName": "nope"})).await;
    assert_eq!(v["__type"], "ServiceNotFoundException", "{v}");
    let (_, v) = ecs(&h, "ListTasks", json!({"serviceName": "web"})).await;
    assert_eq!(v["taskArns"], json!([]), "{v}");

    // A new desired count is no new deployment; forceNewDeployment is.
    let (_, v) = ecs(&h, "UpdateService", json!({"service": "web", "desiredCount": 5})).await;
    assert_eq!(v["service"]["deployments"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = ecs(&h, "UpdateService", json!({"service": "web", "forceNewDeployment": true})).await;
    let deployments = v["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments.iter().map(|d| d["status"].as_str().unwrap()).collect::<Vec<_>>(), ["PRIMARY", "ACTIVE"]);
    let primary = deployments[0]["id"].as_str().unwrap().strip_prefix("ecs-svc/").unwrap().to_owned();
    assert_ne!(primary, number);

    // Terraform's link: the PRIMARY's number ends the target revision's ARN.
    let (_, v) = ecs(&h, "ListServiceDeployments", json!({"service": "web"})).await;
    let listed = v["serviceDeployments"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{v}");
    let target = listed[0]["targetServiceRevisionArn"].as_str().unwrap();
    assert!(target.ends_with(&format!("/web/{primary}")), "{target}");
    assert_eq!(listed[0]["status"], "IN_PROGRESS");
    assert_eq!(listed[1]["status"], "STOPPED", "the one replaced before it completed");
    let (_, v) = ecs(&h, "DescribeServiceRevisions", json!({"serviceRevisionArns": [target]})).await;
    assert_eq!(v["serviceRevisions"][0]["taskDefinition"], "arn:aws:ecs:us-east-1:123456789012:task-definition/api-service:1");
    let (_, v) = ecs(&h, "DescribeServiceDeployments", json!({"serviceDeploymentArns": [listed[0]["serviceDeploymentArn"]]})).await;
    assert_eq!(v["serviceDeployments"][0]["targetServiceRevision"]["arn"], target);
    let (_, v) = ecs(&h, "StopServiceDeployment", json!({"serviceDeploymentArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/default/web/1"})).await;
    assert_eq!(v["__type"], "ServiceDeploymentNotFoundException", "{v}");
    let (_, v) = ecs(&h, "ListServicesByNamespace", json!({"namespace": "corp"})).await;
    assert_eq!(v["__type"], "NamespaceNotFoundException", "{v}");

    for name in ["api", "worker"] {
        let (s, v) = ecs(&h, "CreateService", create(json!({"serviceName": name}))).await;
        assert_eq!(s, 200, "{v}");
    }
    let (_, v) = ecs(&h, "ListServices", json!({"maxResults": 2})).await;
    assert_eq!(v["serviceArns"].as_array().unwrap().len(), 2);
    let (_, v) = ecs(&h, "ListServices", json!({"nextToken": v["nextToken"]})).await;
    assert_eq!(v["serviceArns"], json!(["arn:aws:ecs:us-east-1:123456789012:service/default/worker"]), "{v}");
    let (_, v) = ecs(&h, "ListServices", json!({"launchType": "EC2"})).await;
    assert_eq!(v["serviceArns"], json!([]));

    let (_, v) = ecs(&h, "DeleteService", json!({"service": "web"})).await;
    assert_eq!(v["message"], "The service cannot be stopped while it is scaled above 0.", "{v}");
    let (s, v) = ecs(&h, "DeleteService", json!({"service": "web", "force": true})).await;
    assert_eq!((s, v["service"]["status"].as_str()), (200, Some("DRAINING")), "{v}");
    let (_, v) = ecs(&h, "ListServices", json!({})).await;
    assert_eq!(v["serviceArns"].as_array().unwrap().len(), 2, "a deleted service is no longer listed: {v}");
    let (_, v) = ecs(&h, "DescribeServices", json!({"services": ["web"]})).await;
    assert_eq!(v["services"][0]["status"], "DRAINING");
    let (_, v) = ecs(&h, "UpdateService", json!({"service": "web", "desiredCount": 1})).await;
    assert_eq!((v["__type"].as_str(), v["message"].as_str()), (Some("ServiceNotActiveException"), Some("Service was not ACTIVE.")));
    let (_, v) = ecs(&h, "CreateService", create(json!({}))).await;
    assert_eq!(v["message"], "Creation of service was not idempotent.", "a DRAINING name is still taken: {v}");
}

/// The service controller against the store, with no agent: its launches
/// are stored PROVISIONING tasks, placed only where they fit.
#[tokio::test]
async fn the_service_controller_fills_the_node_and_says_when_no_room_is_left() {
    let h = harness().await;
    berth_api::ensure_network_defaults(h.store.as_ref(), "10.250.1.0/24").await.expect("default subnet");
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let node = berth_model::node::Node {
        id: "n1".into(),
        zone: "us-east-1a".into(),
        cpu: 1024,
        memory: 4096,
        status: berth_model::node::NodeStatus::Active,
        spot_cpu: 0,
        spot_memory: 0,
        heartbeat_at: now,
    };
    h.store.upsert_node(&node).await.expect("node");
    ecs(&h, "RegisterTaskDefinition", seed()).await; // 512 CPU units each: two fit
    let net = json!({"awsvpcConfiguration": {"subnets": ["subnet-default"]}});
    let (s, v) = ecs(&h, "CreateService", json!({"serviceName": "web", "taskDefinition": "api-service", "desiredCount": 3,
        "networkConfiguration": net, "propagateTags": "SERVICE", "tags": [{"key": "team", "value": "a"}]})).await;
    assert_eq!(s, 200, "{v}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(berth_api::run_services(h.store.clone(), async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let service = loop {
        let (_, v) = ecs(&h, "DescribeServices", json!({"services": ["web"]})).await;
        let s = v["services"][0].clone();
        let said = |needle: &str| s["events"].as_array().unwrap().iter().any(|e| e["message"].as_str().unwrap().contains(needle));
        if said("was unable to place a task") && said("has started 2 tasks") {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "no placement events: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let messages: Vec<&str> = service["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(
        messages.contains(&"(service web) was unable to place a task because no container instance met all of its requirements. Reason: RESOURCE:CPU. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."),
        "{messages:?}"
    );
    assert_eq!(service["pendingCount"], 2, "{service}");
    let (_, v) = ecs(&h, "ListTasks", json!({"serviceName": "web"})).await;
    let arns = v["taskArns"].as_array().unwrap().clone();
    assert_eq!(arns.len(), 2, "the node is never over-committed: {v}");
    let (_, v) = ecs(&h, "DescribeTasks", json!({"tasks": arns, "include": ["TAGS"]})).await;
    let deployment = service["deployments"][0]["id"].clone();
    for t in v["tasks"].as_array().unwrap() {
        assert_eq!((&t["group"], &t["startedBy"]), (&json!("service:web"), &deployment), "{t}");
        assert_eq!(t["tags"], json!([{"key": "team", "value": "a"}]), "propagateTags SERVICE");
    }
    // Scaled to one: the newest of the two goes, as the scheduler's stop.
    ecs(&h, "UpdateService", json!({"service": "web", "desiredCount": 1})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = ecs(&h, "DescribeTasks", json!({"tasks": arns})).await;
        let stopping: Vec<&Value> = v["tasks"].as_array().unwrap().iter().filter(|t| t["desiredStatus"] == "STOPPED").collect();
        if let [t] = stopping.as_slice() {
            assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
            assert_eq!(t["stoppedReason"], format!("Scaling activity initiated by (deployment {})", deployment.as_str().unwrap()));
            break;
        }
        assert!(stopping.len() < 2, "only the surplus stops: {v}");
        assert!(tokio::time::Instant::now() < deadline, "no scale-in: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(()).unwrap();
    controller.await.unwrap();
}

#[tokio::test]
async fn fargate_capacity_providers_are_described() {
    let h = harness().await;
    let (s, v) = ecs(&h, "DescribeCapacityProviders", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["capacityProviders"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["FARGATE", "FARGATE_SPOT"]);
    assert_eq!(v["capacityProviders"][1]["capacityProviderArn"], "arn:aws:ecs:us-east-1:123456789012:capacity-provider/FARGATE_SPOT");
    assert_eq!(v["capacityProviders"][0]["status"], "ACTIVE");
    let (_, v) = ecs(&h, "DescribeCapacityProviders", json!({"capacityProviders": ["FARGATE_SPOT", "ec2-asg"]})).await;
    assert_eq!(v["capacityProviders"].as_array().unwrap().len(), 1);
    assert_eq!(v["failures"], json!([{"arn": "ec2-asg", "reason": "MISSING"}]));
}
