//! CreateLogStream, DeleteLogStream, DescribeLogStreams.

use berth_store::{LogStreamCursor, LogStreamOrder, LogStreamQuery, LogStreamRecord, Page, StoreError};
use berth_wire::logs::{
    CreateLogStreamRequest, DeleteLogStreamRequest, DescribeLogStreamsRequest, DescribeLogStreamsResponse, LogStream,
    OrderBy,
};

use super::{Call, check_group_name, check_stream_name, group_not_found, group_of, invalid, limit, now_ms, stream_not_found};
use crate::{ApiError, paging};

/// DescribeLogStreams' default and largest page.
const MAX_STREAMS: u32 = 50;

pub async fn create(call: &Call<'_>, req: CreateLogStreamRequest) -> Result<(), ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    check_stream_name("logStreamName", &req.log_stream_name)?;
    match call.logs().create_log_stream(&req.log_group_name, &req.log_stream_name, now_ms()).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(group_not_found()),
        Err(StoreError::Conflict) => {
            Err(ApiError::logs("ResourceAlreadyExistsException", "The specified log stream already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(call: &Call<'_>, req: DeleteLogStreamRequest) -> Result<(), ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    check_stream_name("logStreamName", &req.log_stream_name)?;
    if call.logs().delete_log_stream(&req.log_group_name, &req.log_stream_name).await? {
        return Ok(());
    }
    match call.logs().get_log_group(&req.log_group_name).await? {
        Some(_) => Err(stream_not_found()),
        None => Err(group_not_found()),
    }
}

pub async fn describe(call: &Call<'_>, req: DescribeLogStreamsRequest) -> Result<DescribeLogStreamsResponse, ApiError> {
    let group = group_of(call, req.log_group_name.as_deref(), req.log_group_identifier.as_deref())?;
    if let Some(prefix) = &req.log_stream_name_prefix {
        check_stream_name("logStreamNamePrefix", prefix)?;
    }
    let order = match req.order_by.unwrap_or_default() {
        OrderBy::LogStreamName => LogStreamOrder::Name,
        OrderBy::LastEventTime if req.log_stream_name_prefix.is_some() => {
            return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
        }
        OrderBy::LastEventTime => LogStreamOrder::LastEventTime,
    };
    let limit = limit(req.limit, MAX_STREAMS, MAX_STREAMS)?;
    let after = paging::decode::<LogStreamCursor>(req.next_token.as_deref())?;
    if call.logs().get_log_group(&group).await?.is_none() {
        return Err(group_not_found());
    }
    let query = LogStreamQuery { prefix: req.log_stream_name_prefix, order, descending: req.descending.unwrap_or(false) };
    let rows = call.logs().list_log_streams(&group, &query, Page { after, limit: limit + 1 }).await?;
    let (rows, next_token) =
        paging::finish(rows, limit, |s| (s.last_event_timestamp.unwrap_or(-1), s.name.clone()));
    Ok(DescribeLogStreamsResponse { log_streams: Some(rows.iter().map(|s| wire(call, s)).collect()), next_token })
}

fn wire(call: &Call<'_>, s: &LogStreamRecord) -> LogStream {
    LogStream {
        log_stream_name: Some(s.name.clone()),
        creation_time: Some(s.created_at),
        first_event_timestamp: s.first_event_timestamp,
        last_event_timestamp: s.last_event_timestamp,
        last_ingestion_time: s.last_ingestion_time,
        // Ignored by PutLogEvents, as on CloudWatch; given once there are events.
        upload_sequence_token: (s.next_sequence > 0).then(|| super::events::sequence_token(s.next_sequence)),
        arn: Some(format!("{}:log-stream:{}", call.group_arn(&s.group), s.name)),
        // "No longer supported for log streams, and is always reported as
        // zero" (CloudWatch); the group's storedBytes is the real sum.
        stored_bytes: Some(0),
    }
}
