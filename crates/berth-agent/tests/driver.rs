//! The agent's task drivers against a runtime that is a test double (the
//! containers' ends are what the test decides), a real SQLite store and a
//! real image store: a start failure, an essential container's exit,
//! StopTask in every state, and an agent that restarts in the middle of
//! PROVISIONING or of a start.
//!
//! These run on the real clock: with a paused one, tokio advances time
//! whenever the runtime waits for SQLite's worker thread, and sqlx's pool
//! timeouts fire at once. Nothing here waits for time to pass but the
//! driver's poll, which store notices cut short.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use berth_agent::{Agent, AgentConfig};
use berth_image::{ImageStore, ImageStoreConfig};
use berth_model::Account;
use berth_model::lifecycle::{ContainerStatus, TaskEvent, TaskStatus};
use berth_model::node::{Node, NodeStatus};
use berth_model::records::TaskDefinitionRecord;
use berth_model::task::{NewTask, StopCode, Task, build};
use berth_runtime_api::{
    Capabilities, ContainerExit, ContainerReport, ContainerState, LogPaths, NetworkForm, RootfsForm, RuntimeError,
    RuntimeKind, TaskId, TaskReport, TaskRuntime, TaskSpec, TaskStats, Usage,
};
use berth_store::{Store, Stores};
use berth_wire::ecs::{ContainerDefinition, TaskDefinition};
use tokio::sync::Notify;

const NODE: &str = "node-test";
const IMAGE: &str = "local/app:1";

/// What the runtime double was asked, and the containers it holds.
#[derive(Default)]
struct Calls {
    starts: Vec<String>,
    recovers: Vec<String>,
    stops: Vec<String>,
    removes: Vec<String>,
}

/// A runtime whose containers run until the test ends them.
struct FakeRuntime {
    dir: PathBuf,
    tasks: Mutex<BTreeMap<String, Vec<ContainerReport>>>,
    calls: Mutex<Calls>,
    /// `start` fails with this, when set.
    refuse_start: Mutex<Option<String>>,
    changed: Notify,
}

impl FakeRuntime {
    fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            tasks: Mutex::default(),
            calls: Mutex::default(),
            refuse_start: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn report(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        let tasks = self.tasks.lock().unwrap();
        let containers = tasks.get(task.as_str()).cloned().ok_or_else(|| RuntimeError::TaskNotFound(task.to_string()))?;
        Ok(TaskReport { task_id: task.clone(), containers })
    }

    /// Containers of `task` running, as an earlier agent left them.
    fn hold(&self, task: &str, names: &[&str]) {
        let containers = names
            .iter()
            .enumerate()
            .map(|(i, n)| ContainerReport {
                name: (*n).to_owned(),
                essential: true,
                state: ContainerState::Running { pid: 100 + i as i32 },
                health: None,
            })
            .collect();
        self.tasks.lock().unwrap().insert(task.to_owned(), containers);
    }

    /// The container's main process exits with `code`.
    fn exit(&self, task: &str, container: &str, code: i32) {
        for c in self.tasks.lock().unwrap().get_mut(task).unwrap().iter_mut().filter(|c| c.name == container) {
            c.state = exited(code);
        }
        self.changed.notify_waiters();
    }
}

fn exited(code: i32) -> ContainerState {
    ContainerState::Exited(ContainerExit { exit_code: code, signal: None, oom_killed: false, finished_at: SystemTime::now() })
}

#[async_trait]
impl TaskRuntime for FakeRuntime {
    async fn start(&self, spec: &TaskSpec) -> Result<TaskReport, RuntimeError> {
        self.calls.lock().unwrap().starts.push(spec.task_id.to_string());
        if let Some(reason) = self.refuse_start.lock().unwrap().clone() {
            return Err(RuntimeError::InvalidSpec(reason));
        }
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        self.hold(spec.task_id.as_str(), &names);
        self.report(&spec.task_id)
    }

    async fn wait(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        loop {
            let changed = self.changed.notified();
            let report = self.report(task)?;
            if report.is_finished() {
                return Ok(report);
            }
            changed.await;
        }
    }

    async fn status(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        self.report(task)
    }

    async fn stop(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        self.calls.lock().unwrap().stops.push(task.to_string());
        if let Some(containers) = self.tasks.lock().unwrap().get_mut(task.as_str()) {
            for c in containers.iter_mut().filter(|c| !c.state.is_done()) {
                c.state = exited(143);
            }
        }
        self.report(task)
    }

    async fn recover(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        self.calls.lock().unwrap().recovers.push(task.to_string());
        self.report(task)
    }

    async fn stats(&self, task: &TaskId) -> Result<TaskStats, RuntimeError> {
        self.report(task).map(|_| TaskStats { task: Usage::default(), containers: Vec::new() })
    }

    async fn remove(&self, task: &TaskId) -> Result<(), RuntimeError> {
        self.calls.lock().unwrap().removes.push(task.to_string());
        self.tasks.lock().unwrap().remove(task.as_str());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<TaskId>, RuntimeError> {
        Ok(self.tasks.lock().unwrap().keys().map(|k| TaskId::new(k.clone()).unwrap()).collect())
    }

    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Sandbox
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { rootfs: RootfsForm::Layers, network: NetworkForm::Netns }
    }

    fn logs(&self, task: &TaskId, container: &str) -> LogPaths {
        let dir = self.dir.join(task.as_str()).join(container);
        LogPaths { stdout: dir.join("stdout.log"), stderr: dir.join("stderr.log") }
    }
}

/// A store, an image store with one imported image, the runtime double
/// and a task definition of two containers.
struct World {
    _dir: tempfile::TempDir,
    stores: Stores,
    store: Arc<dyn Store>,
    images: Arc<ImageStore>,
    runtime: Arc<FakeRuntime>,
    definition: TaskDefinition,
    account: Account,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stores = berth_store::open(&format!("sqlite://{}", dir.path().join("berth.db").display())).await.unwrap();
        let store = stores.records.clone();
        let config = ImageStoreConfig { max_age_secs: 86_400, ..ImageStoreConfig::default() };
        let images = Arc::new(ImageStore::open(dir.path().join("images"), config).unwrap());
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::write(rootfs.join("bin/app"), "#!/bin/sh\n").unwrap();
        images.import_dir(&rootfs, IMAGE).await.unwrap();
        let runtime = Arc::new(FakeRuntime::new(dir.path().join("logs")));
        let containers = ["main", "side"]
            .map(|name| ContainerDefinition { name: Some(name.into()), image: Some(IMAGE.into()), ..Default::default() });
        let record = store
            .register_task_definition("app", &|revision| TaskDefinitionRecord {
                definition: TaskDefinition {
                    family: Some("app".into()),
                    revision: Some(revision),
                    task_definition_arn: Some(format!("arn:aws:ecs:us-east-1:000000000000:task-definition/app:{revision}")),
                    cpu: Some("256".into()),
                    memory: Some("512".into()),
                    container_definitions: Some(containers.to_vec()),
                    ..Default::default()
                },
                tags: Vec::new(),
            })
            .await
            .unwrap();
        let account = Account { region: "us-east-1".into(), account_id: "000000000000".into() };
        Self { _dir: dir, stores, store, images, runtime, definition: record.value.definition, account }
    }

    /// A fresh agent (as after a restart) on the same store and runtime.
    async fn agent(&self) -> Arc<Agent> {
        let node = Node {
            id: NODE.into(),
            zone: "us-east-1a".into(),
            cpu: 4096,
            memory: 8192,
            status: NodeStatus::Active,
            spot_cpu: 0,
            spot_memory: 0,
            heartbeat_at: 0,
        };
        let config = AgentConfig {
            node,
            poll_interval: Duration::from_secs(1),
            log_bytes_per_second: berth_agent::logs::DEFAULT_BYTES_PER_SECOND,
            usage: berth_agent::usage::UsageConfig::default(),
        };
        let agent = Arc::new(Agent::new(self.stores.clone(), self.images.clone(), self.runtime.clone(), config));
        agent.register().await.unwrap();
        agent
    }

    /// A task placed on the node, in `status` (reached through the lifecycle).
    async fn task(&self, id: &str, path: &[TaskEvent]) -> Task {
        let mut task = build(NewTask::plain(&self.account, "default", id, &self.definition, 1.0)).unwrap();
        task.node_id = Some(NODE.into());
        task.apply_all(path).unwrap();
        self.store.put_task(&task, None).await.unwrap();
        task
    }

    async fn get(&self, task: &Task) -> Task {
        self.store.get_task(&task.arn.to_string()).await.unwrap().unwrap().value
    }

    /// Runs agent passes until `done` holds for the task (at most a minute).
    async fn until(&self, agent: &Agent, task: &Task, done: impl Fn(&Task) -> bool) -> Task {
        for _ in 0..600 {
            agent.pass().await.unwrap();
            let now = self.get(task).await;
            if done(&now) {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("task never got there: {:#?}", self.get(task).await);
    }

    async fn stopped(&self, agent: &Agent, task: &Task) -> Task {
        self.until(agent, task, |t| t.status() == TaskStatus::Stopped).await
    }
}

const ID: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn a_task_runs_and_an_essential_exit_stops_it() {
    let w = World::new().await;
    let agent = w.agent().await;
    let task = w.task(ID, &[]).await;
    let running = w.until(&agent, &task, |t| t.status() == TaskStatus::Running).await;
    assert!(running.containers.iter().all(|c| c.status() == ContainerStatus::Running), "{running:#?}");
    assert!(running.times.started_at.is_some() && running.times.pull_stopped_at.is_some());

    w.runtime.exit(ID, "main", 3);
    let t = w.stopped(&agent, &task).await;
    let stop = t.stop.as_ref().unwrap();
    assert_eq!((stop.code, stop.reason.as_str()), (StopCode::EssentialContainerExited, "Essential container in task exited"));
    let main = t.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!((main.status(), main.exit_code), (ContainerStatus::Stopped, Some(3)));
    let side = t.containers.iter().find(|c| c.name == "side").unwrap();
    assert_eq!((side.status(), side.exit_code), (ContainerStatus::Stopped, Some(143)), "the others were stopped");
    assert!(t.times.stopped_at.is_some() && t.times.execution_stopped_at.is_some());
    let calls = w.runtime.calls.lock().unwrap();
    assert_eq!((calls.starts.len(), calls.removes.len()), (1, 1), "started once, its state removed");
    assert!(w.runtime.tasks.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_start_failure_is_task_failed_to_start() {
    let w = World::new().await;
    *w.runtime.refuse_start.lock().unwrap() = Some("no such binary".into());
    let agent = w.agent().await;
    let task = w.task(ID, &[]).await;
    let t = w.stopped(&agent, &task).await;
    let stop = t.stop.as_ref().unwrap();
    assert_eq!(stop.code, StopCode::TaskFailedToStart);
    assert!(stop.reason.starts_with("CannotStartContainerError: ") && stop.reason.contains("no such binary"), "{stop:?}");
    assert!(t.containers.iter().all(|c| c.status() == ContainerStatus::Stopped && c.reason.as_deref() == Some(stop.reason.as_str())));
    assert_eq!(t.times.started_at, None, "it never started");
    assert_eq!(w.runtime.calls.lock().unwrap().starts.len(), 1, "no retry loop after a refused start");
}

/// StopTask in every live state: the task reaches STOPPED with the user's
/// reason, containers that were started are stopped, and nothing of it is
/// left in the runtime.
#[tokio::test]
async fn stop_task_in_every_state() {
    use TaskEvent as E;
    let cases: [(TaskStatus, &[E], bool); 7] = [
        (TaskStatus::Provisioning, &[], false),
        (TaskStatus::Pending, &[E::Provisioned], false),
        (TaskStatus::Activating, &[E::Provisioned, E::ContainersStarted], true),
        (TaskStatus::Running, &[E::Provisioned, E::ContainersStarted, E::Activated], true),
        (TaskStatus::Deactivating, &[E::Provisioned, E::ContainersStarted, E::StopRequested], true),
        (TaskStatus::Stopping, &[E::Provisioned, E::StopRequested], false),
        (TaskStatus::Deprovisioning, &[E::StopRequested], false),
    ];
    let w = World::new().await;
    let agent = w.agent().await;
    for (i, (status, path, started)) in cases.into_iter().enumerate() {
        let id = format!("{i:032x}");
        let mut task = w.task(&id, path).await;
        assert_eq!(task.status(), status);
        if started {
            w.runtime.hold(&id, &["main", "side"]);
        }
        // StopTask, as the API writes it.
        let current = w.store.get_task(&task.arn.to_string()).await.unwrap().unwrap();
        task = current.value;
        task.request_stop(StopCode::UserInitiated, "Task stopped by user", 2.0);
        w.store.put_task(&task, Some(current.version)).await.unwrap();

        let t = w.stopped(&agent, &task).await;
        let stop = t.stop.as_ref().unwrap();
        assert_eq!((stop.code, stop.reason.as_str()), (StopCode::UserInitiated, "Task stopped by user"), "{status}");
        assert!(t.containers.iter().all(|c| c.status() == ContainerStatus::Stopped), "{status}: {t:#?}");
        let calls = w.runtime.calls.lock().unwrap();
        if started {
            assert!(calls.stops.contains(&id), "{status}: its running containers were stopped");
        }
        assert!(!calls.starts.contains(&id), "{status}: a task wanted stopped is never started");
        assert!(!w.runtime.tasks.lock().unwrap().contains_key(&id), "{status}: runtime state left");
    }
}

/// An agent killed in the middle of PROVISIONING left the task there; the
/// next agent provisions and starts it, once.
#[tokio::test]
async fn a_restarted_agent_finishes_provisioning() {
    let w = World::new().await;
    let task = w.task(ID, &[]).await;
    drop(w.agent().await); // registered the node, then went away
    let agent = w.agent().await;
    let t = w.until(&agent, &task, |t| t.status() == TaskStatus::Running).await;
    assert!(t.times.connectivity_at.is_some());
    assert_eq!(w.runtime.calls.lock().unwrap().starts, [ID], "started exactly once");
}

/// An agent killed after the runtime started the containers but before it
/// wrote ACTIVATING: the next agent re-attaches instead of starting them
/// again, and later looks only ask for the status.
#[tokio::test]
async fn a_restarted_agent_reattaches_instead_of_starting_again() {
    let w = World::new().await;
    let task = w.task(ID, &[TaskEvent::Provisioned]).await;
    w.runtime.hold(ID, &["main", "side"]);
    let agent = w.agent().await;
    let t = w.until(&agent, &task, |t| t.status() == TaskStatus::Running).await;
    assert!(t.containers.iter().all(|c| c.status() == ContainerStatus::Running));
    // Some polls later, still one re-attach.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    agent.pass().await.unwrap();
    {
        let calls = w.runtime.calls.lock().unwrap();
        assert!(calls.starts.is_empty(), "the containers were not started twice");
        assert_eq!(calls.recovers, [ID], "recover only to re-attach, not as the status poll");
    }
    w.runtime.exit(ID, "side", 0);
    let t = w.stopped(&agent, &task).await;
    assert_eq!(t.stop.as_ref().unwrap().code, StopCode::EssentialContainerExited);
}

/// A task whose state the node lost (no runtime state for a RUNNING task,
/// as after a reboot) stops as failed instead of waiting forever.
#[tokio::test]
async fn a_task_whose_containers_are_gone_fails() {
    let w = World::new().await;
    let task = w.task(ID, &[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated]).await;
    let agent = w.agent().await;
    let t = w.stopped(&agent, &task).await;
    let stop = t.stop.as_ref().unwrap();
    assert_eq!(stop.code, StopCode::TaskFailedToStart);
    assert!(stop.reason.contains("state was lost"), "{stop:?}");
}

/// A task recorded for another backend (a micro-VM, by the node that
/// provisioned it) is never run by this node's sandbox: it fails to
/// start, saying why.
#[tokio::test]
async fn a_task_for_another_runtime_is_not_run_here() {
    let w = World::new().await;
    let mut task = build(NewTask::plain(&w.account, "default", ID, &w.definition, 1.0)).unwrap();
    task.node_id = Some(NODE.into());
    task.apply(berth_model::lifecycle::TaskEvent::Provisioned).unwrap();
    task.runtime = berth_model::task::RuntimeKind::Microvm;
    w.store.put_task(&task, None).await.unwrap();
    let agent = w.agent().await;
    let t = w.stopped(&agent, &task).await;
    let stop = t.stop.as_ref().unwrap();
    assert_eq!(stop.code, StopCode::TaskFailedToStart);
    assert!(stop.reason.contains("no microvm runtime"), "{stop:?}");
    assert!(w.runtime.calls.lock().unwrap().starts.is_empty());
}
