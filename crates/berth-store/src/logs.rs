//! CloudWatch Logs data: the [`LogStore`] trait and what it reads and
//! writes. Plain columns, append-only events numbered per stream, no
//! versions (see the crate's documentation).

use async_trait::async_trait;

use crate::{Page, StoreError};

/// What one event costs against the byte limits of the Logs API: its
/// message's UTF-8 bytes plus this (PutLogEvents' batch rule, also used
/// for the size of GetLogEvents and FilterLogEvents responses).
pub const LOG_EVENT_OVERHEAD_BYTES: u64 = 26;

/// A log group. Times are milliseconds since the epoch, as Logs writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupRecord {
    pub name: String,
    pub created_at: i64,
    /// `None`: events never expire.
    pub retention_days: Option<i64>,
    /// `STANDARD` or `INFREQUENT_ACCESS` (as given to CreateLogGroup).
    pub class: String,
    /// Message bytes stored in the group's streams (ignored when creating).
    pub stored_bytes: i64,
}

/// A log stream of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamRecord {
    pub group: String,
    pub name: String,
    pub created_at: i64,
    /// Earliest and latest event `timestamp` stored (`None` while empty;
    /// after expiry the first moves up, the last stays).
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    /// Sum of the stored events' message bytes (UTF-8).
    pub stored_bytes: i64,
    /// The sequence number the next event appended will get: events are
    /// numbered 0, 1, 2... per stream in the order they arrived.
    pub next_sequence: i64,
}

/// An event to append: its own time (ms) and text (any text, NUL included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogEvent {
    pub timestamp: i64,
    pub message: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEventRecord {
    /// The name of the stream it belongs to.
    pub stream: String,
    pub timestamp: i64,
    pub sequence: i64,
    pub ingestion_time: i64,
    pub message: String,
    /// Where the event sits in its group's order.
    pub key: EventKey,
}

impl LogEventRecord {
    /// The position just before this event in its stream.
    pub fn position(&self) -> StreamPosition {
        StreamPosition { timestamp: self.timestamp, sequence: self.sequence }
    }

    /// The position just after this event in its stream.
    pub fn position_after(&self) -> StreamPosition {
        StreamPosition { timestamp: self.timestamp, sequence: self.sequence.saturating_add(1) }
    }
}

/// A place in one stream, between events. Events are ordered by
/// (timestamp, sequence), and the position (t, s) comes just before the
/// event (t, s), after every event ordered before it. (Sequence numbers
/// are whole numbers, so (t, s + 1) is just after the event (t, s).)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamPosition {
    pub timestamp: i64,
    pub sequence: i64,
}

impl StreamPosition {
    /// Before every event.
    pub const START: Self = Self { timestamp: i64::MIN, sequence: 0 };
    /// After every event.
    pub const END: Self = Self { timestamp: i64::MAX, sequence: i64::MAX };
}

/// Which way `read_log_events` reads from its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The earliest events at or after the position.
    Forward,
    /// The latest events before the position.
    Backward,
}

/// A read of one stream (GetLogEvents, `berth logs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRange {
    /// Only events with `start_time <= timestamp < end_time`.
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub direction: Direction,
    /// Where to read from: forward from [`StreamPosition::START`] reads
    /// from the beginning, backward from [`StreamPosition::END`] from the end.
    pub from: StreamPosition,
    /// At most this many events...
    pub limit: u32,
    /// ...costing at most this many bytes (message bytes plus
    /// [`LOG_EVENT_OVERHEAD_BYTES`] each), but always at least one event.
    pub max_bytes: u64,
}

/// An event's place in its group's order: (timestamp, stream, sequence).
/// The stream is the store's own number for it, so keys are only worth
/// anything as opaque resume points.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct EventKey {
    pub timestamp: i64,
    pub stream_id: i64,
    pub sequence: i64,
}

/// A search of a group's events (FilterLogEvents).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    /// Only these streams (`None`: all of the group's).
    pub stream_names: Option<Vec<String>>,
    /// Only streams whose name starts with this.
    pub stream_prefix: Option<String>,
    /// Only events with `start_time <= timestamp < end_time`.
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Resume strictly after this event.
    pub after: Option<EventKey>,
    /// At most this many matching events...
    pub limit: u32,
    /// ...costing at most this many bytes (as in [`EventRange::max_bytes`]).
    pub max_bytes: u64,
    /// At most this many events are looked at in one call.
    pub scan_limit: u32,
}

/// Events a filter matched, and where to resume if it stopped early
/// (`None`: everything in range was searched).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilteredEvents {
    pub events: Vec<LogEventRecord>,
    pub resume_after: Option<EventKey>,
}

/// The order of DescribeLogStreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogStreamOrder {
    #[default]
    Name,
    /// By the latest event's timestamp (streams without events first), then name.
    LastEventTime,
}

/// A listing of a group's streams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogStreamQuery {
    /// Only streams whose name starts with this.
    pub prefix: Option<String>,
    pub order: LogStreamOrder,
    pub descending: bool,
}

/// Where a stream listing resumes: the last stream's sort key
/// (its `last_event_timestamp`, or -1 without events, when ordering by
/// time; ignored when ordering by name) and its name.
pub type LogStreamCursor = (i64, String);

/// CloudWatch Logs data: groups, streams and their events. Implementations
/// must make each method atomic: it either applies whole or not at all.
///
/// A writer of logs (the awslogs shipper) does, per container:
/// ```text
/// create_log_group(..)  — only if asked to create it; `Conflict`: it exists
/// create_log_stream(..) — `Conflict`: it exists, append to it
/// put_log_events(..)    — repeatedly, a batch at a time
/// ```
///
/// The store takes any events (any size, any order); the Logs API's own
/// rules (order, sizes, age) are checked by berth-api for its clients.
/// Readers: read_log_events pages one stream either way from a position;
/// filter_log_events searches a group's streams.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Creates a group (its `stored_bytes` is ignored); `Conflict` if one
    /// of that name exists.
    async fn create_log_group(&self, group: &LogGroupRecord) -> Result<LogGroupRecord, StoreError>;
    async fn get_log_group(&self, name: &str) -> Result<Option<LogGroupRecord>, StoreError>;
    /// Deletes a group with its streams and events; `false` if there was none.
    async fn delete_log_group(&self, name: &str) -> Result<bool, StoreError>;
    /// Groups whose name starts with `prefix`, ordered by name (code
    /// point), page key = name.
    async fn list_log_groups(&self, prefix: Option<&str>, page: Page<String>) -> Result<Vec<LogGroupRecord>, StoreError>;
    /// Sets (or with `None` removes) a group's retention in days; `false`
    /// if there is no such group.
    async fn set_log_group_retention(&self, name: &str, days: Option<i64>) -> Result<bool, StoreError>;

    /// Creates an empty stream in `group`. `NotFound` if the group does
    /// not exist, `Conflict` if the stream does.
    async fn create_log_stream(&self, group: &str, name: &str, created_at: i64) -> Result<LogStreamRecord, StoreError>;
    async fn get_log_stream(&self, group: &str, name: &str) -> Result<Option<LogStreamRecord>, StoreError>;
    /// Deletes a stream with its events; `false` if there was none.
    async fn delete_log_stream(&self, group: &str, name: &str) -> Result<bool, StoreError>;
    /// A group's streams in `query`'s order (empty if the group does not
    /// exist), page key = [`LogStreamCursor`] of the last stream.
    async fn list_log_streams(
        &self,
        group: &str,
        query: &LogStreamQuery,
        page: Page<LogStreamCursor>,
    ) -> Result<Vec<LogStreamRecord>, StoreError>;
    /// Appends `events` to a stream atomically: they take the stream's
    /// next sequence numbers in the order given, and the stream's first
    /// and last event timestamps, ingestion time and stored bytes move in
    /// the same transaction. Appends to one stream are serialised; returns
    /// the stream after this write. `NotFound` if the group or stream does
    /// not exist. An empty batch changes nothing.
    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[NewLogEvent],
        ingestion_time: i64,
    ) -> Result<LogStreamRecord, StoreError>;
    /// Events of one stream in (timestamp, sequence) order, read from
    /// `range.from` in its direction (see [`EventRange`]); always returned
    /// earliest first. Empty if the stream does not exist.
    async fn read_log_events(&self, group: &str, stream: &str, range: &EventRange) -> Result<Vec<LogEventRecord>, StoreError>;
    /// Events of a group's streams in (timestamp, stream, sequence) order
    /// whose message `matches` accepts, looking at no more than
    /// `filter.scan_limit` events. Empty if the group does not exist.
    async fn filter_log_events(
        &self,
        group: &str,
        filter: &EventFilter,
        matches: &(dyn for<'m> Fn(&'m str) -> bool + Send + Sync),
    ) -> Result<FilteredEvents, StoreError>;
    /// Deletes the events of every group with a retention whose timestamp
    /// is older than `now_ms` minus that many days, a few thousand per
    /// transaction, and brings the streams' first timestamps and stored
    /// bytes down with them. Streams stay, even when emptied. Returns how
    /// many events went.
    async fn expire_log_events(&self, now_ms: i64) -> Result<u64, StoreError>;
}
