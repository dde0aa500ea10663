//! IAM in the model: users, roles, customer managed policies and their
//! versions, access keys' owners and STS sessions, with IAM's naming
//! rules, ARNs and error codes. Pure data and rules; the store keeps
//! these records, `berth-api` serves them on IAM's and STS's wire and
//! resolves a request's caller from them. Policy documents are kept as
//! the text the user gave (IAM answers them back as given, URL-encoded);
//! their grammar and evaluation are `berth-iam`'s.
//!
//! IAM is a global service: its ARNs have no region
//! (`arn:aws:iam::ACCOUNT:user/PATH/NAME`), and names of users, roles and
//! policies are unique in the account without case.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The default and shortest session of a role (seconds).
pub const DEFAULT_SESSION_SECONDS: i64 = 3600;
pub const MIN_SESSION_SECONDS: i64 = 900;
/// The longest `MaxSessionDuration` a role may have (12 hours).
pub const MAX_ROLE_SESSION_SECONDS: i64 = 43_200;
/// GetSessionToken's longest session (36 hours) and default (12 hours).
pub const MAX_USER_SESSION_SECONDS: i64 = 129_600;
pub const DEFAULT_USER_SESSION_SECONDS: i64 = 43_200;
/// A managed policy keeps at most this many versions.
pub const MAX_POLICY_VERSIONS: usize = 5;
/// A user has at most two access keys.
pub const MAX_ACCESS_KEYS: usize = 2;
/// At most this many tags per user or role, and session tags per session.
pub const MAX_TAGS: usize = 50;
/// Characters of a managed policy document (IAM's quota, whitespace excluded).
pub const MAX_MANAGED_POLICY_CHARS: usize = 6144;
/// Characters of all a user's (or role's) inline policies together.
pub const MAX_USER_INLINE_CHARS: usize = 2048;
pub const MAX_ROLE_INLINE_CHARS: usize = 10_240;
pub const MAX_GROUP_INLINE_CHARS: usize = 5120;
/// Characters of a role's trust policy.
pub const MAX_TRUST_POLICY_CHARS: usize = 2048;
/// Characters of an AssumeRole session policy.
pub const MAX_SESSION_POLICY_CHARS: usize = 2048;

/// An IAM error, by the code a client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    InvalidInput(String),
}

impl IamError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationError",
            Self::NoSuchEntity(_) => "NoSuchEntity",
            Self::EntityAlreadyExists(_) => "EntityAlreadyExists",
            Self::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            Self::LimitExceeded(_) => "LimitExceeded",
            Self::DeleteConflict(_) => "DeleteConflict",
            Self::InvalidInput(_) => "InvalidInput",
        }
    }
}

/// What an IAM entity is: the word of its ARN and of IAM's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntityKind {
    User,
    Role,
    Group,
    Policy,
}

impl EntityKind {
    pub fn word(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Role => "role",
            Self::Group => "group",
            Self::Policy => "policy",
        }
    }

    /// The four letters IAM's unique ids of this kind start with.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::User => "AIDA",
            Self::Role => "AROA",
            Self::Group => "AGPA",
            Self::Policy => "ANPA",
        }
    }

    /// "The user with name X cannot be found." (policies are named by ARN).
    pub fn not_found(self, name: &str) -> IamError {
        match self {
            Self::Policy => IamError::NoSuchEntity(format!("Policy {name} does not exist or is not attachable.")),
            k => IamError::NoSuchEntity(format!("The {} with name {name} cannot be found.", k.word())),
        }
    }

    pub fn exists(self, name: &str) -> IamError {
        match self {
            Self::Policy => IamError::EntityAlreadyExists(format!("A policy called {name} already exists. Duplicate names are not allowed.")),
            k => IamError::EntityAlreadyExists(format!("{} with name {name} already exists.", capitalized(k.word()))),
        }
    }
}

fn capitalized(w: &str) -> String {
    let mut c = w.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

/// `arn:aws:iam::ACCOUNT:KIND/PATH/NAME` (`path` starts and ends with `/`).
pub fn arn(account: &str, kind: EntityKind, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{}{path}{name}", kind.word())
}

pub fn root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
pub fn assumed_role_arn(account: &str, role_name: &str, session_name: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
}

/// The name an ARN of `kind` ends with, if it is one of `account`'s
/// (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
pub fn name_in_arn<'a>(arn: &'a str, account: &str, kind: EntityKind) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?.strip_prefix(account)?.strip_prefix(':')?;
    let rest = rest.strip_prefix(kind.word())?.strip_prefix('/')?;
    rest.rsplit('/').next().filter(|n| !n.is_empty())
}

/// Whether `arn` names an AWS managed policy (`arn:aws:iam::aws:policy/…`).
pub fn is_aws_managed(arn: &str) -> bool {
    arn.starts_with("arn:aws:iam::aws:policy/")
}

/// A user, role or policy name: 1 to `max` of `[\w+=,.@-]`.
pub fn validate_name(member: &str, name: &str, max: usize) -> Result<(), IamError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if name.is_empty() || name.chars().count() > max || !name.chars().all(ok) {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and {max}"
        )));
    }
    Ok(())
}

/// A path: `/`, or `/` segments `/` (printable ASCII), at most 512.
pub fn validate_path(member: &str, path: &str) -> Result<(), IamError> {
    let ok = path.starts_with('/') && path.ends_with('/') && path.len() <= 512 && path.chars().all(|c| ('!'..='~').contains(&c));
    if !ok || path.contains("//") {
        return Err(IamError::Validation(format!(
            "The specified value for {member} is invalid. It must begin and end with / and contain only alphanumeric \
             characters and/or / characters."
        )));
    }
    Ok(())
}

/// An STS session name: 2 to 64 of `[\w+=,.@-]`.
pub fn validate_session_name(name: &str) -> Result<(), IamError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if name.len() < 2 || name.len() > 64 || !name.chars().all(ok) {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
        )));
    }
    Ok(())
}

/// Tags added to `current`: keys 1..128, values ..256, no `aws:` keys,
/// at most [`MAX_TAGS`] in all.
pub fn merge_tags(current: &BTreeMap<String, String>, new: &[(String, String)]) -> Result<BTreeMap<String, String>, IamError> {
    let mut out = current.clone();
    for (k, v) in new {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(IamError::Validation(format!(
                "The tag key '{k}' must be 1 to 128 characters and its value at most 256."
            )));
        }
        if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(IamError::InvalidInput(format!("The tag key '{k}' uses the reserved prefix 'aws:'.")));
        }
        // Tag keys are case-insensitive in IAM: a new spelling replaces the old.
        out.retain(|old, _| !old.eq_ignore_ascii_case(k));
        out.insert(k.clone(), v.clone());
    }
    if out.len() > MAX_TAGS {
        return Err(IamError::LimitExceeded(format!("The number of tags has reached the maximum limit of {MAX_TAGS}.")));
    }
    Ok(out)
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub name: String,
    /// `AIDA…`.
    pub id: String,
    pub path: String,
    pub arn: String,
    /// Epoch seconds.
    pub create_date: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Inline policies: name → document as given.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Attached managed policies (customer's or AWS's), by ARN, in order.
    #[serde(default)]
    pub attached: Vec<String>,
    /// The groups it is a member of, by name.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An IAM group: policies its member users get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    /// `AGPA…`.
    pub id: String,
    pub path: String,
    pub arn: String,
    pub create_date: f64,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    /// `AROA…`.
    pub id: String,
    pub path: String,
    pub arn: String,
    pub create_date: f64,
    /// The trust policy as given.
    pub assume_role_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// A customer managed policy and its versions (at most
/// [`MAX_POLICY_VERSIONS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedPolicy {
    pub name: String,
    /// `ANPA…`.
    pub id: String,
    pub path: String,
    pub arn: String,
    pub create_date: f64,
    pub update_date: f64,
    #[serde(default)]
    pub description: Option<String>,
    /// `vN` of the default version.
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
    /// The number the next version takes (`v` numbers are never reused).
    pub next_version: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ManagedPolicy {
    pub fn default_document(&self) -> Option<&str> {
        self.versions.iter().find(|v| v.version_id == self.default_version).map(|v| v.document.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersion {
    /// `v1`, `v2`, …
    pub version_id: String,
    pub document: String,
    pub create_date: f64,
}

/// Active or Inactive: an inactive key signs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Active" => Some(Self::Active),
            "Inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// Whose an access key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// The account's root key (`berth up` makes it).
    Root,
    /// An IAM user's long-term key.
    User { name: String },
    /// A temporary key of an STS session.
    Session(Session),
}

/// An STS session: who it acts as, until when, and what limits it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub principal: SessionPrincipal,
    /// Hex SHA-256 of the session token (the token itself is not kept).
    pub token_hash: String,
    /// Epoch seconds.
    pub expires_at: i64,
    /// A session policy (AssumeRole's `Policy`), which limits the session.
    #[serde(default)]
    pub policy: Option<String>,
    /// Session tags (AssumeRole's `Tags`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("principal", &self.principal).field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Whom a session acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum SessionPrincipal {
    /// GetSessionToken with the root key.
    Root,
    /// GetSessionToken with a user's key.
    User { name: String },
    /// AssumeRole.
    #[serde(rename_all = "camelCase")]
    Role { role_name: String, role_arn: String, role_id: String, session_name: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_names() {
        assert_eq!(arn("123456789012", EntityKind::User, "/ci/", "bob"), "arn:aws:iam::123456789012:user/ci/bob");
        assert_eq!(name_in_arn("arn:aws:iam::123456789012:role/a/b/app", "123456789012", EntityKind::Role), Some("app"));
        assert_eq!(name_in_arn("arn:aws:iam::999999999999:role/app", "123456789012", EntityKind::Role), None);
        assert_eq!(name_in_arn("arn:aws:iam::123456789012:user/app", "123456789012", EntityKind::Role), None);
        assert!(is_aws_managed("arn:aws:iam::aws:policy/ReadOnlyAccess"));
    }

    #[test]
    fn names_paths_and_session_names_follow_iam() {
        assert!(validate_name("userName", "ci-bot+1@x.y", 64).is_ok());
        assert!(validate_name("userName", "", 64).is_err());
        assert!(validate_name("userName", "a b", 64).is_err());
        assert!(validate_name("userName", &"a".repeat(65), 64).is_err());
        assert!(validate_path("path", "/").is_ok());
        assert!(validate_path("path", "/ci/bots/").is_ok());
        assert!(validate_path("path", "ci/").is_err());
        assert!(validate_path("path", "/ci").is_err());
        assert!(validate_session_name("s1").is_ok());
        assert!(validate_session_name("s").is_err());
        assert!(validate_session_name("a/b").is_err());
    }

    #[test]
    fn tags_merge_without_case_and_refuse_aws_keys() {
        let t = merge_tags(&BTreeMap::new(), &[("Team".into(), "a".into())]).unwrap_or_default();
        let t = merge_tags(&t, &[("team".into(), "b".into())]).unwrap_or_default();
        assert_eq!(t.len(), 1);
        assert_eq!(t.get("team").map(String::as_str), Some("b"));
        assert!(merge_tags(&t, &[("aws:x".into(), "v".into())]).is_err());
    }
}
