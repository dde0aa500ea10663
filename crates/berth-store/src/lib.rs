//! Persistence of Berth's model with optimistic concurrency.
//!
//! Two traits over one backend and one schema, for SQLite in the data
//! dir (the embedded default) and PostgreSQL (fleets): [`Store`] for
//! Berth's records and [`LogStore`] for CloudWatch Logs data, apart so
//! that what only ships or serves logs holds nothing else. [`open`] gives
//! both, sharing the backend's connections. Every record is stored as
//! JSON carrying a `formatVersion`, beside the columns it is looked up and
//! listed by, and a `version` that each write checks and bumps: a write
//! that names a stale version fails with [`StoreError::Conflict`] and
//! changes nothing, so callers re-read and retry. Tasks, nodes and
//! services are the domain's typed objects (`berth-model`); task
//! definitions and clusters keep their ECS shape (the user's documents,
//! returned as registered). A row of an older format is read through that
//! format's reader; one of a newer format is refused
//! ([`StoreError::FormatTooNew`]), never misread.
//!
//! CloudWatch Logs data (groups, streams, events) is different: plain
//! columns, append-only events numbered per stream, and no versions —
//! writes that must not interleave (appends to one stream, deleting what
//! is being appended to) are serialised by row locks instead.
//!
//! Every committed write of a record is announced to [`Store::watch`]ers
//! of its [`RecordKind`] as a [`Notice`] with the version written.
//!
//! The same test suite (`tests/store.rs`) runs against both backends.

use std::net::Ipv4Addr;
use std::sync::Arc;

use async_trait::async_trait;
use berth_model::elb::{CertificateRecord, Listener, LoadBalancer, RegisteredTarget, Rule, TargetGroup, TargetHealthRecord};
use berth_model::network::{SecurityGroupRecord, SubnetRecord};
use berth_model::lifecycle::DesiredStatus;
use berth_model::node::Node;
use berth_model::records::TaskDefinitionRecord;
use berth_model::service::{Service, ServiceStatus};
use berth_model::task::Task;
use berth_wire::ecs::Cluster;

mod backend;
pub mod discovery;
pub mod iam;
mod logs;
pub mod metrics;
pub mod secrets;
pub mod usage;

pub use backend::open;
pub use discovery::DiscoveryStore;
pub use iam::{IamStore, KeyRecord, SessionSpec, TemporaryCredentials, issue_role_session, issue_session, policy_documents};
pub use metrics::{MetricQuery, MetricSeries, MetricStore, PruneReport};
pub use secrets::SecretStore;
pub use usage::UsageStore;
pub use logs::{
    Direction, EventFilter, EventKey, EventRange, FilteredEvents, LOG_EVENT_OVERHEAD_BYTES, LogEventRecord,
    LogGroupRecord, LogStore, LogStreamCursor, LogStreamOrder, LogStreamQuery, LogStreamRecord, NewLogEvent,
    StreamPosition,
};

/// The store's two faces over one backend, as [`open`] gives them.
#[derive(Clone)]
pub struct Stores {
    /// Berth's records: clusters, task definitions, tasks, services,
    /// nodes, access keys, networking.
    pub records: Arc<dyn Store>,
    /// CloudWatch Logs: groups, streams, events.
    pub logs: Arc<dyn LogStore>,
}

/// The kinds of versioned record, each with its own stream of notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Cluster,
    TaskDefinition,
    Task,
    Service,
    Node,
    Subnet,
    SecurityGroup,
    LoadBalancer,
    TargetGroup,
    Listener,
    ListenerRule,
    /// A target group's registrations (keyed by the group's ARN).
    Targets,
    /// A target group's health rows (keyed by the group's ARN).
    TargetHealth,
    Certificate,
    /// Cloud Map records ([`DiscoveryStore`]).
    Namespace,
    DiscoveryService,
    DiscoveryInstance,
}

impl RecordKind {
    pub const ALL: [RecordKind; 17] = [
        Self::Cluster,
        Self::TaskDefinition,
        Self::Task,
        Self::Service,
        Self::Node,
        Self::Subnet,
        Self::SecurityGroup,
        Self::LoadBalancer,
        Self::TargetGroup,
        Self::Listener,
        Self::ListenerRule,
        Self::Targets,
        Self::TargetHealth,
        Self::Certificate,
        Self::Namespace,
        Self::DiscoveryService,
        Self::DiscoveryInstance,
    ];
}

/// A record written through this store, announced after its write
/// committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: RecordKind,
    /// The record's key as the store keys it: the ARN of a task or
    /// service, a cluster's name, `family:revision` of a task definition,
    /// the id of a node, subnet or security group, the ARN of a load
    /// balancing record or certificate (a target group's for its targets
    /// and their health).
    pub key: String,
    /// The version written; `None`: the record was deleted.
    pub version: Option<i64>,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortProtocol {
    Tcp,
    Udp,
}

impl PortProtocol {
    /// As stored (and as ECS writes it): `tcp`, `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(Self::Tcp),
            "udp" => Some(Self::Udp),
            _ => None,
        }
    }
}

/// A host port a task publishes on: one task per (address, protocol, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortClaim {
    pub address: Ipv4Addr,
    pub protocol: PortProtocol,
    pub port: u16,
}

/// A request to hold an idempotency token (RunTask's `clientToken`).
#[derive(Debug, Clone, Copy)]
pub struct TokenClaim<'a> {
    /// Tokens are per cluster, as in ECS.
    pub cluster_arn: &'a str,
    pub token: &'a str,
    /// A digest of the request's parameters (without the token).
    pub digest: &'a str,
    /// Now, in epoch seconds.
    pub now: i64,
    /// How long a token is remembered (ECS: 24 hours).
    pub ttl_secs: i64,
    /// How long an unsettled claim holds before it counts as abandoned
    /// (its request's server died while placing).
    pub pending_secs: i64,
}

/// Who holds a token after [`Store::claim_client_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    /// This request does: it runs, then settles the token.
    Claimed,
    /// An earlier request does, with the same parameters or not; its task
    /// ARNs once it settled (`None` while it is still placing).
    Taken { same_request: bool, task_arns: Option<Vec<String>> },
}

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
    /// A stored column holds what no write puts there.
    #[error("stored {column} {value:?} is not valid")]
    InvalidColumn { column: &'static str, value: String },
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A row written by a newer Berth, in a format this one does not know.
    #[error("stored record has format {found}, newer than this Berth knows ({known}): upgrade Berth")]
    FormatTooNew { found: u64, known: u64 },
    /// A stored record this code cannot read as any format it knows.
    #[error("stored record is unreadable: {0}")]
    Format(String),
    /// The SQLite file cannot be the store: empty, not SQLite, or damaged.
    /// `what` says which and what to do; the path comes first.
    #[error("store {path} {what}")]
    Unusable { path: String, what: String },
    /// Another process has the SQLite store open (its lock file names it).
    #[error(
        "store {path} is in use by another berth (pid {holder}): stop it first, or give this one its own --store"
    )]
    InUse { path: String, holder: String },
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
    /// The task's capacity provider (FARGATE_SPOT for Spot tasks).
    pub capacity_provider: Option<String>,
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
    /// What its live FARGATE_SPOT tasks reserve (part of the above).
    pub spot_cpu_used: u32,
    pub spot_memory_used: u32,
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

/// A certificate's private key in PEM: a secret, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(pub String);

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
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
pub trait Store: DiscoveryStore + IamStore + MetricStore + SecretStore + UsageStore + Send + Sync + 'static {
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
    /// Services by ARN, in ARN order after `page.after`: those of
    /// `cluster_arn` (all clusters when `None`) whose status is one of
    /// `statuses` (any when empty).
    async fn list_services(
        &self,
        cluster_arn: Option<&str>,
        statuses: &[ServiceStatus],
        page: Page<String>,
    ) -> Result<Vec<Versioned<Service>>, StoreError>;

    // --- access keys ---

    /// Inserts a root key (Active); `Conflict` if the id exists. (Keys of
    /// IAM users and sessions: [`IamStore::insert_key`].)
    async fn insert_access_key(&self, key: &AccessKey) -> Result<(), StoreError>;
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError>;
    /// How many root keys there are (users' and sessions' keys not counted).
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

    // --- published ports (`assignPublicIp`), keyed by address, protocol, port ---

    /// Takes the host port for the task, atomically: `true` if the task
    /// holds it now (also when it already did), `false` if another task
    /// does. Never hands one port to two tasks.
    async fn claim_port(&self, claim: PortClaim, task_arn: &str) -> Result<bool, StoreError>;
    /// The ports a task holds, in order.
    async fn task_ports(&self, task_arn: &str) -> Result<Vec<PortClaim>, StoreError>;
    /// Frees every port the task holds; how many there were.
    async fn release_ports(&self, task_arn: &str) -> Result<u64, StoreError>;

    // --- load balancing (ELBv2), keyed by ARN ---

    /// Creates (`None`) or updates a load balancer; `Conflict` if its ARN
    /// or name exists (create) or it changed meanwhile (update).
    async fn put_load_balancer(&self, lb: &LoadBalancer, expected_version: Option<i64>) -> Result<Versioned<LoadBalancer>, StoreError>;
    async fn get_load_balancer(&self, arn: &str) -> Result<Option<Versioned<LoadBalancer>>, StoreError>;
    /// Every load balancer, by name.
    async fn list_load_balancers(&self) -> Result<Vec<Versioned<LoadBalancer>>, StoreError>;
    /// Deletes a load balancer with its listeners and their rules, and
    /// frees the addresses it holds; `false` if there was none.
    async fn delete_load_balancer(&self, arn: &str) -> Result<bool, StoreError>;
    /// As `put_load_balancer`, for target groups (names unique).
    async fn put_target_group(&self, tg: &TargetGroup, expected_version: Option<i64>) -> Result<Versioned<TargetGroup>, StoreError>;
    async fn get_target_group(&self, arn: &str) -> Result<Option<Versioned<TargetGroup>>, StoreError>;
    /// Every target group, by name.
    async fn list_target_groups(&self) -> Result<Vec<Versioned<TargetGroup>>, StoreError>;
    /// Deletes a target group with its registrations and health rows.
    async fn delete_target_group(&self, arn: &str) -> Result<bool, StoreError>;
    /// As `put_load_balancer`; `Conflict` also if the load balancer has a
    /// listener on that port.
    async fn put_listener(&self, listener: &Listener, expected_version: Option<i64>) -> Result<Versioned<Listener>, StoreError>;
    async fn get_listener(&self, arn: &str) -> Result<Option<Versioned<Listener>>, StoreError>;
    /// Listeners by port, of one load balancer or (`None`) all.
    async fn list_listeners(&self, load_balancer_arn: Option<&str>) -> Result<Vec<Versioned<Listener>>, StoreError>;
    /// Deletes a listener with its rules.
    async fn delete_listener(&self, arn: &str) -> Result<bool, StoreError>;
    /// As `put_load_balancer`; `Conflict` also if the listener has a rule
    /// of that priority.
    async fn put_rule(&self, rule: &Rule, expected_version: Option<i64>) -> Result<Versioned<Rule>, StoreError>;
    /// Rewrites several rules at once (SetRulePriorities: priorities may
    /// be swapped), each at the version read; `Conflict` changes none.
    async fn update_rules(&self, rules: &[Versioned<Rule>]) -> Result<Vec<Versioned<Rule>>, StoreError>;
    async fn get_rule(&self, arn: &str) -> Result<Option<Versioned<Rule>>, StoreError>;
    /// Rules by priority (the default rule last), of one listener or all.
    async fn list_rules(&self, listener_arn: Option<&str>) -> Result<Vec<Versioned<Rule>>, StoreError>;
    async fn delete_rule(&self, arn: &str) -> Result<bool, StoreError>;

    // --- registered targets and their health ---

    /// Registers targets (keyed by group, address and port); registering
    /// one again refreshes it and ends its draining.
    async fn register_targets(&self, targets: &[RegisteredTarget]) -> Result<(), StoreError>;
    /// Marks registered targets of the group as draining until
    /// `draining_until` (seconds since the epoch); how many there were.
    /// Targets already draining keep their deadline.
    async fn deregister_targets(&self, target_group_arn: &str, targets: &[(Ipv4Addr, u16)], draining_until: f64) -> Result<u64, StoreError>;
    /// The group's registered targets (draining ones too), by address and port.
    async fn list_targets(&self, target_group_arn: &str) -> Result<Vec<RegisteredTarget>, StoreError>;
    /// Removes targets whose draining ended by `now`, with their health rows.
    async fn remove_drained_targets(&self, now: f64) -> Result<u64, StoreError>;
    /// Writes what the data plane found of a target (replacing its last row).
    async fn put_target_health(&self, health: &TargetHealthRecord) -> Result<(), StoreError>;
    async fn list_target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealthRecord>, StoreError>;

    // --- ACM certificates ---

    /// Creates (`None`) or replaces (re-import) a certificate with its
    /// private key.
    async fn put_certificate(
        &self,
        cert: &CertificateRecord,
        key: &PrivateKeyPem,
        expected_version: Option<i64>,
    ) -> Result<Versioned<CertificateRecord>, StoreError>;
    async fn get_certificate(&self, arn: &str) -> Result<Option<Versioned<CertificateRecord>>, StoreError>;
    /// Updates a certificate's record (tags), keeping its key.
    async fn update_certificate(&self, cert: &CertificateRecord, expected_version: i64) -> Result<Versioned<CertificateRecord>, StoreError>;
    /// The certificate's private key, for the data plane's TLS only.
    async fn certificate_key(&self, arn: &str) -> Result<Option<PrivateKeyPem>, StoreError>;
    /// Every certificate, by ARN.
    async fn list_certificates(&self) -> Result<Vec<Versioned<CertificateRecord>>, StoreError>;
    async fn delete_certificate(&self, arn: &str) -> Result<bool, StoreError>;
    // --- idempotency tokens ---

    /// Claims an idempotency token atomically (expired and abandoned
    /// claims are dropped first): of racing requests with one token,
    /// exactly one gets [`TokenHolder::Claimed`].
    async fn claim_client_token(&self, claim: &TokenClaim<'_>) -> Result<TokenHolder, StoreError>;
    /// Settles a claimed token: with the tasks its request started, or
    /// (`None`) releases it when the request failed, so a retry runs.
    async fn settle_client_token(
        &self,
        cluster_arn: &str,
        token: &str,
        task_arns: Option<&[String]>,
    ) -> Result<(), StoreError>;

    // --- notices ---

    /// Notices of the records of `kind` written through this store (after
    /// each insert, update, placement or delete commits; a write that
    /// failed announces nothing), so agents and controllers react at once
    /// instead of polling. In-process only: a watcher must still re-read
    /// now and then for changes other processes make (a fleet on
    /// PostgreSQL). `Lagged` means notices were missed: re-read everything.
    fn watch(&self, kind: RecordKind) -> tokio::sync::broadcast::Receiver<Notice>;
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
