//! EventBridge Scheduler (`scheduler`, REST-JSON), served minimally to
//! prove the REST-JSON path: ListSchedules (Berth keeps no schedules yet,
//! so the list is empty; its filters are checked as Scheduler checks
//! them), GetSchedule (so every schedule is not found), and
//! ListScheduleGroups (the `default` group every account has). Schedules
//! themselves are issue 17.

use berth_wire::scheduler::{
    Action, GetScheduleInput, ListScheduleGroupsInput, ListScheduleGroupsOutput, ListSchedulesInput, ListSchedulesOutput, Output,
    ScheduleGroupState, ScheduleGroupSummary,
};

use crate::{Api, ApiError};

/// The group every account has, which cannot be deleted.
const DEFAULT_GROUP: &str = "default";

pub(crate) struct Call<'a> {
    pub api: &'a Api,
    /// When the calling access key was made: Berth keeps no account
    /// record older than its keys, so the default group dates from then.
    pub key_created_at: i64,
}

pub(crate) async fn dispatch(call: &Call<'_>, action: Action) -> Result<Output, ApiError> {
    match action {
        Action::ListSchedules(r) => list_schedules(r).map(Output::ListSchedules),
        Action::GetSchedule(r) => get_schedule(r).map(Output::GetSchedule),
        Action::ListScheduleGroups(r) => list_schedule_groups(call, r).map(Output::ListScheduleGroups),
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::service("ValidationException", message)
}

/// A name or name prefix: 1 to 64 of `[0-9a-zA-Z-_.]`.
fn check_name(what: &str, value: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{what}' failed to satisfy constraint: Member must be 1 to 64 \
             characters of [0-9a-zA-Z-_.]"
        )))
    }
}

fn check_page(max_results: Option<i32>, next_token: Option<&String>) -> Result<(), ApiError> {
    if let Some(n) = max_results
        && !(1..=100).contains(&n)
    {
        return Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value \
             between 1 and 100"
        )));
    }
    if next_token.is_some() {
        // No list was ever cut into pages, so no token is one of ours.
        return Err(invalid("The NextToken is not one this API returned.".into()));
    }
    Ok(())
}

fn list_schedules(r: ListSchedulesInput) -> Result<ListSchedulesOutput, ApiError> {
    check_page(r.max_results, r.next_token.as_ref())?;
    if let Some(p) = &r.name_prefix {
        check_name("namePrefix", p)?;
    }
    if let Some(g) = &r.group_name {
        check_name("groupName", g)?;
    }
    // `State` is read as the ScheduleState enum by the generated code.
    Ok(ListSchedulesOutput { schedules: Vec::new(), next_token: None })
}

fn get_schedule(r: GetScheduleInput) -> Result<berth_wire::scheduler::GetScheduleOutput, ApiError> {
    check_name("name", &r.name)?;
    let group = r.group_name.as_deref().unwrap_or(DEFAULT_GROUP);
    check_name("groupName", group)?;
    Err(ApiError::service("ResourceNotFoundException", format!("Schedule {group}/{} does not exist.", r.name)))
}

fn list_schedule_groups(call: &Call<'_>, r: ListScheduleGroupsInput) -> Result<ListScheduleGroupsOutput, ApiError> {
    check_page(r.max_results, r.next_token.as_ref())?;
    if let Some(p) = &r.name_prefix {
        check_name("namePrefix", p)?;
    }
    let account = call.api.account();
    let created = call.key_created_at as f64;
    let default = ScheduleGroupSummary {
        arn: Some(format!("arn:aws:scheduler:{}:{}:schedule-group/{DEFAULT_GROUP}", account.region, account.account_id)),
        name: Some(DEFAULT_GROUP.into()),
        state: Some(ScheduleGroupState::Active),
        creation_date: Some(created),
        last_modification_date: Some(created),
    };
    let groups = if r.name_prefix.as_deref().is_none_or(|p| DEFAULT_GROUP.starts_with(p)) { vec![default] } else { vec![] };
    Ok(ListScheduleGroupsOutput { schedule_groups: groups, next_token: None })
}
