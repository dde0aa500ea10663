//! Authorization: what each parsed action asks of IAM (the tables under
//! `authz/`, one per service, after AWS's Service Authorization
//! Reference), and [`authorize`], which decides with the caller's
//! policies before the handler runs.
//!
//! Invariant: no handler runs for a caller whose policies do not allow
//! every [`IamRequest`] its action makes; a refusal changes nothing.
//! The account's root key is allowed everything.

pub(crate) mod acm;
pub(crate) mod ce;
pub(crate) mod ec2;
pub(crate) mod ecs;
pub(crate) mod elbv2;
pub(crate) mod iam;
pub(crate) mod logs;
pub(crate) mod others;
pub(crate) mod secrets;
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
            let session_decision = session.as_ref().map(|s| match s {
                Some(doc) => berth_iam::evaluate(&[doc.as_ref()], None, &req),
                // A session policy that does not parse allows nothing.
                None => Decision::ImplicitDeny,
            });
            let because = match (berth_iam::evaluate(&identity, None, &req), session_decision) {
                (Decision::ExplicitDeny, _) => "with an explicit deny in an identity-based policy".to_owned(),
                (_, Some(Decision::ExplicitDeny)) => "with an explicit deny in a session policy".to_owned(),
                (Decision::ImplicitDeny, _) => format!("because no identity-based policy allows the {} action", r.action),
                (Decision::Allow, None | Some(Decision::Allow)) => continue,
                (Decision::Allow, Some(Decision::ImplicitDeny)) => {
                    format!("because no session policy allows the {} action", r.action)
                }
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

    async fn api() -> (Api, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("store");
        (Api::new(stores, crate::ApiConfig::new(account())), dir)
    }

    fn global() -> GlobalKeys {
        GlobalKeys { source_ip: Some("127.0.0.1".parse().expect("ip")), secure_transport: false, now: time::OffsetDateTime::now_utc() }
    }

    fn denied(r: Result<(), ApiError>) -> String {
        match r {
            Err(ApiError::AccessDenied(m)) => m,
            other => panic!("not AccessDenied: {other:?}"),
        }
    }

    const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"}]}"#;
    const RUN: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";

    #[tokio::test]
    async fn refusals_carry_aws_messages() {
        let (api, _dir) = api().await;
        let alice = user(&[READ_ONLY]);
        let list = [ask_any("ecs", "ListClusters")];
        assert!(authorize(&api, &alice, &list, &global()).await.is_ok());
        let run = [ask("ecs", "RunTask", [RUN.to_owned()])];
        assert_eq!(
            denied(authorize(&api, &alice, &run, &global()).await),
            format!("User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:RunTask on resource: {RUN} because no identity-based policy allows the ecs:RunTask action")
        );
        let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ecs:List*","Resource":"*"}]}"#;
        let alice = user(&[READ_ONLY, deny]);
        assert_eq!(
            denied(authorize(&api, &alice, &list, &global()).await),
            "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: ecs:ListClusters on resource: * with an explicit deny in an identity-based policy"
        );
        // EC2's UnauthorizedOperation message starts with its own sentence.
        let vpcs = [ask_any("ec2", "DescribeVpcs")];
        assert!(denied(authorize(&api, &alice, &vpcs, &global()).await).starts_with("You are not authorized to perform this operation. User: "));
        // root: everything; no requests (GetCallerIdentity): nothing to check
        let root = Caller { kind: CallerKind::Root, ..user(&[]) };
        assert!(authorize(&api, &root, &run, &global()).await.is_ok());
        assert!(authorize(&api, &user(&[]), &[], &global()).await.is_ok());
    }

    #[tokio::test]
    async fn every_request_and_resource_must_be_allowed() {
        let (api, _dir) = api().await;
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecs:RunTask","Resource":"*","Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:123456789012:cluster/dev"}}},
            {"Effect":"Allow","Action":"ecs:DescribeTasks","Resource":"arn:aws:ecs:*:*:task/dev/*"}]}"#;
        let alice = user(&[policy]);
        let run = |cluster: &str| [ask("ecs", "RunTask", [RUN.to_owned()]).key("ecs:cluster", [format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}")])];
        assert!(authorize(&api, &alice, &run("dev"), &global()).await.is_ok());
        assert!(denied(authorize(&api, &alice, &run("prod"), &global()).await).contains("ecs:RunTask"));
        // RunTask with a role needs iam:PassRole too
        let with_role = [run("dev")[0].clone(), ask("iam", "PassRole", ["arn:aws:iam::123456789012:role/app".to_owned()])];
        assert!(denied(authorize(&api, &alice, &with_role, &global()).await).contains("iam:PassRole on resource: arn:aws:iam::123456789012:role/app"));
        let tasks = ["arn:aws:ecs:us-east-1:123456789012:task/dev/1", "arn:aws:ecs:us-east-1:123456789012:task/prod/2"];
        let describe = [ask("ecs", "DescribeTasks", tasks.map(str::to_owned))];
        assert!(denied(authorize(&api, &alice, &describe, &global()).await).contains("task/prod/2"));
    }

    #[tokio::test]
    async fn session_policies_and_principal_keys() {
        let (api, _dir) = api().await;
        let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let mut session = user(&[admin]);
        session.kind = CallerKind::AssumedRole {
            role_arn: "arn:aws:iam::123456789012:role/ops".into(),
            role_name: "ops".into(),
            session_name: "s".into(),
        };
        session.arn = "arn:aws:sts::123456789012:assumed-role/ops/s".into();
        session.session_policy = Some(READ_ONLY.into());
        let run = [ask("ecs", "RunTask", [RUN.to_owned()])];
        assert_eq!(
            denied(authorize(&api, &session, &run, &global()).await),
            format!("User: arn:aws:sts::123456789012:assumed-role/ops/s is not authorized to perform: ecs:RunTask on resource: {RUN} because no session policy allows the ecs:RunTask action")
        );
        assert!(authorize(&api, &session, &[ask_any("ecs", "ListTasks")], &global()).await.is_ok());
        // An explicit deny anywhere is what the message names.
        session.policies = vec![("p".into(), READ_ONLY.into())];
        session.session_policy = Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ecs:*","Resource":"*"}]}"#.into());
        assert!(denied(authorize(&api, &session, &run, &global()).await).ends_with("with an explicit deny in a session policy"));
        // aws:PrincipalArn of a session is its role; principal tags and the source address are keys
        let by_role = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*",
            "Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/ops"},"StringEquals":{"aws:PrincipalTag/team":"web"},"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}"#;
        session.policies = vec![("p".into(), by_role.into())];
        session.session_policy = None;
        assert!(authorize(&api, &session, &[ask_any("ecs", "ListClusters")], &global()).await.is_ok());
        let elsewhere = GlobalKeys { source_ip: Some("10.1.1.1".parse().expect("ip")), ..global() };
        assert!(authorize(&api, &session, &[ask_any("ecs", "ListClusters")], &elsewhere).await.is_err());
    }

    #[test]
    fn access_denied_in_each_protocol() {
        use crate::protocol::Protocol;
        let e = ApiError::AccessDenied("no".into());
        for (protocol, code, status) in [
            (Protocol::Json { minor: 1, query_compatible: false }, "AccessDeniedException", 400),
            (Protocol::Query, "AccessDenied", 403),
            (Protocol::Ec2, "UnauthorizedOperation", 403),
            (Protocol::Cbor { query_compatible: true }, "AccessDeniedException", 400),
            (Protocol::RestJson { errors: &[] }, "AccessDeniedException", 403),
        ] {
            assert_eq!(protocol.code(&e), code, "{}", protocol.name());
            assert_eq!(protocol.error(&e, "rid").status().as_u16(), status, "{}", protocol.name());
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
