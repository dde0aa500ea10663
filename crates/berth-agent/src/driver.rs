//! One task's driver: reads the task as stored and as the runtime reports
//! it, asks [`step::next_step`] what to do, and does it, one lifecycle
//! step at a time until the task is STOPPED. Every step is a versioned
//! write (the API may change `desiredStatus` at the same time) through the
//! task's own transition function; a refused transition is an error, never
//! a silent skip that would run the same step again at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use berth_image::ImageStore;
use berth_model::lifecycle::{InvalidTransition, TaskEvent};
use berth_model::task::{StopCode, Task};
use berth_runtime_api::{RuntimeError, TaskId, TaskRuntime, TaskReport};
use berth_store::{Notice, StoreError, Versioned};

use crate::network::NodeNetwork;
use crate::now_epoch;
use crate::plane::{NodeControlPlane, PlaneError};
use crate::spec::{self, Pulled};
use crate::step::{self, Ending, Step};

/// Writes that lose a version race are retried this often, with backoff.
const WRITE_ATTEMPTS: u32 = 8;
const WRITE_BACKOFF: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("store")]
    Store(#[from] StoreError),
    #[error("runtime")]
    Runtime(#[from] RuntimeError),
    #[error("task {0} is not in the store")]
    Gone(String),
    #[error("network")]
    Network(#[from] crate::network::TaskNetworkError),
    /// The step chosen does not apply to the task as stored now: a bug,
    /// or a writer the driver does not know of.
    #[error("task {task}: {source}")]
    InvalidTransition { task: String, source: InvalidTransition },
    /// The task runs on a backend this node does not have.
    #[error("task {task}: it runs as a {kind} task, and this node's runtime is not one")]
    NoRuntime { task: String, kind: &'static str },
    /// Every write attempt lost a race with another writer.
    #[error("task {0}: the store kept changing under {WRITE_ATTEMPTS} write attempts")]
    Contended(String),
}

pub struct Driver {
    pub plane: Arc<dyn NodeControlPlane>,
    pub images: Arc<ImageStore>,
    pub runtime: Arc<dyn TaskRuntime>,
    pub poll: Duration,
    pub logs: Arc<crate::logs::Shipper>,
    /// The node's awsvpc networking (`None`: each container gets an empty
    /// network namespace of its own).
    pub network: Option<Arc<NodeNetwork>>,
}

/// A task being driven: its ARN and the runtime's id for it.
struct Target<'a> {
    arn: &'a str,
    id: TaskId,
    /// The runtime has this task's containers attached in this process
    /// (started here, or recovered once after an agent restart).
    attached: bool,
}

impl Driver {
    /// Drives the task until it is STOPPED.
    pub async fn drive(&self, arn: &str) -> Result<(), DriverError> {
        // Subscribed before the first read, so no change is missed.
        let mut changes = self.plane.watch_tasks();
        let first = self.load(arn).await?;
        let mut target = Target { arn, id: TaskId::new(first.value.id())?, attached: false };
        // Each task is driven through the backend that started it (or will).
        if !same_kind(first.value.runtime, self.runtime.kind()) {
            let kind = runtime_kind_name(first.value.runtime);
            let status = first.value.status();
            if status == berth_model::lifecycle::TaskStatus::Provisioning {
                // Not yet run anywhere: the node's isolation is recorded
                // for it as it is provisioned here.
            } else if status == berth_model::lifecycle::TaskStatus::Pending {
                self.fail(&target, &format!("ResourceInitializationError: this node has no {kind} runtime")).await?;
            } else if status != berth_model::lifecycle::TaskStatus::Stopped {
                return Err(DriverError::NoRuntime { task: arn.to_owned(), kind });
            }
        }
        self.logs.resume(arn, &target.id).await?;
        loop {
            let current = self.load(arn).await?;
            let task = &current.value;
            let report = if step::needs_report(task.status()) { self.report(&mut target).await? } else { None };
            let step = step::next_step(task, report.as_ref());
            tracing::trace!(task = %arn, status = %task.status(), ?step, "driver step");
            match step {
                Step::Done => return Ok(()),
                Step::Provision => self.provision(&target, task).await?,
                Step::Start => self.start(&mut target, task).await?,
                Step::RequestStop => self.request_stop(&target).await?,
                Step::Lost => self.fail(&target, "The task's containers are gone: its state was lost on the node.").await?,
                Step::Finished(ending) => self.finished(&target, ending, report.as_ref()).await?,
                Step::Activate => {
                    let report = report.as_ref();
                    self.advance(&target, &[TaskEvent::Activated], |t| {
                        if let Some(r) = report {
                            step::record_states(t, &r.containers);
                        }
                        t.times.started_at = Some(now_epoch());
                    })
                    .await?;
                }
                Step::Watch => {
                    if let Some(r) = &report {
                        self.sync(&target, task, r).await?;
                    }
                    self.pause(&target, &mut changes).await;
                }
                Step::Deactivate => {
                    let exits = self.stop_containers(&target).await?;
                    self.advance(&target, &[TaskEvent::Deactivated], |t| step::record_exits(t, exits.as_deref())).await?;
                }
                Step::CollectExits => {
                    let exits = self.stop_containers(&target).await?;
                    self.advance(&target, &[TaskEvent::ContainersStopped], |t| {
                        step::record_exits(t, exits.as_deref());
                        t.times.execution_stopped_at = Some(now_epoch());
                    })
                    .await?;
                }
                Step::Deprovision => self.deprovision(&target, task).await?,
            }
        }
    }

    /// The runtime's report of a started task; `None` when it holds nothing
    /// of it. The first look after an agent restart re-attaches (`recover`);
    /// later looks only ask for the status.
    async fn report(&self, target: &mut Target<'_>) -> Result<Option<TaskReport>, DriverError> {
        let report = if target.attached {
            self.runtime.status(&target.id).await
        } else {
            let recovered = self.runtime.recover(&target.id).await;
            if recovered.is_ok() {
                tracing::info!(task = %target.arn, "re-attached to a running task");
                target.attached = true;
            }
            recovered
        };
        match report {
            Ok(r) => Ok(Some(r)),
            Err(RuntimeError::TaskNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// PROVISIONING: the task's network (awsvpc: address, namespace,
    /// interface, firewall), then PENDING.
    async fn provision(&self, target: &Target<'_>, task: &Task) -> Result<(), DriverError> {
        // The task runs on this node's backend, recorded now (so a restarted
        // agent recovers it through that backend), with its accelerator.
        let kind = task_kind(self.runtime.kind());
        let accelerator = self.runtime.accelerator();
        let connected = |t: &mut Task| {
            t.times.connectivity_at = Some(now_epoch());
            t.runtime = kind;
            t.accelerator = accelerator.map(str::to_owned);
        };
        let Some(network) = self.network.as_ref().filter(|_| task.network.is_some()) else {
            return self.advance(target, &[TaskEvent::Provisioned], connected).await;
        };
        let ports = match self.definition(task).await? {
            Some(definition) => spec::published_ports(&definition),
            None => Vec::new(),
        };
        let provisioned = match network.provision(task, &ports).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(task = %target.arn, error = %e.reason(), "network setup failed");
                return self.fail(target, &e.reason()).await;
            }
        };
        let mac = provisioned.attachment.mac.to_string();
        self.advance(target, &[TaskEvent::Provisioned], |t| {
            t.attach(&provisioned.subnet.id, provisioned.attachment.ip, &mac);
            for (name, binding) in &provisioned.bindings {
                if let Some(c) = t.container_mut(name) {
                    c.bindings.push(*binding);
                }
            }
            connected(t);
        })
        .await?;
        // The record names the task now: its firewall rules follow.
        network.sync_firewall().await;
        Ok(())
    }

    /// PENDING: pull the images and start the containers. A task an earlier
    /// agent already started is re-attached instead.
    async fn start(&self, target: &mut Target<'_>, task: &Task) -> Result<(), DriverError> {
        if self.runtime.list().await?.contains(&target.id) {
            let report = self.runtime.recover(&target.id).await?;
            if step::interrupted_start(&report) {
                // An agent that died while starting it left its state but
                // nothing running (the shim never took over): start afresh.
                tracing::info!(task = %target.arn, "a start interrupted by an agent restart: starting the task again");
                self.runtime.stop(&target.id).await?;
                self.runtime.remove(&target.id).await?;
            } else {
                target.attached = true;
                tracing::info!(task = %target.arn, "re-attached to a task started before an agent restart");
                return self.advance(target, &[TaskEvent::ContainersStarted], |t| step::record_states(t, &report.containers)).await;
            }
        }
        let Some(definition) = self.definition(task).await? else {
            return self.fail(target, "TaskDefinition not found: it was deleted before the task started.").await;
        };
        if let Some(reason) = spec::unsupported_volumes(&definition) {
            return self.fail(target, &reason).await;
        }
        if let Some(reason) = self.logs.authorize(&target.id, &definition, &task.arn.account).await? {
            tracing::info!(task = %target.arn, "the execution role may not write the task's logs");
            return self.fail(target, &reason).await;
        }
        if let Some(reason) = self.logs.prepare(&target.id, &definition).await? {
            return self.fail(target, &reason).await;
        }
        // Secrets and registry logins first: a task whose execution role
        // may not read them starts no container.
        let (secrets, logins) = match self.read_secrets(task, &definition).await? {
            Ok(read) => read,
            Err(reason) => {
                tracing::info!(task = %target.arn, reason = %reason, "secrets or registry auth refused");
                return self.fail(target, &reason).await;
            }
        };
        self.update(target, |t| t.times.pull_started_at = Some(now_epoch())).await?;
        let mut pulled = Vec::new();
        for (c, login) in definition.container_definitions.iter().flatten().zip(&logins) {
            let image = c.image.as_deref().unwrap_or_default();
            match self.images.pull(image, login.as_ref()).await {
                Ok(img) => pulled.push(Pulled { layers: img.layers, config: img.config }),
                Err(e) => {
                    tracing::info!(task = %target.arn, image, error = %e.report(), "pull failed");
                    return self.fail(target, &format!("CannotPullContainerError: {}", e.report())).await;
                }
            }
        }
        // Written with the next step, one store write fewer per launch.
        let pull_stopped_at = now_epoch();
        let mut spec = spec::task(target.id.clone(), &definition, &task.overrides, task.size, &pulled, &secrets);
        if let Some(net) = match &self.network {
            Some(n) => n.task_network(task).await,
            None => None,
        } {
            let region = task.arn.account.region.as_str();
            let credentials_uri = match (&self.network, spec::task_role(Some(&definition), &task.overrides)) {
                (Some(n), Some(_)) => n.credentials_uri(target.arn),
                _ => None,
            };
            let endpoint = self.network.as_ref().and_then(|n| n.api_endpoint(net.gateway));
            for c in &mut spec.containers {
                if let Some(uri) = &credentials_uri {
                    c.environment.insert(crate::credentials::RELATIVE_URI_VAR.to_owned(), uri.clone());
                }
                c.mounts.extend(net.mounts.iter().cloned());
                // As on Fargate: the metadata endpoint, the platform, the region.
                let uri = crate::metadata::MetadataServer::uri(net.gateway, target.id.as_str(), &c.name);
                let env = [
                    ("ECS_CONTAINER_METADATA_URI_V4", uri.clone()),
                    ("ECS_CONTAINER_METADATA_URI", uri),
                    ("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE".to_owned()),
                    ("AWS_REGION", region.to_owned()),
                    ("AWS_DEFAULT_REGION", region.to_owned()),
                ];
                // Berth's API where the task can reach it (SDKs read AWS_ENDPOINT_URL).
                let endpoint = endpoint.iter().map(|e| ("AWS_ENDPOINT_URL", e.clone()));
                for (k, v) in env.into_iter().chain(endpoint) {
                    c.environment.entry(k.to_owned()).or_insert(v);
                }
            }
            spec.netns = Some(net.netns);
            spec.hostname = Some(net.hostname);
        }
        match self.runtime.start(&spec).await {
            Ok(report) => {
                target.attached = true;
                // With nothing left to wait for, ACTIVATING and RUNNING are
                // one write.
                let ready = !report.any_waiting() && !report.is_finished();
                let events: &[TaskEvent] =
                    if ready { &[TaskEvent::ContainersStarted, TaskEvent::Activated] } else { &[TaskEvent::ContainersStarted] };
                let started_at = now_epoch();
                self.advance(target, events, |t| {
                    t.times.pull_stopped_at = Some(pull_stopped_at);
                    if ready {
                        t.times.started_at = Some(started_at);
                    }
                    step::record_states(t, &report.containers);
                })
                .await
            }
            Err(e) => {
                tracing::info!(task = %target.arn, error = %e, "start failed");
                self.update(target, |t| t.times.pull_stopped_at = Some(pull_stopped_at)).await?;
                self.fail(target, &format!("CannotStartContainerError: {e}")).await
            }
        }
    }

    /// Every container's secrets, and the registry login of each that has
    /// `repositoryCredentials`, read with the task's execution role; an
    /// `Err` is ECS's reason for a task that cannot start (nothing read
    /// is kept beyond the start, nor written to the task's record).
    async fn read_secrets(
        &self,
        task: &Task,
        definition: &berth_wire::ecs::TaskDefinition,
    ) -> Result<Result<(Vec<spec::Secrets>, Vec<Option<berth_image::Credentials>>), String>, DriverError> {
        let role = spec::execution_role(definition, &task.overrides);
        let account = &task.arn.account;
        let read = |value_from: String| {
            let role = role.clone();
            async move {
                let Some(role) = role else {
                    return Ok(Err(format!(
                        "{}execution resource retrieval failed: the task has no execution role (executionRoleArn) \
                         to read {value_from} with",
                        spec::SECRETS_REASON
                    )));
                };
                match self.plane.read_secret(account, &role, task.id(), &value_from).await {
                    Ok(v) => Ok(Ok(v)),
                    Err(PlaneError::Refused(reason)) => Ok(Err(reason)),
                    Err(PlaneError::Store(e)) => Err(DriverError::Store(e)),
                }
            }
        };
        let (mut secrets, mut logins) = (Vec::new(), Vec::new());
        for c in definition.container_definitions.iter().flatten() {
            let mut env = Vec::new();
            for s in c.secrets.iter().flatten() {
                match read(s.value_from.clone()).await? {
                    Ok(v) => env.push((s.name.clone(), v)),
                    Err(reason) => return Ok(Err(reason)),
                }
            }
            secrets.push(env);
            let login = match &c.repository_credentials {
                None => None,
                Some(r) => match read(r.credentials_parameter.clone()).await? {
                    Ok(v) => match spec::registry_login(&v, &r.credentials_parameter) {
                        Ok(login) => Some(login),
                        Err(why) => return Ok(Err(format!("{}execution resource retrieval failed: {why}", spec::SECRETS_REASON))),
                    },
                    Err(reason) => return Ok(Err(reason)),
                },
            };
            logins.push(login);
        }
        Ok(Ok((secrets, logins)))
    }

    /// DEPROVISIONING: the last logs shipped, the runtime's state removed,
    /// the network released; then STOPPED.
    async fn deprovision(&self, target: &Target<'_>, task: &Task) -> Result<(), DriverError> {
        self.logs.finish(target.arn, &target.id).await?;
        match self.runtime.remove(&target.id).await {
            Ok(()) | Err(RuntimeError::TaskNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(network) = &self.network {
            network.release(task).await?;
        }
        self.advance(target, &[TaskEvent::Deprovisioned], |t| {
            // Containers that never ran (a stop before the start) end too.
            t.stop_all_containers(None);
            t.detach();
            t.times.stopped_at = Some(now_epoch());
        })
        .await?;
        if let Some(network) = &self.network {
            network.sync_firewall().await;
        }
        tracing::info!(task = %target.arn, "task stopped");
        Ok(())
    }

    /// Waits until the task is finished by ECS rules, its record changes
    /// (a stop request), or a poll interval passes (health, and changes
    /// another process made).
    async fn pause(&self, target: &Target<'_>, changes: &mut broadcast::Receiver<Notice>) {
        let changed = async {
            loop {
                match changes.recv().await {
                    Ok(changed) if changed.key == target.arn => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = self.runtime.wait(&target.id) => {}
            () = changed => {}
            () = tokio::time::sleep(self.poll) => {}
        }
    }

    /// The task is over by ECS rules: an essential container exited, or
    /// will never start (then the task failed to start, for its reason).
    async fn finished(&self, target: &Target<'_>, ending: Ending, report: Option<&TaskReport>) -> Result<(), DriverError> {
        self.advance(target, &[ending.event], |t| {
            if let Some(r) = report {
                step::record_states(t, &r.containers);
            }
            // A task whose containers ran, however briefly, has started.
            if ending.ran {
                t.times.started_at.get_or_insert(now_epoch());
            }
            t.set_stop_reason(ending.code, &ending.reason);
            t.times.stopping_at.get_or_insert(now_epoch());
        })
        .await
    }

    async fn request_stop(&self, target: &Target<'_>) -> Result<(), DriverError> {
        self.advance(target, &[TaskEvent::StopRequested], |t| {
            t.times.stopping_at.get_or_insert(now_epoch());
        })
        .await
    }

    /// Writes the containers' states and health when they changed.
    async fn sync(&self, target: &Target<'_>, task: &Task, report: &TaskReport) -> Result<(), DriverError> {
        let mut updated = task.clone();
        step::record_states(&mut updated, &report.containers);
        if updated == *task {
            return Ok(());
        }
        self.update(target, |t| step::record_states(t, &report.containers)).await
    }

    /// Stops the task's containers (SIGTERM, then SIGKILL after their
    /// stopTimeout) and returns how they ended; `None` when the runtime
    /// holds nothing for the task (it never started).
    async fn stop_containers(&self, target: &Target<'_>) -> Result<Option<Vec<berth_runtime_api::ContainerReport>>, DriverError> {
        match self.runtime.stop(&target.id).await {
            Ok(report) => Ok(Some(report.containers)),
            Err(RuntimeError::TaskNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The task could not start: TaskFailedToStart with `reason`.
    async fn fail(&self, target: &Target<'_>, reason: &str) -> Result<(), DriverError> {
        self.advance(target, &[TaskEvent::StartFailed], |t| {
            t.set_stop_reason(StopCode::TaskFailedToStart, reason);
            t.times.stopping_at.get_or_insert(now_epoch());
            t.stop_all_containers(Some(reason));
        })
        .await
    }

    async fn definition(&self, task: &Task) -> Result<Option<berth_wire::ecs::TaskDefinition>, DriverError> {
        Ok(self.plane.task_definition(&task.definition_arn).await?)
    }

    async fn load(&self, arn: &str) -> Result<Versioned<Task>, DriverError> {
        self.plane.task(arn).await?.ok_or_else(|| DriverError::Gone(arn.to_owned()))
    }

    /// Applies `events` in order through the task's transition function,
    /// with `change`, in one write.
    async fn advance(&self, target: &Target<'_>, events: &[TaskEvent], change: impl Fn(&mut Task)) -> Result<(), DriverError> {
        self.write(target, |t| {
            t.apply_all(events)?;
            change(t);
            Ok(())
        })
        .await
    }

    /// A change that is not a lifecycle step (timestamps, container states).
    async fn update(&self, target: &Target<'_>, change: impl Fn(&mut Task)) -> Result<(), DriverError> {
        self.write(target, |t| {
            change(t);
            Ok(())
        })
        .await
    }

    /// Read-modify-write of the task, retried with backoff when another
    /// writer got there first; a refused transition writes nothing and is
    /// returned as an error.
    async fn write(
        &self,
        target: &Target<'_>,
        change: impl Fn(&mut Task) -> Result<(), InvalidTransition>,
    ) -> Result<(), DriverError> {
        let mut backoff = WRITE_BACKOFF;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.load(target.arn).await?;
            let mut task = current.value;
            change(&mut task).map_err(|source| DriverError::InvalidTransition { task: target.arn.to_owned(), source })?;
            match self.plane.update_task(&task, current.version).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DriverError::Contended(target.arn.to_owned()))
    }
}

/// Whether a task recorded as `task` runs on a backend of kind `node`.
fn same_kind(task: berth_model::task::RuntimeKind, node: berth_runtime_api::RuntimeKind) -> bool {
    use berth_model::task::RuntimeKind as Task;
    use berth_runtime_api::RuntimeKind as Node;
    matches!((task, node), (Task::Sandbox, Node::Sandbox) | (Task::Microvm, Node::MicroVm))
}

fn task_kind(node: berth_runtime_api::RuntimeKind) -> berth_model::task::RuntimeKind {
    match node {
        berth_runtime_api::RuntimeKind::Sandbox => berth_model::task::RuntimeKind::Sandbox,
        berth_runtime_api::RuntimeKind::MicroVm => berth_model::task::RuntimeKind::Microvm,
    }
}

fn runtime_kind_name(kind: berth_model::task::RuntimeKind) -> &'static str {
    match kind {
        berth_model::task::RuntimeKind::Sandbox => "sandbox",
        berth_model::task::RuntimeKind::Microvm => "microvm",
    }
}
