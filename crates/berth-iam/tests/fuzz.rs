//! Fuzzing the policy parser and evaluator with proptest.
//!
//! cargo-fuzz needs a nightly toolchain, which Berth does not build with;
//! these property tests are the fuzzing: arbitrary strings, arbitrary JSON
//! values whose keys are the grammar's own element names (structured but
//! mostly wrong), and valid documents with one element replaced by
//! arbitrary JSON, all into `PolicyDocument::parse` and `parse_trust`.
//! The properties: nothing panics, a refusal is a `PolicyError` with a
//! message, and whatever parses can be evaluated against arbitrary
//! requests without panicking.

use std::collections::BTreeMap;

use berth_iam::{PolicyDocument, Request, evaluate, trust_allows};
use proptest::prelude::*;
use serde_json::{Map, Value};

const NAMES: &[&str] = &[
    "Version", "Id", "Statement", "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
    "NotPrincipal", "Condition", "AWS", "Service", "Federated", "StringEquals", "StringLike", "ForAllValues:StringLike",
    "ForAnyValue:StringNotEquals", "ArnLikeIfExists", "IpAddress", "NotIpAddress", "DateLessThan", "NumericGreaterThan",
    "Bool", "Null", "aws:SourceIp", "aws:username", "ecs:cluster", "aws:TagKeys", "Foo",
];

const TEXTS: &[&str] = &[
    "2012-10-17", "2008-10-17", "Allow", "Deny", "*", "?", "ecs:*", "ecs:RunTask", "arn:aws:ecs:*:*:cluster/*",
    "arn:aws:iam::111122223333:root", "111122223333", "ecs-tasks.amazonaws.com", "${aws:username}", "${*}", "${",
    "10.0.0.0/8", "::1/128", "2020-01-01T00:00:00Z", "1700000000", "true", "", "arn:", "a:b:c:d:e:f:g",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(TEXTS).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// JSON shaped like a policy: objects keyed by the grammar's names.
fn policyish() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(NAMES), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())),
        ]
    })
}

const VALID: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["ecs:Describe*"],"Resource":"*",
  "Condition":{"StringEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:111122223333:cluster/a"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
const VALID_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}"#;

/// Whatever parsed, evaluated against a request from `keys`: must not panic.
fn exercise(json: &str, action: &str, resource: &str, keys: &BTreeMap<String, Vec<String>>) {
    let req = Request { principal_arn: "arn:aws:iam::111122223333:user/u", principal_account: "111122223333", action, resource, keys };
    match PolicyDocument::parse(json) {
        Ok(doc) => {
            let _ = evaluate(&[&doc], Some(&doc), &req);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match PolicyDocument::parse_trust(json) {
        Ok(doc) => {
            let _ = trust_allows(&doc, &req);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn request_keys() -> impl Strategy<Value = BTreeMap<String, Vec<String>>> {
    proptest::collection::btree_map(
        proptest::sample::select(&["aws:sourceip", "aws:username", "ecs:cluster", "aws:tagkeys", "aws:currenttime"][..]).prop_map(str::to_owned),
        proptest::collection::vec(prop_oneof![proptest::sample::select(TEXTS).prop_map(str::to_owned), ".{0,16}"], 0..3),
        0..5,
    )
}

/// 512 cases, unless `PROPTEST_CASES` says otherwise (the long run).
fn config(default_cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    c
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_text_is_refused_without_panic(text in ".{0,200}") {
        exercise(&text, "ecs:RunTask", "*", &BTreeMap::new());
    }

    #[test]
    fn structured_wrong_json_is_refused_without_panic(value in policyish(), keys in request_keys(), action in ".{0,20}", resource in ".{0,40}") {
        exercise(&value.to_string(), &action, &resource, &keys);
    }

    /// A valid document with one element replaced: an error or a document,
    /// never a panic.
    #[test]
    fn one_element_wrong(value in policyish(), which in 0usize..8, keys in request_keys()) {
        for base in [VALID, VALID_TRUST] {
            let mut doc: Value = serde_json::from_str(base).unwrap_or_default();
            let statement = &mut doc["Statement"][0];
            match which {
                0 => doc["Version"] = value.clone(),
                1 => doc["Statement"] = value.clone(),
                2 => statement["Effect"] = value.clone(),
                3 => statement["Action"] = value.clone(),
                4 => statement["Resource"] = value.clone(),
                5 => statement["Condition"] = value.clone(),
                6 => statement["Principal"] = value.clone(),
                _ => statement["Condition"]["StringEquals"] = value.clone(),
            }
            exercise(&doc.to_string(), "ecs:DescribeTasks", "arn:aws:ecs:us-east-1:111122223333:task/a/1", &keys);
        }
    }

    /// Patterns with wildcards and variables against long values: linear
    /// matching, no blow-up, no panic.
    #[test]
    fn wildcard_patterns(pattern in "[a*?:/${}]{0,40}", resource in "[a:/]{0,200}", keys in request_keys()) {
        let json = serde_json::json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":pattern,
            "Condition":{"StringLike":{"aws:username":pattern}}}]}).to_string();
        exercise(&json, "ecs:RunTask", &resource, &keys);
    }
}
