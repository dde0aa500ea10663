//! Cloud Map (`servicediscovery`, AWS JSON 1.1) through the router, on a
//! real SQLite store, signed with AWS's own SigV4: namespaces, services,
//! instances, health, discovery, operations, filters, paging, tags, and
//! Cloud Map's errors.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_store::AccessKey;
use berth_testinfra::sign::{Creds, sign};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const AKID: &str = "AKIDCLOUDMAPTEST0001";
const SECRET: &str = "cloudmap-test-secret";

struct Harness {
    api: Api,
    store: std::sync::Arc<dyn berth_store::Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn api_store(&self) -> std::sync::Arc<dyn berth_store::Store> {
        self.store.clone()
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    stores
        .records
        .insert_access_key(&AccessKey { access_key_id: AKID.into(), secret_access_key: SECRET.into(), created_at: 0 })
        .await
        .unwrap();
    let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
    Harness { store: stores.records.clone(), api: Api::new(stores, ApiConfig::new(account)), _dir: dir }
}

/// Calls operation `op`; the HTTP status and the JSON answer.
async fn sd(h: &Harness, op: &str, body: Value) -> (u16, Value) {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Route53AutoNaming_v20170314.{op}"))
        .body(body.to_string().into_bytes())
        .unwrap();
    let creds = Creds { access_key_id: AKID.into(), secret_access_key: SECRET.into() };
    sign(&mut req, &creds, "us-east-1", "servicediscovery", SystemTime::now()).unwrap();
    let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

async fn ok(h: &Harness, op: &str, body: Value) -> Value {
    let (s, v) = sd(h, op, body).await;
    assert_eq!(s, 200, "{op}: {v}");
    v
}

async fn err(h: &Harness, op: &str, body: Value) -> String {
    let (s, v) = sd(h, op, body).await;
    assert_eq!(s, 400, "{op}: {v}");
    v["__type"].as_str().unwrap().to_owned()
}

/// Creates a private DNS namespace; its id (from the operation's targets).
async fn private_namespace(h: &Harness, name: &str) -> String {
    let op = ok(h, "CreatePrivateDnsNamespace", json!({"Name": name, "Vpc": "vpc-default"})).await;
    let got = ok(h, "GetOperation", json!({"OperationId": op["OperationId"]})).await;
    assert_eq!(got["Operation"]["Status"], "SUCCESS");
    assert_eq!(got["Operation"]["Type"], "CREATE_NAMESPACE");
    got["Operation"]["Targets"]["NAMESPACE"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn namespaces_services_and_instances_through_their_lifecycle() {
    let h = harness().await;
    let ns = private_namespace(&h, "corp.local").await;
    let got = ok(&h, "GetNamespace", json!({"Id": ns})).await;
    assert_eq!(got["Namespace"]["Type"], "DNS_PRIVATE");
    assert_eq!(got["Namespace"]["Arn"], format!("arn:aws:servicediscovery:us-east-1:123456789012:namespace/{ns}"));
    assert!(got["Namespace"]["Properties"]["DnsProperties"]["HostedZoneId"].as_str().unwrap().starts_with('Z'));
    assert_eq!(got["Namespace"]["Properties"]["DnsProperties"]["SOA"]["TTL"], 15);

    let svc = ok(&h, "CreateService", json!({
        "Name": "api", "NamespaceId": ns,
        "DnsConfig": {"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 20}]},
        "HealthCheckCustomConfig": {"FailureThreshold": 1}
    })).await;
    let srv = svc["Service"]["Id"].as_str().unwrap().to_owned();
    assert_eq!(svc["Service"]["Type"], "DNS_HTTP");
    assert_eq!(svc["Service"]["DnsConfig"]["DnsRecords"][1]["Type"], "SRV");

    // An SRV service needs an address and a port.
    assert_eq!(err(&h, "RegisterInstance", json!({"ServiceId": srv, "InstanceId": "t1", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"}})).await, "InvalidInput");
    for (id, ip) in [("t1", "10.0.0.1"), ("t2", "10.0.0.2"), ("t3", "10.0.0.3")] {
        let op = ok(&h, "RegisterInstance", json!({"ServiceId": srv, "InstanceId": id,
            "Attributes": {"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": "8080", "stage": if id == "t3" {"green"} else {"blue"}}})).await;
        let got = ok(&h, "GetOperation", json!({"OperationId": op["OperationId"]})).await;
        assert_eq!(got["Operation"]["Targets"]["INSTANCE"], id);
        assert_eq!(got["Operation"]["Targets"]["SERVICE"], srv.as_str());
    }
    assert_eq!(ok(&h, "GetService", json!({"Id": srv})).await["Service"]["InstanceCount"], 3);
    let inst = ok(&h, "GetInstance", json!({"ServiceId": srv, "InstanceId": "t2"})).await;
    assert_eq!(inst["Instance"]["Attributes"]["AWS_INSTANCE_IPV4"], "10.0.0.2");

    ok(&h, "UpdateInstanceCustomHealthStatus", json!({"ServiceId": srv, "InstanceId": "t2", "Status": "UNHEALTHY"})).await;
    let health = ok(&h, "GetInstancesHealthStatus", json!({"ServiceId": srv})).await;
    assert_eq!(health["Status"], json!({"t1": "HEALTHY", "t2": "UNHEALTHY", "t3": "HEALTHY"}));

    let ids = |v: &Value| v["Instances"].as_array().unwrap().iter().map(|i| i["InstanceId"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let found = ok(&h, "DiscoverInstances", json!({"NamespaceName": "CORP.local", "ServiceName": "api"})).await;
    assert_eq!(ids(&found), ["t1", "t3"]);
    assert_eq!(found["Instances"][0]["HealthStatus"], "HEALTHY");
    let rev = found["InstancesRevision"].as_i64().unwrap();
    let found = ok(&h, "DiscoverInstances", json!({"NamespaceName": "corp.local", "ServiceName": "api", "HealthStatus": "ALL", "QueryParameters": {"stage": "blue"}})).await;
    assert_eq!(ids(&found), ["t1", "t2"]);
    let found = ok(&h, "DiscoverInstances", json!({"NamespaceName": "corp.local", "ServiceName": "api", "HealthStatus": "UNHEALTHY"})).await;
    assert_eq!(ids(&found), ["t2"]);
    let found = ok(&h, "DiscoverInstances", json!({"NamespaceName": "corp.local", "ServiceName": "api", "HealthStatus": "HEALTHY_OR_ELSE_ALL", "QueryParameters": {"stage": "blue"}, "OptionalParameters": {"AWS_INSTANCE_IPV4": "10.0.0.2"}})).await;
    assert_eq!(ids(&found), ["t2"]);
    assert_eq!(err(&h, "DiscoverInstances", json!({"NamespaceName": "nope.local", "ServiceName": "api"})).await, "NamespaceNotFound");
    assert_eq!(err(&h, "DiscoverInstances", json!({"NamespaceName": "corp.local", "ServiceName": "nope"})).await, "ServiceNotFound");

    // Paging through ListInstances.
    let page1 = ok(&h, "ListInstances", json!({"ServiceId": srv, "MaxResults": 2})).await;
    assert_eq!(page1["Instances"].as_array().unwrap().len(), 2);
    let page2 = ok(&h, "ListInstances", json!({"ServiceId": srv, "MaxResults": 2, "NextToken": page1["NextToken"]})).await;
    assert_eq!(page2["Instances"][0]["Id"], "t3");
    assert!(page2.get("NextToken").is_none());
    assert_eq!(err(&h, "ListInstances", json!({"ServiceId": srv, "NextToken": "junk!"})).await, "InvalidInput");

    // In use while it has instances / services.
    assert_eq!(err(&h, "DeleteService", json!({"Id": srv})).await, "ResourceInUse");
    assert_eq!(err(&h, "DeleteNamespace", json!({"Id": ns})).await, "ResourceInUse");
    for id in ["t1", "t2", "t3"] {
        ok(&h, "DeregisterInstance", json!({"ServiceId": srv, "InstanceId": id})).await;
    }
    assert_eq!(err(&h, "DeregisterInstance", json!({"ServiceId": srv, "InstanceId": "t1"})).await, "InstanceNotFound");
    let after = ok(&h, "DiscoverInstancesRevision", json!({"NamespaceName": "corp.local", "ServiceName": "api"})).await;
    assert!(after["InstancesRevision"].as_i64().unwrap() > rev);
    ok(&h, "DeleteService", json!({"Id": srv})).await;
    assert_eq!(err(&h, "GetService", json!({"Id": srv})).await, "ServiceNotFound");
    let op = ok(&h, "DeleteNamespace", json!({"Id": ns})).await;
    assert_eq!(ok(&h, "GetOperation", json!({"OperationId": op["OperationId"]})).await["Operation"]["Type"], "DELETE_NAMESPACE");
    assert_eq!(err(&h, "GetNamespace", json!({"Id": ns})).await, "NamespaceNotFound");
    assert_eq!(err(&h, "GetOperation", json!({"OperationId": "nope"})).await, "OperationNotFound");
}

#[tokio::test]
async fn errors_duplicates_filters_and_tags() {
    let h = harness().await;
    let first = ok(&h, "CreatePrivateDnsNamespace", json!({"Name": "a.local", "Vpc": "vpc-default", "CreatorRequestId": "req-1"})).await;
    // A retry with the same CreatorRequestId is the same operation; another request with it is a duplicate.
    let again = ok(&h, "CreatePrivateDnsNamespace", json!({"Name": "a.local", "Vpc": "vpc-default", "CreatorRequestId": "req-1"})).await;
    assert_eq!(first["OperationId"], again["OperationId"]);
    assert_eq!(err(&h, "CreatePrivateDnsNamespace", json!({"Name": "b.local", "Vpc": "vpc-default", "CreatorRequestId": "req-1"})).await, "DuplicateRequest");
    assert_eq!(err(&h, "CreatePrivateDnsNamespace", json!({"Name": "A.LOCAL", "Vpc": "vpc-default"})).await, "NamespaceAlreadyExists");
    assert_eq!(err(&h, "CreatePrivateDnsNamespace", json!({"Name": "c.local", "Vpc": "vpc-other"})).await, "InvalidInput");
    assert_eq!(err(&h, "CreatePrivateDnsNamespace", json!({"Name": "c.local"})).await, "InvalidInput");
    assert_eq!(err(&h, "CreatePublicDnsNamespace", json!({"Name": "example.com"})).await, "InvalidInput");
    let http = ok(&h, "CreateHttpNamespace", json!({"Name": "web", "Tags": [{"Key": "team", "Value": "a"}]})).await;
    let http_ns = ok(&h, "GetOperation", json!({"OperationId": http["OperationId"]})).await["Operation"]["Targets"]["NAMESPACE"].as_str().unwrap().to_owned();
    assert_eq!(err(&h, "CreateService", json!({"Name": "x", "NamespaceId": http_ns, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}]}})).await, "InvalidInput");
    assert_eq!(err(&h, "CreateService", json!({"Name": "x", "NamespaceId": "ns-nope"})).await, "NamespaceNotFound");
    let svc = ok(&h, "CreateService", json!({"Name": "x", "NamespaceId": http_ns})).await;
    assert_eq!(svc["Service"]["Type"], "HTTP");
    assert_eq!(err(&h, "CreateService", json!({"Name": "X", "NamespaceId": http_ns})).await, "ServiceAlreadyExists");
    let srv = svc["Service"]["Id"].as_str().unwrap().to_owned();
    // No custom health check: instances are healthy and their status is not the caller's to set.
    ok(&h, "RegisterInstance", json!({"ServiceId": srv, "InstanceId": "i-1", "Attributes": {"color": "red"}})).await;
    assert_eq!(err(&h, "UpdateInstanceCustomHealthStatus", json!({"ServiceId": srv, "InstanceId": "i-1", "Status": "UNHEALTHY"})).await, "CustomHealthNotFound");
    // A missing member is InvalidInput.
    assert_eq!(err(&h, "RegisterInstance", json!({"ServiceId": srv})).await, "InvalidInput");

    // Filters.
    let list = ok(&h, "ListNamespaces", json!({"Filters": [{"Name": "TYPE", "Values": ["HTTP"], "Condition": "EQ"}]})).await;
    assert_eq!(list["Namespaces"].as_array().unwrap().len(), 1);
    assert_eq!(list["Namespaces"][0]["ServiceCount"], 1);
    let list = ok(&h, "ListNamespaces", json!({"Filters": [{"Name": "NAME", "Values": ["a."], "Condition": "BEGINS_WITH"}]})).await;
    assert_eq!(list["Namespaces"][0]["Name"], "a.local");
    assert_eq!(ok(&h, "ListNamespaces", json!({"MaxResults": 1})).await["Namespaces"].as_array().unwrap().len(), 1);
    assert_eq!(err(&h, "ListNamespaces", json!({"MaxResults": 0})).await, "InvalidInput");
    assert_eq!(err(&h, "ListNamespaces", json!({"Filters": [{"Name": "TYPE", "Values": ["HTTP"], "Condition": "BETWEEN"}]})).await, "InvalidInput");
    let list = ok(&h, "ListServices", json!({"Filters": [{"Name": "NAMESPACE_ID", "Values": [http_ns]}]})).await;
    assert_eq!(list["Services"][0]["InstanceCount"], 1);
    let ops = ok(&h, "ListOperations", json!({"Filters": [{"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]}]})).await;
    assert_eq!(ops["Operations"].as_array().unwrap().len(), 1);
    let ops = ok(&h, "ListOperations", json!({"Filters": [{"Name": "STATUS", "Values": ["SUCCESS", "FAIL"], "Condition": "IN"}, {"Name": "NAMESPACE_ID", "Values": [http_ns]}]})).await;
    assert_eq!(ops["Operations"].as_array().unwrap().len(), 2);
    let ops = ok(&h, "ListOperations", json!({"Filters": [{"Name": "UPDATE_DATE", "Values": ["0", "1"], "Condition": "BETWEEN"}]})).await;
    assert!(ops["Operations"].as_array().unwrap().is_empty());

    // Tags.
    let arn = format!("arn:aws:servicediscovery:us-east-1:123456789012:namespace/{http_ns}");
    assert_eq!(ok(&h, "ListTagsForResource", json!({"ResourceARN": arn})).await["Tags"], json!([{"Key": "team", "Value": "a"}]));
    ok(&h, "TagResource", json!({"ResourceARN": arn, "Tags": [{"Key": "env", "Value": "dev"}]})).await;
    ok(&h, "UntagResource", json!({"ResourceARN": arn, "TagKeys": ["team"]})).await;
    assert_eq!(ok(&h, "ListTagsForResource", json!({"ResourceARN": arn})).await["Tags"], json!([{"Key": "env", "Value": "dev"}]));
    let srv_arn = svc["Service"]["Arn"].as_str().unwrap();
    ok(&h, "TagResource", json!({"ResourceARN": srv_arn, "Tags": [{"Key": "k", "Value": "v"}]})).await;
    assert_eq!(ok(&h, "ListTagsForResource", json!({"ResourceARN": srv_arn})).await["Tags"][0]["Key"], "k");
    let many: Vec<Value> = (0..51).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
    assert_eq!(err(&h, "TagResource", json!({"ResourceARN": srv_arn, "Tags": many})).await, "TooManyTagsException");
    assert_eq!(err(&h, "ListTagsForResource", json!({"ResourceARN": "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-nope"})).await, "ResourceNotFoundException");
    // An operation of the model Berth does not serve.
    assert_eq!(err(&h, "GetServiceAttributes", json!({"ServiceId": srv})).await, "UnknownOperationException");
}

/// The DNS runner: records follow registrations through store notices,
/// on a subnet whose gateway is a loopback address (so the server can
/// listen there in a test).
#[tokio::test]
async fn the_dns_runner_answers_what_is_registered() {
    use berth_dns::proto::op::ResponseCode;
    use berth_dns::proto::rr::{RData, RecordType};

    let h = harness().await;
    let store = h.api_store();
    store
        .put_subnet(
            &berth_model::network::SubnetRecord {
                id: "subnet-loop".into(),
                cidr: "127.0.0.0/24".parse().unwrap(),
                name: String::new(),
                egress: false,
                created_at: 0.0,
                tags: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = std::sync::Arc::new(berth_dns::DnsServer::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(berth_api::run_dns(store.clone(), server.clone(), "us-east-1".into(), port, async {
        let _ = stopped.await;
    }));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();

    let ns = private_namespace(&h, "corp.local").await;
    let svc = ok(&h, "CreateService", json!({"Name": "b", "NamespaceId": ns, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 7}]}})).await;
    let srv = svc["Service"]["Id"].as_str().unwrap().to_owned();
    ok(&h, "RegisterInstance", json!({"ServiceId": srv, "InstanceId": "t1", "Attributes": {"AWS_INSTANCE_IPV4": "10.89.0.5"}})).await;

    let answer = |want: &'static str| async move {
        for _ in 0..100 {
            if let Ok(m) = berth_dns::ask(addr, "b.corp.local.", RecordType::A).await {
                let got: Vec<String> = m.answers.iter().filter_map(|r| if let RData::A(a) = &r.data { Some(a.0.to_string()) } else { None }).collect();
                if got.join(",") == want {
                    return m;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("b.corp.local never answered {want}");
    };
    let m = answer("10.89.0.5").await;
    assert_eq!(m.answers[0].ttl, 7);
    // The name follows the instances.
    ok(&h, "RegisterInstance", json!({"ServiceId": srv, "InstanceId": "t2", "Attributes": {"AWS_INSTANCE_IPV4": "10.89.0.6"}})).await;
    ok(&h, "DeregisterInstance", json!({"ServiceId": srv, "InstanceId": "t1"})).await;
    answer("10.89.0.6").await;
    // Other names: this subnet has no egress.
    let refused = berth_dns::ask(addr, "example.com.", RecordType::A).await.unwrap();
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    let _ = stop.send(());
    runner.await.unwrap();
}
