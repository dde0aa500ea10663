//! Persistence of Berth's model with optimistic concurrency.
//!
//! One [`Store`] trait, two backends over one schema: SQLite in the data
//! dir (the embedded default) and PostgreSQL (fleets). Every record is
//! stored as JSON carrying a `formatVersion`, beside the columns it is
//! looked up and listed by, and a `version` that each write checks and
//! bumps: a write that names a stale version fails with
//! [`StoreError::Conflict`] and changes nothing, so callers re-read and
//! retry. Tasks, nodes and services are the domain's typed objects
//! (`berth-model`); task definitions and clusters keep their ECS shape
//! (the user's documents, returned as registered). A row of an older
//! format is read through that format's reader; one of a newer format is
//! refused ([`StoreError::FormatTooNew`]), never misread.
//!
//! CloudWatch Logs data (groups, streams, events) is different: plain
//! columns, append-only events numbered per stream, and no versions —
//! writes that must not interleave (appends to one stream, deleting what
//! is being appended to) are serialised by row locks instead.
//!
//! The same test suite (`tests/store.rs`) runs against both backends.

use async_trait::async_trait;
use berth_model::network::{SecurityGroupRecord, SubnetRecord};
use berth_model::lifecycle::DesiredStatus;
use berth_model::node::Node;
use berth_model::records::TaskDefinitionRecord;
use berth_model::service::Service;
use berth_model::task::Task;
use berth_wire::ecs::Cluster;

mod backend;

pub use backend::open;

/// A stored record and the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: i64,
    pub value: T,
}

/// What went wrong in the store. Internal details (SQL, paths) are kept
/// for logs; the API shows clients only a generic server error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record changed since it was read (or already exists).
    #[error("the record was changed by another writer")]
    Conflict,
    /// A record the write depends on does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The record lacks the member it is stored under (e.g. `clusterName`).
    #[error("the record has no {0}")]
    MissingKey(&'static str),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A conditional write's own check said no (e.g. no capacity left).
    #[error("the write was rejected by its check")]
    Rejected,
    #[error("stored record is not valid JSON")]
    Corrupt(#[from] serde_json::Error),
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A row written by a newer Berth, in a format this one does not know.
    #[error("stored record has format {found}, newer than this Berth knows ({known}): upgrade Berth")]
    FormatTooNew { found: u64, known: u64 },
    /// A stored record this code cannot read as any format it knows.
    #[error("stored record is unreadable: {0}")]
    Format(String),
}

/// Which page of a listing to read: records strictly after `after` in the
/// listing's order, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<K> {
    pub after: Option<K>,
    pub limit: u32,
}

/// Sort order of task definition listings (by family, then revision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// Filters of ListTaskDefinitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskDefinitionFilter {
    /// Only this family (ECS's `familyPrefix` there is a whole family name).
    pub family: Option<String>,
    /// Only revisions with this status (`ACTIVE`, `INACTIVE`,
    /// `DELETE_IN_PROGRESS`); `None` means all.
    pub status: Option<String>,
    pub sort: SortOrder,
}

/// Which families ListTaskDefinitionFamilies returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FamilyStatus {
    /// Families with at least one ACTIVE revision.
    Active,
    /// Families with no ACTIVE revision.
    Inactive,
    #[default]
    All,
}

/// Filters of ListTasks (and of an agent's own view). `None` means any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskFilter {
    pub cluster_arn: Option<String>,
    pub family: Option<String>,
    pub started_by: Option<String>,
    /// ECS's task `group` (`service:NAME` for a service's tasks).
    pub group: Option<String>,
    pub desired_status: Option<DesiredStatus>,
    pub launch_type: Option<String>,
    pub node_id: Option<String>,
    /// Leave out tasks whose lastStatus is STOPPED.
    pub live_only: bool,
}

/// A node and what its live tasks reserve on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUsage {
    pub node: Node,
    pub cpu_used: u32,
    pub memory_used: u32,
    pub tasks: u32,
}

/// A stored API access key (SigV4). The secret is needed in the clear to
/// verify signatures; the store file is only readable by its owner.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Seconds since the epoch.
    pub created_at: i64,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// How many live things a cluster holds (DeleteCluster refuses while any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterUsage {
    /// Services whose status is ACTIVE or DRAINING.
    pub active_services: i64,
    /// Tasks whose lastStatus is not STOPPED.
    pub live_tasks: i64,
    /// Tasks whose lastStatus is RUNNING.
    pub running_tasks: i64,
    /// Tasks whose lastStatus is PROVISIONING, PENDING or ACTIVATING.
    pub pending_tasks: i64,
}

// --- CloudWatch Logs ---

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

/// Persistence of Berth's model. Implementations must make each method
/// atomic: it either applies whole or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- clusters (keyed by name) ---

    /// Inserts a new cluster at version 1. If a cluster of that name
    /// exists (in any status), fails with `Conflict`.
    async fn insert_cluster(&self, cluster: &Cluster) -> Result<Versioned<Cluster>, StoreError>;
    async fn get_cluster(&self, name: &str) -> Result<Option<Versioned<Cluster>>, StoreError>;
    /// Replaces a cluster if its stored version is `expected_version`;
    /// returns it at the next version. `Conflict` otherwise.
    async fn update_cluster(&self, cluster: &Cluster, expected_version: i64) -> Result<Versioned<Cluster>, StoreError>;
    /// Clusters ordered by name, optionally only those with `status`.
    async fn list_clusters(&self, status: Option<&str>, page: Page<String>) -> Result<Vec<Versioned<Cluster>>, StoreError>;
    /// Live tasks and active services of a cluster, by cluster ARN.
    async fn cluster_usage(&self, cluster_arn: &str) -> Result<ClusterUsage, StoreError>;

    // --- task definitions (keyed by family and revision) ---

    /// Registers the next revision of `family`: atomically takes the
    /// family's next revision number (never reused, even after deletion),
    /// calls `build(revision)` and stores the result at version 1.
    /// (A record is the wire `TaskDefinition` plus its tags, which ECS
    /// keeps beside the definition.) The stored definition's `family` and
    /// `revision` are `family` and that number, whatever `build` put
    /// there; a missing `status` becomes ACTIVE.
    async fn register_task_definition(
        &self,
        family: &str,
        build: &(dyn Fn(i32) -> TaskDefinitionRecord + Send + Sync),
    ) -> Result<Versioned<TaskDefinitionRecord>, StoreError>;
    async fn get_task_definition(&self, family: &str, revision: i32) -> Result<Option<Versioned<TaskDefinitionRecord>>, StoreError>;
    /// The highest ACTIVE revision of a family.
    async fn latest_active_task_definition(&self, family: &str) -> Result<Option<Versioned<TaskDefinitionRecord>>, StoreError>;
    /// Replaces a task definition (status, tags) if its stored version is
    /// `expected_version`. `Conflict` otherwise.
    async fn update_task_definition(
        &self,
        record: &TaskDefinitionRecord,
        expected_version: i64,
    ) -> Result<Versioned<TaskDefinitionRecord>, StoreError>;
    /// Task definitions in (family, revision) order, page key = (family, revision).
    async fn list_task_definitions(
        &self,
        filter: &TaskDefinitionFilter,
        page: Page<(String, i32)>,
    ) -> Result<Vec<Versioned<TaskDefinitionRecord>>, StoreError>;
    /// Family names starting with `prefix`, ordered by name.
    async fn list_task_definition_families(
        &self,
        prefix: Option<&str>,
        status: FamilyStatus,
        page: Page<String>,
    ) -> Result<Vec<String>, StoreError>;

    // --- nodes ---

    /// Registers a node or refreshes it (capacity, status, heartbeat). The
    /// node's agent owns its record, so this writes without a version check.
    async fn upsert_node(&self, node: &Node) -> Result<(), StoreError>;
    async fn get_node(&self, id: &str) -> Result<Option<Node>, StoreError>;
    /// Every node, with what its live tasks reserve on it.
    async fn list_nodes(&self) -> Result<Vec<NodeUsage>, StoreError>;

    // --- tasks ---

    /// The applier of a placement: in one transaction, reads `node_id`'s
    /// record and what its live tasks (not STOPPED) reserve, asks
    /// `fits(node, used)` and inserts the task only if it does. Placements
    /// on one node are serialised, so a stale snapshot can never
    /// over-commit it. `NotFound` if the node is unknown; `Rejected` if
    /// `fits` said no; `Conflict` if the task exists.
    async fn place_task(
        &self,
        record: &Task,
        node_id: &str,
        fits: &(dyn for<'u> Fn(&'u NodeUsage) -> bool + Send + Sync),
    ) -> Result<Versioned<Task>, StoreError>;
    /// Inserts or replaces a task keyed by its ARN. `expected_version`
    /// `None` means "must not exist yet".
    async fn put_task(&self, record: &Task, expected_version: Option<i64>) -> Result<Versioned<Task>, StoreError>;
    /// Notices of task changes written through this store (the task's ARN,
    /// after each placement or update commits), so agents and drivers react
    /// at once instead of polling. In-process only: a watcher must still
    /// re-read now and then for changes other processes make (a fleet on
    /// PostgreSQL). `Lagged` means notices were missed: re-read everything.
    fn watch_tasks(&self) -> tokio::sync::broadcast::Receiver<String>;
    /// Several tasks in one read (DescribeTasks): those that exist, in no
    /// particular order.
    async fn get_tasks(&self, task_arns: &[String]) -> Result<Vec<Versioned<Task>>, StoreError>;
    async fn get_task(&self, task_arn: &str) -> Result<Option<Versioned<Task>>, StoreError>;
    /// Tasks matching `filter`, ordered by ARN, page key = task ARN.
    async fn list_tasks(&self, filter: &TaskFilter, page: Page<String>) -> Result<Vec<Versioned<Task>>, StoreError>;

    // --- services (written by later components; the API reads them for
    //     cluster statistics and DeleteCluster) ---

    /// Inserts or replaces a service keyed by its ARN, as `put_task`.
    async fn put_service(&self, service: &Service, expected_version: Option<i64>) -> Result<Versioned<Service>, StoreError>;
    async fn get_service(&self, service_arn: &str) -> Result<Option<Versioned<Service>>, StoreError>;

    // --- access keys ---

    /// Inserts a key; `Conflict` if the id exists.
    async fn insert_access_key(&self, key: &AccessKey) -> Result<(), StoreError>;
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError>;
    async fn count_access_keys(&self) -> Result<i64, StoreError>;

    // --- networking: subnets, security groups, task addresses ---

    /// Creates (`None`) or updates (the version read) a subnet; `Conflict`
    /// if it exists (create) or changed meanwhile (update).
    async fn put_subnet(&self, subnet: &SubnetRecord, expected_version: Option<i64>) -> Result<Versioned<SubnetRecord>, StoreError>;
    async fn get_subnet(&self, id: &str) -> Result<Option<Versioned<SubnetRecord>>, StoreError>;
    /// Every subnet, by id.
    async fn list_subnets(&self) -> Result<Vec<Versioned<SubnetRecord>>, StoreError>;
    /// Deletes a subnet; `false` if there was none, `Rejected` while a
    /// task holds one of its addresses.
    async fn delete_subnet(&self, id: &str) -> Result<bool, StoreError>;
    async fn put_security_group(
        &self,
        group: &SecurityGroupRecord,
        expected_version: Option<i64>,
    ) -> Result<Versioned<SecurityGroupRecord>, StoreError>;
    async fn get_security_group(&self, id: &str) -> Result<Option<Versioned<SecurityGroupRecord>>, StoreError>;
    /// Every security group, by id.
    async fn list_security_groups(&self) -> Result<Vec<Versioned<SecurityGroupRecord>>, StoreError>;
    /// Deletes a group; `false` if there was none. (Whether tasks still
    /// use it is the caller's to check.)
    async fn delete_security_group(&self, id: &str) -> Result<bool, StoreError>;
    /// The addresses of a subnet held by tasks: (ip, task ARN).
    async fn allocated_ips(&self, subnet_id: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Takes `ip` of the subnet for the task, atomically: `true` if the
    /// task holds it now (also when it already did), `false` if another
    /// task does. Never hands one address to two tasks.
    async fn claim_ip(&self, subnet_id: &str, ip: &str, task_arn: &str) -> Result<bool, StoreError>;
    /// Takes a free address of the subnet for the task in one transaction:
    /// `pick` chooses among what is not held (it sees the held set), and
    /// claims on one subnet are serialised, so a burst of tasks never
    /// races for the same address. Returns the address the task holds in
    /// the subnet (one it held already is returned as is); `None` when
    /// `pick` finds none free. `NotFound` if the subnet does not exist.
    async fn claim_free_ip(
        &self,
        subnet_id: &str,
        task_arn: &str,
        pick: &(dyn for<'u> Fn(&'u std::collections::BTreeSet<String>) -> Option<String> + Send + Sync),
    ) -> Result<Option<String>, StoreError>;
    /// The addresses a task holds: (subnet id, ip).
    async fn task_ips(&self, task_arn: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Frees every address the task holds; how many there were.
    async fn release_ips(&self, task_arn: &str) -> Result<u64, StoreError>;

    // --- CloudWatch Logs ---
    //
    // A writer of logs (the awslogs shipper) does, per container:
    //   create_log_group(..)  — only if asked to create it; `Conflict`: it exists
    //   create_log_stream(..) — `Conflict`: it exists, append to it
    //   put_log_events(..)    — repeatedly, a batch at a time
    // The store takes any events (any size, any order); the Logs API's
    // own rules (order, sizes, age) are checked by berth-api for its clients.
    // Readers: read_log_events pages one stream either way from a
    // position; filter_log_events searches a group's streams.

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

/// The first task matching `filter` that `wanted` accepts, reading the
/// listing a page at a time (in ARN order).
pub async fn find_task(
    store: &dyn Store,
    filter: &TaskFilter,
    wanted: impl Fn(&Task) -> bool,
) -> Result<Option<Task>, StoreError> {
    let mut after = None;
    loop {
        let page = store.list_tasks(filter, Page { after: after.take(), limit: 500 }).await?;
        let Some(last) = page.last() else { return Ok(None) };
        after = Some(last.value.arn.to_string());
        if let Some(found) = page.into_iter().find(|t| wanted(&t.value)) {
            return Ok(Some(found.value));
        }
    }
}
