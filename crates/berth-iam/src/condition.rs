//! Condition operators (IAM User Guide, "IAM JSON policy elements:
//! Condition operators" and "Set operators for multivalued context keys").
//!
//! Within a Condition block every key must match (AND); a key's values are
//! alternatives (OR). A negated operator (StringNotEquals, ArnNotLike, …)
//! matches when the request's value equals none of them (NOR). A key
//! missing from the request fails the condition, except for negated
//! operators, `…IfExists` and `Null`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::pattern::{self, Tok, Vars};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) operator: Operator,
    /// Lower-case (condition keys are case-insensitive).
    pub(crate) key: String,
    pub(crate) values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    test: Test,
    /// The `Not` operators: the NOR of the values.
    negated: bool,
    if_exists: bool,
    set: Option<SetOp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    Arn,
    Null,
}

/// Operator name → (test, negated).
const OPERATORS: &[(&str, Test, bool)] = &[
    ("StringEquals", Test::StringEquals, false),
    ("StringNotEquals", Test::StringEquals, true),
    ("StringEqualsIgnoreCase", Test::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Test::StringEqualsIgnoreCase, true),
    ("StringLike", Test::StringLike, false),
    ("StringNotLike", Test::StringLike, true),
    ("NumericEquals", Test::NumericEquals, false),
    ("NumericNotEquals", Test::NumericEquals, true),
    ("NumericLessThan", Test::NumericLessThan, false),
    ("NumericLessThanEquals", Test::NumericLessThanEquals, false),
    ("NumericGreaterThan", Test::NumericGreaterThan, false),
    ("NumericGreaterThanEquals", Test::NumericGreaterThanEquals, false),
    ("DateEquals", Test::DateEquals, false),
    ("DateNotEquals", Test::DateEquals, true),
    ("DateLessThan", Test::DateLessThan, false),
    ("DateLessThanEquals", Test::DateLessThanEquals, false),
    ("DateGreaterThan", Test::DateGreaterThan, false),
    ("DateGreaterThanEquals", Test::DateGreaterThanEquals, false),
    ("Bool", Test::Bool, false),
    ("BinaryEquals", Test::BinaryEquals, false),
    ("IpAddress", Test::IpAddress, false),
    ("NotIpAddress", Test::IpAddress, true),
    ("ArnEquals", Test::Arn, false),
    ("ArnLike", Test::Arn, false),
    ("ArnNotEquals", Test::Arn, true),
    ("ArnNotLike", Test::Arn, true),
    ("Null", Test::Null, false),
];

impl Operator {
    /// `[ForAnyValue:|ForAllValues:]Name[IfExists]`; names are matched
    /// case-insensitively.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let (set, rest) = if let Some(r) = lower.strip_prefix("foranyvalue:") {
            (Some(SetOp::ForAnyValue), r)
        } else if let Some(r) = lower.strip_prefix("forallvalues:") {
            (Some(SetOp::ForAllValues), r)
        } else {
            (None, lower.as_str())
        };
        let (rest, if_exists) = match rest.strip_suffix("ifexists") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let &(_, test, negated) = OPERATORS.iter().find(|(n, ..)| n.eq_ignore_ascii_case(rest))?;
        if test == Test::Null && (if_exists || set.is_some()) {
            return None;
        }
        Some(Self { test, negated, if_exists, set })
    }
}

impl Condition {
    /// Whether the request's context satisfies this condition.
    pub(crate) fn matches(&self, keys: &BTreeMap<String, Vec<String>>, vars: Vars<'_>) -> bool {
        let op = self.operator;
        let present = keys.get(&self.key).filter(|v| !v.is_empty());
        if op.test == Test::Null {
            // "Null": "true" → the key is absent; "false" → present.
            return self.values.iter().any(|v| v.eq_ignore_ascii_case("true") == present.is_none());
        }
        let Some(request) = present else {
            return match op.set {
                // ForAllValues on an empty set is (vacuously) true; ForAnyValue false.
                Some(SetOp::ForAllValues) => true,
                Some(SetOp::ForAnyValue) => op.if_exists,
                None => op.if_exists || op.negated,
            };
        };
        let policy: Vec<Vec<Tok>> = self.values.iter().filter_map(|v| pattern::expand(v, vars)).collect();
        // One request value against the policy's values: any matches (OR),
        // or for a negated operator none does (NOR).
        let one = |value: &str| policy.iter().any(|p| op.test.holds(p, value)) != op.negated;
        match op.set {
            Some(SetOp::ForAllValues) => request.iter().all(|v| one(v)),
            Some(SetOp::ForAnyValue) => request.iter().any(|v| one(v)),
            // A single-valued operator on a multivalued key: positive if any
            // request value matches, negated if none does.
            None if op.negated => request.iter().all(|v| one(v)),
            None => request.iter().any(|v| one(v)),
        }
    }
}

impl Test {
    fn holds(self, policy: &[Tok], value: &str) -> bool {
        let lit = || pattern::literal(policy);
        match self {
            Test::StringEquals | Test::BinaryEquals => lit() == value,
            Test::StringEqualsIgnoreCase => lit().to_lowercase() == value.to_lowercase(),
            Test::StringLike => pattern::glob(policy, value, false),
            Test::Arn => pattern::arn_match(policy, value),
            Test::Bool => lit().eq_ignore_ascii_case(value) && matches!(value.to_ascii_lowercase().as_str(), "true" | "false"),
            Test::IpAddress => ip_in(&lit(), value),
            Test::NumericEquals
            | Test::NumericLessThan
            | Test::NumericLessThanEquals
            | Test::NumericGreaterThan
            | Test::NumericGreaterThanEquals => match (number(value), number(&lit())) {
                (Some(r), Some(p)) => self.compare(r.partial_cmp(&p)),
                _ => false,
            },
            Test::DateEquals
            | Test::DateLessThan
            | Test::DateLessThanEquals
            | Test::DateGreaterThan
            | Test::DateGreaterThanEquals => match (date(value), date(&lit())) {
                (Some(r), Some(p)) => self.compare(Some(r.cmp(&p))),
                _ => false,
            },
            Test::Null => false,
        }
    }

    /// `request <op> policy`.
    fn compare(self, ord: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let Some(ord) = ord else { return false };
        match self {
            Test::NumericEquals | Test::DateEquals => ord == Equal,
            Test::NumericLessThan | Test::DateLessThan => ord == Less,
            Test::NumericLessThanEquals | Test::DateLessThanEquals => ord != Greater,
            Test::NumericGreaterThan | Test::DateGreaterThan => ord == Greater,
            Test::NumericGreaterThanEquals | Test::DateGreaterThanEquals => ord != Less,
            _ => false,
        }
    }
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date as IAM takes it: ISO 8601 (`2020-01-01`, `2020-01-01T12:00:00Z`,
/// with an offset or fractional seconds) or epoch seconds; as Unix
/// nanoseconds.
pub(crate) fn date(s: &str) -> Option<i128> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    use time::{Date, OffsetDateTime, PrimitiveDateTime};
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Some(i128::from(secs) * 1_000_000_000);
    }
    if let Some(n) = number(s) {
        return Some((n * 1e9) as i128);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339).or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT)) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    Date::parse(s, &Iso8601::DEFAULT).ok().map(|d| d.midnight().assume_utc().unix_timestamp_nanos())
}

/// A policy's address or CIDR range against a request's address.
fn ip_in(policy: &str, value: &str) -> bool {
    let Ok(addr) = value.trim().parse::<IpAddr>() else { return false };
    let policy = policy.trim();
    match policy.parse::<IpNet>() {
        Ok(net) => net.contains(&addr),
        Err(_) => policy.parse::<IpAddr>().is_ok_and(|p| p == addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        Condition {
            operator: Operator::parse(op).unwrap_or_else(|| panic!("operator {op}")),
            key: key.to_ascii_lowercase(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn ctx(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.iter().map(|s| (*s).to_owned()).collect())).collect()
    }

    #[test]
    fn operator_names() {
        for name in ["StringEquals", "ForAnyValue:StringLike", "ForAllValues:StringEqualsIgnoreCase", "ArnLikeIfExists", "stringequals", "Null", "NotIpAddress"] {
            assert!(Operator::parse(name).is_some(), "{name}");
        }
        for name in ["StringEquall", "NullIfExists", "ForAnyValue:Null", "ForSomeValues:StringLike", ""] {
            assert!(Operator::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn operators() {
        let k = ctx(&[
            ("aws:username", &["alice"]),
            ("aws:epochtime", &["1700000000"]),
            ("aws:currenttime", &["2023-11-14T22:13:20Z"]),
            ("aws:securetransport", &["true"]),
            ("aws:sourceip", &["10.1.2.3"]),
            ("aws:principalarn", &["arn:aws:iam::123456789012:user/alice"]),
            ("n", &["5"]),
        ]);
        let v = Some(&k);
        for (op, key, values, expect) in [
            ("StringEquals", "aws:username", &["alice"][..], true),
            ("StringEquals", "aws:username", &["Alice"][..], false),
            ("StringEqualsIgnoreCase", "aws:username", &["ALICE"][..], true),
            ("StringNotEquals", "aws:username", &["bob", "carol"][..], true),
            ("StringNotEquals", "aws:username", &["bob", "alice"][..], false),
            ("StringLike", "aws:username", &["a*"][..], true),
            ("StringNotLike", "aws:username", &["b*"][..], true),
            ("NumericLessThan", "n", &["6"][..], true),
            ("NumericLessThan", "n", &["5"][..], false),
            ("NumericLessThanEquals", "n", &["5"][..], true),
            ("NumericGreaterThan", "n", &["4.5"][..], true),
            ("NumericNotEquals", "n", &["5"][..], false),
            ("NumericEquals", "n", &["five"][..], false),
            ("DateGreaterThan", "aws:currenttime", &["2023-01-01T00:00:00Z"][..], true),
            ("DateLessThan", "aws:currenttime", &["2023-01-01"][..], false),
            ("DateEquals", "aws:epochtime", &["2023-11-14T22:13:20Z"][..], true),
            ("DateLessThan", "aws:epochtime", &["1800000000"][..], true),
            ("Bool", "aws:securetransport", &["true"][..], true),
            ("Bool", "aws:securetransport", &["false"][..], false),
            ("IpAddress", "aws:sourceip", &["10.0.0.0/8"][..], true),
            ("IpAddress", "aws:sourceip", &["192.168.0.0/16", "10.1.2.3"][..], true),
            ("NotIpAddress", "aws:sourceip", &["10.0.0.0/8"][..], false),
            ("IpAddress", "aws:sourceip", &["2001:db8::/32"][..], false),
            ("ArnLike", "aws:principalarn", &["arn:aws:iam::*:user/*"][..], true),
            ("ArnEquals", "aws:principalarn", &["arn:aws:iam::123456789012:user/alice"][..], true),
            ("ArnNotLike", "aws:principalarn", &["arn:aws:iam::*:role/*"][..], true),
            ("StringEquals", "aws:username", &["${aws:username}"][..], true),
            // missing keys
            ("StringEquals", "aws:missing", &["x"][..], false),
            ("StringNotEquals", "aws:missing", &["x"][..], true),
            ("StringEqualsIfExists", "aws:missing", &["x"][..], true),
            ("StringEqualsIfExists", "aws:username", &["x"][..], false),
            ("Null", "aws:missing", &["true"][..], true),
            ("Null", "aws:username", &["true"][..], false),
            ("Null", "aws:username", &["false"][..], true),
        ] {
            assert_eq!(cond(op, key, values).matches(&k, v), expect, "{op} {key} {values:?}");
        }
        let v6 = ctx(&[("aws:sourceip", &["2001:db8::1"])]);
        assert!(cond("IpAddress", "aws:SourceIp", &["2001:db8::/32"]).matches(&v6, Some(&v6)));
    }

    #[test]
    fn set_operators() {
        // IAM User Guide, "Set operators for multivalued context keys".
        let tags = ctx(&[("aws:tagkeys", &["environment", "costcenter"])]);
        let none = ctx(&[]);
        let all = cond("ForAllValues:StringEquals", "aws:TagKeys", &["environment", "costcenter", "owner"]);
        assert!(all.matches(&tags, None));
        assert!(all.matches(&none, None), "ForAllValues is true when the key is absent");
        let all_strict = cond("ForAllValues:StringEquals", "aws:TagKeys", &["environment"]);
        assert!(!all_strict.matches(&tags, None));
        let any = cond("ForAnyValue:StringEquals", "aws:TagKeys", &["owner", "costcenter"]);
        assert!(any.matches(&tags, None));
        assert!(!any.matches(&none, None), "ForAnyValue is false when the key is absent");
        let any_not = cond("ForAnyValue:StringNotEquals", "aws:TagKeys", &["environment"]);
        assert!(any_not.matches(&tags, None));
        let all_not = cond("ForAllValues:StringNotLike", "aws:TagKeys", &["secret*"]);
        assert!(all_not.matches(&tags, None));
    }

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(date("1970-01-02"), Some(86_400_000_000_000));
        assert_eq!(date("86400"), Some(86_400_000_000_000));
        assert_eq!(date("2020-01-01T00:00:00+01:00"), date("2019-12-31T23:00:00Z"));
        assert_eq!(date("yesterday"), None);
    }
}
