//! The awslogs log driver: each container's stdout and stderr, line by
//! line, into CloudWatch Logs — group `awslogs-group`, stream
//! `awslogs-stream-prefix/CONTAINER/TASK-ID` — through the store, so the
//! Logs API (and PostgreSQL, for fleets) serves them.
//!
//! Containers write straight to files (`TaskRuntime::logs`); nothing
//! copies their output while they run, so it survives agent and shim
//! restarts. The shipper tails those files: every [`POLL`] each task's
//! tailer reads what is new, cuts it into events (one per line; lines
//! over 262,118 bytes split; a last line without its newline waits for
//! it, or for the container to be done), stamps them with the time they
//! were read (ms since the epoch, never going back within a stream), and
//! appends them with `put_log_events` in batches of at most 10,000 events
//! and 1 MiB. stdout and stderr share the stream: each keeps its order,
//! and what is read in one step is stdout's lines, then stderr's.
//!
//! **Nothing is lost.** After every append the offsets shipped so far are
//! written next to the output (`containers/NAME/awslogs.json`); a
//! restarted agent resumes from them, and the last step before the task
//! dir is removed ships everything left, the unfinished last line too.
//! A crash between an append and its offsets write ships that one batch
//! again on restart: at most one batch per stream is duplicated, never is
//! one lost — within the task's shipping budget ([`budget`]: lines past
//! it are dropped and told in the stream) and the runtime's cap on the
//! files (a file rotated while the tailer is behind loses what it had not
//! read; a file shorter than its offset is read again from its start).
//!
//! The driver calls in three places, once each:
//! - [`Shipper::resume`] when it takes a task up (also after an agent
//!   restart): starts the task's tailer;
//! - [`Shipper::prepare`] at PENDING, before containers start: creates
//!   the group (`awslogs-create-group: "true"`) or fails the task with
//!   ECS's reason if it is missing, and creates the streams;
//! - [`Shipper::finish`] at DEPROVISIONING, before the runtime deletes
//!   the files: the final flush.
//!
//! Idle cost: a tailer's step is two `fstat`s per container. Measured
//! with 100 tasks polled every 200 ms, the agent spends about 0.3% of one
//! core on it (`idle_polling_is_cheap` below), so a short poll is kept
//! over inotify and its watches.

mod budget;
mod config;
mod lines;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_model::lifecycle::TaskStatus;
use berth_runtime_api::{TaskId, TaskRuntime};
use berth_store::StoreError;

use crate::plane::{NodeControlPlane, PlaneError};
use berth_wire::ecs::TaskDefinition;

pub use budget::{Budget, DEFAULT_BYTES_PER_SECOND};
pub use config::{Destination, GROUP_MISSING, destination, destinations};
pub use lines::MAX_MESSAGE_BYTES;
use stream::{ContainerLog, ensure_stream};
pub use stream::{OFFSETS_FILE, Offsets};

/// How often a task's tailer looks for new output.
pub const POLL: Duration = Duration::from_millis(200);

/// Ships the output of this node's tasks whose containers use awslogs.
pub struct Shipper {
    /// Where the tasks and their definitions (the awslogs options) are
    /// read, and where their output goes.
    plane: Arc<dyn NodeControlPlane>,
    runtime: Arc<dyn TaskRuntime>,
    poll: Duration,
    /// Every tailer steps at `epoch + n * poll`, so one wake-up serves all.
    epoch: tokio::time::Instant,
    /// The tasks being shipped, by task id.
    tails: Mutex<HashMap<String, Arc<Tail>>>,
    /// Each task's shipping budget, bytes per second.
    bytes_per_second: u64,
}

/// One task's streams, and whether its final flush has begun.
struct Tail {
    streams: tokio::sync::Mutex<Streams>,
    finishing: AtomicBool,
}

/// A task's streams and the budget they share.
struct Streams {
    logs: Vec<ContainerLog>,
    budget: Budget,
}

impl Shipper {
    pub fn new(plane: Arc<dyn NodeControlPlane>, runtime: Arc<dyn TaskRuntime>) -> Self {
        Self::with_poll(plane, runtime, POLL)
    }

    pub fn with_poll(plane: Arc<dyn NodeControlPlane>, runtime: Arc<dyn TaskRuntime>, poll: Duration) -> Self {
        Self {
            plane,
            runtime,
            poll,
            epoch: tokio::time::Instant::now(),
            tails: Mutex::default(),
            bytes_per_second: DEFAULT_BYTES_PER_SECOND,
        }
    }

    /// Each task ships at most `bytes_per_second` (CloudWatch's bytes: a
    /// message's UTF-8 plus 26 per event); lines past it are dropped and
    /// counted.
    pub fn with_budget(mut self, bytes_per_second: u64) -> Self {
        self.bytes_per_second = bytes_per_second;
        self
    }

    /// PENDING, before the containers start: makes every awslogs
    /// container's group (if asked to) and stream. Returns why the task
    /// cannot start — ECS's reason — if a group is missing or the options
    /// are unusable.
    pub async fn prepare(&self, task: &TaskId, definition: &TaskDefinition) -> Result<Option<String>, StoreError> {
        let dests = match destinations(definition, task.as_str()) {
            Ok(d) => d,
            Err(reason) => return Ok(Some(reason)),
        };
        for dest in &dests {
            if let Some(reason) = ensure_stream(self.plane.as_ref(), dest).await? {
                tracing::info!(task = %task, group = %dest.group, "log group missing; the task cannot start");
                return Ok(Some(reason.to_owned()));
            }
        }
        Ok(None)
    }

    /// PENDING, before [`LogShipper::prepare`]: with an execution role
    /// Berth writes a task's awslogs as that role, as ECS does, so its
    /// policies must allow `logs:CreateLogGroup` (with
    /// `awslogs-create-group`), `logs:CreateLogStream` and
    /// `logs:PutLogEvents` on the stream. Returns ECS's reason when they do
    /// not. Without an execution role Berth ships anyway (ECS refuses such
    /// a Fargate definition: a documented divergence).
    pub async fn authorize(
        &self,
        task: &TaskId,
        definition: &TaskDefinition,
        account: &berth_model::Account,
    ) -> Result<Option<String>, StoreError> {
        let Some(role) = definition.execution_role_arn.as_deref() else { return Ok(None) };
        // Unusable options are prepare's to tell.
        let Ok(dests) = destinations(definition, task.as_str()) else { return Ok(None) };
        for dest in &dests {
            let group = format!("arn:aws:logs:{}:{}:log-group:{}:log-stream:", account.region, account.account_id, dest.group);
            let stream = format!("{group}{}", dest.stream);
            let creating = "create stream has been retried 1 times: failed to create Cloudwatch log stream";
            let asks = [
                dest.create_group.then_some(("logs:CreateLogGroup", &group, "failed to create Cloudwatch log group")),
                Some(("logs:CreateLogStream", &stream, creating)),
                Some(("logs:PutLogEvents", &stream, "failed to put log events to Cloudwatch")),
            ];
            for (action, resource, what) in asks.into_iter().flatten() {
                match self.plane.role_may(role, task.as_str(), action, resource).await {
                    Ok(()) => {}
                    Err(PlaneError::Refused(why)) => {
                        return Ok(Some(format!(
                            "ResourceInitializationError: failed to validate logger args: {what}: \
                             AccessDeniedException: {why} : exit status 1"
                        )));
                    }
                    Err(PlaneError::Store(e)) => return Err(e),
                }
            }
        }
        Ok(None)
    }

    /// Starts shipping the task's output if it uses awslogs and is not
    /// being shipped already (idempotent). Output written while no agent
    /// ran is shipped from where the last one stopped.
    pub async fn resume(&self, arn: &str, task: &TaskId) -> Result<(), StoreError> {
        if self.get(task).is_some() {
            return Ok(());
        }
        let Some(tail) = self.open(arn, task).await? else { return Ok(()) };
        let tail = {
            let mut tails = self.tails.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if tails.contains_key(task.as_str()) {
                return Ok(());
            }
            tails.insert(task.as_str().to_owned(), tail.clone());
            tail
        };
        let poll = self.poll.max(Duration::from_millis(1));
        let steps = self.epoch.elapsed().as_nanos() / poll.as_nanos() + 1;
        let start = self.epoch + poll * u32::try_from(steps).unwrap_or(u32::MAX);
        let tick = tokio::time::interval_at(start, poll);
        tokio::spawn(follow(tail, self.plane.clone(), self.runtime.clone(), task.clone(), tick));
        Ok(())
    }

    /// DEPROVISIONING, before the runtime deletes the task's files: ships
    /// everything left, a last line without its newline too. On a store
    /// error nothing is lost: call again.
    pub async fn finish(&self, arn: &str, task: &TaskId) -> Result<(), StoreError> {
        let tail = match self.get(task) {
            Some(t) => t,
            None => match self.open(arn, task).await? {
                Some(t) => t,
                None => return Ok(()),
            },
        };
        tail.finishing.store(true, Ordering::SeqCst);
        {
            // Waits for a step the tailer is taking; it takes no more.
            let mut streams = tail.streams.lock().await;
            let Streams { logs, budget } = &mut *streams;
            for s in logs.iter_mut() {
                s.ship(self.plane.as_ref(), budget, true).await?;
            }
        }
        self.tails.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(task.as_str());
        Ok(())
    }

    fn get(&self, task: &TaskId) -> Option<Arc<Tail>> {
        self.tails.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(task.as_str()).cloned()
    }

    /// The task's streams, from its definition; `None` if no container
    /// uses awslogs (or the definition is gone, or its options are
    /// unusable — then the task never started — or the task is STOPPED).
    async fn open(&self, arn: &str, task: &TaskId) -> Result<Option<Arc<Tail>>, StoreError> {
        let Some(record) = self.plane.task(arn).await? else { return Ok(None) };
        if record.value.status() == TaskStatus::Stopped {
            return Ok(None); // shipped and removed already
        }
        let Some(definition) = self.plane.task_definition(&record.value.definition_arn).await? else { return Ok(None) };
        let dests = destinations(&definition, task.as_str()).unwrap_or_default();
        if dests.is_empty() {
            return Ok(None);
        }
        let logs = dests
            .into_iter()
            .map(|d| {
                let paths = self.runtime.logs(task, &d.container);
                ContainerLog::open(d, &paths)
            })
            .collect();
        let streams = Streams { logs, budget: Budget::new(self.bytes_per_second, std::time::Instant::now()) };
        Ok(Some(Arc::new(Tail { streams: tokio::sync::Mutex::new(streams), finishing: AtomicBool::new(false) })))
    }
}

/// A task's tailer: a step every tick until the final flush takes over.
async fn follow(
    tail: Arc<Tail>,
    logs: Arc<dyn NodeControlPlane>,
    runtime: Arc<dyn TaskRuntime>,
    task: TaskId,
    mut tick: tokio::time::Interval,
) {
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut streams = tail.streams.lock().await;
        if tail.finishing.load(Ordering::SeqCst) {
            return;
        }
        // A line without its newline is shipped once its container is
        // done; ask the runtime only while such a line waits.
        let Streams { logs: streams, budget } = &mut *streams;
        let exited: Vec<String> = if streams.iter().any(|s| s.partial) {
            match runtime.status(&task).await {
                Ok(status) => status.containers.into_iter().filter(|c| c.state.is_done()).map(|c| c.name).collect(),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        for s in streams.iter_mut() {
            let done = exited.contains(&s.dest.container);
            // Failures are logged by the stream and retried on the next step.
            let _ = s.ship(logs.as_ref(), budget, done).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write as _;
    use std::path::PathBuf;
    use std::time::Instant;

    use berth_model::records::TaskDefinitionRecord;
    use berth_model::task::NewTask;
    use berth_runtime_api::{
        Capabilities, ContainerReport, ContainerState, LogPaths, NetworkForm, RootfsForm, RuntimeError, RuntimeKind, TaskReport, TaskSpec,
        TaskStats,
    };
    use berth_store::{Direction, EventRange, LogGroupRecord, LogStore, Store, StreamPosition};
    use berth_model::lifecycle::TaskEvent;
    use berth_wire::ecs::{ContainerDefinition, LogConfiguration, LogDriver};

    use super::*;

    /// Output files under a directory laid out as the sandbox runtime's,
    /// and containers that run until `exit` names them.
    struct FakeRuntime {
        dir: PathBuf,
        exited: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl TaskRuntime for FakeRuntime {
        async fn start(&self, spec: &TaskSpec) -> Result<TaskReport, RuntimeError> {
            Err(RuntimeError::TaskNotFound(spec.task_id.to_string()))
        }
        async fn wait(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
            Err(RuntimeError::TaskNotFound(task.to_string()))
        }
        async fn status(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
            let exited = self.exited.lock().unwrap().clone();
            let containers = std::fs::read_dir(self.dir.join(task.as_str()).join("containers"))
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|name| ContainerReport {
                    state: if exited.contains(&name) {
                        ContainerState::Lost
                    } else {
                        ContainerState::Running { pid: 1 }
                    },
                    name,
                    essential: true,
                    health: None,
                })
                .collect();
            Ok(TaskReport { task_id: task.clone(), containers })
        }
        async fn stop(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
            Err(RuntimeError::TaskNotFound(task.to_string()))
        }
        async fn recover(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
            Err(RuntimeError::TaskNotFound(task.to_string()))
        }
        async fn stats(&self, task: &TaskId) -> Result<TaskStats, RuntimeError> {
            Err(RuntimeError::TaskNotFound(task.to_string()))
        }
        async fn remove(&self, _: &TaskId) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<TaskId>, RuntimeError> {
            Ok(Vec::new())
        }
        fn kind(&self) -> RuntimeKind {
            RuntimeKind::Sandbox
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities { rootfs: RootfsForm::Layers, network: NetworkForm::Netns }
        }
        fn logs(&self, task: &TaskId, container: &str) -> LogPaths {
            let dir = self.dir.join(task.as_str()).join("containers").join(container);
            LogPaths { stdout: dir.join("stdout.log"), stderr: dir.join("stderr.log") }
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        logs: Arc<dyn LogStore>,
        runtime: Arc<FakeRuntime>,
    }

    impl World {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let stores =
                berth_store::open(&format!("sqlite://{}", dir.path().join("berth.db").display())).await.unwrap();
            let runtime = Arc::new(FakeRuntime { dir: dir.path().join("tasks"), exited: Mutex::default() });
            Self { _dir: dir, store: stores.records, logs: stores.logs, runtime }
        }

        fn plane(&self) -> Arc<dyn NodeControlPlane> {
            let stores = berth_store::Stores { records: self.store.clone(), logs: self.logs.clone() };
            Arc::new(crate::plane::StorePlane::new(stores))
        }

        fn shipper(&self) -> Shipper {
            Shipper::with_poll(self.plane(), self.runtime.clone(), Duration::from_millis(20))
        }

        /// A task (stored, with its definition) whose containers log with
        /// these awslogs options.
        async fn task(&self, id: &str, containers: &[(&str, &[(&str, &str)])]) -> (String, TaskId, TaskDefinition) {
            let definitions: Vec<ContainerDefinition> = containers
                .iter()
                .map(|(name, options)| ContainerDefinition {
                    name: Some((*name).to_owned()),
                    log_configuration: Some(LogConfiguration {
                        log_driver: LogDriver::Awslogs,
                        options: Some(options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                        secret_options: None,
                    }),
                    ..Default::default()
                })
                .collect();
            let family = format!("fam-{id}");
            let record = self
                .store
                .register_task_definition(&family, &|revision| TaskDefinitionRecord {
                    definition: TaskDefinition {
                        family: Some(family.clone()),
                        revision: Some(revision),
                        task_definition_arn: Some(format!(
                            "arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:{revision}"
                        )),
                        container_definitions: Some(definitions.clone()),
                        cpu: Some("256".into()),
                        memory: Some("512".into()),
                        ..Default::default()
                    },
                    tags: Vec::new(),
                })
                .await
                .unwrap();
            let definition = record.value.definition;
            let account = berth_model::Account { region: "us-east-1".into(), account_id: "000000000000".into() };
            let task = berth_model::task::build(NewTask::plain(&account, "default", id, &definition, 0.0)).unwrap();
            let arn = task.arn.to_string();
            self.store.put_task(&task, None).await.unwrap();
            (arn, TaskId::new(id).unwrap(), definition)
        }

        fn write(&self, task: &TaskId, container: &str, stderr: bool, bytes: &[u8]) {
            let paths = self.runtime.logs(task, container);
            let path = if stderr { paths.stderr } else { paths.stdout };
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(bytes).unwrap();
        }

        async fn events(&self, group: &str, stream: &str) -> Vec<String> {
            let mut out = Vec::new();
            let mut from = StreamPosition::START;
            loop {
                let range = EventRange {
                    start_time: None,
                    end_time: None,
                    direction: Direction::Forward,
                    from,
                    limit: 10_000,
                    max_bytes: u64::MAX,
                };
                let page = self.logs.read_log_events(group, stream, &range).await.unwrap();
                let Some(last) = page.last() else { return out };
                from = last.position_after();
                out.extend(page.into_iter().map(|e| e.message));
            }
        }

        /// Waits (up to 10 s) until the stream holds `n` events.
        async fn wait_for(&self, group: &str, stream: &str, n: usize) -> Vec<String> {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let events = self.events(group, stream).await;
                if events.len() >= n || Instant::now() > deadline {
                    return events;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        async fn group(&self, name: &str) {
            let group = LogGroupRecord {
                name: name.into(),
                created_at: 0,
                retention_days: None,
                class: "STANDARD".into(),
                stored_bytes: 0,
            };
            self.logs.create_log_group(&group).await.unwrap();
        }
    }

    const OPTS: &[(&str, &str)] = &[("awslogs-group", "/ecs/app"), ("awslogs-stream-prefix", "ecs")];

    #[tokio::test]
    async fn lines_reach_the_stream_in_order_and_the_unfinished_last_one_at_finish() {
        let w = World::new().await;
        w.group("/ecs/app").await;
        let (arn, id, definition) = w.task("t1", &[("main", OPTS)]).await;
        let shipper = w.shipper();
        assert_eq!(shipper.prepare(&id, &definition).await.unwrap(), None);
        assert!(w.logs.get_log_stream("/ecs/app", "ecs/main/t1").await.unwrap().is_some(), "prepare makes the stream");
        shipper.resume(&arn, &id).await.unwrap();
        w.write(&id, "main", false, b"one\ntwo\n");
        w.write(&id, "main", true, b"oops\n");
        w.write(&id, "main", false, b"thr");
        assert_eq!(w.wait_for("/ecs/app", "ecs/main/t1", 3).await, ["one", "two", "oops"]);
        w.write(&id, "main", false, b"ee\nfour");
        assert_eq!(w.wait_for("/ecs/app", "ecs/main/t1", 4).await, ["one", "two", "oops", "three"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(w.events("/ecs/app", "ecs/main/t1").await.len(), 4, "a line without its newline waits");
        shipper.finish(&arn, &id).await.unwrap();
        assert_eq!(w.events("/ecs/app", "ecs/main/t1").await, ["one", "two", "oops", "three", "four"]);
        let offsets: Offsets = serde_json::from_slice(
            &std::fs::read(w.runtime.logs(&id, "main").stdout.with_file_name(OFFSETS_FILE)).unwrap(),
        )
        .unwrap();
        assert_eq!(offsets, Offsets { stdout: 18, stderr: 5 });
        // Finishing again (a retry after a crash) ships nothing twice.
        shipper.finish(&arn, &id).await.unwrap();
        assert_eq!(w.events("/ecs/app", "ecs/main/t1").await.len(), 5);
    }

    /// `[berth] dropped N lines (M bytes) …` → (N, M).
    fn dropped(notice: &str) -> Option<(u64, u64)> {
        let rest = notice.strip_prefix("[berth] dropped ")?;
        let (n, rest) = rest.split_once(" lines (")?;
        let (m, _) = rest.split_once(" bytes)")?;
        Some((n.parse().ok()?, m.parse().ok()?))
    }

    #[tokio::test]
    async fn a_flood_ships_within_the_budget_and_tells_what_it_dropped() {
        const RATE: u64 = 300_000;
        let w = World::new().await;
        w.group("/ecs/app").await;
        let (arn, id, definition) = w.task("t9", &[("main", OPTS)]).await;
        let shipper = w.shipper().with_budget(RATE);
        shipper.prepare(&id, &definition).await.unwrap();
        let started = Instant::now();
        shipper.resume(&arn, &id).await.unwrap();
        // 20 MiB of 100-byte lines (99 and the newline), written at once.
        let line = format!("{}\n", "y".repeat(99));
        let lines = 20 * (1 << 20) / line.len();
        w.write(&id, "main", false, line.repeat(lines).as_bytes());
        shipper.finish(&arn, &id).await.unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        let events = w.events("/ecs/app", "ecs/main/t9").await;
        let (notices, shipped): (Vec<_>, Vec<_>) = events.iter().partition(|e| e.starts_with("[berth]"));
        let shipped_bytes: u64 = shipped.iter().map(|m| budget::cost(m)).sum();
        // A full bucket (a second's budget) at the start, then the rate.
        assert!(
            shipped_bytes as f64 <= RATE as f64 * (elapsed + 1.0),
            "{shipped_bytes} bytes shipped in {elapsed:.2} s at {RATE} bytes/s"
        );
        assert!(shipped.len() >= 2_000, "the budget's worth is shipped: {}", shipped.len());
        assert!(!notices.is_empty(), "the drop is told in the stream");
        let (mut n, mut m) = (0, 0);
        for notice in &notices {
            let (a, b) = dropped(notice).unwrap();
            assert!(notice.ends_with("over the shipping limit of 300000 bytes/s"), "{notice}");
            n += a;
            m += b;
        }
        assert_eq!(n as usize + shipped.len(), lines, "every line is shipped or counted");
        assert_eq!(m, n * budget::cost(&line[..99]));
        let offsets: Offsets = serde_json::from_slice(
            &std::fs::read(w.runtime.logs(&id, "main").stdout.with_file_name(OFFSETS_FILE)).unwrap(),
        )
        .unwrap();
        assert_eq!(offsets.stdout as usize, lines * line.len(), "the tailer moved past what it dropped");
    }

    #[tokio::test]
    async fn a_file_truncated_by_the_runtime_is_shipped_again_from_its_start() {
        let w = World::new().await;
        w.group("/ecs/app").await;
        let (arn, id, definition) = w.task("t10", &[("main", OPTS)]).await;
        let shipper = w.shipper();
        shipper.prepare(&id, &definition).await.unwrap();
        shipper.resume(&arn, &id).await.unwrap();
        w.write(&id, "main", false, b"before one\nbefore two\n");
        w.wait_for("/ecs/app", "ecs/main/t10", 2).await;
        // As the runtime caps the file: copy, then truncate in place.
        let path = w.runtime.logs(&id, "main").stdout;
        std::fs::copy(&path, path.with_extension("log.1")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        w.write(&id, "main", false, b"after\n");
        assert_eq!(w.wait_for("/ecs/app", "ecs/main/t10", 3).await, ["before one", "before two", "after"]);
        shipper.finish(&arn, &id).await.unwrap();
        assert_eq!(w.events("/ecs/app", "ecs/main/t10").await.len(), 3);
    }

    #[test]
    fn after_a_restart_shipping_resumes_where_it_stopped() {
        let rt = || tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let first = rt();
        let w = first.block_on(World::new());
        let (arn, id, _) = first.block_on(async {
            w.group("/ecs/app").await;
            let task = w.task("t2", &[("main", OPTS), ("side", OPTS)]).await;
            let shipper = w.shipper();
            shipper.prepare(&task.1, &task.2).await.unwrap();
            shipper.resume(&task.0, &task.1).await.unwrap();
            w.write(&task.1, "main", false, b"1\n2\n");
            w.write(&task.1, "side", false, b"a\n");
            w.wait_for("/ecs/app", "ecs/main/t2", 2).await;
            w.wait_for("/ecs/app", "ecs/side/t2", 1).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            task
        });
        // The agent dies (its tasks and timers with it) while the
        // containers keep writing.
        let (store, logs) = (w.store.clone(), w.logs.clone());
        drop(first);
        w.write(&id, "main", false, b"3\n4");
        w.write(&id, "side", true, b"b\n");
        let second = rt();
        second.block_on(async {
            let w = World { store, logs, ..w };
            let shipper = w.shipper();
            shipper.resume(&arn, &id).await.unwrap();
            assert_eq!(w.wait_for("/ecs/app", "ecs/main/t2", 3).await, ["1", "2", "3"]);
            assert_eq!(w.wait_for("/ecs/app", "ecs/side/t2", 2).await, ["a", "b"]);
            shipper.finish(&arn, &id).await.unwrap();
            assert_eq!(w.events("/ecs/app", "ecs/main/t2").await, ["1", "2", "3", "4"]);
            assert_eq!(w.events("/ecs/app", "ecs/side/t2").await, ["a", "b"]);
        });
    }

    #[tokio::test]
    async fn a_missing_group_fails_the_start_unless_it_is_to_be_created() {
        let w = World::new().await;
        let shipper = w.shipper();
        let (_, id, definition) =
            w.task("t3", &[("main", &[("awslogs-group", "nope"), ("awslogs-stream-prefix", "p")])]).await;
        assert_eq!(shipper.prepare(&id, &definition).await.unwrap().as_deref(), Some(GROUP_MISSING));
        let create = &[("awslogs-group", "made"), ("awslogs-stream-prefix", "p"), ("awslogs-create-group", "true")][..];
        let (_, id, definition) = w.task("t4", &[("main", create)]).await;
        assert_eq!(shipper.prepare(&id, &definition).await.unwrap(), None);
        assert!(w.logs.get_log_stream("made", "p/main/t4").await.unwrap().is_some());
        // A group that exists already is fine too (another task made it).
        let (_, id, definition) = w.task("t5", &[("main", create)]).await;
        assert_eq!(shipper.prepare(&id, &definition).await.unwrap(), None);
        let (_, id, definition) = w.task("t6", &[("main", &[])]).await;
        let reason = shipper.prepare(&id, &definition).await.unwrap().unwrap();
        assert!(reason.contains("awslogs-group"), "{reason}");
    }

    #[tokio::test]
    async fn a_stopped_task_gets_no_tailer() {
        let w = World::new().await;
        let (arn, id, _) = w.task("t9", &[("main", OPTS)]).await;
        let shipper = w.shipper();
        let mut record = w.store.get_task(&arn).await.unwrap().unwrap();
        record.value.apply_all(&[TaskEvent::StopRequested, TaskEvent::Deprovisioned]).unwrap();
        w.store.put_task(&record.value, Some(record.version)).await.unwrap();
        shipper.resume(&arn, &id).await.unwrap();
        assert!(shipper.get(&id).is_none());
        let (arn, id, _) = w.task("t10", &[("main", OPTS)]).await;
        shipper.resume(&arn, &id).await.unwrap();
        assert!(shipper.get(&id).is_some());
        shipper.finish(&arn, &id).await.unwrap();
        assert!(shipper.get(&id).is_none(), "finish forgets the task");
    }

    #[tokio::test]
    async fn an_exited_containers_last_line_ships_while_the_task_runs() {
        let w = World::new().await;
        w.group("/ecs/app").await;
        let (arn, id, definition) = w.task("t7", &[("init", OPTS), ("main", OPTS)]).await;
        let shipper = w.shipper();
        shipper.prepare(&id, &definition).await.unwrap();
        shipper.resume(&arn, &id).await.unwrap();
        w.write(&id, "init", false, b"done, no newline");
        w.write(&id, "main", false, b"still going");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(w.events("/ecs/app", "ecs/init/t7").await.is_empty());
        w.runtime.exited.lock().unwrap().push("init".into());
        assert_eq!(w.wait_for("/ecs/app", "ecs/init/t7", 1).await, ["done, no newline"]);
        assert!(w.events("/ecs/app", "ecs/main/t7").await.is_empty(), "main still runs: its line waits");
        shipper.finish(&arn, &id).await.unwrap();
        assert_eq!(w.events("/ecs/app", "ecs/main/t7").await, ["still going"]);
    }

    #[tokio::test]
    async fn much_output_arrives_whole_and_in_order() {
        let w = World::new().await;
        w.group("/ecs/app").await;
        let (arn, id, definition) = w.task("t8", &[("main", OPTS)]).await;
        // 3.1 MiB as CloudWatch counts it, written at once: over the
        // default budget's second (see the flood test), so a larger one.
        let shipper = w.shipper().with_budget(64 << 20);
        shipper.prepare(&id, &definition).await.unwrap();
        shipper.resume(&arn, &id).await.unwrap();
        // 1.6 MiB: several reads and batches, one line longer than an event.
        let mut want: Vec<String> = (0..120_000).map(|i| format!("line {i:06}")).collect();
        let mut out = want.join("\n").into_bytes();
        out.push(b'\n');
        out.extend(vec![b'x'; MAX_MESSAGE_BYTES + 10]);
        out.push(b'\n');
        w.write(&id, "main", false, &out);
        want.push("x".repeat(MAX_MESSAGE_BYTES));
        want.push("x".repeat(10));
        let started = Instant::now();
        let got = w.wait_for("/ecs/app", "ecs/main/t8", want.len()).await;
        eprintln!("{} events shipped in {:?}", got.len(), started.elapsed());
        shipper.finish(&arn, &id).await.unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "events differ from the lines written");
    }

    /// The cost of polling idle tasks, on one thread: 100 tasks whose
    /// output was shipped and that write nothing more.
    #[test]
    fn idle_polling_is_cheap() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let w = World::new().await;
            w.group("/ecs/app").await;
            let shipper = Shipper::new(w.plane(), w.runtime.clone());
            let mut ids = Vec::new();
            for i in 0..100 {
                let (arn, id, definition) = w.task(&format!("idle{i}"), &[("main", OPTS)]).await;
                shipper.prepare(&id, &definition).await.unwrap();
                w.write(&id, "main", false, b"hello\n");
                w.write(&id, "main", true, b"world\n");
                shipper.resume(&arn, &id).await.unwrap();
                ids.push(id);
            }
            w.wait_for("/ecs/app", "ecs/main/idle99", 2).await;
            tokio::time::sleep(POLL * 2).await;
            let (cpu0, t0) = (thread_cpu_ns(), Instant::now());
            tokio::time::sleep(Duration::from_secs(3)).await;
            let share = (thread_cpu_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
            eprintln!("100 idle tasks polled every {POLL:?}: {:.2}% of a core", share * 100.0);
            assert!(share < 0.03, "idle polling costs {:.2}% of a core", share * 100.0);
        });
    }

    /// CPU time of this thread (from the scheduler's statistics).
    fn thread_cpu_ns() -> u64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        s.split_whitespace().next().unwrap().parse().unwrap()
    }
}
