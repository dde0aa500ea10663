//! Authorization through the router (`oneshot`), on a real SQLite store:
//! the root key makes an IAM user with a policy and a key (IAM's Query
//! API), and that user's signed calls are allowed or refused before any
//! handler runs, each refusal in its service's protocol.

use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_store::AccessKey;
use berth_testinfra::sign::{Creds, SignOptions, sign, sign_with};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ROOT: &str = "AKIDAUTHZTEST0000001";
const ROOT_SECRET: &str = "authz-test-secret";
const ACCOUNT: &str = "123456789012";

struct Harness {
    api: Api,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open store");
    stores
        .records
        .insert_access_key(&AccessKey { access_key_id: ROOT.into(), secret_access_key: ROOT_SECRET.into(), created_at: 0 })
        .await
        .expect("insert key");
    let account = Account { region: "us-east-1".into(), account_id: ACCOUNT.into() };
    Harness { api: Api::new(stores, ApiConfig::new(account)), _dir: dir }
}

fn root() -> Creds {
    Creds { access_key_id: ROOT.into(), secret_access_key: ROOT_SECRET.into() }
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(h: &Harness, mut req: http::Request<Vec<u8>>, creds: &Creds, service: &str) -> Answer {
    sign(&mut req, creds, "us-east-1", service, SystemTime::now()).expect("sign");
    let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Answer { status, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn ecs(h: &Harness, creds: &Creds, op: &str, body: Value) -> Answer {
    let req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AmazonEC2ContainerServiceV20141113.{op}"))
        .body(body.to_string().into_bytes())
        .expect("request");
    send(h, req, creds, "ecs").await
}

async fn form(h: &Harness, creds: &Creds, service: &str, body: &str) -> Answer {
    let req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body.as_bytes().to_vec())
        .expect("request");
    send(h, req, creds, service).await
}

/// The text of the first `<name>` element.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn encoded(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A user with this inline policy, and its key.
async fn user(h: &Harness, name: &str, policy: &Value) -> Creds {
    let a = form(h, &root(), "iam", &format!("Action=CreateUser&Version=2010-05-08&UserName={name}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = format!(
        "Action=PutUserPolicy&Version=2010-05-08&UserName={name}&PolicyName=p&PolicyDocument={}",
        encoded(&policy.to_string())
    );
    let a = form(h, &root(), "iam", &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = form(h, &root(), "iam", &format!("Action=CreateAccessKey&Version=2010-05-08&UserName={name}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    Creds {
        access_key_id: element(&a.body, "AccessKeyId").expect("key id").to_owned(),
        secret_access_key: element(&a.body, "SecretAccessKey").expect("secret").to_owned(),
    }
}

fn task_definition(family: &str) -> Value {
    json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
           "containerDefinitions": [{"name": "main", "image": "busybox", "essential": true}]})
}

#[tokio::test]
async fn a_read_only_user_lists_and_is_refused_the_rest() {
    let h = harness().await;
    assert_eq!(ecs(&h, &root(), "CreateCluster", json!({"clusterName": "default"})).await.status, 200);
    assert_eq!(ecs(&h, &root(), "RegisterTaskDefinition", task_definition("web")).await.status, 200);
    let reader = user(&h, "reader", &json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}]}))
    .await;

    let a = ecs(&h, &reader, "ListClusters", json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["clusterArns"], json!([format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/default")]));

    let a = ecs(&h, &reader, "RunTask", json!({"taskDefinition": "web"})).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.json()["__type"], "AccessDeniedException");
    assert_eq!(
        a.json()["message"],
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: ecs:RunTask on resource: \
             arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:1 because no identity-based policy allows the ecs:RunTask action"
        )
    );
    let tasks = ecs(&h, &root(), "ListTasks", json!({"desiredStatus": "STOPPED"})).await;
    assert_eq!(tasks.json()["taskArns"], json!([]), "nothing ran");

    let a = ecs(&h, &reader, "CreateCluster", json!({"clusterName": "mine"})).await;
    assert_eq!(a.json()["__type"], "AccessDeniedException");
    let clusters = ecs(&h, &root(), "ListClusters", json!({})).await;
    assert_eq!(clusters.json()["clusterArns"].as_array().map(Vec::len), Some(1), "nothing was created");

    // EC2 and Query services refuse in their protocols, with 403.
    let a = form(&h, &reader, "ec2", "Action=DescribeVpcs&Version=2016-11-15").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(element(&a.body, "Code"), Some("UnauthorizedOperation"));
    assert!(element(&a.body, "Message").is_some_and(|m| m.starts_with("You are not authorized to perform this operation. User: ")));
    let a = form(&h, &reader, "iam", "Action=ListUsers&Version=2010-05-08").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(element(&a.body, "Code"), Some("AccessDenied"));
    // GetCallerIdentity needs no permission.
    let a = form(&h, &reader, "sts", "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(element(&a.body, "Arn"), Some(format!("arn:aws:iam::{ACCOUNT}:user/reader").as_str()));
}

#[tokio::test]
async fn run_task_needs_the_cluster_the_condition_names_and_pass_role() {
    let h = harness().await;
    for name in ["dev", "prod"] {
        assert_eq!(ecs(&h, &root(), "CreateCluster", json!({"clusterName": name})).await.status, 200);
    }
    let mut td = task_definition("app");
    td["taskRoleArn"] = json!(format!("arn:aws:iam::{ACCOUNT}:role/app"));
    assert_eq!(ecs(&h, &root(), "RegisterTaskDefinition", td).await.status, 200);
    let dev = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/dev");
    let deployer = user(&h, "deployer", &json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*", "Condition": {"ArnEquals": {"ecs:cluster": dev}}}]}))
    .await;

    let a = ecs(&h, &deployer, "RunTask", json!({"cluster": "prod", "taskDefinition": "app:1"})).await;
    assert_eq!(a.json()["__type"], "AccessDeniedException", "{}", a.body);
    assert!(a.json()["message"].as_str().is_some_and(|m| m.contains("perform: ecs:RunTask on resource")), "{}", a.body);
    // In dev, RunTask is allowed, but handing ECS the role needs iam:PassRole.
    let a = ecs(&h, &deployer, "RunTask", json!({"cluster": "dev", "taskDefinition": "app:1"})).await;
    assert_eq!(a.json()["__type"], "AccessDeniedException", "{}", a.body);
    assert_eq!(
        a.json()["message"],
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/deployer is not authorized to perform: iam:PassRole on resource: \
             arn:aws:iam::{ACCOUNT}:role/app because no identity-based policy allows the iam:PassRole action"
        )
    );
    for cluster in ["dev", "prod"] {
        let tasks = ecs(&h, &root(), "ListTasks", json!({"cluster": cluster, "desiredStatus": "STOPPED"})).await;
        assert_eq!(tasks.json()["taskArns"], json!([]), "nothing ran in {cluster}");
    }
}

#[tokio::test]
async fn an_explicit_deny_beats_an_allow() {
    let h = harness().await;
    let admin_but = user(&h, "admin-but", &json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:DeleteCluster", "Resource": "arn:aws:ecs:*:*:cluster/keep"}]}))
    .await;
    for name in ["keep", "scratch"] {
        let a = ecs(&h, &admin_but, "CreateCluster", json!({"clusterName": name})).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = ecs(&h, &admin_but, "DeleteCluster", json!({"cluster": "keep"})).await;
    assert_eq!(
        a.json()["message"],
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/admin-but is not authorized to perform: ecs:DeleteCluster on resource: \
             arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/keep with an explicit deny in an identity-based policy"
        )
    );
    assert_eq!(ecs(&h, &admin_but, "DeleteCluster", json!({"cluster": "scratch"})).await.status, 200);
    let a = ecs(&h, &root(), "DescribeClusters", json!({"clusters": ["keep"]})).await;
    assert_eq!(a.json()["clusters"][0]["status"], "ACTIVE");
}

#[tokio::test]
async fn resource_tags_are_condition_keys() {
    let h = harness().await;
    let tagged = |name: &str, env: &str| json!({"clusterName": name, "tags": [{"key": "env", "value": env}]});
    assert_eq!(ecs(&h, &root(), "CreateCluster", tagged("sandbox", "dev")).await.status, 200);
    assert_eq!(ecs(&h, &root(), "CreateCluster", tagged("live", "prod")).await.status, 200);
    let dev_only = user(&h, "dev-only", &json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ecs:DescribeClusters", "ecs:DeleteCluster"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/env": "dev"}}}]}))
    .await;
    let a = ecs(&h, &dev_only, "DescribeClusters", json!({"clusters": ["sandbox"]})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Each cluster is checked with its own tags.
    let a = ecs(&h, &dev_only, "DescribeClusters", json!({"clusters": ["sandbox", "live"]})).await;
    assert!(a.json()["message"].as_str().is_some_and(|m| m.contains("cluster/live because")), "{}", a.body);
    let a = ecs(&h, &dev_only, "DeleteCluster", json!({"cluster": "live"})).await;
    assert_eq!(a.json()["__type"], "AccessDeniedException", "{}", a.body);
    assert_eq!(ecs(&h, &dev_only, "DeleteCluster", json!({"cluster": "sandbox"})).await.status, 200);
}

#[tokio::test]
async fn an_image_upload_needs_its_berth_action() {
    let h = harness().await;
    let ecs_only = user(&h, "ecs-only", &json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}))
    .await;
    let upload = |creds: &Creds| {
        let mut req = http::Request::builder()
            .method("PUT")
            .uri(format!("http://berth.test{}?name=x/y:1", berth_wire::berth::IMPORT_PATH))
            .header("host", "berth.test")
            .body(b"not a tarball".to_vec())
            .expect("request");
        let options = SignOptions { content_sha256_header: true, ..Default::default() };
        sign_with(&mut req, creds, "us-east-1", berth_wire::berth::SIGNING_NAME, SystemTime::now(), &options).expect("sign");
        req
    };
    let answer = |req: http::Request<Vec<u8>>| async {
        let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.expect("response");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Answer { status, body: String::from_utf8_lossy(&bytes).into_owned() }
    };
    let a = answer(upload(&ecs_only)).await;
    assert_eq!(a.json()["__type"], "AccessDeniedException", "{}", a.body);
    assert!(a.json()["message"].as_str().is_some_and(|m| m.contains("perform: berth:ImportImage")), "{}", a.body);
    // The root key gets past authorization (this API has no image cache: the next refusal).
    let a = answer(upload(&root())).await;
    assert_ne!(a.json()["__type"], "AccessDeniedException", "{}", a.body);
}
