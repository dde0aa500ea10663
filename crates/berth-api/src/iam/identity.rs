//! Who a request's key belongs to: the checks a key passes before its
//! signature counts ([`usable_key`]: Active, and for a session's key its
//! token and expiry), and the [`Caller`] it resolves to ([`resolve`])
//! with every identity policy that applies.
//!
//! - the root key: `Root`, `arn:aws:iam::ACCOUNT:root`, no policies (it
//!   may do anything);
//! - a user's key, or a session of GetSessionToken made with one: `User`,
//!   the user's inline policies, then the default versions of the managed
//!   policies attached to it (the account's, or AWS's by ARN), then the same
//!   of each of its groups;
//! - an AssumeRole session's key: `AssumedRole`
//!   (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, user id
//!   `AROA…:SESSION`), the role's policies as above, the session policy,
//!   and the role's tags with the session tags over them.
//!
//! A key whose user or role is gone (or a role deleted and made again:
//! another id) resolves to nobody: the key is refused as unknown.

use std::collections::BTreeMap;

use berth_model::iam::{self, KeyOwner, KeyStatus, SessionPrincipal};
use berth_store::{KeyRecord, Store, StoreError};

use crate::caller::{Caller, CallerKind};
use crate::sigv4::AuthError;
use crate::{Api, ApiError};

/// The key `access_key_id` if it may sign now: it exists and is Active;
/// a session's key carries its session's token (compared by hash) and has
/// not expired (`now`: epoch seconds). A long-term key sent with a token
/// is refused, as AWS refuses it.
pub(crate) async fn usable_key(api: &Api, access_key_id: &str, token: Option<&str>, now: i64) -> Result<KeyRecord, ApiError> {
    let record = api.store.get_key(access_key_id).await?.ok_or(AuthError::UnrecognizedClient)?;
    check_key(&record, token, now)?;
    Ok(record)
}

fn check_key(record: &KeyRecord, token: Option<&str>, now: i64) -> Result<(), AuthError> {
    if record.status != KeyStatus::Active {
        return Err(AuthError::UnrecognizedClient);
    }
    match (&record.owner, token) {
        (KeyOwner::Session(s), Some(t)) if berth_store::iam::token_hash(t) == s.token_hash => {
            if now >= s.expires_at { Err(AuthError::ExpiredToken) } else { Ok(()) }
        }
        (KeyOwner::Session(_), _) | (_, Some(_)) => Err(AuthError::UnrecognizedClient),
        _ => Ok(()),
    }
}

/// The caller a usable key stands for.
pub(crate) async fn resolve(api: &Api, record: &KeyRecord) -> Result<Caller, ApiError> {
    let account = api.account().account_id.clone();
    let access_key_id = record.key.access_key_id.clone();
    let root = || Caller {
        access_key_id: access_key_id.clone(),
        account: account.clone(),
        arn: iam::root_arn(&account),
        user_id: account.clone(),
        kind: CallerKind::Root,
        policies: Vec::new(),
        session_policy: None,
        tags: BTreeMap::new(),
    };
    match &record.owner {
        KeyOwner::Root => Ok(root()),
        KeyOwner::User { name } => user_caller(api, &access_key_id, name).await,
        KeyOwner::Session(s) => match &s.principal {
            SessionPrincipal::Root => Ok(root()),
            SessionPrincipal::User { name } => user_caller(api, &access_key_id, name).await,
            SessionPrincipal::Role { role_name, role_id, session_name, .. } => {
                let role = api.store.get_role(role_name).await?.map(|v| v.value).filter(|r| &r.id == role_id);
                let role = role.ok_or(AuthError::UnrecognizedClient)?;
                let mut tags = role.tags.clone();
                for (k, v) in &s.tags {
                    tags.retain(|old, _| !old.eq_ignore_ascii_case(k));
                    tags.insert(k.clone(), v.clone());
                }
                Ok(Caller {
                    access_key_id: access_key_id.clone(),
                    account: account.clone(),
                    arn: iam::assumed_role_arn(&account, &role.name, session_name),
                    user_id: format!("{}:{session_name}", role.id),
                    kind: CallerKind::AssumedRole {
                        role_arn: role.arn.clone(),
                        role_name: role.name.clone(),
                        session_name: session_name.clone(),
                    },
                    policies: policies_of(api.store.as_ref(), &role.inline_policies, &role.attached).await?,
                    session_policy: s.policy.clone(),
                    tags,
                })
            }
        },
    }
}

async fn user_caller(api: &Api, access_key_id: &str, name: &str) -> Result<Caller, ApiError> {
    let user = api.store.get_user(name).await?.ok_or(AuthError::UnrecognizedClient)?.value;
    Ok(Caller {
        access_key_id: access_key_id.to_owned(),
        account: api.account().account_id.clone(),
        arn: user.arn.clone(),
        user_id: user.id.clone(),
        kind: CallerKind::User { name: user.name.clone() },
        policies: user_policies(api.store.as_ref(), &user).await?,
        session_policy: None,
        tags: user.tags,
    })
}

/// A user's own policies, then each of its groups' (a group gone since is skipped).
async fn user_policies(store: &dyn Store, user: &iam::User) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = policies_of(store, &user.inline_policies, &user.attached).await?;
    for name in &user.groups {
        if let Some(g) = store.get_group(name).await? {
            out.extend(policies_of(store, &g.value.inline_policies, &g.value.attached).await?);
        }
    }
    Ok(out)
}

/// An entity's policies (see [`berth_store::policy_documents`]), AWS's
/// managed ones from `berth_iam::managed`.
pub(crate) async fn policies_of(
    store: &dyn Store,
    inline: &BTreeMap<String, String>,
    attached: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    berth_store::policy_documents(store, inline, attached, aws_managed).await
}

/// AWS's managed policy `arn`'s document.
fn aws_managed(arn: &str) -> Option<&'static str> {
    berth_iam::managed::get(arn).map(|p| p.document)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use berth_model::iam::{Group, ManagedPolicy, PolicyVersion, Role, Session, User};
    use berth_model::Account;
    use berth_store::{AccessKey, SessionSpec};

    use super::*;
    use crate::ApiConfig;

    const ACCOUNT: &str = "123456789012";

    async fn api() -> (Api, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("berth.db").display())).await.unwrap();
        let account = Account { region: "us-east-1".into(), account_id: ACCOUNT.into() };
        (Api::new(stores, ApiConfig::new(account)), dir)
    }

    fn managed(name: &str, default: &str) -> ManagedPolicy {
        let version = |id: &str| PolicyVersion { version_id: id.into(), document: format!("doc-{id}"), create_date: 0.0 };
        ManagedPolicy {
            name: name.into(),
            id: format!("ANPA{name:0>17}"),
            path: "/".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:policy/{name}"),
            create_date: 0.0,
            update_date: 0.0,
            description: None,
            default_version: default.into(),
            versions: vec![version("v1"), version("v2")],
            next_version: 3,
            tags: BTreeMap::new(),
        }
    }

    const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

    #[tokio::test]
    async fn a_users_key_carries_its_inline_then_attached_default_versions() {
        let (api, _dir) = api().await;
        let store = api.store.as_ref();
        store.put_policy(&managed("read", "v2"), None).await.unwrap();
        let user = User {
            name: "ci".into(),
            id: "AIDA00000000000000001".into(),
            path: "/".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/ci"),
            create_date: 0.0,
            tags: BTreeMap::from([("team".into(), "build".into())]),
            inline_policies: BTreeMap::from([("own".into(), "doc-own".into())]),
            // One attached policy deleted since: skipped.
            attached: vec![format!("arn:aws:iam::{ACCOUNT}:policy/read"), ADMIN.into(), format!("arn:aws:iam::{ACCOUNT}:policy/gone")],
            groups: vec!["devs".into(), "gone".into()],
        };
        let group = Group {
            name: "devs".into(),
            id: "AGPA00000000000000001".into(),
            path: "/".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:group/devs"),
            create_date: 0.0,
            inline_policies: BTreeMap::from([("group-own".into(), "doc-group".into())]),
            attached: vec![ADMIN.into()],
        };
        store.put_group(&group, None).await.unwrap();
        store.put_user(&user, None).await.unwrap();
        let record = key(KeyOwner::User { name: "CI".into() }, KeyStatus::Active);
        let caller = resolve(&api, &record).await.unwrap();
        assert_eq!(caller.kind, CallerKind::User { name: "ci".into() });
        assert_eq!((caller.arn.as_str(), caller.user_id.as_str()), (user.arn.as_str(), user.id.as_str()));
        let names: Vec<&str> = caller.policies.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["own", &format!("arn:aws:iam::{ACCOUNT}:policy/read"), ADMIN, "group-own", ADMIN], "then its groups'");
        assert_eq!(caller.policies[1].1, "doc-v2", "the default version");
        assert_eq!(caller.policies[2].1, berth_iam::managed::get(ADMIN).unwrap().document);
        assert_eq!(caller.tags, user.tags);
        assert_eq!(caller.session_policy, None);

        let root = resolve(&api, &key(KeyOwner::Root, KeyStatus::Active)).await.unwrap();
        assert!(root.is_root() && root.policies.is_empty());
        assert_eq!((root.arn.as_str(), root.user_id.as_str()), (&*format!("arn:aws:iam::{ACCOUNT}:root"), ACCOUNT));
        let nobody = resolve(&api, &key(KeyOwner::User { name: "gone".into() }, KeyStatus::Active)).await;
        assert!(matches!(nobody, Err(ApiError::Auth(AuthError::UnrecognizedClient))));
    }

    #[tokio::test]
    async fn a_role_session_carries_the_roles_policies_its_session_policy_and_tags() {
        let (api, _dir) = api().await;
        let store = api.store.as_ref();
        let role = Role {
            name: "app".into(),
            id: "AROA00000000000000001".into(),
            path: "/svc/".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/svc/app"),
            create_date: 0.0,
            assume_role_policy: "{}".into(),
            description: None,
            max_session_duration: 3600,
            tags: BTreeMap::from([("env".into(), "prod".into()), ("team".into(), "a".into())]),
            inline_policies: BTreeMap::from([("logs".into(), "doc-logs".into())]),
            attached: vec![ADMIN.into()],
        };
        let written = store.put_role(&role, None).await.unwrap();
        let principal = SessionPrincipal::Role {
            role_name: "app".into(),
            role_arn: role.arn.clone(),
            role_id: role.id.clone(),
            session_name: "s1".into(),
        };
        let spec = SessionSpec {
            principal,
            duration_secs: 900,
            policy: Some("session-doc".into()),
            tags: BTreeMap::from([("Team".into(), "b".into())]),
        };
        let creds = berth_store::issue_session(store, spec, 0).await.unwrap();
        let record = store.get_key(&creds.access_key_id).await.unwrap().unwrap();
        let caller = resolve(&api, &record).await.unwrap();
        assert_eq!(caller.arn, format!("arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"));
        assert_eq!(caller.user_id, "AROA00000000000000001:s1");
        assert_eq!(caller.kind, CallerKind::AssumedRole { role_arn: role.arn.clone(), role_name: "app".into(), session_name: "s1".into() });
        assert_eq!(caller.policies.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["logs", ADMIN]);
        assert_eq!(caller.session_policy.as_deref(), Some("session-doc"));
        let tags: Vec<(&str, &str)> = caller.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(tags, [("Team", "b"), ("env", "prod")], "session tags over the role's, without case");

        // A role deleted and made again is another role: its old sessions end.
        store.delete_role("app", written.version).await.unwrap();
        store.put_role(&Role { id: "AROA00000000000000002".into(), ..role }, None).await.unwrap();
        assert!(matches!(resolve(&api, &record).await, Err(ApiError::Auth(AuthError::UnrecognizedClient))));
    }

    fn key(owner: KeyOwner, status: KeyStatus) -> KeyRecord {
        KeyRecord { key: AccessKey { access_key_id: "AKIA".into(), secret_access_key: "s".into(), created_at: 0 }, owner, status }
    }

    fn session(expires_at: i64) -> KeyOwner {
        KeyOwner::Session(Session {
            principal: SessionPrincipal::Root,
            token_hash: berth_store::iam::token_hash("tok"),
            expires_at,
            policy: None,
            tags: BTreeMap::new(),
        })
    }

    #[test]
    fn keys_sign_only_when_active_and_sessions_with_their_token_until_they_expire() {
        assert_eq!(check_key(&key(KeyOwner::Root, KeyStatus::Active), None, 0), Ok(()));
        let user = || KeyOwner::User { name: "u".into() };
        assert_eq!(check_key(&key(user(), KeyStatus::Inactive), None, 0), Err(AuthError::UnrecognizedClient));
        assert_eq!(check_key(&key(user(), KeyStatus::Active), Some("tok"), 0), Err(AuthError::UnrecognizedClient));
        let s = key(session(100), KeyStatus::Active);
        assert_eq!(check_key(&s, Some("tok"), 99), Ok(()));
        assert_eq!(check_key(&s, Some("tok"), 100), Err(AuthError::ExpiredToken));
        assert_eq!(check_key(&s, Some("other"), 99), Err(AuthError::UnrecognizedClient));
        assert_eq!(check_key(&s, None, 99), Err(AuthError::UnrecognizedClient));
    }
}
