//! CloudWatch Logs handlers (`Logs_20140328.*`, signing name `logs`):
//! typed request in, typed response out, over the store's log groups,
//! streams and events. Nothing here sees HTTP.
//!
//! Served: CreateLogGroup, DeleteLogGroup, DescribeLogGroups,
//! CreateLogStream, DeleteLogStream, DescribeLogStreams, PutLogEvents,
//! GetLogEvents, FilterLogEvents, PutRetentionPolicy,
//! DeleteRetentionPolicy. Retention is enforced by [`expire`], which the
//! server runs every [`EXPIRY_INTERVAL`] ([`run_expiry`]).

mod events;
mod expiry;
mod filter;
mod groups;
mod pattern;
mod streams;

pub use expiry::run_expiry;

use std::time::Duration;

use berth_store::{LogStore, StoreError};
use berth_wire::logs::Action;
use serde::Serialize;
use serde_json::Value;

use crate::{Api, ApiError};

/// How often a server should run [`expire`]. CloudWatch itself deletes
/// expired events within about 72 hours; Berth within this.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes the events that have outlived their group's retention, as of
/// now. Returns how many went. Cheap when nothing is due: only streams
/// whose first event is past their group's retention are touched.
pub async fn expire(logs: &dyn LogStore) -> Result<u64, StoreError> {
    logs.expire_log_events(now_ms()).await
}

/// One authenticated call.
pub(crate) struct Call<'a> {
    pub api: &'a Api,
}

impl Call<'_> {
    fn logs(&self) -> &dyn LogStore {
        self.api.logs.as_ref()
    }

    /// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME`.
    fn group_arn(&self, group: &str) -> String {
        let a = self.api.account();
        format!("arn:aws:logs:{}:{}:log-group:{group}", a.region, a.account_id)
    }
}

pub(crate) async fn dispatch(call: &Call<'_>, action: Action) -> Result<Value, ApiError> {
    match action {
        Action::CreateLogGroup(r) => groups::create(call, r).await.map(|()| empty()),
        Action::DeleteLogGroup(r) => groups::delete(call, r).await.map(|()| empty()),
        Action::DescribeLogGroups(r) => json(groups::describe(call, r).await?),
        Action::PutRetentionPolicy(r) => groups::put_retention(call, r).await.map(|()| empty()),
        Action::DeleteRetentionPolicy(r) => groups::delete_retention(call, r).await.map(|()| empty()),
        Action::CreateLogStream(r) => streams::create(call, r).await.map(|()| empty()),
        Action::DeleteLogStream(r) => streams::delete(call, r).await.map(|()| empty()),
        Action::DescribeLogStreams(r) => json(streams::describe(call, r).await?),
        Action::PutLogEvents(r) => json(events::put(call, r).await?),
        Action::GetLogEvents(r) => json(events::get(call, r).await?),
        Action::FilterLogEvents(r) => json(filter::filter(call, r).await?),
        other => Err(ApiError::UnknownOperation(format!(
            "The operation {} is not supported by Berth yet.",
            other.name()
        ))),
    }
}

fn json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(StoreError::Corrupt(e)))
}

/// The body of an operation without output.
fn empty() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Milliseconds since the epoch, as Logs writes times.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// --- errors, in CloudWatch's words ---

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::logs("InvalidParameterException", message)
}

fn group_not_found() -> ApiError {
    ApiError::logs("ResourceNotFoundException", "The specified log group does not exist.")
}

fn stream_not_found() -> ApiError {
    ApiError::logs("ResourceNotFoundException", "The specified log stream does not exist.")
}

/// AWS's wording for a member that breaks its model constraint.
fn constraint(member: &str, value: &str, rule: &str) -> ApiError {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"
    ))
}

// --- names ---

const NAME_MAX: usize = 512;

fn check_length(member: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(constraint(member, value, "have length greater than or equal to 1"));
    }
    if value.chars().count() > NAME_MAX {
        return Err(constraint(member, value, "have length less than or equal to 512"));
    }
    Ok(())
}

/// A log group name (or name prefix): 1–512 of `[.\-_/#A-Za-z0-9]`.
fn check_group_name(member: &str, name: &str) -> Result<(), ApiError> {
    check_length(member, name)?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b)) {
        return Err(constraint(member, name, "satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"));
    }
    Ok(())
}

/// A log stream name (or name prefix): 1–512 characters, no `:` or `*`.
fn check_stream_name(member: &str, name: &str) -> Result<(), ApiError> {
    check_length(member, name)?;
    if name.contains([':', '*']) {
        return Err(constraint(member, name, "satisfy regular expression pattern: [^:*]*"));
    }
    Ok(())
}

/// The group a read names: `logGroupName`, or `logGroupIdentifier` (a
/// name or this account's log group ARN, with or without `:*`) — one of
/// the two, as CloudWatch requires.
fn group_of(call: &Call<'_>, name: Option<&str>, identifier: Option<&str>) -> Result<String, ApiError> {
    match (name, identifier) {
        (Some(name), None) => {
            check_group_name("logGroupName", name)?;
            Ok(name.to_owned())
        }
        (None, Some(id)) => {
            // `call.group_arn("")` is the ARN prefix of this account's groups.
            let name = match id.strip_prefix(&call.group_arn("")) {
                Some(rest) => rest.strip_suffix(":*").unwrap_or(rest),
                None if id.starts_with("arn:") => return Err(group_not_found()),
                None => id,
            };
            check_group_name("logGroupIdentifier", name)?;
            Ok(name.to_owned())
        }
        (Some(_), Some(_)) => Err(invalid("LogGroupName and LogGroupIdentifier are mutually exclusive parameters.")),
        (None, None) => Err(invalid("Either LogGroupName or LogGroupIdentifier is required.")),
    }
}

/// A `limit` in 1..=max, `default` if absent.
fn limit(value: Option<i32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if n >= 1 && n as u32 <= max => Ok(n as u32),
        Some(n) if n < 1 => Err(constraint("limit", &n.to_string(), "have value greater than or equal to 1")),
        Some(n) => Err(constraint("limit", &n.to_string(), &format!("have value less than or equal to {max}"))),
    }
}

/// A time in a request: not before the epoch (the model's minimum).
fn check_time(member: &str, value: Option<i64>) -> Result<(), ApiError> {
    match value {
        Some(t) if t < 0 => Err(constraint(member, &t.to_string(), "have value greater than or equal to 0")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model() {
        assert!(check_group_name("n", "/ecs/web-1_a.b#c").is_ok());
        assert!(check_group_name("n", "").is_err());
        assert!(check_group_name("n", "a b").is_err());
        assert!(check_group_name("n", "a:b").is_err());
        assert!(check_group_name("n", &"a".repeat(512)).is_ok());
        assert!(check_group_name("n", &"a".repeat(513)).is_err());
        assert!(check_stream_name("n", "ecs/web/0123 ünï").is_ok());
        assert!(check_stream_name("n", "a:b").is_err());
        assert!(check_stream_name("n", "a*").is_err());
        assert!(check_stream_name("n", "").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None, 50, 50).ok(), Some(50));
        assert_eq!(limit(Some(1), 50, 50).ok(), Some(1));
        assert!(limit(Some(0), 50, 50).is_err());
        assert!(limit(Some(51), 50, 50).is_err());
        assert!(limit(Some(-3), 50, 50).is_err());
    }
}
