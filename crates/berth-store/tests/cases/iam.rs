//! IAM's records, keys and sessions on both backends (cases run by
//! `both_backends!` in `store.rs`).

use std::collections::BTreeMap;

use berth_model::iam::{Group, KeyOwner, KeyStatus, ManagedPolicy, PolicyVersion, Role, SessionPrincipal, User};
use berth_store::iam::{KeyRecord, new_key_pair, token_hash};
use berth_store::{AccessKey, StoreError};

use super::Backend;

fn user(name: &str, id: &str) -> User {
    User {
        name: name.into(),
        id: id.into(),
        path: "/".into(),
        arn: format!("arn:aws:iam::123456789012:user/{name}"),
        create_date: 1.0,
        tags: BTreeMap::new(),
        inline_policies: BTreeMap::new(),
        attached: Vec::new(),
        groups: Vec::new(),
    }
}

fn role(name: &str) -> Role {
    Role {
        name: name.into(),
        id: format!("AROA{name:0>17}"),
        path: "/app/".into(),
        arn: format!("arn:aws:iam::123456789012:role/app/{name}"),
        create_date: 1.0,
        assume_role_policy: "{}".into(),
        description: None,
        max_session_duration: 3600,
        tags: BTreeMap::from([("team".to_owned(), "a".to_owned())]),
        inline_policies: BTreeMap::new(),
        attached: Vec::new(),
    }
}

pub async fn iam_entities_unique_without_case_and_versioned(db: Backend) {
    let s = db.store.as_ref();
    let bob = s.put_user(&user("Bob", "AIDA00000000000000001"), None).await.expect("create");
    assert_eq!(bob.version, 1);
    assert!(matches!(s.put_user(&user("bob", "AIDA00000000000000002"), None).await, Err(StoreError::Conflict)), "names are unique without case");
    assert_eq!(s.get_user("BOB").await.expect("get").map(|v| v.value.name), Some("Bob".to_owned()));
    let mut changed = bob.value.clone();
    changed.inline_policies.insert("p".into(), "{}".into());
    let v2 = s.put_user(&changed, Some(1)).await.expect("update");
    assert_eq!(v2.version, 2);
    assert!(matches!(s.put_user(&changed, Some(1)).await, Err(StoreError::Conflict)), "a stale write fails");
    s.put_user(&user("alice", "AIDA00000000000000003"), None).await.expect("create");
    let names: Vec<String> = s.list_users().await.expect("list").into_iter().map(|v| v.value.name).collect();
    assert_eq!(names, ["alice", "Bob"]);

    // A group, and a role, of the same name are other kinds: no clash.
    let group = Group {
        name: "bob".into(),
        id: "AGPA00000000000000001".into(),
        path: "/".into(),
        arn: "arn:aws:iam::123456789012:group/bob".into(),
        create_date: 1.0,
        inline_policies: BTreeMap::new(),
        attached: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
    };
    let g = s.put_group(&group, None).await.expect("group");
    assert_eq!(s.get_group("BOB").await.expect("get").map(|v| v.value), Some(group.clone()));
    assert_eq!(s.list_groups().await.expect("list").len(), 1);
    assert!(s.delete_group("bob", g.version).await.expect("delete group"));
    s.put_role(&role("bob"), None).await.expect("role");
    assert_eq!(s.get_role("bob").await.expect("get").map(|v| v.value.tags.len()), Some(1));

    let policy = ManagedPolicy {
        name: "read".into(),
        id: "ANPA00000000000000001".into(),
        path: "/".into(),
        arn: "arn:aws:iam::123456789012:policy/read".into(),
        create_date: 1.0,
        update_date: 1.0,
        description: None,
        default_version: "v1".into(),
        versions: vec![PolicyVersion { version_id: "v1".into(), document: "{}".into(), create_date: 1.0 }],
        next_version: 2,
        tags: BTreeMap::new(),
    };
    let p = s.put_policy(&policy, None).await.expect("policy");
    assert_eq!(s.list_policies().await.expect("list").len(), 1);
    assert!(matches!(s.delete_policy("read", p.version + 1).await, Err(StoreError::Conflict)));
    assert!(s.delete_policy("READ", p.version).await.expect("delete"));
    assert!(!s.delete_policy("read", 1).await.expect("gone"));

    // A user with a long-term key cannot be deleted; without, it can.
    let key = KeyRecord {
        key: AccessKey { access_key_id: "AKIAUSERKEY000000001".into(), secret_access_key: "s".into(), created_at: 5 },
        owner: KeyOwner::User { name: "Bob".into() },
        status: KeyStatus::Active,
    };
    s.insert_key(&key).await.expect("key");
    assert!(matches!(s.delete_user("bob", 2).await, Err(StoreError::Rejected)));
    assert!(s.delete_key(&key.key.access_key_id).await.expect("delete key"));
    assert!(s.delete_user("bob", 2).await.expect("delete"));
    assert_eq!(s.get_user("Bob").await.expect("get"), None);
    assert!(s.delete_role("bob", 1).await.expect("delete role"));
}

pub async fn iam_keys_have_owners_status_and_sessions(db: Backend) {
    let s = db.store.as_ref();
    // The root key (migration 1's kind) stays a root key.
    s.insert_access_key(&AccessKey { access_key_id: "AKIAROOT000000000001".into(), secret_access_key: "r".into(), created_at: 1 })
        .await
        .expect("root");
    let (id, secret) = new_key_pair("AKIA");
    assert_eq!((id.len(), secret.len()), (20, 40));
    let user_key = KeyRecord {
        key: AccessKey { access_key_id: id.clone(), secret_access_key: secret, created_at: 2 },
        owner: KeyOwner::User { name: "ci".into() },
        status: KeyStatus::Active,
    };
    s.insert_key(&user_key).await.expect("user key");
    assert!(matches!(s.insert_key(&user_key).await, Err(StoreError::Conflict)));
    assert_eq!(s.count_access_keys().await.expect("count"), 1, "only root keys count");
    assert_eq!(s.get_key("AKIAROOT000000000001").await.expect("get").map(|k| k.owner), Some(KeyOwner::Root));
    assert_eq!(s.get_key(&id).await.expect("get"), Some(user_key.clone()));
    assert_eq!(s.get_access_key(&id).await.expect("get").map(|k| k.created_at), Some(2));
    assert!(s.set_key_status(&id, KeyStatus::Inactive).await.expect("status"));
    assert_eq!(s.list_user_keys("ci").await.expect("list").iter().map(|k| k.status).collect::<Vec<_>>(), [KeyStatus::Inactive]);
    assert!(!s.set_key_status("AKIANOPE", KeyStatus::Active).await.expect("status"));

    // A role session: its key knows the role, the token only by hash.
    s.put_role(&role("app"), None).await.expect("role");
    let creds = berth_store::issue_role_session(s, "arn:aws:iam::123456789012:role/app/app", "task-1", 900, 1_000).await.expect("issue");
    assert!(creds.access_key_id.starts_with("ASIA") && creds.access_key_id.len() == 20);
    assert_eq!(creds.expiration, 1_900);
    assert!(!format!("{creds:?}").contains(&creds.secret_access_key), "Debug hides the secret");
    let stored = s.get_key(&creds.access_key_id).await.expect("get").expect("session key");
    let KeyOwner::Session(session) = stored.owner else { panic!("a session key") };
    assert_eq!(session.token_hash, token_hash(&creds.session_token));
    assert_ne!(session.token_hash, creds.session_token);
    assert!(matches!(session.principal, SessionPrincipal::Role { ref session_name, .. } if session_name == "task-1"));
    assert!(s.list_user_keys("ci").await.expect("list").len() == 1, "sessions are not a user's keys");
    assert!(matches!(berth_store::issue_role_session(s, "nope", "x1", 900, 0).await, Err(StoreError::NotFound(_))));
    // Sessions that ended before the time given are swept.
    assert_eq!(s.delete_expired_sessions(1_899).await.expect("sweep"), 0);
    assert_eq!(s.delete_expired_sessions(1_901).await.expect("sweep"), 1);
    assert_eq!(s.get_key(&creds.access_key_id).await.expect("get"), None);
}
