//! Who made a request, once its signature is checked, and what one call
//! asks of IAM: the two values authorization works on.
//!
//! The edge resolves a [`Caller`] from the request's access key (the
//! account's root key, an IAM user's key, or a session's temporary key
//! with its token); each service describes a parsed action as an
//! [`IamRequest`] (the IAM action, the resources it acts on, the
//! condition keys it brings), and the evaluator decides before the
//! handler runs. Invariant: no handler runs for a caller whose policies
//! do not allow the action.

use std::collections::BTreeMap;

/// The principal behind a verified request.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key the request was signed with.
    pub access_key_id: String,
    /// The account the principal belongs to.
    pub account: String,
    /// `arn:aws:iam::ACCOUNT:root`, `arn:aws:iam::ACCOUNT:user/PATH/NAME`,
    /// or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// STS's UserId: the account id (root), the user's id (`AIDA…`), or
    /// `AROA…:SESSION` for an assumed role.
    pub user_id: String,
    pub kind: CallerKind,
    /// The identity-based policies that apply: (name or ARN, JSON document);
    /// for a user its inline, attached and groups' policies, for a role
    /// session its role's.
    pub policies: Vec<(String, String)>,
    /// A session policy passed to AssumeRole, which limits the session.
    pub session_policy: Option<String>,
    /// The principal's tags (aws:PrincipalTag/…), session tags over the role's.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// The account's root key: every action is allowed.
    Root,
    User { name: String },
    AssumedRole { role_arn: String, role_name: String, session_name: String },
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.kind == CallerKind::Root
    }
}

impl std::fmt::Debug for Caller {
    // Policies are long; the ARN says who it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("arn", &self.arn).field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// One authorization question a call asks: may the caller do `action`
/// (`service:Operation`, e.g. `ecs:RunTask`) on each of `resources` (ARNs,
/// or `*` for actions without a resource type), with these request
/// condition keys (`ecs:cluster`, `aws:RequestTag/Team`, `aws:TagKeys`,
/// …; the global request keys such as aws:SourceIp and aws:CurrentTime
/// are added by the edge).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IamRequest {
    pub action: String,
    pub resources: Vec<String>,
    pub keys: BTreeMap<String, Vec<String>>,
}

impl IamRequest {
    pub fn new(action: impl Into<String>, resources: impl IntoIterator<Item = String>) -> Self {
        Self { action: action.into(), resources: resources.into_iter().collect(), keys: BTreeMap::new() }
    }

    /// Adds a condition key's values (keys are case-insensitive in IAM:
    /// stored lower-case).
    pub fn key(mut self, name: &str, values: impl IntoIterator<Item = String>) -> Self {
        self.keys.entry(name.to_ascii_lowercase()).or_default().extend(values);
        self
    }
}
