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

mod capacity;
mod driver;
pub mod logs;
pub mod metadata;
pub mod network;
pub mod plane;
mod spec;
mod step;

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
}

/// The agent of one node.
pub struct Agent {
    plane: Arc<dyn NodeControlPlane>,
    images: Arc<ImageStore>,
    runtime: Arc<dyn TaskRuntime>,
    config: AgentConfig,
    /// Tasks with a driver running now (one driver per task).
    active: Arc<Mutex<HashSet<String>>>,
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
        let logs = Arc::new(logs::Shipper::new(stores.clone(), runtime.clone()));
        let plane = Arc::new(plane::StorePlane::new(stores));
        Self { plane, images, runtime, config, active: Arc::default(), logs, network: None }
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
            let active = self.active.clone();
            tokio::spawn(async move {
                if let Err(e) = driver.drive(&arn).await {
                    tracing::warn!(task = %arn, error = %e, cause = ?std::error::Error::source(&e), "task driver failed; retrying on the next pass");
                }
                active.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&arn);
            });
        }
        Ok(())
    }

    /// The control plane this agent talks to (for the node's networking
    /// and metadata endpoint).
    pub fn plane(&self) -> Arc<dyn NodeControlPlane> {
        self.plane.clone()
    }

    fn is_active(&self, arn: &str) -> bool {
        self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(arn)
    }

    fn claim(&self, arn: &str) -> bool {
        self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(arn.to_owned())
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}
