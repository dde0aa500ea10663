//! FilterLogEvents: a group's events, from all or some of its streams,
//! matching a filter pattern ([`super::pattern`]), interleaved in time
//! order, with an opaque `nextToken` (the last event looked at).

use berth_store::{EventFilter, EventKey};
use berth_wire::logs::{FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent};

use super::events::MAX_RESPONSE_BYTES;
use super::pattern::FilterPattern;
use super::{Call, check_stream_name, check_time, constraint, group_not_found, group_of, invalid, limit};
use crate::{ApiError, paging};

/// FilterLogEvents' default and largest page.
const MAX_EVENTS: u32 = 10_000;
/// How many events one call looks at, at most: a page may be partly full,
/// or empty with a `nextToken`, as CloudWatch's may.
const SCAN_LIMIT: u32 = 50_000;
const MAX_STREAM_NAMES: usize = 100;
const MAX_PATTERN: usize = 1024;

pub async fn filter(call: &Call<'_>, req: FilterLogEventsRequest) -> Result<FilterLogEventsResponse, ApiError> {
    let group = group_of(call, req.log_group_name.as_deref(), req.log_group_identifier.as_deref())?;
    if req.log_stream_names.is_some() && req.log_stream_name_prefix.is_some() {
        return Err(invalid("logStreamNames and logStreamNamePrefix cannot both be specified."));
    }
    if let Some(names) = &req.log_stream_names {
        if names.is_empty() || names.len() > MAX_STREAM_NAMES {
            return Err(constraint(
                "logStreamNames",
                &format!("{} names", names.len()),
                "have length between 1 and 100",
            ));
        }
        for name in names {
            check_stream_name("logStreamNames.member", name)?;
        }
    }
    if let Some(prefix) = &req.log_stream_name_prefix {
        check_stream_name("logStreamNamePrefix", prefix)?;
    }
    check_time("startTime", req.start_time)?;
    check_time("endTime", req.end_time)?;
    let limit = limit(req.limit, MAX_EVENTS, MAX_EVENTS)?;
    let pattern = req.filter_pattern.as_deref().unwrap_or("");
    if pattern.chars().count() > MAX_PATTERN {
        return Err(constraint("filterPattern", "...", "have length less than or equal to 1024"));
    }
    let pattern = FilterPattern::parse(pattern).map_err(|e| invalid(e.to_string()))?;
    let after = paging::decode::<EventKey>(req.next_token.as_deref())?;
    if call.logs().get_log_group(&group).await?.is_none() {
        return Err(group_not_found());
    }
    let filter = EventFilter {
        stream_names: req.log_stream_names,
        stream_prefix: req.log_stream_name_prefix,
        start_time: req.start_time,
        // FilterLogEvents' endTime is inclusive (GetLogEvents' is not).
        end_time: req.end_time.map(|t| t.saturating_add(1)),
        after,
        limit,
        max_bytes: MAX_RESPONSE_BYTES,
        scan_limit: SCAN_LIMIT,
    };
    let found = call.logs().filter_log_events(&group, &filter, &|m| pattern.matches(m)).await?;
    Ok(FilterLogEventsResponse {
        events: Some(
            found
                .events
                .into_iter()
                .map(|e| FilteredLogEvent {
                    event_id: Some(event_id(&e.key)),
                    log_stream_name: Some(e.stream),
                    timestamp: Some(e.timestamp),
                    message: Some(e.message),
                    ingestion_time: Some(e.ingestion_time),
                })
                .collect(),
        ),
        // "As of May 15, 2020, this parameter is no longer supported. This
        // parameter returns an empty list." (CloudWatch's API reference)
        searched_log_streams: Some(vec![]),
        next_token: found.resume_after.map(|key| paging::encode(&key)),
    })
}

/// A 56-digit event id, unique in the account: time, stream, sequence.
fn event_id(key: &EventKey) -> String {
    let time = (key.timestamp as u64) ^ (1 << 63);
    format!("{time:020}{:020}{:016}", key.stream_id, key.sequence)
}
