//! CloudWatch Logs through the router (`oneshot`), on a real SQLite store,
//! with requests signed for the `logs` service by AWS's own SigV4 code.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_store::{AccessKey, LogStore, NewLogEvent};
use berth_testinfra::sign::{Creds, sign};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const AKID: &str = "AKIDLOGSTEST00000001";
const SECRET: &str = "logs-test-secret";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

struct Harness {
    api: Api,
    logs: Arc<dyn LogStore>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("store");
    let store = stores.records.clone();
    store
        .insert_access_key(&AccessKey { access_key_id: AKID.into(), secret_access_key: SECRET.into(), created_at: 0 })
        .await
        .expect("key");
    let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
    Harness { api: Api::new(stores.clone(), ApiConfig::new(account)), logs: stores.logs, _dir: dir }
}

fn request(target: &str, body: Vec<u8>, service: &str) -> http::Request<Vec<u8>> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://berth.test/")
        .header("host", "berth.test")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body)
        .expect("request");
    let creds = Creds { access_key_id: AKID.into(), secret_access_key: SECRET.into() };
    sign(&mut req, &creds, "us-east-1", service, SystemTime::now()).expect("sign");
    req
}

async fn send(h: &Harness, req: http::Request<Vec<u8>>) -> (u16, Value) {
    let resp = router(h.api.clone()).oneshot(req.map(Body::from)).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON body"))
}

async fn logs(h: &Harness, op: &str, body: Value) -> (u16, Value) {
    send(h, request(&format!("Logs_20140328.{op}"), body.to_string().into_bytes(), "logs")).await
}

/// A call that must succeed; its body.
async fn ok(h: &Harness, op: &str, body: Value) -> Value {
    let (status, v) = logs(h, op, body).await;
    assert_eq!(status, 200, "{op}: {v}");
    v
}

/// A call that must fail with `aws_type`; its message.
async fn fails(h: &Harness, op: &str, body: Value, aws_type: &str) -> String {
    let (status, v) = logs(h, op, body).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some(aws_type)), "{op}: {v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "only __type and message: {v}");
    v["message"].as_str().expect("message").to_owned()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_millis() as i64
}

async fn group_and_stream(h: &Harness, group: &str, stream: &str) {
    let (status, v) = logs(h, "CreateLogGroup", json!({"logGroupName": group})).await;
    assert!(status == 200 || v["__type"] == "ResourceAlreadyExistsException", "{v}");
    ok(h, "CreateLogStream", json!({"logGroupName": group, "logStreamName": stream})).await;
}

fn strs(v: &Value, list: &str, member: &str) -> Vec<String> {
    v[list].as_array().expect(list).iter().map(|e| e[member].as_str().expect(member).to_owned()).collect()
}

#[tokio::test]
async fn log_groups_create_describe_retention_delete() {
    let h = harness().await;
    assert_eq!(ok(&h, "CreateLogGroup", json!({"logGroupName": "/ecs/web"})).await, json!({}));
    let msg = fails(&h, "CreateLogGroup", json!({"logGroupName": "/ecs/web"}), "ResourceAlreadyExistsException").await;
    assert_eq!(msg, "The specified log group already exists");
    let msg = fails(&h, "CreateLogGroup", json!({"logGroupName": "a b"}), "InvalidParameterException").await;
    assert!(msg.contains("'logGroupName'") && msg.contains("regular expression pattern"), "{msg}");
    fails(&h, "CreateLogGroup", json!({"logGroupName": ""}), "InvalidParameterException").await;
    fails(&h, "CreateLogGroup", json!({"logGroupName": "k", "kmsKeyId": "arn:aws:kms:x"}), "InvalidParameterException")
        .await;
    fails(&h, "CreateLogGroup", json!({}), "InvalidParameterException").await;
    ok(&h, "CreateLogGroup", json!({"logGroupName": "/ecs/api", "logGroupClass": "INFREQUENT_ACCESS", "tags": {"a": "b"}}))
        .await;
    for name in ["/ecs/db", "/ecs/zz", "other"] {
        ok(&h, "CreateLogGroup", json!({"logGroupName": name})).await;
    }

    let all = ok(&h, "DescribeLogGroups", json!({})).await;
    assert_eq!(strs(&all, "logGroups", "logGroupName"), ["/ecs/api", "/ecs/db", "/ecs/web", "/ecs/zz", "other"]);
    let api = &all["logGroups"][0];
    assert_eq!(api["arn"], "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/api:*");
    assert_eq!(api["logGroupArn"], "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/api");
    assert_eq!((api["storedBytes"].as_i64(), api["metricFilterCount"].as_i64()), (Some(0), Some(0)));
    assert_eq!(api["logGroupClass"], "INFREQUENT_ACCESS");
    assert!((api["creationTime"].as_i64().expect("creationTime") - now_ms()).abs() < 60_000);
    assert!(api.get("retentionInDays").is_none());
    assert!(all.get("nextToken").is_none());

    // Pages of two under a prefix.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupNamePrefix": "/ecs/", "limit": 2});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = ok(&h, "DescribeLogGroups", body).await;
        assert!(page["logGroups"].as_array().expect("groups").len() <= 2);
        seen.extend(strs(&page, "logGroups", "logGroupName"));
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["/ecs/api", "/ecs/db", "/ecs/web", "/ecs/zz"]);
    fails(&h, "DescribeLogGroups", json!({"limit": 51}), "InvalidParameterException").await;
    fails(&h, "DescribeLogGroups", json!({"nextToken": "forged"}), "InvalidParameterException").await;
    fails(&h, "DescribeLogGroups", json!({"logGroupNamePattern": "web"}), "InvalidParameterException").await;

    // Retention: CloudWatch's values only.
    ok(&h, "PutRetentionPolicy", json!({"logGroupName": "/ecs/web", "retentionInDays": 14})).await;
    let web = ok(&h, "DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/web"})).await;
    assert_eq!(web["logGroups"][0]["retentionInDays"], 14);
    let msg =
        fails(&h, "PutRetentionPolicy", json!({"logGroupName": "/ecs/web", "retentionInDays": 2}), "InvalidParameterException")
            .await;
    assert!(msg.contains("[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827"), "{msg}");
    fails(&h, "PutRetentionPolicy", json!({"logGroupName": "ghost", "retentionInDays": 1}), "ResourceNotFoundException")
        .await;
    ok(&h, "DeleteRetentionPolicy", json!({"logGroupName": "/ecs/web"})).await;
    let web = ok(&h, "DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/web"})).await;
    assert!(web["logGroups"][0].get("retentionInDays").is_none(), "{web}");
    fails(&h, "DeleteRetentionPolicy", json!({"logGroupName": "ghost"}), "ResourceNotFoundException").await;

    ok(&h, "DeleteLogGroup", json!({"logGroupName": "/ecs/web"})).await;
    let msg = fails(&h, "DeleteLogGroup", json!({"logGroupName": "/ecs/web"}), "ResourceNotFoundException").await;
    assert_eq!(msg, "The specified log group does not exist.");
}

#[tokio::test]
async fn log_streams_create_describe_order_and_delete() {
    let h = harness().await;
    let msg = fails(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "s"}), "ResourceNotFoundException")
        .await;
    assert_eq!(msg, "The specified log group does not exist.");
    ok(&h, "CreateLogGroup", json!({"logGroupName": "g"})).await;
    for name in ["web/b", "web/a", "db/x", "quiet"] {
        ok(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": name})).await;
    }
    let msg = fails(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "quiet"}), "ResourceAlreadyExistsException")
        .await;
    assert_eq!(msg, "The specified log stream already exists");
    fails(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "a:b"}), "InvalidParameterException").await;
    let now = now_ms();
    for (name, t) in [("web/b", now - 3000), ("web/a", now - 1000), ("db/x", now - 2000)] {
        let events = json!([{"timestamp": t - 10, "message": "first"}, {"timestamp": t, "message": "last"}]);
        ok(&h, "PutLogEvents", json!({"logGroupName": "g", "logStreamName": name, "logEvents": events})).await;
    }

    let by_name = ok(&h, "DescribeLogStreams", json!({"logGroupName": "g"})).await;
    assert_eq!(strs(&by_name, "logStreams", "logStreamName"), ["db/x", "quiet", "web/a", "web/b"]);
    let db = &by_name["logStreams"][0];
    assert_eq!(db["arn"], "arn:aws:logs:us-east-1:123456789012:log-group:g:log-stream:db/x");
    assert_eq!((db["firstEventTimestamp"].as_i64(), db["lastEventTimestamp"].as_i64()), (Some(now - 2010), Some(now - 2000)));
    assert!(db["lastIngestionTime"].as_i64().expect("ingested") >= now);
    assert_eq!(db["storedBytes"], 0, "as CloudWatch reports for streams");
    let quiet = &by_name["logStreams"][1];
    assert!(quiet.get("firstEventTimestamp").is_none() && quiet.get("lastEventTimestamp").is_none(), "{quiet}");
    assert_eq!(ok(&h, "DescribeLogGroups", json!({})).await["logGroups"][0]["storedBytes"], 3 * 9);

    let newest = ok(&h, "DescribeLogStreams", json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true}))
        .await;
    assert_eq!(strs(&newest, "logStreams", "logStreamName"), ["web/a", "db/x", "web/b", "quiet"]);
    // Paged one at a time by time, through the ARN as identifier.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:g:*",
                              "orderBy": "LastEventTime", "limit": 1});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = ok(&h, "DescribeLogStreams", body).await;
        seen.extend(strs(&page, "logStreams", "logStreamName"));
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["quiet", "web/b", "db/x", "web/a"]);
    let web = ok(&h, "DescribeLogStreams", json!({"logGroupName": "g", "logStreamNamePrefix": "web/", "descending": true}))
        .await;
    assert_eq!(strs(&web, "logStreams", "logStreamName"), ["web/b", "web/a"]);

    let msg = fails(
        &h,
        "DescribeLogStreams",
        json!({"logGroupName": "g", "logStreamNamePrefix": "web/", "orderBy": "LastEventTime"}),
        "InvalidParameterException",
    )
    .await;
    assert!(msg.contains("LastEventTime"), "{msg}");
    fails(&h, "DescribeLogStreams", json!({"logGroupName": "g", "orderBy": "Random"}), "InvalidParameterException").await;
    fails(&h, "DescribeLogStreams", json!({"logGroupName": "g", "logGroupIdentifier": "g"}), "InvalidParameterException")
        .await;
    fails(&h, "DescribeLogStreams", json!({}), "InvalidParameterException").await;
    fails(&h, "DescribeLogStreams", json!({"logGroupName": "ghost"}), "ResourceNotFoundException").await;
    fails(
        &h,
        "DescribeLogStreams",
        json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:999999999999:log-group:g"}),
        "ResourceNotFoundException",
    )
    .await;

    ok(&h, "DeleteLogStream", json!({"logGroupName": "g", "logStreamName": "quiet"})).await;
    let msg = fails(&h, "DeleteLogStream", json!({"logGroupName": "g", "logStreamName": "quiet"}), "ResourceNotFoundException")
        .await;
    assert_eq!(msg, "The specified log stream does not exist.");
    fails(&h, "DeleteLogStream", json!({"logGroupName": "ghost", "logStreamName": "quiet"}), "ResourceNotFoundException")
        .await;
}

fn events(list: &[(i64, &str)]) -> Value {
    Value::Array(list.iter().map(|(t, m)| json!({"timestamp": t, "message": m})).collect())
}

#[tokio::test]
async fn put_log_events_validates_like_cloudwatch() {
    let h = harness().await;
    group_and_stream(&h, "g", "s").await;
    let now = now_ms();
    let put = |evs: Value| json!({"logGroupName": "g", "logStreamName": "s", "logEvents": evs});

    let v = ok(&h, "PutLogEvents", put(events(&[(now - 5, "a"), (now - 5, "b"), (now, "c")]))).await;
    assert_eq!(v["nextSequenceToken"].as_str().map(str::len), Some(56), "{v}");
    assert!(v.get("rejectedLogEventsInfo").is_none(), "{v}");
    // The sequence token is ignored, as CloudWatch now does.
    let mut stale = put(events(&[(now, "d")]));
    stale["sequenceToken"] = json!("12345");
    ok(&h, "PutLogEvents", stale).await;

    let msg = fails(&h, "PutLogEvents", put(events(&[(now, "a"), (now - 1, "b")])), "InvalidParameterException").await;
    assert_eq!(msg, "Log events in a single PutLogEvents request must be in chronological order.");
    let big = "x".repeat(262_144 - 26 + 1);
    let msg = fails(&h, "PutLogEvents", put(events(&[(now, &big)])), "InvalidParameterException").await;
    assert_eq!(msg, "Log event too large: 262145 bytes exceeds limit of 262144");
    let biggest = "x".repeat(262_144 - 26);
    let five = events(&[(now, &biggest), (now, &biggest), (now, &biggest), (now, &biggest), (now, "y")]);
    let msg = fails(&h, "PutLogEvents", put(five), "InvalidParameterException").await;
    assert!(msg.starts_with("Upload too large: 1048603 bytes exceeds limit of 1048576"), "{msg}");
    let many: Vec<(i64, &str)> = (0..10_001).map(|_| (now, "m")).collect();
    fails(&h, "PutLogEvents", put(events(&many)), "InvalidParameterException").await;
    fails(&h, "PutLogEvents", put(json!([])), "InvalidParameterException").await;
    fails(&h, "PutLogEvents", put(events(&[(now, "")])), "InvalidParameterException").await;
    ok(&h, "PutLogEvents", put(events(&[(now - 23 * HOUR, "a"), (now, "b")]))).await;
    let msg = fails(&h, "PutLogEvents", put(events(&[(now - 25 * HOUR, "a"), (now, "b")])), "InvalidParameterException")
        .await;
    assert!(msg.contains("cannot span more than 24 hours"), "{msg}");
    let missing = json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": events(&[(now, "a")])});
    assert_eq!(fails(&h, "PutLogEvents", missing, "ResourceNotFoundException").await, "The specified log stream does not exist.");
    let missing = json!({"logGroupName": "nope", "logStreamName": "s", "logEvents": events(&[(now, "a")])});
    assert_eq!(fails(&h, "PutLogEvents", missing, "ResourceNotFoundException").await, "The specified log group does not exist.");

    // Too old, too new and expired events are rejected; the rest is stored.
    group_and_stream(&h, "kept", "s").await;
    ok(&h, "PutRetentionPolicy", json!({"logGroupName": "kept", "retentionInDays": 1})).await;
    let batch = events(&[
        (now - 15 * DAY, "too old"),
        (now - 2 * DAY, "expired"),
        (now - 2 * DAY + 1, "expired too"),
        (now - HOUR, "ok 1"),
        (now + HOUR, "ok 2"),
        (now + 3 * HOUR, "too new"),
    ]);
    let v = ok(&h, "PutLogEvents", json!({"logGroupName": "kept", "logStreamName": "s", "logEvents": batch})).await;
    assert_eq!(
        v["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 1, "expiredLogEventEndIndex": 3, "tooNewLogEventStartIndex": 5}),
        "{v}"
    );
    let got = ok(&h, "GetLogEvents", json!({"logGroupName": "kept", "logStreamName": "s", "startFromHead": true})).await;
    assert_eq!(strs(&got, "events", "message"), ["ok 1", "ok 2"]);
    // A batch with nothing to store still answers.
    let v = ok(&h, "PutLogEvents", json!({"logGroupName": "kept", "logStreamName": "s", "logEvents": events(&[(now + 5 * HOUR, "x")])}))
        .await;
    assert_eq!(v["rejectedLogEventsInfo"], json!({"tooNewLogEventStartIndex": 0}));
}

#[tokio::test]
async fn put_log_events_takes_bodies_over_the_ecs_limit() {
    let h = harness().await;
    group_and_stream(&h, "g", "s").await;
    // 1 MiB of messages as CloudWatch counts it, about 2 MiB as JSON.
    let quotes = "\"".repeat(262_144 - 26);
    let now = now_ms();
    let body = json!({"logGroupName": "g", "logStreamName": "s",
                      "logEvents": events(&[(now, &quotes), (now, &quotes), (now, &quotes), (now, &quotes)])});
    assert!(body.to_string().len() > 2 * 1024 * 1024);
    ok(&h, "PutLogEvents", body).await;
    let got = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s"})).await;
    assert_eq!(got["events"].as_array().map(Vec::len), Some(4));
}

/// A stream of 300 events, three per millisecond, put in three batches.
async fn three_hundred(h: &Harness) -> Vec<String> {
    group_and_stream(h, "g", "s").await;
    let base = now_ms() - HOUR;
    let mut all = Vec::new();
    for batch in 0..3 {
        let list: Vec<(i64, String)> =
            (0..100).map(|i| batch * 100 + i).map(|n| (base + n / 3, format!("event {n:03}"))).collect();
        all.extend(list.iter().map(|e| e.1.clone()));
        let refs: Vec<(i64, &str)> = list.iter().map(|(t, m)| (*t, m.as_str())).collect();
        ok(h, "PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "logEvents": events(&refs)})).await;
    }
    all
}

fn is_token(v: &Value, prefix: &str) -> String {
    let t = v.as_str().expect("token").to_owned();
    assert!(t.starts_with(prefix) && t.len() == 42 && t[2..].bytes().all(|b| b.is_ascii_digit()), "{t}");
    t
}

#[tokio::test]
async fn get_log_events_pages_forward_until_the_token_repeats() {
    let h = harness().await;
    let all = three_hundred(&h).await;
    let mut seen = Vec::new();
    let mut body = json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 64});
    let mut calls = 0;
    loop {
        calls += 1;
        let page = ok(&h, "GetLogEvents", body.clone()).await;
        let forward = is_token(&page["nextForwardToken"], "f/");
        is_token(&page["nextBackwardToken"], "b/");
        let msgs = strs(&page, "events", "message");
        assert!(msgs.len() <= 64);
        if body.get("nextToken").and_then(Value::as_str) == Some(forward.as_str()) {
            assert!(msgs.is_empty(), "the end: no events, the same token");
            break;
        }
        seen.extend(msgs);
        body["nextToken"] = json!(forward);
    }
    assert_eq!(seen, all);
    assert_eq!(calls, 6, "five pages (64*4 + 44) and the repeat");

    // At the end, new events show up behind the same forward token.
    let end = body["nextToken"].clone();
    let later = now_ms();
    let evs = events(&[(later, "late 1"), (later, "late 2")]);
    ok(&h, "PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "logEvents": evs})).await;
    let page = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "nextToken": end})).await;
    assert_eq!(strs(&page, "events", "message"), ["late 1", "late 2"]);
    assert_ne!(page["nextForwardToken"], end);
    // And backward from there goes over what came before.
    let back = json!({"logGroupName": "g", "logStreamName": "s", "nextToken": page["nextBackwardToken"], "limit": 3});
    let page = ok(&h, "GetLogEvents", back).await;
    assert_eq!(strs(&page, "events", "message"), all[297..]);
}

#[tokio::test]
async fn get_log_events_pages_backward_from_the_tail_by_default() {
    let h = harness().await;
    let all = three_hundred(&h).await;
    let first = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 50})).await;
    assert_eq!(strs(&first, "events", "message"), all[250..], "the latest 50, oldest first");
    let mut pages = vec![strs(&first, "events", "message")];
    let mut token = is_token(&first["nextBackwardToken"], "b/");
    loop {
        let page = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 50, "nextToken": token})).await;
        let back = is_token(&page["nextBackwardToken"], "b/");
        is_token(&page["nextForwardToken"], "f/");
        if back == token {
            assert_eq!(page["events"], json!([]), "the head: no events, the same token");
            break;
        }
        pages.push(strs(&page, "events", "message"));
        token = back;
    }
    assert_eq!(pages.len(), 6);
    let seen: Vec<String> = pages.into_iter().rev().flatten().collect();
    assert_eq!(seen, all);
    // From the head, forward goes through the stream again.
    let at_head = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "nextToken": token})).await;
    let forward = json!({"logGroupName": "g", "logStreamName": "s", "limit": 5, "nextToken": at_head["nextForwardToken"]});
    assert_eq!(strs(&ok(&h, "GetLogEvents", forward).await, "events", "message"), all[..5]);
}

#[tokio::test]
async fn get_log_events_time_ranges_limits_and_errors() {
    let h = harness().await;
    let all = three_hundred(&h).await;
    let head = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 1})).await;
    let base = head["events"][0]["timestamp"].as_i64().expect("timestamp");
    assert!(head["events"][0]["ingestionTime"].as_i64().expect("ingestionTime") >= base);
    // startTime inclusive, endTime exclusive: ms 10 and 11 hold events 30..36.
    let window = json!({"logGroupName": "g", "logStreamName": "s", "startTime": base + 10, "endTime": base + 12});
    assert_eq!(strs(&ok(&h, "GetLogEvents", window).await, "events", "message"), all[30..36]);

    // Empty streams: no events, tokens from the start.
    ok(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "empty"})).await;
    let empty = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "empty"})).await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["nextForwardToken"], format!("f/{}", "0".repeat(40)));
    assert_eq!(empty["nextBackwardToken"], format!("b/{}", "0".repeat(40)));

    let s = |extra: Value| {
        let mut body = json!({"logGroupName": "g", "logStreamName": "s"});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    fails(&h, "GetLogEvents", s(json!({"limit": 0})), "InvalidParameterException").await;
    fails(&h, "GetLogEvents", s(json!({"limit": 10_001})), "InvalidParameterException").await;
    fails(&h, "GetLogEvents", s(json!({"startTime": -1})), "InvalidParameterException").await;
    let msg = fails(&h, "GetLogEvents", s(json!({"nextToken": "f/123"})), "InvalidParameterException").await;
    assert_eq!(msg, "The specified nextToken is invalid.");
    fails(&h, "GetLogEvents", s(json!({"logGroupName": "ghost"})), "ResourceNotFoundException").await;
    fails(&h, "GetLogEvents", s(json!({"logStreamName": "ghost"})), "ResourceNotFoundException").await;
    fails(&h, "GetLogEvents", json!({"logGroupName": "g"}), "InvalidParameterException").await;
    let by_arn = json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:g", "logStreamName": "s",
                        "limit": 2, "startFromHead": true});
    assert_eq!(strs(&ok(&h, "GetLogEvents", by_arn).await, "events", "message"), all[..2]);
}

#[tokio::test]
async fn get_log_events_stops_at_one_mebibyte() {
    let h = harness().await;
    group_and_stream(&h, "g", "big").await;
    let now = now_ms();
    let message = "m".repeat(200 * 1024);
    for i in 0..8 {
        let evs = events(&[(now - 100 + i, &message)]);
        ok(&h, "PutLogEvents", json!({"logGroupName": "g", "logStreamName": "big", "logEvents": evs})).await;
    }
    // Five events of 200 KiB + 26 fit in 1 MiB; six do not.
    let tail = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "big"})).await;
    let times: Vec<i64> = tail["events"].as_array().expect("events").iter().map(|e| e["timestamp"].as_i64().expect("t") - now).collect();
    assert_eq!(times, [-97, -96, -95, -94, -93]);
    let head = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "big", "startFromHead": true})).await;
    assert_eq!(head["events"].as_array().map(Vec::len), Some(5));
    let rest = ok(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "big", "nextToken": head["nextForwardToken"]}))
        .await;
    assert_eq!(rest["events"].as_array().map(Vec::len), Some(3));
}

/// Two streams of a group, with interleaved times.
async fn service_logs(h: &Harness) -> i64 {
    let base = now_ms() - HOUR;
    for (k, stream) in ["ecs/web/1", "ecs/web/2"].into_iter().enumerate() {
        group_and_stream(h, "/ecs/app", stream).await;
        let lines = [
            "INFO GET /health 200",
            "ERROR Internal Server Error on /api",
            "WARN slow request /api",
            "ERROR timeout, Retrying",
            "DEBUG cache hit",
        ];
        let list: Vec<(i64, String)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (base + 10 * i as i64 + k as i64, format!("{l} [{stream}]")))
            .collect();
        let refs: Vec<(i64, &str)> = list.iter().map(|(t, m)| (*t, m.as_str())).collect();
        ok(h, "PutLogEvents", json!({"logGroupName": "/ecs/app", "logStreamName": stream, "logEvents": events(&refs)})).await;
    }
    base
}

async fn filtered(h: &Harness, body: Value) -> Vec<String> {
    let v = ok(h, "FilterLogEvents", body).await;
    assert_eq!(v["searchedLogStreams"], json!([]), "no longer filled in by CloudWatch either");
    strs(&v, "events", "message")
}

#[tokio::test]
async fn filter_log_events_terms_phrases_exclusions_and_alternatives() {
    let h = harness().await;
    let base = service_logs(&h).await;
    let f = |pattern: &str| json!({"logGroupName": "/ecs/app", "filterPattern": pattern});
    let v = ok(&h, "FilterLogEvents", json!({"logGroupName": "/ecs/app"})).await;
    assert_eq!(v["events"].as_array().map(Vec::len), Some(10));
    let first = &v["events"][0];
    assert_eq!(first["logStreamName"], "ecs/web/1");
    assert_eq!(first["timestamp"], base);
    assert_eq!(first["eventId"].as_str().map(str::len), Some(56));
    assert_eq!(v["events"][1]["logStreamName"], "ecs/web/2", "interleaved in time order");
    assert!(v.get("nextToken").is_none());

    assert_eq!(
        filtered(&h, f("ERROR")).await,
        [
            "ERROR Internal Server Error on /api [ecs/web/1]",
            "ERROR Internal Server Error on /api [ecs/web/2]",
            "ERROR timeout, Retrying [ecs/web/1]",
            "ERROR timeout, Retrying [ecs/web/2]",
        ]
    );
    assert!(filtered(&h, f("error")).await.is_empty(), "case-sensitive");
    assert_eq!(filtered(&h, f("/api ERROR")).await.len(), 2, "all terms, any order");
    assert_eq!(filtered(&h, f("\"Server Error\"")).await.len(), 2);
    assert!(filtered(&h, f("\"Error Server\"")).await.is_empty());
    assert_eq!(filtered(&h, f("ERROR -Retrying")).await.len(), 2);
    assert_eq!(filtered(&h, f("?WARN ?DEBUG")).await.len(), 4);
    assert_eq!(filtered(&h, f("?WARN ?DEBUG -cache")).await.len(), 2);
    assert_eq!(filtered(&h, f("")).await.len(), 10);

    let msg = fails(&h, "FilterLogEvents", f("{ $.level = \"ERROR\" }"), "InvalidParameterException").await;
    assert!(msg.contains("JSON"), "{msg}");
    fails(&h, "FilterLogEvents", f("\"unclosed"), "InvalidParameterException").await;
    fails(&h, "FilterLogEvents", json!({"logGroupName": "ghost"}), "ResourceNotFoundException").await;
}

#[tokio::test]
async fn filter_log_events_streams_times_and_pages() {
    let h = harness().await;
    let base = service_logs(&h).await;
    let only = json!({"logGroupName": "/ecs/app", "logStreamNames": ["ecs/web/2"], "filterPattern": "ERROR"});
    assert_eq!(filtered(&h, only).await.len(), 2);
    let prefixed = json!({"logGroupName": "/ecs/app", "logStreamNamePrefix": "ecs/web/1"});
    assert!(filtered(&h, prefixed).await.iter().all(|m| m.ends_with("[ecs/web/1]")));
    fails(
        &h,
        "FilterLogEvents",
        json!({"logGroupName": "/ecs/app", "logStreamNames": ["a"], "logStreamNamePrefix": "a"}),
        "InvalidParameterException",
    )
    .await;
    fails(&h, "FilterLogEvents", json!({"logGroupName": "/ecs/app", "logStreamNames": []}), "InvalidParameterException")
        .await;
    // Both ends inclusive: base+10 .. base+20 holds 10, 11, 20.
    let window = json!({"logGroupName": "/ecs/app", "startTime": base + 10, "endTime": base + 20});
    assert_eq!(filtered(&h, window).await.len(), 3);

    // Pages of three, by nextToken, without gaps or repeats.
    let everything = filtered(&h, json!({"logGroupName": "/ecs/app"})).await;
    let mut seen = Vec::new();
    let mut body = json!({"logGroupName": "/ecs/app", "limit": 3});
    loop {
        let page = ok(&h, "FilterLogEvents", body.clone()).await;
        let msgs = strs(&page, "events", "message");
        assert!(msgs.len() <= 3);
        seen.extend(msgs);
        match page.get("nextToken") {
            Some(t) => body["nextToken"] = t.clone(),
            None => break,
        }
    }
    assert_eq!(seen, everything);
    fails(&h, "FilterLogEvents", json!({"logGroupName": "/ecs/app", "nextToken": "f/123"}), "InvalidParameterException")
        .await;
    fails(&h, "FilterLogEvents", json!({"logGroupName": "/ecs/app", "limit": 10_001}), "InvalidParameterException").await;
}

/// Groups "short" (1 day) and "long" (10 years), each with stream "s"
/// holding an event two days old and one an hour old; returns now.
async fn old_and_new_events(h: &Harness) -> i64 {
    group_and_stream(h, "short", "s").await;
    group_and_stream(h, "long", "s").await;
    ok(h, "PutRetentionPolicy", json!({"logGroupName": "short", "retentionInDays": 1})).await;
    ok(h, "PutRetentionPolicy", json!({"logGroupName": "long", "retentionInDays": 3653})).await;
    // Written straight to the store, as the awslogs shipper does (it is
    // not bound by PutLogEvents' age rules).
    let now = now_ms();
    let old = [NewLogEvent { timestamp: now - 2 * DAY, message: "old".into() }, NewLogEvent {
        timestamp: now - HOUR,
        message: "new".into(),
    }];
    for group in ["short", "long"] {
        h.logs.put_log_events(group, "s", &old, now).await.expect("put");
    }
    now
}

#[tokio::test]
async fn expiry_removes_events_past_retention() {
    let h = harness().await;
    let now = old_and_new_events(&h).await;
    assert_eq!(berth_api::logs::expire(h.logs.as_ref()).await.expect("expire"), 1);
    assert_eq!(berth_api::logs::EXPIRY_INTERVAL.as_secs(), 60);
    let head = json!({"logGroupName": "short", "logStreamName": "s", "startFromHead": true});
    assert_eq!(strs(&ok(&h, "GetLogEvents", head).await, "events", "message"), ["new"]);
    let head = json!({"logGroupName": "long", "logStreamName": "s", "startFromHead": true});
    assert_eq!(strs(&ok(&h, "GetLogEvents", head).await, "events", "message"), ["old", "new"]);
    let streams = ok(&h, "DescribeLogStreams", json!({"logGroupName": "short"})).await;
    assert_eq!(streams["logStreams"][0]["firstEventTimestamp"], now - HOUR);
    assert_eq!(ok(&h, "DescribeLogGroups", json!({"logGroupNamePrefix": "short"})).await["logGroups"][0]["storedBytes"], 3);
}

/// `berth up`'s sweep: a runner that sweeps at once, then every
/// EXPIRY_INTERVAL, and returns when shut down.
#[tokio::test]
async fn the_expiry_runner_sweeps_at_start_and_stops_on_shutdown() {
    let h = harness().await;
    old_and_new_events(&h).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sweep = tokio::spawn(berth_api::logs::run_expiry(h.logs.clone(), async move {
        let _ = stopped.await;
    }));
    let head = json!({"logGroupName": "short", "logStreamName": "s", "startFromHead": true});
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while strs(&ok(&h, "GetLogEvents", head.clone()).await, "events", "message") != ["new"] {
        assert!(tokio::time::Instant::now() < deadline, "the first sweep did not come within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let head = json!({"logGroupName": "long", "logStreamName": "s", "startFromHead": true});
    assert_eq!(strs(&ok(&h, "GetLogEvents", head).await, "events", "message"), ["old", "new"]);
    stop.send(()).expect("the runner is listening");
    tokio::time::timeout(std::time::Duration::from_secs(10), sweep).await.expect("stops on shutdown").expect("join");
}

#[tokio::test]
async fn logs_protocol_errors() {
    let h = harness().await;
    // Signed for ECS, sent to Logs: the scope names the wrong service.
    let body = json!({"logGroupName": "g"}).to_string().into_bytes();
    let (status, v) = send(&h, request("Logs_20140328.CreateLogGroup", body, "ecs")).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidSignatureException")), "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("'logs'"), "{v}");
    assert!(h.logs.get_log_group("g").await.expect("get").is_none(), "nothing was created");
    let (status, v) = logs(&h, "StartQuery", json!({"logGroupName": "g", "startTime": 0, "endTime": 1, "queryString": "x"})).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some("UnknownOperationException")), "{v}");
    let (_, v) = logs(&h, "NoSuchThing", json!({})).await;
    assert_eq!(v["__type"], "UnknownOperationException");
    let (_, v) = send(&h, request("Logs_20140328.CreateLogGroup", b"{nope".to_vec(), "logs")).await;
    assert_eq!(v["__type"], "SerializationException");
    // Unknown members are ignored, as for ECS.
    ok(&h, "CreateLogGroup", json!({"logGroupName": "g", "someFutureMember": 1})).await;
}
