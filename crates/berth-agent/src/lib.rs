//! The node agent. It registers its node (capacity, zone) and keeps it
//! fresh with heartbeats, and it drives every task the scheduler placed on
//! the node through the ECS lifecycle:
//!
//! PROVISIONING → PENDING (pull images) → ACTIVATING (containers started)
//! → RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED,
//!
//! writing each step to the store, so DescribeTasks tells the truth.
//!
//! Level-triggered: each pass reads the store and the runtime as they are
//! and moves every task one step towards what it should be; one driver
//! per task at a time. Containers belong to the runtime's per-task shims,
//! not to the agent: when the agent restarts, it re-attaches to running
//! tasks (`recover`) and records exits that happened while it was away.
//! **An agent restart never stops a task.**

pub mod balancers;
mod capacity;
pub mod credentials;
mod driver;
pub mod logs;
pub mod metadata;
pub mod network;
pub mod plane;
mod spec;
pub mod serve;
mod step;
pub mod usage;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::ImageStore;
use berth_model::node::Node;
use berth_runtime_api::TaskRuntime;
use berth_store::{StoreError, Stores};
use tokio::sync::broadcast;

use crate::plane::NodeControlPlane;

pub use capacity::{HostCapacity, host_capacity};

/// How often the firewall is re-rendered from the store, so that security
/// group changes made through the API reach running tasks.
const FIREWALL_REFRESH: Duration = Duration::from_secs(2);

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node: Node,
    /// How often the agent looks for work without a notice (changes made
    /// by another process), and how often drivers re-read their task.
    pub poll_interval: Duration,
    /// Each task's awslogs shipping budget, bytes per second
    /// ([`logs::DEFAULT_BYTES_PER_SECOND`] by default).
    pub log_bytes_per_second: u64,
    /// How often tasks' usage is sampled and published as CloudWatch
    /// metrics ([`usage`]).
    pub usage: usage::UsageConfig,
}

/// The agent of one node.
pub struct Agent {
    plane: Arc<dyn NodeControlPlane>,
    images: Arc<ImageStore>,
    runtime: Arc<dyn TaskRuntime>,
    config: AgentConfig,
    /// Tasks with a driver running now (one driver per task), and those
    /// whose driver failed, backed off.
    drivers: Arc<Mutex<Drivers>>,
    /// The awslogs driver: ships container output into CloudWatch Logs.
    logs: Arc<logs::Shipper>,
    /// awsvpc networking for the node's tasks.
    network: Option<Arc<network::NodeNetwork>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("store")]
    Store(#[from] StoreError),
}

impl Agent {
    pub fn new(stores: Stores, images: Arc<ImageStore>, runtime: Arc<dyn TaskRuntime>, config: AgentConfig) -> Self {
        Self::on_plane(Arc::new(plane::StorePlane::new(stores)), images, runtime, config)
    }

    /// An agent that talks to the control plane through `plane`.
    pub fn on_plane(
        plane: Arc<dyn NodeControlPlane>,
        images: Arc<ImageStore>,
        runtime: Arc<dyn TaskRuntime>,
        config: AgentConfig,
    ) -> Self {
        let logs = Arc::new(logs::Shipper::new(plane.clone(), runtime.clone()).with_budget(config.log_bytes_per_second));
        Self { plane, images, runtime, config, drivers: Arc::default(), logs, network: None }
    }

    /// Gives the node's tasks awsvpc networking (their own namespace,
    /// interface and address, security groups).
    pub fn with_network(mut self, network: Arc<network::NodeNetwork>) -> Self {
        tokio::spawn(network::refresh_firewall(Arc::downgrade(&network), FIREWALL_REFRESH));
        self.network = Some(network);
        self
    }

    /// Registers the node; call before the API takes RunTask calls.
    pub async fn register(&self) -> Result<(), AgentError> {
        let mut node = self.config.node.clone();
        node.heartbeat_at = now_secs();
        self.plane.heartbeat(&node).await?;
        tracing::info!(node = %node.id, cpu = node.cpu, memory = node.memory, zone = %node.zone, "node registered");
        Ok(())
    }

    /// Runs until `shutdown` resolves. Leaves tasks running when it ends.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heartbeat = 0;
        let mut changes = self.plane.watch_tasks();
        let sampler = tokio::spawn(usage::run(self.plane.clone(), self.runtime.clone(), self.config.node.id.clone(), self.config.usage.clone()));
        loop {
            // A pass on each notice of a task that has no driver yet (a new
            // placement), and every poll interval for what notices miss.
            tokio::select! {
                () = &mut shutdown => break,
                _ = tick.tick() => {}
                notice = changes.recv() => {
                    let mut new = match notice {
                        Ok(notice) => !self.is_active(&notice.key),
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => false,
                    };
                    // Take every notice already queued: one pass serves them all.
                    loop {
                        match changes.try_recv() {
                            Ok(notice) => new |= !self.is_active(&notice.key),
                            Err(broadcast::error::TryRecvError::Lagged(_)) => new = true,
                            Err(_) => break,
                        }
                    }
                    if !new {
                        continue;
                    }
                }
            }
            if now_secs() - last_heartbeat >= 10 {
                match self.register().await {
                    Ok(()) => last_heartbeat = now_secs(),
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "agent pass failed");
            }
        }
        sampler.abort();
        tracing::info!("agent stopped; its tasks keep running");
    }

    /// One pass: starts a driver for every live task on this node that has
    /// none. Drivers end when their task is STOPPED.
    pub async fn pass(&self) -> Result<(), AgentError> {
        for record in self.plane.live_tasks(&self.config.node.id).await? {
            let arn = record.value.arn.to_string();
            if !self.claim(&arn) {
                continue;
            }
            let driver = driver::Driver {
                plane: self.plane.clone(),
                images: self.images.clone(),
                runtime: self.runtime.clone(),
                poll: self.config.poll_interval,
                logs: self.logs.clone(),
                network: self.network.clone(),
            };
            let drivers = self.drivers.clone();
            let handle = tokio::spawn(async move { driver.drive(&arn).await.map(|()| arn.clone()).map_err(|e| (arn, e)) });
            let arn = record.value.arn.to_string();
            tokio::spawn(async move {
                // Joined apart from the driver, so that even a driver that
                // panicked is counted as failed and started again later.
                let outcome = handle.await;
                let mut drivers = drivers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match outcome {
                    Ok(Ok(arn)) => drivers.succeeded(&arn),
                    Ok(Err((arn, e))) => {
                        let retry_in = drivers.failed(&arn);
                        tracing::warn!(task = %arn, error = %e, cause = ?std::error::Error::source(&e), ?retry_in, "task driver failed");
                    }
                    Err(panic) => {
                        let retry_in = drivers.failed(&arn);
                        tracing::error!(task = %arn, error = %panic, ?retry_in, "task driver panicked");
                    }
                }
            });
        }
        Ok(())
    }

    fn is_active(&self, arn: &str) -> bool {
        self.drivers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).running.contains(arn)
    }

    fn claim(&self, arn: &str) -> bool {
        self.drivers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).claim(arn, std::time::Instant::now())
    }
}

/// A failed driver is started again after this backoff (per task,
/// doubling, reset when a driver finishes its task).
const DRIVER_BACKOFF: berth_control::runner::Backoff =
    berth_control::runner::Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) };

/// The agent's drivers: one per task at a time; a failed one waits out
/// its backoff instead of being restarted on every pass.
#[derive(Debug, Default)]
struct Drivers {
    running: HashSet<String>,
    /// Failed drivers: attempts so far, and when the next may start.
    failures: std::collections::HashMap<String, (u32, std::time::Instant)>,
}

impl Drivers {
    /// Whether a driver for `arn` may start now (and is then counted running).
    fn claim(&mut self, arn: &str, now: std::time::Instant) -> bool {
        if self.failures.get(arn).is_some_and(|(_, at)| now < *at) || self.running.contains(arn) {
            return false;
        }
        self.running.insert(arn.to_owned())
    }

    fn succeeded(&mut self, arn: &str) {
        self.running.remove(arn);
        self.failures.remove(arn);
    }

    /// Records a failure; returns how long until the next attempt.
    fn failed(&mut self, arn: &str) -> Duration {
        self.running.remove(arn);
        let entry = self.failures.entry(arn.to_owned()).or_insert((0, std::time::Instant::now()));
        entry.0 += 1;
        let delay = DRIVER_BACKOFF.delay(entry.0);
        entry.1 = std::time::Instant::now() + delay;
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_driver_backs_off_and_a_success_resets_it() {
        let mut d = Drivers::default();
        let t0 = std::time::Instant::now();
        assert!(d.claim("a", t0));
        assert!(!d.claim("a", t0), "one driver per task");
        let first = d.failed("a");
        assert!(!d.claim("a", std::time::Instant::now()), "not again at once");
        let second = {
            assert!(d.claim("a", std::time::Instant::now() + first));
            d.failed("a")
        };
        assert!(second > first, "{second:?} after {first:?}");
        assert!(d.claim("a", std::time::Instant::now() + second));
        d.succeeded("a");
        assert!(d.claim("a", std::time::Instant::now()), "a success resets the backoff");
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}
