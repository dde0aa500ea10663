//! IAM (`iam`, AWS Query, a global service): users and their access
//! keys ([`users`]), roles ([`roles`]), groups ([`groups`]), inline and
//! managed policies, attachments and tags of users, roles and groups
//! ([`policies`]), and who a request's key belongs to ([`identity`]).
//!
//! Policy documents are validated by `berth_iam` (MalformedPolicyDocument
//! with its message) and kept as given; IAM answers them URL-encoded
//! (botocore decodes them). Lists page with `Marker`/`MaxItems` (1..1000,
//! default 100) and say `IsTruncated`.

use berth_model::iam::IamError;
use berth_wire::iam::{Action, Output};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::caller::Caller;
use crate::{Api, ApiError};

mod groups;
pub(crate) mod identity;
mod policies;
mod roles;
mod users;

impl From<IamError> for ApiError {
    fn from(e: IamError) -> Self {
        ApiError::service(e.code(), e.to_string())
    }
}

/// One call's context: the API and who makes the call.
pub(crate) struct Call<'a> {
    pub api: &'a Api,
    pub caller: &'a Caller,
}

impl Call<'_> {
    fn account(&self) -> &str {
        &self.api.account().account_id
    }
}

pub(crate) async fn dispatch(call: &Call<'_>, action: Action) -> Result<Output, ApiError> {
    use Action as A;
    Ok(match action {
        A::CreateUser(r) => users::create(call, r).await?,
        A::GetUser(r) => users::get(call, r).await?,
        A::ListUsers(r) => users::list(call, r).await?,
        A::UpdateUser(r) => users::update(call, r).await?,
        A::DeleteUser(r) => users::delete(call, r).await?,
        A::CreateAccessKey(r) => users::create_key(call, r).await?,
        A::ListAccessKeys(r) => users::list_keys(call, r).await?,
        A::UpdateAccessKey(r) => users::update_key(call, r).await?,
        A::DeleteAccessKey(r) => users::delete_key(call, r).await?,
        A::GetAccessKeyLastUsed(r) => users::key_last_used(call, r).await?,
        A::CreateRole(r) => roles::create(call, r).await?,
        A::GetRole(r) => roles::get(call, r).await?,
        A::ListRoles(r) => roles::list(call, r).await?,
        A::UpdateRole(r) => roles::update(call, r).await?,
        A::UpdateAssumeRolePolicy(r) => roles::update_trust(call, r).await?,
        A::DeleteRole(r) => roles::delete(call, r).await?,
        A::CreateGroup(r) => groups::create(call, r).await?,
        A::GetGroup(r) => groups::get(call, r).await?,
        A::ListGroups(r) => groups::list(call, r).await?,
        A::DeleteGroup(r) => groups::delete(call, r).await?,
        A::AddUserToGroup(r) => groups::add_user(call, r).await?,
        A::RemoveUserFromGroup(r) => groups::remove_user(call, r).await?,
        A::ListGroupsForUser(r) => groups::for_user(call, r).await?,
        other => policies::dispatch(call, other).await?,
    })
}

/// `ValidationError`.
fn invalid(message: impl Into<String>) -> ApiError {
    IamError::Validation(message.into()).into()
}

/// What IAM leaves unescaped in the documents it answers.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A policy document as IAM answers it: URL-encoded.
fn url_encoded(doc: &str) -> String {
    utf8_percent_encode(doc, UNRESERVED).to_string()
}

/// A page of a listing: its items, `IsTruncated`, the next `Marker`.
type Listed<T> = (Vec<T>, Option<bool>, Option<String>);

/// A page of `items` (sorted by `key`) after `marker` (the key of the
/// last item of the previous page), at most `max_items` (1..=1000,
/// default 100): the page, whether more follow, and the next marker.
fn page<T>(items: Vec<T>, marker: Option<&str>, max_items: Option<i32>, key: impl Fn(&T) -> String) -> Result<Listed<T>, ApiError> {
    let limit = match max_items {
        None => 100,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => return Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
        ))),
    };
    let after = crate::paging::decode::<String>(marker).map_err(|_| invalid("Invalid Marker: it was not returned by a previous call."))?;
    let mut rest: Vec<T> = items.into_iter().filter(|i| after.as_ref().is_none_or(|a| key(i) > *a)).collect();
    if rest.len() > limit {
        rest.truncate(limit);
        let next = rest.last().map(|i| crate::paging::encode(&key(i)));
        Ok((rest, Some(true), next))
    } else {
        Ok((rest, Some(false), None))
    }
}

/// A path prefix filter: `/` (all) unless given; must start with `/`.
fn path_prefix(prefix: Option<&str>) -> Result<String, ApiError> {
    let p = prefix.unwrap_or("/");
    if !p.starts_with('/') || p.len() > 512 {
        return Err(invalid("The specified value for pathPrefix is invalid. It must begin with / and contain only alphanumeric characters and/or / characters."));
    }
    Ok(p.to_owned())
}

fn path(path: Option<&str>) -> Result<String, ApiError> {
    let p = path.unwrap_or("/");
    berth_model::iam::validate_path("path", p)?;
    Ok(p.to_owned())
}

/// A permissions policy (inline or managed version): parsed and checked
/// by `berth_iam`, and within `max` characters (whitespace not counted,
/// as IAM counts).
fn check_policy(doc: &str, max: usize) -> Result<(), ApiError> {
    berth_iam::PolicyDocument::parse(doc).map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
    check_size(doc, max)
}

/// A role's trust policy.
fn check_trust(doc: &str) -> Result<berth_iam::PolicyDocument, ApiError> {
    let parsed = berth_iam::PolicyDocument::parse_trust(doc).map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
    check_size(doc, berth_model::iam::MAX_TRUST_POLICY_CHARS)?;
    Ok(parsed)
}

fn check_size(doc: &str, max: usize) -> Result<(), ApiError> {
    let chars = doc.chars().filter(|c| !c.is_whitespace()).count();
    if chars > max {
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for PolicySize: {max}")).into());
    }
    Ok(())
}

fn wire_tags(tags: &std::collections::BTreeMap<String, String>) -> Vec<berth_wire::iam::Tag> {
    tags.iter().map(|(k, v)| berth_wire::iam::Tag { key: k.clone(), value: v.clone() }).collect()
}

fn tag_pairs(tags: Option<&[berth_wire::iam::Tag]>) -> Vec<(String, String)> {
    tags.unwrap_or_default().iter().map(|t| (t.key.clone(), t.value.clone())).collect()
}

fn now() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp() as f64
}

/// Retries a read-modify-write that lost a race to another writer.
const RETRIES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_markers() {
        let items: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
        let (p1, more, marker) = page(items.clone(), None, Some(2), Clone::clone).unwrap_or_default();
        assert_eq!((p1.len(), more), (2, Some(true)));
        let (p2, _, marker) = page(items.clone(), marker.as_deref(), Some(2), Clone::clone).unwrap_or_default();
        assert_eq!(p2, vec!["u2".to_owned(), "u3".to_owned()]);
        let (p3, more, end) = page(items, marker.as_deref(), Some(2), Clone::clone).unwrap_or_default();
        assert_eq!((p3, more, end), (vec!["u4".to_owned()], Some(false), None));
    }

    #[test]
    fn documents_are_answered_url_encoded() {
        assert_eq!(url_encoded(r#"{"a": "b/c"}"#), "%7B%22a%22%3A%20%22b%2Fc%22%7D");
    }
}
