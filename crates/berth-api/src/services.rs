//! The service controller's store side: `berth_control::service` runs
//! the rules; this is its [`ServiceTarget`] over the store (tasks built
//! from the deployment's task definition and placed through RunTask's
//! applier), and the triggers that wake it: notices of services and of
//! their tasks, and a resync of every live service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_control::placement;
use berth_control::runner::{every, from_notices};
use berth_control::service::{self as control, Launched, RESYNC, ServiceTarget, TargetState, Targets, Written};
use berth_model::arn::ServiceArn;
use berth_model::discovery::{ATTR_IPV4, ATTR_PORT, Instance, OperationType};
use berth_model::elb::{self, HealthState, RegisteredTarget};
use berth_model::capacity;
use berth_model::service::{CapacityProviderItem, PropagateTags, Registration, Service, ServiceStatus, deployment_id};
use berth_model::task::{self as model_task, NewTask, StopCode, Tag, Task};
use berth_store::{Page, RecordKind, Store, StoreError, TaskFilter};
use futures_util::{Stream, StreamExt, stream};

use crate::ecs::{convert, now_epoch, tasks::StoreTarget};

/// How many times a stop is retried against concurrent writes.
const STOP_ATTEMPTS: usize = 8;

/// Runs the service controller over `store` until `shutdown` resolves.
pub async fn run_services(store: Arc<dyn Store>, shutdown: impl Future<Output = ()> + Send) {
    let target = Arc::new(StoreServices { store: store.clone(), owners: Arc::default(), groups: Arc::default() });
    let triggers = triggers(store, target.owners.clone(), target.groups.clone());
    control::run(target, triggers, shutdown).await;
}

/// Which service each task the controller has seen belongs to, so a
/// task's notice wakes its service without a read.
type Owners = Arc<Mutex<HashMap<String, ServiceArn>>>;

/// Which services register targets in each target group, so a change of
/// a group's targets or their health wakes them.
type Groups = Arc<Mutex<HashMap<String, Vec<ServiceArn>>>>;

/// Service notices, task notices of known service tasks, and every live
/// service each [`RESYNC`] (and when notices were lost).
fn triggers(store: Arc<dyn Store>, owners: Owners, groups: Groups) -> impl Stream<Item = ServiceArn> + Send + 'static {
    let lister = {
        let store = store.clone();
        move || {
            let store = store.clone();
            async move { live_services(store.as_ref()).await }
        }
    };
    let services = from_notices(store.watch(RecordKind::Service), |n| n.key.parse::<ServiceArn>().ok(), lister.clone());
    let tasks = from_notices(
        store.watch(RecordKind::Task),
        move |n| owners.lock().expect("owners lock").get(&n.key).cloned(),
        lister.clone(),
    );
    let of_group = move |key: &str| groups.lock().expect("groups lock").get(key).cloned().unwrap_or_default();
    let of_health = of_group.clone();
    let targets = from_notices(store.watch(RecordKind::Targets), move |n| Some(of_group(&n.key)), || async { Vec::new() })
        .flat_map(stream::iter);
    let health = from_notices(store.watch(RecordKind::TargetHealth), move |n| Some(of_health(&n.key)), || async { Vec::new() })
        .flat_map(stream::iter);
    let resync = every(RESYNC, lister);
    stream::select(stream::select(stream::select(services, tasks), stream::select(targets, health)), resync)
}

async fn live_services(store: &dyn Store) -> Vec<ServiceArn> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = Page { after: after.clone(), limit: 500 };
        let rows = match store.list_services(None, &[ServiceStatus::Active, ServiceStatus::Draining], page).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "listing services for a resync failed");
                return out;
            }
        };
        let done = rows.len() < 500;
        after = rows.last().map(|r| r.value.arn.to_string());
        out.extend(rows.into_iter().map(|r| r.value.arn));
        if done {
            return out;
        }
    }
}

struct StoreServices {
    store: Arc<dyn Store>,
    owners: Owners,
    groups: Groups,
}

impl StoreServices {
    fn own(&self, service: &Service, task_arns: impl IntoIterator<Item = String>) {
        let mut owners = self.owners.lock().expect("owners lock");
        for arn in task_arns {
            owners.insert(arn, service.arn.clone());
        }
    }

    /// The tags a new task of `service` carries.
    async fn task_tags(&self, service: &Service, definition_tags: &[berth_wire::ecs::Tag]) -> Vec<Tag> {
        let mut tags = match service.propagate_tags {
            PropagateTags::Service => service.tags.clone(),
            PropagateTags::TaskDefinition => convert::tags_from_wire(definition_tags),
            PropagateTags::None => vec![],
        };
        if service.enable_ecs_managed_tags {
            for (key, value) in [("aws:ecs:clusterName", service.arn.cluster.as_str()), ("aws:ecs:serviceName", service.name())] {
                tags.retain(|t| t.key != key);
                tags.push(Tag { key: key.into(), value: value.into() });
            }
        }
        tags
    }
}

/// Whether a registration is a Cloud Map service's (not a target group's).
fn is_registry(arn: &str) -> bool {
    arn.contains(":servicediscovery:")
}

/// The Cloud Map service id (`srv-…`) of a registry ARN.
fn registry_id(arn: &str) -> &str {
    arn.rsplit_once(":service/").map_or(arn, |(_, id)| id)
}

impl StoreServices {
    /// Registers a task in a Cloud Map service as ECS does: the task id as
    /// the instance id, its address (and port for SRV), and ECS's
    /// attributes; a registry that is gone is skipped with a warning.
    async fn register_instance(&self, service: &Service, r: &Registration, task: Option<&Task>, zone: &str) -> Result<(), StoreError> {
        let id = registry_id(&r.target_group_arn);
        let Some(registry) = self.store.get_discovery_service(id).await? else {
            tracing::warn!(service = %service.arn, registry = %r.target_group_arn, "the service's registry is gone");
            return Ok(());
        };
        let mut attributes = std::collections::BTreeMap::from([
            (ATTR_IPV4.to_owned(), r.ip.to_string()),
            ("ECS_CLUSTER_NAME".to_owned(), service.arn.cluster.clone()),
            ("ECS_SERVICE_NAME".to_owned(), service.name().to_owned()),
            ("AVAILABILITY_ZONE".to_owned(), zone.to_owned()),
            ("REGION".to_owned(), service.arn.account.region.clone()),
        ]);
        if r.port != 0 {
            attributes.insert(ATTR_PORT.to_owned(), r.port.to_string());
        }
        if let Some(t) = task {
            attributes.insert("ECS_TASK_DEFINITION_FAMILY".to_owned(), t.definition_arn.family.clone());
        }
        let health = berth_model::discovery::check_instance(&registry.value, &r.task_id, &attributes)
            .unwrap_or(berth_model::discovery::Health::Healthy);
        let op = crate::servicediscovery::operation(
            OperationType::RegisterInstance,
            &[("NAMESPACE", &registry.value.namespace_id), ("SERVICE", id), ("INSTANCE", &r.task_id)],
        );
        let instance = Instance {
            service_id: id.to_owned(),
            id: r.task_id.clone(),
            attributes,
            health,
            creator_request_id: None,
            registered_at: op.created_at,
        };
        self.store.put_instance(&instance, Some(&op)).await?;
        Ok(())
    }
}

impl ServiceTarget for StoreServices {
    type Error = StoreError;

    fn now(&self) -> f64 {
        now_epoch()
    }

    fn fresh(&self) -> u64 {
        uuid::Uuid::new_v4().as_u128() as u64
    }

    async fn service(&self, arn: &ServiceArn) -> Result<Option<(Service, i64)>, StoreError> {
        Ok(self.store.get_service(&arn.to_string()).await?.map(|v| (v.value, v.version)))
    }

    async fn tasks(&self, service: &Service) -> Result<Vec<Task>, StoreError> {
        let filter = TaskFilter {
            cluster_arn: Some(service.cluster_arn().to_string()),
            group: Some(service.task_group()),
            live_only: true,
            ..TaskFilter::default()
        };
        let mut found: Vec<Task> = Vec::new();
        let mut after = None;
        loop {
            let rows = self.store.list_tasks(&filter, Page { after: after.clone(), limit: 500 }).await?;
            let done = rows.len() < 500;
            after = rows.last().map(|r| r.value.arn.to_string());
            found.extend(rows.into_iter().map(|r| r.value));
            if done {
                break;
            }
        }
        // Tasks counted in flight that are no longer live: how they ended.
        let missing: Vec<String> = service
            .deployments
            .iter()
            .flat_map(|d| d.in_flight.iter())
            .map(|id| service.arn.account.task(&service.arn.cluster, id).to_string())
            .filter(|arn| !found.iter().any(|t| t.arn.to_string() == *arn))
            .collect();
        if !missing.is_empty() {
            found.extend(self.store.get_tasks(&missing).await?.into_iter().map(|r| r.value));
        }
        self.own(service, found.iter().map(|t| t.arn.to_string()));
        Ok(found)
    }

    async fn targets(&self, service: &Service) -> Result<Targets, StoreError> {
        let mut out = Targets::default();
        // Cloud Map entries: present (healthy) while the instance exists.
        for arn in service.service_registries.iter().filter_map(|r| r.registry_arn.as_deref()) {
            for i in self.store.list_instances(registry_id(arn)).await? {
                let (Some(ip), port) = (i.value.ipv4(), i.value.port().unwrap_or(0)) else { continue };
                let key = Registration { task_id: String::new(), target_group_arn: arn.to_owned(), ip, port };
                out.set(&key, TargetState::Healthy);
            }
        }
        let groups: Vec<&str> = service.load_balancers.iter().filter_map(|lb| lb.target_group_arn.as_deref()).collect();
        if groups.is_empty() {
            return Ok(out);
        }
        {
            let mut known = self.groups.lock().expect("groups lock");
            for g in &groups {
                let services = known.entry((*g).to_owned()).or_default();
                if !services.contains(&service.arn) {
                    services.push(service.arn.clone());
                }
            }
        }
        let used = crate::elbv2::target_groups::group_users(self.store.as_ref()).await?;
        for group in groups {
            let health = self.store.list_target_health(group).await?;
            for t in self.store.list_targets(group).await? {
                let record = health.iter().find(|h| h.id == t.id && h.port == t.port);
                let (state, _, _) = elb::effective_health(&t, record, used.contains_key(group));
                let state = match state {
                    HealthState::Initial => TargetState::Initial,
                    HealthState::Healthy => TargetState::Healthy,
                    HealthState::Unused => TargetState::Unused,
                    HealthState::Draining | HealthState::UnhealthyDraining => {
                        TargetState::Draining { until: t.draining_until }
                    }
                    HealthState::Unhealthy | HealthState::Unavailable => TargetState::Unhealthy,
                };
                let key = Registration { task_id: String::new(), target_group_arn: t.target_group_arn, ip: t.id, port: t.port };
                out.set(&key, state);
            }
        }
        Ok(out)
    }

    async fn register(&self, service: &Service, targets: &[Registration]) -> Result<(), StoreError> {
        let now = now_epoch();
        let mut rows = Vec::new();
        for r in targets {
            let arn = service.arn.account.task(&service.arn.cluster, &r.task_id).to_string();
            let task = self.store.get_task(&arn).await?.map(|t| t.value);
            let zone = task.as_ref().and_then(|t| t.availability_zone.clone()).unwrap_or_default();
            if is_registry(&r.target_group_arn) {
                self.register_instance(service, r, task.as_ref(), &zone).await?;
                continue;
            }
            rows.push(RegisteredTarget {
                target_group_arn: r.target_group_arn.clone(),
                id: r.ip,
                port: r.port,
                zone,
                registered_at: now,
                draining_until: None,
            });
        }
        if !rows.is_empty() {
            self.store.register_targets(&rows).await?;
        }
        tracing::info!(service = %service.arn, targets = rows.len(), "service registered targets");
        Ok(())
    }

    async fn deregister(&self, service: &Service, targets: &[Registration]) -> Result<(), StoreError> {
        let now = now_epoch();
        let mut by_group: HashMap<&str, Vec<(std::net::Ipv4Addr, u16)>> = HashMap::new();
        for r in targets {
            if is_registry(&r.target_group_arn) {
                let id = registry_id(&r.target_group_arn);
                let op = crate::servicediscovery::operation(
                    OperationType::DeregisterInstance,
                    &[("SERVICE", id), ("INSTANCE", &r.task_id)],
                );
                self.store.delete_instance(id, &r.task_id, &op).await?;
                continue;
            }
            by_group.entry(&r.target_group_arn).or_default().push((r.ip, r.port));
        }
        for (group, keys) in by_group {
            // A group deleted meanwhile has nothing left to drain.
            let Some(tg) = self.store.get_target_group(group).await? else { continue };
            let delay = f64::from(tg.value.deregistration_delay());
            self.store.deregister_targets(group, &keys, now + delay).await?;
        }
        tracing::info!(service = %service.arn, targets = targets.len(), "service deregistered targets");
        Ok(())
    }

    async fn stop(&self, service: &Service, task_id: &str, reason: &str) -> Result<(), StoreError> {
        let arn = service.arn.account.task(&service.arn.cluster, task_id).to_string();
        for _ in 0..STOP_ATTEMPTS {
            let Some(mut current) = self.store.get_task(&arn).await? else { return Ok(()) };
            if !current.value.request_stop(StopCode::ServiceSchedulerInitiated, reason, now_epoch()) {
                return Ok(());
            }
            match self.store.put_task(&current.value, Some(current.version)).await {
                Ok(_) => {
                    tracing::info!(service = %service.arn, task = %arn, reason, "service stopped a task");
                    return Ok(());
                }
                Err(StoreError::Conflict) => tokio::task::yield_now().await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn launch(&self, service: &Service, number: u64, count: u32) -> Result<Launched, StoreError> {
        let Some(d) = service.deployment(number) else { return Ok(Launched::default()) };
        let def = &d.task_definition;
        let Some(record) = self.store.get_task_definition(&def.family, def.revision).await? else {
            tracing::warn!(service = %service.arn, task_definition = %def, "the deployment's task definition is gone");
            return Ok(Launched { started: vec![], shortage: Some("the task definition was not found".into()) });
        };
        let tags = self.task_tags(service, &record.value.tags).await;
        let started_by = deployment_id(number);
        let group = service.task_group();
        let now = now_epoch();
        // The deployment's strategy over its live tasks: bases first, then
        // by weight (a replaced Spot task comes back on Spot).
        let strategy: &[CapacityProviderItem] =
            if d.launch.launch_type { &[] } else { &d.launch.capacity_provider_strategy };
        let running = self.provider_counts(service, &started_by, strategy).await?;
        let providers = capacity::assign(strategy, &running, count);
        let mut new_tasks = Vec::new();
        for i in 0..count as usize {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let built = model_task::build(NewTask {
                account: &service.arn.account,
                cluster_name: &service.arn.cluster,
                id: &id,
                definition: &record.value.definition,
                overrides: Default::default(),
                started_by: Some(&started_by),
                group: Some(&group),
                tags: tags.clone(),
                enable_execute_command: service.enable_execute_command,
                capacity_provider: providers.get(i).map(|p| strategy[*p].capacity_provider.as_str()),
                network: d.network.clone().map(|n| (n, uuid::Uuid::new_v4().to_string())),
                now,
            });
            match built {
                Ok(t) => new_tasks.push(t),
                Err(e) => {
                    tracing::warn!(service = %service.arn, error = %e, "the deployment's tasks cannot be built");
                    return Ok(Launched { started: vec![], shortage: Some(e.to_string()) });
                }
            }
        }
        let mut out = Launched::default();
        for outcome in placement::apply(&StoreTarget(self.store.as_ref()), new_tasks).await? {
            match outcome {
                Ok(placed) => out.started.push(placed.value.id().to_owned()),
                Err(shortage) => {
                    out.shortage.get_or_insert_with(|| shortage.reason().to_owned());
                }
            }
        }
        self.own(service, out.started.iter().map(|id| service.arn.account.task(&service.arn.cluster, id).to_string()));
        tracing::info!(service = %service.arn, deployment = %started_by, started = out.started.len(), short = out.shortage.is_some(), "service launched tasks");
        Ok(out)
    }

    async fn write(&self, service: &Service, version: i64) -> Result<Written, StoreError> {
        match self.store.put_service(service, Some(version)).await {
            Ok(_) => Ok(Written::Done),
            Err(StoreError::Conflict) => Ok(Written::Conflict),
            Err(e) => Err(e),
        }
    }
}

impl StoreServices {
    /// How many live tasks of the deployment `started_by` each strategy
    /// item's provider runs (those wanted running).
    async fn provider_counts(
        &self,
        service: &Service,
        started_by: &str,
        strategy: &[CapacityProviderItem],
    ) -> Result<Vec<u32>, StoreError> {
        if strategy.is_empty() {
            return Ok(Vec::new());
        }
        let filter = TaskFilter {
            cluster_arn: Some(service.cluster_arn().to_string()),
            started_by: Some(started_by.to_owned()),
            desired_status: Some(berth_model::lifecycle::DesiredStatus::Running),
            live_only: true,
            ..TaskFilter::default()
        };
        let mut counts = vec![0; strategy.len()];
        let mut after = None;
        loop {
            let rows = self.store.list_tasks(&filter, Page { after: after.clone(), limit: 500 }).await?;
            for t in &rows {
                let provider = t.value.capacity_provider.as_deref().unwrap_or(capacity::FARGATE);
                if let Some(i) = strategy.iter().position(|s| s.capacity_provider == provider) {
                    counts[i] += 1;
                }
            }
            match rows.last() {
                Some(last) if rows.len() == 500 => after = Some(last.value.arn.to_string()),
                _ => return Ok(counts),
            }
        }
    }
}
