//! One task's driver: reads the task as stored and as the runtime sees
//! it, and moves it one lifecycle step at a time until it is STOPPED.
//! Every step is a store write with optimistic concurrency (the API may
//! change `desiredStatus` at the same time), through the model's single
//! transition function.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use berth_image::ImageStore;
use berth_model::lifecycle::{TaskEvent, TaskStatus, transition};
use berth_model::records::TaskRecord;
use berth_runtime::{ContainerState, HealthStatus as RuntimeHealth, RuntimeError, TaskId, TaskRuntime, TaskStatus as RuntimeStatus};
use berth_store::{Store, StoreError, Versioned};
use berth_wire::ecs::{Connectivity, HealthStatus, Task, TaskStopCode};

use crate::network::NodeNetwork;
use crate::now_epoch;
use crate::spec::{self, Pulled};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("store")]
    Store(#[from] StoreError),
    #[error("runtime")]
    Runtime(#[from] RuntimeError),
    #[error("task {0} is not in the store")]
    Gone(String),
    #[error("network")]
    Network(#[from] crate::network::NetworkError),
}

pub struct Driver {
    pub store: Arc<dyn Store>,
    pub images: Arc<ImageStore>,
    pub runtime: Arc<dyn TaskRuntime>,
    pub poll: Duration,
    pub logs: Arc<crate::logs::Shipper>,
    /// The node's awsvpc networking (`None`: each container gets an empty
    /// network namespace of its own).
    pub network: Option<Arc<NodeNetwork>>,
}

/// The runtime's id of a task: the last part of its ARN.
fn runtime_id(arn: &str) -> Result<TaskId, RuntimeError> {
    TaskId::new(arn.rsplit('/').next().unwrap_or(arn))
}

impl Driver {
    /// Drives the task until it is STOPPED.
    pub async fn drive(&self, arn: &str) -> Result<(), DriverError> {
        let id = runtime_id(arn)?;
        self.logs.resume(arn, &id).await?;
        // Subscribed before the first read, so no change is missed.
        let mut changes = self.store.watch(berth_store::RecordKind::Task);
        loop {
            let record = self.load(arn).await?;
            let task = &record.value.task;
            let status = task.last_status.as_deref().and_then(TaskStatus::parse).unwrap_or(TaskStatus::Provisioning);
            let stop_wanted = task.desired_status.as_deref() == Some("STOPPED");
            match status {
                TaskStatus::Stopped => return Ok(()),
                TaskStatus::Provisioning if stop_wanted => self.advance(arn, TaskEvent::StopRequested, |_| {}).await?,
                TaskStatus::Provisioning => self.provision(arn, &record.value).await?,
                TaskStatus::Pending if stop_wanted => self.advance(arn, TaskEvent::StopRequested, |_| {}).await?,
                TaskStatus::Pending => self.start(arn, &id, &record.value).await?,
                TaskStatus::Activating => self.activate(arn, &id, &record.value, stop_wanted, &mut changes).await?,
                TaskStatus::Running => self.watch(arn, &id, &record.value, stop_wanted, &mut changes).await?,
                TaskStatus::Deactivating => {
                    let exits = self.stop_containers(&id).await?;
                    self.advance(arn, TaskEvent::Deactivated, |t| record_exits(t, exits.as_ref())).await?;
                }
                TaskStatus::Stopping => {
                    let exits = self.stop_containers(&id).await?;
                    self.advance(arn, TaskEvent::ContainersStopped, |t| {
                        record_exits(t, exits.as_ref());
                        t.execution_stopped_at = Some(now_epoch());
                    })
                    .await?;
                }
                TaskStatus::Deprovisioning => {
                    self.logs.finish(arn, &id).await?;
                    match self.runtime.remove(&id).await {
                        Ok(()) | Err(RuntimeError::TaskNotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    if let Some(network) = &self.network {
                        network.release(arn).await?;
                    }
                    self.advance(arn, TaskEvent::Deprovisioned, |t| {
                        berth_model::network::detach(t);
                        t.stopped_at = Some(now_epoch());
                    })
                    .await?;
                    if let Some(network) = &self.network {
                        network.sync_firewall().await;
                    }
                    tracing::info!(task = %arn, "task stopped");
                }
            }
        }
    }

    /// PROVISIONING: the task's network (awsvpc: address, namespace,
    /// interface, firewall), then PENDING.
    async fn provision(&self, arn: &str, record: &TaskRecord) -> Result<(), DriverError> {
        let network = self.network.as_ref().filter(|_| record.network_configuration.is_some());
        let Some(network) = network else {
            return self
                .advance(arn, TaskEvent::Provisioned, |t| {
                    t.connectivity = Some(Connectivity::Connected);
                    t.connectivity_at = Some(now_epoch());
                })
                .await;
        };
        let ports = match self.definition(record).await? {
            Some(definition) => published_ports(&definition),
            None => Vec::new(),
        };
        let provisioned = match network.provision(record, &ports).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(task = %arn, error = %e.reason(), "network setup failed");
                return self.fail(arn, &e.reason()).await;
            }
        };
        let region = record.task.task_arn.as_deref().and_then(|a| a.split(':').nth(3)).unwrap_or("us-east-1").to_owned();
        let mac = provisioned.attachment.mac.to_string();
        self.advance(arn, TaskEvent::Provisioned, |t| {
            let iface = berth_model::network::Interface {
                subnet_id: &provisioned.subnet.id,
                ip: provisioned.attachment.ip,
                mac: &mac,
                region: &region,
            };
            berth_model::network::attach(t, &iface);
            for c in t.containers.iter_mut().flatten() {
                let mine: Vec<_> = provisioned
                    .bindings
                    .iter()
                    .filter(|(name, _)| c.name.as_ref() == Some(name))
                    .map(|(_, b)| b.clone())
                    .collect();
                if !mine.is_empty() {
                    c.network_bindings = Some(mine);
                }
            }
            t.connectivity = Some(Connectivity::Connected);
            t.connectivity_at = Some(now_epoch());
        })
        .await?;
        // The record names the task now: its firewall rules follow.
        network.sync_firewall().await;
        Ok(())
    }

    /// PENDING: pull the images and start the containers. A task an earlier
    /// agent already started is re-attached instead.
    async fn start(&self, arn: &str, id: &TaskId, record: &TaskRecord) -> Result<(), DriverError> {
        if self.runtime.list().await?.contains(id) {
            let status = self.runtime.recover(id).await?;
            tracing::info!(task = %arn, "re-attached to a task started before an agent restart");
            return self.advance(arn, TaskEvent::ContainersStarted, |t| record_states(t, &status.containers)).await;
        }
        let Some(definition) = self.definition(record).await? else {
            return self.fail(arn, "TaskDefinition not found: it was deleted before the task started.").await;
        };
        if let Some(reason) = self.logs.prepare(id, &definition).await? {
            return self.fail(arn, &reason).await;
        }
        self.update(arn, |t| t.pull_started_at = Some(now_epoch())).await?;
        let mut pulled = Vec::new();
        for c in definition.container_definitions.iter().flatten() {
            let image = c.image.as_deref().unwrap_or_default();
            match self.images.pull(image, None).await {
                Ok(img) => pulled.push(Pulled { layers: img.layers, config: img.config }),
                Err(e) => {
                    tracing::info!(task = %arn, image, error = %e.report(), "pull failed");
                    return self.fail(arn, &format!("CannotPullContainerError: {}", e.report())).await;
                }
            }
        }
        // Written with the next step, one store write fewer per launch.
        let pull_stopped_at = now_epoch();
        let mut spec = spec::task(
            id.clone(),
            &definition,
            record.task.overrides.as_ref(),
            record.cpu,
            record.memory,
            &pulled,
        );
        let net = match &self.network {
            Some(n) => n.task_network(record).await,
            None => None,
        };
        if let Some(net) = net {
            let region = record.task.task_arn.as_deref().and_then(|a| a.split(':').nth(3)).unwrap_or("us-east-1");
            for c in &mut spec.containers {
                c.mounts.extend(net.mounts.iter().cloned());
                // As on Fargate: the metadata endpoint, the platform, the region.
                let uri = crate::metadata::MetadataServer::uri(net.gateway, id.as_str(), &c.name);
                let env = [
                    ("ECS_CONTAINER_METADATA_URI_V4", uri.clone()),
                    ("ECS_CONTAINER_METADATA_URI", uri),
                    ("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE".to_owned()),
                    ("AWS_REGION", region.to_owned()),
                    ("AWS_DEFAULT_REGION", region.to_owned()),
                ];
                for (k, v) in env {
                    c.environment.entry(k.to_owned()).or_insert(v);
                }
            }
            spec.netns = Some(net.netns);
            spec.hostname = Some(net.hostname);
        }
        match self.runtime.start(&spec).await {
            Ok(status) => {
                // With nothing left to wait for, ACTIVATING and RUNNING are
                // one write.
                let ready = !status.any_waiting() && !status.is_finished();
                let events: &[TaskEvent] =
                    if ready { &[TaskEvent::ContainersStarted, TaskEvent::Activated] } else { &[TaskEvent::ContainersStarted] };
                let started_at = now_epoch();
                self.advance_through(arn, events, |t| {
                    t.pull_stopped_at = Some(pull_stopped_at);
                    if ready {
                        t.started_at = Some(started_at);
                    }
                    record_states(t, &status.containers);
                })
                .await
            }
            Err(e) => {
                tracing::info!(task = %arn, error = %e, "start failed");
                self.update(arn, |t| t.pull_stopped_at = Some(pull_stopped_at)).await?;
                self.fail(arn, &format!("CannotStartContainerError: {e}")).await
            }
        }
    }

    /// ACTIVATING: containers with dependencies may still wait for them;
    /// the task is RUNNING once none does.
    async fn activate(
        &self,
        arn: &str,
        id: &TaskId,
        record: &TaskRecord,
        stop_wanted: bool,
        changes: &mut broadcast::Receiver<berth_store::Notice>,
    ) -> Result<(), DriverError> {
        let Some(status) = self.live_status(arn, id, stop_wanted).await? else { return Ok(()) };
        if status.any_waiting() {
            self.sync(arn, record, &status).await?;
            self.pause(arn, id, changes).await;
            return Ok(());
        }
        self.advance(arn, TaskEvent::Activated, |t| {
            record_states(t, &status.containers);
            t.started_at = Some(now_epoch());
        })
        .await
    }

    /// RUNNING: waits until an essential container exits or a stop is
    /// wanted, checking the store every poll interval and recording
    /// changes of the containers' health.
    async fn watch(
        &self,
        arn: &str,
        id: &TaskId,
        record: &TaskRecord,
        stop_wanted: bool,
        changes: &mut broadcast::Receiver<berth_store::Notice>,
    ) -> Result<(), DriverError> {
        let Some(status) = self.live_status(arn, id, stop_wanted).await? else { return Ok(()) };
        self.sync(arn, record, &status).await?;
        self.pause(arn, id, changes).await;
        Ok(())
    }

    /// Waits until the task is finished by ECS rules, its record changes
    /// (a stop request), or a poll interval passes (health, and changes
    /// another process made).
    async fn pause(&self, arn: &str, id: &TaskId, changes: &mut broadcast::Receiver<berth_store::Notice>) {
        let changed = async {
            loop {
                match changes.recv().await {
                    Ok(changed) if changed.key == arn => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = self.runtime.wait(id) => {}
            () = changed => {}
            () = tokio::time::sleep(self.poll) => {}
        }
    }

    /// The runtime's status of a task that is still running and not
    /// wanted stopped; `None` once this call has handled it otherwise (gone,
    /// finished: recorded; stop wanted: begun).
    async fn live_status(
        &self,
        arn: &str,
        id: &TaskId,
        stop_wanted: bool,
    ) -> Result<Option<RuntimeStatus>, DriverError> {
        let Some(status) = self.runtime_status(arn, id).await? else { return Ok(None) };
        if status.is_finished() {
            self.finished(arn, &status).await?;
            return Ok(None);
        }
        if stop_wanted {
            self.stop_requested(arn).await?;
            return Ok(None);
        }
        Ok(Some(status))
    }

    /// The runtime's view of a started task; `None` (after failing the
    /// task) when the node lost its state.
    async fn runtime_status(&self, arn: &str, id: &TaskId) -> Result<Option<RuntimeStatus>, DriverError> {
        match self.runtime.recover(id).await {
            Ok(s) => Ok(Some(s)),
            Err(RuntimeError::TaskNotFound(_)) => {
                self.fail(arn, "The task's containers are gone: its state was lost on the node.").await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The task is over by ECS rules: an essential container exited, or
    /// will never start (then the task failed to start, for its reason).
    async fn finished(&self, arn: &str, status: &RuntimeStatus) -> Result<(), DriverError> {
        let never_started = status.containers.iter().find_map(|c| match &c.state {
            ContainerState::NotStarted(n) if c.essential => Some(n.reason.clone()),
            _ => None,
        });
        let (event, code, reason) = match never_started {
            Some(reason) => (TaskEvent::StartFailed, TaskStopCode::TaskFailedToStart, reason),
            None => (
                TaskEvent::EssentialContainerExited,
                TaskStopCode::EssentialContainerExited,
                "Essential container in task exited".to_owned(),
            ),
        };
        let ran = status.containers.iter().any(|c| matches!(c.state, ContainerState::Exited(_) | ContainerState::Running { .. }));
        self.advance(arn, event, |t| {
            record_states(t, &status.containers);
            // A task whose containers ran, however briefly, has started.
            if ran {
                t.started_at.get_or_insert(now_epoch());
            }
            if t.stop_code.is_none() {
                t.stop_code = Some(code);
                t.stopped_reason = Some(reason.clone());
            }
            t.stopping_at.get_or_insert(now_epoch());
        })
        .await
    }

    async fn stop_requested(&self, arn: &str) -> Result<(), DriverError> {
        self.advance(arn, TaskEvent::StopRequested, |t| {
            t.stopping_at.get_or_insert(now_epoch());
        })
        .await
    }

    /// Writes the containers' states and health when they changed.
    async fn sync(&self, arn: &str, record: &TaskRecord, status: &RuntimeStatus) -> Result<(), DriverError> {
        let mut task = record.task.clone();
        record_states(&mut task, &status.containers);
        if task == record.task {
            return Ok(());
        }
        self.update(arn, |t| record_states(t, &status.containers)).await
    }

    /// Stops the task's containers (SIGTERM, then SIGKILL after their
    /// stopTimeout) and returns how they ended; `None` when the runtime
    /// holds nothing for the task (it never started).
    async fn stop_containers(&self, id: &TaskId) -> Result<Option<Vec<berth_runtime::ContainerStatus>>, DriverError> {
        match self.runtime.stop(id).await {
            Ok(status) => Ok(Some(status.containers)),
            Err(RuntimeError::TaskNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The task could not start: TaskFailedToStart with `reason`.
    async fn fail(&self, arn: &str, reason: &str) -> Result<(), DriverError> {
        self.advance(arn, TaskEvent::StartFailed, |t| {
            t.stop_code = Some(TaskStopCode::TaskFailedToStart);
            t.stopped_reason = Some(reason.to_owned());
            t.stopping_at.get_or_insert(now_epoch());
            for c in t.containers.iter_mut().flatten() {
                c.last_status = Some("STOPPED".into());
                c.reason = Some(reason.to_owned());
            }
        })
        .await
    }

    async fn definition(&self, record: &TaskRecord) -> Result<Option<berth_wire::ecs::TaskDefinition>, DriverError> {
        let Some((family, rev)) = record
            .task
            .task_definition_arn
            .as_deref()
            .and_then(|a| a.rsplit_once("task-definition/"))
            .and_then(|(_, r)| r.rsplit_once(':'))
            .and_then(|(f, r)| Some((f.to_owned(), r.parse::<i32>().ok()?)))
        else {
            return Ok(None);
        };
        Ok(self.store.get_task_definition(&family, rev).await?.map(|v| v.value.definition))
    }

    async fn load(&self, arn: &str) -> Result<Versioned<TaskRecord>, DriverError> {
        self.store.get_task(arn).await?.ok_or_else(|| DriverError::Gone(arn.to_owned()))
    }

    /// Applies `event` through the lifecycle's transition function, with
    /// `change`, retrying on version conflicts.
    async fn advance(&self, arn: &str, event: TaskEvent, change: impl Fn(&mut Task)) -> Result<(), DriverError> {
        self.write(arn, |t| {
            let from = t.last_status.as_deref().and_then(TaskStatus::parse).unwrap_or(TaskStatus::Provisioning);
            let to = transition(from, event).ok()?;
            change(t);
            t.last_status = Some(to.as_str().to_owned());
            Some(())
        })
        .await
    }

    /// Applies several events in order, each through the transition
    /// function, in one write (nothing is written if any does not apply).
    async fn advance_through(&self, arn: &str, events: &[TaskEvent], change: impl Fn(&mut Task)) -> Result<(), DriverError> {
        self.write(arn, |t| {
            let mut at = t.last_status.as_deref().and_then(TaskStatus::parse).unwrap_or(TaskStatus::Provisioning);
            for event in events {
                at = transition(at, *event).ok()?;
            }
            change(t);
            t.last_status = Some(at.as_str().to_owned());
            Some(())
        })
        .await
    }

    /// A change that is not a lifecycle step (timestamps).
    async fn update(&self, arn: &str, change: impl Fn(&mut Task)) -> Result<(), DriverError> {
        self.write(arn, |t| {
            change(t);
            Some(())
        })
        .await
    }

    /// Read-modify-write of the task; `change` returning `None` writes nothing.
    async fn write(&self, arn: &str, change: impl Fn(&mut Task) -> Option<()>) -> Result<(), DriverError> {
        loop {
            let current = self.load(arn).await?;
            let mut record = current.value;
            if change(&mut record.task).is_none() {
                return Ok(());
            }
            record.task.version = Some(record.task.version.unwrap_or(1) + 1);
            match self.store.put_task(&record, Some(current.version)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The container ports a task publishes with `assignPublicIp: ENABLED`:
/// every `portMappings` entry (in awsvpc, hostPort is containerPort).
fn published_ports(definition: &berth_wire::ecs::TaskDefinition) -> Vec<(String, berth_wire::ecs::TransportProtocol, u16)> {
    definition
        .container_definitions
        .iter()
        .flatten()
        .flat_map(|c| {
            let name = c.name.clone().unwrap_or_default();
            c.port_mappings.iter().flatten().filter_map(move |m| {
                let port = u16::try_from(m.container_port?).ok()?;
                Some((name.clone(), m.protocol.unwrap_or_default(), port))
            })
        })
        .collect()
}

/// Copies the runtime's container states (and health) into the ECS
/// containers, and the task's health from its essential containers'.
fn record_states(task: &mut Task, states: &[berth_runtime::ContainerStatus]) {
    for c in task.containers.iter_mut().flatten() {
        let Some(s) = states.iter().find(|s| Some(&s.name) == c.name.as_ref()) else { continue };
        match &s.state {
            ContainerState::Waiting => c.last_status = Some("PENDING".into()),
            ContainerState::Running { pid } => {
                c.last_status = Some("RUNNING".into());
                c.runtime_id.get_or_insert_with(|| format!("{}-{pid}", s.name));
            }
            ContainerState::Exited(exit) => {
                c.last_status = Some("STOPPED".into());
                c.exit_code = Some(exit.exit_code);
                if let Some(reason) = exit.reason() {
                    c.reason = Some(reason.to_owned());
                }
            }
            ContainerState::NotStarted(n) => {
                c.last_status = Some("STOPPED".into());
                c.reason = Some(n.reason.clone());
            }
            ContainerState::Lost => {
                c.last_status = Some("STOPPED".into());
                c.reason.get_or_insert_with(|| "Container exit status unknown: its supervisor was gone.".into());
            }
        }
        if let Some(h) = &s.health {
            c.health_status = Some(health(h.status));
        }
    }
    if let Some(h) = task_health(states) {
        task.health_status = Some(h);
    }
}

fn health(h: RuntimeHealth) -> HealthStatus {
    match h {
        RuntimeHealth::Unknown => HealthStatus::Unknown,
        RuntimeHealth::Healthy => HealthStatus::Healthy,
        RuntimeHealth::Unhealthy => HealthStatus::Unhealthy,
    }
}

/// ECS's task health: UNHEALTHY if an essential container with a health
/// check is, HEALTHY if all of them are, else UNKNOWN; `None` when no
/// essential container has a check.
fn task_health(states: &[berth_runtime::ContainerStatus]) -> Option<HealthStatus> {
    let checked: Vec<RuntimeHealth> =
        states.iter().filter(|s| s.essential).filter_map(|s| s.health.as_ref().map(|h| h.status)).collect();
    if checked.is_empty() {
        None
    } else if checked.contains(&RuntimeHealth::Unhealthy) {
        Some(HealthStatus::Unhealthy)
    } else if checked.iter().all(|h| *h == RuntimeHealth::Healthy) {
        Some(HealthStatus::Healthy)
    } else {
        Some(HealthStatus::Unknown)
    }
}

fn record_exits(task: &mut Task, exits: Option<&Vec<berth_runtime::ContainerStatus>>) {
    match exits {
        Some(states) => record_states(task, states),
        None => {
            for c in task.containers.iter_mut().flatten() {
                c.last_status = Some("STOPPED".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_runtime::{ContainerStatus, Health};

    use super::*;

    fn with_health(essential: bool, h: Option<RuntimeHealth>) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            essential,
            state: ContainerState::Running { pid: 1 },
            health: h.map(|status| Health { status, ..Health::unknown() }),
        }
    }

    #[test]
    fn task_health_follows_essential_containers_with_checks() {
        use RuntimeHealth as R;
        let cases = [
            (vec![with_health(true, None)], None),
            (vec![with_health(true, Some(R::Healthy)), with_health(true, None)], Some(HealthStatus::Healthy)),
            (vec![with_health(true, Some(R::Healthy)), with_health(true, Some(R::Unknown))], Some(HealthStatus::Unknown)),
            (vec![with_health(true, Some(R::Unknown)), with_health(true, Some(R::Unhealthy))], Some(HealthStatus::Unhealthy)),
            (vec![with_health(true, Some(R::Healthy)), with_health(false, Some(R::Unhealthy))], Some(HealthStatus::Healthy)),
        ];
        for (states, want) in cases {
            assert_eq!(task_health(&states), want, "{states:?}");
        }
    }
}
