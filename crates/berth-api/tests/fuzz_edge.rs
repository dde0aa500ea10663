//! Fuzzing the whole edge and SigV4's header parser with proptest.
//!
//! The edge: signed requests (the root key, a real SQLite store) with
//! random JSON bodies for random ECS, Logs and SSM operations, random
//! bytes and content types, random Query forms for EC2, IAM and STS, and
//! random CBOR for CloudWatch, through `router` with `oneshot`. Every
//! answer is a 2xx or a 4xx, and a 4xx carries an AWS error (`__type` in
//! JSON or CBOR, `<Code>` in XML); never a 5xx, never a panic. Each case
//! hits the store, so the bound is small (64 cases; `PROPTEST_CASES`
//! raises it).
//!
//! SigV4: `sigv4::parse` on random `Authorization`, `X-Amz-Date`,
//! `X-Amz-Security-Token` and `Host` headers and presigned query strings
//! (256 cases): a signed request or an `AuthError`, never a panic.

use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router, sigv4};
use berth_model::Account;
use berth_store::AccessKey;
use berth_testinfra::sign::{Creds, sign};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value};
use tower::ServiceExt as _;

const ROOT: &str = "AKIDFUZZEDGE00000001";
const ROOT_SECRET: &str = "fuzz-edge-secret";

fn config(default_cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    c
}

const TEXTS: &[&str] = &[
    "", "default", "web", "/a/b", "arn:aws:ecs:us-east-1:123456789012:cluster/default", "FARGATE", "-1", "0", "99999999999",
    "é", "\u{0}", "*", "String", "SecureString", "vpc-1", "10.0.0.0/16",
];

const NAMES: &[&str] = &[
    "cluster", "clusterName", "services", "service", "taskDefinition", "family", "tasks", "task", "containerDefinitions",
    "name", "image", "count", "desiredCount", "maxResults", "nextToken", "tags", "key", "value", "include", "logGroupName",
    "logStreamName", "logEvents", "timestamp", "message", "filterPattern", "startTime", "endTime", "limit", "Name",
    "Names", "Value", "Type", "Overwrite", "Path", "Recursive", "WithDecryption", "Tags", "Key", "MaxResults",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-5i64..200).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(TEXTS).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(NAMES), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// ECS, Logs and SSM operations Berth serves, and some it does not.
const JSON_OPS: &[(&str, &str, &[&str])] = &[
    ("ecs", "AmazonEC2ContainerServiceV20141113", &[
        "CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster", "RegisterTaskDefinition",
        "DescribeTaskDefinition", "ListTaskDefinitions", "DeregisterTaskDefinition", "RunTask", "DescribeTasks",
        "ListTasks", "StopTask", "CreateService", "DescribeServices", "UpdateService", "DeleteService", "TagResource",
        "ListTagsForResource", "PutClusterCapacityProviders", "Nope",
    ]),
    ("logs", "Logs_20140328", &[
        "CreateLogGroup", "DescribeLogGroups", "DeleteLogGroup", "CreateLogStream", "DescribeLogStreams", "PutLogEvents",
        "GetLogEvents", "FilterLogEvents", "PutRetentionPolicy", "TagLogGroup", "ListTagsForResource", "Nope",
    ]),
    ("ssm", "AmazonSSM", &[
        "PutParameter", "GetParameter", "GetParameters", "GetParametersByPath", "DescribeParameters", "DeleteParameter",
        "DeleteParameters", "GetParameterHistory", "AddTagsToResource", "ListTagsForResource", "Nope",
    ]),
];

const QUERY: &[(&str, &str, &[&str], &[&str])] = &[
    ("ec2", "2016-11-15", &["DescribeVpcs", "CreateVpc", "DescribeSubnets", "CreateSubnet", "DescribeSecurityGroups",
        "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "DeleteVpc", "CreateTags", "RunInstances"],
     &["CidrBlock", "VpcId", "SubnetId", "GroupName", "GroupId", "Description", "Filter.1.Name", "Filter.1.Value.1",
       "VpcId.1", "IpPermissions.1.IpProtocol", "IpPermissions.1.FromPort", "IpPermissions.1.IpRanges.1.CidrIp",
       "TagSpecification.1.Tag.1.Key", "ResourceId.1", "Tag.1.Key", "MaxResults", "DryRun"]),
    ("iam", "2010-05-08", &["CreateUser", "GetUser", "ListUsers", "DeleteUser", "CreateRole", "PutUserPolicy",
        "CreateAccessKey", "ListAccessKeys", "AttachRolePolicy", "CreatePolicy", "TagUser", "SimulatePrincipalPolicy"],
     &["UserName", "RoleName", "Path", "PolicyName", "PolicyDocument", "AssumeRolePolicyDocument", "PolicyArn",
       "Tags.member.1.Key", "Tags.member.1.Value", "MaxItems", "Marker", "ActionNames.member.1"]),
    ("sts", "2011-06-15", &["GetCallerIdentity", "AssumeRole", "GetSessionToken", "GetAccessKeyInfo", "DecodeAuthorizationMessage"],
     &["RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "PolicyArns.member.1.arn", "Tags.member.1.Key",
       "AccessKeyId", "EncodedMessage", "SerialNumber", "TokenCode"]),
];

#[derive(Debug, Clone)]
enum Case {
    Json { service: usize, op: prop::sample::Index, body: Vec<u8>, content_type: String },
    Query { service: usize, op: prop::sample::Index, params: Vec<(prop::sample::Index, String)>, version: bool },
    Cbor { op: String, body: Vec<u8> },
    Path { path: String, method: &'static str, target: String, body: Vec<u8> },
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("application/x-amz-json-1.1".to_owned()),
        1 => Just("application/x-amz-json-1.0".to_owned()),
        1 => Just("application/json".to_owned()),
        1 => Just("application/cbor".to_owned()),
        1 => Just("text/plain".to_owned()),
        1 => "[a-z/.+-]{0,20}",
    ]
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        5 => (0..JSON_OPS.len(), any::<prop::sample::Index>(),
              prop_oneof![4 => json_value().prop_map(|v| v.to_string().into_bytes()), 1 => proptest::collection::vec(any::<u8>(), 0..64)],
              content_type())
            .prop_map(|(service, op, body, content_type)| Case::Json { service, op, body, content_type }),
        4 => (0..QUERY.len(), any::<prop::sample::Index>(),
              proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![proptest::sample::select(TEXTS).prop_map(str::to_owned), ".{0,16}"]), 0..6),
              any::<bool>())
            .prop_map(|(service, op, params, version)| Case::Query { service, op, params, version }),
        1 => (prop_oneof![Just("ListMetrics".to_owned()), "[A-Za-z]{0,10}"], proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(op, body)| Case::Cbor { op, body }),
        1 => ("/[a-z0-9/._%-]{0,24}", prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")], "[ -~]{0,40}", proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(path, method, target, body)| Case::Path { path, method, target, body }),
    ]
}

/// The request for a case, and the signing name it is signed for.
fn request(case: &Case) -> Option<(http::Request<Vec<u8>>, &'static str)> {
    let builder = |method: &str, uri: &str| http::Request::builder().method(method).uri(uri).header("host", "berth.test");
    Some(match case {
        Case::Json { service, op, body, content_type } => {
            let (name, prefix, ops) = JSON_OPS[*service];
            let req = builder("POST", "http://berth.test/")
                .header("content-type", content_type.as_str())
                .header("x-amz-target", format!("{prefix}.{}", op.get(ops)))
                .body(body.clone())
                .ok()?;
            (req, name)
        }
        Case::Query { service, op, params, version } => {
            let (name, api_version, ops, members) = QUERY[*service];
            let mut pairs = vec![("Action".to_owned(), op.get(ops).to_string())];
            if *version {
                pairs.push(("Version".to_owned(), api_version.to_owned()));
            }
            pairs.extend(params.iter().map(|(k, v)| (k.get(members).to_string(), v.clone())));
            let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            let req = builder("POST", "http://berth.test/")
                .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
                .body(form.into_bytes())
                .ok()?;
            (req, name)
        }
        Case::Cbor { op, body } => {
            let uri = format!("http://berth.test/service/GraniteServiceVersion20100801/operation/{op}");
            let req = builder("POST", &uri)
                .header("content-type", "application/cbor")
                .header("accept", "application/cbor")
                .header("smithy-protocol", "rpc-v2-cbor")
                .body(body.clone())
                .ok()?;
            (req, "monitoring")
        }
        Case::Path { path, method, target, body } => {
            let mut b = builder(method, &format!("http://berth.test{path}"));
            if let Ok(v) = http::HeaderValue::from_str(target) {
                b = b.header("x-amz-target", v);
            }
            (b.body(body.clone()).ok()?, "ecs")
        }
    })
}

fn aws_shaped(content_type: &str, body: &[u8]) -> bool {
    if content_type.contains("cbor") {
        let Ok(v) = ciborium::from_reader::<ciborium::Value, _>(body) else { return false };
        return v.as_map().is_some_and(|m| m.iter().any(|(k, _)| k.as_text() == Some("__type")));
    }
    let text = String::from_utf8_lossy(body);
    if content_type.contains("xml") {
        return text.contains("<Code>");
    }
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("__type").and_then(Value::as_str).is_some_and(|t| !t.is_empty()))
        || text.contains("<Code>")
}

async fn api() -> (Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open store");
    stores
        .records
        .insert_access_key(&AccessKey { access_key_id: ROOT.into(), secret_access_key: ROOT_SECRET.into(), created_at: 0 })
        .await
        .expect("insert key");
    (Api::new(stores, ApiConfig::new(Account { region: "us-east-1".into(), account_id: "123456789012".into() })), dir)
}

/// The case's request, signed with the root key, through the router:
/// status, content type, body.
async fn answer(api: &Api, case: &Case) -> Option<(u16, String, bytes::Bytes)> {
    let (mut req, service) = request(case)?;
    let creds = Creds { access_key_id: ROOT.into(), secret_access_key: ROOT_SECRET.into() };
    sign(&mut req, &creds, "us-east-1", service, SystemTime::now()).expect("sign");
    let resp = router(api.clone()).oneshot(req.map(Body::from)).await.expect("response");
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Some((status, ct, bytes))
}

#[test]
fn the_edge_answers_random_requests_with_aws_errors() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (api, _dir) = rt.block_on(api());
    let mut runner = TestRunner::new(config(64));
    let result = runner.run(&case(), |case| {
        let Some((status, content_type, body)) = rt.block_on(answer(&api, &case)) else { return Ok(()) };
        prop_assert!(status < 500, "{case:?}: {status} {}", String::from_utf8_lossy(&body));
        prop_assert!((200..300).contains(&status) || (400..500).contains(&status), "{case:?}: {status}");
        if status >= 400 {
            prop_assert!(aws_shaped(&content_type, &body), "{case:?}: {status} {content_type} {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Found by the fuzz test: a method a route does not take (`PUT /`)
/// answered axum's 405 with an empty body.
#[test]
fn other_methods_on_known_paths_answer_aws_errors() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (api, _dir) = rt.block_on(api());
    for (method, path) in [("PUT", "/"), ("DELETE", "/"), ("GET", "/service/GraniteServiceVersion20100801/operation/ListMetrics"),
                           ("POST", "/healthz"), ("GET", berth_wire::berth::IMPORT_PATH)] {
        let case = Case::Path { path: path.into(), method, target: String::new(), body: Vec::new() };
        let (status, content_type, body) = rt.block_on(answer(&api, &case)).expect("a request");
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        assert!(aws_shaped(&content_type, &body), "{method} {path}: {status} {content_type} {}", String::from_utf8_lossy(&body));
    }
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd".to_owned()),
        "AWS4-HMAC-SHA256( (Credential|SignedHeaders|Signature)=[A-Za-z0-9/;=,_-]{0,30},?){0,4}",
        "AWS4-[A-Z0-9-]{0,12} .{0,40}",
        "[ -~]{0,60}",
    ]
}

fn presigned_query() -> impl Strategy<Value = String> {
    let param = prop_oneof![
        Just("X-Amz-Algorithm"), Just("X-Amz-Credential"), Just("X-Amz-Date"), Just("X-Amz-Expires"),
        Just("X-Amz-SignedHeaders"), Just("X-Amz-Signature"), Just("X-Amz-Security-Token"), Just("Action"),
    ];
    proptest::collection::vec((param, "[A-Za-z0-9%/;=_.-]{0,24}"), 0..7)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn sigv4_parse_random_heads(auth in proptest::option::of(header_value()),
                                date in proptest::option::of(prop_oneof![Just("20240101T000000Z".to_owned()), "[0-9TZ]{0,18}", "[ -~]{0,20}"]),
                                token in proptest::option::of("[ -~]{0,20}"),
                                host in proptest::option::of("[a-z0-9.:\\[\\]-]{0,20}"),
                                query in proptest::option::of(presigned_query()),
                                path in "/[a-z0-9/%.]{0,16}") {
        let uri = match &query { Some(q) => format!("{path}?{q}"), None => path.clone() };
        let Ok(mut b) = http::Request::builder().method("POST").uri(uri).body(()).map(|r| r.into_parts().0) else { return Ok(()) };
        for (name, value) in [("authorization", &auth), ("x-amz-date", &date), ("x-amz-security-token", &token), ("host", &host)] {
            if let Some(v) = value.as_ref().and_then(|v| http::HeaderValue::from_str(v).ok()) {
                b.headers.insert(name, v);
            }
        }
        match sigv4::parse(&b) {
            Ok(signed) => {
                let _ = format!("{signed:?}");
                let now = time::OffsetDateTime::now_utc();
                if let Err(e) = sigv4::verify(&signed, &b, b"{}", "secret", &sigv4::Scope { region: "us-east-1", service: "ecs" }, now) {
                    prop_assert!(e.aws_type().ends_with("Exception"), "{e:?}");
                }
            }
            Err(e) => {
                prop_assert!(e.aws_type().ends_with("Exception"), "{e:?}");
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
