//! The service controller: keeps each service's tasks as its deployments
//! say, on the shared [`runner`](crate::runner).
//!
//! `reconcile(service key)` reads the service and its tasks through a
//! [`ServiceTarget`], asks the pure [`rules::reconcile`] for a plan, and
//! carries it out: targets are deregistered from (and registered in) the
//! service's target groups first, stops go through the tasks' desired status (the
//! agent does the rest), launches through the target (RunTask's path:
//! the scheduler and the placement applier), and the service's record
//! (counts, deployments, events) is written last, with its version. A
//! crash between a launch and that write loses nothing: the next
//! reconcile finds the new tasks by their group and deployment and counts
//! them, so a slot is never filled twice.
//!
//! Level-triggered: the controller is woken by store notices of services
//! and of their tasks and by a periodic resync, never told why; one
//! reconcile per service at a time (the runner's rule).

pub mod balancing;
pub mod rules;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_model::arn::ServiceArn;
use berth_model::service::{Registration, Service};
use berth_model::task::Task;
use futures_util::Stream;

use crate::runner::{Action, Backoff, Reconcile, Runner, RunnerConfig};
pub use balancing::{TargetState, Targets};
pub use rules::{Env, Launched, Plan, Stop};

/// A service is looked at again at least this often, whatever happened.
pub const RESYNC: Duration = Duration::from_secs(30);

/// What a write of a service's record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// Someone wrote it since it was read (an UpdateService): read again.
    Conflict,
}

/// Where the controller reads and writes (the store, RunTask's path).
pub trait ServiceTarget: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Seconds since the epoch.
    fn now(&self) -> f64;

    /// A fresh random number (event ids, deployment numbers).
    fn fresh(&self) -> u64;

    /// The service and its record's version, if it exists.
    fn service(&self, arn: &ServiceArn) -> impl Future<Output = Result<Option<(Service, i64)>, Self::Error>> + Send;

    /// The service's tasks: every live one of its group, and those its
    /// deployments count in flight.
    fn tasks(&self, service: &Service) -> impl Future<Output = Result<Vec<Task>, Self::Error>> + Send;

    /// What the load balancers say of the targets in the service's
    /// target groups (empty for a service without load balancers).
    fn targets(&self, service: &Service) -> impl Future<Output = Result<Targets, Self::Error>> + Send;

    /// Registers targets in their target groups.
    fn register(&self, service: &Service, targets: &[Registration]) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Deregisters targets (their connections drain).
    fn deregister(&self, service: &Service, targets: &[Registration]) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Wants the task stopped (stopCode ServiceSchedulerInitiated).
    fn stop(&self, service: &Service, task_id: &str, reason: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Starts `count` tasks of deployment `number` of the service.
    fn launch(
        &self,
        service: &Service,
        number: u64,
        count: u32,
    ) -> impl Future<Output = Result<Launched, Self::Error>> + Send;

    /// Writes the record if it is still at `version`.
    fn write(&self, service: &Service, version: i64) -> impl Future<Output = Result<Written, Self::Error>> + Send;
}

/// The controller as a runner's reconciler, keyed by service ARN.
pub struct ServiceController<T> {
    target: Arc<T>,
}

impl<T: ServiceTarget> ServiceController<T> {
    pub fn new(target: Arc<T>) -> Self {
        Self { target }
    }
}

/// Runs the service controller until `shutdown` resolves, woken by
/// `triggers` (service keys: from notices and a resync).
pub async fn run<T: ServiceTarget>(
    target: Arc<T>,
    triggers: impl Stream<Item = ServiceArn> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send,
) {
    let config = RunnerConfig { concurrency: 4, backoff: Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) } };
    Runner::new("services", ServiceController::new(target), config).run(triggers, shutdown).await;
}

impl<T: ServiceTarget> Reconcile<ServiceArn> for ServiceController<T> {
    type Error = T::Error;

    async fn reconcile(&self, key: &ServiceArn) -> Result<Action, T::Error> {
        let t = self.target.as_ref();
        let Some((service, version)) = t.service(key).await? else { return Ok(Action::await_change()) };
        if service.status == berth_model::service::ServiceStatus::Inactive {
            return Ok(Action::await_change());
        }
        let tasks = t.tasks(&service).await?;
        let targets = t.targets(&service).await?;
        let mut fresh = || t.fresh();
        let mut env = Env { now: t.now(), fresh: &mut fresh, targets: &targets };
        let mut plan = rules::reconcile(&service, &tasks, &mut env);
        if !plan.deregister.is_empty() {
            t.deregister(&plan.service, &plan.deregister).await?;
        }
        if !plan.register.is_empty() {
            t.register(&plan.service, &plan.register).await?;
        }
        for stop in &plan.stop {
            t.stop(&plan.service, &stop.task_id, &stop.reason).await?;
        }
        if plan.launch > 0 {
            let number = plan.service.primary().map(|d| d.number).expect("a launch is for the primary");
            let out = t.launch(&plan.service, number, plan.launch).await?;
            rules::record_launch(&mut plan.service, number, &out, &mut env);
        }
        let wake = plan.wake_at.map(|at| Duration::from_secs_f64((at - env.now).max(0.0)));
        if plan.service != service {
            if t.write(&plan.service, version).await? == Written::Conflict {
                // Changed meanwhile: what was launched is found by the next
                // look (its tasks are in the store); look again now.
                return Ok(Action::requeue(Duration::ZERO));
            }
        }
        let moved = plan.launch > 0 || !plan.stop.is_empty() || !plan.register.is_empty() || !plan.deregister.is_empty();
        let soon = moved.then_some(Duration::from_secs(1));
        let after = [wake, soon, Some(RESYNC)].into_iter().flatten().min().unwrap_or(RESYNC);
        Ok(Action::requeue(after))
    }
}
