//! PutLogEvents and GetLogEvents.
//!
//! GetLogEvents pages like CloudWatch: a token is a position between two
//! events of the stream and the way to read from it — `f/<40 digits>`
//! forward (the earliest events at or after it), `b/<40 digits>` backward
//! (the latest events before it). A page's `nextForwardToken` is the
//! position just after its last event, its `nextBackwardToken` the
//! position of its first; a page with no events gives back the token it
//! was asked with, which is how clients know they have reached the end.
//! Without a token the read starts at the head (`startFromHead`) or, by
//! default, ends at the tail.

use berth_store::{Direction, EventRange, LOG_EVENT_OVERHEAD_BYTES, NewLogEvent, StoreError, StreamPosition};
use berth_wire::logs::{
    GetLogEventsRequest, GetLogEventsResponse, OutputLogEvent, PutLogEventsRequest, PutLogEventsResponse,
    RejectedLogEventsInfo,
};

use super::{
    Call, check_group_name, check_stream_name, check_time, constraint, group_not_found, group_of, invalid, limit,
    now_ms, stream_not_found,
};
use crate::ApiError;

/// PutLogEvents' limits: events per batch, bytes per batch and per event
/// (message bytes plus 26 each, as CloudWatch counts them).
pub(super) const MAX_BATCH_EVENTS: usize = 10_000;
pub(super) const MAX_BATCH_BYTES: u64 = 1_048_576;
pub(super) const MAX_EVENT_BYTES: u64 = 262_144;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Events older than this, or further ahead than `MAX_AHEAD_MS`, are
/// rejected (and the rest of the batch is stored).
const MAX_AGE_MS: i64 = 14 * DAY_MS;
const MAX_AHEAD_MS: i64 = 2 * HOUR_MS;
/// The events a batch stores may not span more than this.
const MAX_SPAN_MS: i64 = DAY_MS;

/// GetLogEvents' default and largest page: 10,000 events or 1 MiB.
const MAX_EVENTS: u32 = 10_000;
pub(super) const MAX_RESPONSE_BYTES: u64 = 1_048_576;

pub async fn put(call: &Call<'_>, req: PutLogEventsRequest) -> Result<PutLogEventsResponse, ApiError> {
    check_group_name("logGroupName", &req.log_group_name)?;
    check_stream_name("logStreamName", &req.log_stream_name)?;
    let events = &req.log_events;
    check_batch(events.iter().map(|e| (e.timestamp, e.message.as_str())))?;
    let group = call.logs().get_log_group(&req.log_group_name).await?.ok_or_else(group_not_found)?;

    // Chronological, so the too old are a prefix and the too new a suffix.
    let now = now_ms();
    let too_old_end = events.partition_point(|e| e.timestamp < now.saturating_sub(MAX_AGE_MS));
    let expired_end = group
        .retention_days
        .map_or(0, |days| events.partition_point(|e| e.timestamp < now.saturating_sub(days.saturating_mul(DAY_MS))));
    let too_new_start = events.partition_point(|e| e.timestamp <= now.saturating_add(MAX_AHEAD_MS));
    let start = too_old_end.max(expired_end);
    let accepted = &events[start..too_new_start.max(start)];
    if let (Some(first), Some(last)) = (accepted.first(), accepted.last())
        && last.timestamp - first.timestamp > MAX_SPAN_MS
    {
        return Err(invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours."));
    }
    let new: Vec<NewLogEvent> =
        accepted.iter().map(|e| NewLogEvent { timestamp: e.timestamp, message: e.message.clone() }).collect();
    let stream = match call.logs().put_log_events(&req.log_group_name, &req.log_stream_name, &new, now).await {
        Ok(stream) => stream,
        Err(StoreError::NotFound(_)) => return Err(stream_not_found()),
        Err(e) => return Err(e.into()),
    };
    let index = |i: usize| i32::try_from(i).ok();
    let rejected = RejectedLogEventsInfo {
        too_new_log_event_start_index: (too_new_start < events.len()).then(|| index(too_new_start)).flatten(),
        too_old_log_event_end_index: (too_old_end > 0).then(|| index(too_old_end)).flatten(),
        expired_log_event_end_index: (expired_end > 0).then(|| index(expired_end)).flatten(),
    };
    Ok(PutLogEventsResponse {
        next_sequence_token: Some(sequence_token(stream.next_sequence)),
        rejected_log_events_info: (rejected != RejectedLogEventsInfo::default()).then_some(rejected),
        rejected_entity_info: None,
    })
}

/// The rules a whole batch is refused for: 1 to 10,000 events of 1 byte
/// to 256 KiB each, 1 MiB together, in chronological order.
fn check_batch<'a>(events: impl ExactSizeIterator<Item = (i64, &'a str)>) -> Result<(), ApiError> {
    match events.len() {
        0 => return Err(constraint("logEvents", "[]", "have length greater than or equal to 1")),
        n if n > MAX_BATCH_EVENTS => {
            return Err(invalid(format!(
                "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: \
                 Member must have length less than or equal to {MAX_BATCH_EVENTS}"
            )));
        }
        _ => {}
    }
    let mut total = 0u64;
    let mut previous = i64::MIN;
    for (i, (timestamp, message)) in events.enumerate() {
        let member = |m: &str| format!("logEvents.{}.member.{m}", i + 1);
        if message.is_empty() {
            return Err(constraint(&member("message"), "", "have length greater than or equal to 1"));
        }
        if timestamp < 0 {
            return Err(constraint(&member("timestamp"), &timestamp.to_string(), "have value greater than or equal to 0"));
        }
        let size = message.len() as u64 + LOG_EVENT_OVERHEAD_BYTES;
        if size > MAX_EVENT_BYTES {
            return Err(invalid(format!("Log event too large: {size} bytes exceeds limit of {MAX_EVENT_BYTES}")));
        }
        total += size;
        if timestamp < previous {
            return Err(invalid("Log events in a single PutLogEvents request must be in chronological order."));
        }
        previous = timestamp;
    }
    if total > MAX_BATCH_BYTES {
        return Err(invalid(format!("Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}")));
    }
    Ok(())
}

/// The (ignored) sequence token of a stream, in CloudWatch's 56 digits.
pub(super) fn sequence_token(next_sequence: i64) -> String {
    format!("{next_sequence:056}")
}

pub async fn get(call: &Call<'_>, req: GetLogEventsRequest) -> Result<GetLogEventsResponse, ApiError> {
    let group = group_of(call, req.log_group_name.as_deref(), req.log_group_identifier.as_deref())?;
    check_stream_name("logStreamName", &req.log_stream_name)?;
    check_time("startTime", req.start_time)?;
    check_time("endTime", req.end_time)?;
    let limit = limit(req.limit, MAX_EVENTS, MAX_EVENTS)?;
    let token = req.next_token.as_deref().map(Token::parse).transpose()?;
    if call.logs().get_log_stream(&group, &req.log_stream_name).await?.is_none() {
        return Err(match call.logs().get_log_group(&group).await? {
            Some(_) => stream_not_found(),
            None => group_not_found(),
        });
    }
    // A token says which way to read; startFromHead only chooses the
    // first page's.
    let (direction, from) = match token {
        Some(t) => (t.direction, t.position),
        None if req.start_from_head == Some(true) => (Direction::Forward, StreamPosition::START),
        None => (Direction::Backward, StreamPosition::END),
    };
    let range = EventRange {
        start_time: req.start_time,
        end_time: req.end_time,
        direction,
        from,
        limit,
        max_bytes: MAX_RESPONSE_BYTES,
    };
    let events = call.logs().read_log_events(&group, &req.log_stream_name, &range).await?;
    let (forward, backward) = match (events.first(), events.last(), req.next_token) {
        (Some(first), Some(last), _) => {
            (Token::forward(last.position_after()).to_string(), Token::backward(first.position()).to_string())
        }
        // Nothing there: the token asked with comes back as it was, and
        // the other way starts from the same place.
        (_, _, Some(asked)) => match direction {
            Direction::Forward => (asked, Token::backward(from).to_string()),
            Direction::Backward => (Token::forward(from).to_string(), asked),
        },
        // An empty stream (or time range): both ways from the start, so a
        // reader that follows the forward token sees what comes later.
        (_, _, None) => {
            (Token::forward(StreamPosition::START).to_string(), Token::backward(StreamPosition::START).to_string())
        }
    };
    Ok(GetLogEventsResponse {
        events: Some(
            events
                .into_iter()
                .map(|e| OutputLogEvent {
                    timestamp: Some(e.timestamp),
                    message: Some(e.message),
                    ingestion_time: Some(e.ingestion_time),
                })
                .collect(),
        ),
        next_forward_token: Some(forward),
        next_backward_token: Some(backward),
    })
}

/// A GetLogEvents token: a way to read and a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    direction: Direction,
    position: StreamPosition,
}

impl Token {
    fn forward(position: StreamPosition) -> Self {
        Self { direction: Direction::Forward, position }
    }

    fn backward(position: StreamPosition) -> Self {
        Self { direction: Direction::Backward, position }
    }

    /// `f/` or `b/` and 40 digits (CloudWatch's own tokens end in `/s`;
    /// that is accepted too).
    fn parse(token: &str) -> Result<Self, ApiError> {
        let bad = || invalid("The specified nextToken is invalid.");
        let (direction, rest) = match token.split_at_checked(2) {
            Some(("f/", rest)) => (Direction::Forward, rest),
            Some(("b/", rest)) => (Direction::Backward, rest),
            _ => return Err(bad()),
        };
        let digits = rest.strip_suffix("/s").unwrap_or(rest);
        if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let (time, sequence) = digits.split_at(20);
        let time: u64 = time.parse().map_err(|_| bad())?;
        let sequence: i64 = sequence.parse().map_err(|_| bad())?;
        // Timestamps are offset by 2^63, so digits order like positions.
        Ok(Self { direction, position: StreamPosition { timestamp: (time ^ (1 << 63)) as i64, sequence } })
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let way = match self.direction {
            Direction::Forward => 'f',
            Direction::Backward => 'b',
        };
        let time = (self.position.timestamp as u64) ^ (1 << 63);
        write!(f, "{way}/{time:020}{:020}", self.position.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_look_like_cloudwatch() {
        let start = Token::forward(StreamPosition::START).to_string();
        assert_eq!(start, format!("f/{}", "0".repeat(40)));
        for position in [
            StreamPosition::START,
            StreamPosition::END,
            StreamPosition { timestamp: 1_767_225_600_000, sequence: 41 },
            StreamPosition { timestamp: -5, sequence: 0 },
        ] {
            for token in [Token::forward(position), Token::backward(position)] {
                let text = token.to_string();
                assert_eq!(text.len(), 42, "{text}");
                assert_eq!(Token::parse(&text).ok(), Some(token));
                assert_eq!(Token::parse(&format!("{text}/s")).ok(), Some(token));
            }
        }
        let a = Token::forward(StreamPosition { timestamp: -1, sequence: 9 }).to_string();
        let b = Token::forward(StreamPosition { timestamp: 0, sequence: 0 }).to_string();
        assert!(a < b, "digits order like positions");
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for bad in ["", "f/", "x/0000000000000000000000000000000000000000", "f/123", "f/abc", &format!("f/{}", "9".repeat(40))]
        {
            assert!(Token::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn batch(events: &[(i64, &str)]) -> Result<(), ApiError> {
        check_batch(events.iter().copied())
    }

    #[test]
    fn batches_follow_cloudwatch_limits() {
        assert!(batch(&[(1, "a"), (1, "b"), (2, "c")]).is_ok());
        assert!(batch(&[]).is_err());
        assert!(batch(&[(2, "a"), (1, "b")]).is_err(), "chronological");
        assert!(batch(&[(1, "")]).is_err());
        assert!(batch(&[(-1, "a")]).is_err());
        let biggest = "x".repeat((MAX_EVENT_BYTES - LOG_EVENT_OVERHEAD_BYTES) as usize);
        assert!(batch(&[(1, &biggest)]).is_ok());
        let too_big = format!("{biggest}x");
        let e = batch(&[(1, &too_big)]).expect_err("too large");
        assert!(e.to_string().contains("262145 bytes exceeds limit of 262144"), "{e}");
        // Four of the biggest events are 1,048,576 bytes: the limit exactly.
        assert!(batch(&[(1, &biggest), (1, &biggest), (1, &biggest), (1, &biggest)]).is_ok());
        let e = batch(&[(1, &biggest), (1, &biggest), (1, &biggest), (1, &biggest), (1, "y")]).expect_err("too large");
        assert!(e.to_string().contains("Upload too large: 1048603 bytes"), "{e}");
        let many: Vec<(i64, &str)> = (0..=MAX_BATCH_EVENTS as i64).map(|i| (i, "m")).collect();
        assert!(batch(&many).is_err());
        assert!(batch(&many[..MAX_BATCH_EVENTS]).is_ok());
    }
}
