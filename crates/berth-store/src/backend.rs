//! The SQL backends behind [`Store`]: SQLite and PostgreSQL through sqlx's
//! `Any` driver, so both run the same queries over the same schema
//! (`migrations/`). What differs is gathered in [`Dialect`] and in how
//! the pools are set up.
//!
//! Concurrency. Every write is a single statement that checks the version
//! it replaces (`UPDATE ... WHERE key = $1 AND version = $2`, zero rows →
//! [`StoreError::Conflict`]) or an `INSERT ... ON CONFLICT DO NOTHING`
//! (zero rows → `Conflict`), except task definition registration, which
//! takes the family's next revision and inserts the definition in one
//! transaction. On SQLite all writes go through a pool of exactly one
//! connection, so writers of this process queue in the pool instead of
//! racing for the database lock; transactions begin `IMMEDIATE` and every
//! connection has a busy timeout, which covers writers in other processes.
//! Reads use their own connections (WAL mode: readers and the writer do
//! not block each other). On PostgreSQL one pool does both; the family
//! counter's row lock serialises concurrent registrations of a family.
//!
//! Logs take row locks instead of versions: an append updates its
//! stream's row first (holding it to commit, so appends to one stream take
//! consecutive sequence numbers); deleting a group or stream, and each
//! expiry batch, lock the rows they remove from before removing anything;
//! creating a stream holds its group's row in share mode.
//!
//! Durability: SQLite runs in WAL mode with `synchronous = FULL`, so a
//! write that returned survives a crash of the process or the machine.

use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::Arc;

use async_trait::async_trait;
use berth_model::elb::{CertificateRecord, Listener, LoadBalancer, RegisteredTarget, Rule, TargetGroup, TargetHealthRecord};
use berth_model::network::{SecurityGroupRecord, SubnetRecord};
use berth_model::node::Node;
use berth_model::records::TaskDefinitionRecord;
use berth_model::service::{Service, ServiceStatus};
use berth_model::task::{Task, stored as stored_task};
use berth_wire::ecs::Cluster;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Executor as _, Row as _};

mod discovery;
mod iam;

use crate::{
    AccessKey, ClusterUsage, Direction, EventFilter, EventKey, EventRange, FamilyStatus, FilteredEvents,
    LOG_EVENT_OVERHEAD_BYTES, LogEventRecord, LogGroupRecord, LogStore, LogStreamCursor, LogStreamOrder,
    LogStreamQuery, LogStreamRecord, NewLogEvent, NodeUsage, Notice, Page, PortClaim, PortProtocol, PrivateKeyPem, RecordKind,
    SortOrder, Store, StoreError, Stores, TaskDefinitionFilter, TaskFilter, TokenClaim, TokenHolder, Versioned,
};

mod elb;
mod metrics;
mod secrets;
mod usage;

/// The notices of each record kind: one broadcast channel per kind, so a
/// watcher of one kind never wakes for (or lags behind) another's.
struct Notices([tokio::sync::broadcast::Sender<Notice>; RecordKind::ALL.len()]);

impl Notices {
    /// A watcher that falls this far behind gets `Lagged` and re-reads
    /// everything.
    const CAPACITY: usize = 1024;

    fn new() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::broadcast::channel(Self::CAPACITY).0))
    }

    fn channel(&self, kind: RecordKind) -> &tokio::sync::broadcast::Sender<Notice> {
        &self.0[kind as usize]
    }

    /// Announces a committed write (`version` `None`: a delete). Nobody
    /// listening is fine.
    fn send(&self, kind: RecordKind, key: impl Into<String>, version: Option<i64>) {
        let _ = self.channel(kind).send(Notice { kind, key: key.into(), version });
    }
}

/// The schema, in order. Applied on open; applied ones are skipped (sqlx
/// records them, with a checksum, in `_sqlx_migrations`).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "tasks and nodes", include_str!("../migrations/0002_tasks_and_nodes.sql")),
    (3, "logs", include_str!("../migrations/0003_logs.sql")),
    (4, "network", include_str!("../migrations/0004_network.sql")),
    (5, "port claims", include_str!("../migrations/0005_port_claims.sql")),
    (6, "load balancers", include_str!("../migrations/0006_load_balancers.sql")),
    (7, "discovery", include_str!("../migrations/0007_discovery.sql")),
    (8, "run task tokens", include_str!("../migrations/0008_run_task_tokens.sql")),
    (9, "iam", include_str!("../migrations/0009_iam.sql")),
    (10, "secrets", include_str!("../migrations/0010_secrets.sql")),
    (11, "metrics", include_str!("../migrations/0011_metrics.sql")),
    (14, "usage", include_str!("../migrations/0014_usage.sql")),
];

/// How long an SQLite connection waits for another process's lock.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
const SQLITE_READERS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 8;

/// Opens (creating if needed) the store at `url`: `sqlite://PATH` or
/// `postgres://...` / `postgresql://...`, and brings its schema up to date.
/// Both faces share the backend's connection pools.
pub async fn open(url: &str) -> Result<Stores, StoreError> {
    sqlx::any::install_default_drivers();
    let store = if url.starts_with("sqlite:") {
        SqlStore::open_sqlite(url).await?
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        SqlStore::open_postgres(url).await?
    } else {
        return Err(StoreError::UnsupportedUrl(redact(url)));
    };
    let store = Arc::new(store);
    Ok(Stores { records: store.clone(), logs: store })
}

/// What differs between the two SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Begins a write transaction. SQLite's `IMMEDIATE` takes the write
    /// lock at once (waiting up to the busy timeout) rather than at the
    /// first write, where a conflict would fail without waiting.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Appended to a name column where it is ordered or compared, so both
    /// backends order names the same way, by code point. (SQLite's default
    /// collation already does; PostgreSQL's default follows the database's
    /// locale, e.g. "a" < "B" in `en_US`.)
    fn bytewise(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// Appended to a `SELECT` whose rows the transaction must hold until
    /// commit against writers (`FOR UPDATE`) or deleters (`FOR SHARE`) on
    /// PostgreSQL. Nothing on SQLite, where a write transaction holds the
    /// whole database's write lock from its `BEGIN IMMEDIATE`.
    fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    fn for_share(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR SHARE",
        }
    }
}

struct SqlStore {
    dialect: Dialect,
    /// Record writes made through this store, for watchers.
    notices: Notices,
    /// Runs every write. On SQLite it has exactly one connection.
    write: AnyPool,
    /// Runs reads. On SQLite, read-only connections of their own; on
    /// PostgreSQL, the same pool as `write`.
    read: AnyPool,
    /// SQLite: the exclusive lock on `PATH.lock`, held while the store is
    /// open, so two servers never share one database file.
    _lock: Option<Arc<std::fs::File>>,
}

impl SqlStore {
    /// `sqlite://PATH` or `sqlite:PATH`, PATH a file path taken as it is
    /// (no URL decoding, no query parameters), as `format!("sqlite://{}",
    /// path.display())` makes it.
    async fn open_sqlite(url: &str) -> Result<Self, StoreError> {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            // (An in-memory database would be a different one per connection.)
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let created = create_private(Path::new(path))?;
        // Absolute and free of `..`, which URL parsing would resolve lexically.
        let path = std::fs::canonicalize(path).map_err(sqlx::Error::Io)?;
        let path = path.as_path();
        let lock = lock_sqlite(path)?;
        if !created {
            check_sqlite_file(path)?;
        }
        // The `Any` driver takes SQLite's file and open mode from a URL (the
        // rest is set per connection below); sqlx decodes its path.
        let any = AnyConnectOptions::from_str(&sqlite_url(path))?;
        // One connection first, outside any pool: a damaged file fails
        // here at once with SQLite's own words, not after the pool's
        // retries run out.
        let mut probe = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&any).await.map_err(|e| unusable_sqlite(path, &e))?;
        sqlite_writer_setup(&mut probe).await.map_err(|e| unusable_sqlite(path, &e))?;
        probe.fetch_one("SELECT count(*) FROM sqlite_master").await.map_err(|e| unusable_sqlite(path, &e))?;
        sqlx::Connection::close(probe).await.map_err(|e| unusable_sqlite(path, &e))?;

        let write = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| Box::pin(sqlite_writer_setup(conn)))
            .connect_with(any.clone())
            .await?;
        migrate(&write).await?;
        let read = AnyPoolOptions::new()
            .max_connections(SQLITE_READERS)
            .after_connect(|conn, _| Box::pin(sqlite_reader_setup(conn)))
            .connect_with(any)
            .await?;
        tracing::debug!(path = %path.display(), "opened SQLite store");
        Ok(Self { dialect: Dialect::Sqlite, write, read, notices: Notices::new(), _lock: Some(lock) })
    }

    async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let any = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new().max_connections(POSTGRES_CONNECTIONS).connect_with(any).await?;
        migrate(&pool).await?;
        tracing::debug!(url = %redact(url), "opened PostgreSQL store");
        Ok(Self { dialect: Dialect::Postgres, write: pool.clone(), read: pool, notices: Notices::new(), _lock: None })
    }

    // --- records stored under one text key ---

    async fn insert<R: Keyed>(&self, record: &R) -> Result<Versioned<R>, StoreError> {
        let key = record.key().ok_or(StoreError::MissingKey(R::KEY_MEMBER))?;
        let params: Vec<String> = (0..R::COLUMNS.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "INSERT INTO {table} ({key}, body, {columns}, version) VALUES ($1, $2, {params}, 1) \
             ON CONFLICT ({key}) DO NOTHING",
            table = R::TABLE,
            key = R::KEY,
            columns = R::COLUMNS.join(", "),
            params = params.join(", "),
        );
        let mut query = sqlx::query(&sql).bind(key).bind(record.encode()?);
        for value in record.columns() {
            query = value.bind_to(query);
        }
        match query.execute(&self.write).await?.rows_affected() {
            0 => Err(StoreError::Conflict),
            _ => Ok(Versioned { version: 1, value: record.clone() }),
        }
    }

    async fn update<R: Keyed>(&self, record: &R, expected_version: i64) -> Result<Versioned<R>, StoreError> {
        let key = record.key().ok_or(StoreError::MissingKey(R::KEY_MEMBER))?;
        let sets: Vec<String> = R::COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 4)).collect();
        let sql = format!(
            "UPDATE {table} SET body = $3, {sets}, version = version + 1 WHERE {key} = $1 AND version = $2",
            table = R::TABLE,
            key = R::KEY,
            sets = sets.join(", "),
        );
        let mut query = sqlx::query(&sql).bind(key).bind(expected_version).bind(record.encode()?);
        for value in record.columns() {
            query = value.bind_to(query);
        }
        match query.execute(&self.write).await?.rows_affected() {
            0 => Err(StoreError::Conflict),
            _ => Ok(Versioned { version: expected_version + 1, value: record.clone() }),
        }
    }

    async fn put<R: Keyed>(&self, record: &R, expected_version: Option<i64>) -> Result<Versioned<R>, StoreError> {
        match expected_version {
            None => self.insert(record).await,
            Some(v) => self.update(record, v).await,
        }
    }

    /// Announces a record written through [`Self::put`] and friends.
    fn announce<R: Keyed>(&self, kind: RecordKind, written: &Versioned<R>) {
        if let Some(key) = written.value.key() {
            self.notices.send(kind, key, Some(written.version));
        }
    }

    async fn get<R: Keyed>(&self, key: &str) -> Result<Option<Versioned<R>>, StoreError> {
        let sql = format!("SELECT version, body FROM {} WHERE {} = $1", R::TABLE, R::KEY);
        let row = sqlx::query(&sql).bind(key).fetch_optional(&self.read).await?;
        row.as_ref().map(versioned::<R>).transpose()
    }
}

/// A record kept in a table of its own under one text key, with the
/// columns it is filtered by beside its JSON body.
trait Keyed: Serialize + DeserializeOwned + Clone + Send + Sync {
    const TABLE: &'static str;
    const KEY: &'static str;
    /// The wire member the key is taken from (for [`StoreError::MissingKey`]).
    const KEY_MEMBER: &'static str;
    /// The filter columns, in the order [`Keyed::columns`] gives values.
    const COLUMNS: &'static [&'static str];
    fn key(&self) -> Option<String>;
    fn columns(&self) -> Vec<Col>;

    /// The row's body: the record as JSON with the `formatVersion` this
    /// code writes beside its members.
    fn encode(&self) -> Result<String, StoreError> {
        encode_body(self)
    }

    /// Reads a body of any format this code knows. For most records,
    /// format 0 (rows from before bodies carried a version) has the same
    /// shape as format 1; tasks have a reader per format.
    fn decode(body: &str) -> Result<Self, StoreError> {
        decode_body(body)
    }
}

/// The format every record body is written in (tasks have their own,
/// `berth_model::task::stored::FORMAT_VERSION`).
const FORMAT_VERSION: u64 = 1;

/// `value` as JSON with `"formatVersion": FORMAT_VERSION` among its members.
fn encode_body<T: Serialize>(value: &T) -> Result<String, StoreError> {
    let mut json = serde_json::to_value(value)?;
    if let Some(members) = json.as_object_mut() {
        members.insert("formatVersion".into(), FORMAT_VERSION.into());
    }
    Ok(serde_json::to_string(&json)?)
}

/// Reads what [`encode_body`] wrote (or a body without a version, from
/// before bodies had one); refuses a format newer than this code knows
/// instead of misreading it.
fn decode_body<T: DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    let mut json: serde_json::Value = serde_json::from_str(body)?;
    let version = json.as_object_mut().and_then(|m| m.remove("formatVersion")).and_then(|v| v.as_u64()).unwrap_or(0);
    if version > FORMAT_VERSION {
        return Err(StoreError::FormatTooNew { found: version, known: FORMAT_VERSION });
    }
    Ok(serde_json::from_value(json)?)
}

/// A filter column's value.
enum Col {
    Text(Option<String>),
    Int(i64),
}

impl Col {
    fn bind_to<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Self::Text(v) => query.bind(v),
            Self::Int(v) => query.bind(v),
        }
    }
}

fn text(v: Option<&str>) -> Col {
    Col::Text(v.map(str::to_owned))
}

impl Keyed for Cluster {
    const TABLE: &'static str = "clusters";
    const KEY: &'static str = "name";
    const KEY_MEMBER: &'static str = "clusterName";
    const COLUMNS: &'static [&'static str] = &["status"];
    fn key(&self) -> Option<String> {
        self.cluster_name.clone()
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(self.status.as_deref())]
    }
}

impl Keyed for Task {
    const TABLE: &'static str = "tasks";
    const KEY: &'static str = "task_arn";
    const KEY_MEMBER: &'static str = "taskArn";
    const COLUMNS: &'static [&'static str] = &[
        "cluster_arn",
        "last_status",
        "desired_status",
        "family",
        "started_by",
        "task_group",
        "launch_type",
        "node_id",
        "cpu",
        "memory",
        "capacity_provider",
    ];
    fn key(&self) -> Option<String> {
        Some(self.arn.to_string())
    }
    fn columns(&self) -> Vec<Col> {
        vec![
            Col::Text(Some(self.cluster_arn().to_string())),
            text(Some(self.status().as_str())),
            text(Some(self.desired().as_str())),
            text(Some(self.family())),
            text(self.started_by.as_deref()),
            text(Some(&self.group)),
            // Every task Berth runs is a Fargate task.
            text(Some("FARGATE")),
            text(self.node_id.as_deref()),
            Col::Int(i64::from(self.size.cpu)),
            Col::Int(i64::from(self.size.memory)),
            text(self.capacity_provider.as_deref()),
        ]
    }
    fn encode(&self) -> Result<String, StoreError> {
        Ok(stored_task::encode(self)?)
    }
    fn decode(body: &str) -> Result<Self, StoreError> {
        stored_task::decode(body).map_err(|e| match e {
            stored_task::StoredTaskError::TooNew(found) => {
                StoreError::FormatTooNew { found: found.into(), known: stored_task::FORMAT_VERSION.into() }
            }
            e => StoreError::Format(e.to_string()),
        })
    }
}

impl Keyed for Node {
    const TABLE: &'static str = "nodes";
    const KEY: &'static str = "id";
    const KEY_MEMBER: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["status"];
    fn key(&self) -> Option<String> {
        Some(self.id.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(self.status.as_str()))]
    }
}

impl Keyed for SubnetRecord {
    const TABLE: &'static str = "subnets";
    const KEY: &'static str = "id";
    const KEY_MEMBER: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["cidr"];
    fn key(&self) -> Option<String> {
        Some(self.id.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(&self.cidr.to_string()))]
    }
}

impl Keyed for SecurityGroupRecord {
    const TABLE: &'static str = "security_groups";
    const KEY: &'static str = "id";
    const KEY_MEMBER: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["name"];
    fn key(&self) -> Option<String> {
        Some(self.id.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(&self.name))]
    }
}

impl Keyed for Service {
    const TABLE: &'static str = "services";
    const KEY: &'static str = "service_arn";
    const KEY_MEMBER: &'static str = "serviceArn";
    const COLUMNS: &'static [&'static str] = &["cluster_arn", "status"];
    fn key(&self) -> Option<String> {
        Some(self.arn.to_string())
    }
    fn columns(&self) -> Vec<Col> {
        vec![Col::Text(Some(self.cluster_arn().to_string())), text(Some(self.status.as_str()))]
    }
}

/// A row's `version` and JSON `body`.
fn versioned<R: Keyed>(row: &AnyRow) -> Result<Versioned<R>, StoreError> {
    versioned_as(row, R::decode)
}

fn all_versioned<R: Keyed>(rows: &[AnyRow]) -> Result<Vec<Versioned<R>>, StoreError> {
    rows.iter().map(versioned::<R>).collect()
}

/// A row's `version` and its `body` read by `decode`.
fn versioned_as<T>(row: &AnyRow, decode: impl Fn(&str) -> Result<T, StoreError>) -> Result<Versioned<T>, StoreError> {
    let version: i64 = row.try_get("version")?;
    let body: String = row.try_get("body")?;
    Ok(Versioned { version, value: decode(&body)? })
}

/// A task definition row (not [`Keyed`]: its key is two columns).
fn definition_versioned(row: &AnyRow) -> Result<Versioned<TaskDefinitionRecord>, StoreError> {
    versioned_as(row, decode_body)
}

/// A node's body and the three usage sums of a node query.
fn node_usage(row: &AnyRow) -> Result<NodeUsage, StoreError> {
    let body: String = row.try_get(0)?;
    let sum = |i: usize| -> Result<u32, StoreError> {
        let v: i64 = row.try_get(i)?;
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    };
    Ok(NodeUsage {
        node: Node::decode(&body)?,
        cpu_used: sum(1)?,
        memory_used: sum(2)?,
        tasks: sum(3)?,
        spot_cpu_used: sum(4)?,
        spot_memory_used: sum(5)?,
    })
}

/// The key columns of a stored task definition.
fn definition_key(record: &TaskDefinitionRecord) -> Result<(&str, i32), StoreError> {
    let d = &record.definition;
    let family = d.family.as_deref().ok_or(StoreError::MissingKey("family"))?;
    let revision = d.revision.ok_or(StoreError::MissingKey("revision"))?;
    Ok((family, revision))
}

fn definition_status(record: &TaskDefinitionRecord) -> &'static str {
    record.definition.status.unwrap_or_default().as_str()
}

/// A row of `port_claims`: address, protocol, port.
fn port_claim(row: &AnyRow) -> Result<PortClaim, StoreError> {
    let invalid = |column, value: String| StoreError::InvalidColumn { column, value };
    let address: String = row.try_get(0)?;
    let protocol: String = row.try_get(1)?;
    let port: i32 = row.try_get(2)?;
    Ok(PortClaim {
        address: address.parse().map_err(|_| invalid("port claim address", address.clone()))?,
        protocol: PortProtocol::parse(&protocol).ok_or_else(|| invalid("port claim protocol", protocol.clone()))?,
        port: u16::try_from(port).map_err(|_| invalid("port claim port", port.to_string()))?,
    })
}

// --- CloudWatch Logs ---

/// Events per INSERT statement (8 parameters each, well under both
/// backends' limits on parameters per statement).
const EVENTS_PER_INSERT: usize = 500;
/// Events a filter reads per statement (bounded memory: each read holds
/// this many messages at most).
const FILTER_CHUNK: u32 = 256;
/// Events expired per transaction, so expiry never holds a stream (or
/// SQLite's write lock) for long.
const EXPIRE_BATCH: i64 = 5_000;
const DAY_MS: i64 = 86_400_000;

const LOG_GROUP_COLUMNS: &str = "g.name, g.created_at, g.retention_days, g.class, \
     (SELECT CAST(COALESCE(SUM(s.stored_bytes), 0) AS BIGINT) FROM log_streams s WHERE s.group_id = g.id)";

const LOG_STREAM_COLUMNS: &str = "g.name, s.name, s.created_at, s.first_event_time, s.last_event_time, \
     s.last_ingestion_time, s.stored_bytes, s.next_seq";

/// The columns [`log_event`] reads, from `log_events e JOIN log_streams s`.
const LOG_EVENT_COLUMNS: &str = "e.event_time, e.seq, e.ingestion_time, e.stream_id, s.name, e.escaped, e.message";

fn log_group(row: &AnyRow) -> Result<LogGroupRecord, StoreError> {
    Ok(LogGroupRecord {
        name: row.try_get(0)?,
        created_at: row.try_get(1)?,
        retention_days: row.try_get(2)?,
        class: row.try_get(3)?,
        stored_bytes: row.try_get(4)?,
    })
}

fn log_stream(row: &AnyRow) -> Result<LogStreamRecord, StoreError> {
    Ok(LogStreamRecord {
        group: row.try_get(0)?,
        name: row.try_get(1)?,
        created_at: row.try_get(2)?,
        first_event_timestamp: row.try_get(3)?,
        last_event_timestamp: row.try_get(4)?,
        last_ingestion_time: row.try_get(5)?,
        stored_bytes: row.try_get(6)?,
        next_sequence: row.try_get(7)?,
    })
}

/// An event row of [`LOG_EVENT_COLUMNS`].
fn log_event(row: &AnyRow) -> Result<LogEventRecord, StoreError> {
    let timestamp: i64 = row.try_get(0)?;
    let sequence: i64 = row.try_get(1)?;
    let stream_id: i64 = row.try_get(3)?;
    let escaped: i64 = row.try_get(5)?;
    Ok(LogEventRecord {
        stream: row.try_get(4)?,
        timestamp,
        sequence,
        ingestion_time: row.try_get(2)?,
        message: unescape_message(row.try_get(6)?, escaped),
        key: EventKey { timestamp, stream_id, sequence },
    })
}

/// Takes the next number for a log group or stream (inside `tx`).
async fn next_log_id(tx: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("UPDATE log_ids SET last_id = last_id + 1 WHERE kind = 'log' RETURNING last_id")
        .fetch_one(&mut *tx)
        .await?)
}

fn message_bytes(message: &str) -> i64 {
    i64::try_from(message.len()).unwrap_or(i64::MAX)
}

/// What an event costs against a byte budget.
fn event_cost(bytes: i64) -> u64 {
    u64::try_from(bytes).unwrap_or(0).saturating_add(LOG_EVENT_OVERHEAD_BYTES)
}

/// A message as stored, and whether it was escaped: PostgreSQL's TEXT
/// cannot hold NUL, so a message with one is stored with NUL as `\0` and
/// backslash as `\\`. Messages without NUL (nearly all) are stored as they are.
fn escape_message(message: &str) -> (Cow<'_, str>, i64) {
    if !message.contains('\0') {
        return (Cow::Borrowed(message), 0);
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    (Cow::Owned(out), 1)
}

fn unescape_message(stored: String, escaped: i64) -> String {
    if escaped == 0 {
        return stored;
    }
    let mut out = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[async_trait]
impl Store for SqlStore {
    async fn insert_cluster(&self, cluster: &Cluster) -> Result<Versioned<Cluster>, StoreError> {
        let written = self.insert(cluster).await?;
        self.announce(RecordKind::Cluster, &written);
        Ok(written)
    }

    async fn get_cluster(&self, name: &str) -> Result<Option<Versioned<Cluster>>, StoreError> {
        self.get(name).await
    }

    async fn update_cluster(&self, cluster: &Cluster, expected_version: i64) -> Result<Versioned<Cluster>, StoreError> {
        let written = self.update(cluster, expected_version).await?;
        self.announce(RecordKind::Cluster, &written);
        Ok(written)
    }

    async fn list_clusters(
        &self,
        status: Option<&str>,
        page: Page<String>,
    ) -> Result<Vec<Versioned<Cluster>>, StoreError> {
        let c = self.dialect.bytewise();
        let sql = format!(
            "SELECT version, body FROM clusters \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR name{c} > $2) \
             ORDER BY name{c} LIMIT $3"
        );
        let rows =
            sqlx::query(&sql).bind(status).bind(page.after).bind(i64::from(page.limit)).fetch_all(&self.read).await?;
        all_versioned(&rows)
    }

    async fn cluster_usage(&self, cluster_arn: &str) -> Result<ClusterUsage, StoreError> {
        // One statement, so one consistent snapshot on both backends.
        const SQL: &str = "SELECT \
            (SELECT COUNT(*) FROM services WHERE cluster_arn = $1 AND status IN ('ACTIVE', 'DRAINING')), \
            (SELECT COUNT(*) FROM tasks WHERE cluster_arn = $1 AND (last_status IS NULL OR last_status <> 'STOPPED')), \
            (SELECT COUNT(*) FROM tasks WHERE cluster_arn = $1 AND last_status = 'RUNNING'), \
            (SELECT COUNT(*) FROM tasks WHERE cluster_arn = $1 AND last_status IN ('PROVISIONING', 'PENDING', 'ACTIVATING'))";
        let row = sqlx::query(SQL).bind(cluster_arn).fetch_one(&self.read).await?;
        Ok(ClusterUsage {
            active_services: row.try_get(0)?,
            live_tasks: row.try_get(1)?,
            running_tasks: row.try_get(2)?,
            pending_tasks: row.try_get(3)?,
        })
    }

    async fn register_task_definition(
        &self,
        family: &str,
        build: &(dyn Fn(i32) -> TaskDefinitionRecord + Send + Sync),
    ) -> Result<Versioned<TaskDefinitionRecord>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // Takes the next revision and holds the family's row lock (or, on
        // SQLite, the database write lock) until commit.
        let revision: i32 = sqlx::query_scalar(
            "INSERT INTO families (family, last_revision) VALUES ($1, 1) \
             ON CONFLICT (family) DO UPDATE SET last_revision = families.last_revision + 1 \
             RETURNING last_revision",
        )
        .bind(family)
        .fetch_one(&mut *tx)
        .await?;
        let mut record = build(revision);
        // The keys are the store's to give, whatever `build` put there.
        record.definition.family = Some(family.to_owned());
        record.definition.revision = Some(revision);
        let status = *record.definition.status.get_or_insert_default();
        sqlx::query(
            "INSERT INTO task_definitions (family, revision, status, version, body) VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(family)
        .bind(revision)
        .bind(status.as_str())
        .bind(encode_body(&record)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notices.send(RecordKind::TaskDefinition, format!("{family}:{revision}"), Some(1));
        Ok(Versioned { version: 1, value: record })
    }

    async fn get_task_definition(
        &self,
        family: &str,
        revision: i32,
    ) -> Result<Option<Versioned<TaskDefinitionRecord>>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM task_definitions WHERE family = $1 AND revision = $2")
            .bind(family)
            .bind(revision)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(definition_versioned).transpose()
    }

    async fn latest_active_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<Versioned<TaskDefinitionRecord>>, StoreError> {
        let row = sqlx::query(
            "SELECT version, body FROM task_definitions WHERE family = $1 AND status = 'ACTIVE' \
             ORDER BY revision DESC LIMIT 1",
        )
        .bind(family)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(definition_versioned).transpose()
    }

    async fn update_task_definition(
        &self,
        record: &TaskDefinitionRecord,
        expected_version: i64,
    ) -> Result<Versioned<TaskDefinitionRecord>, StoreError> {
        let (family, revision) = definition_key(record)?;
        let done = sqlx::query(
            "UPDATE task_definitions SET status = $3, body = $4, version = version + 1 \
             WHERE family = $1 AND revision = $2 AND version = $5",
        )
        .bind(family)
        .bind(revision)
        .bind(definition_status(record))
        .bind(encode_body(record)?)
        .bind(expected_version)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        self.notices.send(RecordKind::TaskDefinition, format!("{family}:{revision}"), Some(expected_version + 1));
        Ok(Versioned { version: expected_version + 1, value: record.clone() })
    }

    async fn list_task_definitions(
        &self,
        filter: &TaskDefinitionFilter,
        page: Page<(String, i32)>,
    ) -> Result<Vec<Versioned<TaskDefinitionRecord>>, StoreError> {
        let c = self.dialect.bytewise();
        // "After" means later in the listing's order, whichever way it runs.
        let (after, order) = match filter.sort {
            SortOrder::Asc => (">", "ASC"),
            SortOrder::Desc => ("<", "DESC"),
        };
        let sql = format!(
            "SELECT version, body FROM task_definitions \
             WHERE ($1 IS NULL OR family = $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR family{c} {after} $3 OR (family = $3 AND revision {after} $4)) \
             ORDER BY family{c} {order}, revision {order} LIMIT $5"
        );
        let (after_family, after_revision) = page.after.map_or((None, None), |(f, r)| (Some(f), Some(r)));
        let rows = sqlx::query(&sql)
            .bind(filter.family.as_deref())
            .bind(filter.status.as_deref())
            .bind(after_family)
            .bind(after_revision)
            .bind(i64::from(page.limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(definition_versioned).collect()
    }

    async fn list_task_definition_families(
        &self,
        prefix: Option<&str>,
        status: FamilyStatus,
        page: Page<String>,
    ) -> Result<Vec<String>, StoreError> {
        let c = self.dialect.bytewise();
        const HAS_ACTIVE: &str =
            "EXISTS (SELECT 1 FROM task_definitions t WHERE t.family = f.family AND t.status = 'ACTIVE')";
        let status = match status {
            FamilyStatus::Active => format!("AND {HAS_ACTIVE}"),
            FamilyStatus::Inactive => format!("AND NOT {HAS_ACTIVE}"),
            FamilyStatus::All => String::new(),
        };
        // A prefix test without LIKE, whose wildcards `_` and `%` are
        // common in family names.
        let sql = format!(
            "SELECT f.family FROM families f \
             WHERE ($1 IS NULL OR substr(f.family, 1, length($1)) = $1) AND ($2 IS NULL OR f.family{c} > $2) {status} \
             ORDER BY f.family{c} LIMIT $3"
        );
        let families = sqlx::query_scalar(&sql)
            .bind(prefix)
            .bind(page.after)
            .bind(i64::from(page.limit))
            .fetch_all(&self.read)
            .await?;
        Ok(families)
    }

    async fn upsert_node(&self, node: &Node) -> Result<(), StoreError> {
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO nodes (id, status, version, body) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (id) DO UPDATE SET status = $2, body = $3, version = nodes.version + 1 \
             RETURNING version",
        )
        .bind(&node.id)
        .bind(node.status.as_str())
        .bind(node.encode()?)
        .fetch_one(&self.write)
        .await?;
        self.notices.send(RecordKind::Node, node.id.as_str(), Some(version));
        Ok(())
    }

    async fn get_node(&self, id: &str) -> Result<Option<Node>, StoreError> {
        Ok(self.get::<Node>(id).await?.map(|v| v.value))
    }

    async fn list_nodes(&self) -> Result<Vec<NodeUsage>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.body, \
             (SELECT CAST(COALESCE(SUM(t.cpu), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.memory), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT COUNT(*) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.cpu), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND t.capacity_provider = 'FARGATE_SPOT' AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.memory), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND t.capacity_provider = 'FARGATE_SPOT' AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')) \
             FROM nodes n ORDER BY n.id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(node_usage).collect()
    }

    async fn place_task(
        &self,
        record: &Task,
        node_id: &str,
        fits: &(dyn for<'u> Fn(&'u NodeUsage) -> bool + Send + Sync),
    ) -> Result<Versioned<Task>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // Touching the node's row first holds its lock (PostgreSQL) or the
        // database write lock (SQLite) until commit: placements on one node
        // are serialised, so the usage read below stays true.
        let touched = sqlx::query("UPDATE nodes SET version = version + 1 WHERE id = $1")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("node {node_id}")));
        }
        let row = sqlx::query(
            "SELECT n.body, \
             (SELECT CAST(COALESCE(SUM(t.cpu), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.memory), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT COUNT(*) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.cpu), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND t.capacity_provider = 'FARGATE_SPOT' AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.memory), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND t.capacity_provider = 'FARGATE_SPOT' AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')) \
             FROM nodes n WHERE n.id = $1",
        )
        .bind(node_id)
        .fetch_one(&mut *tx)
        .await?;
        if !fits(&node_usage(&row)?) {
            return Err(StoreError::Rejected);
        }
        let mut placed = record.clone();
        placed.node_id = Some(node_id.to_owned());
        let key = placed.key().ok_or(StoreError::MissingKey(Task::KEY_MEMBER))?;
        let params: Vec<String> = (0..Task::COLUMNS.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "INSERT INTO tasks (task_arn, body, {columns}, version) VALUES ($1, $2, {params}, 1) \
             ON CONFLICT (task_arn) DO NOTHING",
            columns = Task::COLUMNS.join(", "),
            params = params.join(", "),
        );
        let mut query = sqlx::query(&sql).bind(key.clone()).bind(placed.encode()?);
        for value in placed.columns() {
            query = value.bind_to(query);
        }
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        self.notices.send(RecordKind::Task, key, Some(1));
        Ok(Versioned { version: 1, value: placed })
    }

    async fn put_task(
        &self,
        record: &Task,
        expected_version: Option<i64>,
    ) -> Result<Versioned<Task>, StoreError> {
        let written = self.put(record, expected_version).await?;
        self.announce(RecordKind::Task, &written);
        Ok(written)
    }

    async fn get_task(&self, task_arn: &str) -> Result<Option<Versioned<Task>>, StoreError> {
        self.get(task_arn).await
    }

    async fn get_tasks(&self, task_arns: &[String]) -> Result<Vec<Versioned<Task>>, StoreError> {
        if task_arns.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = (1..=task_arns.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT version, body FROM tasks WHERE task_arn IN ({})", params.join(", "));
        let mut query = sqlx::query(&sql);
        for arn in task_arns {
            query = query.bind(arn);
        }
        all_versioned(&query.fetch_all(&self.read).await?)
    }

    async fn list_tasks(&self, filter: &TaskFilter, page: Page<String>) -> Result<Vec<Versioned<Task>>, StoreError> {
        let c = self.dialect.bytewise();
        let live = if filter.live_only { "AND (last_status IS NULL OR last_status <> 'STOPPED')" } else { "" };
        let sql = format!(
            "SELECT version, body FROM tasks WHERE ($1 IS NULL OR cluster_arn = $1) AND ($2 IS NULL OR family = $2) \
             AND ($3 IS NULL OR started_by = $3) AND ($4 IS NULL OR task_group = $4) \
             AND ($5 IS NULL OR desired_status = $5) AND ($6 IS NULL OR launch_type = $6) \
             AND ($7 IS NULL OR node_id = $7) AND ($8 IS NULL OR task_arn{c} > $8) \
             AND ($10 IS NULL OR capacity_provider = $10) {live} \
             ORDER BY task_arn{c} LIMIT $9"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.cluster_arn.as_deref())
            .bind(filter.family.as_deref())
            .bind(filter.started_by.as_deref())
            .bind(filter.group.as_deref())
            .bind(filter.desired_status.map(|d| d.as_str()))
            .bind(filter.launch_type.as_deref())
            .bind(filter.node_id.as_deref())
            .bind(page.after)
            .bind(i64::from(page.limit))
            .bind(filter.capacity_provider.as_deref())
            .fetch_all(&self.read)
            .await?;
        all_versioned(&rows)
    }

    async fn put_service(
        &self,
        service: &Service,
        expected_version: Option<i64>,
    ) -> Result<Versioned<Service>, StoreError> {
        let written = self.put(service, expected_version).await?;
        self.announce(RecordKind::Service, &written);
        Ok(written)
    }

    async fn get_service(&self, service_arn: &str) -> Result<Option<Versioned<Service>>, StoreError> {
        self.get(service_arn).await
    }

    async fn list_services(
        &self,
        cluster_arn: Option<&str>,
        statuses: &[ServiceStatus],
        page: Page<String>,
    ) -> Result<Vec<Versioned<Service>>, StoreError> {
        let c = self.dialect.bytewise();
        // At most three statuses: bound as three optional parameters.
        let status = |i: usize| statuses.get(i).map(|s| s.as_str());
        let sql = format!(
            "SELECT version, body FROM services \
             WHERE ($1 IS NULL OR cluster_arn = $1) \
             AND ($2 IS NULL OR status = $2 OR status = $3 OR status = $4) \
             AND ($5 IS NULL OR service_arn{c} > $5) \
             ORDER BY service_arn{c} LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(cluster_arn)
            .bind(status(0))
            .bind(status(1).or(status(0)))
            .bind(status(2).or(status(0)))
            .bind(page.after)
            .bind(i64::from(page.limit))
            .fetch_all(&self.read)
            .await?;
        all_versioned(&rows)
    }

    async fn insert_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO access_keys (access_key_id, secret_access_key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (access_key_id) DO NOTHING",
        )
        .bind(&key.access_key_id)
        .bind(&key.secret_access_key)
        .bind(key.created_at)
        .execute(&self.write)
        .await?;
        match done.rows_affected() {
            0 => Err(StoreError::Conflict),
            _ => Ok(()),
        }
    }

    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError> {
        let row = sqlx::query(
            "SELECT access_key_id, secret_access_key, created_at FROM access_keys WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AccessKey {
            access_key_id: row.try_get(0)?,
            secret_access_key: row.try_get(1)?,
            created_at: row.try_get(2)?,
        }))
    }

    async fn count_access_keys(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE user_name IS NULL AND session IS NULL").fetch_one(&self.read).await?)
    }

    async fn put_subnet(&self, subnet: &SubnetRecord, expected_version: Option<i64>) -> Result<Versioned<SubnetRecord>, StoreError> {
        let written = self.put(subnet, expected_version).await?;
        self.announce(RecordKind::Subnet, &written);
        Ok(written)
    }

    async fn get_subnet(&self, id: &str) -> Result<Option<Versioned<SubnetRecord>>, StoreError> {
        self.get(id).await
    }

    async fn list_subnets(&self) -> Result<Vec<Versioned<SubnetRecord>>, StoreError> {
        let c = self.dialect.bytewise();
        let rows = sqlx::query(&format!("SELECT version, body FROM subnets ORDER BY id{c}")).fetch_all(&self.read).await?;
        all_versioned(&rows)
    }

    async fn delete_subnet(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if held > 0 {
            return Err(StoreError::Rejected);
        }
        let done = sqlx::query("DELETE FROM subnets WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::Subnet, id, None);
        }
        Ok(deleted)
    }

    async fn put_security_group(
        &self,
        group: &SecurityGroupRecord,
        expected_version: Option<i64>,
    ) -> Result<Versioned<SecurityGroupRecord>, StoreError> {
        let written = self.put(group, expected_version).await?;
        self.announce(RecordKind::SecurityGroup, &written);
        Ok(written)
    }

    async fn get_security_group(&self, id: &str) -> Result<Option<Versioned<SecurityGroupRecord>>, StoreError> {
        self.get(id).await
    }

    async fn list_security_groups(&self) -> Result<Vec<Versioned<SecurityGroupRecord>>, StoreError> {
        let c = self.dialect.bytewise();
        let rows =
            sqlx::query(&format!("SELECT version, body FROM security_groups ORDER BY id{c}")).fetch_all(&self.read).await?;
        all_versioned(&rows)
    }

    async fn delete_security_group(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM security_groups WHERE id = $1").bind(id).execute(&self.write).await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::SecurityGroup, id, None);
        }
        Ok(deleted)
    }

    async fn allocated_ips(&self, subnet_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT ip, task_arn FROM ip_allocations WHERE subnet_id = $1")
            .bind(subnet_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    async fn claim_ip(&self, subnet_id: &str, ip: &str, task_arn: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let holder: Option<String> =
            sqlx::query_scalar("SELECT task_arn FROM ip_allocations WHERE subnet_id = $1 AND ip = $2")
                .bind(subnet_id)
                .bind(ip)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(holder) = holder {
            return Ok(holder == task_arn);
        }
        let done = sqlx::query(
            "INSERT INTO ip_allocations (subnet_id, ip, task_arn) VALUES ($1, $2, $3) ON CONFLICT (subnet_id, ip) DO NOTHING",
        )
        .bind(subnet_id)
        .bind(ip)
        .bind(task_arn)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_free_ip(
        &self,
        subnet_id: &str,
        task_arn: &str,
        pick: &(dyn for<'u> Fn(&'u std::collections::BTreeSet<String>) -> Option<String> + Send + Sync),
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // The subnet's row lock (PostgreSQL) or the write lock (SQLite)
        // serialises claims on the subnet until commit.
        let touched = sqlx::query("UPDATE subnets SET version = version WHERE id = $1")
            .bind(subnet_id)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("subnet {subnet_id}")));
        }
        let rows = sqlx::query("SELECT ip, task_arn FROM ip_allocations WHERE subnet_id = $1")
            .bind(subnet_id)
            .fetch_all(&mut *tx)
            .await?;
        let mut held = std::collections::BTreeSet::new();
        for row in &rows {
            let (ip, holder): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if holder == task_arn {
                return Ok(Some(ip));
            }
            held.insert(ip);
        }
        let Some(ip) = pick(&held) else { return Ok(None) };
        sqlx::query("INSERT INTO ip_allocations (subnet_id, ip, task_arn) VALUES ($1, $2, $3)")
            .bind(subnet_id)
            .bind(&ip)
            .bind(task_arn)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(ip))
    }

    async fn task_ips(&self, task_arn: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT subnet_id, ip FROM ip_allocations WHERE task_arn = $1")
            .bind(task_arn)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    async fn release_ips(&self, task_arn: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM ip_allocations WHERE task_arn = $1").bind(task_arn).execute(&self.write).await?;
        Ok(done.rows_affected())
    }

    async fn claim_port(&self, claim: PortClaim, task_arn: &str) -> Result<bool, StoreError> {
        let (address, protocol, port) = (claim.address.to_string(), claim.protocol.as_str(), i32::from(claim.port));
        // The insert is the claim (the primary key decides between racing
        // tasks); when it finds the port taken, the holder is read to tell
        // a repeated claim from another task's. A holder that released
        // the port in between leaves it free: claim again.
        for _ in 0..2 {
            let done = sqlx::query(
                "INSERT INTO port_claims (address, protocol, port, task_arn) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (address, protocol, port) DO NOTHING",
            )
            .bind(&address)
            .bind(protocol)
            .bind(port)
            .bind(task_arn)
            .execute(&self.write)
            .await?;
            if done.rows_affected() > 0 {
                return Ok(true);
            }
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT task_arn FROM port_claims WHERE address = $1 AND protocol = $2 AND port = $3",
            )
            .bind(&address)
            .bind(protocol)
            .bind(port)
            .fetch_optional(&self.write)
            .await?;
            if let Some(holder) = holder {
                return Ok(holder == task_arn);
            }
        }
        Ok(false)
    }

    async fn task_ports(&self, task_arn: &str) -> Result<Vec<PortClaim>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, protocol, port FROM port_claims WHERE task_arn = $1",
        )
        .bind(task_arn)
        .fetch_all(&self.read)
        .await?;
        let mut claims: Vec<PortClaim> = rows.iter().map(port_claim).collect::<Result<_, _>>()?;
        claims.sort();
        Ok(claims)
    }

    async fn release_ports(&self, task_arn: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM port_claims WHERE task_arn = $1").bind(task_arn).execute(&self.write).await?;
        Ok(done.rows_affected())
    }

    // Load balancing and certificates: `elb.rs`.
    async fn put_load_balancer(&self, lb: &LoadBalancer, expected_version: Option<i64>) -> Result<Versioned<LoadBalancer>, StoreError> {
        self.elb_put_load_balancer(lb, expected_version).await
    }
    async fn get_load_balancer(&self, arn: &str) -> Result<Option<Versioned<LoadBalancer>>, StoreError> {
        self.elb_get_load_balancer(arn).await
    }
    async fn list_load_balancers(&self) -> Result<Vec<Versioned<LoadBalancer>>, StoreError> {
        self.elb_list_load_balancers().await
    }
    async fn delete_load_balancer(&self, arn: &str) -> Result<bool, StoreError> {
        self.elb_delete_load_balancer(arn).await
    }
    async fn put_target_group(&self, tg: &TargetGroup, expected_version: Option<i64>) -> Result<Versioned<TargetGroup>, StoreError> {
        self.elb_put_target_group(tg, expected_version).await
    }
    async fn get_target_group(&self, arn: &str) -> Result<Option<Versioned<TargetGroup>>, StoreError> {
        self.elb_get_target_group(arn).await
    }
    async fn list_target_groups(&self) -> Result<Vec<Versioned<TargetGroup>>, StoreError> {
        self.elb_list_target_groups().await
    }
    async fn delete_target_group(&self, arn: &str) -> Result<bool, StoreError> {
        self.elb_delete_target_group(arn).await
    }
    async fn put_listener(&self, listener: &Listener, expected_version: Option<i64>) -> Result<Versioned<Listener>, StoreError> {
        self.elb_put_listener(listener, expected_version).await
    }
    async fn get_listener(&self, arn: &str) -> Result<Option<Versioned<Listener>>, StoreError> {
        self.elb_get_listener(arn).await
    }
    async fn list_listeners(&self, load_balancer_arn: Option<&str>) -> Result<Vec<Versioned<Listener>>, StoreError> {
        self.elb_list_listeners(load_balancer_arn).await
    }
    async fn delete_listener(&self, arn: &str) -> Result<bool, StoreError> {
        self.elb_delete_listener(arn).await
    }
    async fn put_rule(&self, rule: &Rule, expected_version: Option<i64>) -> Result<Versioned<Rule>, StoreError> {
        self.elb_put_rule(rule, expected_version).await
    }
    async fn update_rules(&self, rules: &[Versioned<Rule>]) -> Result<Vec<Versioned<Rule>>, StoreError> {
        self.elb_update_rules(rules).await
    }
    async fn get_rule(&self, arn: &str) -> Result<Option<Versioned<Rule>>, StoreError> {
        self.elb_get_rule(arn).await
    }
    async fn list_rules(&self, listener_arn: Option<&str>) -> Result<Vec<Versioned<Rule>>, StoreError> {
        self.elb_list_rules(listener_arn).await
    }
    async fn delete_rule(&self, arn: &str) -> Result<bool, StoreError> {
        self.elb_delete_rule(arn).await
    }
    async fn register_targets(&self, targets: &[RegisteredTarget]) -> Result<(), StoreError> {
        self.elb_register_targets(targets).await
    }
    async fn deregister_targets(
        &self,
        target_group_arn: &str,
        targets: &[(std::net::Ipv4Addr, u16)],
        draining_until: f64,
    ) -> Result<u64, StoreError> {
        self.elb_deregister_targets(target_group_arn, targets, draining_until).await
    }
    async fn list_targets(&self, target_group_arn: &str) -> Result<Vec<RegisteredTarget>, StoreError> {
        self.elb_list_targets(target_group_arn).await
    }
    async fn remove_drained_targets(&self, now: f64) -> Result<u64, StoreError> {
        self.elb_remove_drained_targets(now).await
    }
    async fn put_target_health(&self, health: &TargetHealthRecord) -> Result<(), StoreError> {
        self.elb_put_target_health(health).await
    }
    async fn list_target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealthRecord>, StoreError> {
        self.elb_list_target_health(target_group_arn).await
    }
    async fn put_certificate(
        &self,
        cert: &CertificateRecord,
        key: &PrivateKeyPem,
        expected_version: Option<i64>,
    ) -> Result<Versioned<CertificateRecord>, StoreError> {
        self.elb_put_certificate(cert, key, expected_version).await
    }
    async fn get_certificate(&self, arn: &str) -> Result<Option<Versioned<CertificateRecord>>, StoreError> {
        self.elb_get_certificate(arn).await
    }
    async fn update_certificate(&self, cert: &CertificateRecord, expected_version: i64) -> Result<Versioned<CertificateRecord>, StoreError> {
        self.elb_update_certificate(cert, expected_version).await
    }
    async fn certificate_key(&self, arn: &str) -> Result<Option<PrivateKeyPem>, StoreError> {
        self.elb_certificate_key(arn).await
    }
    async fn list_certificates(&self) -> Result<Vec<Versioned<CertificateRecord>>, StoreError> {
        self.elb_list_certificates().await
    }
    async fn delete_certificate(&self, arn: &str) -> Result<bool, StoreError> {
        self.elb_delete_certificate(arn).await
    }

    async fn claim_client_token(&self, claim: &TokenClaim<'_>) -> Result<TokenHolder, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // An expired token, or a claim whose request never finished (its
        // server died while placing), is free again.
        sqlx::query(
            "DELETE FROM run_task_tokens WHERE cluster_arn = $1 AND token = $2 \
             AND (created_at < $3 OR (task_arns IS NULL AND created_at < $4))",
        )
        .bind(claim.cluster_arn)
        .bind(claim.token)
        .bind(claim.now - claim.ttl_secs)
        .bind(claim.now - claim.pending_secs)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "INSERT INTO run_task_tokens (cluster_arn, token, digest, task_arns, created_at) \
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (cluster_arn, token) DO NOTHING",
        )
        .bind(claim.cluster_arn)
        .bind(claim.token)
        .bind(claim.digest)
        .bind(claim.now)
        .execute(&mut *tx)
        .await?;
        let holder = if done.rows_affected() > 0 {
            TokenHolder::Claimed
        } else {
            let row = sqlx::query(
                "SELECT digest, task_arns FROM run_task_tokens WHERE cluster_arn = $1 AND token = $2",
            )
            .bind(claim.cluster_arn)
            .bind(claim.token)
            .fetch_one(&mut *tx)
            .await?;
            let digest: String = row.try_get(0)?;
            let arns: Option<String> = row.try_get(1)?;
            let task_arns = arns.map(|a| serde_json::from_str::<Vec<String>>(&a)).transpose()?;
            TokenHolder::Taken { same_request: digest == claim.digest, task_arns }
        };
        tx.commit().await?;
        Ok(holder)
    }

    async fn settle_client_token(
        &self,
        cluster_arn: &str,
        token: &str,
        task_arns: Option<&[String]>,
    ) -> Result<(), StoreError> {
        match task_arns {
            Some(arns) => {
                sqlx::query("UPDATE run_task_tokens SET task_arns = $3 WHERE cluster_arn = $1 AND token = $2")
                    .bind(cluster_arn)
                    .bind(token)
                    .bind(serde_json::to_string(arns)?)
                    .execute(&self.write)
                    .await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM run_task_tokens WHERE cluster_arn = $1 AND token = $2 AND task_arns IS NULL",
                )
                .bind(cluster_arn)
                .bind(token)
                .execute(&self.write)
                .await?;
            }
        }
        Ok(())
    }

    fn watch(&self, kind: RecordKind) -> tokio::sync::broadcast::Receiver<Notice> {
        self.notices.channel(kind).subscribe()
    }
}

#[async_trait]
impl LogStore for SqlStore {
    async fn create_log_group(&self, group: &LogGroupRecord) -> Result<LogGroupRecord, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let id = next_log_id(&mut tx).await?;
        let done = sqlx::query(
            "INSERT INTO log_groups (id, name, created_at, retention_days, class) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(id)
        .bind(&group.name)
        .bind(group.created_at)
        .bind(group.retention_days)
        .bind(&group.class)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        Ok(LogGroupRecord { stored_bytes: 0, ..group.clone() })
    }

    async fn get_log_group(&self, name: &str) -> Result<Option<LogGroupRecord>, StoreError> {
        let sql = format!("SELECT {LOG_GROUP_COLUMNS} FROM log_groups g WHERE g.name = $1");
        let row = sqlx::query(&sql).bind(name).fetch_optional(&self.read).await?;
        row.as_ref().map(log_group).transpose()
    }

    async fn delete_log_group(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // The group's row and then its streams' rows are locked before
        // anything goes, so a stream being created in the group, or
        // events being appended to one, finish first (and go too) or wait
        // and find nothing. Then the group takes a name no client can
        // give or list (a tombstone): it is gone for clients, and the
        // name free, from this commit on.
        let sql = format!("SELECT id FROM log_groups WHERE name = $1{}", self.dialect.for_update());
        let id: Option<i64> = sqlx::query_scalar(&sql).bind(name).fetch_optional(&mut *tx).await?;
        let Some(id) = id else { return Ok(false) };
        let sql = format!("SELECT id FROM log_streams WHERE group_id = $1{}", self.dialect.for_update());
        sqlx::query(&sql).bind(id).fetch_all(&mut *tx).await?;
        sqlx::query("UPDATE log_groups SET name = $2 WHERE id = $1").bind(id).bind(tombstone(id)).execute(&mut *tx).await?;
        tx.commit().await?;
        // Its events and streams go in batches, each a short transaction
        // of its own, so that deleting millions of events never holds
        // the store (the agent's heartbeat, other writes) for long.
        self.purge_log_group(id).await?;
        Ok(true)
    }

    async fn list_log_groups(&self, prefix: Option<&str>, page: Page<String>) -> Result<Vec<LogGroupRecord>, StoreError> {
        let c = self.dialect.bytewise();
        // A prefix test without LIKE, whose `_` is common in group names.
        let sql = format!(
            "SELECT {LOG_GROUP_COLUMNS} FROM log_groups g \
             WHERE ($1 IS NULL OR substr(g.name, 1, length($1)) = $1) AND ($2 IS NULL OR g.name{c} > $2) \
             AND substr(g.name, 1, 1) <> ':' \
             ORDER BY g.name{c} LIMIT $3"
        );
        let rows =
            sqlx::query(&sql).bind(prefix).bind(page.after).bind(i64::from(page.limit)).fetch_all(&self.read).await?;
        rows.iter().map(log_group).collect()
    }

    async fn set_log_group_retention(&self, name: &str, days: Option<i64>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE log_groups SET retention_days = $2 WHERE name = $1")
            .bind(name)
            .bind(days)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_log_stream(&self, group: &str, name: &str, created_at: i64) -> Result<LogStreamRecord, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // A share lock on the group: it cannot be deleted under the new stream.
        let sql = format!("SELECT id FROM log_groups WHERE name = $1{}", self.dialect.for_share());
        let group_id: Option<i64> = sqlx::query_scalar(&sql).bind(group).fetch_optional(&mut *tx).await?;
        let Some(group_id) = group_id else { return Err(StoreError::NotFound(format!("log group {group}"))) };
        let id = next_log_id(&mut tx).await?;
        let done = sqlx::query(
            "INSERT INTO log_streams (id, group_id, name, created_at, stored_bytes, next_seq) \
             VALUES ($1, $2, $3, $4, 0, 0) ON CONFLICT (group_id, name) DO NOTHING",
        )
        .bind(id)
        .bind(group_id)
        .bind(name)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        Ok(LogStreamRecord {
            group: group.to_owned(),
            name: name.to_owned(),
            created_at,
            first_event_timestamp: None,
            last_event_timestamp: None,
            last_ingestion_time: None,
            stored_bytes: 0,
            next_sequence: 0,
        })
    }

    async fn get_log_stream(&self, group: &str, name: &str) -> Result<Option<LogStreamRecord>, StoreError> {
        let sql = format!(
            "SELECT {LOG_STREAM_COLUMNS} FROM log_streams s JOIN log_groups g ON g.id = s.group_id \
             WHERE g.name = $1 AND s.name = $2"
        );
        let row = sqlx::query(&sql).bind(group).bind(name).fetch_optional(&self.read).await?;
        row.as_ref().map(log_stream).transpose()
    }

    async fn delete_log_stream(&self, group: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // Locked first, so an append in progress finishes (and goes too).
        let sql = format!(
            "SELECT id FROM log_streams WHERE group_id = (SELECT id FROM log_groups WHERE name = $1) AND name = $2{}",
            self.dialect.for_update()
        );
        let id: Option<i64> = sqlx::query_scalar(&sql).bind(group).bind(name).fetch_optional(&mut *tx).await?;
        let Some(id) = id else { return Ok(false) };
        for sql in ["DELETE FROM log_events WHERE stream_id = $1", "DELETE FROM log_streams WHERE id = $1"] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn list_log_streams(
        &self,
        group: &str,
        query: &LogStreamQuery,
        page: Page<LogStreamCursor>,
    ) -> Result<Vec<LogStreamRecord>, StoreError> {
        let c = self.dialect.bytewise();
        let (after, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
        let name = format!("s.name{c}");
        let (order, resume) = match query.order {
            LogStreamOrder::Name => (format!("{name} {dir}"), format!("{name} {after} $4")),
            LogStreamOrder::LastEventTime => {
                let key = "COALESCE(s.last_event_time, -1)";
                (format!("{key} {dir}, {name} {dir}"), format!("({key} {after} $3 OR ({key} = $3 AND {name} {after} $4))"))
            }
        };
        // (PostgreSQL wants a type for every parameter, so the resume
        // point's are only there when there is one.)
        let (resume, limit) = if page.after.is_some() { (format!("AND {resume}"), "$5") } else { (String::new(), "$3") };
        let sql = format!(
            "SELECT {LOG_STREAM_COLUMNS} FROM log_streams s JOIN log_groups g ON g.id = s.group_id \
             WHERE g.name = $1 AND ($2 IS NULL OR substr(s.name, 1, length($2)) = $2) {resume} \
             ORDER BY {order} LIMIT {limit}"
        );
        let mut select = sqlx::query(&sql).bind(group).bind(query.prefix.as_deref());
        if let Some((key, name)) = page.after {
            select = select.bind(key).bind(name);
        }
        let rows = select.bind(i64::from(page.limit)).fetch_all(&self.read).await?;
        rows.iter().map(log_stream).collect()
    }

    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[NewLogEvent],
        ingestion_time: i64,
    ) -> Result<LogStreamRecord, StoreError> {
        let (Some(first), Some(last)) =
            (events.iter().map(|e| e.timestamp).min(), events.iter().map(|e| e.timestamp).max())
        else {
            return self
                .get_log_stream(group, stream)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("log stream {group}/{stream}")));
        };
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let bytes: i64 = events.iter().map(|e| message_bytes(&e.message)).sum();
        let stored: Vec<(Cow<'_, str>, i64)> = events.iter().map(|e| escape_message(&e.message)).collect();
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // The update comes first: it holds the stream's row lock (or the
        // SQLite write lock) until commit, so appends to a stream are
        // serialised and take consecutive sequence numbers.
        let done = sqlx::query(
            "UPDATE log_streams SET next_seq = next_seq + $3, stored_bytes = stored_bytes + $4, \
             first_event_time = CASE WHEN first_event_time IS NULL OR first_event_time > $5 THEN $5 \
                 ELSE first_event_time END, \
             last_event_time = CASE WHEN last_event_time IS NULL OR last_event_time < $6 THEN $6 \
                 ELSE last_event_time END, \
             last_ingestion_time = $7 \
             WHERE group_id = (SELECT id FROM log_groups WHERE name = $1) AND name = $2",
        )
        .bind(group)
        .bind(stream)
        .bind(count)
        .bind(bytes)
        .bind(first)
        .bind(last)
        .bind(ingestion_time)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("log stream {group}/{stream}")));
        }
        let sql = format!(
            "SELECT {LOG_STREAM_COLUMNS}, s.id, s.group_id FROM log_streams s JOIN log_groups g ON g.id = s.group_id \
             WHERE g.name = $1 AND s.name = $2"
        );
        // None: a DeleteLogGroup renamed the group while this append
        // waited for the stream's row (PostgreSQL read the name before the
        // wait): the append lost to the delete and is undone.
        let row = sqlx::query(&sql).bind(group).bind(stream).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Err(StoreError::NotFound(format!("log stream {group}/{stream}"))) };
        let record = log_stream(&row)?;
        let stream_id: i64 = row.try_get(8)?;
        let group_id: i64 = row.try_get(9)?;
        let mut seq = record.next_sequence - count;
        for (chunk, stored) in events.chunks(EVENTS_PER_INSERT).zip(stored.chunks(EVENTS_PER_INSERT)) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = i * 8;
                    let params: Vec<String> = (1..=8).map(|k| format!("${}", p + k)).collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO log_events (group_id, stream_id, seq, event_time, ingestion_time, bytes, escaped, message) \
                 VALUES {}",
                values.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for (event, (message, escaped)) in chunk.iter().zip(stored) {
                insert = insert
                    .bind(group_id)
                    .bind(stream_id)
                    .bind(seq)
                    .bind(event.timestamp)
                    .bind(ingestion_time)
                    .bind(message_bytes(&event.message))
                    .bind(*escaped)
                    .bind(message.as_ref());
                seq += 1;
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    async fn read_log_events(
        &self,
        group: &str,
        stream: &str,
        range: &EventRange,
    ) -> Result<Vec<LogEventRecord>, StoreError> {
        let stream_id: Option<i64> = sqlx::query_scalar(
            "SELECT s.id FROM log_streams s JOIN log_groups g ON g.id = s.group_id WHERE g.name = $1 AND s.name = $2",
        )
        .bind(group)
        .bind(stream)
        .fetch_optional(&self.read)
        .await?;
        let Some(stream_id) = stream_id else { return Ok(Vec::new()) };
        if range.limit == 0 {
            return Ok(Vec::new());
        }
        let (position, order) = match range.direction {
            Direction::Forward => ("(event_time > $4 OR (event_time = $4 AND seq >= $5))", "ASC"),
            Direction::Backward => ("(event_time < $4 OR (event_time = $4 AND seq < $5))", "DESC"),
        };
        // First the events' sizes only (from the index, without the
        // messages), to see how many fit the byte budget...
        let sql = format!(
            "SELECT event_time, seq, bytes FROM log_events \
             WHERE stream_id = $1 AND event_time >= $2 AND event_time < $3 AND {position} \
             ORDER BY event_time {order}, seq {order} LIMIT $6"
        );
        let sizes: Vec<(i64, i64, i64)> = sqlx::query_as(&sql)
            .bind(stream_id)
            .bind(range.start_time.unwrap_or(i64::MIN))
            .bind(range.end_time.unwrap_or(i64::MAX))
            .bind(range.from.timestamp)
            .bind(range.from.sequence)
            .bind(i64::from(range.limit))
            .fetch_all(&self.read)
            .await?;
        let mut cost = 0u64;
        let mut kept = 0usize;
        for &(_, _, bytes) in &sizes {
            let c = event_cost(bytes);
            if kept > 0 && cost.saturating_add(c) > range.max_bytes {
                break;
            }
            cost = cost.saturating_add(c);
            kept += 1;
        }
        let (Some(&(t0, s0, _)), Some(&(t1, s1, _))) = (sizes.first(), sizes.get(kept.wrapping_sub(1))) else {
            return Ok(Vec::new());
        };
        let ((lo_t, lo_s), (hi_t, hi_s)) = match range.direction {
            Direction::Forward => ((t0, s0), (t1, s1)),
            Direction::Backward => ((t1, s1), (t0, s0)),
        };
        // ...then those events, whole.
        let sql = format!(
            "SELECT {LOG_EVENT_COLUMNS} FROM log_events e JOIN log_streams s ON s.id = e.stream_id \
             WHERE e.stream_id = $1 AND (e.event_time > $2 OR (e.event_time = $2 AND e.seq >= $3)) \
             AND (e.event_time < $4 OR (e.event_time = $4 AND e.seq <= $5)) \
             ORDER BY e.event_time, e.seq LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(stream_id)
            .bind(lo_t)
            .bind(lo_s)
            .bind(hi_t)
            .bind(hi_s)
            .bind(i64::try_from(kept).unwrap_or(i64::MAX))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(log_event).collect()
    }

    async fn filter_log_events(
        &self,
        group: &str,
        filter: &EventFilter,
        matches: &(dyn for<'m> Fn(&'m str) -> bool + Send + Sync),
    ) -> Result<FilteredEvents, StoreError> {
        let group_id: Option<i64> = sqlx::query_scalar("SELECT id FROM log_groups WHERE name = $1")
            .bind(group)
            .fetch_optional(&self.read)
            .await?;
        let Some(group_id) = group_id else { return Ok(FilteredEvents::default()) };
        let streams = match &filter.stream_names {
            None => String::new(),
            Some(names) if names.is_empty() => return Ok(FilteredEvents::default()),
            Some(names) => {
                let params: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 9)).collect();
                format!("AND s.name IN ({})", params.join(", "))
            }
        };
        let sql = format!(
            "SELECT {LOG_EVENT_COLUMNS} FROM log_events e JOIN log_streams s ON s.id = e.stream_id \
             WHERE e.group_id = $1 AND e.event_time >= $2 AND e.event_time < $3 \
             AND (e.event_time > $4 OR (e.event_time = $4 AND (e.stream_id > $5 OR (e.stream_id = $5 AND e.seq > $6)))) \
             AND ($7 IS NULL OR substr(s.name, 1, length($7)) = $7) {streams} \
             ORDER BY e.event_time, e.stream_id, e.seq LIMIT $8"
        );
        let limit = filter.limit.max(1) as usize;
        let scan_limit = filter.scan_limit.max(1);
        let start = EventKey { timestamp: i64::MIN, stream_id: i64::MIN, sequence: i64::MIN };
        let mut cursor = filter.after.unwrap_or(start);
        let mut scanned = 0u32;
        let mut cost = 0u64;
        let mut out = FilteredEvents::default();
        loop {
            let want = FILTER_CHUNK.min(scan_limit - scanned);
            let mut query = sqlx::query(&sql)
                .bind(group_id)
                .bind(filter.start_time.unwrap_or(i64::MIN))
                .bind(filter.end_time.unwrap_or(i64::MAX))
                .bind(cursor.timestamp)
                .bind(cursor.stream_id)
                .bind(cursor.sequence)
                .bind(filter.stream_prefix.as_deref())
                .bind(i64::from(want));
            for name in filter.stream_names.iter().flatten() {
                query = query.bind(name.as_str());
            }
            let rows = query.fetch_all(&self.read).await?;
            // Fewer rows than asked for: this read reached the end of the range.
            let exhausted = rows.len() < want as usize;
            for (i, row) in rows.iter().enumerate() {
                let event = log_event(row)?;
                if matches(&event.message) {
                    let c = event_cost(message_bytes(&event.message));
                    if !out.events.is_empty() && cost.saturating_add(c) > filter.max_bytes {
                        // Full: this event is the first of the next call.
                        out.resume_after = Some(cursor);
                        return Ok(out);
                    }
                    cost = cost.saturating_add(c);
                    cursor = event.key;
                    out.events.push(event);
                    if out.events.len() >= limit {
                        let searched_all = exhausted && i + 1 == rows.len();
                        out.resume_after = if searched_all { None } else { Some(cursor) };
                        return Ok(out);
                    }
                } else {
                    cursor = event.key;
                }
            }
            scanned += u32::try_from(rows.len()).unwrap_or(u32::MAX);
            if exhausted {
                return Ok(out);
            }
            if scanned >= scan_limit {
                out.resume_after = Some(cursor);
                return Ok(out);
            }
        }
    }

    async fn expire_log_events(&self, now_ms: i64) -> Result<u64, StoreError> {
        // Groups whose deletion a crash cut short are finished first.
        let doomed: Vec<i64> = sqlx::query_scalar("SELECT id FROM log_groups WHERE substr(name, 1, 1) = ':'")
            .fetch_all(&self.read)
            .await?;
        for id in doomed {
            self.purge_log_group(id).await?;
        }
        let groups: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, retention_days FROM log_groups WHERE retention_days IS NOT NULL")
                .fetch_all(&self.read)
                .await?;
        let mut expired = 0;
        for (group_id, days) in groups {
            let cutoff = now_ms.saturating_sub(days.saturating_mul(DAY_MS));
            // Only streams with something to expire (first_event_time is
            // kept up to date), one batch per transaction.
            let streams: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM log_streams WHERE group_id = $1 AND first_event_time < $2")
                    .bind(group_id)
                    .bind(cutoff)
                    .fetch_all(&self.read)
                    .await?;
            for stream_id in streams {
                loop {
                    let (deleted, more) = self.expire_batch(stream_id, cutoff).await?;
                    expired += deleted;
                    if !more {
                        break;
                    }
                }
            }
        }
        Ok(expired)
    }
}

/// The name a log group being deleted takes: `:` is in no name CloudWatch
/// takes, and lists leave such names out.
fn tombstone(id: i64) -> String {
    format!(":deleting:{id}")
}

impl SqlStore {
    /// Deletes a (tombstoned) log group's events, [`EXPIRE_BATCH`] per
    /// transaction, then its streams and its row. Idempotent: a crash
    /// part way leaves the tombstone, which [`LogStore::expire_log_events`]
    /// finishes.
    async fn purge_log_group(&self, id: i64) -> Result<(), StoreError> {
        let streams: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM log_streams WHERE group_id = $1").bind(id).fetch_all(&self.write).await?;
        for stream_id in streams {
            loop {
                let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
                let seqs: Vec<i64> =
                    sqlx::query_scalar("SELECT seq FROM log_events WHERE stream_id = $1 ORDER BY seq LIMIT $2")
                        .bind(stream_id)
                        .bind(EXPIRE_BATCH)
                        .fetch_all(&mut *tx)
                        .await?;
                if let Some(&last) = seqs.last() {
                    sqlx::query("DELETE FROM log_events WHERE stream_id = $1 AND seq <= $2")
                        .bind(stream_id)
                        .bind(last)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                if (seqs.len() as i64) < EXPIRE_BATCH {
                    break;
                }
            }
            sqlx::query("DELETE FROM log_streams WHERE id = $1").bind(stream_id).execute(&self.write).await?;
        }
        sqlx::query("DELETE FROM log_groups WHERE id = $1").bind(id).execute(&self.write).await?;
        Ok(())
    }

    /// Deletes up to [`EXPIRE_BATCH`] of a stream's events older than
    /// `cutoff`, in one transaction holding the stream's row (appends wait).
    /// Returns how many went and whether there may be more.
    async fn expire_batch(&self, stream_id: i64, cutoff: i64) -> Result<(u64, bool), StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let sql = format!("SELECT id FROM log_streams WHERE id = $1{}", self.dialect.for_update());
        if sqlx::query_scalar::<_, i64>(&sql).bind(stream_id).fetch_optional(&mut *tx).await?.is_none() {
            return Ok((0, false)); // deleted meanwhile
        }
        let batch: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT event_time, seq, bytes FROM log_events WHERE stream_id = $1 AND event_time < $2 \
             ORDER BY event_time, seq LIMIT $3",
        )
        .bind(stream_id)
        .bind(cutoff)
        .bind(EXPIRE_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some(&(last_time, last_seq, _)) = batch.last() else { return Ok((0, false)) };
        let bytes: i64 = batch.iter().map(|b| b.2).sum();
        let done = sqlx::query(
            "DELETE FROM log_events WHERE stream_id = $1 AND (event_time < $2 OR (event_time = $2 AND seq <= $3))",
        )
        .bind(stream_id)
        .bind(last_time)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE log_streams SET stored_bytes = stored_bytes - $2, \
             first_event_time = (SELECT MIN(e.event_time) FROM log_events e WHERE e.stream_id = $1) WHERE id = $1",
        )
        .bind(stream_id)
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((done.rows_affected(), batch.len() as i64 == EXPIRE_BATCH))
    }
}

/// Applies the schema migrations that have not been applied yet.
async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    Migrator::new(EmbeddedMigrations(MIGRATIONS)).await?.run(pool).await?;
    Ok(())
}

/// [`MIGRATIONS`] (or, in upgrade tests, the first few), compiled into
/// the binary.
#[derive(Debug)]
struct EmbeddedMigrations(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, Cow::Borrowed(sql), false)
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The writer: WAL (readers don't block it, it doesn't block readers),
/// `synchronous = FULL` (a returned commit is on disk), foreign keys.
async fn sqlite_writer_setup(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let mode: String = conn.fetch_one("PRAGMA journal_mode = WAL").await?.try_get(0)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "SQLite store could not switch to WAL mode");
    }
    let sql =
        format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
    conn.execute(sqlx::raw_sql(&sql)).await?;
    Ok(())
}

/// Readers: `query_only`, so a write sent down the wrong pool fails loudly.
async fn sqlite_reader_setup(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let sql = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA query_only = ON");
    conn.execute(sqlx::raw_sql(&sql)).await?;
    Ok(())
}

/// Creates the database file readable by its owner only (it holds API
/// secrets) if it does not exist; SQLite gives its `-wal` and `-shm`
/// files the same permissions.
/// Creates the file, private to the owner, if it is not there; `true` if
/// it was made now.
fn create_private(path: &Path) -> Result<bool, StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::Database(sqlx::Error::Io(e))),
    }
}

/// Takes the exclusive lock of the SQLite store at `path` (the file
/// `PATH.lock`, which then holds this process's pid): a second server on
/// the same database, from whatever data dir, is refused. Stores of one
/// process on one file share the lock.
fn lock_sqlite(path: &Path) -> Result<Arc<std::fs::File>, StoreError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError, Weak};
    static HELD: Mutex<Option<HashMap<std::path::PathBuf, Weak<std::fs::File>>>> = Mutex::new(None);
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    let held = held.get_or_insert_with(HashMap::new);
    if let Some(lock) = held.get(path).and_then(Weak::upgrade) {
        return Ok(lock);
    }
    let lock = Arc::new(take_sqlite_lock(path)?);
    held.insert(path.to_owned(), Arc::downgrade(&lock));
    Ok(lock)
}

fn take_sqlite_lock(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::io::{Read as _, Seek as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StoreError::InUse { path: path.display().to_string(), holder: holder.trim().to_owned() });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// What a store file made earlier must be: not empty (a new store would
/// come with a new root key, leaving every credential and record
/// behind) and an SQLite database.
fn check_sqlite_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read as _;
    let unusable = |what: String| StoreError::Unusable { path: path.display().to_string(), what };
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    let mut header = [0u8; 16];
    let read = file.read(&mut header).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_has_pages = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if read == 0 && !wal_has_pages {
        return Err(unusable(
            "is empty (0 bytes), so it holds no Berth store. If it should hold your data, restore it from a \
             backup; to start a new store, delete the file (a new root key is made) and start again."
                .into(),
        ));
    }
    if read > 0 && (read < header.len() || &header != b"SQLite format 3\0") {
        return Err(unusable(
            "is not an SQLite database (its first bytes are not \"SQLite format 3\"). Point --store at the right \
             file, or restore it from a backup."
                .into(),
        ));
    }
    Ok(())
}

/// A store file SQLite cannot read: the error names the file, SQLite's
/// reason and what to do.
fn unusable_sqlite(path: &Path, e: &sqlx::Error) -> StoreError {
    StoreError::Unusable {
        path: path.display().to_string(),
        what: format!(
            "cannot be read as an SQLite database ({e}). It may be damaged: restore it from a backup, or try \
             `sqlite3 {} .recover` into a new file and point --store at that.",
            path.display()
        ),
    }
}

/// A URL for sqlx's SQLite driver naming `path` exactly: every byte
/// that could mean something in a URL is percent-encoded.
fn sqlite_url(path: &Path) -> String {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt as _;
    let mut url = String::from("sqlite://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url.push_str("?mode=rwc");
    url
}

/// `url` without the password, if it has one.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_only_the_password() {
        assert_eq!(redact("postgres://u:secret@db:5432/berth"), "postgres://u@db:5432/berth");
        assert_eq!(redact("postgres://u@db/berth"), "postgres://u@db/berth");
        assert_eq!(redact("mysql://db/x"), "mysql://db/x");
        assert_eq!(redact("sqlite:///a@b/c.db"), "sqlite:///a@b/c.db");
    }

    #[test]
    fn sqlite_urls_name_the_path_exactly() {
        assert_eq!(sqlite_url(Path::new("/var/lib/berth/berth.db")), "sqlite:///var/lib/berth/berth.db?mode=rwc");
        assert_eq!(sqlite_url(Path::new("rel/a b#?%20.db")), "sqlite://rel/a%20b%23%3F%2520.db?mode=rwc");
    }

    #[test]
    fn messages_with_nul_round_trip_and_others_are_stored_as_they_are() {
        for m in ["plain \\ text", "", "a\0b", "\0", "\\0\0\\", "ends \\", "ü\0ß\\n"] {
            let (stored, escaped) = escape_message(m);
            assert!(!stored.contains('\0'), "{m:?}");
            assert_eq!(escaped == 0, !m.contains('\0'), "{m:?}");
            if escaped == 0 {
                assert_eq!(stored, m);
            }
            assert_eq!(unescape_message(stored.into_owned(), escaped), m);
        }
    }

    /// A database at schema 4 with a task's published port (the old
    /// `public/ADDR/PROTO` rows) and its address; opening it with this
    /// code must keep both held by the task.
    /// (`raw_url` names the database for sqlx, `url` for [`open`].)
    async fn upgrade_keeps_published_ports(raw_url: &str, url: &str) {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect(raw_url).await.expect("connect");
        Migrator::new(EmbeddedMigrations(&MIGRATIONS[..4])).await.expect("migrator").run(&pool).await.expect("schema 4");
        for (subnet, ip, task) in [
            ("public/192.0.2.10/tcp", "8080", "arn:task/a"),
            ("public/192.0.2.10/udp", "53", "arn:task/a"),
            ("public/192.0.2.10/tcp", "443", "arn:task/b"),
            ("subnet-default", "10.89.0.2", "arn:task/a"),
        ] {
            sqlx::query("INSERT INTO ip_allocations (subnet_id, ip, task_arn) VALUES ($1, $2, $3)")
                .bind(subnet)
                .bind(ip)
                .bind(task)
                .execute(&pool)
                .await
                .expect("old row");
        }
        pool.close().await;

        let store = open(url).await.expect("upgrade").records;
        let tcp = |port| PortClaim { address: "192.0.2.10".parse().unwrap(), protocol: PortProtocol::Tcp, port };
        let udp = |port| PortClaim { protocol: PortProtocol::Udp, ..tcp(port) };
        assert_eq!(store.task_ports("arn:task/a").await.unwrap(), vec![tcp(8080), udp(53)]);
        assert_eq!(store.task_ports("arn:task/b").await.unwrap(), vec![tcp(443)]);
        // Still held: another task cannot take them.
        assert!(!store.claim_port(tcp(8080), "arn:task/c").await.unwrap());
        assert!(store.claim_port(tcp(8080), "arn:task/a").await.unwrap());
        // Addresses are only addresses now.
        assert_eq!(store.task_ips("arn:task/a").await.unwrap(), vec![("subnet-default".to_owned(), "10.89.0.2".to_owned())]);
        assert!(store.allocated_ips("public/192.0.2.10/tcp").await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_upgrade_keeps_published_ports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        upgrade_keeps_published_ports(&sqlite_url(&path), &format!("sqlite://{}", path.display())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_upgrade_keeps_published_ports() {
        let pg = berth_testinfra::postgres::TempPostgres::shared().expect("PostgreSQL for tests");
        let url = pg.create_database("upgrade_keeps_published_ports").expect("create database");
        upgrade_keeps_published_ports(&url, &url).await;
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        // Strictly increasing from 1: numbers are handed out to branches
        // ahead of their merge, so a gap can stand until its branch lands.
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(versions.first(), Some(&1));
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "in order, each once: {versions:?}");
    }
}
