//! STS (`sts`, AWS Query): who the caller is (GetCallerIdentity, for
//! every kind of caller), and temporary credentials: AssumeRole (the
//! role's trust policy decides, with berth_iam's `trust_allows`; a
//! session policy and session tags limit and mark the session) and
//! GetSessionToken (users and root). A session's key is `ASIA…`; its
//! token is kept only as a hash, and SigV4 then accepts the key with
//! `X-Amz-Security-Token` until it expires (`iam::identity`).

use std::collections::BTreeMap;

use berth_iam::{Decision, PolicyDocument};
use berth_model::iam::{self, EntityKind, IamError, KeyOwner, SessionPrincipal};
use berth_store::{SessionSpec, TemporaryCredentials};
use berth_wire::sts::{
    Action, AssumeRoleRequest, AssumeRoleResponse, AssumedRoleUser, Credentials, GetCallerIdentityResponse,
    GetSessionTokenRequest, GetSessionTokenResponse, Output,
};

use crate::caller::{Caller, CallerKind};
use crate::{Api, ApiError};

pub(crate) async fn dispatch(api: &Api, caller: &Caller, action: Action) -> Result<Output, ApiError> {
    match action {
        Action::GetCallerIdentity(_) => Ok(Output::GetCallerIdentity(GetCallerIdentityResponse {
            arn: Some(caller.arn.clone()),
            user_id: Some(caller.user_id.clone()),
            account: Some(caller.account.clone()),
        })),
        Action::AssumeRole(r) => assume_role(api, caller, r).await,
        Action::GetSessionToken(r) => session_token(api, caller, r).await,
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    IamError::Validation(message.into()).into()
}

fn access_denied(caller: &Caller, action: &str, resource: &str) -> ApiError {
    ApiError::service("AccessDenied", format!("User: {} is not authorized to perform: {action} on resource: {resource}", caller.arn))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A session's length: `requested` (or `default`) within `min..=max`.
fn duration(requested: Option<i32>, default: i64, min: i64, max: i64, too_long: impl FnOnce() -> String) -> Result<i64, ApiError> {
    let d = requested.map_or(default.min(max), i64::from);
    if d < min {
        return Err(invalid(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: \
             Member must have value greater than or equal to {min}"
        )));
    }
    if d > max {
        return Err(invalid(too_long()));
    }
    Ok(d)
}

/// The request context a trust policy is evaluated with.
fn trust_keys(caller: &Caller, principal_arn: &str, tags: &BTreeMap<String, String>, session_name: &str) -> BTreeMap<String, Vec<String>> {
    let mut keys = BTreeMap::new();
    keys.insert("aws:principalarn".to_owned(), vec![principal_arn.to_owned()]);
    keys.insert("aws:principalaccount".to_owned(), vec![caller.account.clone()]);
    keys.insert("sts:rolesessionname".to_owned(), vec![session_name.to_owned()]);
    for (k, v) in tags {
        keys.insert(format!("aws:requesttag/{}", k.to_ascii_lowercase()), vec![v.clone()]);
    }
    if !tags.is_empty() {
        keys.insert("aws:tagkeys".to_owned(), tags.keys().cloned().collect());
    }
    for (k, v) in &caller.tags {
        keys.insert(format!("aws:principaltag/{}", k.to_ascii_lowercase()), vec![v.clone()]);
    }
    keys
}

/// aws:PrincipalArn of a caller: a session's role ARN, else its own.
fn principal_arn(caller: &Caller) -> &str {
    match &caller.kind {
        CallerKind::AssumedRole { role_arn, .. } => role_arn,
        _ => &caller.arn,
    }
}

async fn assume_role(api: &Api, caller: &Caller, r: AssumeRoleRequest) -> Result<Output, ApiError> {
    iam::validate_session_name(&r.role_session_name)?;
    if r.role_arn.len() < 20 || !r.role_arn.starts_with("arn:") {
        return Err(invalid(format!(
            "{} is invalid: a role ARN is arn:aws:iam::ACCOUNT:role/NAME.",
            r.role_arn
        )));
    }
    let denied = |action: &str| access_denied(caller, action, &r.role_arn);
    let name = iam::name_in_arn(&r.role_arn, &caller.account, EntityKind::Role).ok_or_else(|| denied("sts:AssumeRole"))?;
    let role = api.store.get_role(name).await?.map(|v| v.value).filter(|role| role.arn == r.role_arn);
    let role = role.ok_or_else(|| denied("sts:AssumeRole"))?;

    let mut tags = BTreeMap::new();
    for t in r.tags.as_deref().unwrap_or_default() {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(invalid(format!("The session tag '{}' must have a key of 1 to 128 characters and a value of at most 256.", t.key)));
        }
        tags.insert(t.key.clone(), t.value.clone());
    }
    if tags.len() > iam::MAX_TAGS {
        return Err(invalid(format!("A session can have at most {} session tags.", iam::MAX_TAGS)));
    }

    // The trust policy must let this principal assume the role (and tag
    // the session, if it brings tags).
    let trust = PolicyDocument::parse_trust(&role.assume_role_policy).map_err(|_| denied("sts:AssumeRole"))?;
    let principal = principal_arn(caller);
    let mut keys = trust_keys(caller, principal, &tags, &r.role_session_name);
    if let Some(id) = &r.external_id {
        keys.insert("sts:externalid".to_owned(), vec![id.clone()]);
    }
    let ask = |action: &'static str, account: &str| {
        let req = berth_iam::Request { principal_arn: &caller.arn, principal_account: account, action, resource: &role.arn, keys: &keys };
        berth_iam::trust_allows(&trust, &req)
    };
    if ask("sts:AssumeRole", &caller.account) != Decision::Allow {
        return Err(denied("sts:AssumeRole"));
    }
    if !tags.is_empty() && ask("sts:TagSession", &caller.account) != Decision::Allow {
        return Err(denied("sts:TagSession"));
    }
    // A trust policy that names the account (not this principal itself)
    // leaves it to the caller's identity policies, as in AWS; root needs none.
    let named_directly = ask("sts:AssumeRole", "") == Decision::Allow;
    if !caller.is_root() && !named_directly && !identity_allows(caller, "sts:AssumeRole", &role.arn, &keys) {
        return Err(denied("sts:AssumeRole"));
    }

    // Role chaining (a session assuming a role) is held to one hour.
    let chained = matches!(caller.kind, CallerKind::AssumedRole { .. });
    let max = if chained { iam::DEFAULT_SESSION_SECONDS } else { role.max_session_duration };
    let seconds = duration(r.duration_seconds, iam::DEFAULT_SESSION_SECONDS, api.config.min_session_seconds, max, || {
        if chained {
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".to_owned()
        } else {
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".to_owned()
        }
    })?;

    let packed = packed_size(r.policy.as_deref(), &tags)?;
    if r.policy_arns.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::Unsupported("Berth does not support managed session policies (PolicyArns) yet.".into()));
    }
    let principal = SessionPrincipal::Role {
        role_name: role.name.clone(),
        role_arn: role.arn.clone(),
        role_id: role.id.clone(),
        session_name: r.role_session_name.clone(),
    };
    let creds = berth_store::issue_session(api.store.as_ref(), SessionSpec { principal, duration_secs: seconds, policy: r.policy, tags }, now()).await?;
    Ok(Output::AssumeRole(AssumeRoleResponse {
        credentials: Some(wire(creds)),
        assumed_role_user: Some(AssumedRoleUser {
            assumed_role_id: format!("{}:{}", role.id, r.role_session_name),
            arn: iam::assumed_role_arn(&caller.account, &role.name, &r.role_session_name),
        }),
        packed_policy_size: packed,
        source_identity: None,
    }))
}

/// Whether the caller's identity policies (limited by its session
/// policy) allow `action` on `resource`.
fn identity_allows(caller: &Caller, action: &str, resource: &str, keys: &BTreeMap<String, Vec<String>>) -> bool {
    let docs: Vec<PolicyDocument> = caller.policies.iter().filter_map(|(_, d)| PolicyDocument::parse(d).ok()).collect();
    let session = caller.session_policy.as_deref().and_then(|d| PolicyDocument::parse(d).ok());
    let req = berth_iam::Request { principal_arn: &caller.arn, principal_account: &caller.account, action, resource, keys };
    berth_iam::evaluate(&docs.iter().collect::<Vec<_>>(), session.as_ref(), &req) == Decision::Allow
}

/// AssumeRole's PackedPolicySize: the percentage of the packed limit the
/// session policy and tags take; over 100 is refused.
fn packed_size(policy: Option<&str>, tags: &BTreeMap<String, String>) -> Result<Option<i32>, ApiError> {
    if policy.is_none() && tags.is_empty() {
        return Ok(None);
    }
    let mut chars = 0;
    if let Some(p) = policy {
        PolicyDocument::parse(p).map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
        chars += p.chars().filter(|c| !c.is_whitespace()).count();
    }
    chars += tags.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let percent = chars * 100 / iam::MAX_SESSION_POLICY_CHARS;
    if percent > 100 {
        return Err(ApiError::service(
            "PackedPolicyTooLarge",
            format!("Packed size of consumed session policies and session tags exceeds the limit: {percent}% of the allowed size."),
        ));
    }
    Ok(Some(percent as i32))
}

async fn session_token(api: &Api, caller: &Caller, r: GetSessionTokenRequest) -> Result<Output, ApiError> {
    let (principal, max) = match &caller.kind {
        CallerKind::Root => (SessionPrincipal::Root, iam::DEFAULT_SESSION_SECONDS),
        CallerKind::User { name } => (SessionPrincipal::User { name: name.clone() }, iam::MAX_USER_SESSION_SECONDS),
        CallerKind::AssumedRole { .. } => {
            return Err(ApiError::service("AccessDenied", "Cannot call GetSessionToken with session credentials"));
        }
    };
    // A session of GetSessionToken is its user, but it cannot make another.
    let key = api.store.get_key(&caller.access_key_id).await?;
    if key.is_some_and(|k| matches!(k.owner, KeyOwner::Session(_))) {
        return Err(ApiError::service("AccessDenied", "Cannot call GetSessionToken with session credentials"));
    }
    if r.serial_number.is_some() || r.token_code.is_some() {
        return Err(ApiError::Unsupported("Berth does not support MFA devices yet.".into()));
    }
    let seconds = duration(r.duration_seconds, iam::DEFAULT_USER_SESSION_SECONDS, api.config.min_session_seconds, max, || {
        format!(
            "1 validation error detected: Value '{}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {max}",
            r.duration_seconds.unwrap_or_default()
        )
    })?;
    let creds = berth_store::issue_session(api.store.as_ref(), SessionSpec { principal, duration_secs: seconds, policy: None, tags: BTreeMap::new() }, now()).await?;
    Ok(Output::GetSessionToken(GetSessionTokenResponse { credentials: Some(wire(creds)) }))
}

fn wire(c: TemporaryCredentials) -> Credentials {
    Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expiration: c.expiration as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_stay_within_their_bounds() {
        let long = || "too long".to_owned();
        assert_eq!(duration(None, 3600, 900, 43_200, long).ok(), Some(3600));
        assert_eq!(duration(None, 43_200, 900, 3600, long).ok(), Some(3600), "root's default is its maximum");
        assert!(duration(Some(899), 3600, 900, 43_200, long).is_err());
        assert!(duration(Some(7200), 3600, 900, 3600, long).is_err());
        assert_eq!(duration(Some(1), 3600, 1, 3600, long).ok(), Some(1), "the test minimum");
    }

    #[test]
    fn packed_size_counts_policy_and_tags() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        assert_eq!(packed_size(None, &BTreeMap::new()).ok(), Some(None));
        assert!(matches!(packed_size(Some(doc), &BTreeMap::new()), Ok(Some(p)) if (1..100).contains(&p)));
        assert!(packed_size(Some("{"), &BTreeMap::new()).is_err());
    }
}
