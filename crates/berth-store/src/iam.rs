//! IAM's records (users, roles, groups, customer managed policies) and access
//! keys with their owners, and STS sessions: [`IamStore`], and
//! [`issue_session`] / [`issue_role_session`], which make a session's
//! temporary key (the STS API and the control plane's task-role
//! credentials share them).
//!
//! Names are unique per kind without case: `get_user("Bob")` finds
//! `bob`. Records are versioned like every other; a stale write is
//! [`StoreError::Conflict`].

use async_trait::async_trait;
use base64::Engine as _;
use berth_model::iam::{Group, KeyOwner, KeyStatus, ManagedPolicy, Role, Session, SessionPrincipal, User};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use crate::{AccessKey, Store, StoreError, Versioned};

/// The identity-based policies of an entity with these inline policies
/// and attached managed policies (ARNs): (name or ARN, document), inline
/// first, then each attached policy's default version — AWS's from
/// `aws_managed` (the caller passes `berth_iam::managed`'s lookup), the
/// account's from the store. One gone since it was attached, or a
/// policy of that name at another path, is skipped. The edge (a caller's
/// policies) and the agent (an execution role's) share it.
pub async fn policy_documents(
    store: &dyn Store,
    inline: &std::collections::BTreeMap<String, String>,
    attached: &[String],
    aws_managed: fn(&str) -> Option<&'static str>,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut out: Vec<(String, String)> = inline.iter().map(|(n, d)| (n.clone(), d.clone())).collect();
    for arn in attached {
        if let Some(doc) = aws_managed(arn) {
            out.push((arn.clone(), doc.to_owned()));
        } else if let Some(name) = arn.rsplit('/').next()
            && let Some(p) = store.get_policy(name).await?
            && &p.value.arn == arn
            && let Some(doc) = p.value.default_document()
        {
            out.push((arn.clone(), doc.to_owned()));
        }
    }
    Ok(out)
}

/// An access key with whose it is and whether it may sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key: AccessKey,
    pub owner: KeyOwner,
    pub status: KeyStatus,
}

#[async_trait]
pub trait IamStore: Send + Sync {
    /// Creates (`None`) or updates (the version read) a user; `Conflict`
    /// if its name (without case) or id is taken, or it changed meanwhile.
    async fn put_user(&self, user: &User, expected_version: Option<i64>) -> Result<Versioned<User>, StoreError>;
    /// A user by name, without case.
    async fn get_user(&self, name: &str) -> Result<Option<Versioned<User>>, StoreError>;
    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<Versioned<User>>, StoreError>;
    /// Deletes a user at the version read, unless it still has long-term
    /// access keys (`Rejected`); `Conflict` if it changed, `false` if
    /// there was none.
    async fn delete_user(&self, name: &str, expected_version: i64) -> Result<bool, StoreError>;

    async fn put_role(&self, role: &Role, expected_version: Option<i64>) -> Result<Versioned<Role>, StoreError>;
    async fn get_role(&self, name: &str) -> Result<Option<Versioned<Role>>, StoreError>;
    async fn list_roles(&self) -> Result<Vec<Versioned<Role>>, StoreError>;
    /// Deletes a role at the version read, and its sessions' keys.
    async fn delete_role(&self, name: &str, expected_version: i64) -> Result<bool, StoreError>;

    /// Groups, as users (their members are named in the users' records).
    async fn put_group(&self, group: &Group, expected_version: Option<i64>) -> Result<Versioned<Group>, StoreError>;
    async fn get_group(&self, name: &str) -> Result<Option<Versioned<Group>>, StoreError>;
    async fn list_groups(&self) -> Result<Vec<Versioned<Group>>, StoreError>;
    async fn delete_group(&self, name: &str, expected_version: i64) -> Result<bool, StoreError>;

    async fn put_policy(&self, policy: &ManagedPolicy, expected_version: Option<i64>) -> Result<Versioned<ManagedPolicy>, StoreError>;
    async fn get_policy(&self, name: &str) -> Result<Option<Versioned<ManagedPolicy>>, StoreError>;
    async fn list_policies(&self) -> Result<Vec<Versioned<ManagedPolicy>>, StoreError>;
    async fn delete_policy(&self, name: &str, expected_version: i64) -> Result<bool, StoreError>;

    /// Inserts a key of any owner; `Conflict` if the id exists.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// A key and its owner (sessions' keys too, expired or not).
    async fn get_key(&self, access_key_id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// A user's long-term keys, by creation time.
    async fn list_user_keys(&self, user_name: &str) -> Result<Vec<KeyRecord>, StoreError>;
    /// Sets a key's status; `false` if there is no such key.
    async fn set_key_status(&self, access_key_id: &str, status: KeyStatus) -> Result<bool, StoreError>;
    async fn delete_key(&self, access_key_id: &str) -> Result<bool, StoreError>;
    /// Removes the keys of sessions that expired before `now` (epoch
    /// seconds); how many.
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError>;
}

/// A session's credentials as STS hands them out. The secret and the
/// token are shown here once and never kept in the clear (the token) or
/// logged (both).
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Epoch seconds.
    pub expiration: i64,
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Upper-case letters and digits, as AWS's key ids and unique ids use.
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_chars(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

/// An IAM unique id: the 4-letter prefix of its kind (`AIDA`, `AROA`,
/// `ANPA`) and 17 more, 21 in all.
pub fn new_unique_id(prefix: &str) -> String {
    format!("{prefix}{}", random_chars(ID_CHARS, 21 - prefix.len()))
}

/// A new key id (`AKIA…` long-term, `ASIA…` temporary: 20 characters)
/// and its 40-character secret.
pub fn new_key_pair(prefix: &str) -> (String, String) {
    (format!("{prefix}{}", random_chars(ID_CHARS, 20 - prefix.len())), random_chars(SECRET_CHARS, 40))
}

/// The hash a session keeps of its token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a new session is: whom it acts as, for how long, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub principal: SessionPrincipal,
    pub duration_secs: i64,
    pub policy: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Makes a session's temporary key (ASIA…, a secret, a random session
/// token of which only the hash is stored), valid from `now` (epoch
/// seconds) for the spec's duration. Sessions expired for a day are swept
/// first (until then their keys still answer ExpiredToken).
/// The caller has checked that the principal may have it.
pub async fn issue_session(store: &dyn Store, spec: SessionSpec, now: i64) -> Result<TemporaryCredentials, StoreError> {
    store.delete_expired_sessions(now - 86_400).await?;
    let mut raw = [0u8; 96];
    rand::rng().fill(&mut raw[..]);
    let session_token = base64::engine::general_purpose::STANDARD.encode(raw);
    let expiration = now + spec.duration_secs;
    let session = Session {
        principal: spec.principal,
        token_hash: token_hash(&session_token),
        expires_at: expiration,
        policy: spec.policy,
        tags: spec.tags,
    };
    loop {
        let (access_key_id, secret_access_key) = new_key_pair("ASIA");
        let record = KeyRecord {
            key: AccessKey { access_key_id: access_key_id.clone(), secret_access_key: secret_access_key.clone(), created_at: now },
            owner: KeyOwner::Session(session.clone()),
            status: KeyStatus::Active,
        };
        match store.insert_key(&record).await {
            Ok(()) => return Ok(TemporaryCredentials { access_key_id, secret_access_key, session_token, expiration }),
            // A random id taken already: draw another.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Credentials of a session of role `role` (its name, or its ARN
/// `arn:aws:iam::ACCOUNT:role/PATH/NAME`) named `session_name`, valid
/// from `now` (epoch seconds) for `duration_secs`, with no session policy
/// or tags: what the control plane hands a task for its task role,
/// without an HTTP request. Its caller is then
/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` with the role's
/// policies. `NotFound` if there is no such role. Neither the role's
/// trust policy nor its MaxSessionDuration is checked here: that is the
/// caller's to decide (ECS's task credentials need the role to trust
/// `ecs-tasks.amazonaws.com`).
pub async fn issue_role_session(
    store: &dyn Store,
    role: &str,
    session_name: &str,
    duration_secs: i64,
    now: i64,
) -> Result<TemporaryCredentials, StoreError> {
    let name = role.rsplit('/').next().unwrap_or(role);
    let role = store.get_role(name).await?.ok_or_else(|| StoreError::NotFound(format!("role {name}")))?.value;
    let principal = SessionPrincipal::Role {
        role_name: role.name,
        role_arn: role.arn,
        role_id: role.id,
        session_name: session_name.to_owned(),
    };
    issue_session(store, SessionSpec { principal, duration_secs, policy: None, tags: Default::default() }, now).await
}
