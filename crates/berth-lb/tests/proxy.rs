//! The HTTP data plane against real hyper targets on loopback.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use berth_lb::{
    Action, Algorithm, Condition, Config, FixedResponse, Forward, HealthState, QueryPair, Reason, Redirect, Rule, Target, TargetGroupConfig, WeightedGroup,
};
use common::*;
use futures_util::StreamExt as _;
use http::Request;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn keep_alive_requests_spread_over_three_targets_on_reused_connections() {
    let (a, b, c) = (target("a").await, target("b").await, target("c").await);
    let (lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&a, &b, &c])] });
    let mut client = Client::connect(addr("l")).await;
    let mut seen = Vec::new();
    for _ in 0..30 {
        let r = client.get("/").await;
        assert_eq!(r.status, 200);
        seen.push(r.body);
    }
    for t in [&a, &b, &c] {
        assert_eq!(seen.iter().filter(|s| **s == t.name).count(), 10, "{seen:?}");
        assert_eq!(t.conns.load(Ordering::SeqCst), 1, "target {} saw one proxied connection", t.name);
    }
    let counters = &lb.counters()["tg"];
    assert_eq!(counters.request_count, 30);
    assert_eq!(counters.target_2xx, 30);
    assert_eq!(counters.target_response_time_count, 30);
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let t = target("t").await;
    let (_lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&t])] });
    let mut client = Client::connect(addr("l")).await;
    // Download 32 MiB in 64 KiB chunks.
    let size = 32u64 << 20;
    client.send.ready().await.unwrap();
    let resp = client.send.send_request(Request::get(format!("/stream?bytes={size}")).body(empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let (mut n, mut frames) = (0u64, 0);
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            n += d.len() as u64;
            frames += 1;
        }
    }
    assert_eq!(n, size);
    assert!(frames > 100, "the body came in pieces ({frames} frames), not as one buffer");
    // Upload 32 MiB as a chunked stream.
    let chunks = futures_util::stream::iter(0..512).map(|_| Ok(Frame::data(bytes::Bytes::from(vec![b'y'; 64 * 1024]))));
    let req = Request::post("/upload").body(StreamBody::new(chunks).boxed_unsync()).unwrap();
    let r = client.request(req).await;
    assert_eq!((r.status, r.body.as_str()), (200, (32u64 << 20).to_string().as_str()));
}

#[tokio::test]
async fn forwarded_headers_and_trace_ids() {
    let t = target("t").await;
    let (_lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&t])] });
    let port = addr("l").port();
    let mut client = Client::connect(addr("l")).await;
    let req = Request::get("/echo-headers?x=1")
        .header("host", "shop.test")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("connection", "keep-alive, x-drop")
        .header("x-drop", "1")
        .body(empty())
        .unwrap();
    let r = client.request(req).await;
    let lines: Vec<&str> = r.body.lines().collect();
    let has = |l: &str| lines.contains(&l);
    assert!(has("x-forwarded-for: 203.0.113.7, 127.0.0.1"), "{lines:?}");
    assert!(has("x-forwarded-proto: http"), "{lines:?}");
    assert!(has(&format!("x-forwarded-port: {port}")), "{lines:?}");
    assert!(has("host: shop.test"), "{lines:?}");
    assert!(has("uri: /echo-headers?x=1"), "{lines:?}");
    assert!(!r.body.contains("x-drop"), "headers named in Connection are hop-by-hop: {lines:?}");
    let trace = lines.iter().find_map(|l| l.strip_prefix("x-amzn-trace-id: ")).unwrap();
    let root = trace.strip_prefix("Root=1-").unwrap();
    let (epoch, rand) = root.split_once('-').unwrap();
    assert_eq!((epoch.len(), rand.len()), (8, 24), "{trace}");
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(u64::from_str_radix(epoch, 16).unwrap()) < 60, "{trace}");
    // An incoming trace id is kept; ALB adds Self.
    let incoming = "Root=1-67891233-abcdef012345678912345678;CalledFrom=app";
    let r = client.request(Request::get("/echo-headers").header("x-amzn-trace-id", incoming).body(empty()).unwrap()).await;
    let trace = r.body.lines().find_map(|l| l.strip_prefix("x-amzn-trace-id: ")).unwrap().to_owned();
    assert!(trace.starts_with("Self=1-") && trace.ends_with(&format!(";{incoming}")), "{trace}");
    // More than 30 addresses: 463.
    let long = vec!["10.0.0.1"; 31].join(", ");
    let r = client.request(Request::get("/").header("x-forwarded-for", long).body(empty()).unwrap()).await;
    assert_eq!(r.status, 463);
}

#[tokio::test]
async fn alb_errors_503_502_504() {
    let slow = target("slow").await;
    // A port nothing listens on: bind one, note it, close it.
    let refused = refused_addr();
    let mut refusing = TargetGroupConfig::http("refused", &[refused]);
    refusing.health_check = fast_health();
    let mut l = http_listener("l", forward("empty"));
    l.idle_timeout = Duration::from_millis(400);
    l.rules = vec![
        Rule { priority: 1, conditions: vec![Condition::PathPattern(vec!["/refused".into()])], action: forward("refused") },
        Rule { priority: 2, conditions: vec![Condition::PathPattern(vec!["/slow".into()])], action: forward("slow") },
    ];
    let (lb, addr) = start(Config {
        listeners: vec![l],
        target_groups: vec![group("empty", &[]), refusing, group("slow", &[&slow])],
    });
    let r = get(addr("l"), "/").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("503 Service Temporarily Unavailable"), "{}", r.body);
    assert_eq!(r.header("server"), "awselb/2.0");
    let r = get(addr("l"), "/refused").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("502 Bad Gateway"));
    let r = get(addr("l"), "/slow?ms=2000").await;
    assert_eq!(r.status, 504, "{}", r.body);
    let c = lb.counters();
    assert_eq!((c["empty"].elb_503, c["refused"].elb_502, c["slow"].elb_504), (1, 1, 1));
    assert_eq!(c["slow"].elb_5xx, 1);
}

#[tokio::test]
async fn a_target_failing_its_health_checks_turns_unhealthy_and_gets_no_traffic() {
    let (good, bad) = (target("good").await, target("bad").await);
    bad.health.store(500, Ordering::SeqCst);
    let (lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&good, &bad])] });
    let mut changes = lb.health_changes();
    let initial = lb.health();
    assert!(initial.iter().all(|h| h.state == HealthState::Initial), "{initial:?}");
    eventually(WAIT, "good healthy, bad unhealthy", || {
        let h = lb.health();
        h.iter().any(|r| r.addr == good.addr && r.state == HealthState::Healthy) && h.iter().any(|r| r.addr == bad.addr && r.state == HealthState::Unhealthy)
    })
    .await;
    assert!(changes.has_changed().unwrap(), "health changes are announced");
    changes.mark_unchanged();
    let bad_report = lb.health().into_iter().find(|r| r.addr == bad.addr).unwrap();
    assert_eq!(bad_report.reason, Some(Reason::ResponseCodeMismatch));
    assert_eq!(bad_report.reason.unwrap().code(), "Target.ResponseCodeMismatch");
    assert_eq!(bad_report.description.as_deref(), Some("Health checks failed with these codes: [500]"));
    let before = bad.hits.load(Ordering::SeqCst);
    let mut client = Client::connect(addr("l")).await;
    for _ in 0..10 {
        assert_eq!(client.get("/").await.body, "good");
    }
    assert_eq!(bad.hits.load(Ordering::SeqCst), before, "the unhealthy target got no request");
    let c = &lb.counters()["tg"];
    assert_eq!((c.healthy_host_count, c.unhealthy_host_count), (1, 1));
    // It recovers: healthy again, traffic again.
    bad.health.store(200, Ordering::SeqCst);
    eventually(WAIT, "bad healthy again", || lb.health().iter().all(|r| r.state == HealthState::Healthy)).await;
    let bodies: Vec<String> = futures_util::future::join_all((0..4).map(|_| async { get(addr("l"), "/").await.body })).await;
    assert!(bodies.iter().any(|b| b == "bad"), "{bodies:?}");
}

#[tokio::test]
async fn every_target_unhealthy_fails_open() {
    let (a, b) = (target("a").await, target("b").await);
    a.health.store(503, Ordering::SeqCst);
    b.health.store(404, Ordering::SeqCst);
    let (lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&a, &b])] });
    eventually(WAIT, "both unhealthy", || lb.health().iter().all(|r| r.state == HealthState::Unhealthy)).await;
    let mut client = Client::connect(addr("l")).await;
    let seen: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(client.get("/").await.body);
        }
        v
    };
    assert_eq!(seen.iter().filter(|s| *s == "a").count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| *s == "b").count(), 2, "{seen:?}");
}

#[tokio::test]
async fn a_health_check_timeout_and_a_refused_one_have_their_reasons() {
    let t = target("t").await;
    let refused = refused_addr();
    let mut slow = group("slow", &[&t]);
    slow.health_check.path = "/slow?ms=2000".into();
    slow.health_check.timeout = Duration::from_millis(200);
    let mut gone = group("gone", &[]);
    gone.targets = vec![Target::new(refused)];
    let unused = group("unused", &[&t]);
    let mut l = http_listener("l", forward("slow"));
    l.rules = vec![Rule { priority: 1, conditions: vec![Condition::HttpRequestMethod(vec!["PUT".into()])], action: forward("gone") }];
    let (lb, _addr) = start(Config { listeners: vec![l], target_groups: vec![slow, gone, unused] });
    eventually(WAIT, "both unhealthy", || lb.health().iter().filter(|r| r.state == HealthState::Unhealthy).count() == 2).await;
    let h = lb.health();
    let of = |g: &str| h.iter().find(|r| r.target_group == g).unwrap().clone();
    assert_eq!((of("slow").reason, of("slow").description.as_deref()), (Some(Reason::Timeout), Some("Request timed out")));
    assert_eq!((of("gone").reason, of("gone").description.as_deref()), (Some(Reason::FailedHealthChecks), Some("Health checks failed")));
    assert_eq!((of("unused").state, of("unused").reason), (HealthState::Unused, Some(Reason::NotInUse)));
}

#[tokio::test]
async fn a_draining_target_finishes_in_flight_requests_and_gets_no_new_ones() {
    let (a, b) = (target("a").await, target("b").await);
    let tg = group("tg", &[&a, &b]);
    let listener = http_listener("l", forward("tg"));
    let (lb, addr) = start(Config { listeners: vec![listener.clone()], target_groups: vec![tg.clone()] });
    eventually(WAIT, "healthy", || lb.health().iter().all(|r| r.state == HealthState::Healthy)).await;
    // Two slow requests in flight: one on each target.
    let l = addr("l");
    let in_flight: Vec<_> = (0..2).map(|_| tokio::spawn(async move { get(l, "/slow?ms=800").await })).collect();
    eventually(WAIT, "one slow request on each target", || a.hits.load(Ordering::SeqCst) == 1 && b.hits.load(Ordering::SeqCst) == 1).await;
    // Deregister a: draining.
    let mut draining = tg.clone();
    draining.targets[0].draining_until = Some(SystemTime::now() + Duration::from_secs(300));
    assert!(lb.apply(Config { listeners: vec![listener.clone()], target_groups: vec![draining] }).is_empty());
    let report = lb.health();
    let ra = report.iter().find(|r| r.addr == a.addr).unwrap();
    assert_eq!((ra.state, ra.reason), (HealthState::Draining, Some(Reason::DeregistrationInProgress)));
    assert_eq!(ra.description.as_deref(), Some("Target deregistration is in progress"));
    let a_before = a.hits.load(Ordering::SeqCst);
    for _ in 0..6 {
        assert_eq!(get(l, "/").await.body, "b");
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), a_before);
    let mut answered: Vec<String> = Vec::new();
    for h in in_flight {
        let r = h.await.unwrap();
        assert_eq!(r.status, 200, "the in-flight request finished");
        answered.push(r.body);
    }
    answered.sort();
    assert_eq!(answered, vec!["a", "b"]);
    // The delay is over: the caller removes it; it is gone.
    let mut gone = tg.clone();
    gone.targets.remove(0);
    assert!(lb.apply(Config { listeners: vec![listener], target_groups: vec![gone] }).is_empty());
    assert!(lb.health().iter().all(|r| r.addr != a.addr));
}

#[tokio::test]
async fn least_outstanding_requests_prefers_the_idle_target() {
    let (a, b) = (target("a").await, target("b").await);
    let mut tg = group("tg", &[&a, &b]);
    tg.algorithm = Algorithm::LeastOutstandingRequests;
    let (lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![tg] });
    eventually(WAIT, "healthy", || lb.health().iter().all(|r| r.state == HealthState::Healthy)).await;
    let l = addr("l");
    let busy = tokio::spawn(async move { get(l, "/slow?ms=1500").await.body });
    eventually(WAIT, "the slow request at a target", || a.hits.load(Ordering::SeqCst) + b.hits.load(Ordering::SeqCst) == 1).await;
    let busy_name = if a.hits.load(Ordering::SeqCst) == 1 { "a" } else { "b" };
    let mut client = Client::connect(l).await;
    for _ in 0..8 {
        let body = client.get("/").await.body;
        assert_ne!(body, busy_name, "the busy target got a request while the other was idle");
    }
    assert_eq!(busy.await.unwrap(), busy_name);
}

#[tokio::test]
async fn rules_route_by_path_host_header_method_query_and_source() {
    let (api, web, canary) = (target("api").await, target("web").await, target("canary").await);
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let fixed = |status: u16, body: &str| Action::FixedResponse(FixedResponse { status, content_type: Some("text/plain".into()), body: body.into() });
    let mut l = http_listener("l", fixed(404, "no route"));
    l.rules = vec![
        Rule { priority: 10, conditions: vec![Condition::PathPattern(s(&["/api/*"]))], action: forward("api") },
        Rule { priority: 20, conditions: vec![Condition::HostHeader(s(&["*.web.test"]))], action: forward("web") },
        Rule { priority: 5, conditions: vec![Condition::HttpHeader { name: "X-Canary".into(), values: s(&["on", "yes"]) }], action: forward("canary") },
        Rule {
            priority: 30,
            conditions: vec![Condition::HttpRequestMethod(s(&["POST"])), Condition::PathPattern(s(&["/form"]))],
            action: fixed(201, "posted"),
        },
        Rule { priority: 40, conditions: vec![Condition::QueryString(vec![QueryPair { key: Some("v".into()), value: "2*".into() }])], action: forward("canary") },
        Rule { priority: 50, conditions: vec![Condition::SourceIp(vec!["10.0.0.0/8".parse().unwrap()])], action: fixed(403, "ten") },
        Rule { priority: 60, conditions: vec![Condition::SourceIp(vec!["127.0.0.0/8".parse().unwrap()]), Condition::PathPattern(s(&["/src"]))], action: fixed(200, "loopback") },
        Rule {
            priority: 70,
            conditions: vec![Condition::PathPattern(s(&["/old/*"]))],
            action: Action::Redirect(Redirect { protocol: Some("HTTPS".into()), port: Some("443".into()), path: Some("/new/#{path}".into()), permanent: true, ..Default::default() }),
        },
    ];
    let (lb, addr) = start(Config {
        listeners: vec![l],
        target_groups: vec![group("api", &[&api]), group("web", &[&web]), group("canary", &[&canary])],
    });
    let mut c = Client::connect(addr("l")).await;
    let mut ask = async |method: &str, path: &str, host: &str, header: Option<(&str, &str)>| {
        let mut b = Request::builder().method(method).uri(path).header("host", host);
        if let Some((k, v)) = header {
            b = b.header(k, v);
        }
        let r = c.request(b.body(empty()).unwrap()).await;
        (r.status, r.body.clone(), r.header("location").to_owned())
    };
    assert_eq!(ask("GET", "/api/users", "x.test", None).await.1, "api");
    assert_eq!(ask("GET", "/API/users", "x.test", None).await.1, "no route", "paths are case-sensitive");
    assert_eq!(ask("GET", "/", "Shop.Web.Test:8080", None).await.1, "web");
    assert_eq!(ask("GET", "/api/x", "x.test", Some(("x-canary", "YES"))).await.1, "canary", "priority 5 comes first");
    assert_eq!(ask("POST", "/form", "x.test", None).await, (201, "posted".into(), String::new()));
    assert_eq!(ask("GET", "/form", "x.test", None).await.0, 404);
    assert_eq!(ask("GET", "/q?a=1&v=2.1", "x.test", None).await.1, "canary");
    assert_eq!(ask("GET", "/src", "x.test", None).await.1, "loopback");
    let (status, _, location) = ask("GET", "/old/a/b?k=v", "shop.test:8080", None).await;
    assert_eq!((status, location.as_str()), (301, "https://shop.test/new/old/a/b?k=v"));
    let lc = &lb.listener_counters()["l"];
    assert_eq!((lc.redirect_count, lc.fixed_response_count), (1, 4));
}

#[tokio::test]
async fn weighted_forward_splits_by_weight_and_group_stickiness_holds() {
    let (blue, green) = (target("blue").await, target("green").await);
    let weighted = |sticky: Option<Duration>| {
        Action::Forward(Forward {
            target_groups: vec![WeightedGroup { id: "blue".into(), weight: 3 }, WeightedGroup { id: "green".into(), weight: 1 }],
            group_stickiness: sticky,
        })
    };
    let mut l = http_listener("l", weighted(None));
    l.rules = vec![Rule { priority: 1, conditions: vec![Condition::PathPattern(vec!["/sticky".into()])], action: weighted(Some(Duration::from_secs(60))) }];
    let (_lb, addr) = start(Config { listeners: vec![l], target_groups: vec![group("blue", &[&blue]), group("green", &[&green])] });
    let mut c = Client::connect(addr("l")).await;
    let mut blues = 0;
    for _ in 0..400 {
        if c.get("/").await.body == "blue" {
            blues += 1;
        }
    }
    // 3:1 of 400 is 300; binomial sd ~8.7, so ±60 is ~7 sd.
    assert!((240..=360).contains(&blues), "{blues} of 400 to the weight-3 group");
    let first = c.get("/sticky").await;
    let cookie = first.header("set-cookie").split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("AWSALBTG="), "{cookie}");
    for _ in 0..20 {
        let r = c.request(Request::get("/sticky").header("cookie", &cookie).body(empty()).unwrap()).await;
        assert_eq!(r.body, first.body);
    }
}

#[tokio::test]
async fn lb_cookie_stickiness_keeps_a_client_on_its_target() {
    let (a, b) = (target("a").await, target("b").await);
    let mut tg = group("tg", &[&a, &b]);
    tg.stickiness = Some(Duration::from_secs(3600));
    let (_lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![tg] });
    let mut c = Client::connect(addr("l")).await;
    let first = c.get("/").await;
    let cookies: Vec<&str> = first.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("AWSALB=")) && cookies.iter().any(|c| c.starts_with("AWSALBCORS=") && c.contains("SameSite=None; Secure")), "{cookies:?}");
    let cookie = cookies.iter().find(|c| c.starts_with("AWSALB=")).unwrap().split(';').next().unwrap().to_owned();
    for _ in 0..10 {
        let r = c.request(Request::get("/").header("cookie", &cookie).body(empty()).unwrap()).await;
        assert_eq!(r.body, first.body);
    }
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let t = target("ws").await;
    let (_lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&t])] });
    let mut c = Client::connect(addr("l")).await;
    let req = Request::get("/ws")
        .header("host", "lb.test")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(empty())
        .unwrap();
    c.send.ready().await.unwrap();
    let resp = c.send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["upgrade"], "websocket");
    let mut io = hyper_util::rt::TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    for msg in ["hello", "again"] {
        io.write_all(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], format!("ws:{msg}").as_bytes());
    }
}

#[tokio::test]
async fn apply_changes_targets_without_dropping_a_keep_alive_connection() {
    let (a, b) = (target("a").await, target("b").await);
    let listener = http_listener("l", forward("tg"));
    let (lb, addr) = start(Config { listeners: vec![listener.clone()], target_groups: vec![group("tg", &[&a])] });
    let mut c = Client::connect(addr("l")).await;
    assert_eq!(c.get("/").await.body, "a");
    let errors = lb.apply(Config { listeners: vec![listener.clone()], target_groups: vec![group("tg", &[&b])] });
    assert!(errors.is_empty());
    assert_eq!(lb.local_addrs()["l"], addr("l"), "the listener kept its socket");
    for _ in 0..3 {
        assert_eq!(c.get("/").await.body, "b");
    }
    assert!(c.is_open());
    // A rule added to the running listener applies to the same connection.
    let mut with_rule = listener;
    with_rule.rules = vec![Rule {
        priority: 1,
        conditions: vec![Condition::PathPattern(vec!["/teapot".into()])],
        action: Action::FixedResponse(FixedResponse { status: 418, content_type: None, body: "short and stout".into() }),
    }];
    assert!(lb.apply(Config { listeners: vec![with_rule], target_groups: vec![group("tg", &[&b])] }).is_empty());
    assert_eq!(c.get("/teapot").await.status, 418);
    // Removing the listener closes its port.
    assert!(lb.apply(Config::default()).is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr("l")).await.is_err());
}

#[tokio::test]
async fn idle_client_connections_are_closed() {
    let t = target("t").await;
    let mut l = http_listener("l", forward("tg"));
    l.idle_timeout = Duration::from_millis(300);
    let (_lb, addr) = start(Config { listeners: vec![l], target_groups: vec![group("tg", &[&t])] });
    let mut c = Client::connect(addr("l")).await;
    assert_eq!(c.get("/").await.status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!c.is_open(), "the idle connection was closed");
    // A raw connection that never sends anything is closed too.
    let mut raw = tokio::net::TcpStream::connect(addr("l")).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), raw.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let t = target("t").await;
    let (_lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&t])] });
    let stream = tokio::net::TcpStream::connect(addr("l")).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(Request::get("http://lb.test/echo-headers").body(empty()).unwrap()).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let r = read(resp).await;
    assert!(r.body.contains("host: lb.test"), "the :authority became Host: {}", r.body);
}

#[tokio::test]
async fn a_client_leaving_before_its_answer_counts_460() {
    let t = target("t").await;
    let (lb, addr) = start(Config { listeners: vec![http_listener("l", forward("tg"))], target_groups: vec![group("tg", &[&t])] });
    let mut c = Client::connect(addr("l")).await;
    c.send.ready().await.unwrap();
    let pending = c.send.send_request(Request::get("/slow?ms=1500").body(empty()).unwrap());
    // Give up on it after 200 ms, and close the connection.
    assert!(tokio::time::timeout(Duration::from_millis(200), pending).await.is_err());
    drop(c);
    eventually(WAIT, "460 counted", || lb.counters()["tg"].elb_460 == 1).await;
    assert_eq!(lb.counters()["tg"].target_2xx, 0);
}

#[tokio::test]
async fn an_upload_that_keeps_moving_is_not_idle() {
    let t = target("t").await;
    let mut l = http_listener("l", forward("tg"));
    l.idle_timeout = Duration::from_millis(300);
    let (_lb, addr) = start(Config { listeners: vec![l], target_groups: vec![group("tg", &[&t])] });
    let mut c = Client::connect(addr("l")).await;
    // Ten chunks 100 ms apart: a second in all, never 300 ms without data.
    let chunks = futures_util::stream::iter(0..10).then(|_| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(Frame::data(bytes::Bytes::from_static(b"0123456789")))
    });
    let r = c.request(Request::post("/upload").body(StreamBody::new(chunks).boxed_unsync()).unwrap()).await;
    assert_eq!((r.status, r.body.as_str()), (200, "100"));
}
