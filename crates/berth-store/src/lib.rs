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
use berth_model::records::TaskDefinitionRecord;
use berth_wire::ecs::{Cluster, Service, Task};

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

    // --- tasks and services (written by later components; the API reads
    //     them for cluster statistics and DeleteCluster) ---

    /// Inserts or replaces a task keyed by its ARN. `expected_version`
    /// `None` means "must not exist yet".
    async fn put_task(&self, task: &Task, expected_version: Option<i64>) -> Result<Versioned<Task>, StoreError>;
    async fn get_task(&self, task_arn: &str) -> Result<Option<Versioned<Task>>, StoreError>;
    /// Inserts or replaces a service keyed by its ARN, as `put_task`.
    async fn put_service(&self, service: &Service, expected_version: Option<i64>) -> Result<Versioned<Service>, StoreError>;
    async fn get_service(&self, service_arn: &str) -> Result<Option<Versioned<Service>>, StoreError>;

    // --- access keys ---

    /// Inserts a key; `Conflict` if the id exists.
    async fn insert_access_key(&self, key: &AccessKey) -> Result<(), StoreError>;
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError>;
    async fn count_access_keys(&self) -> Result<i64, StoreError>;
}
