//! The policy grammar (IAM User Guide, "Grammar of the IAM JSON policy
//! language"): a document read once into typed statements, refused as
//! IAM refuses it.

use serde_json::{Map, Value};

use crate::condition::{Condition, Operator};
use crate::error::PolicyError;

/// A parsed, validated policy document (identity, session or trust).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub(crate) version: Version,
    pub(crate) id: Option<String>,
    pub(crate) statements: Vec<Statement>,
}

/// The policy language version. Without `2012-10-17` policy variables are
/// plain text (IAM's legacy behaviour, also when Version is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2012_10_17,
    V2008_10_17,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// An element and its `Not…` form: which one the statement used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Set<T> {
    Is(T),
    Not(T),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) action: Set<Vec<String>>,
    /// Absent in trust policies.
    pub(crate) resource: Option<Set<Vec<String>>>,
    /// Present only in trust (resource-based) policies.
    pub(crate) principal: Option<Set<Principals>>,
    pub(crate) conditions: Vec<Condition>,
}

/// A Principal element: `"*"` or the principals of each type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    /// `"Principal": "*"` (or `{"AWS": "*"}`): everyone.
    pub any: bool,
    /// Account ids, `arn:aws:iam::ACCT:root`, user, role and assumed-role ARNs.
    pub aws: Vec<String>,
    /// Service principals, e.g. `ecs-tasks.amazonaws.com`.
    pub service: Vec<String>,
    /// Identity providers (SAML/OIDC provider ARNs or names).
    pub federated: Vec<String>,
    pub canonical_user: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Identity,
    Trust,
}

impl PolicyDocument {
    /// An identity-based (or session) policy: a Principal is refused, a
    /// Resource is required.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        Self::parse_as(json, Kind::Identity)
    }

    /// A role's trust policy (AssumeRolePolicyDocument): every statement
    /// names a Principal or NotPrincipal; Resource is refused.
    pub fn parse_trust(json: &str) -> Result<Self, PolicyError> {
        Self::parse_as(json, Kind::Trust)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Every principal the document names (Principal and NotPrincipal),
    /// e.g. for the API to check that named users and roles exist.
    pub fn principals(&self) -> impl Iterator<Item = &Principals> {
        self.statements.iter().filter_map(|s| match &s.principal {
            Some(Set::Is(p) | Set::Not(p)) => Some(p),
            None => None,
        })
    }

    fn parse_as(json: &str, kind: Kind) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(json).map_err(|_| PolicyError::Syntax)?;
        let Value::Object(top) = value else { return Err(PolicyError::Syntax) };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnknownField(key.clone()));
            }
        }
        let version = match top.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(Value::String(v)) => return Err(PolicyError::InvalidVersion(v.clone())),
            Some(_) => return Err(PolicyError::Syntax),
        };
        let id = optional_string(&top, "Id")?;
        let statements = match top.get("Statement") {
            None => return Err(PolicyError::MissingField("Statement")),
            Some(Value::Array(list)) => list.iter().map(|s| statement(s, kind)).collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![statement(s, kind)?],
            Some(_) => return Err(PolicyError::Syntax),
        };
        let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid.as_deref()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return Err(PolicyError::DuplicateSid);
        }
        Ok(Self { version, id, statements })
    }
}

fn statement(value: &Value, kind: Kind) -> Result<Statement, PolicyError> {
    let Value::Object(s) = value else { return Err(PolicyError::Syntax) };
    for key in s.keys() {
        let known = matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Principal" | "NotPrincipal" | "Condition"
        );
        if !known {
            return Err(PolicyError::UnknownField(key.clone()));
        }
    }
    let sid = optional_string(s, "Sid")?;
    if kind == Kind::Identity && sid.as_deref().is_some_and(|sid| !sid.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err(PolicyError::InvalidSid);
    }
    let effect = match s.get("Effect") {
        None => return Err(PolicyError::MissingField("Effect")),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => return Err(PolicyError::InvalidEffect(e.clone())),
        Some(_) => return Err(PolicyError::Syntax),
    };
    let action = either(s, "Action")?.ok_or(PolicyError::NoActions)?;
    let (Set::Is(actions) | Set::Not(actions)) = &action;
    if actions.is_empty() {
        return Err(PolicyError::NoActions);
    }
    for a in actions {
        check_action(a)?;
    }
    let resource = either(s, "Resource")?;
    match (kind, &resource) {
        (Kind::Identity, None) => return Err(PolicyError::NoResources),
        (Kind::Identity, Some(Set::Is(r) | Set::Not(r))) => {
            if r.is_empty() {
                return Err(PolicyError::NoResources);
            }
            for r in r {
                check_resource(r)?;
            }
        }
        (Kind::Trust, Some(_)) => return Err(PolicyError::ProhibitedField("Resource")),
        (Kind::Trust, None) => {}
    }
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(PolicyError::BothElements("Principal")),
        (Some(p), None) => Some(Set::Is(principals(p)?)),
        (None, Some(p)) => Some(Set::Not(principals(p)?)),
        (None, None) => None,
    };
    match (kind, &principal) {
        (Kind::Identity, Some(_)) => return Err(PolicyError::PrincipalInIdentityPolicy),
        (Kind::Trust, None) => return Err(PolicyError::MissingField("Principal")),
        _ => {}
    }
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(c) => conditions(c)?,
    };
    Ok(Statement { sid, effect, action, resource, principal, conditions })
}

fn optional_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, PolicyError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PolicyError::Syntax),
    }
}

/// `"x"` or `["x", …]`.
fn strings(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(PolicyError::Syntax),
            })
            .collect(),
        _ => Err(PolicyError::Syntax),
    }
}

fn either(s: &Map<String, Value>, name: &'static str) -> Result<Option<Set<Vec<String>>>, PolicyError> {
    let not = match name {
        "Action" => "NotAction",
        _ => "NotResource",
    };
    match (s.get(name), s.get(not)) {
        (Some(_), Some(_)) => Err(PolicyError::BothElements(name)),
        (Some(v), None) => Ok(Some(Set::Is(strings(v)?))),
        (None, Some(v)) => Ok(Some(Set::Not(strings(v)?))),
        (None, None) => Ok(None),
    }
}

/// `*` or `vendor:pattern` (the vendor letters, digits and `-`).
fn check_action(a: &str) -> Result<(), PolicyError> {
    if a == "*" {
        return Ok(());
    }
    match a.split_once(':') {
        Some((vendor, name))
            if !vendor.is_empty()
                && !name.is_empty()
                && vendor.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*' || c == '?') =>
        {
            Ok(())
        }
        _ => Err(PolicyError::NoVendor(a.to_owned())),
    }
}

fn check_resource(r: &str) -> Result<(), PolicyError> {
    if r.chars().all(|c| c == '*') && !r.is_empty() || r.starts_with("arn:") && r.len() > 4 {
        Ok(())
    } else {
        Err(PolicyError::ResourceNotArn(r.to_owned()))
    }
}

fn principals(v: &Value) -> Result<Principals, PolicyError> {
    let mut p = Principals::default();
    let map = match v {
        Value::String(s) if s == "*" => {
            p.any = true;
            return Ok(p);
        }
        Value::Object(map) if !map.is_empty() => map,
        _ => return Err(PolicyError::InvalidPrincipal(v.to_string())),
    };
    for (kind, values) in map {
        let values = strings(values).map_err(|_| PolicyError::InvalidPrincipal(format!("\"{kind}\":{values}")))?;
        let invalid = |value: &str| PolicyError::InvalidPrincipal(format!("\"{kind}\":\"{value}\""));
        for value in &values {
            let ok = match kind.as_str() {
                "AWS" => value == "*" || aws_principal(value),
                "Service" => !value.is_empty() && value.contains('.') && !value.contains(char::is_whitespace),
                "Federated" => !value.is_empty() && !value.contains(char::is_whitespace),
                "CanonicalUser" => !value.is_empty(),
                _ => false,
            };
            if !ok {
                return Err(invalid(value));
            }
        }
        match kind.as_str() {
            "AWS" if values.iter().any(|v| v == "*") => p.any = true,
            "AWS" => p.aws.extend(values),
            "Service" => p.service.extend(values),
            "Federated" => p.federated.extend(values),
            _ => p.canonical_user.extend(values),
        }
    }
    Ok(p)
}

/// A 12-digit account id, or an IAM/STS principal ARN
/// (`arn:aws:iam::ACCT:root|user/…|role/…`, `arn:aws:sts::ACCT:assumed-role/…|federated-user/…`).
fn aws_principal(v: &str) -> bool {
    if account_id(v) {
        return true;
    }
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else { return false };
    let kind = resource.split('/').next().unwrap_or("");
    arn == "arn"
        && !partition.is_empty()
        && region.is_empty()
        && account_id(account)
        && match service {
            "iam" => resource == "root" || matches!(kind, "user" | "role") && resource.len() > kind.len() + 1,
            "sts" => matches!(kind, "assumed-role" | "federated-user") && resource.len() > kind.len() + 1,
            _ => false,
        }
}

fn account_id(v: &str) -> bool {
    v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())
}

fn conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else { return Err(PolicyError::Syntax) };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let operator = Operator::parse(op).ok_or_else(|| PolicyError::InvalidConditionType(op.clone()))?;
        let Value::Object(keys) = keys else { return Err(PolicyError::Syntax) };
        for (key, values) in keys {
            if !key.contains(':') {
                return Err(PolicyError::NoVendor(key.clone()));
            }
            let values = match values {
                Value::Array(list) => list.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
                v => vec![scalar(v)?],
            };
            out.push(Condition { operator, key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(out)
}

/// Condition values may be written as JSON strings, numbers or booleans.
fn scalar(v: &Value) -> Result<String, PolicyError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError::Syntax),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        PolicyDocument::parse(json).err().map(|e| e.to_string()).unwrap_or_default()
    }

    fn trust_err(json: &str) -> String {
        PolicyDocument::parse_trust(json).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn accepts_the_grammar() {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Id":"x","Statement":[
                {"Sid":"A1","Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"},
                {"Effect":"Deny","NotAction":"ecs:RunTask","NotResource":["arn:aws:ecs:*:*:cluster/prod"],
                 "Condition":{"StringEquals":{"aws:RequestTag/team":["a","b"]},"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"aws:EpochTime":1700000000}}}]}"#,
        );
        let doc = doc.expect("valid");
        assert_eq!(doc.statements.len(), 2);
        assert_eq!(doc.statements[1].conditions.len(), 3);
        let single = PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
        assert_eq!(single.map(|d| d.version), Ok(Version::V2008_10_17));
    }

    #[test]
    fn refuses_as_iam_does() {
        assert_eq!(err("{"), "Syntax errors in policy.");
        assert_eq!(err("[]"), "Syntax errors in policy.");
        assert_eq!(err(r#"{"Version":"2012-10-17"}"#), "Missing required field Statement");
        assert_eq!(err(r#"{"Version":"2012-10-17","Statement":[],"Foo":1}"#), "Unknown field Foo");
        assert!(err(r#"{"Version":"2012-10-18","Statement":[]}"#).starts_with("Invalid Version 2012-10-18"));
        assert_eq!(err(r#"{"Statement":[{"Action":"*","Resource":"*"}]}"#), "Missing required field Effect");
        assert!(err(r#"{"Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}"#).contains("legacy parsing"));
        assert_eq!(err(r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#), "Policy statement must contain actions.");
        assert_eq!(err(r#"{"Statement":[{"Effect":"Allow","Action":"ecs:RunTask"}]}"#), "Policy statement must contain resources.");
        assert!(err(r#"{"Statement":[{"Effect":"Allow","Action":"RunTask","Resource":"*"}]}"#).starts_with("Actions/Conditions must be prefaced by a vendor"));
        assert_eq!(
            err(r#"{"Statement":[{"Effect":"Allow","Action":"ecs:RunTask","Resource":"cluster/x"}]}"#),
            "Resource cluster/x must be in ARN format or \"*\"."
        );
        assert_eq!(
            err(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecs:RunTask","Resource":"*"}]}"#),
            "Policy document should not specify a principal."
        );
        assert_eq!(
            err(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquall":{"aws:username":"x"}}}]}"#),
            "Invalid Condition type : StringEquall"
        );
        assert_eq!(
            err(r#"{"Statement":[{"Sid":"a","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"a","Effect":"Deny","Action":"*","Resource":"*"}]}"#),
            "Statement IDs (SID) in a single policy must be unique."
        );
        assert!(err(r#"{"Statement":[{"Sid":"a b","Effect":"Allow","Action":"*","Resource":"*"}]}"#).starts_with("Statement IDs (SID) must be alpha-numeric"));
        assert_eq!(err(r#"{"Statement":[{"Effect":"Allow","Action":{"a":1},"Resource":"*"}]}"#), "Syntax errors in policy.");
        assert_eq!(err(r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}"#), "Statement can specify only one of Action and NotAction");
    }

    #[test]
    fn trust_policies() {
        let ok = PolicyDocument::parse_trust(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"},
                {"Sid":"any text here","Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/ci/deployer"]},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(trust_err(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#), "Missing required field Principal");
        assert_eq!(
            trust_err(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"}]}"#),
            "Invalid principal in policy: \"AWS\":\"bob\""
        );
        assert_eq!(
            trust_err(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs"},"Action":"sts:AssumeRole","Resource":"*"}]}"#),
            "Has prohibited field Resource"
        );
        assert!(trust_err(r#"{"Statement":[{"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"sts:AssumeRole"}]}"#).starts_with("Invalid principal in policy"));
    }
}
