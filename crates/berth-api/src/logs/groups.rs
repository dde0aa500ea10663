//! CreateLogGroup, DeleteLogGroup, DescribeLogGroups, PutRetentionPolicy,
//! DeleteRetentionPolicy.

use berth_store::{LogGroupRecord, Page, StoreError};
use berth_wire::logs::{
    CreateLogGroupRequest, DeleteLogGroupRequest, DeleteRetentionPolicyRequest, DescribeLogGroupsRequest,
    DescribeLogGroupsResponse, LogGroup, PutRetentionPolicyRequest,
};

use super::{Call, check_group_name, constraint, group_not_found, invalid, limit, now_ms};
use crate::{ApiError, paging};

/// The retention periods CloudWatch offers, in days (the model's `Days`).
pub(super) const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// DescribeLogGroups' default and largest page.
const MAX_GROUPS: u32 = 50;

pub async fn create(call: &Call<'_>, req: CreateLogGroupRequest) -> Result<(), ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    if req.kms_key_id.is_some() {
        return Err(invalid("Berth has no KMS: log groups cannot be encrypted with a kmsKeyId."));
    }
    if req.deletion_protection_enabled == Some(true) {
        return Err(invalid("Berth does not support deletion protection for log groups yet."));
    }
    if req.tags.as_ref().is_some_and(|t| t.len() > 50) {
        return Err(constraint("tags", "...", "have length less than or equal to 50"));
    }
    // (Tags are accepted and not kept: Berth has no ListTagsLogGroup yet.)
    let group = LogGroupRecord {
        name: req.log_group_name,
        created_at: now_ms(),
        retention_days: None,
        class: req.log_group_class.unwrap_or_default().as_str().to_owned(),
        stored_bytes: 0,
    };
    match call.logs().create_log_group(&group).await {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict) => {
            Err(ApiError::logs("ResourceAlreadyExistsException", "The specified log group already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(call: &Call<'_>, req: DeleteLogGroupRequest) -> Result<(), ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    match call.logs().delete_log_group(&req.log_group_name).await? {
        true => Ok(()),
        false => Err(group_not_found()),
    }
}

pub async fn describe(call: &Call<'_>, req: DescribeLogGroupsRequest) -> Result<DescribeLogGroupsResponse, ApiError> {
    // Members Berth does not serve yet are refused, not ignored: ignoring
    // them would answer a different question.
    let unsupported = [
        ("logGroupNamePattern", req.log_group_name_pattern.as_ref().is_some_and(|p| !p.is_empty())),
        ("logGroupIdentifiers", req.log_group_identifiers.is_some()),
        ("logGroupClass", req.log_group_class.is_some()),
        ("accountIdentifiers", req.account_identifiers.as_ref().is_some_and(|a| !a.is_empty())),
        ("includeLinkedAccounts", req.include_linked_accounts == Some(true)),
    ];
    if let Some((member, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(invalid(format!("Berth does not support {member} in DescribeLogGroups yet.")));
    }
    let prefix = req.log_group_name_prefix.as_deref();
    if let Some(prefix) = prefix {
        check_group_name("logGroupNamePrefix", prefix)?;
    }
    let limit = limit(req.limit, MAX_GROUPS, MAX_GROUPS)?;
    let after = paging::decode::<String>(req.next_token.as_deref())?;
    let rows = call.logs().list_log_groups(prefix, Page { after, limit: limit + 1 }).await?;
    let (rows, next_token) = paging::finish(rows, limit, |g| g.name.clone());
    Ok(DescribeLogGroupsResponse { log_groups: Some(rows.iter().map(|g| wire(call, g)).collect()), next_token })
}

pub async fn put_retention(call: &Call<'_>, req: PutRetentionPolicyRequest) -> Result<(), ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    if !RETENTION_DAYS.contains(&req.retention_in_days) {
        let values: Vec<String> = RETENTION_DAYS.iter().map(i32::to_string).collect();
        return Err(constraint(
            "retentionInDays",
            &req.retention_in_days.to_string(),
            &format!("satisfy enum value set: [{}]", values.join(", ")),
        ));
    }
    match call.logs().set_log_group_retention(&req.log_group_name, Some(i64::from(req.retention_in_days))).await? {
        true => Ok(()),
        false => Err(group_not_found()),
    }
}

pub async fn delete_retention(call: &Call<'_>, req: DeleteRetentionPolicyRequest) -> Result<(), ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    match call.logs().set_log_group_retention(&req.log_group_name, None).await? {
        true => Ok(()),
        false => Err(group_not_found()),
    }
}

fn wire(call: &Call<'_>, g: &LogGroupRecord) -> LogGroup {
    let arn = call.group_arn(&g.name);
    LogGroup {
        log_group_name: Some(g.name.clone()),
        creation_time: Some(g.created_at),
        retention_in_days: g.retention_days.and_then(|d| i32::try_from(d).ok()),
        metric_filter_count: Some(0),
        arn: Some(format!("{arn}:*")),
        stored_bytes: Some(g.stored_bytes),
        log_group_class: g.class.parse().ok(),
        log_group_arn: Some(arn),
        deletion_protection_enabled: Some(false),
        ..LogGroup::default()
    }
}
