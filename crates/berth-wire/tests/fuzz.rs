//! Fuzzing every wire parser with proptest (cargo-fuzz needs a nightly
//! toolchain, which Berth does not build with).
//!
//! For each module: `Action::parse` (JSON) with every operation name and
//! random ones on random bytes, random JSON and JSON objects keyed by the
//! module's own member names with values of the wrong types; the Query
//! modules' `from_query` on random forms and on `Action=OP&Member.N=…`
//! forms; CloudWatch's `from_deserializer` (CBOR's data model) on random
//! values; Scheduler's
//! `from_rest` on random routes, labels, query strings, headers and bodies.
//! The property: an `Ok` or an error value, never a panic.
//!
//! Bounded by default (proptest's 256 cases); `PROPTEST_CASES=100000`
//! makes the long run (docs/ARCHITECTURE.md, "Fuzzing").

use berth_wire::codec::rest::match_route;
use berth_wire::codec::{QueryInput, RestRequest};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Map, Value};

/// The JSON/Query member names a generated module declares
/// (`rename = "X"`, `key(prefix, "X")`), read from its source.
fn members(source: &'static str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for marker in ["rename = \"", "key(prefix, \""] {
        for piece in source.split(marker).skip(1) {
            if let Some(name) = piece.split('"').next().filter(|n| !n.is_empty() && n.len() < 64) {
                out.insert(name.to_owned());
            }
        }
    }
    if out.is_empty() {
        // Written by hand with `rename_all`: the common names.
        out.extend(["name", "subnetId", "cidrBlock", "groupId", "image", "imageId", "port", "protocol", "tags"].map(str::to_owned));
    }
    out.into_iter().collect()
}

struct Module {
    name: &'static str,
    ops: &'static [&'static str],
    members: Vec<String>,
    parse: fn(&str, &[u8]) -> Result<(), String>,
}

macro_rules! json_module {
    ($m:ident) => {
        Module {
            name: stringify!($m),
            ops: berth_wire::$m::Action::NAMES,
            members: members(include_str!(concat!("../src/", stringify!($m), ".rs"))),
            parse: |op, body| berth_wire::$m::Action::parse(op, body).map(|_| ()).map_err(|e| e.to_string()),
        }
    };
}

const BERTH_OPS: &[&str] = &[
    "PullImage", "ListImages", "RemoveImage", "CreateSubnet", "ListSubnets", "DeleteSubnet", "CreateSecurityGroup",
    "ListSecurityGroups", "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress",
];

fn modules() -> Vec<Module> {
    vec![
        json_module!(acm),
        json_module!(cloudwatch),
        json_module!(ec2),
        json_module!(ecs),
        json_module!(elbv2),
        json_module!(iam),
        json_module!(logs),
        json_module!(scheduler),
        json_module!(secretsmanager),
        json_module!(servicediscovery),
        json_module!(ssm),
        json_module!(sts),
        Module {
            name: "berth",
            ops: BERTH_OPS,
            members: members(include_str!("../src/berth.rs")),
            parse: |op, body| berth_wire::berth::Action::parse(op, body).map(|_| ()).map_err(|e| e.to_string()),
        },
    ]
}

type QueryParse = fn(&QueryInput) -> Result<bool, String>;

fn query_modules() -> Vec<(&'static str, &'static [&'static str], Vec<String>, QueryParse)> {
    macro_rules! q {
        ($m:ident) => {
            (
                stringify!($m),
                berth_wire::$m::Action::NAMES,
                members(include_str!(concat!("../src/", stringify!($m), ".rs"))),
                (|q| berth_wire::$m::Action::from_query(q).map(|a| a.is_some()).map_err(|e| e.to_string())) as QueryParse,
            )
        };
    }
    vec![q!(cloudwatch), q!(ec2), q!(elbv2), q!(iam), q!(sts)]
}

fn config(default_cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    c
}

const TEXTS: &[&str] = &[
    "", "0", "-1", "1e309", "18446744073709551616", "true", "null", "1.5", "NaN", "2024-01-01T00:00:00Z", "arn:aws:ecs:us-east-1:1:cluster/a",
    "\u{0}", "\u{feff}", "a%zz", "%", "AAAA", "====", "é", "FARGATE", "awsvpc", "ENABLED",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(TEXTS).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// JSON shaped like an input: objects keyed by the module's member names.
fn inputish(names: Vec<String>) -> impl Strategy<Value = Value> {
    let names = std::sync::Arc::new(names);
    scalar().prop_recursive(4, 48, 6, move |inner| {
        let names = names.clone();
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((any::<prop::sample::Index>(), inner), 0..6).prop_map(move |kv| {
                Value::Object(kv.into_iter().map(|(i, v)| (i.get(&names).clone(), v)).collect::<Map<_, _>>())
            }),
        ]
    })
}

fn op_name(ops: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(ops).prop_map(str::to_owned), 1 => "[A-Za-z]{0,12}"]
}

/// An object with member names from the whole module, as a top-level input.
fn input_object(names: Vec<String>) -> impl Strategy<Value = Value> {
    let n = names.clone();
    proptest::collection::vec((any::<prop::sample::Index>(), inputish(names)), 0..8)
        .prop_map(move |kv| Value::Object(kv.into_iter().map(|(i, v)| (i.get(&n).clone(), v)).collect()))
}

fn every_module_json(pick: prop::sample::Index, op: prop::sample::Index, named: bool, value: &Value, random_op: &str) {
    let mods = modules();
    let m = pick.get(&mods);
    let op = if named { op.get(m.ops) } else { random_op };
    let body = value.to_string();
    if let Err(e) = (m.parse)(op, body.as_bytes()) {
        assert!(!e.is_empty(), "{}:{op}: an empty error", m.name);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Random bytes as every operation's body, in every module.
    #[test]
    fn json_random_bytes(body in proptest::collection::vec(any::<u8>(), 0..256), random_op in "[A-Za-z]{0,16}") {
        for m in modules() {
            for op in m.ops.iter().copied().chain([random_op.as_str()]) {
                let _ = (m.parse)(op, &body);
            }
        }
    }

    /// Random JSON of any shape as every operation's body.
    #[test]
    fn json_random_values(value in inputish(vec!["a".into(), "Name".into(), "name".into()])) {
        let body = value.to_string();
        for m in modules() {
            for op in m.ops {
                let _ = (m.parse)(op, body.as_bytes());
            }
        }
    }

    /// Objects keyed by the module's member names, values of random
    /// (mostly wrong) types, for one module and operation at a time.
    #[test]
    fn json_members_wrong_types(pick in any::<prop::sample::Index>(), op in any::<prop::sample::Index>(), named in prop::bool::weighted(0.9),
                                random_op in "[A-Za-z]{0,12}") {
        let mods = modules();
        let names = pick.get(&mods).members.clone();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let value = input_object(names).new_tree(&mut runner).map(|t| t.current()).unwrap_or(Value::Null);
        every_module_json(pick, op, named, &value, &random_op);
    }

    /// Random bytes as a Query body, then every module's `from_query`.
    #[test]
    fn query_random_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(q) = QueryInput::parse(&body) {
            for (_, _, _, parse) in query_modules() {
                let _ = parse(&q);
            }
        }
    }

    /// `Action=OP&Member…=value` forms: the module's own member names,
    /// nested with `.member.N` / `.N` / `.entry.N.key`, random values.
    #[test]
    fn query_member_forms(pick in any::<prop::sample::Index>(), op in any::<prop::sample::Index>(),
                          params in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..5, any::<prop::sample::Index>(), ".{0,10}"), 0..10),
                          index in prop_oneof![Just("1".to_owned()), Just("0".to_owned()), Just("-1".to_owned()), Just("99999999999999999999".to_owned()), "[0-9a-z]{0,3}"]) {
        let mods = query_modules();
        let (name, ops, members, parse) = &mods[pick.index(mods.len())];
        let op = op.get(ops);
        let mut pairs = vec![("Action".to_owned(), (*op).to_owned()), ("Version".to_owned(), "2016-11-15".to_owned())];
        for (a, b, shape, t, v) in params {
            let (a, b) = (a.get(members), b.get(members));
            let key = match shape {
                0 => a.clone(),
                1 => format!("{a}.{index}"),
                2 => format!("{a}.member.{index}.{b}"),
                3 => format!("{a}.entry.{index}.key"),
                _ => format!("{a}.{index}.{b}.member.{index}"),
            };
            let value = if t.index(3) == 0 { t.get(TEXTS).to_string() } else { v };
            pairs.push((key, value));
        }
        let form: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let q = QueryInput::parse(form.as_bytes());
        prop_assert!(q.is_ok(), "{name}: an encoded form refused: {form}");
        if let Ok(q) = q
            && let Err(e) = parse(&q)
        {
            prop_assert!(!e.is_empty());
        }
    }

    /// CloudWatch's `from_deserializer`, which reads CBOR requests
    /// through the JSON data model (berth-api's `protocol::cbor_to_json`,
    /// fuzzed there on raw bytes): random member-keyed values.
    #[test]
    fn cbor_data_model_values(value in input_object(members(include_str!("../src/cloudwatch.rs"))), op in op_name(berth_wire::cloudwatch::Action::NAMES)) {
        if let Err(e) = berth_wire::cloudwatch::Action::from_deserializer(&op, value) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Scheduler's REST routes: random methods, paths, query strings,
    /// headers and bodies through `match_route`, `RestRequest::new` and
    /// `from_rest`.
    #[test]
    fn rest_scheduler(method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH")],
                      path in prop_oneof![
                          "/(schedules|schedule-groups|tags)(/[a-zA-Z0-9%._~:-]{0,20}){0,3}",
                          "/.{0,30}",
                          ".{0,10}",
                      ],
                      query in prop_oneof![
                          "((NamePrefix|MaxResults|NextToken|State|ScheduleGroup|groupName|x)=[a-zA-Z0-9%+-]{0,8}&?){0,4}",
                          ".{0,20}",
                      ],
                      headers in proptest::collection::vec(("[A-Za-z-]{1,12}", ".{0,12}"), 0..4),
                      body in prop_oneof![
                          input_object(members(include_str!("../src/scheduler.rs"))).prop_map(|v| v.to_string().into_bytes()),
                          proptest::collection::vec(any::<u8>(), 0..64),
                      ]) {
        let (op, labels) = match match_route(berth_wire::scheduler::ROUTES, method, &path, &query) {
            Some((route, labels)) => (route.operation, labels),
            None => ("ListSchedules", Default::default()),
        };
        if let Ok(r) = RestRequest::new(labels, &query, headers, &body) {
            for op in [op, "GetSchedule", "ListScheduleGroups", "ListSchedules", "Nope"] {
                let _ = berth_wire::scheduler::Action::from_rest(op, &r);
            }
        }
    }
}

/// Every module's every operation with an empty object, an empty body and
/// `null`: the inputs clients send most when wrong.
#[test]
fn every_operation_edge_bodies() {
    for m in modules() {
        for op in m.ops {
            for body in [&b"{}"[..], b"", b"null", b"[]", b"{\"a\":", b"\xff"] {
                let _ = (m.parse)(op, body);
            }
        }
    }
}
