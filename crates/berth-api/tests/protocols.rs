//! The edge's protocols through the router (`oneshot`), on a real SQLite
//! store, with requests signed by AWS's own SigV4 implementation: each
//! protocol is told by its marks, answers in its own form, and writes its
//! errors — malformed input, unknown operations and services — in its own
//! error shape, never a 500.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_store::{AccessKey, Store};
use berth_testinfra::sign::{Creds, SignOptions, sign, sign_with};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

const AKID: &str = "AKIDPROTOCOLTEST0001";
const SECRET: &str = "protocol-test-secret";

pub struct Harness {
    pub api: Api,
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

pub async fn harness() -> Harness {
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

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn cbor(&self) -> ciborium::Value {
        ciborium::from_reader(&self.body[..]).expect("CBOR body")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

pub async fn send(h: &Harness, req: http::Request<Vec<u8>>) -> Answer {
    let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes().to_vec();
    Answer { status, headers, body }
}

fn signed(mut req: http::Request<Vec<u8>>, service: &str, secret: &str) -> http::Request<Vec<u8>> {
    let creds = Creds { access_key_id: AKID.into(), secret_access_key: secret.into() };
    sign(&mut req, &creds, "us-east-1", service, SystemTime::now()).expect("sign");
    req
}

/// A form request (AWS Query / EC2) signed for `service`.
pub fn form(service: &str, body: &str) -> http::Request<Vec<u8>> {
    form_with(service, body.as_bytes(), SECRET)
}

fn form_with(service: &str, body: &[u8], secret: &str) -> http::Request<Vec<u8>> {
    let req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body.to_vec())
        .expect("request");
    signed(req, service, secret)
}

fn cbor_request(service: &str, op: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://berth.test/service/{service}/operation/{op}"))
        .header("host", "berth.test")
        .header("content-type", "application/cbor")
        .header("accept", "application/cbor")
        .header("smithy-protocol", "rpc-v2-cbor")
        .body(body)
        .expect("request");
    signed(req, "monitoring", SECRET)
}

fn cbor(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("encode");
    out
}

fn cbor_get<'a>(v: &'a ciborium::Value, key: &str) -> Option<&'a ciborium::Value> {
    v.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

fn json_request(target: &str, version: &str, body: &str, service: &str) -> http::Request<Vec<u8>> {
    let req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", format!("application/x-amz-json-{version}"))
        .header("x-amz-target", target)
        .header("x-amzn-query-mode", "true")
        .body(body.as_bytes().to_vec())
        .expect("request");
    signed(req, service, SECRET)
}

/// The text of the first `<name>` element (tests read small documents).
pub fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn assert_query_error(a: &Answer, status: u16, code: &str) {
    let xml = a.text();
    assert_eq!(a.status, status, "{xml}");
    assert!(xml.contains("<ErrorResponse>"), "{xml}");
    assert_eq!(element(&xml, "Type"), Some(if status >= 500 { "Receiver" } else { "Sender" }), "{xml}");
    assert_eq!(element(&xml, "Code"), Some(code), "{xml}");
    assert!(element(&xml, "RequestId").is_some_and(|r| !r.is_empty()), "{xml}");
    assert!(a.header("content-type").starts_with("text/xml"), "{:?}", a.headers);
}

pub fn assert_ec2_error(a: &Answer, status: u16, code: &str) {
    let xml = a.text();
    assert_eq!(a.status, status, "{xml}");
    assert!(xml.contains("<Response><Errors><Error>"), "{xml}");
    assert_eq!(element(&xml, "Code"), Some(code), "{xml}");
    assert!(element(&xml, "RequestID").is_some_and(|r| !r.is_empty()), "{xml}");
}

fn assert_cbor_error(a: &Answer, code: &str) -> String {
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.header("content-type"), "application/cbor");
    assert_eq!(a.header("smithy-protocol"), "rpc-v2-cbor");
    let v = a.cbor();
    assert_eq!(cbor_get(&v, "__type").and_then(|t| t.as_text()), Some(code), "{v:?}");
    cbor_get(&v, "message").and_then(|t| t.as_text()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn sts_get_caller_identity_over_query() {
    let h = harness().await;
    let a = send(&h, form("sts", "Action=GetCallerIdentity&Version=2011-06-15")).await;
    let xml = a.text();
    assert_eq!(a.status, 200, "{xml}");
    assert!(xml.contains("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"), "{xml}");
    assert_eq!(element(&xml, "Account"), Some("123456789012"));
    assert_eq!(element(&xml, "Arn"), Some("arn:aws:iam::123456789012:root"));
    assert_eq!(element(&xml, "UserId"), Some("123456789012"));
    let request_id = element(&xml, "RequestId").expect("RequestId");
    assert_eq!(a.header("x-amzn-requestid"), request_id);
}

#[tokio::test]
async fn query_errors_are_query_documents() {
    let h = harness().await;
    // An operation STS has that Berth does not serve names it.
    let a = send(&h, form("sts", "Action=GetFederationToken&Version=2011-06-15&Name=y")).await;
    assert_query_error(&a, 400, "InvalidAction");
    assert!(element(&a.text(), "Message").unwrap().contains("GetFederationToken"), "{}", a.text());
    // One no model has.
    let a = send(&h, form("sts", "Action=FlyToTheMoon")).await;
    assert_query_error(&a, 400, "InvalidAction");
    assert!(a.text().contains("FlyToTheMoon"));
    // No Action at all; an XML body where a form belongs.
    assert_query_error(&send(&h, form("sts", "Version=2011-06-15")).await, 400, "MissingAction");
    assert_query_error(&send(&h, form("sts", "<GetCallerIdentity/>")).await, 400, "MissingAction");
    // Malformed forms.
    for body in [&b"Action=GetCallerIdentity&%zz"[..], b"Action=GetCallerIdentity&%", b"\xff\xfe\x00", b"=x&Action=GetCallerIdentity"] {
        let a = send(&h, form_with("sts", body, SECRET)).await;
        assert_query_error(&a, 400, "MalformedQueryString");
    }
    // A service Berth does not serve, named by the signature's scope.
    let a = send(&h, form("sqs", "Action=ListQueues&Version=2012-11-05")).await;
    assert_query_error(&a, 400, "UnknownService");
    assert!(a.text().contains("'sqs'"), "{}", a.text());
    // Authentication: unsigned, a wrong secret.
    let unsigned = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"Action=GetCallerIdentity".to_vec())
        .unwrap();
    assert_query_error(&send(&h, unsigned).await, 403, "MissingAuthenticationToken");
    let a = send(&h, form_with("sts", b"Action=GetCallerIdentity", "not-the-secret")).await;
    assert_query_error(&a, 403, "SignatureDoesNotMatch");
}

/// A session's key signs with its token until it expires: then
/// ExpiredToken in Query, ExpiredTokenException in JSON; a wrong token, or
/// none, is an invalid token.
#[tokio::test]
async fn expired_and_wrong_session_tokens_are_refused_in_each_protocol() {
    let h = harness().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let spec = |duration_secs| berth_store::SessionSpec {
        principal: berth_model::iam::SessionPrincipal::Root,
        duration_secs,
        policy: None,
        tags: Default::default(),
    };
    let live = berth_store::issue_session(h.store.as_ref(), spec(900), now).await.expect("session");
    let ended = berth_store::issue_session(h.store.as_ref(), spec(60), now - 120).await.expect("session");
    let with_token = |creds: &berth_store::TemporaryCredentials, token: Option<&str>, json: bool| {
        let mut req = http::Request::builder().method("POST").uri("http://berth.test/").header("host", "berth.test");
        let (service, body) = if json {
            req = req.header("content-type", "application/x-amz-json-1.1").header("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters");
            ("ecs", b"{}".to_vec())
        } else {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            ("sts", b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())
        };
        let mut req = req.body(body).expect("request");
        let keys = Creds { access_key_id: creds.access_key_id.clone(), secret_access_key: creds.secret_access_key.clone() };
        let options = SignOptions { session_token: token.map(str::to_owned), ..SignOptions::default() };
        sign_with(&mut req, &keys, "us-east-1", service, SystemTime::now(), &options).expect("sign");
        req
    };
    let a = send(&h, with_token(&live, Some(&live.session_token), false)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("<Arn>arn:aws:iam::123456789012:root</Arn>"), "{}", a.text());
    let a = send(&h, with_token(&ended, Some(&ended.session_token), false)).await;
    assert_query_error(&a, 403, "ExpiredToken");
    assert_eq!(element(&a.text(), "Message"), Some("The security token included in the request is expired"));
    let a = send(&h, with_token(&ended, Some(&ended.session_token), true)).await;
    assert_eq!(a.json()["__type"], "ExpiredTokenException", "{}", a.text());
    for token in [None, Some("not-the-token")] {
        let a = send(&h, with_token(&live, token, false)).await;
        assert_query_error(&a, 403, "InvalidClientTokenId");
    }
}

#[tokio::test]
async fn ec2_errors_are_ec2_documents() {
    let h = harness().await;
    let a = send(&h, form("ec2", "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1&MaxCount=1")).await;
    assert_ec2_error(&a, 400, "UnsupportedOperation");
    assert!(a.text().contains("RunInstances"), "{}", a.text());
    assert_ec2_error(&send(&h, form("ec2", "Action=FlyToTheMoon&Version=2016-11-15")).await, 400, "InvalidAction");
    let a = send(&h, form("ec2", "Action=DescribeSecurityGroups&Version=2016-11-15&MaxResults=many")).await;
    assert_ec2_error(&a, 400, "InvalidParameterValue");
    assert!(a.text().contains("MaxResults"), "{}", a.text());
    let a = send(&h, form("ec2", "Action=DeleteSubnet&Version=2016-11-15")).await;
    assert_ec2_error(&a, 400, "MissingParameter");
    assert!(a.text().contains("SubnetId"), "{}", a.text());
    assert_ec2_error(&send(&h, form_with("ec2", b"Action=DescribeVpcs&%g0", SECRET)).await, 400, "MalformedQueryString");
    let a = send(&h, form_with("ec2", b"Action=DescribeVpcs", "wrong")).await;
    assert_ec2_error(&a, 403, "SignatureDoesNotMatch");
    let mut unknown_key = form("ec2", "Action=DescribeVpcs");
    let auth = unknown_key.headers()["authorization"].to_str().unwrap().replace(AKID, "AKIDNOSUCHKEY0000000");
    unknown_key.headers_mut().insert("authorization", auth.parse().unwrap());
    assert_ec2_error(&send(&h, unknown_key).await, 403, "AuthFailure");
}

#[tokio::test]
async fn cloudwatch_list_metrics_over_its_three_protocols() {
    let h = harness().await;
    // Smithy RPC v2 CBOR.
    let a = send(&h, cbor_request("GraniteServiceVersion20100801", "ListMetrics", cbor(&ciborium::Value::Map(vec![])))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("smithy-protocol"), "rpc-v2-cbor");
    assert_eq!(a.header("content-type"), "application/cbor");
    let v = a.cbor();
    assert_eq!(cbor_get(&v, "Metrics"), Some(&ciborium::Value::Array(vec![])), "{v:?}");
    // With a filter, and with no body at all.
    let filter = ciborium::Value::Map(vec![
        ("Namespace".into(), "AWS/ECS".into()),
        (
            "Dimensions".into(),
            ciborium::Value::Array(vec![ciborium::Value::Map(vec![("Name".into(), "ClusterName".into())])]),
        ),
    ]);
    assert_eq!(send(&h, cbor_request("GraniteServiceVersion20100801", "ListMetrics", cbor(&filter))).await.status, 200);
    assert_eq!(send(&h, cbor_request("GraniteServiceVersion20100801", "ListMetrics", vec![])).await.status, 200);
    // AWS JSON 1.0, as boto3 and the aws CLI send it (query mode).
    let a = send(&h, json_request("GraniteServiceVersion20100801.ListMetrics", "1.0", "{}", "monitoring")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), "application/x-amz-json-1.0");
    assert_eq!(a.json(), serde_json::json!({"Metrics": []}));
    // AWS Query.
    let a = send(&h, form("monitoring", "Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FECS")).await;
    let xml = a.text();
    assert_eq!(a.status, 200, "{xml}");
    assert!(xml.contains("<ListMetricsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><ListMetricsResult><Metrics></Metrics></ListMetricsResult><ResponseMetadata><RequestId>"), "{xml}");
    // The same rule, three error shapes.
    let a = send(&h, json_request("GraniteServiceVersion20100801.ListMetrics", "1.0", r#"{"NextToken":"x"}"#, "monitoring")).await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("InvalidNextToken")), "{}", a.text());
    assert_eq!(a.header("x-amzn-query-error"), "InvalidNextToken;Sender");
    let bad = ciborium::Value::Map(vec![("NextToken".into(), "x".into())]);
    let a = send(&h, cbor_request("GraniteServiceVersion20100801", "ListMetrics", cbor(&bad))).await;
    assert_cbor_error(&a, "InvalidNextToken");
    assert_query_error(&send(&h, form("monitoring", "Action=ListMetrics&NextToken=x")).await, 400, "InvalidNextToken");
}

#[tokio::test]
async fn malformed_cbor_gets_cbor_errors() {
    let h = harness().await;
    let svc = "GraniteServiceVersion20100801";
    let array = cbor(&ciborium::Value::Array(vec![]));
    let tagged = cbor(&ciborium::Value::Map(vec![("Namespace".into(), ciborium::Value::Tag(99, Box::new("x".into())))]));
    let wrong_type = cbor(&ciborium::Value::Map(vec![("Namespace".into(), 5.into())]));
    let mut trailing = cbor(&ciborium::Value::Map(vec![]));
    trailing.push(0x01);
    let int_key = cbor(&ciborium::Value::Map(vec![(1.into(), "x".into())]));
    for body in [vec![0xff], vec![0xbf, 0x61], array, tagged, wrong_type, trailing, int_key, b"{}".to_vec()] {
        let a = send(&h, cbor_request(svc, "ListMetrics", body.clone())).await;
        assert_cbor_error(&a, "SerializationException");
    }
    // An operation CloudWatch has that Berth does not serve, and one it has not.
    let msg = assert_cbor_error(&send(&h, cbor_request(svc, "GetDashboard", cbor(&ciborium::Value::Map(vec![])))).await, "UnknownOperationException");
    assert!(msg.contains("GetDashboard"), "{msg}");
    // A required member missing is CloudWatch's MissingParameter.
    let msg = assert_cbor_error(&send(&h, cbor_request(svc, "GetMetricData", cbor(&ciborium::Value::Map(vec![])))).await, "MissingParameter");
    assert!(msg.contains("MetricDataQueries"), "{msg}");
    let msg = assert_cbor_error(&send(&h, cbor_request(svc, "Nope", vec![])).await, "UnknownOperationException");
    assert!(msg.contains("Nope"), "{msg}");
    // A Smithy service Berth does not serve.
    let msg = assert_cbor_error(&send(&h, cbor_request("AmazonSQS", "SendMessage", vec![])).await, "UnknownOperationException");
    assert!(msg.contains("'AmazonSQS'"), "{msg}");
    // The path without its protocol header.
    let mut req = cbor_request(svc, "ListMetrics", vec![]);
    req.headers_mut().remove("smithy-protocol");
    assert_cbor_error(&send(&h, req).await, "SerializationException");
}

#[tokio::test]
async fn json_names_a_service_berth_does_not_serve() {
    let h = harness().await;
    let a = send(&h, json_request("AmazonSQS.SendMessage", "1.0", "{}", "sqs")).await;
    assert_eq!(a.status, 400);
    let v = a.json();
    assert_eq!(v["__type"], "UnknownOperationException");
    assert!(v["message"].as_str().unwrap().contains("'AmazonSQS'"), "{v}");
    let a = send(&h, json_request("GraniteServiceVersion20100801.PutDashboard", "1.0", "{}", "monitoring")).await;
    assert_eq!(a.json()["__type"], "UnknownOperationException");
    assert!(a.json()["message"].as_str().unwrap().contains("PutDashboard"));
    let a = send(&h, json_request("GraniteServiceVersion20100801.PutMetricData", "1.0", "{}", "monitoring")).await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("MissingParameter")), "{}", a.text());
    assert!(a.json()["message"].as_str().unwrap().contains("Namespace"));
    let a = send(&h, json_request("GraniteServiceVersion20100801.ListMetrics", "1.0", "{not json", "monitoring")).await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("SerializationException")));
}

/// Whatever the bytes, no protocol answers with a 5xx or panics.
#[tokio::test]
async fn garbage_never_gets_a_server_error() {
    let h = harness().await;
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        b"Action=".to_vec(),
        b"Action=DescribeSecurityGroups&Filter.99999999999.Name=x".to_vec(),
        b"Action=DescribeSecurityGroups&Filter.1.Value.1=x".to_vec(),
        b"Action=CreateTags&ResourceId.1=x&Tag.1.Key=a".to_vec(),
        b"Action=AuthorizeSecurityGroupIngress&IpPermissions.1.FromPort=99999999999".to_vec(),
        b"Action=ListMetrics&Dimensions.member.1.Value=v".to_vec(),
        b"Action=GetCallerIdentity&&&&==&".to_vec(),
        (0u8..=255).collect(),
        vec![0xa1, 0x61, 0x41, 0xff],
    ];
    for body in &bodies {
        for service in ["ec2", "sts", "monitoring"] {
            let a = send(&h, form_with(service, body, SECRET)).await;
            assert!(a.status < 500, "{service} {body:?}: {} {}", a.status, a.text());
        }
        let a = send(&h, cbor_request("GraniteServiceVersion20100801", "ListMetrics", body.clone())).await;
        assert!(a.status < 500, "cbor {body:?}: {} {}", a.status, a.text());
        for (method, path) in [("GET", "/schedules"), ("GET", "/schedule-groups"), ("GET", "/schedules/x"), ("PUT", "/schedules/x")] {
            let a = send(&h, rest_request(method, path, body, "scheduler")).await;
            assert!(a.status < 500, "rest {method} {path} {body:?}: {} {}", a.status, a.text());
        }
    }
}

/// A REST-JSON request signed for `service` (the scope names it).
fn rest_request(method: &str, path_and_query: &str, body: &[u8], service: &str) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder().method(method).uri(format!("http://berth.test{path_and_query}")).header("host", "berth.test");
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    signed(b.body(body.to_vec()).expect("request"), service, SECRET)
}

async fn scheduler(h: &Harness, method: &str, path_and_query: &str) -> Answer {
    send(h, rest_request(method, path_and_query, b"", "scheduler")).await
}

/// A REST-JSON error: its status, `x-amzn-ErrorType`, and the body's
/// `__type` and message member; returns the message.
fn assert_rest_error(a: &Answer, status: u16, code: &str, member: &str) -> String {
    assert_eq!(a.status, status, "{}", a.text());
    assert_eq!(a.header("x-amzn-errortype"), code, "{:?}", a.headers);
    assert_eq!(a.header("content-type"), "application/json");
    let v = a.json();
    assert_eq!(v["__type"], code, "{v}");
    v[member].as_str().unwrap_or_else(|| panic!("no {member} in {v}")).to_owned()
}

#[tokio::test]
async fn scheduler_answers_over_rest_json() {
    let h = harness().await;
    let a = scheduler(&h, "GET", "/schedules").await;
    assert_eq!((a.status, a.header("content-type")), (200, "application/json"), "{}", a.text());
    assert_eq!(a.json(), serde_json::json!({ "Schedules": [] }), "an empty list is kept");
    let a = scheduler(&h, "GET", "/schedules?MaxResults=100&State=DISABLED&NamePrefix=my-&ScheduleGroup=default").await;
    assert_eq!((a.status, a.json()), (200, serde_json::json!({ "Schedules": [] })), "{}", a.text());
    assert!(!a.header("x-amzn-requestid").is_empty());

    // The default group, dated from the calling key, its timestamps as epoch seconds.
    h.store
        .insert_access_key(&AccessKey { access_key_id: "AKIDOLDERKEY00000001".into(), secret_access_key: "s2".into(), created_at: 1_700_000_000 })
        .await
        .unwrap();
    let mut req = http::Request::builder().method("GET").uri("http://berth.test/schedule-groups").header("host", "berth.test").body(vec![]).unwrap();
    let creds = Creds { access_key_id: "AKIDOLDERKEY00000001".into(), secret_access_key: "s2".into() };
    sign(&mut req, &creds, "us-east-1", "scheduler", SystemTime::now()).unwrap();
    let a = send(&h, req).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let groups = a.json()["ScheduleGroups"].clone();
    assert_eq!(
        groups,
        serde_json::json!([{
            "Arn": "arn:aws:scheduler:us-east-1:123456789012:schedule-group/default",
            "Name": "default",
            "State": "ACTIVE",
            "CreationDate": 1_700_000_000.0,
            "LastModificationDate": 1_700_000_000.0,
        }])
    );
    let a = scheduler(&h, "GET", "/schedule-groups?NamePrefix=prod").await;
    assert_eq!(a.json(), serde_json::json!({ "ScheduleGroups": [] }), "a prefix the default group lacks");

    // GetSchedule: a path label (percent-decoded) and a query member.
    let a = scheduler(&h, "GET", "/schedules/nightly%2Ebackup?groupName=ops").await;
    let msg = assert_rest_error(&a, 404, "ResourceNotFoundException", "Message");
    assert!(msg.contains("ops/nightly.backup"), "{msg}");
    let msg = assert_rest_error(&scheduler(&h, "GET", "/schedules/nightly").await, 404, "ResourceNotFoundException", "Message");
    assert!(msg.contains("default/nightly"), "{msg}");
}

#[tokio::test]
async fn scheduler_checks_its_query_parameters() {
    let h = harness().await;
    for (query, naming) in [
        ("MaxResults=0", "maxResults"),
        ("MaxResults=101", "maxResults"),
        ("MaxResults=ten", "MaxResults"),
        ("State=PAUSED", "State"),
        ("NamePrefix=bad%21name", "namePrefix"),
        ("NamePrefix=", "namePrefix"),
        ("ScheduleGroup=a%20b", "groupName"),
        ("NextToken=not-ours", "NextToken"),
    ] {
        let a = scheduler(&h, "GET", &format!("/schedules?{query}")).await;
        let msg = assert_rest_error(&a, 400, "ValidationException", "Message");
        assert!(msg.contains(naming), "{query}: {msg}");
    }
    let a = scheduler(&h, "GET", "/schedules/x?groupName=no%2Fslash").await;
    assert_rest_error(&a, 400, "ValidationException", "Message");
    let a = scheduler(&h, "GET", "/schedules?MaxResults=%zz").await;
    assert_rest_error(&a, 400, "SerializationException", "message");
}

#[tokio::test]
async fn rest_routes_unknown_unserved_and_malformed() {
    let h = harness().await;
    // No route of the model: 404 naming the method and path.
    let msg = assert_rest_error(&scheduler(&h, "GET", "/nothing/here").await, 404, "UnknownOperationException", "message");
    assert!(msg.contains("GET /nothing/here") && msg.contains("scheduler"), "{msg}");
    let msg = assert_rest_error(&scheduler(&h, "PATCH", "/schedules").await, 404, "UnknownOperationException", "message");
    assert!(msg.contains("PATCH /schedules"), "{msg}");
    assert_rest_error(&scheduler(&h, "GET", "/schedules/a/b").await, 404, "UnknownOperationException", "message");
    // A route of the model Berth does not serve yet is named.
    let a = send(&h, rest_request("POST", "/schedules/x", br#"{"ScheduleExpression":"rate(1 hour)"}"#, "scheduler")).await;
    let msg = assert_rest_error(&a, 400, "UnknownOperationException", "message");
    assert!(msg.contains("CreateSchedule"), "{msg}");
    // A body that is not JSON, or not an object, is a SerializationException, never a 500.
    for body in [&b"{not json"[..], b"[1,2]", b"\xff\xfe", b"\"text\"", b"{\"a\":"] {
        let a = send(&h, rest_request("GET", "/schedules", body, "scheduler")).await;
        assert_rest_error(&a, 400, "SerializationException", "message");
    }
    // Unknown body members are ignored, as AWS does for newer SDKs.
    let a = send(&h, rest_request("GET", "/schedules", br#"{"Future":1}"#, "scheduler")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    // A service Berth does not serve, named by the signature's scope.
    let a = send(&h, rest_request("GET", "/2015-03-31/functions", b"", "lambda")).await;
    let msg = assert_rest_error(&a, 400, "UnknownOperationException", "message");
    assert!(msg.contains("'lambda'"), "{msg}");
    // A bad signature is an auth error in REST-JSON's form.
    let a = send(&h, signed(http::Request::builder().uri("http://berth.test/schedules").header("host", "berth.test").body(vec![]).unwrap(), "scheduler", "wrong")).await;
    assert_eq!(a.status, 403, "{}", a.text());
    assert_eq!(a.header("x-amzn-errortype"), "InvalidSignatureException");
    // An unsigned request to a path of no protocol: the edge's clear error.
    let req = http::Request::builder().uri("http://berth.test/schedules").header("host", "berth.test").body(vec![]).unwrap();
    let a = send(&h, req).await;
    assert_eq!(a.status, 400);
    assert!(a.json()["message"].as_str().unwrap().contains("No such endpoint"), "{}", a.text());
}

async fn ec2(h: &Harness, params: &str) -> String {
    let a = send(h, form("ec2", &format!("Action={params}&Version=2016-11-15"))).await;
    let xml = a.text();
    assert_eq!(a.status, 200, "{params}: {xml}");
    assert!(xml.contains("xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\"><requestId>"), "{xml}");
    xml
}

async fn ec2_err(h: &Harness, params: &str, code: &str) -> String {
    let a = send(h, form("ec2", &format!("Action={params}&Version=2016-11-15"))).await;
    assert_ec2_error(&a, 400, code);
    a.text()
}

#[tokio::test]
async fn ec2_security_groups_and_their_rules() {
    let h = harness().await;
    berth_api::ensure_network_defaults(h.store.as_ref(), "10.89.0.0/16").await.unwrap();
    let xml = ec2(&h, "CreateSecurityGroup&GroupName=web&GroupDescription=web+tier&VpcId=vpc-default&TagSpecification.1.ResourceType=security-group&TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value=a").await;
    let web = element(&xml, "groupId").unwrap().to_owned();
    assert!(web.starts_with("sg-"), "{xml}");
    ec2_err(&h, "CreateSecurityGroup&GroupName=web&GroupDescription=again", "InvalidGroup.Duplicate").await;
    ec2_err(&h, "CreateSecurityGroup&GroupName=x&GroupDescription=d&VpcId=vpc-0other", "InvalidVpcID.NotFound").await;
    // EC2's default egress rule, which Terraform revokes (IPv4, then IPv6).
    let xml = ec2(&h, &format!("DescribeSecurityGroups&GroupId.1={web}")).await;
    assert!(xml.contains("<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol>"), "{xml}");
    assert!(xml.contains("<cidrIp>0.0.0.0/0</cidrIp>"), "{xml}");
    assert!(xml.contains("<tagSet><item><key>team</key><value>a</value></item></tagSet>"), "{xml}");
    let revoke = format!("RevokeSecurityGroupEgress&GroupId={web}&IpPermissions.1.IpProtocol=-1");
    ec2(&h, &format!("{revoke}&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0")).await;
    ec2_err(&h, &format!("{revoke}&IpPermissions.1.Ipv6Ranges.1.CidrIpv6=%3A%3A%2F0"), "InvalidPermission.NotFound").await;
    ec2_err(&h, &format!("{revoke}&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0"), "InvalidPermission.NotFound").await;
    // tcp 8080 from the default group; a duplicate; the rule by id.
    let allow = format!(
        "AuthorizeSecurityGroupIngress&GroupId={web}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=8080&IpPermissions.1.ToPort=8080&IpPermissions.1.Groups.1.GroupId=sg-default"
    );
    let xml = ec2(&h, &allow).await;
    let rule = element(&xml, "securityGroupRuleId").unwrap().to_owned();
    ec2_err(&h, &allow, "InvalidPermission.Duplicate").await;
    let xml = ec2(&h, &format!("DescribeSecurityGroupRules&Filter.1.Name=group-id&Filter.1.Value.1={web}")).await;
    assert!(xml.contains(&format!("<securityGroupRuleId>{rule}</securityGroupRuleId>")), "{xml}");
    assert!(xml.contains("<referencedGroupInfo><groupId>sg-default</groupId>"), "{xml}");
    assert!(xml.contains("<isEgress>false</isEgress>"), "{xml}");
    // Egress to a range; ICMP must be all of it; IPv6 cannot be authorized.
    ec2(&h, &format!("AuthorizeSecurityGroupEgress&GroupId={web}&IpPermissions.1.IpProtocol=udp&IpPermissions.1.FromPort=53&IpPermissions.1.ToPort=53&IpPermissions.1.IpRanges.1.CidrIp=10.89.0.0%2F16")).await;
    ec2_err(&h, &format!("AuthorizeSecurityGroupEgress&GroupId={web}&IpPermissions.1.IpProtocol=icmp&IpPermissions.1.FromPort=8&IpPermissions.1.ToPort=0&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8"), "InvalidParameterValue").await;
    ec2_err(&h, &format!("AuthorizeSecurityGroupIngress&GroupId={web}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2&IpPermissions.1.Ipv6Ranges.1.CidrIpv6=%3A%3A%2F0"), "InvalidParameterValue").await;
    ec2_err(&h, &format!("AuthorizeSecurityGroupIngress&GroupId={web}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2&IpPermissions.1.Groups.1.GroupId=sg-nope"), "InvalidGroup.NotFound").await;
    // Filters and the group Berth's own API shows.
    let xml = ec2(&h, "DescribeSecurityGroups&Filter.1.Name=tag%3Ateam&Filter.1.Value.1=a").await;
    assert_eq!(xml.matches("<groupName>").count(), 1, "{xml}");
    let xml = ec2(&h, "DescribeSecurityGroups&Filter.1.Name=group-name&Filter.1.Value.1=nope").await;
    assert!(xml.contains("<securityGroupInfo></securityGroupInfo>"), "{xml}");
    ec2_err(&h, "DescribeSecurityGroups&Filter.1.Name=colour&Filter.1.Value.1=x", "InvalidParameterValue").await;
    ec2_err(&h, "DescribeSecurityGroups&GroupId.1=sg-0000", "InvalidGroup.NotFound").await;
    let g = h.store.get_security_group(&web).await.unwrap().unwrap().value;
    assert_eq!(g.ingress.len(), 1);
    assert_eq!(g.ingress[0].from_port, 8080);
    assert_eq!(g.egress.len(), 1);
    assert_eq!(g.egress[0].protocol, "udp");
    // The default group cannot go; one a rule names cannot either.
    ec2_err(&h, "DeleteSecurityGroup&GroupId=sg-default", "CannotDelete").await;
    let xml = ec2(&h, "CreateSecurityGroup&GroupName=db&GroupDescription=db").await;
    let db = element(&xml, "groupId").unwrap().to_owned();
    ec2(&h, &format!("AuthorizeSecurityGroupIngress&GroupId={db}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5432&IpPermissions.1.ToPort=5432&IpPermissions.1.Groups.1.GroupId={web}")).await;
    ec2_err(&h, &format!("DeleteSecurityGroup&GroupId={web}"), "DependencyViolation").await;
    ec2(&h, &format!("RevokeSecurityGroupIngress&GroupId={db}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5432&IpPermissions.1.ToPort=5432&IpPermissions.1.Groups.1.GroupId={web}")).await;
    ec2(&h, &format!("DeleteSecurityGroup&GroupId={web}")).await;
    ec2(&h, "DeleteSecurityGroup&GroupName=db").await;
    ec2_err(&h, &format!("DeleteSecurityGroup&GroupId={web}"), "InvalidGroup.NotFound").await;
    // DryRun.
    ec2_err(&h, "CreateSecurityGroup&GroupName=dry&GroupDescription=d&DryRun=true", "DryRunOperation").await;
    assert!(h.store.list_security_groups().await.unwrap().iter().all(|g| g.value.name != "dry"));
}

#[tokio::test]
async fn ec2_subnets_tags_pages_and_the_vpc() {
    let h = harness().await;
    berth_api::ensure_network_defaults(h.store.as_ref(), "10.89.0.0/16").await.unwrap();
    let xml = ec2(&h, "DescribeVpcs").await;
    assert!(xml.contains("<vpcId>vpc-default</vpcId>") && xml.contains("<isDefault>true</isDefault>"), "{xml}");
    ec2_err(&h, "DescribeVpcs&VpcId.1=vpc-1234", "InvalidVpcID.NotFound").await;
    let xml = ec2(&h, "DescribeAvailabilityZones").await;
    assert!(xml.contains("<zoneName>us-east-1a</zoneName>") && xml.contains("<zoneId>use1-az1</zoneId>"), "{xml}");
    assert!(ec2(&h, "DescribeRegions").await.contains("<regionName>us-east-1</regionName>"));
    assert!(ec2(&h, "DescribeAccountAttributes&AttributeName.1=default-vpc").await.contains("<attributeValue>vpc-default</attributeValue>"));
    ec2_err(&h, "CreateSubnet&VpcId=vpc-default&CidrBlock=8.8.8.0%2F24", "InvalidSubnet.Range").await;
    ec2_err(&h, "CreateSubnet&VpcId=vpc-default&CidrBlock=10.89.3.0%2F24", "InvalidSubnet.Conflict").await;
    ec2_err(&h, "CreateSubnet&VpcId=vpc-nope&CidrBlock=10.90.0.0%2F24", "InvalidVpcID.NotFound").await;
    let xml = ec2(&h, "CreateSubnet&VpcId=vpc-default&CidrBlock=10.90.0.0%2F24&TagSpecification.1.ResourceType=subnet&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=apps").await;
    let subnet = element(&xml, "subnetId").unwrap().to_owned();
    assert!(xml.contains("<availableIpAddressCount>253</availableIpAddressCount>"), "{xml}");
    assert_eq!(h.store.get_subnet(&subnet).await.unwrap().unwrap().value.name, "apps", "the Name tag is Berth's name");
    let xml = ec2(&h, "DescribeSubnets&Filter.1.Name=tag%3AName&Filter.1.Value.1=app*").await;
    assert_eq!(element(&xml, "subnetId"), Some(subnet.as_str()), "{xml}");
    ec2_err(&h, "DescribeSubnets&SubnetId.1=subnet-0nope", "InvalidSubnetID.NotFound").await;
    ec2(&h, &format!("CreateTags&ResourceId.1={subnet}&ResourceId.2=sg-default&Tag.1.Key=env&Tag.1.Value=dev")).await;
    let xml = ec2(&h, "DescribeTags&Filter.1.Name=key&Filter.1.Value.1=env").await;
    assert_eq!(xml.matches("<item>").count(), 2, "{xml}");
    assert!(xml.contains("<resourceType>security-group</resourceType>") && xml.contains("<resourceType>subnet</resourceType>"), "{xml}");
    ec2_err(&h, "CreateTags&ResourceId.1=subnet-0nope&Tag.1.Key=a&Tag.1.Value=b", "InvalidSubnetID.NotFound").await;
    ec2_err(&h, &format!("CreateTags&ResourceId.1={subnet}&Tag.1.Key=aws%3Ax&Tag.1.Value=b"), "InvalidParameterValue").await;
    ec2(&h, &format!("DeleteTags&ResourceId.1={subnet}&Tag.1.Key=env&Tag.1.Value=other")).await;
    assert_eq!(h.store.get_subnet(&subnet).await.unwrap().unwrap().value.tags.get("env").map(String::as_str), Some("dev"));
    ec2(&h, &format!("DeleteTags&ResourceId.1={subnet}&Tag.1.Key=env")).await;
    assert!(h.store.get_subnet(&subnet).await.unwrap().unwrap().value.tags.is_empty());
    // Pages.
    for i in 0..6 {
        ec2(&h, &format!("CreateSecurityGroup&GroupName=g{i}&GroupDescription=d")).await;
    }
    let xml = ec2(&h, "DescribeSecurityGroups&MaxResults=5").await;
    assert_eq!(xml.matches("<groupName>").count(), 5, "{xml}");
    let token = element(&xml, "nextToken").unwrap().to_owned();
    let xml = ec2(&h, &format!("DescribeSecurityGroups&MaxResults=5&NextToken={token}")).await;
    assert_eq!(xml.matches("<groupName>").count(), 2, "{xml}");
    assert!(element(&xml, "nextToken").is_none());
    ec2_err(&h, "DescribeSecurityGroups&MaxResults=2", "InvalidParameterValue").await;
    // A subnet whose address a task holds cannot go.
    assert!(h.store.claim_ip(&subnet, "10.90.0.9", "arn:aws:ecs:us-east-1:123456789012:task/c/t1").await.unwrap());
    ec2_err(&h, &format!("DeleteSubnet&SubnetId={subnet}"), "DependencyViolation").await;
    h.store.release_ips("arn:aws:ecs:us-east-1:123456789012:task/c/t1").await.unwrap();
    ec2(&h, &format!("DeleteSubnet&SubnetId={subnet}")).await;
    ec2_err(&h, &format!("DeleteSubnet&SubnetId={subnet}"), "InvalidSubnetID.NotFound").await;
}

// --- ELBv2 (AWS Query, `elasticloadbalancing`) and ACM (JSON 1.1) ---

async fn elb(h: &Harness, params: &str) -> String {
    let a = send(h, form("elasticloadbalancing", &format!("Action={params}&Version=2015-12-01"))).await;
    let xml = a.text();
    assert_eq!(a.status, 200, "{params}: {xml}");
    let op = params.split('&').next().unwrap_or_default();
    assert!(xml.contains(&format!("<{op}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">")), "{xml}");
    assert!(xml.contains("<ResponseMetadata><RequestId>"), "{xml}");
    xml
}

async fn elb_err(h: &Harness, params: &str, code: &str) -> String {
    let a = send(h, form("elasticloadbalancing", &format!("Action={params}&Version=2015-12-01"))).await;
    assert_query_error(&a, 400, code);
    element(&a.text(), "Message").unwrap_or_default().to_owned()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn elbv2_load_balancer_target_group_listener_and_rules_lifecycle() {
    let h = harness().await;
    berth_api::ensure_network_defaults(h.store.as_ref(), "10.89.0.0/16").await.unwrap();
    // A load balancer in the default subnet: an address of its own, ELBv2's names.
    let xml = elb(&h, "CreateLoadBalancer&Name=web&Subnets.member.1=subnet-default&Scheme=internal&Tags.member.1.Key=team&Tags.member.1.Value=a").await;
    let lb = element(&xml, "LoadBalancerArn").unwrap().to_owned();
    assert!(lb.starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/"), "{lb}");
    let dns = element(&xml, "DNSName").unwrap();
    assert!(dns.starts_with("internal-web-") && dns.ends_with(".us-east-1.elb.amazonaws.com"), "{dns}");
    assert_eq!(element(&xml, "CanonicalHostedZoneId"), Some("Z35SXDOTRQ7X7K"));
    assert_eq!(element(&xml, "Code"), Some("provisioning"));
    assert!(xml.contains("<SecurityGroups><member>sg-default</member></SecurityGroups>"), "{xml}");
    let held = h.store.task_ips(&lb).await.unwrap();
    assert_eq!(held, [("subnet-default".to_owned(), "10.89.0.2".to_owned())], "the node's address is claimed");
    elb_err(&h, "CreateLoadBalancer&Name=web&Subnets.member.1=subnet-default&Scheme=internet-facing", "DuplicateLoadBalancerName").await;
    elb_err(&h, "CreateLoadBalancer&Name=x&Subnets.member.1=subnet-nope", "SubnetNotFound").await;
    elb_err(&h, "CreateLoadBalancer&Name=x&Subnets.member.1=subnet-default&SecurityGroups.member.1=sg-nope", "InvalidSecurityGroup").await;
    elb_err(&h, "CreateLoadBalancer&Name=-bad&Subnets.member.1=subnet-default", "ValidationError").await;

    // Attributes: defaults, a change, an unknown key in ELBv2's own error.
    let xml = elb(&h, &format!("DescribeLoadBalancerAttributes&LoadBalancerArn={}", enc(&lb))).await;
    assert!(xml.contains("<Key>idle_timeout.timeout_seconds</Key><Value>60</Value>"), "{xml}");
    elb(&h, &format!("ModifyLoadBalancerAttributes&LoadBalancerArn={}&Attributes.member.1.Key=idle_timeout.timeout_seconds&Attributes.member.1.Value=120", enc(&lb))).await;
    let msg = elb_err(&h, &format!("ModifyLoadBalancerAttributes&LoadBalancerArn={}&Attributes.member.1.Key=no.such&Attributes.member.1.Value=1", enc(&lb)), "ValidationError").await;
    assert!(msg.contains("'no.such' is not recognized"), "{msg}");

    // A target group, its targets and their health.
    let xml = elb(&h, "CreateTargetGroup&Name=web-tg&Protocol=HTTP&Port=8080&VpcId=vpc-default&TargetType=ip&HealthCheckPath=%2Fhealth&Matcher.HttpCode=200-299").await;
    let tg = element(&xml, "TargetGroupArn").unwrap().to_owned();
    assert_eq!(element(&xml, "HealthCheckIntervalSeconds"), Some("30"));
    assert_eq!(element(&xml, "HttpCode"), Some("200-299"));
    elb_err(&h, "CreateTargetGroup&Name=i&Protocol=HTTP&Port=80&VpcId=vpc-default&TargetType=instance", "ValidationError").await;
    elb_err(&h, "CreateTargetGroup&Name=i&Protocol=HTTP&Port=80&VpcId=vpc-default&HealthCheckIntervalSeconds=5&HealthCheckTimeoutSeconds=6", "ValidationError").await;
    elb(&h, &format!("RegisterTargets&TargetGroupArn={}&Targets.member.1.Id=10.89.0.20&Targets.member.2.Id=10.89.0.21&Targets.member.2.Port=9090", enc(&tg))).await;
    elb_err(&h, &format!("RegisterTargets&TargetGroupArn={}&Targets.member.1.Id=192.0.2.1", enc(&tg)), "InvalidTarget").await;
    elb_err(&h, &format!("RegisterTargets&TargetGroupArn={}&Targets.member.1.Id=10.89.0.2", enc(&tg)), "InvalidTarget").await;
    let xml = elb(&h, &format!("DescribeTargetHealth&TargetGroupArn={}", enc(&tg))).await;
    assert_eq!(xml.matches("<State>unused</State>").count(), 2, "no listener uses the group yet: {xml}");
    assert!(xml.contains("<Reason>Target.NotInUse</Reason>"), "{xml}");

    // A listener forwarding to it: the targets are initial until the data plane writes.
    let xml = elb(&h, &format!("CreateListener&LoadBalancerArn={}&Protocol=HTTP&Port=80&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={}", enc(&lb), enc(&tg))).await;
    let listener = element(&xml, "ListenerArn").unwrap().to_owned();
    assert!(listener.contains(":listener/app/web/"), "{listener}");
    elb_err(&h, &format!("CreateListener&LoadBalancerArn={}&Protocol=HTTP&Port=80&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={}", enc(&lb), enc(&tg)), "DuplicateListener").await;
    elb_err(&h, &format!("CreateListener&LoadBalancerArn={}&Protocol=HTTPS&Port=443&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={}&Certificates.member.1.CertificateArn=arn%3Aaws%3Aacm%3Aus-east-1%3A123456789012%3Acertificate%2Fnope", enc(&lb), enc(&tg)), "CertificateNotFound").await;
    let xml = elb(&h, &format!("DescribeTargetHealth&TargetGroupArn={}", enc(&tg))).await;
    assert_eq!(xml.matches("<State>initial</State>").count(), 2, "{xml}");
    assert!(xml.contains("<Reason>Elb.RegistrationInProgress</Reason>"), "{xml}");
    let xml = elb(&h, &format!("DescribeTargetGroups&LoadBalancerArn={}", enc(&lb))).await;
    assert!(xml.contains(&format!("<LoadBalancerArns><member>{lb}</member></LoadBalancerArns>")), "{xml}");
    elb_err(&h, &format!("DeleteTargetGroup&TargetGroupArn={}", enc(&tg)), "ResourceInUse").await;
    let xml = elb(&h, &format!("DescribeListenerAttributes&ListenerArn={}", enc(&listener))).await;
    assert!(xml.contains("<Key>routing.http.response.server.enabled</Key>"), "{xml}");
    elb_err(&h, &format!("ModifyListenerAttributes&ListenerArn={}&Attributes.member.1.Key=tcp.idle_timeout.seconds&Attributes.member.1.Value=60", enc(&listener)), "ValidationError").await;
    let xml = elb(&h, &format!("DescribeCapacityReservation&LoadBalancerArn={}", enc(&lb))).await;
    assert!(xml.contains("<DescribeCapacityReservationResult>"), "{xml}");

    // Draining: a deregistered target drains for the deregistration delay.
    elb(&h, &format!("DeregisterTargets&TargetGroupArn={}&Targets.member.1.Id=10.89.0.20", enc(&tg))).await;
    let xml = elb(&h, &format!("DescribeTargetHealth&TargetGroupArn={}", enc(&tg))).await;
    assert!(xml.contains("<State>draining</State>") && xml.contains("<Reason>Target.DeregistrationInProgress</Reason>"), "{xml}");
    elb_err(&h, &format!("DeregisterTargets&TargetGroupArn={}&Targets.member.1.Id=10.89.0.99", enc(&tg)), "InvalidTarget").await;

    // Rules: priorities, the default rule, swaps.
    let rule = |p: u32, path: &str| {
        format!("CreateRule&ListenerArn={}&Priority={p}&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1={}&Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=503", enc(&listener), enc(path))
    };
    let r1 = element(&elb(&h, &rule(10, "/api/*")).await, "RuleArn").unwrap().to_owned();
    let r2 = element(&elb(&h, &rule(20, "/img/*")).await, "RuleArn").unwrap().to_owned();
    elb_err(&h, &rule(10, "/other"), "PriorityInUse").await;
    elb_err(&h, &rule(50_001, "/other"), "ValidationError").await;
    let xml = elb(&h, &format!("DescribeRules&ListenerArn={}", enc(&listener))).await;
    let priorities: Vec<&str> = xml.split("<Priority>").skip(1).map(|s| &s[..s.find('<').unwrap()]).collect();
    assert_eq!(priorities, ["10", "20", "default"], "{xml}");
    assert!(xml.contains("<IsDefault>true</IsDefault>"), "{xml}");
    elb(&h, &format!("SetRulePriorities&RulePriorities.member.1.RuleArn={}&RulePriorities.member.1.Priority=20&RulePriorities.member.2.RuleArn={}&RulePriorities.member.2.Priority=10", enc(&r1), enc(&r2))).await;
    let xml = elb(&h, &format!("DescribeRules&RuleArns.member.1={}", enc(&r1))).await;
    assert_eq!(element(&xml, "Priority"), Some("20"));
    let xml = elb(&h, &format!("DescribeRules&ListenerArn={}&PageSize=1", enc(&listener))).await;
    let marker = element(&xml, "NextMarker").unwrap().to_owned();
    let xml = elb(&h, &format!("DescribeRules&ListenerArn={}&PageSize=2&Marker={}", enc(&listener), enc(&marker))).await;
    assert!(element(&xml, "NextMarker").is_none(), "{xml}");
    assert_eq!(xml.matches("<RuleArn>").count(), 2, "{xml}");

    // Tags on each kind.
    elb(&h, &format!("AddTags&ResourceArns.member.1={}&ResourceArns.member.2={}&Tags.member.1.Key=env&Tags.member.1.Value=prod", enc(&lb), enc(&tg))).await;
    elb(&h, &format!("RemoveTags&ResourceArns.member.1={}&TagKeys.member.1=team", enc(&lb))).await;
    let xml = elb(&h, &format!("DescribeTags&ResourceArns.member.1={}", enc(&lb))).await;
    assert!(xml.contains("<Key>env</Key><Value>prod</Value>") && !xml.contains("team"), "{xml}");

    // Deleting: the listener goes with the load balancer, its address is freed.
    elb(&h, &format!("DeleteLoadBalancer&LoadBalancerArn={}", enc(&lb))).await;
    assert!(h.store.task_ips(&lb).await.unwrap().is_empty());
    elb_err(&h, &format!("DescribeListeners&ListenerArns.member.1={}", enc(&listener)), "ListenerNotFound").await;
    elb_err(&h, &format!("DescribeLoadBalancers&LoadBalancerArns.member.1={}", enc(&lb)), "LoadBalancerNotFound").await;
    elb(&h, &format!("DeleteTargetGroup&TargetGroupArn={}", enc(&tg))).await;
    elb_err(&h, "Frobnicate", "InvalidAction").await;
}

const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUL9ZIRhL7c1y9VvFb8/SU7o2CmFAwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLd2ViLmV4YW1wbGUwHhcNMjYwMTAxMDAwMDAwWhcNMzYwMTAx
MDAwMDAwWjAWMRQwEgYDVQQDDAt3ZWIuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABNBjk4LRxH9Pzxq1YJ9zJvNy8Pq3d0YyTK7GvZJ1bZ4c6Oq5qQ5m
K2i6c6Ky3gX6U2bLqYj3mM0rXzHJxN0Zsl+jUzBRMB0GA1UdDgQWBBS6o3kA5P3y
-----END CERTIFICATE-----
";

#[tokio::test]
async fn acm_refuses_what_is_not_a_certificate_and_answers_unknown_arns() {
    use base64::Engine as _;
    let h = harness().await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let call = |op: &str, body: String| json_request(&format!("CertificateManager.{op}"), "1.1", &body, "acm");
    let a = send(&h, call("ImportCertificate", format!(r#"{{"Certificate":"{}","PrivateKey":"{}"}}"#, b64("not pem"), b64("nope")))).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.json()["__type"], "ValidationException", "{}", a.text());
    let a = send(&h, call("ImportCertificate", format!(r#"{{"Certificate":"{}","PrivateKey":"{}"}}"#, b64(TEST_CERT), b64("nope")))).await;
    assert_eq!(a.json()["__type"], "ValidationException", "a truncated certificate: {}", a.text());
    let arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
    let a = send(&h, call("DescribeCertificate", format!(r#"{{"CertificateArn":"{arn}"}}"#))).await;
    assert_eq!(a.json()["__type"], "ResourceNotFoundException", "{}", a.text());
    let a = send(&h, call("ListCertificates", "{}".into())).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["CertificateSummaryList"], serde_json::json!([]));
    let a = send(&h, call("RequestCertificate", r#"{"DomainName":"x"}"#.into())).await;
    assert_eq!(a.json()["__type"], "UnknownOperationException", "{}", a.text());
}

fn gzip_json_request(target: &str, body: &str) -> http::Request<Vec<u8>> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).expect("gzip");
    let req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-amz-json-1.0")
        .header("content-encoding", "gzip")
        .header("x-amz-target", target)
        .header("x-amzn-query-mode", "true")
        .body(gz.finish().expect("gzip"))
        .expect("request");
    signed(req, "monitoring", SECRET)
}

/// PutMetricData as botocore sends a big one (gzip), then its statistics;
/// CloudWatch's validation codes over JSON; a body that is not gzip.
#[tokio::test]
async fn cloudwatch_put_gzipped_then_statistics_and_validation_errors() {
    let h = harness().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let minute = now / 60 * 60;
    let data: Vec<String> = (1..=300).map(|v| format!(r#"{{"MetricName":"Work","Value":{v},"Timestamp":{}}}"#, minute)).collect();
    let body = format!(r#"{{"Namespace":"App","MetricData":[{}]}}"#, data.join(","));
    let a = send(&h, gzip_json_request("GraniteServiceVersion20100801.PutMetricData", &body)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let q = format!(
        r#"{{"Namespace":"App","MetricName":"Work","StartTime":{},"EndTime":{},"Period":60,"Statistics":["Sum","SampleCount"],"ExtendedStatistics":[]}}"#,
        minute,
        minute + 60
    );
    let a = send(&h, json_request("GraniteServiceVersion20100801.GetMetricStatistics", "1.0", &q, "monitoring")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["Datapoints"][0]["Sum"], 45150.0, "{v}");
    assert_eq!(v["Datapoints"][0]["SampleCount"], 300.0, "{v}");
    assert_eq!(v["Datapoints"][0]["Unit"], "None", "{v}");

    let both = r#"{"Namespace":"App","MetricData":[{"MetricName":"m","Value":1,"Values":[1]}]}"#;
    let a = send(&h, json_request("GraniteServiceVersion20100801.PutMetricData", "1.0", both, "monitoring")).await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("InvalidParameterCombination")), "{}", a.text());
    assert_eq!(a.header("x-amzn-query-error"), "InvalidParameterCombination;Sender");
    let reserved = r#"{"Namespace":"AWS/EC2","MetricData":[{"MetricName":"m","Value":1}]}"#;
    let a = send(&h, json_request("GraniteServiceVersion20100801.PutMetricData", "1.0", reserved, "monitoring")).await;
    assert_eq!(a.json()["__type"], "InvalidParameterValue", "{}", a.text());
    let nan_magnitude = r#"{"Namespace":"App","MetricData":[{"MetricName":"m","Value":1e300}]}"#;
    let a = send(&h, json_request("GraniteServiceVersion20100801.PutMetricData", "1.0", nan_magnitude, "monitoring")).await;
    assert_eq!(a.json()["__type"], "InvalidParameterValue", "{}", a.text());

    let mut req = gzip_json_request("GraniteServiceVersion20100801.ListMetrics", "{}");
    *req.body_mut() = b"not gzip".to_vec();
    let req = signed(req, "monitoring", SECRET);
    let a = send(&h, req).await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("SerializationException")), "{}", a.text());
}
