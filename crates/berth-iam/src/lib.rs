//! The IAM policy language, pure: documents parsed and validated as IAM
//! does ([`PolicyDocument::parse`], [`PolicyDocument::parse_trust`]), the
//! evaluation of identity and session policies ([`evaluate`]) and of a
//! role's trust policy ([`trust_allows`]), and AWS's managed policies
//! ([`managed`]).
//!
//! Evaluation follows the IAM User Guide's "Policy evaluation logic" for
//! one account: an explicit Deny in any policy wins; otherwise an Allow is
//! needed from the identity policies and, for a session with a session
//! policy, from that policy too; otherwise the request is implicitly
//! denied. No I/O happens here: the caller hands in the documents and the
//! request context.

mod condition;
mod document;
mod error;
pub mod managed;
mod pattern;

use std::collections::BTreeMap;

pub use document::{Effect, PolicyDocument, Principals, Version};
pub use error::PolicyError;

use document::{Set, Statement};
use pattern::Vars;

/// The outcome of evaluating policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// Nothing allowed it.
    ImplicitDeny,
}

/// One authorization question: may the principal do `action` on
/// `resource`, with this request context.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller's ARN (for a trust policy, the principal that asks to
    /// assume the role: a user, root or assumed-role ARN, or a service
    /// principal such as `ecs-tasks.amazonaws.com`).
    pub principal_arn: &'a str,
    pub principal_account: &'a str,
    /// `service:Operation`, e.g. `ecs:RunTask` (matched case-insensitively).
    pub action: &'a str,
    /// The resource's ARN, or `*` for actions without a resource type.
    pub resource: &'a str,
    /// The request context: lower-case key names, the global keys
    /// (aws:username, aws:PrincipalArn, aws:SourceIp, …) included; also
    /// the source of policy variables.
    pub keys: &'a BTreeMap<String, Vec<String>>,
}

/// Identity-based policies, and a session policy that limits them (both
/// must allow): explicit deny > allow > implicit deny.
pub fn evaluate(identity: &[&PolicyDocument], session: Option<&PolicyDocument>, req: &Request<'_>) -> Decision {
    let id = decide(identity.iter().copied(), req, |_| true);
    let Some(session) = session else { return id };
    match (id, decide(std::iter::once(session), req, |_| true)) {
        (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => Decision::ExplicitDeny,
        (Decision::Allow, Decision::Allow) => Decision::Allow,
        _ => Decision::ImplicitDeny,
    }
}

/// A role's trust policy for a principal asking to assume it (action
/// `sts:AssumeRole`, `sts:TagSession`, …): only statements whose
/// Principal names the caller (or whose NotPrincipal does not) count.
pub fn trust_allows(trust: &PolicyDocument, req: &Request<'_>) -> Decision {
    decide(std::iter::once(trust), req, |s| match &s.principal {
        Some(Set::Is(p)) => principal_matches(p, req),
        Some(Set::Not(p)) => !principal_matches(p, req),
        None => false,
    })
}

fn decide<'p>(
    docs: impl Iterator<Item = &'p PolicyDocument>,
    req: &Request<'_>,
    applies: impl Fn(&Statement) -> bool,
) -> Decision {
    let mut allowed = false;
    for doc in docs {
        let vars: Vars<'_> = (doc.version == Version::V2012_10_17).then_some(req.keys);
        for s in &doc.statements {
            if applies(s) && statement_matches(s, req, vars) {
                match s.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

fn statement_matches(s: &Statement, req: &Request<'_>, vars: Vars<'_>) -> bool {
    let action = |a: &String| pattern::expand(a, None).is_some_and(|p| pattern::glob(&p, req.action, true));
    let action_ok = match &s.action {
        Set::Is(list) => list.iter().any(action),
        Set::Not(list) => !list.iter().any(action),
    };
    let resource = |r: &String| pattern::expand(r, vars).is_some_and(|p| pattern::arn_match(&p, req.resource));
    let resource_ok = match &s.resource {
        None => true,
        Some(Set::Is(list)) => list.iter().any(resource),
        Some(Set::Not(list)) => !list.iter().any(resource),
    };
    action_ok && resource_ok && s.conditions.iter().all(|c| c.matches(req.keys, vars))
}

/// Whether a Principal element names the request's principal. An account
/// (`123456789012` or `arn:aws:iam::123456789012:root`) names every
/// principal of that account; a role ARN names that role's sessions
/// (whose aws:PrincipalArn is the role's ARN).
fn principal_matches(p: &Principals, req: &Request<'_>) -> bool {
    if p.any {
        return true;
    }
    let caller = req.principal_arn;
    if !caller.starts_with("arn:") {
        return p.service.iter().chain(&p.federated).any(|s| s == caller);
    }
    let principal_arn = req.keys.get("aws:principalarn").and_then(|v| v.first()).map(String::as_str);
    let root = format!("arn:aws:iam::{}:root", req.principal_account);
    p.aws.iter().any(|a| {
        a == req.principal_account || *a == root || a == caller || Some(a.as_str()) == principal_arn
    }) || p.federated.iter().any(|f| f == caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    #[test]
    fn session_policy_limits() {
        let admin = doc(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
        let only_logs = doc(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"logs:*","Resource":"*"}}"#);
        let keys = BTreeMap::new();
        let req = |action| Request {
            principal_arn: "arn:aws:sts::123456789012:assumed-role/r/s",
            principal_account: "123456789012",
            action,
            resource: "*",
            keys: &keys,
        };
        assert_eq!(evaluate(&[&admin], Some(&only_logs), &req("logs:PutLogEvents")), Decision::Allow);
        assert_eq!(evaluate(&[&admin], Some(&only_logs), &req("ecs:RunTask")), Decision::ImplicitDeny);
        assert_eq!(evaluate(&[&only_logs], Some(&admin), &req("ecs:RunTask")), Decision::ImplicitDeny);
        assert_eq!(evaluate(&[], None, &req("ecs:RunTask")), Decision::ImplicitDeny);
    }
}
