//! Authorization: what each parsed action asks of IAM (the tables under
//! `authz/`, one per service, after AWS's Service Authorization
//! Reference), and [`authorize`], which decides with the caller's
//! policies before the handler runs.
//!
//! Invariant: no handler runs for a caller whose policies do not allow
//! every [`IamRequest`] its action makes; a refusal changes nothing.
//! The account's root key is allowed everything.

pub(crate) mod acm;
pub(crate) mod ec2;
pub(crate) mod ecs;
pub(crate) mod elbv2;
pub(crate) mod logs;
pub(crate) mod others;
pub(crate) mod servicediscovery;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use berth_iam::{Decision, PolicyDocument, Request};
use berth_model::Account;

use crate::caller::{Caller, CallerKind, IamRequest};
use crate::{Api, ApiError};

/// The global condition keys of a request that do not depend on the action.
#[derive(Debug, Clone)]
pub(crate) struct GlobalKeys {
    /// The TCP peer's address (aws:SourceIp), when the server knows it.
    pub source_ip: Option<IpAddr>,
    /// aws:SecureTransport: whether the request came over TLS.
    pub secure_transport: bool,
    pub now: time::OffsetDateTime,
}

impl GlobalKeys {
    /// The request context every evaluation starts from: the global keys
    /// and the principal's.
    fn context(&self, caller: &Caller, region: &str) -> BTreeMap<String, Vec<String>> {
        let mut keys = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            keys.insert(k.to_ascii_lowercase(), vec![v]);
        };
        let (principal_arn, principal_type) = match &caller.kind {
            CallerKind::Root => (caller.arn.clone(), "Account"),
            CallerKind::User { name } => {
                put("aws:username", name.clone());
                (caller.arn.clone(), "User")
            }
            CallerKind::AssumedRole { role_arn, .. } => (role_arn.clone(), "AssumedRole"),
        };
        put("aws:PrincipalArn", principal_arn);
        put("aws:PrincipalType", principal_type.to_owned());
        put("aws:PrincipalAccount", caller.account.clone());
        put("aws:userid", caller.user_id.clone());
        put("aws:SecureTransport", self.secure_transport.to_string());
        put("aws:RequestedRegion", region.to_owned());
        put("aws:EpochTime", self.now.unix_timestamp().to_string());
        let iso = time::format_description::well_known::Rfc3339;
        put("aws:CurrentTime", self.now.replace_nanosecond(0).unwrap_or(self.now).format(&iso).unwrap_or_default());
        if let Some(ip) = self.source_ip {
            put("aws:SourceIp", ip.to_string());
        }
        for (k, v) in &caller.tags {
            put(&format!("aws:PrincipalTag/{k}"), v.clone());
        }
        keys
    }
}

/// Whether the caller may make every request; the first refusal is the
/// service's access-denied error with AWS's message.
pub(crate) async fn authorize(
    api: &Api,
    caller: &Caller,
    requests: &[IamRequest],
    global: &GlobalKeys,
) -> Result<(), ApiError> {
    if caller.is_root() || requests.is_empty() {
        return Ok(());
    }
    let identity: Vec<Arc<PolicyDocument>> = caller.policies.iter().filter_map(|(name, text)| parsed(name, text)).collect();
    let identity: Vec<&PolicyDocument> = identity.iter().map(Arc::as_ref).collect();
    let session = caller.session_policy.as_deref().map(|text| parsed("session policy", text));
    let base = global.context(caller, &api.account().region);
    for r in requests {
        let mut keys = base.clone();
        keys.extend(r.keys.iter().map(|(k, v)| (k.clone(), v.clone())));
        let star = ["*".to_owned()];
        let resources = if r.resources.is_empty() { &star[..] } else { &r.resources[..] };
        for resource in resources {
            let req = Request {
                principal_arn: &caller.arn,
                principal_account: &caller.account,
                action: &r.action,
                resource,
                keys: &keys,
            };
            let because = match (berth_iam::evaluate(&identity, None, &req), &session) {
                (Decision::ExplicitDeny, _) => "with an explicit deny in an identity-based policy".to_owned(),
                (Decision::ImplicitDeny, _) => format!("because no identity-based policy allows the {} action", r.action),
                (Decision::Allow, None) => continue,
                // A session policy that does not parse allows nothing.
                (Decision::Allow, Some(None)) => format!("because no session policy allows the {} action", r.action),
                (Decision::Allow, Some(Some(s))) => match berth_iam::evaluate(&[s.as_ref()], None, &req) {
                    Decision::Allow => continue,
                    Decision::ExplicitDeny => "with an explicit deny in a session policy".to_owned(),
                    Decision::ImplicitDeny => format!("because no session policy allows the {} action", r.action),
                },
            };
            let mut message =
                format!("User: {} is not authorized to perform: {} on resource: {resource} {because}", caller.arn, r.action);
            if r.action.starts_with("ec2:") {
                message.insert_str(0, "You are not authorized to perform this operation. ");
            }
            tracing::info!(principal = %caller.arn, action = %r.action, %resource, "access denied");
            return Err(ApiError::AccessDenied(message));
        }
    }
    Ok(())
}

/// A policy's parsed document, from a cache keyed by its text (policies
/// are few and change rarely). One that does not parse (stored before a
/// rule tightened) grants nothing.
fn parsed(name: &str, text: &str) -> Option<Arc<PolicyDocument>> {
    const MAX_CACHED: usize = 1024;
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<PolicyDocument>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(doc) = cache.lock().ok().and_then(|c| c.get(text).cloned()) {
        return Some(doc);
    }
    match PolicyDocument::parse(text) {
        Ok(doc) => {
            let doc = Arc::new(doc);
            if let Ok(mut c) = cache.lock() {
                if c.len() >= MAX_CACHED {
                    c.clear();
                }
                c.insert(text.to_owned(), doc.clone());
            }
            Some(doc)
        }
        Err(e) => {
            tracing::warn!(policy = name, error = %e, "a stored policy does not parse; it grants nothing");
            None
        }
    }
}

/// `service:Operation` on these resources.
pub(crate) fn ask(service: &str, operation: &str, resources: impl IntoIterator<Item = String>) -> IamRequest {
    IamRequest::new(format!("{service}:{operation}"), resources)
}

/// `service:Operation` on `*` (an action without a resource type).
pub(crate) fn ask_any(service: &str, operation: &str) -> IamRequest {
    ask(service, operation, ["*".to_owned()])
}

/// The request tags of an action that tags what it creates or names:
/// `aws:RequestTag/KEY` per tag and `aws:TagKeys`.
pub(crate) fn with_tags<'t>(mut r: IamRequest, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> IamRequest {
    let mut keys = Vec::new();
    for (k, v) in tags {
        r = r.key(&format!("aws:RequestTag/{k}"), [v.to_owned()]);
        keys.push(k.to_owned());
    }
    if keys.is_empty() { r } else { r.key("aws:TagKeys", keys) }
}

/// `aws:TagKeys` of an action that removes tags.
pub(crate) fn with_tag_keys(r: IamRequest, keys: &[String]) -> IamRequest {
    if keys.is_empty() { r } else { r.key("aws:TagKeys", keys.iter().cloned()) }
}

/// `arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`.
pub(crate) fn arn(account: &Account, service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{}:{}:{resource}", account.region, account.account_id)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn account() -> Account {
        Account { region: "us-east-1".into(), account_id: "123456789012".into() }
    }

    pub(crate) fn user(policies: &[&str]) -> Caller {
        Caller {
            access_key_id: "AKIAUSER".into(),
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            user_id: "AIDAALICE".into(),
            kind: CallerKind::User { name: "alice".into() },
            policies: policies.iter().enumerate().map(|(i, p)| (format!("p{i}"), (*p).to_owned())).collect(),
            session_policy: None,
            tags: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
        }
    }

    #[test]
    fn global_keys() {
        let g = GlobalKeys {
            source_ip: Some("10.0.0.7".parse().expect("ip")),
            secure_transport: false,
            now: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time"),
        };
        let keys = g.context(&user(&[]), "us-east-1");
        let get = |k: &str| keys.get(k).and_then(|v| v.first()).map(String::as_str);
        assert_eq!(get("aws:username"), Some("alice"));
        assert_eq!(get("aws:principalarn"), Some("arn:aws:iam::123456789012:user/alice"));
        assert_eq!(get("aws:principaltype"), Some("User"));
        assert_eq!(get("aws:sourceip"), Some("10.0.0.7"));
        assert_eq!(get("aws:securetransport"), Some("false"));
        assert_eq!(get("aws:epochtime"), Some("1700000000"));
        assert_eq!(get("aws:currenttime"), Some("2023-11-14T22:13:20Z"));
        assert_eq!(get("aws:principaltag/team"), Some("web"));
    }
}
