//! Persistence of Berth's model with optimistic concurrency.
//!
//! One [`Store`] trait, two backends over one schema: SQLite in the data
//! dir (the embedded default) and PostgreSQL (fleets). Every record is the
//! ECS wire shape stored as JSON, beside the columns it is looked up and
//! listed by, and a `version` that each write checks and bumps: a write
//! that names a stale version fails with [`StoreError::Conflict`] and
//! changes nothing, so callers re-read and retry.
//!
//! The same test suite (`tests/store.rs`) runs against both backends.

use async_trait::async_trait;
use berth_model::records::{NodeRecord, TaskDefinitionRecord, TaskRecord};
use berth_wire::ecs::{Cluster, Service};

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
    pub desired_status: Option<String>,
    pub launch_type: Option<String>,
    pub node_id: Option<String>,
    /// Leave out tasks whose lastStatus is STOPPED.
    pub live_only: bool,
}

/// A node and what its live tasks reserve on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUsage {
    pub node: NodeRecord,
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
    async fn upsert_node(&self, node: &NodeRecord) -> Result<(), StoreError>;
    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError>;
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
        record: &TaskRecord,
        node_id: &str,
        fits: &(dyn for<'u> Fn(&'u NodeUsage) -> bool + Send + Sync),
    ) -> Result<Versioned<TaskRecord>, StoreError>;
    /// Inserts or replaces a task keyed by its ARN. `expected_version`
    /// `None` means "must not exist yet".
    async fn put_task(&self, record: &TaskRecord, expected_version: Option<i64>) -> Result<Versioned<TaskRecord>, StoreError>;
    async fn get_task(&self, task_arn: &str) -> Result<Option<Versioned<TaskRecord>>, StoreError>;
    /// Tasks matching `filter`, ordered by ARN, page key = task ARN.
    async fn list_tasks(&self, filter: &TaskFilter, page: Page<String>) -> Result<Vec<Versioned<TaskRecord>>, StoreError>;

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
}
