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
//! Durability: SQLite runs in WAL mode with `synchronous = FULL`, so a
//! write that returned survives a crash of the process or the machine.

use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::Arc;

use async_trait::async_trait;
use berth_model::records::{NodeRecord, TaskDefinitionRecord, TaskRecord};
use berth_wire::ecs::{Cluster, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Executor as _, Row as _};

use crate::{
    AccessKey, ClusterUsage, FamilyStatus, NodeUsage, Page, SortOrder, Store, StoreError, TaskDefinitionFilter,
    TaskFilter, Versioned,
};

/// The schema, in order. Applied on open; applied ones are skipped (sqlx
/// records them, with a checksum, in `_sqlx_migrations`).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "tasks and nodes", include_str!("../migrations/0002_tasks_and_nodes.sql")),
];

/// How long an SQLite connection waits for another process's lock.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
const SQLITE_READERS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 8;

/// Opens (creating if needed) the store at `url`: `sqlite://PATH` or
/// `postgres://...` / `postgresql://...`, and brings its schema up to date.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    sqlx::any::install_default_drivers();
    let store = if url.starts_with("sqlite:") {
        SqlStore::open_sqlite(url).await?
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        SqlStore::open_postgres(url).await?
    } else {
        return Err(StoreError::UnsupportedUrl(redact(url)));
    };
    Ok(Arc::new(store))
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
}

struct SqlStore {
    dialect: Dialect,
    /// Runs every write. On SQLite it has exactly one connection.
    write: AnyPool,
    /// Runs reads. On SQLite, read-only connections of their own; on
    /// PostgreSQL, the same pool as `write`.
    read: AnyPool,
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
        create_private(Path::new(path))?;
        // Absolute and free of `..`, which URL parsing would resolve lexically.
        let path = std::fs::canonicalize(path).map_err(sqlx::Error::Io)?;
        let path = path.as_path();
        // The `Any` driver takes SQLite's file and open mode from a URL (the
        // rest is set per connection below); sqlx decodes its path.
        let any = AnyConnectOptions::from_str(&sqlite_url(path))?;

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
        Ok(Self { dialect: Dialect::Sqlite, write, read })
    }

    async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let any = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new().max_connections(POSTGRES_CONNECTIONS).connect_with(any).await?;
        migrate(&pool).await?;
        tracing::debug!(url = %redact(url), "opened PostgreSQL store");
        Ok(Self { dialect: Dialect::Postgres, write: pool.clone(), read: pool })
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
        let mut query = sqlx::query(&sql).bind(key).bind(serde_json::to_string(record)?);
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
        let mut query = sqlx::query(&sql).bind(key).bind(expected_version).bind(serde_json::to_string(record)?);
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

    async fn get<R: Keyed>(&self, key: &str) -> Result<Option<Versioned<R>>, StoreError> {
        let sql = format!("SELECT version, body FROM {} WHERE {} = $1", R::TABLE, R::KEY);
        let row = sqlx::query(&sql).bind(key).fetch_optional(&self.read).await?;
        row.as_ref().map(versioned).transpose()
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
    fn key(&self) -> Option<&str>;
    fn columns(&self) -> Vec<Col>;
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
    fn key(&self) -> Option<&str> {
        self.cluster_name.as_deref()
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(self.status.as_deref())]
    }
}

impl Keyed for TaskRecord {
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
    ];
    fn key(&self) -> Option<&str> {
        self.task.task_arn.as_deref()
    }
    fn columns(&self) -> Vec<Col> {
        let t = &self.task;
        let family = t
            .task_definition_arn
            .as_deref()
            .and_then(|arn| arn.rsplit_once("task-definition/"))
            .and_then(|(_, rest)| rest.rsplit_once(':'))
            .map(|(family, _)| family);
        vec![
            text(t.cluster_arn.as_deref()),
            text(t.last_status.as_deref()),
            text(t.desired_status.as_deref()),
            text(family),
            text(t.started_by.as_deref()),
            text(t.group.as_deref()),
            text(t.launch_type.map(|l| l.as_str())),
            text(self.node_id.as_deref()),
            Col::Int(i64::from(self.cpu)),
            Col::Int(i64::from(self.memory)),
        ]
    }
}

impl Keyed for NodeRecord {
    const TABLE: &'static str = "nodes";
    const KEY: &'static str = "id";
    const KEY_MEMBER: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["status"];
    fn key(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(&self.status))]
    }
}

impl Keyed for Service {
    const TABLE: &'static str = "services";
    const KEY: &'static str = "service_arn";
    const KEY_MEMBER: &'static str = "serviceArn";
    const COLUMNS: &'static [&'static str] = &["cluster_arn", "status"];
    fn key(&self) -> Option<&str> {
        self.service_arn.as_deref()
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(self.cluster_arn.as_deref()), text(self.status.as_deref())]
    }
}

/// A row's `version` and JSON `body`.
fn versioned<T: DeserializeOwned>(row: &AnyRow) -> Result<Versioned<T>, StoreError> {
    let version: i64 = row.try_get("version")?;
    let body: String = row.try_get("body")?;
    Ok(Versioned { version, value: serde_json::from_str(&body)? })
}

fn all_versioned<T: DeserializeOwned>(rows: &[AnyRow]) -> Result<Vec<Versioned<T>>, StoreError> {
    rows.iter().map(versioned).collect()
}

/// A node's body and the three usage sums of a node query.
fn node_usage(row: &AnyRow) -> Result<NodeUsage, StoreError> {
    let body: String = row.try_get(0)?;
    let sum = |i: usize| -> Result<u32, StoreError> {
        let v: i64 = row.try_get(i)?;
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    };
    Ok(NodeUsage { node: serde_json::from_str(&body)?, cpu_used: sum(1)?, memory_used: sum(2)?, tasks: sum(3)? })
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

#[async_trait]
impl Store for SqlStore {
    async fn insert_cluster(&self, cluster: &Cluster) -> Result<Versioned<Cluster>, StoreError> {
        self.insert(cluster).await
    }

    async fn get_cluster(&self, name: &str) -> Result<Option<Versioned<Cluster>>, StoreError> {
        self.get(name).await
    }

    async fn update_cluster(&self, cluster: &Cluster, expected_version: i64) -> Result<Versioned<Cluster>, StoreError> {
        self.update(cluster, expected_version).await
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
        .bind(serde_json::to_string(&record)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
        row.as_ref().map(versioned).transpose()
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
        row.as_ref().map(versioned).transpose()
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
        .bind(serde_json::to_string(record)?)
        .bind(expected_version)
        .execute(&self.write)
        .await?;
        match done.rows_affected() {
            0 => Err(StoreError::Conflict),
            _ => Ok(Versioned { version: expected_version + 1, value: record.clone() }),
        }
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
        all_versioned(&rows)
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

    async fn upsert_node(&self, node: &NodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, status, version, body) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (id) DO UPDATE SET status = $2, body = $3, version = nodes.version + 1",
        )
        .bind(&node.id)
        .bind(&node.status)
        .bind(serde_json::to_string(node)?)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        Ok(self.get::<NodeRecord>(id).await?.map(|v| v.value))
    }

    async fn list_nodes(&self) -> Result<Vec<NodeUsage>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.body, \
             (SELECT CAST(COALESCE(SUM(t.cpu), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT CAST(COALESCE(SUM(t.memory), 0) AS BIGINT) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')), \
             (SELECT COUNT(*) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')) \
             FROM nodes n ORDER BY n.id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(node_usage).collect()
    }

    async fn place_task(
        &self,
        record: &TaskRecord,
        node_id: &str,
        fits: &(dyn for<'u> Fn(&'u NodeUsage) -> bool + Send + Sync),
    ) -> Result<Versioned<TaskRecord>, StoreError> {
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
             (SELECT COUNT(*) FROM tasks t WHERE t.node_id = n.id AND (t.last_status IS NULL OR t.last_status <> 'STOPPED')) \
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
        let key = placed.key().ok_or(StoreError::MissingKey(TaskRecord::KEY_MEMBER))?.to_owned();
        let params: Vec<String> = (0..TaskRecord::COLUMNS.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "INSERT INTO tasks (task_arn, body, {columns}, version) VALUES ($1, $2, {params}, 1) \
             ON CONFLICT (task_arn) DO NOTHING",
            columns = TaskRecord::COLUMNS.join(", "),
            params = params.join(", "),
        );
        let mut query = sqlx::query(&sql).bind(key).bind(serde_json::to_string(&placed)?);
        for value in placed.columns() {
            query = value.bind_to(query);
        }
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        Ok(Versioned { version: 1, value: placed })
    }

    async fn put_task(
        &self,
        record: &TaskRecord,
        expected_version: Option<i64>,
    ) -> Result<Versioned<TaskRecord>, StoreError> {
        self.put(record, expected_version).await
    }

    async fn get_task(&self, task_arn: &str) -> Result<Option<Versioned<TaskRecord>>, StoreError> {
        self.get(task_arn).await
    }

    async fn list_tasks(&self, filter: &TaskFilter, page: Page<String>) -> Result<Vec<Versioned<TaskRecord>>, StoreError> {
        let c = self.dialect.bytewise();
        let live = if filter.live_only { "AND (last_status IS NULL OR last_status <> 'STOPPED')" } else { "" };
        let sql = format!(
            "SELECT version, body FROM tasks WHERE ($1 IS NULL OR cluster_arn = $1) AND ($2 IS NULL OR family = $2) \
             AND ($3 IS NULL OR started_by = $3) AND ($4 IS NULL OR task_group = $4) \
             AND ($5 IS NULL OR desired_status = $5) AND ($6 IS NULL OR launch_type = $6) \
             AND ($7 IS NULL OR node_id = $7) AND ($8 IS NULL OR task_arn{c} > $8) {live} \
             ORDER BY task_arn{c} LIMIT $9"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.cluster_arn.as_deref())
            .bind(filter.family.as_deref())
            .bind(filter.started_by.as_deref())
            .bind(filter.group.as_deref())
            .bind(filter.desired_status.as_deref())
            .bind(filter.launch_type.as_deref())
            .bind(filter.node_id.as_deref())
            .bind(page.after)
            .bind(i64::from(page.limit))
            .fetch_all(&self.read)
            .await?;
        all_versioned(&rows)
    }

    async fn put_service(
        &self,
        service: &Service,
        expected_version: Option<i64>,
    ) -> Result<Versioned<Service>, StoreError> {
        self.put(service, expected_version).await
    }

    async fn get_service(&self, service_arn: &str) -> Result<Option<Versioned<Service>>, StoreError> {
        self.get(service_arn).await
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
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM access_keys").fetch_one(&self.read).await?)
    }
}

/// Applies the schema migrations that have not been applied yet.
async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    Migrator::new(EmbeddedMigrations).await?.run(pool).await?;
    Ok(())
}

/// [`MIGRATIONS`], compiled into the binary.
#[derive(Debug)]
struct EmbeddedMigrations;

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = MIGRATIONS
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
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Database(sqlx::Error::Io(e))),
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
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(versions, expected);
    }
}
