//! The store's contract, run against both backends: every case in
//! [`both_backends!`] becomes `sqlite::<case>` (a fresh file in a temp dir)
//! and `postgres::<case>` (a fresh database on a throwaway server, one
//! server per test process). SQLite-only behaviour (file, WAL, several
//! processes on one file, SIGKILL) is tested at the end.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use berth_model::arn::TaskArn;
use berth_model::lifecycle::{DesiredStatus, TaskEvent, TaskStatus};
use berth_model::node::{Node, NodeStatus};
use berth_model::records::TaskDefinitionRecord;
use berth_model::service::{Service, ServiceStatus};
use berth_model::task::{NewTask, StopCode, Task};
use berth_store::{
    AccessKey, Direction, EventFilter, EventRange, FamilyStatus, LogEventRecord, LogGroupRecord, LogStore,
    LogStreamOrder, LogStreamQuery, LogStreamRecord, NewLogEvent, NodeUsage, Notice, Page, PortClaim, PortProtocol,
    RecordKind, SortOrder, Store, StoreError, StreamPosition, TaskDefinitionFilter, TaskFilter, Versioned,
};
use berth_testinfra::postgres::TempPostgres;
use berth_wire::ecs::{Cluster, Tag, TaskDefinition, TaskDefinitionStatus};

#[path = "cases/discovery.rs"]
mod discovery_cases;
use discovery_cases::*;

#[path = "cases/iam.rs"]
mod iam_cases;
use iam_cases::*;

#[path = "cases/metrics.rs"]
mod metrics_cases;
use metrics_cases::*;

#[path = "cases/secrets.rs"]
mod secrets_cases;
use secrets_cases::*;

/// A store on a fresh database, and what keeps that database alive.
struct Backend {
    store: Arc<dyn Store>,
    logs: Arc<dyn LogStore>,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("berth.db").display());
        let stores = berth_store::open(&url).await.expect("open SQLite store");
        Self { store: stores.records, logs: stores.logs, url, _dir: Some(dir) }
    }

    async fn postgres(test: &str) -> Self {
        let pg = TempPostgres::shared().expect("PostgreSQL for tests");
        let url = pg.create_database(test).expect("create database");
        let stores = berth_store::open(&url).await.expect("open PostgreSQL store");
        Self { store: stores.records, logs: stores.logs, url, _dir: None }
    }

    /// Opens the same database again, as a restarted process would.
    async fn reopen(&mut self) {
        let stores = berth_store::open(&self.url).await.expect("reopen store");
        (self.store, self.logs) = (stores.records, stores.logs);
    }
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::postgres(stringify!($case)).await).await;
                }
            )*
        }
    };
}

both_backends!(
    parameters_with_versions_and_conflicts,
    secrets_unique_by_arn_and_name,
    metric_datapoints_by_exact_dimensions_and_range,
    list_metrics_filters_and_recent_activity,
    prune_rolls_up_by_age_and_deletes_the_oldest,
    discovery_namespaces_unique_and_in_use,
    iam_entities_unique_without_case_and_versioned,
    iam_keys_have_owners_status_and_sessions,
    discovery_instances_and_revisions,
    cluster_insert_get_update_with_conflicts,
    clusters_list_in_name_order_by_pages_and_status,
    task_definition_revisions_count_up,
    concurrent_registrations_take_each_revision_once,
    revisions_are_never_reused,
    latest_active_revision,
    task_definitions_filtered_sorted_and_paged,
    families_by_prefix_and_status,
    tasks_and_services_put_and_cluster_usage,
    nodes_register_and_report_usage,
    placement_never_over_commits_a_node,
    concurrent_placements_never_over_commit,
    tasks_listed_by_filters_and_pages,
    access_keys,
    data_survives_reopen,
    log_groups_created_listed_and_deleted,
    a_big_log_group_is_deleted_in_batches_other_writes_going_on,
    log_streams_listed_by_name_and_last_event_time,
    log_events_appended_in_sequence_and_read_both_ways,
    log_reads_fit_the_byte_budget,
    log_messages_keep_every_character,
    concurrent_appends_take_consecutive_sequence_numbers,
    filter_searches_a_groups_streams_in_order,
    filter_pages_resume_without_gaps_or_repeats,
    retention_expires_old_events_only,
    deletes_race_appends_and_stream_creation_cleanly,
    logs_survive_reopen,
    subnets_and_security_groups_with_versions,
    an_address_goes_to_one_task_at_a_time,
    writes_of_every_kind_are_announced_with_their_versions,
    a_published_port_goes_to_one_task_at_a_time,
    a_client_token_goes_to_one_request_and_expires,
    many_tasks_are_read_at_once,
    a_burst_of_claims_takes_distinct_free_addresses,
    task_rows_of_format_0_are_read_as_typed_tasks,
    task_rows_of_a_newer_format_are_refused,
    lbs_listeners_rules_unique_names_ports_priorities,
    targets_register_drain_and_carry_the_data_planes_health,
    certificates_keep_their_key_apart,
    spot_tasks_are_counted_apart_and_listed_by_provider,
    usage_records_are_replaced_per_task_and_survive_a_reopen,
);

// --- fixtures ---

fn cluster(name: &str, status: &str) -> Cluster {
    Cluster {
        cluster_name: Some(name.to_owned()),
        cluster_arn: Some(format!("arn:aws:ecs:eu-central-1:111122223333:cluster/{name}")),
        status: Some(status.to_owned()),
        ..Default::default()
    }
}

/// A builder for `register_task_definition`, as the API would pass.
fn definition(family: &str) -> impl Fn(i32) -> TaskDefinitionRecord + Send + Sync + 'static {
    let family = family.to_owned();
    move |revision| TaskDefinitionRecord {
        definition: TaskDefinition {
            task_definition_arn: Some(format!(
                "arn:aws:ecs:eu-central-1:111122223333:task-definition/{family}:{revision}"
            )),
            family: Some(family.clone()),
            revision: Some(revision),
            status: Some(TaskDefinitionStatus::Active),
            cpu: Some("256".to_owned()),
            memory: Some("512".to_owned()),
            ..Default::default()
        },
        tags: vec![Tag { key: Some("team".to_owned()), value: Some("core".to_owned()) }],
    }
}

async fn register(store: &dyn Store, family: &str) -> Versioned<TaskDefinitionRecord> {
    store.register_task_definition(family, &definition(family)).await.expect("register")
}

/// Sets the status of a stored revision (as DeregisterTaskDefinition and
/// DeleteTaskDefinitions do).
async fn set_status(store: &dyn Store, family: &str, revision: i32, status: TaskDefinitionStatus) {
    let mut stored = store.get_task_definition(family, revision).await.expect("get").expect("stored");
    stored.value.definition.status = Some(status);
    store.update_task_definition(&stored.value, stored.version).await.expect("update status");
}

fn names(clusters: &[Versioned<Cluster>]) -> Vec<String> {
    clusters.iter().map(|c| c.value.cluster_name.clone().unwrap_or_default()).collect()
}

fn keys(defs: &[Versioned<TaskDefinitionRecord>]) -> Vec<(String, i32)> {
    defs.iter()
        .map(|d| {
            (d.value.definition.family.clone().unwrap_or_default(), d.value.definition.revision.unwrap_or_default())
        })
        .collect()
}

fn page<K>(after: Option<K>, limit: u32) -> Page<K> {
    Page { after, limit }
}

/// The events that take a new (PROVISIONING) task to `status`.
fn path_to(status: TaskStatus) -> &'static [TaskEvent] {
    use TaskEvent as E;
    const ALL: &[TaskEvent] = &[
        E::Provisioned,
        E::ContainersStarted,
        E::Activated,
        E::StopRequested,
        E::Deactivated,
        E::ContainersStopped,
        E::Deprovisioned,
    ];
    let steps = match status {
        TaskStatus::Provisioning => 0,
        TaskStatus::Pending => 1,
        TaskStatus::Activating => 2,
        TaskStatus::Running => 3,
        TaskStatus::Deactivating => 4,
        TaskStatus::Stopping => 5,
        TaskStatus::Deprovisioning => 6,
        TaskStatus::Stopped => 7,
    };
    &ALL[..steps]
}

/// A task of family `web` (256 CPU, 512 MiB) in `status`, as RunTask
/// builds it and the lifecycle moves it; desired RUNNING.
fn task(arn: &str, cluster_arn: &str, status: TaskStatus) -> Task {
    let arn: TaskArn = arn.parse().expect("a task ARN");
    assert_eq!(arn.cluster_arn().to_string(), cluster_arn, "the fixture's task is in its cluster");
    let definition = TaskDefinition {
        task_definition_arn: Some(arn.account.task_definition_arn("web", 3)),
        family: Some("web".to_owned()),
        revision: Some(3),
        cpu: Some("256".to_owned()),
        memory: Some("512".to_owned()),
        ..Default::default()
    };
    let new = NewTask::plain(&arn.account, &arn.cluster, &arn.id, &definition, 1_767_225_600.0);
    let mut t = berth_model::task::build(new).expect("build task");
    let reached = t.apply_all(path_to(status)).expect("a path through the lifecycle");
    assert_eq!(reached, status);
    t
}

fn node(id: &str, cpu: u32, memory: u32) -> Node {
    Node { id: id.to_owned(), zone: "eu-central-1a".to_owned(), cpu, memory, status: NodeStatus::Active, spot_cpu: 0, spot_memory: 0, heartbeat_at: 1 }
}

fn service(arn: &str, cluster_arn: &str, status: ServiceStatus) -> Service {
    let arn: berth_model::arn::ServiceArn = arn.parse().expect("a service ARN");
    assert_eq!(arn.cluster_arn().to_string(), cluster_arn, "the fixture's service is in its cluster");
    let definition = arn.account.task_definition("web", 3);
    Service { status, ..Service::new(arn, definition, 1, 1_767_225_600.0) }
}

// --- the cases ---

async fn cluster_insert_get_update_with_conflicts(db: Backend) {
    let s = db.store.as_ref();
    let c = cluster("prod", "ACTIVE");
    let inserted = s.insert_cluster(&c).await.expect("insert");
    assert_eq!(inserted, Versioned { version: 1, value: c.clone() });
    assert!(matches!(s.insert_cluster(&cluster("prod", "INACTIVE")).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_cluster("prod").await.expect("get"), Some(inserted));
    assert_eq!(s.get_cluster("Prod").await.expect("get"), None, "names are case-sensitive");
    assert_eq!(s.get_cluster("nope").await.expect("get"), None);

    let mut changed = c.clone();
    changed.status = Some("INACTIVE".to_owned());
    changed.active_services_count = Some(3);
    let updated = s.update_cluster(&changed, 1).await.expect("update at the read version");
    assert_eq!(updated, Versioned { version: 2, value: changed.clone() });
    // A second writer that read version 1 loses and changes nothing.
    assert!(matches!(s.update_cluster(&c, 1).await, Err(StoreError::Conflict)));
    assert!(matches!(s.update_cluster(&c, 3).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_cluster("prod").await.expect("get"), Some(Versioned { version: 2, value: changed }));
    // Updating what does not exist is a conflict too, and creates nothing.
    assert!(matches!(s.update_cluster(&cluster("ghost", "ACTIVE"), 1).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_cluster("ghost").await.expect("get"), None);

    let nameless = Cluster { cluster_name: None, ..c };
    assert!(matches!(s.insert_cluster(&nameless).await, Err(StoreError::MissingKey("clusterName"))));
}

async fn clusters_list_in_name_order_by_pages_and_status(db: Backend) {
    let s = db.store.as_ref();
    // Names whose byte order differs from natural-language orders
    // (upper case first, punctuation before letters).
    let all = [
        ("B-prod", "ACTIVE"),
        ("a", "ACTIVE"),
        ("a-c", "INACTIVE"),
        ("ab", "ACTIVE"),
        ("b", "ACTIVE"),
        ("c_1", "INACTIVE"),
        ("c1", "ACTIVE"),
    ];
    for (name, status) in all {
        s.insert_cluster(&cluster(name, status)).await.expect("insert");
    }
    let mut expected: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
    expected.sort_unstable();
    assert_eq!(expected, ["B-prod", "a", "a-c", "ab", "b", "c1", "c_1"]);

    let everything = s.list_clusters(None, page(None, 100)).await.expect("list");
    assert_eq!(names(&everything), expected);
    assert!(everything.iter().all(|c| c.version == 1));

    // Page through three at a time: no gaps, no repeats.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = s.list_clusters(None, page(after.clone(), 3)).await.expect("list page");
        assert!(rows.len() <= 3);
        if rows.is_empty() {
            break;
        }
        after = rows.last().and_then(|c| c.value.cluster_name.clone());
        seen.extend(names(&rows));
    }
    assert_eq!(seen, expected);

    let active = s.list_clusters(Some("ACTIVE"), page(None, 100)).await.expect("list active");
    assert_eq!(names(&active), ["B-prod", "a", "ab", "b", "c1"]);
    let active_after_a = s.list_clusters(Some("ACTIVE"), page(Some("a".to_owned()), 2)).await.expect("list");
    assert_eq!(names(&active_after_a), ["ab", "b"]);
    let inactive = s.list_clusters(Some("INACTIVE"), page(None, 100)).await.expect("list inactive");
    assert_eq!(names(&inactive), ["a-c", "c_1"]);
    assert!(s.list_clusters(None, page(Some("c_1".to_owned()), 10)).await.expect("list").is_empty());
    assert!(s.list_clusters(None, page(None, 0)).await.expect("list").is_empty());
}

async fn task_definition_revisions_count_up(db: Backend) {
    let s = db.store.as_ref();
    for expected in 1..=3 {
        let stored = register(s, "web").await;
        assert_eq!(stored.version, 1);
        assert_eq!(stored.value, definition("web")(expected));
        assert_eq!(s.get_task_definition("web", expected).await.expect("get"), Some(stored));
    }
    // Families count independently.
    assert_eq!(register(s, "api").await.value.definition.revision, Some(1));
    assert_eq!(s.get_task_definition("web", 4).await.expect("get"), None);
    assert_eq!(s.get_task_definition("nope", 1).await.expect("get"), None);

    // The store decides family and revision, whatever the builder says.
    let sloppy = |_: i32| TaskDefinitionRecord {
        definition: TaskDefinition { family: Some("other".to_owned()), revision: Some(99), ..Default::default() },
        tags: Vec::new(),
    };
    let stored = s.register_task_definition("web", &sloppy).await.expect("register");
    let d = &stored.value.definition;
    assert_eq!((d.family.as_deref(), d.revision, d.status), (Some("web"), Some(4), Some(TaskDefinitionStatus::Active)));
    assert_eq!(s.get_task_definition("web", 4).await.expect("get"), Some(stored));
    assert_eq!(s.get_task_definition("other", 99).await.expect("get"), None);
}

async fn concurrent_registrations_take_each_revision_once(db: Backend) {
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move { store.register_task_definition("burst", &definition("burst")).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for handle in handles {
        let stored = handle.await.expect("join").expect("register under contention");
        revisions.push(stored.value.definition.revision.expect("revision"));
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=50).collect::<Vec<i32>>());

    let listed = db
        .store
        .list_task_definitions(
            &TaskDefinitionFilter { family: Some("burst".to_owned()), ..Default::default() },
            page(None, 100),
        )
        .await
        .expect("list");
    assert_eq!(keys(&listed), (1..=50).map(|r| ("burst".to_owned(), r)).collect::<Vec<_>>());
    assert_eq!(register(db.store.as_ref(), "burst").await.value.definition.revision, Some(51));
}

async fn revisions_are_never_reused(db: Backend) {
    let s = db.store.as_ref();
    for _ in 0..3 {
        register(s, "svc").await;
    }
    set_status(s, "svc", 3, TaskDefinitionStatus::DeleteInProgress).await;
    assert_eq!(register(s, "svc").await.value.definition.revision, Some(4));

    set_status(s, "svc", 4, TaskDefinitionStatus::Inactive).await;
    set_status(s, "svc", 4, TaskDefinitionStatus::DeleteInProgress).await;
    for r in 1..=2 {
        set_status(s, "svc", r, TaskDefinitionStatus::Inactive).await;
        set_status(s, "svc", r, TaskDefinitionStatus::DeleteInProgress).await;
    }
    // Every revision is on its way out; the next one is still new.
    assert_eq!(register(s, "svc").await.value.definition.revision, Some(5));
    let stored = s.get_task_definition("svc", 4).await.expect("get").expect("kept");
    assert_eq!(stored.version, 3, "two status changes");
    assert_eq!(stored.value.definition.status, Some(TaskDefinitionStatus::DeleteInProgress));

    // Status updates are optimistic too.
    let mut stale = stored.value.clone();
    stale.definition.status = Some(TaskDefinitionStatus::Active);
    assert!(matches!(s.update_task_definition(&stale, 2).await, Err(StoreError::Conflict)));
    let mut unknown = stale.clone();
    unknown.definition.revision = Some(77);
    assert!(matches!(s.update_task_definition(&unknown, 1).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_task_definition("svc", 77).await.expect("get"), None);
}

async fn latest_active_revision(db: Backend) {
    let s = db.store.as_ref();
    assert_eq!(s.latest_active_task_definition("web").await.expect("latest"), None);
    for _ in 0..3 {
        register(s, "web").await;
    }
    register(s, "webx").await; // a longer name must not leak in
    let latest = |r: Option<Versioned<TaskDefinitionRecord>>| r.and_then(|v| v.value.definition.revision);
    assert_eq!(latest(s.latest_active_task_definition("web").await.expect("latest")), Some(3));
    set_status(s, "web", 3, TaskDefinitionStatus::Inactive).await;
    assert_eq!(latest(s.latest_active_task_definition("web").await.expect("latest")), Some(2));
    set_status(s, "web", 2, TaskDefinitionStatus::DeleteInProgress).await;
    assert_eq!(latest(s.latest_active_task_definition("web").await.expect("latest")), Some(1));
    set_status(s, "web", 1, TaskDefinitionStatus::Inactive).await;
    assert_eq!(s.latest_active_task_definition("web").await.expect("latest"), None);
    assert_eq!(latest(s.latest_active_task_definition("webx").await.expect("latest")), Some(1));
}

async fn task_definitions_filtered_sorted_and_paged(db: Backend) {
    let s = db.store.as_ref();
    // Registered interleaved, so insertion order is not listing order.
    for family in ["web", "Api", "web", "db-x", "Api", "web", "db_x", "dbx"] {
        register(s, family).await;
    }
    set_status(s, "web", 2, TaskDefinitionStatus::Inactive).await;
    set_status(s, "Api", 1, TaskDefinitionStatus::DeleteInProgress).await;

    let k = |f: &str, r: i32| (f.to_owned(), r);
    let asc =
        vec![k("Api", 1), k("Api", 2), k("db-x", 1), k("db_x", 1), k("dbx", 1), k("web", 1), k("web", 2), k("web", 3)];
    let mut desc = asc.clone();
    desc.reverse();
    let list =
        |family: Option<&str>, status: Option<&str>, sort: SortOrder, after: Option<(String, i32)>, limit: u32| {
            let filter =
                TaskDefinitionFilter { family: family.map(str::to_owned), status: status.map(str::to_owned), sort };
            async move { keys(&s.list_task_definitions(&filter, page(after, limit)).await.expect("list")) }
        };

    assert_eq!(list(None, None, SortOrder::Asc, None, 100).await, asc);
    assert_eq!(list(None, None, SortOrder::Desc, None, 100).await, desc);
    let active = |v: &Vec<(String, i32)>| -> Vec<(String, i32)> {
        v.iter().filter(|x| **x != k("web", 2) && **x != k("Api", 1)).cloned().collect()
    };
    assert_eq!(list(None, Some("ACTIVE"), SortOrder::Asc, None, 100).await, active(&asc));
    assert_eq!(list(None, Some("ACTIVE"), SortOrder::Desc, None, 100).await, active(&desc));
    assert_eq!(list(None, Some("INACTIVE"), SortOrder::Asc, None, 100).await, [k("web", 2)]);
    assert_eq!(list(None, Some("DELETE_IN_PROGRESS"), SortOrder::Asc, None, 100).await, [k("Api", 1)]);
    assert_eq!(list(Some("web"), None, SortOrder::Desc, None, 100).await, [k("web", 3), k("web", 2), k("web", 1)]);
    assert_eq!(list(Some("web"), Some("ACTIVE"), SortOrder::Asc, None, 100).await, [k("web", 1), k("web", 3)]);
    assert_eq!(list(Some("db"), None, SortOrder::Asc, None, 100).await, [], "the family filter is a whole name");

    // `after` is a position in the listing's own order.
    assert_eq!(list(None, None, SortOrder::Asc, Some(k("db_x", 1)), 2).await, [k("dbx", 1), k("web", 1)]);
    assert_eq!(list(None, None, SortOrder::Desc, Some(k("db_x", 1)), 2).await, [k("db-x", 1), k("Api", 2)]);
    assert_eq!(list(Some("web"), None, SortOrder::Desc, Some(k("web", 2)), 5).await, [k("web", 1)]);

    // Paging by every page size, both ways, with and without filters,
    // gives the full listing with no gaps or repeats.
    for (family, status, sort, want) in [
        (None, None, SortOrder::Asc, asc.clone()),
        (None, None, SortOrder::Desc, desc.clone()),
        (None, Some("ACTIVE"), SortOrder::Desc, active(&desc)),
        (Some("web"), None, SortOrder::Asc, vec![k("web", 1), k("web", 2), k("web", 3)]),
    ] {
        for limit in 1..=4 {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let rows = list(family, status, sort, after.clone(), limit).await;
                assert!(rows.len() <= limit as usize);
                let Some(last) = rows.last().cloned() else { break };
                seen.extend(rows);
                after = Some(last);
            }
            assert_eq!(seen, want, "family {family:?} status {status:?} {sort:?} limit {limit}");
        }
    }
}

async fn families_by_prefix_and_status(db: Backend) {
    let s = db.store.as_ref();
    for family in ["api", "api-v2", "api_v3", "apix", "Api", "web", "worker", "gone"] {
        register(s, family).await;
    }
    register(s, "worker").await;
    set_status(s, "worker", 1, TaskDefinitionStatus::Inactive).await; // revision 2 still ACTIVE
    set_status(s, "web", 1, TaskDefinitionStatus::Inactive).await;
    set_status(s, "gone", 1, TaskDefinitionStatus::DeleteInProgress).await;

    let list = |prefix: Option<&'static str>, status: FamilyStatus, after: Option<&str>, limit: u32| {
        let after = after.map(str::to_owned);
        async move { s.list_task_definition_families(prefix, status, page(after, limit)).await.expect("families") }
    };
    let all = ["Api", "api", "api-v2", "api_v3", "apix", "gone", "web", "worker"];
    assert_eq!(list(None, FamilyStatus::All, None, 100).await, all);
    assert_eq!(list(None, FamilyStatus::Active, None, 100).await, ["Api", "api", "api-v2", "api_v3", "apix", "worker"]);
    assert_eq!(list(None, FamilyStatus::Inactive, None, 100).await, ["gone", "web"]);
    assert_eq!(list(Some("api"), FamilyStatus::All, None, 100).await, ["api", "api-v2", "api_v3", "apix"]);
    // `_` and `%` are plain characters in a prefix, not wildcards.
    assert_eq!(list(Some("api_"), FamilyStatus::All, None, 100).await, ["api_v3"]);
    assert_eq!(list(Some("a%"), FamilyStatus::All, None, 100).await, Vec::<String>::new());
    assert_eq!(list(Some("w"), FamilyStatus::Active, None, 100).await, ["worker"]);
    assert_eq!(list(Some("w"), FamilyStatus::Inactive, None, 100).await, ["web"]);
    assert_eq!(list(Some("zzz"), FamilyStatus::All, None, 100).await, Vec::<String>::new());

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = list(None, FamilyStatus::All, after.as_deref(), 3).await;
        let Some(last) = rows.last().cloned() else { break };
        seen.extend(rows);
        after = Some(last);
    }
    assert_eq!(seen, all);
    assert_eq!(list(Some("api"), FamilyStatus::Active, Some("api-v2"), 1).await, ["api_v3"]);
}

async fn tasks_and_services_put_and_cluster_usage(db: Backend) {
    let s = db.store.as_ref();
    let a = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let b = "arn:aws:ecs:eu-central-1:111122223333:cluster/b";
    let t = |id: &str| format!("arn:aws:ecs:eu-central-1:111122223333:task/a/{id}");

    // put_task: None inserts, Some(v) replaces version v.
    let t1 = task(&t("1"), a, TaskStatus::Provisioning);
    assert_eq!(s.put_task(&t1, None).await.expect("insert"), Versioned { version: 1, value: t1.clone() });
    assert!(matches!(s.put_task(&t1, None).await, Err(StoreError::Conflict)));
    let t1_pending = task(&t("1"), a, TaskStatus::Pending);
    assert_eq!(s.put_task(&t1_pending, Some(1)).await.expect("update").version, 2);
    assert!(matches!(s.put_task(&t1, Some(1)).await, Err(StoreError::Conflict)));
    assert!(matches!(s.put_task(&task(&t("new"), a, TaskStatus::Provisioning), Some(1)).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_task(&t("new")).await.expect("get"), None);
    assert_eq!(s.get_task(&t("1")).await.expect("get"), Some(Versioned { version: 2, value: t1_pending }));

    for (id, status) in [
        ("2", TaskStatus::Pending),
        ("3", TaskStatus::Activating),
        ("4", TaskStatus::Running),
        ("5", TaskStatus::Running),
        ("6", TaskStatus::Stopped),
        ("7", TaskStatus::Deprovisioning), // on its way out, still live
        ("8", TaskStatus::Deactivating),
    ] {
        s.put_task(&task(&t(id), a, status), None).await.expect("put task");
    }
    s.put_task(&task("arn:aws:ecs:eu-central-1:111122223333:task/b/1", b, TaskStatus::Running), None).await.expect("put");

    let svc = |n: &str| format!("arn:aws:ecs:eu-central-1:111122223333:service/a/{n}");
    let s1 = service(&svc("s1"), a, ServiceStatus::Active);
    assert_eq!(s.put_service(&s1, None).await.expect("insert"), Versioned { version: 1, value: s1.clone() });
    assert!(matches!(s.put_service(&s1, None).await, Err(StoreError::Conflict)));
    s.put_service(&service(&svc("s2"), a, ServiceStatus::Draining), None).await.expect("put");
    s.put_service(&service(&svc("s3"), a, ServiceStatus::Inactive), None).await.expect("put");
    s.put_service(&service("arn:aws:ecs:eu-central-1:111122223333:service/b/s", b, ServiceStatus::Active), None).await.expect("put");

    let listed = |rows: Vec<Versioned<Service>>| rows.into_iter().map(|r| r.value.arn.name).collect::<Vec<_>>();
    let all = Page { after: None, limit: 10 };
    assert_eq!(listed(s.list_services(Some(a), &[], all.clone()).await.expect("list")), ["s1", "s2", "s3"]);
    assert_eq!(listed(s.list_services(Some(a), &[ServiceStatus::Active], all.clone()).await.expect("list")), ["s1"]);
    let live = [ServiceStatus::Active, ServiceStatus::Draining];
    assert_eq!(listed(s.list_services(None, &live, all.clone()).await.expect("list")), ["s1", "s2", "s"]);
    let after = Page { after: Some(svc("s1")), limit: 1 };
    assert_eq!(listed(s.list_services(Some(a), &[], after).await.expect("list")), ["s2"], "paged by ARN");

    let usage = s.cluster_usage(a).await.expect("usage");
    assert_eq!(usage.active_services, 2);
    assert_eq!(usage.live_tasks, 7, "all but the STOPPED one");
    assert_eq!(usage.running_tasks, 2);
    assert_eq!(usage.pending_tasks, 3, "PENDING (1 and 2) and ACTIVATING");

    // Stop a running task, drain the last active service away.
    let stopped = task(&t("4"), a, TaskStatus::Stopped);
    s.put_task(&stopped, Some(1)).await.expect("stop task");
    let s1_inactive = service(&svc("s1"), a, ServiceStatus::Inactive);
    assert_eq!(s.put_service(&s1_inactive, Some(1)).await.expect("update").version, 2);
    assert!(matches!(s.put_service(&s1, Some(1)).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_service(&svc("s1")).await.expect("get"), Some(Versioned { version: 2, value: s1_inactive }));
    assert_eq!(s.get_service(&svc("nope")).await.expect("get"), None);

    let usage = s.cluster_usage(a).await.expect("usage");
    assert_eq!((usage.active_services, usage.live_tasks, usage.running_tasks, usage.pending_tasks), (1, 6, 1, 3));
    let usage = s.cluster_usage(b).await.expect("usage");
    assert_eq!((usage.active_services, usage.live_tasks, usage.running_tasks, usage.pending_tasks), (1, 1, 1, 0));
    assert_eq!(
        s.cluster_usage("arn:aws:ecs:eu-central-1:111122223333:cluster/none").await.expect("usage"),
        Default::default()
    );
}

async fn access_keys(db: Backend) {
    let s = db.store.as_ref();
    assert_eq!(s.count_access_keys().await.expect("count"), 0);
    let key = AccessKey {
        access_key_id: "AKIAEXAMPLE000000001".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        created_at: 1_767_225_600,
    };
    s.insert_access_key(&key).await.expect("insert");
    assert_eq!(s.get_access_key(&key.access_key_id).await.expect("get"), Some(key.clone()));
    let other_secret = AccessKey { secret_access_key: "different".to_owned(), ..key.clone() };
    assert!(matches!(s.insert_access_key(&other_secret).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_access_key(&key.access_key_id).await.expect("get"), Some(key.clone()), "the first key stays");
    let second = AccessKey { access_key_id: "AKIAEXAMPLE000000002".to_owned(), ..key };
    s.insert_access_key(&second).await.expect("insert");
    assert_eq!(s.count_access_keys().await.expect("count"), 2);
    assert_eq!(s.get_access_key("AKIANOPE").await.expect("get"), None);
}

async fn data_survives_reopen(mut db: Backend) {
    let c = cluster("keep", "ACTIVE");
    db.store.insert_cluster(&c).await.expect("insert");
    db.store.update_cluster(&c, 1).await.expect("update");
    register(db.store.as_ref(), "web").await;
    register(db.store.as_ref(), "web").await;
    set_status(db.store.as_ref(), "web", 2, TaskDefinitionStatus::Inactive).await;
    let key = AccessKey { access_key_id: "AKIAKEEP".to_owned(), secret_access_key: "s".to_owned(), created_at: 1 };
    db.store.insert_access_key(&key).await.expect("insert key");

    db.reopen().await; // migrations run again: a no-op
    let s = db.store.as_ref();
    assert_eq!(s.get_cluster("keep").await.expect("get"), Some(Versioned { version: 2, value: c }));
    assert_eq!(s.get_access_key("AKIAKEEP").await.expect("get"), Some(key));
    let web2 = s.get_task_definition("web", 2).await.expect("get").expect("kept");
    assert_eq!((web2.version, web2.value.definition.status), (2, Some(TaskDefinitionStatus::Inactive)));
    assert_eq!(register(s, "web").await.value.definition.revision, Some(3), "the counter survives too");
}

// --- SQLite only ---

#[tokio::test]
async fn sqlite_file_is_private_and_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("berth.db");
    let store = berth_store::open(&format!("sqlite://{}", path.display())).await.expect("open").records;
    store.insert_cluster(&cluster("x", "ACTIVE")).await.expect("insert");
    let mode = std::fs::metadata(&path).expect("db file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the store holds secrets");
    assert!(dir.path().join("berth.db-wal").exists(), "WAL journal in use");
    let wal_mode = std::fs::metadata(dir.path().join("berth.db-wal")).expect("wal").permissions().mode() & 0o777;
    assert_eq!(wal_mode, 0o600);
}

#[tokio::test]
async fn sqlite_path_with_spaces_and_url_characters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sub = dir.path().join("my data #1 %20");
    std::fs::create_dir(&sub).expect("mkdir");
    let url = format!("sqlite://{}", sub.join("berth.db").display());
    berth_store::open(&url).await.expect("open").records.insert_cluster(&cluster("x", "ACTIVE")).await.expect("insert");
    assert!(sub.join("berth.db").is_file(), "the file is where the path says");
    let again = berth_store::open(&url).await.expect("reopen").records;
    assert_eq!(again.get_cluster("x").await.expect("get").map(|c| c.version), Some(1));
}

#[tokio::test]
async fn sqlite_relative_path_with_dot_dot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = std::env::current_dir().expect("cwd");
    let up = "../".repeat(cwd.components().count() - 1);
    let target = dir.path().join("berth.db");
    let relative = format!("{up}{}", target.display().to_string().trim_start_matches('/'));
    let store = berth_store::open(&format!("sqlite://{relative}")).await.expect("open").records;
    store.insert_cluster(&cluster("rel", "ACTIVE")).await.expect("insert");
    assert!(target.is_file(), "{relative} is {}", target.display());
}

#[tokio::test]
async fn sqlite_rejects_what_it_cannot_open() {
    assert!(
        matches!(berth_store::open("mysql://u:pw@db/x").await, Err(StoreError::UnsupportedUrl(u)) if !u.contains("pw"))
    );
    assert!(matches!(berth_store::open("sqlite::memory:").await, Err(StoreError::UnsupportedUrl(_))));
    assert!(berth_store::open("sqlite:///nonexistent-dir/berth.db").await.is_err());
}

/// A store file that cannot be the store is refused at once, naming the
/// file and what to do: empty (a silent new store would bring a new root
/// key), not SQLite, or damaged.
#[tokio::test]
async fn sqlite_refuses_empty_foreign_and_damaged_files_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let refused = |path: &std::path::Path| {
        let url = format!("sqlite://{}", path.display());
        async move {
            let started = std::time::Instant::now();
            let err = match berth_store::open(&url).await {
                Ok(_) => panic!("{url} opened"),
                Err(e) => e,
            };
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "{err} took {:?}", started.elapsed());
            assert!(matches!(err, StoreError::Unusable { .. }), "{err:?}");
            err.to_string()
        }
    };
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("write");
    let msg = refused(&empty).await;
    assert!(msg.starts_with(&format!("store {} is empty (0 bytes)", empty.display())), "{msg}");
    assert!(msg.contains("restore it from a backup") && msg.contains("delete the file"), "{msg}");
    assert_eq!(std::fs::metadata(&empty).expect("stat").len(), 0, "nothing was written into it");

    let foreign = dir.path().join("notes.db");
    std::fs::write(&foreign, b"just some text, not a database at all").expect("write");
    let msg = refused(&foreign).await;
    assert!(msg.contains("is not an SQLite database"), "{msg}");

    // SQLite's magic, then damage: what a torn or overwritten file looks like.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(8192, 0xA5);
    std::fs::write(&damaged, &bytes).expect("write");
    let msg = refused(&damaged).await;
    assert!(msg.starts_with(&format!("store {} cannot be read as an SQLite database", damaged.display())), "{msg}");
    assert!(msg.contains(".recover"), "{msg}");
}

/// Two stores on one file behave like two processes: each has its own
/// writer connection, and they contend for SQLite's lock. Nobody sees
/// SQLITE_BUSY; every revision is taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_of_two_stores_on_one_file_never_see_busy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("berth.db").display());
    let one = berth_store::open(&url).await.expect("open").records;
    let two = berth_store::open(&url).await.expect("open again").records;
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &one } else { &two });
            tokio::spawn(async move {
                store.insert_cluster(&cluster(&format!("c{i}"), "ACTIVE")).await?;
                store.register_task_definition("shared", &definition("shared")).await
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for h in handles {
        revisions.push(h.await.expect("join").expect("write").value.definition.revision.expect("revision"));
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=40).collect::<Vec<i32>>());
    assert_eq!(two.list_clusters(None, page(None, 100)).await.expect("list").len(), 40);
}

const CHILD_ENV: &str = "BERTH_STORE_TEST_SIGKILL_CHILD_DB";
const COMMITTED: &str = "sigkill-child: committed";

/// What a process killed with SIGKILL had committed is there after a
/// restart. The child is this test binary running the ignored test below.
#[test]
fn sqlite_commits_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("berth.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "sigkill_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let committed = BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains(COMMITTED));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(committed, "the child reported its writes");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = berth_store::open(&format!("sqlite://{}", path.display())).await.expect("reopen").records;
        assert_eq!(store.count_access_keys().await.expect("count"), 20);
        assert_eq!(store.get_cluster("killed").await.expect("get").map(|c| c.version), Some(2));
        let last = store.latest_active_task_definition("web").await.expect("latest").expect("kept");
        assert_eq!(last.value.definition.revision, Some(20));
    });
}

#[tokio::test]
#[ignore = "run by sqlite_commits_survive_sigkill as its child"]
async fn sigkill_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let store = berth_store::open(&format!("sqlite://{}", std::path::Path::new(&path).display())).await.expect("open").records;
    let c = cluster("killed", "ACTIVE");
    store.insert_cluster(&c).await.expect("insert");
    store.update_cluster(&c, 1).await.expect("update");
    for i in 0..20 {
        let key = AccessKey { access_key_id: format!("AKIA{i:04}"), secret_access_key: "s".to_owned(), created_at: i };
        store.insert_access_key(&key).await.expect("insert key");
        register(store.as_ref(), "web").await;
    }
    // libtest may have started the line with the test's name.
    println!("\n{COMMITTED}");
    // Hold the connections open (no checkpoint, no clean close) until killed.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}

// --- nodes and placement ---

/// The scheduler's rule, as the API passes it to `place_task`.
fn fits(cpu: u32, memory: u32) -> impl Fn(&NodeUsage) -> bool + Send + Sync {
    move |u: &NodeUsage| u.node.cpu >= u.cpu_used + cpu && u.node.memory >= u.memory_used + memory
}

fn sized(mut t: Task, cpu: u32, memory: u32) -> Task {
    t.size = berth_model::task::TaskSize { cpu, memory };
    t
}

async fn nodes_register_and_report_usage(db: Backend) {
    let s = db.store.as_ref();
    assert!(s.list_nodes().await.expect("list").is_empty());
    s.upsert_node(&node("n1", 2048, 4096)).await.expect("register");
    s.upsert_node(&node("n2", 1024, 2048)).await.expect("register");
    let mut again = node("n1", 4096, 8192);
    again.heartbeat_at = 99;
    s.upsert_node(&again).await.expect("refresh");
    assert_eq!(s.get_node("n1").await.expect("get"), Some(again.clone()));
    assert_eq!(s.get_node("nope").await.expect("get"), None);

    let cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let t = |id: &str| format!("arn:aws:ecs:eu-central-1:111122223333:task/a/{id}");
    s.place_task(&sized(task(&t("1"), cluster, TaskStatus::Running), 512, 1024), "n1", &fits(512, 1024)).await.expect("place");
    s.place_task(&sized(task(&t("2"), cluster, TaskStatus::Pending), 256, 512), "n1", &fits(256, 512)).await.expect("place");
    let stopped = s.place_task(&sized(task(&t("3"), cluster, TaskStatus::Running), 1024, 2048), "n2", &fits(1024, 2048)).await.expect("place");
    let mut done = stopped.value.clone();
    done.apply_all(&[TaskEvent::StopRequested, TaskEvent::Deactivated, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned])
        .expect("RUNNING to STOPPED");
    assert_eq!(done.status(), TaskStatus::Stopped);
    s.put_task(&done, Some(stopped.version)).await.expect("stop");

    let usage = s.list_nodes().await.expect("list");
    assert_eq!(usage.len(), 2);
    assert_eq!((usage[0].node.id.as_str(), usage[0].cpu_used, usage[0].memory_used, usage[0].tasks), ("n1", 768, 1536, 2));
    assert_eq!((usage[1].node.id.as_str(), usage[1].cpu_used, usage[1].memory_used, usage[1].tasks), ("n2", 0, 0, 0), "a STOPPED task reserves nothing");
    assert_eq!(s.get_task(&t("1")).await.expect("get").expect("placed").value.node_id.as_deref(), Some("n1"));
}

async fn spot_tasks_are_counted_apart_and_listed_by_provider(db: Backend) {
    let s = db.store.as_ref();
    s.upsert_node(&Node { spot_cpu: 1024, spot_memory: 2048, ..node("n1", 2048, 4096) }).await.expect("register");
    let cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let t = |id: &str| format!("arn:aws:ecs:eu-central-1:111122223333:task/a/{id}");
    let mut spot = sized(task(&t("s"), cluster, TaskStatus::Running), 512, 1024);
    spot.capacity_provider = Some("FARGATE_SPOT".into());
    s.place_task(&spot, "n1", &fits(512, 1024)).await.expect("place");
    s.place_task(&sized(task(&t("o"), cluster, TaskStatus::Running), 256, 512), "n1", &fits(256, 512)).await.expect("place");
    let usage = &s.list_nodes().await.expect("list")[0];
    assert_eq!((usage.node.spot_cpu, usage.node.spot_memory), (1024, 2048), "the node's Spot part is kept");
    assert_eq!((usage.cpu_used, usage.memory_used, usage.spot_cpu_used, usage.spot_memory_used), (768, 1536, 512, 1024));
    let only_spot = TaskFilter { capacity_provider: Some("FARGATE_SPOT".into()), ..Default::default() };
    let listed = s.list_tasks(&only_spot, Page { after: None, limit: 10 }).await.expect("list");
    assert_eq!(listed.iter().map(|v| v.value.arn.to_string()).collect::<Vec<_>>(), [t("s")]);
}

async fn usage_records_are_replaced_per_task_and_survive_a_reopen(mut db: Backend) {
    use berth_model::metering;
    let cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let arn = "arn:aws:ecs:eu-central-1:111122223333:task/a/0123456789abcdef0123456789abcdef";
    let mut t = task(arn, cluster, TaskStatus::Running);
    // Pulled 100 s before an hour ends; still running 300 s later.
    let hour = 1_767_225_600;
    t.times.pull_started_at = Some((hour + 3500) as f64);
    let live = metering::records(&t, "eu-central-1", (hour + 3800) as f64);
    assert_eq!(live.iter().map(|r| (r.hour, r.seconds, r.closed)).collect::<Vec<_>>(), [(hour, 100, false), (hour + 3600, 200, false)]);
    db.store.put_task_usage(arn, &live).await.expect("put");
    // Written again (a repeated reconcile): nothing doubles.
    db.store.put_task_usage(arn, &live).await.expect("put again");
    assert_eq!(db.store.open_usage_tasks().await.expect("open"), [arn.to_owned()]);

    // Berth restarts; the task had stopped 250 s after its pull began.
    db.reopen().await;
    let before = db.store.list_usage(0, i64::MAX).await.expect("list");
    assert_eq!(before, live, "records survive a restart");
    t.apply_all(&[TaskEvent::StopRequested, TaskEvent::Deactivated, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned])
        .expect("to STOPPED");
    t.times.stopped_at = Some((hour + 3500) as f64 + 250.5);
    let done = metering::records(&t, "eu-central-1", (hour + 9000) as f64);
    db.store.put_task_usage(arn, &done).await.expect("close");
    let after = db.store.list_usage(0, i64::MAX).await.expect("list");
    assert_eq!(after.iter().map(|r| r.seconds).sum::<i64>(), 251, "each second once: 250.5 s rounded up");
    assert!(after.iter().all(|r| r.closed));
    assert_eq!(after.len(), 2);
    assert!(db.store.open_usage_tasks().await.expect("open").is_empty());
    // Only the hours asked for.
    assert_eq!(db.store.list_usage(hour + 3600, hour + 7200).await.expect("list").len(), 1);

    // A live record that ran past where the task really stopped is gone
    // once the final records are written.
    let other = "arn:aws:ecs:eu-central-1:111122223333:task/a/ffffffffffffffffffffffffffffffff";
    let mut late = task(other, cluster, TaskStatus::Running);
    late.times.pull_started_at = Some((hour + 3590) as f64);
    db.store.put_task_usage(other, &metering::records(&late, "eu-central-1", (hour + 3700) as f64)).await.expect("put");
    late.apply_all(&[TaskEvent::StopRequested, TaskEvent::Deactivated, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned])
        .expect("to STOPPED");
    late.times.stopped_at = Some((hour + 3595) as f64);
    db.store.put_task_usage(other, &metering::records(&late, "eu-central-1", (hour + 3700) as f64)).await.expect("close");
    let mine: Vec<_> = db.store.list_usage(0, i64::MAX).await.expect("list").into_iter().filter(|r| r.task_arn == other).collect();
    assert_eq!(mine.iter().map(|r| (r.hour, r.seconds)).collect::<Vec<_>>(), [(hour, 10), (hour + 3600, 50)], "the minute, from its start");
}

async fn placement_never_over_commits_a_node(db: Backend) {
    let s = db.store.as_ref();
    s.upsert_node(&node("n1", 1024, 2048)).await.expect("register");
    let cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let t = |id: usize| format!("arn:aws:ecs:eu-central-1:111122223333:task/a/{id}");
    for i in 0..4 {
        s.place_task(&sized(task(&t(i), cluster, TaskStatus::Provisioning), 256, 512), "n1", &fits(256, 512)).await.expect("fits");
    }
    let over = s.place_task(&sized(task(&t(4), cluster, TaskStatus::Provisioning), 256, 512), "n1", &fits(256, 512)).await;
    assert!(matches!(over, Err(StoreError::Rejected)), "{over:?}");
    assert_eq!(s.get_task(&t(4)).await.expect("get"), None, "a rejected placement stores nothing");
    let unknown = s.place_task(&task(&t(5), cluster, TaskStatus::Provisioning), "ghost", &fits(0, 0)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
    let twice = s.place_task(&sized(task(&t(0), cluster, TaskStatus::Provisioning), 0, 0), "n1", &fits(0, 0)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
}

async fn concurrent_placements_never_over_commit(db: Backend) {
    let store = db.store.clone();
    store.upsert_node(&node("n1", 2048, 4096)).await.expect("register");
    let cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let mut handles = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let arn = format!("arn:aws:ecs:eu-central-1:111122223333:task/a/{i}");
            store.place_task(&sized(task(&arn, cluster, TaskStatus::Provisioning), 256, 512), "n1", &fits(256, 512)).await
        }));
    }
    let mut placed = 0;
    for h in handles {
        match h.await.expect("join") {
            Ok(_) => placed += 1,
            Err(StoreError::Rejected) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(placed, 8, "2048 CPU holds exactly eight 256-CPU tasks");
    let usage = store.list_nodes().await.expect("list");
    assert_eq!((usage[0].cpu_used, usage[0].memory_used), (2048, 4096));
}

async fn tasks_listed_by_filters_and_pages(db: Backend) {
    let s = db.store.as_ref();
    let a = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    let b = "arn:aws:ecs:eu-central-1:111122223333:cluster/b";
    for i in 0..7 {
        let mut r = task(&format!("arn:aws:ecs:eu-central-1:111122223333:task/a/{i:02}"), a, TaskStatus::Running);
        r.definition_arn = format!(
            "arn:aws:ecs:eu-central-1:111122223333:task-definition/{}:3",
            if i % 2 == 0 { "web" } else { "worker" }
        )
        .parse()
        .expect("a task definition ARN");
        r.started_by = (i < 2).then(|| "ci".to_owned());
        r.group = if i == 6 { "service:front".into() } else { "family:web".into() };
        if i == 5 {
            assert!(r.request_stop(StopCode::UserInitiated, "done", 2.0));
            r.apply_all(&[TaskEvent::StopRequested, TaskEvent::Deactivated, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned])
                .expect("RUNNING to STOPPED");
            assert_eq!((r.desired(), r.status()), (DesiredStatus::Stopped, TaskStatus::Stopped));
        }
        r.node_id = Some(if i < 3 { "n1".into() } else { "n2".into() });
        s.put_task(&r, None).await.expect("put");
    }
    s.put_task(&task("arn:aws:ecs:eu-central-1:111122223333:task/b/x", b, TaskStatus::Running), None).await.expect("put");

    let ids = |rows: Vec<Versioned<Task>>| -> Vec<String> { rows.into_iter().map(|r| r.value.id().to_owned()).collect() };
    let page = |limit| Page { after: None, limit };
    let f = |filter: TaskFilter| filter;
    let in_a = TaskFilter { cluster_arn: Some(a.into()), ..Default::default() };
    assert_eq!(ids(s.list_tasks(&in_a, page(100)).await.expect("list")), ["00", "01", "02", "03", "04", "05", "06"]);
    let web = f(TaskFilter { family: Some("web".into()), ..in_a.clone() });
    assert_eq!(ids(s.list_tasks(&web, page(100)).await.expect("list")), ["00", "02", "04", "06"]);
    let ci = f(TaskFilter { started_by: Some("ci".into()), ..in_a.clone() });
    assert_eq!(ids(s.list_tasks(&ci, page(100)).await.expect("list")), ["00", "01"]);
    let svc = f(TaskFilter { group: Some("service:front".into()), ..in_a.clone() });
    assert_eq!(ids(s.list_tasks(&svc, page(100)).await.expect("list")), ["06"]);
    let running = f(TaskFilter { desired_status: Some(DesiredStatus::Running), ..in_a.clone() });
    assert_eq!(ids(s.list_tasks(&running, page(100)).await.expect("list")).len(), 6);
    let on_n1 = TaskFilter { node_id: Some("n1".into()), live_only: true, ..Default::default() };
    assert_eq!(ids(s.list_tasks(&on_n1, page(100)).await.expect("list")), ["00", "01", "02"]);
    let live_n2 = TaskFilter { node_id: Some("n2".into()), live_only: true, ..Default::default() };
    assert_eq!(ids(s.list_tasks(&live_n2, page(100)).await.expect("list")), ["03", "04", "06"]);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = s.list_tasks(&in_a, Page { after: after.clone(), limit: 3 }).await.expect("page");
        let Some(last) = rows.last() else { break };
        after = Some(last.value.arn.to_string());
        seen.extend(ids(rows));
    }
    assert_eq!(seen, ["00", "01", "02", "03", "04", "05", "06"], "pages without gaps or repeats");
}

// --- CloudWatch Logs ---

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z in ms
const DAY: i64 = 86_400_000;

fn log_group(name: &str) -> LogGroupRecord {
    LogGroupRecord {
        name: name.to_owned(),
        created_at: T0,
        retention_days: None,
        class: "STANDARD".to_owned(),
        stored_bytes: 0,
    }
}

fn ev(timestamp: i64, message: &str) -> NewLogEvent {
    NewLogEvent { timestamp, message: message.to_owned() }
}

/// A group with one stream, ready for events.
async fn stream_in(s: &dyn LogStore, group: &str, stream: &str) {
    match s.create_log_group(&log_group(group)).await {
        Ok(_) | Err(StoreError::Conflict) => {}
        Err(e) => panic!("create group: {e:?}"),
    }
    s.create_log_stream(group, stream, T0).await.expect("create stream");
}

fn range(direction: Direction, from: StreamPosition, limit: u32) -> EventRange {
    EventRange { start_time: None, end_time: None, direction, from, limit, max_bytes: u64::MAX }
}

fn messages(events: &[LogEventRecord]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

fn stream_names(streams: &[LogStreamRecord]) -> Vec<&str> {
    streams.iter().map(|s| s.name.as_str()).collect()
}

/// 40 streams of 2,500 events: the delete goes in batches, so writes to
/// another group keep landing while it runs (on SQLite a single statement
/// held them all until the end), and nothing of the group is left.
async fn a_big_log_group_is_deleted_in_batches_other_writes_going_on(db: Backend) {
    let s = db.logs.clone();
    for i in 0..40 {
        let stream = format!("task/{i}");
        stream_in(s.as_ref(), "/ecs/big", &stream).await;
        for chunk in 0..5 {
            let events: Vec<NewLogEvent> =
                (0..500).map(|j| ev(T0 + chunk * 500 + j, "a log line of a chatty container, about sixty bytes long")).collect();
            s.put_log_events("/ecs/big", &stream, &events, T0).await.expect("put");
        }
    }
    stream_in(s.as_ref(), "/ecs/other", "st").await;
    let deleting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    // The writer notes when each of its writes began and ended.
    let writer = {
        let (s, deleting) = (s.clone(), deleting.clone());
        tokio::spawn(async move {
            let (mut writes, mut i) = (Vec::new(), 0i64);
            while deleting.load(std::sync::atomic::Ordering::SeqCst) {
                let began = std::time::Instant::now();
                s.put_log_events("/ecs/other", "st", &[ev(T0 + i, "still here")], T0).await.expect("a write beside the delete");
                writes.push((began, std::time::Instant::now()));
                i += 1;
                tokio::task::yield_now().await;
            }
            writes
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let started = std::time::Instant::now();
    assert!(s.delete_log_group("/ecs/big").await.expect("delete"));
    let ended = std::time::Instant::now();
    deleting.store(false, std::sync::atomic::Ordering::SeqCst);
    let writes = writer.await.expect("writer");
    let took = ended - started;
    let during = writes.iter().filter(|(_, done)| *done > started && *done < ended).count();
    let longest = writes.iter().filter(|(_, done)| *done > started).map(|(b, d)| *d - *b).max().unwrap_or_default();
    eprintln!("deleting 100,000 events in 40 streams took {took:?}; {during} writes to another group landed meanwhile, the longest waited {longest:?}");
    // SQLite has one writer at a time: a delete in one statement made
    // every other write wait for all of it (the agent's heartbeat too).
    // PostgreSQL's row locks never made writes to another group wait.
    if db.url.starts_with("sqlite:") {
        assert!(during >= 5, "other writes go on while a big group is deleted: {during} in {took:?}");
        assert!(longest * 2 < took, "no write waits for the whole delete: {longest:?} of {took:?}");
    }
    assert_eq!(s.get_log_group("/ecs/big").await.expect("get"), None);
    let names: Vec<String> = s.list_log_groups(None, page(None, 50)).await.expect("list").into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["/ecs/other"], "no tombstone is listed");
    let filter = EventFilter { limit: 10, max_bytes: u64::MAX, scan_limit: 10, ..Default::default() };
    assert!(s.filter_log_events("/ecs/big", &filter, &|_| true).await.expect("filter").events.is_empty());
    // The name is free again, and starts empty.
    stream_in(s.as_ref(), "/ecs/big", "task/0").await;
    let read = s.read_log_events("/ecs/big", "task/0", &range(Direction::Forward, StreamPosition::START, 10)).await;
    assert!(read.expect("read").is_empty());
}

async fn log_groups_created_listed_and_deleted(db: Backend) {
    let s = db.logs.as_ref();
    let created = s.create_log_group(&LogGroupRecord { stored_bytes: 99, ..log_group("/ecs/web") }).await.expect("create");
    assert_eq!(created, log_group("/ecs/web"), "a new group stores nothing yet");
    assert!(matches!(s.create_log_group(&log_group("/ecs/web")).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_log_group("/ecs/web").await.expect("get"), Some(log_group("/ecs/web")));
    assert_eq!(s.get_log_group("/ecs/WEB").await.expect("get"), None, "names are case-sensitive");

    // Byte order: `/` < `A` < `_` < `a`; `_` in a prefix is no wildcard.
    for name in ["/ecs/api", "/ecs/a_b", "/ecs/aXb", "Zeta", "_x", "app"] {
        s.create_log_group(&log_group(name)).await.expect("create");
    }
    let names = |groups: Vec<LogGroupRecord>| groups.into_iter().map(|g| g.name).collect::<Vec<_>>();
    let all = names(s.list_log_groups(None, page(None, 50)).await.expect("list"));
    assert_eq!(all, ["/ecs/aXb", "/ecs/a_b", "/ecs/api", "/ecs/web", "Zeta", "_x", "app"]);
    assert_eq!(names(s.list_log_groups(Some("/ecs/a_"), page(None, 50)).await.expect("list")), ["/ecs/a_b"]);
    assert_eq!(names(s.list_log_groups(Some("/ecs/"), page(None, 2)).await.expect("list")), ["/ecs/aXb", "/ecs/a_b"]);
    let rest = s.list_log_groups(Some("/ecs/"), page(Some("/ecs/a_b".to_owned()), 50)).await.expect("list");
    assert_eq!(names(rest), ["/ecs/api", "/ecs/web"]);
    assert!(s.list_log_groups(Some("nope"), page(None, 50)).await.expect("list").is_empty());

    assert!(s.set_log_group_retention("/ecs/web", Some(7)).await.expect("retention"));
    assert_eq!(s.get_log_group("/ecs/web").await.expect("get").and_then(|g| g.retention_days), Some(7));
    assert!(s.set_log_group_retention("/ecs/web", None).await.expect("retention"));
    assert_eq!(s.get_log_group("/ecs/web").await.expect("get").and_then(|g| g.retention_days), None);
    assert!(!s.set_log_group_retention("ghost", Some(1)).await.expect("retention"));

    // Deleting takes streams and events along; the name can be used again
    // and starts empty.
    s.create_log_stream("/ecs/web", "a", T0).await.expect("stream");
    s.put_log_events("/ecs/web", "a", &[ev(T0, "hello")], T0).await.expect("put");
    assert_eq!(s.get_log_group("/ecs/web").await.expect("get").map(|g| g.stored_bytes), Some(5));
    assert!(s.delete_log_group("/ecs/web").await.expect("delete"));
    assert!(!s.delete_log_group("/ecs/web").await.expect("delete again"));
    assert_eq!(s.get_log_group("/ecs/web").await.expect("get"), None);
    assert_eq!(s.get_log_stream("/ecs/web", "a").await.expect("get"), None);
    s.create_log_group(&log_group("/ecs/web")).await.expect("create again");
    s.create_log_stream("/ecs/web", "a", T0).await.expect("stream again");
    let read = s.read_log_events("/ecs/web", "a", &range(Direction::Forward, StreamPosition::START, 100)).await;
    assert!(read.expect("read").is_empty(), "the new group's stream has no old events");
    assert_eq!(s.get_log_stream("/ecs/web", "a").await.expect("get").map(|st| st.next_sequence), Some(0));
}

async fn log_streams_listed_by_name_and_last_event_time(db: Backend) {
    let s = db.logs.as_ref();
    assert!(matches!(s.create_log_stream("ghost", "a", T0).await, Err(StoreError::NotFound(_))));
    s.create_log_group(&log_group("g")).await.expect("group");
    s.create_log_group(&log_group("other")).await.expect("group");
    for name in ["web/1", "web/2", "Web/3", "db/1", "empty"] {
        s.create_log_stream("g", name, T0).await.expect("stream");
    }
    s.create_log_stream("other", "web/1", T0).await.expect("same name, other group");
    assert!(matches!(s.create_log_stream("g", "web/1", T0).await, Err(StoreError::Conflict)));
    // Last event times: db/1 latest, web/1 and Web/3 tie.
    for (name, t) in [("web/1", T0 + 10), ("web/2", T0 + 5), ("Web/3", T0 + 10), ("db/1", T0 + 20)] {
        s.put_log_events("g", name, &[ev(t - 1, "x"), ev(t, "y")], T0 + 30).await.expect("put");
    }
    let list = |q: LogStreamQuery, after, limit| {
        let q = q.clone();
        async move { s.list_log_streams("g", &q, page(after, limit)).await.expect("list") }
    };
    let by_name = LogStreamQuery::default();
    assert_eq!(stream_names(&list(by_name.clone(), None, 50).await), ["Web/3", "db/1", "empty", "web/1", "web/2"]);
    let desc = LogStreamQuery { descending: true, ..Default::default() };
    assert_eq!(stream_names(&list(desc.clone(), None, 50).await), ["web/2", "web/1", "empty", "db/1", "Web/3"]);
    let after_web1 = list(desc, Some((0, "web/1".to_owned())), 2).await;
    assert_eq!(stream_names(&after_web1), ["empty", "db/1"]);
    let web = LogStreamQuery { prefix: Some("web/".to_owned()), ..Default::default() };
    assert_eq!(stream_names(&list(web, None, 50).await), ["web/1", "web/2"]);
    assert!(s.list_log_streams("ghost", &by_name, page(None, 50)).await.expect("list").is_empty());

    let by_time = LogStreamQuery { order: LogStreamOrder::LastEventTime, ..Default::default() };
    assert_eq!(stream_names(&list(by_time.clone(), None, 50).await), ["empty", "web/2", "Web/3", "web/1", "db/1"]);
    // Paged two at a time, resuming from (last event time or -1, name).
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = list(by_time.clone(), after.clone(), 2).await;
        let Some(last) = rows.last() else { break };
        after = Some((last.last_event_timestamp.unwrap_or(-1), last.name.clone()));
        seen.extend(rows.into_iter().map(|r| r.name));
    }
    assert_eq!(seen, ["empty", "web/2", "Web/3", "web/1", "db/1"]);
    let newest_first = LogStreamQuery { order: LogStreamOrder::LastEventTime, descending: true, ..Default::default() };
    let first = list(newest_first.clone(), None, 2).await;
    assert_eq!(stream_names(&first), ["db/1", "web/1"]);
    let next = list(newest_first, Some((T0 + 10, "web/1".to_owned())), 10).await;
    assert_eq!(stream_names(&next), ["Web/3", "web/2", "empty"]);

    let stream = s.get_log_stream("g", "db/1").await.expect("get").expect("stream");
    assert_eq!(
        stream,
        LogStreamRecord {
            group: "g".to_owned(),
            name: "db/1".to_owned(),
            created_at: T0,
            first_event_timestamp: Some(T0 + 19),
            last_event_timestamp: Some(T0 + 20),
            last_ingestion_time: Some(T0 + 30),
            stored_bytes: 2,
            next_sequence: 2,
        }
    );
    assert!(s.delete_log_stream("g", "db/1").await.expect("delete"));
    assert!(!s.delete_log_stream("g", "db/1").await.expect("delete again"));
    assert_eq!(s.get_log_stream("g", "db/1").await.expect("get"), None);
    assert_eq!(s.get_log_stream("other", "web/1").await.expect("get").map(|st| st.stored_bytes), Some(0));
}

async fn log_events_appended_in_sequence_and_read_both_ways(db: Backend) {
    let s = db.logs.as_ref();
    stream_in(s, "g", "st").await;
    assert!(matches!(s.put_log_events("g", "nope", &[ev(T0, "x")], T0).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.put_log_events("nope", "st", &[ev(T0, "x")], T0).await, Err(StoreError::NotFound(_))));
    // 300 events over two batches; timestamps repeat (three per ms), and
    // the second batch has some earlier than the first batch's last.
    let first: Vec<NewLogEvent> = (0..200).map(|i| ev(T0 + i / 3, &format!("m{i:03}"))).collect();
    let second: Vec<NewLogEvent> = (200..300).map(|i| ev(T0 + (i - 150) / 3, &format!("m{i:03}"))).collect();
    let after_first = s.put_log_events("g", "st", &first, T0 + 1000).await.expect("put");
    assert_eq!(after_first.next_sequence, 200);
    assert_eq!((after_first.first_event_timestamp, after_first.last_event_timestamp), (Some(T0), Some(T0 + 66)));
    let after = s.put_log_events("g", "st", &second, T0 + 2000).await.expect("put");
    assert_eq!(after.next_sequence, 300);
    let span = (after.first_event_timestamp, after.last_event_timestamp);
    assert_eq!(span, (Some(T0), Some(T0 + 66)), "the last stays the latest");
    assert_eq!(after.last_ingestion_time, Some(T0 + 2000));
    assert_eq!(after.stored_bytes, 300 * 4);
    assert_eq!(s.put_log_events("g", "st", &[], T0 + 3000).await.expect("empty batch"), after, "changes nothing");
    assert_eq!(s.get_log_group("g").await.expect("get").map(|g| g.stored_bytes), Some(1200));

    // The order: by timestamp, then by arrival.
    let mut expected: Vec<(i64, i64, String)> =
        first.iter().chain(&second).enumerate().map(|(i, e)| (e.timestamp, i as i64, e.message.clone())).collect();
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|e| e.2).collect();

    let everything = s.read_log_events("g", "st", &range(Direction::Forward, StreamPosition::START, 10_000)).await;
    let everything = everything.expect("read");
    assert_eq!(messages(&everything), expected);
    assert!(everything.iter().all(|e| e.stream == "st"));
    assert_eq!(everything[0].ingestion_time, T0 + 1000);

    // Forward in pages of 7 from the start, each from just after the last.
    let mut seen = Vec::new();
    let mut from = StreamPosition::START;
    loop {
        let page = s.read_log_events("g", "st", &range(Direction::Forward, from, 7)).await.expect("read");
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 7);
        from = last.position_after();
        seen.extend(page.into_iter().map(|e| e.message));
    }
    assert_eq!(seen, expected);

    // Backward in pages of 11 from the end, each from the first of the last.
    let mut pages = Vec::new();
    let mut from = StreamPosition::END;
    loop {
        let page = s.read_log_events("g", "st", &range(Direction::Backward, from, 11)).await.expect("read");
        let Some(first) = page.first() else { break };
        from = first.position();
        pages.push(page.into_iter().map(|e| e.message).collect::<Vec<_>>());
    }
    assert_eq!(pages[0].len(), 11, "the latest 11, earliest first");
    assert_eq!(pages[0], expected[expected.len() - 11..]);
    let seen: Vec<String> = pages.into_iter().rev().flatten().collect();
    assert_eq!(seen, expected);

    // A time range: start inclusive, end exclusive.
    let windowed = EventRange {
        start_time: Some(T0 + 10),
        end_time: Some(T0 + 12),
        ..range(Direction::Forward, StreamPosition::START, 100)
    };
    let got = s.read_log_events("g", "st", &windowed).await.expect("read");
    assert!(got.iter().all(|e| (T0 + 10..T0 + 12).contains(&e.timestamp)));
    assert_eq!(got.len(), 6);
    let tail = EventRange { direction: Direction::Backward, from: StreamPosition::END, limit: 2, ..windowed };
    let got = s.read_log_events("g", "st", &tail).await.expect("read");
    assert_eq!(got.iter().map(|e| e.timestamp).collect::<Vec<_>>(), [T0 + 11, T0 + 11]);

    let from_start = |limit| range(Direction::Forward, StreamPosition::START, limit);
    assert!(s.read_log_events("g", "ghost", &from_start(10)).await.expect("read").is_empty());
    assert!(s.read_log_events("g", "st", &from_start(0)).await.expect("read").is_empty());
}

async fn log_reads_fit_the_byte_budget(db: Backend) {
    let s = db.logs.as_ref();
    stream_in(s, "g", "big").await;
    // Ten events of 100 bytes cost 126 each.
    let events: Vec<NewLogEvent> = (0..10).map(|i| ev(T0 + i, &format!("{i}").repeat(100))).collect();
    s.put_log_events("g", "big", &events, T0).await.expect("put");
    let budget = |direction, from, max_bytes| EventRange { max_bytes, ..range(direction, from, 100) };
    let got = s.read_log_events("g", "big", &budget(Direction::Forward, StreamPosition::START, 3 * 126)).await;
    assert_eq!(got.expect("read").iter().map(|e| e.timestamp - T0).collect::<Vec<_>>(), [0, 1, 2]);
    let got = s.read_log_events("g", "big", &budget(Direction::Backward, StreamPosition::END, 4 * 126 - 1)).await;
    assert_eq!(got.expect("read").iter().map(|e| e.timestamp - T0).collect::<Vec<_>>(), [7, 8, 9]);
    let got = s.read_log_events("g", "big", &budget(Direction::Forward, StreamPosition::START, 1)).await;
    assert_eq!(got.expect("read").len(), 1, "always at least one event");

    let filter = EventFilter { limit: 100, max_bytes: 2 * 126, scan_limit: 1000, ..Default::default() };
    let got = s.filter_log_events("g", &filter, &|_| true).await.expect("filter");
    assert_eq!(got.events.len(), 2);
    let next = EventFilter { after: got.resume_after, ..filter };
    let got = s.filter_log_events("g", &next, &|_| true).await.expect("filter");
    assert_eq!(got.events.iter().map(|e| e.timestamp - T0).collect::<Vec<_>>(), [2, 3]);
}

async fn log_messages_keep_every_character(db: Backend) {
    let s = db.logs.as_ref();
    stream_in(s, "g", "odd").await;
    let odd = [
        "NUL \0 inside",
        "\0",
        "backslash \\0 not a NUL",
        "\\",
        "ünïcødé 日本語 🚢",
        "quote ' \" and % _ *",
        "",
        "line\nbreaks\r\n\ttabs",
    ];
    let events: Vec<NewLogEvent> = odd.iter().enumerate().map(|(i, m)| ev(T0 + i as i64, m)).collect();
    let stream = s.put_log_events("g", "odd", &events, T0).await.expect("put");
    let bytes: usize = odd.iter().map(|m| m.len()).sum();
    assert_eq!(stream.stored_bytes, bytes as i64, "UTF-8 bytes of the messages as given");
    let got = s.read_log_events("g", "odd", &range(Direction::Forward, StreamPosition::START, 100)).await;
    assert_eq!(messages(&got.expect("read")), odd);
    let filter = EventFilter { limit: 100, max_bytes: u64::MAX, scan_limit: 100, ..Default::default() };
    let got = s.filter_log_events("g", &filter, &|m| m.contains('\0')).await.expect("filter");
    assert_eq!(messages(&got.events), ["NUL \0 inside", "\0"], "filters see the messages as given");
}

async fn concurrent_appends_take_consecutive_sequence_numbers(db: Backend) {
    let store = db.logs.clone();
    stream_in(store.as_ref(), "g", "busy").await;
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..10 {
                    let batch: Vec<NewLogEvent> = (0..25).map(|i| ev(T0 + i, &format!("w{w}b{b}e{i:02}"))).collect();
                    store.put_log_events("g", "busy", &batch, T0).await.expect("put");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("join");
    }
    let stream = store.get_log_stream("g", "busy").await.expect("get").expect("stream");
    assert_eq!(stream.next_sequence, 8 * 10 * 25);
    assert_eq!(stream.stored_bytes, 8 * 10 * 25 * 7, "\"w0b0e00\" is 7 bytes");
    let all = store.read_log_events("g", "busy", &range(Direction::Forward, StreamPosition::START, 10_000)).await;
    let all = all.expect("read");
    let mut seqs: Vec<i64> = all.iter().map(|e| e.sequence).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..2000).collect::<Vec<_>>(), "each number once");
    // Each batch's events are consecutive and in the order given.
    for e in &all {
        let batch = all.iter().filter(|o| o.message[..4] == e.message[..4]).map(|o| o.sequence);
        let (lo, hi) = (batch.clone().min().unwrap_or(0), batch.max().unwrap_or(0));
        assert_eq!(hi - lo, 24, "{}", e.message);
        let i: i64 = e.message[5..].parse().expect("index");
        assert_eq!(e.sequence, lo + i);
    }
}

/// Three streams with interleaved times: a/1 at T0+0,3,6.., a/2 at
/// T0+1,4,7.., b/1 at T0+2,5,8.., 20 events each; every fifth says ERROR.
async fn three_streams(s: &dyn LogStore) {
    for (k, name) in ["a/1", "a/2", "b/1"].into_iter().enumerate() {
        stream_in(s, "g", name).await;
        let events: Vec<NewLogEvent> = (0..20)
            .map(|i| {
                let level = if i % 5 == 0 { "ERROR" } else { "INFO" };
                ev(T0 + 3 * i + k as i64, &format!("{level} {name} #{i}"))
            })
            .collect();
        s.put_log_events("g", name, &events, T0).await.expect("put");
    }
}

async fn filter_searches_a_groups_streams_in_order(db: Backend) {
    let s = db.logs.as_ref();
    three_streams(s).await;
    let all = EventFilter { limit: 10_000, max_bytes: u64::MAX, scan_limit: 10_000, ..Default::default() };
    let got = s.filter_log_events("g", &all, &|_| true).await.expect("filter");
    assert_eq!(got.events.len(), 60);
    assert_eq!(got.resume_after, None);
    let times: Vec<i64> = got.events.iter().map(|e| e.timestamp - T0).collect();
    assert_eq!(times, (0..60).collect::<Vec<_>>(), "in time order across streams");
    assert_eq!(got.events[1].stream, "a/2");

    let errors = s.filter_log_events("g", &all, &|m| m.starts_with("ERROR")).await.expect("filter");
    assert_eq!(errors.events.len(), 12);
    let only = EventFilter { stream_names: Some(vec!["a/2".into(), "b/1".into(), "ghost".into()]), ..all.clone() };
    let got = s.filter_log_events("g", &only, &|_| true).await.expect("filter");
    assert!(got.events.iter().all(|e| e.stream != "a/1"));
    assert_eq!(got.events.len(), 40);
    let prefixed = EventFilter { stream_prefix: Some("a/".into()), ..all.clone() };
    let got = s.filter_log_events("g", &prefixed, &|_| true).await.expect("filter");
    assert_eq!(got.events.len(), 40);
    assert!(got.events.iter().all(|e| e.stream.starts_with("a/")));
    let window = EventFilter { start_time: Some(T0 + 10), end_time: Some(T0 + 20), ..all.clone() };
    let got = s.filter_log_events("g", &window, &|_| true).await.expect("filter");
    assert_eq!(got.events.iter().map(|e| e.timestamp - T0).collect::<Vec<_>>(), (10..20).collect::<Vec<_>>());
    let none = EventFilter { stream_names: Some(vec![]), ..all.clone() };
    assert!(s.filter_log_events("g", &none, &|_| true).await.expect("filter").events.is_empty());
    assert_eq!(s.filter_log_events("ghost", &all, &|_| true).await.expect("filter"), Default::default());
}

async fn filter_pages_resume_without_gaps_or_repeats(db: Backend) {
    let s = db.logs.as_ref();
    three_streams(s).await;
    let matcher = |m: &str| m.starts_with("ERROR");
    let everything = EventFilter { limit: 10_000, max_bytes: u64::MAX, scan_limit: 10_000, ..Default::default() };
    let expected = s.filter_log_events("g", &everything, &matcher).await.expect("filter").events;
    // Small pages by matches, and small scans that may find nothing.
    for (limit, scan_limit) in [(5, 10_000), (1, 10_000), (100, 7), (3, 4), (12, 10_000)] {
        let mut seen = Vec::new();
        let mut after = None;
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls < 100, "paging ends");
            let filter = EventFilter { after, limit, scan_limit, ..everything.clone() };
            let got = s.filter_log_events("g", &filter, &matcher).await.expect("filter");
            assert!(got.events.len() <= limit as usize);
            seen.extend(got.events);
            match got.resume_after {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit {limit}, scan limit {scan_limit}");
    }
}

async fn retention_expires_old_events_only(db: Backend) {
    let s = db.logs.as_ref();
    let now = T0 + 30 * DAY;
    stream_in(s, "short", "st").await;
    stream_in(s, "short", "fresh").await;
    stream_in(s, "forever", "st").await;
    assert!(s.set_log_group_retention("short", Some(1)).await.expect("retention"));
    let old = [ev(now - 3 * DAY, "aaaa"), ev(now - 2 * DAY, "bb"), ev(now - DAY + 1, "c"), ev(now - 1000, "dd")];
    s.put_log_events("short", "st", &old, now).await.expect("put");
    s.put_log_events("short", "fresh", &[ev(now, "new")], now).await.expect("put");
    s.put_log_events("forever", "st", &old, now).await.expect("put");
    assert_eq!(s.expire_log_events(now).await.expect("expire"), 2);
    let st = s.get_log_stream("short", "st").await.expect("get").expect("stream kept");
    assert_eq!(st.first_event_timestamp, Some(now - DAY + 1));
    assert_eq!(st.last_event_timestamp, Some(now - 1000));
    assert_eq!(st.stored_bytes, 3);
    let left = s.read_log_events("short", "st", &range(Direction::Forward, StreamPosition::START, 100)).await;
    assert_eq!(messages(&left.expect("read")), ["c", "dd"]);
    assert_eq!(s.get_log_stream("forever", "st").await.expect("get").map(|st| st.stored_bytes), Some(9));
    assert_eq!(s.expire_log_events(now).await.expect("expire again"), 0, "nothing more is old");
    // A day later everything but the newest event has gone; the emptied
    // stream stays.
    assert_eq!(s.expire_log_events(now + DAY).await.expect("expire"), 2);
    let st = s.get_log_stream("short", "st").await.expect("get").expect("stream kept");
    assert_eq!((st.first_event_timestamp, st.stored_bytes), (None, 0));
    assert_eq!(s.get_log_group("short").await.expect("get").map(|g| g.stored_bytes), Some(3));

    // More than one batch's worth.
    stream_in(s, "short", "many").await;
    let many: Vec<NewLogEvent> = (0..12_000).map(|i| ev(now - 2 * DAY + i, "x")).collect();
    for batch in many.chunks(4000) {
        s.put_log_events("short", "many", batch, now).await.expect("put");
    }
    s.put_log_events("short", "many", &[ev(now, "keep")], now).await.expect("put");
    assert_eq!(s.expire_log_events(now).await.expect("expire"), 12_000);
    let many = s.get_log_stream("short", "many").await.expect("get").expect("stream");
    assert_eq!((many.first_event_timestamp, many.stored_bytes, many.next_sequence), (Some(now), 4, 12_001));
}

/// Deleting a group or a stream while others append to it and create
/// streams in it: every call either applies or says NotFound, and nothing
/// is left behind.
async fn deletes_race_appends_and_stream_creation_cleanly(db: Backend) {
    let store = db.logs.clone();
    for round in 0..5 {
        stream_in(store.as_ref(), "doomed", "st").await;
        let appender = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    match store.put_log_events("doomed", "st", &[ev(T0 + i, "x"), ev(T0 + i, "y")], T0).await {
                        Ok(_) => {}
                        Err(StoreError::NotFound(_)) => return,
                        Err(e) => panic!("append: {e:?}"),
                    }
                }
            })
        };
        let creator = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    match store.create_log_stream("doomed", &format!("new{i}"), T0).await {
                        Ok(_) => {}
                        Err(StoreError::NotFound(_)) => return,
                        Err(e) => panic!("create stream: {e:?}"),
                    }
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
        if round % 2 == 0 {
            assert!(store.delete_log_group("doomed").await.expect("delete group"));
        } else {
            assert!(store.delete_log_stream("doomed", "st").await.expect("delete stream"));
        }
        appender.await.expect("appender");
        creator.await.expect("creator");
        if round % 2 == 1 {
            assert!(store.delete_log_group("doomed").await.expect("delete group"));
        }
        assert_eq!(store.get_log_group("doomed").await.expect("get"), None);
        let filter = EventFilter { limit: 10, max_bytes: u64::MAX, scan_limit: 10, ..Default::default() };
        assert!(store.filter_log_events("doomed", &filter, &|_| true).await.expect("filter").events.is_empty());
    }
}

async fn logs_survive_reopen(mut db: Backend) {
    stream_in(db.logs.as_ref(), "g", "st").await;
    db.logs.set_log_group_retention("g", Some(30)).await.expect("retention");
    db.logs.put_log_events("g", "st", &[ev(T0, "one"), ev(T0 + 1, "two")], T0 + 5).await.expect("put");
    db.reopen().await;
    let s = db.logs.as_ref();
    assert_eq!(s.get_log_group("g").await.expect("get").and_then(|g| g.retention_days), Some(30));
    let st = s.put_log_events("g", "st", &[ev(T0 + 2, "three")], T0 + 6).await.expect("put after reopen");
    assert_eq!(st.next_sequence, 3, "numbering carries on");
    let got = s.read_log_events("g", "st", &range(Direction::Forward, StreamPosition::START, 10)).await;
    assert_eq!(messages(&got.expect("read")), ["one", "two", "three"]);
    stream_in(s, "g2", "st").await; // ids carry on too: no clash with g's
    let got = s.read_log_events("g2", "st", &range(Direction::Forward, StreamPosition::START, 10)).await;
    assert!(got.expect("read").is_empty());
}

// --- networking ---

fn subnet_record(id: &str, cidr: &str) -> berth_model::network::SubnetRecord {
    berth_model::network::SubnetRecord {
        id: id.into(),
        cidr: cidr.parse().unwrap(),
        name: String::new(),
        egress: false,
        created_at: 1.0,
        tags: Default::default(),
    }
}

async fn subnets_and_security_groups_with_versions(db: Backend) {
    let s = db.store.as_ref();
    let a = s.put_subnet(&subnet_record("subnet-a", "10.89.0.0/16"), None).await.unwrap();
    assert_eq!(a.version, 1);
    assert!(matches!(s.put_subnet(&subnet_record("subnet-a", "10.90.0.0/16"), None).await, Err(StoreError::Conflict)));
    s.put_subnet(&subnet_record("subnet-0b", "10.91.0.0/24"), None).await.unwrap();
    let mut changed = a.value.clone();
    changed.name = "main".into();
    assert_eq!(s.put_subnet(&changed, Some(1)).await.unwrap().version, 2);
    assert!(matches!(s.put_subnet(&changed, Some(1)).await, Err(StoreError::Conflict)), "stale version");
    let ids: Vec<String> = s.list_subnets().await.unwrap().into_iter().map(|v| v.value.id).collect();
    assert_eq!(ids, ["subnet-0b", "subnet-a"]);
    assert_eq!(s.get_subnet("subnet-a").await.unwrap().unwrap().value.name, "main");

    // A subnet with an address in use cannot go.
    assert!(s.claim_ip("subnet-0b", "10.91.0.2", "arn:t1").await.unwrap());
    assert!(matches!(s.delete_subnet("subnet-0b").await, Err(StoreError::Rejected)));
    s.release_ips("arn:t1").await.unwrap();
    assert!(s.delete_subnet("subnet-0b").await.unwrap());
    assert!(!s.delete_subnet("subnet-0b").await.unwrap());

    let group = berth_model::network::SecurityGroupRecord {
        id: "sg-web".into(),
        name: "web".into(),
        description: "http".into(),
        ingress: vec![berth_model::network::IngressRule {
            protocol: "tcp".into(),
            from_port: 80,
            to_port: 80,
            cidr: Some("0.0.0.0/0".parse().unwrap()),
            source_group: None,
        }],
        created_at: 1.0,
        egress: berth_model::network::allow_all_egress(),
        tags: Default::default(),
    };
    s.put_security_group(&group, None).await.unwrap();
    let got = s.get_security_group("sg-web").await.unwrap().unwrap();
    assert_eq!(got.value, group);
    assert_eq!(s.list_security_groups().await.unwrap().len(), 1);
    assert!(s.delete_security_group("sg-web").await.unwrap());
    assert!(s.get_security_group("sg-web").await.unwrap().is_none());
}

async fn an_address_goes_to_one_task_at_a_time(db: Backend) {
    let s = db.store.clone();
    s.put_subnet(&subnet_record("subnet-a", "10.89.0.0/16"), None).await.unwrap();
    assert!(s.claim_ip("subnet-a", "10.89.0.2", "arn:t1").await.unwrap());
    assert!(s.claim_ip("subnet-a", "10.89.0.2", "arn:t1").await.unwrap(), "claiming again is fine");
    assert!(!s.claim_ip("subnet-a", "10.89.0.2", "arn:t2").await.unwrap(), "never two holders");
    // Many tasks racing for the same few addresses: each address has one holder.
    let mut handles = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for ip in 3..8 {
                if s.claim_ip("subnet-a", &format!("10.89.0.{ip}"), &format!("arn:r{t}")).await.unwrap() {
                    won.push(ip);
                }
            }
            won
        }));
    }
    let mut won: Vec<i32> = Vec::new();
    for h in handles {
        won.extend(h.await.unwrap());
    }
    won.sort();
    assert_eq!(won, [3, 4, 5, 6, 7], "each address went to exactly one task");
    let held = s.allocated_ips("subnet-a").await.unwrap();
    assert_eq!(held.len(), 6);
    assert_eq!(s.task_ips("arn:t1").await.unwrap(), [("subnet-a".to_owned(), "10.89.0.2".to_owned())]);
    assert_eq!(s.release_ips("arn:t1").await.unwrap(), 1);
    assert!(s.claim_ip("subnet-a", "10.89.0.2", "arn:t2").await.unwrap(), "freed at release");
}

/// A watcher of each record kind.
type Watchers = std::collections::BTreeMap<RecordKind, tokio::sync::broadcast::Receiver<Notice>>;

/// The notice of the write just made to `kind`: exactly one, with `key`
/// and `version`.
fn announced(w: &mut Watchers, kind: RecordKind, key: &str, version: Option<i64>) {
    let rx = w.get_mut(&kind).unwrap();
    let got = rx.try_recv().unwrap_or_else(|e| panic!("no notice of {kind:?} {key}: {e}"));
    assert_eq!(got, Notice { kind, key: key.to_owned(), version });
    quiet(w, kind, "one notice per write");
}

fn quiet(w: &mut Watchers, kind: RecordKind, why: &str) {
    assert!(w.get_mut(&kind).unwrap().try_recv().is_err(), "{kind:?}: {why}");
}

async fn writes_of_every_kind_are_announced_with_their_versions(db: Backend) {
    let s = db.store.as_ref();
    let mut w: Watchers = RecordKind::ALL.iter().map(|k| (*k, s.watch(*k))).collect();

    // Clusters: insert, update; a conflicting write announces nothing.
    let c = cluster("a", "ACTIVE");
    s.insert_cluster(&c).await.unwrap();
    announced(&mut w, RecordKind::Cluster, "a", Some(1));
    assert!(s.insert_cluster(&c).await.is_err());
    s.update_cluster(&c, 1).await.unwrap();
    announced(&mut w, RecordKind::Cluster, "a", Some(2));
    assert!(s.update_cluster(&c, 1).await.is_err(), "stale");
    quiet(&mut w, RecordKind::Cluster, "a write that failed is not announced");

    // Task definitions, keyed family:revision.
    register(s, "web").await;
    announced(&mut w, RecordKind::TaskDefinition, "web:1", Some(1));
    set_status(s, "web", 1, TaskDefinitionStatus::Inactive).await;
    announced(&mut w, RecordKind::TaskDefinition, "web:1", Some(2));
    let stale = s.get_task_definition("web", 1).await.unwrap().unwrap().value;
    assert!(s.update_task_definition(&stale, 1).await.is_err());
    quiet(&mut w, RecordKind::TaskDefinition, "a write that failed is not announced");

    // Nodes: each registration or heartbeat.
    s.upsert_node(&node("n1", 2048, 4096)).await.unwrap();
    announced(&mut w, RecordKind::Node, "n1", Some(1));
    s.upsert_node(&node("n1", 2048, 4096)).await.unwrap();
    announced(&mut w, RecordKind::Node, "n1", Some(2));

    // Tasks: placement and update.
    let cluster_arn = "arn:aws:ecs:us-east-1:111122223333:cluster/a";
    let arn = "arn:aws:ecs:us-east-1:111122223333:task/a/w1";
    let placed = s.place_task(&sized(task(arn, cluster_arn, TaskStatus::Provisioning), 256, 512), "n1", &fits(256, 512)).await.unwrap();
    announced(&mut w, RecordKind::Task, arn, Some(1));
    let mut next = placed.value.clone();
    assert!(next.request_stop(StopCode::UserInitiated, "stop", 2.0));
    s.put_task(&next, Some(placed.version)).await.unwrap();
    announced(&mut w, RecordKind::Task, arn, Some(2));
    assert!(s.put_task(&next, Some(placed.version)).await.is_err(), "stale");
    assert!(s.place_task(&placed.value, "n1", &fits(256, 512)).await.is_err(), "exists");
    quiet(&mut w, RecordKind::Task, "a write that failed is not announced");

    // Services.
    let svc = service("arn:aws:ecs:us-east-1:111122223333:service/a/web", cluster_arn, ServiceStatus::Active);
    s.put_service(&svc, None).await.unwrap();
    announced(&mut w, RecordKind::Service, &svc.arn.to_string(), Some(1));
    assert!(s.put_service(&svc, None).await.is_err());
    quiet(&mut w, RecordKind::Service, "a write that failed is not announced");

    // Subnets and security groups, deletes as `None`.
    s.put_subnet(&subnet_record("subnet-a", "10.89.0.0/16"), None).await.unwrap();
    announced(&mut w, RecordKind::Subnet, "subnet-a", Some(1));
    s.put_subnet(&subnet_record("subnet-a", "10.89.0.0/16"), Some(1)).await.unwrap();
    announced(&mut w, RecordKind::Subnet, "subnet-a", Some(2));
    assert!(s.claim_ip("subnet-a", "10.89.0.2", "arn:t1").await.unwrap());
    assert!(s.delete_subnet("subnet-a").await.is_err(), "an address is held");
    quiet(&mut w, RecordKind::Subnet, "a refused delete, or a claim, is no write of the subnet");
    s.release_ips("arn:t1").await.unwrap();
    assert!(s.delete_subnet("subnet-a").await.unwrap());
    announced(&mut w, RecordKind::Subnet, "subnet-a", None);
    assert!(!s.delete_subnet("subnet-a").await.unwrap());
    quiet(&mut w, RecordKind::Subnet, "deleting nothing announces nothing");

    let group = berth_model::network::SecurityGroupRecord {
        id: "sg-web".into(),
        name: "web".into(),
        description: String::new(),
        ingress: Vec::new(),
        created_at: 1.0,
        egress: berth_model::network::allow_all_egress(),
        tags: Default::default(),
    };
    s.put_security_group(&group, None).await.unwrap();
    announced(&mut w, RecordKind::SecurityGroup, "sg-web", Some(1));
    assert!(s.put_security_group(&group, Some(7)).await.is_err());
    assert!(s.delete_security_group("sg-web").await.unwrap());
    announced(&mut w, RecordKind::SecurityGroup, "sg-web", None);

    // Every kind heard only its own writes.
    for kind in RecordKind::ALL {
        quiet(&mut w, kind, "nothing left over");
    }
}

async fn a_published_port_goes_to_one_task_at_a_time(db: Backend) {
    let s = db.store.clone();
    let addr: std::net::Ipv4Addr = "192.0.2.10".parse().unwrap();
    let tcp = move |port| PortClaim { address: addr, protocol: PortProtocol::Tcp, port };
    assert!(s.claim_port(tcp(8080), "arn:t1").await.unwrap());
    assert!(s.claim_port(tcp(8080), "arn:t1").await.unwrap(), "claiming again is fine");
    assert!(!s.claim_port(tcp(8080), "arn:t2").await.unwrap(), "never two holders");
    let udp = PortClaim { protocol: PortProtocol::Udp, ..tcp(8080) };
    assert!(s.claim_port(udp, "arn:t2").await.unwrap(), "the other protocol is another port");
    let other = PortClaim { address: "192.0.2.11".parse().unwrap(), ..tcp(8080) };
    assert!(s.claim_port(other, "arn:t2").await.unwrap(), "so is another address");

    // Many tasks racing for the same few ports: each port has one holder.
    let mut handles = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for port in 9000..9005 {
                if s.claim_port(tcp(port), &format!("arn:r{t}")).await.unwrap() {
                    won.push(port);
                }
            }
            won
        }));
    }
    let mut won: Vec<u16> = Vec::new();
    for h in handles {
        won.extend(h.await.unwrap());
    }
    won.sort();
    assert_eq!(won, [9000, 9001, 9002, 9003, 9004], "each port went to exactly one task");

    assert_eq!(s.task_ports("arn:t1").await.unwrap(), [tcp(8080)]);
    assert_eq!(s.task_ports("arn:t2").await.unwrap(), [udp, other]);
    assert_eq!(s.release_ports("arn:t1").await.unwrap(), 1);
    assert!(s.task_ports("arn:t1").await.unwrap().is_empty());
    assert!(s.claim_port(tcp(8080), "arn:t2").await.unwrap(), "freed at release");
    assert_eq!(s.release_ports("arn:t1").await.unwrap(), 0);
    // Ports are not addresses: releasing a task's addresses keeps its ports.
    assert_eq!(s.release_ips("arn:t2").await.unwrap(), 0);
    assert_eq!(s.task_ports("arn:t2").await.unwrap().len(), 3);
}

async fn many_tasks_are_read_at_once(db: Backend) {
    let s = db.store.as_ref();
    s.upsert_node(&node("n1", 1 << 20, 1 << 20)).await.unwrap();
    let cluster = "arn:aws:ecs:us-east-1:111122223333:cluster/a";
    let arn = |i: usize| format!("arn:aws:ecs:us-east-1:111122223333:task/a/m{i}");
    for i in 0..120 {
        s.place_task(&sized(task(&arn(i), cluster, TaskStatus::Running), 1, 1), "n1", &fits(1, 1)).await.unwrap();
    }
    let mut asked: Vec<String> = (0..100).map(|i| arn(i * 7 % 120)).collect();
    asked.push(arn(999));
    let got = s.get_tasks(&asked).await.unwrap();
    let mut want: Vec<String> = asked[..100].to_vec();
    want.sort();
    want.dedup();
    let mut have: Vec<String> = got.iter().map(|v| v.value.arn.to_string()).collect();
    have.sort();
    assert_eq!(have, want, "every existing task once; the missing one is absent");
    assert!(s.get_tasks(&[]).await.unwrap().is_empty());
}

// --- stored formats ---

/// A connection of our own to the backend's database, for writing rows as
/// another release of Berth would have (the store has no API for that, on
/// purpose).
async fn raw_pool(db: &Backend) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&db.url).await.expect("raw connection")
}

/// Inserts a task row with plain SQL: its columns as every release wrote
/// them, and `body` as given.
async fn insert_raw_task(pool: &sqlx::AnyPool, arn: &str, cluster_arn: &str, version: i64, body: &str) {
    sqlx::query(
        "INSERT INTO tasks (task_arn, cluster_arn, last_status, desired_status, family, started_by, task_group, \
         launch_type, node_id, cpu, memory, version, body) \
         VALUES ($1, $2, 'RUNNING', 'RUNNING', 'web', NULL, 'family:web', 'FARGATE', 'node-1', 256, 512, $3, $4)",
    )
    .bind(arn)
    .bind(cluster_arn)
    .bind(version)
    .bind(body)
    .execute(pool)
    .await
    .expect("insert raw task row");
}

/// A row the release before the typed domain wrote (format 0: the wire
/// `Task` under `task`, placement beside it; captured from a real `berth
/// up`) is read as a typed task, and written back in the current format.
async fn task_rows_of_format_0_are_read_as_typed_tasks(db: Backend) {
    let s = db.store.as_ref();
    let body = include_str!("../../berth-model/tests/fixtures/task-v0-running.json");
    assert!(!body.contains("formatVersion"), "the fixture is of format 0");
    let arn = "arn:aws:ecs:us-east-1:000000000000:task/default/919a812d74f6496399c8ff336e6c90bb";
    let cluster = "arn:aws:ecs:us-east-1:000000000000:cluster/default";
    let pool = raw_pool(&db).await;
    insert_raw_task(&pool, arn, cluster, 4, body).await;

    let got = s.get_task(arn).await.expect("get").expect("the row is found");
    assert_eq!(got.version, 4, "ECS's task version is the row's");
    let t = &got.value;
    assert_eq!(t.arn.to_string(), arn);
    assert_eq!((t.status(), t.desired()), (TaskStatus::Running, DesiredStatus::Running));
    assert_eq!((t.definition_arn.family.as_str(), t.definition_arn.revision), ("web", 1));
    assert_eq!(t.size, berth_model::task::TaskSize { cpu: 256, memory: 512 });
    assert_eq!(t.node_id.as_deref(), Some("node-eebcf50d7aaf075f"));
    assert_eq!(t.ip(), Some(std::net::Ipv4Addr::new(10, 206, 186, 2)));
    assert_eq!(t.containers.len(), 1);
    assert_eq!(t.containers[0].status(), berth_model::lifecycle::ContainerStatus::Running);

    let listed = s
        .list_tasks(&TaskFilter { cluster_arn: Some(cluster.into()), ..Default::default() }, Page { after: None, limit: 10 })
        .await
        .expect("list");
    assert_eq!(listed, std::slice::from_ref(&got), "listing reads the row the same way");
    let on_node = TaskFilter { node_id: Some("node-1".into()), live_only: true, ..Default::default() };
    assert_eq!(s.list_tasks(&on_node, Page { after: None, limit: 10 }).await.expect("list").len(), 1);

    // The next write rewrites the row in the current format.
    let written = s.put_task(&got.value, Some(got.version)).await.expect("write back");
    assert_eq!(written.version, 5);
    let stored: String = sqlx::query_scalar("SELECT body FROM tasks WHERE task_arn = $1")
        .bind(arn)
        .fetch_one(&pool)
        .await
        .expect("read raw body");
    let json: serde_json::Value = serde_json::from_str(&stored).expect("JSON body");
    assert_eq!(json["formatVersion"], u64::from(berth_model::task::stored::FORMAT_VERSION), "{stored}");
    assert_eq!(s.get_task(arn).await.expect("get"), Some(written));
}

/// A row a newer Berth wrote is refused with a format error (telling the
/// operator to upgrade), not misread and not a panic.
async fn task_rows_of_a_newer_format_are_refused(db: Backend) {
    let s = db.store.as_ref();
    let arn = "arn:aws:ecs:eu-central-1:111122223333:task/a/future";
    let cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/a";
    // Current members, so that a reader ignoring the version would succeed.
    let mut body = serde_json::to_value(task(arn, cluster, TaskStatus::Running)).expect("task as JSON");
    body["formatVersion"] = 99.into();
    let pool = raw_pool(&db).await;
    insert_raw_task(&pool, arn, cluster, 1, &body.to_string()).await;

    let refused = s.get_task(arn).await;
    assert!(matches!(refused, Err(StoreError::FormatTooNew { found: 99, .. })), "{refused:?}");
    let listed = s.list_tasks(&TaskFilter { cluster_arn: Some(cluster.into()), ..Default::default() }, Page { after: None, limit: 10 }).await;
    assert!(matches!(listed, Err(StoreError::FormatTooNew { found: 99, .. })), "{listed:?}");
    let many = s.get_tasks(&[arn.to_owned()]).await;
    assert!(matches!(many, Err(StoreError::FormatTooNew { found: 99, .. })), "{many:?}");
}

async fn a_burst_of_claims_takes_distinct_free_addresses(db: Backend) {
    let s = db.store.clone();
    s.put_subnet(&subnet_record("subnet-a", "10.89.0.0/28"), None).await.unwrap();
    // The lowest of .2 to .14 not held: what the agent's allocator picks.
    fn lowest(held: &std::collections::BTreeSet<String>) -> Option<String> {
        (2..15).map(|i| format!("10.89.0.{i}")).find(|ip| !held.contains(ip))
    }
    let mut handles = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        handles.push(tokio::spawn(async move { s.claim_free_ip("subnet-a", &format!("arn:b{t}"), &lowest).await.unwrap() }));
    }
    let mut got = Vec::new();
    for h in handles {
        got.push(h.await.unwrap());
    }
    let taken: Vec<String> = got.iter().flatten().cloned().collect();
    let mut unique = taken.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(taken.len(), 13, "13 addresses for 16 tasks: {got:?}");
    assert_eq!(unique.len(), 13, "no address twice: {got:?}");
    assert_eq!(got.iter().filter(|g| g.is_none()).count(), 3, "the rest find none free");
    // A task that holds one gets it back; an unknown subnet is NotFound.
    let again = s.claim_free_ip("subnet-a", "arn:b0", &lowest).await.unwrap();
    assert_eq!(again.as_ref(), got[0].as_ref());
    assert!(matches!(s.claim_free_ip("subnet-nope", "arn:x", &lowest).await, Err(StoreError::NotFound(_))));
}

// --- load balancing (ELBv2) and certificates ---

mod elb_fixtures {
    use std::collections::BTreeMap;

    use berth_model::elb::*;

    pub const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/web/0123456789abcdef";

    pub fn lb(arn: &str, name: &str) -> LoadBalancer {
        LoadBalancer {
            arn: arn.into(),
            name: name.into(),
            id: "0123456789abcdef".into(),
            lb_type: LbType::Application,
            scheme: Scheme::Internal,
            state: LbState::Provisioning,
            dns_name: dns_name(name, "0123456789abcdef", "us-east-1", LbType::Application, Scheme::Internal),
            vpc_id: "vpc-default".into(),
            created_at: 1.0,
            nodes: vec![LbNode { subnet_id: "subnet-a".into(), zone: "us-east-1a".into(), address: "10.89.0.9".parse().unwrap() }],
            security_groups: vec!["sg-default".into()],
            attributes: load_balancer_defaults(LbType::Application),
            tags: BTreeMap::new(),
        }
    }

    pub fn tg(name: &str) -> TargetGroup {
        TargetGroup {
            arn: format!("arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/{name}/00000000000000aa"),
            name: name.into(),
            id: "00000000000000aa".into(),
            protocol: Protocol::Http,
            port: 80,
            vpc_id: "vpc-default".into(),
            protocol_version: Some("HTTP1".into()),
            health_check: HealthCheck::defaults(Protocol::Http),
            attributes: target_group_defaults(Protocol::Http),
            created_at: 1.0,
            tags: BTreeMap::new(),
        }
    }

    pub fn listener(id: &str, port: u16) -> Listener {
        Listener {
            arn: listener_arn(LB, id),
            load_balancer_arn: LB.into(),
            protocol: Protocol::Http,
            port,
            certificates: vec![],
            ssl_policy: None,
            default_actions: vec![Action::FixedResponse { status_code: "404".into(), content_type: None, message_body: None, order: None }],
            attributes: listener_defaults(Protocol::Http),
            tags: BTreeMap::new(),
        }
    }

    pub fn rule(listener: &str, id: &str, priority: Option<u32>) -> Rule {
        Rule {
            arn: rule_arn(listener, id),
            listener_arn: listener.into(),
            priority,
            conditions: vec![Condition::PathPattern { values: vec![format!("/{id}/*")] }],
            actions: vec![],
            tags: BTreeMap::new(),
        }
    }
}

async fn lbs_listeners_rules_unique_names_ports_priorities(db: Backend) {
    use elb_fixtures::*;
    let s = db.store.as_ref();
    let mut lbs = s.watch(RecordKind::LoadBalancer);
    let a = s.put_load_balancer(&lb(LB, "web"), None).await.unwrap();
    assert_eq!(a.version, 1);
    assert_eq!(lbs.try_recv().unwrap(), Notice { kind: RecordKind::LoadBalancer, key: LB.into(), version: Some(1) });
    let other_arn = LB.replace("0123456789abcdef", "fedcba9876543210");
    assert!(matches!(s.put_load_balancer(&lb(&other_arn, "web"), None).await, Err(StoreError::Conflict)), "names are unique");
    let mut active = a.value.clone();
    active.state = berth_model::elb::LbState::Active;
    s.put_load_balancer(&active, Some(1)).await.unwrap();
    assert!(matches!(s.put_load_balancer(&active, Some(1)).await, Err(StoreError::Conflict)), "stale");
    s.put_load_balancer(&lb(&other_arn, "api"), None).await.unwrap();
    let names: Vec<String> = s.list_load_balancers().await.unwrap().into_iter().map(|v| v.value.name).collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(s.get_load_balancer(LB).await.unwrap().unwrap().value.state, berth_model::elb::LbState::Active);

    // Listeners: one per port of a load balancer.
    let l80 = s.put_listener(&listener("l80", 80), None).await.unwrap().value;
    assert!(matches!(s.put_listener(&listener("dup", 80), None).await, Err(StoreError::Conflict)));
    s.put_listener(&listener("l8080", 8080), None).await.unwrap();
    let ports: Vec<u16> = s.list_listeners(Some(LB)).await.unwrap().into_iter().map(|v| v.value.port).collect();
    assert_eq!(ports, [80, 8080]);
    assert!(s.list_listeners(Some(&other_arn)).await.unwrap().is_empty());

    // Rules: one per priority of a listener, the default rule last;
    // priorities swap in one write.
    s.put_rule(&rule(&l80.arn, "default", None), None).await.unwrap();
    let r1 = s.put_rule(&rule(&l80.arn, "r1", Some(1)), None).await.unwrap();
    let r2 = s.put_rule(&rule(&l80.arn, "r2", Some(2)), None).await.unwrap();
    assert!(matches!(s.put_rule(&rule(&l80.arn, "r3", Some(2)), None).await, Err(StoreError::Conflict)));
    let order = |rules: Vec<Versioned<berth_model::elb::Rule>>| -> Vec<Option<u32>> { rules.into_iter().map(|r| r.value.priority).collect() };
    assert_eq!(order(s.list_rules(Some(&l80.arn)).await.unwrap()), [Some(1), Some(2), None]);
    let mut swap1 = r1.clone();
    swap1.value.priority = Some(2);
    let mut swap2 = r2.clone();
    swap2.value.priority = Some(1);
    let written = s.update_rules(&[swap1.clone(), swap2]).await.unwrap();
    assert_eq!(written[0].version, 2);
    assert_eq!(s.get_rule(&r1.value.arn).await.unwrap().unwrap().value.priority, Some(2));
    assert!(matches!(s.update_rules(&[swap1]).await, Err(StoreError::Conflict)), "stale versions change nothing");
    assert_eq!(s.get_rule(&r1.value.arn).await.unwrap().unwrap().value.priority, Some(2));
    assert!(s.delete_rule(&r1.value.arn).await.unwrap());
    assert!(!s.delete_rule(&r1.value.arn).await.unwrap());

    // Deleting the load balancer takes its listeners, their rules and its addresses.
    s.put_subnet(&subnet_record("subnet-a", "10.89.0.0/16"), None).await.unwrap();
    assert!(s.claim_ip("subnet-a", "10.89.0.9", LB).await.unwrap());
    assert!(s.delete_load_balancer(LB).await.unwrap());
    assert!(s.get_load_balancer(LB).await.unwrap().is_none());
    assert!(s.list_listeners(Some(LB)).await.unwrap().is_empty());
    assert!(s.list_rules(Some(&l80.arn)).await.unwrap().is_empty());
    assert!(s.task_ips(LB).await.unwrap().is_empty(), "the node's address is free again");
    assert!(!s.delete_load_balancer(LB).await.unwrap());

    // Target groups: names unique.
    let t = s.put_target_group(&tg("web"), None).await.unwrap();
    let mut same_name = tg("web");
    same_name.arn.push('x');
    assert!(matches!(s.put_target_group(&same_name, None).await, Err(StoreError::Conflict)));
    assert_eq!(s.list_target_groups().await.unwrap().len(), 1);
    assert!(s.delete_target_group(&t.value.arn).await.unwrap());
    assert!(s.get_target_group(&t.value.arn).await.unwrap().is_none());
}

async fn targets_register_drain_and_carry_the_data_planes_health(db: Backend) {
    use berth_model::elb::{HealthReason, HealthState, RegisteredTarget, TargetHealthRecord};
    let s = db.store.as_ref();
    let tg = elb_fixtures::tg("web");
    s.put_target_group(&tg, None).await.unwrap();
    let mut heard = s.watch(RecordKind::Targets);
    let target = |ip: &str, port: u16| RegisteredTarget {
        target_group_arn: tg.arn.clone(),
        id: ip.parse().unwrap(),
        port,
        zone: "us-east-1a".into(),
        registered_at: 10.0,
        draining_until: None,
    };
    s.register_targets(&[target("10.89.0.3", 80), target("10.89.0.2", 80), target("10.89.0.2", 8080)]).await.unwrap();
    assert_eq!(heard.try_recv().unwrap().key, tg.arn);
    let listed = s.list_targets(&tg.arn).await.unwrap();
    let keys: Vec<(String, u16)> = listed.iter().map(|t| (t.id.to_string(), t.port)).collect();
    assert_eq!(keys, [("10.89.0.2".into(), 80), ("10.89.0.2".into(), 8080), ("10.89.0.3".into(), 80)]);

    // The data plane's health, replaced by its next write.
    let mut h = TargetHealthRecord {
        target_group_arn: tg.arn.clone(),
        id: "10.89.0.2".parse().unwrap(),
        port: 80,
        state: HealthState::Unhealthy,
        reason: Some(HealthReason::ResponseCodeMismatch),
        description: Some("Health checks failed with these codes: [500]".into()),
        updated_at: 20.5,
    };
    s.put_target_health(&h).await.unwrap();
    h.state = HealthState::Healthy;
    h.reason = None;
    h.description = None;
    s.put_target_health(&h).await.unwrap();
    assert_eq!(s.list_target_health(&tg.arn).await.unwrap(), vec![h.clone()]);

    // Draining: a deadline, kept when deregistered again; gone after it.
    assert_eq!(s.deregister_targets(&tg.arn, &[("10.89.0.2".parse().unwrap(), 80)], 100.0).await.unwrap(), 1);
    assert_eq!(s.deregister_targets(&tg.arn, &[("10.89.0.2".parse().unwrap(), 80)], 500.0).await.unwrap(), 0);
    let draining = s.list_targets(&tg.arn).await.unwrap();
    assert_eq!(draining[0].draining_until, Some(100.0));
    assert_eq!(s.remove_drained_targets(99.0).await.unwrap(), 0);
    assert_eq!(s.remove_drained_targets(100.0).await.unwrap(), 1);
    assert_eq!(s.list_targets(&tg.arn).await.unwrap().len(), 2);
    assert!(s.list_target_health(&tg.arn).await.unwrap().is_empty(), "its health went with it");

    // Registering a draining target again ends its draining.
    s.deregister_targets(&tg.arn, &[("10.89.0.3".parse().unwrap(), 80)], 900.0).await.unwrap();
    s.register_targets(&[RegisteredTarget { registered_at: 30.0, ..target("10.89.0.3", 80) }]).await.unwrap();
    let again = s.list_targets(&tg.arn).await.unwrap();
    let t3 = again.iter().find(|t| t.id.to_string() == "10.89.0.3").unwrap();
    assert_eq!((t3.draining_until, t3.registered_at), (None, 30.0));

    // Deleting the group takes its targets.
    s.delete_target_group(&tg.arn).await.unwrap();
    assert!(s.list_targets(&tg.arn).await.unwrap().is_empty());
}

async fn certificates_keep_their_key_apart(db: Backend) {
    use berth_model::elb::CertificateRecord;
    use berth_store::PrivateKeyPem;
    let s = db.store.as_ref();
    let mut cert = CertificateRecord {
        arn: "arn:aws:acm:us-east-1:111122223333:certificate/4f0e7c51-58b7-4b5c-a1a0-000000000001".into(),
        domain_name: "web.example".into(),
        subject_alternative_names: vec!["web.example".into()],
        subject: "CN=web.example".into(),
        issuer: "CN=web.example".into(),
        serial: "01".into(),
        key_algorithm: "EC_prime256v1".into(),
        signature_algorithm: "SHA256WITHECDSA".into(),
        not_before: 1.0,
        not_after: 2.0,
        imported_at: 1.5,
        certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
        chain_pem: None,
        tags: Default::default(),
    };
    let key = PrivateKeyPem("-----BEGIN PRIVATE KEY-----secret".into());
    assert_eq!(format!("{key:?}"), "PrivateKeyPem(<redacted>)");
    s.put_certificate(&cert, &key, None).await.unwrap();
    assert!(matches!(s.put_certificate(&cert, &key, None).await, Err(StoreError::Conflict)));
    let stored = s.get_certificate(&cert.arn).await.unwrap().unwrap();
    assert_eq!(stored.value, cert);
    assert_eq!(s.certificate_key(&cert.arn).await.unwrap(), Some(key.clone()));
    cert.tags.insert("team".into(), "web".into());
    s.update_certificate(&cert, 1).await.unwrap();
    assert_eq!(s.certificate_key(&cert.arn).await.unwrap(), Some(key), "an update keeps the key");
    let reimported = PrivateKeyPem("-----BEGIN PRIVATE KEY-----other".into());
    s.put_certificate(&cert, &reimported, Some(2)).await.unwrap();
    assert_eq!(s.certificate_key(&cert.arn).await.unwrap(), Some(reimported));
    assert_eq!(s.list_certificates().await.unwrap().len(), 1);
    assert!(s.delete_certificate(&cert.arn).await.unwrap());
    assert!(s.certificate_key(&cert.arn).await.unwrap().is_none());
}

async fn a_client_token_goes_to_one_request_and_expires(db: Backend) {
    use berth_store::{TokenClaim, TokenHolder};
    let s = db.store.clone();
    let claim = |token: &'static str, digest: &'static str, now: i64| TokenClaim {
        cluster_arn: "arn:c/default",
        token,
        digest,
        now,
        ttl_secs: 86_400,
        pending_secs: 60,
    };
    assert_eq!(s.claim_client_token(&claim("t1", "d1", 1000)).await.unwrap(), TokenHolder::Claimed);
    let pending = TokenHolder::Taken { same_request: true, task_arns: None };
    assert_eq!(s.claim_client_token(&claim("t1", "d1", 1001)).await.unwrap(), pending, "still placing");
    let arns = vec!["arn:t/a".to_string(), "arn:t/b".to_string()];
    s.settle_client_token("arn:c/default", "t1", Some(&arns)).await.unwrap();
    assert_eq!(
        s.claim_client_token(&claim("t1", "d1", 2000)).await.unwrap(),
        TokenHolder::Taken { same_request: true, task_arns: Some(arns.clone()) }
    );
    assert_eq!(
        s.claim_client_token(&claim("t1", "other", 2000)).await.unwrap(),
        TokenHolder::Taken { same_request: false, task_arns: Some(arns.clone()) }
    );
    // Another cluster's token of the same name is another token.
    let elsewhere = TokenClaim { cluster_arn: "arn:c/batch", ..claim("t1", "d1", 2000) };
    assert_eq!(s.claim_client_token(&elsewhere).await.unwrap(), TokenHolder::Claimed);
    // After 24 hours it is free again.
    assert_eq!(s.claim_client_token(&claim("t1", "d9", 1000 + 86_401)).await.unwrap(), TokenHolder::Claimed);

    // A failed request releases its claim; an abandoned one lapses.
    assert_eq!(s.claim_client_token(&claim("t2", "d", 1000)).await.unwrap(), TokenHolder::Claimed);
    s.settle_client_token("arn:c/default", "t2", None).await.unwrap();
    assert_eq!(s.claim_client_token(&claim("t2", "d", 1001)).await.unwrap(), TokenHolder::Claimed);
    assert_eq!(s.claim_client_token(&claim("t2", "d", 1030)).await.unwrap(), pending);
    assert_eq!(s.claim_client_token(&claim("t2", "d", 1062)).await.unwrap(), TokenHolder::Claimed);

    // Racing requests with one token: exactly one claims it.
    let mut handles = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        handles.push(tokio::spawn(async move { s.claim_client_token(&claim("race", "d", 5000)).await.unwrap() }));
    }
    let mut claimed = 0;
    for h in handles {
        if h.await.unwrap() == TokenHolder::Claimed {
            claimed += 1;
        }
    }
    assert_eq!(claimed, 1);
}
