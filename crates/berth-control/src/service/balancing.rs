//! Load balancers in the service scheduler's rules, pure. As ECS has them:
//! - A task is registered once it is RUNNING: its `containerPort` at its
//!   address, in each target group of the service's `loadBalancers`.
//! - With load balancers, a task counts as healthy only when each of its
//!   targets is (a target group no listener uses counts as healthy: it
//!   judges nothing).
//! - A task whose target is unhealthy is replaced once the health check
//!   grace period has passed since it started.
//! - A task the scheduler stops is deregistered first and stopped once its
//!   targets are gone (the target group's deregistration delay: in-flight
//!   requests finish).
//! - A task that ends otherwise (it exits, StopTask) is deregistered at
//!   once.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use berth_model::lifecycle::{DesiredStatus, TaskStatus};
use berth_model::service::{DrainingTask, LoadBalancerRef, Registration, RegistryRef, Service};
use berth_model::task::Task;

use super::rules::Stop;

/// A target's state as its load balancer reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetState {
    /// Registered, not yet judged by enough health checks.
    Initial,
    Healthy,
    Unhealthy,
    /// Registered in a target group no listener uses.
    Unused,
    /// Deregistered; its connections drain until `until` (epoch seconds).
    Draining { until: Option<f64> },
}

/// What the load balancers say of targets, by target group ARN, address
/// and port. A target not in it is not registered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets(pub BTreeMap<(String, Ipv4Addr, u16), TargetState>);

impl Targets {
    pub fn state(&self, r: &Registration) -> Option<&TargetState> {
        self.0.get(&(r.target_group_arn.clone(), r.ip, r.port))
    }

    pub fn set(&mut self, r: &Registration, state: TargetState) {
        self.0.insert((r.target_group_arn.clone(), r.ip, r.port), state);
    }
}

/// The targets task `t` has (or will have) in the target groups of `lbs`.
pub fn registrations(lbs: &[LoadBalancerRef], t: &Task) -> Vec<Registration> {
    let Some(ip) = t.ip() else { return Vec::new() };
    lbs.iter()
        .filter_map(|lb| {
            Some(Registration {
                task_id: t.id().to_owned(),
                target_group_arn: lb.target_group_arn.clone()?,
                ip,
                port: u16::try_from(lb.container_port?).ok()?,
            })
        })
        .collect()
}

/// Task `t`'s entries in the service's Cloud Map registries (keyed like
/// targets: the registry's ARN, the task's address, and the container
/// port for SRV records, 0 for A records only). They register and drain
/// as targets do, but judge nothing of the task's health.
pub fn registry_entries(regs: &[RegistryRef], t: &Task) -> Vec<Registration> {
    let Some(ip) = t.ip() else { return Vec::new() };
    regs.iter()
        .filter_map(|r| {
            let port = r.container_port.or(r.port).and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
            Some(Registration { task_id: t.id().to_owned(), target_group_arn: r.registry_arn.clone()?, ip, port })
        })
        .collect()
}

/// Whether an entry is a load balancer target (not a registry's).
fn is_target(r: &Registration) -> bool {
    r.target_group_arn.contains(":targetgroup/")
}

/// The load balancers' view of a task's health: with none, healthy;
/// else each of its targets healthy.
pub fn healthy(lbs: &[LoadBalancerRef], targets: &Targets, t: &Task) -> bool {
    if lbs.is_empty() {
        return true;
    }
    let regs = registrations(lbs, t);
    !regs.is_empty() && regs.iter().all(|r| matches!(targets.state(r), Some(TargetState::Healthy | TargetState::Unused)))
}

/// The target group in which a task's target is unhealthy, if any.
pub fn unhealthy_in(lbs: &[LoadBalancerRef], targets: &Targets, t: &Task) -> Option<String> {
    registrations(lbs, t).into_iter().find(|r| targets.state(r) == Some(&TargetState::Unhealthy)).map(|r| r.target_group_arn)
}

/// What the load balancer side of a plan does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetChanges {
    pub register: Vec<Registration>,
    pub deregister: Vec<Registration>,
    /// ECS's events about them, in order.
    pub events: Vec<String>,
}

/// Draining tasks whose targets are gone stop now (their stops, returned);
/// the others drain on (the earliest end of a drain, to look again then).
/// A draining task that ended meanwhile is forgotten.
pub fn drained(s: &mut Service, tasks: &[Task], targets: &Targets) -> (Vec<Stop>, Option<f64>) {
    let mut stops = Vec::new();
    let mut wake: Option<f64> = None;
    s.draining.retain(|d| {
        let alive = tasks.iter().any(|t| t.id() == d.task_id && t.status() != TaskStatus::Stopped);
        if !alive {
            return false;
        }
        let mut draining = false;
        for r in &d.targets {
            if let Some(TargetState::Draining { until }) = targets.state(r) {
                draining = true;
                if let Some(until) = until {
                    wake = Some(wake.map_or(*until, |w| w.min(*until)));
                }
            }
        }
        if !draining {
            stops.push(Stop { task_id: d.task_id.clone(), reason: d.reason.clone() });
        }
        draining
    });
    (stops, wake)
}

/// Ids of the tasks being drained.
pub fn draining_ids(s: &Service) -> HashSet<String> {
    s.draining.iter().map(|d| d.task_id.clone()).collect()
}

/// Stops of tasks with registered targets become drains: deregistered
/// now, stopped once their targets are gone. The stops that can be
/// carried out at once are returned.
pub fn drain_first(s: &mut Service, stops: Vec<Stop>, changes: &mut TargetChanges) -> Vec<Stop> {
    let mut now = Vec::new();
    let mut drains = 0;
    let mut out = Vec::new();
    for stop in stops {
        let (regs, kept): (Vec<Registration>, Vec<Registration>) =
            std::mem::take(&mut s.registered).into_iter().partition(|r| r.task_id == stop.task_id);
        s.registered = kept;
        if regs.is_empty() {
            now.push(stop);
            continue;
        }
        if regs.iter().any(is_target) {
            drains += 1;
        }
        out.extend(regs.iter().cloned());
        s.draining.push(DrainingTask { task_id: stop.task_id, reason: stop.reason, targets: regs });
    }
    if drains > 0 {
        changes.events.push(format!("(service {}) has begun draining connections on {drains} tasks.", s.name()));
    }
    deregistered(s, out, changes);
    now
}

/// Registers the targets of RUNNING tasks that do not have them yet, and
/// deregisters those of tasks that ended (or are wanted stopped) other
/// than through a drain.
pub fn register(s: &mut Service, tasks: &[Task], stopping: &HashSet<String>, changes: &mut TargetChanges) {
    let draining = draining_ids(s);
    let live = |id: &str| {
        tasks.iter().any(|t| t.id() == id && t.status() != TaskStatus::Stopped && t.desired() == DesiredStatus::Running)
    };
    let (kept, gone): (Vec<Registration>, Vec<Registration>) =
        std::mem::take(&mut s.registered).into_iter().partition(|r| live(&r.task_id) && !stopping.contains(&r.task_id));
    s.registered = kept;
    deregistered(s, gone, changes);

    let mut new = Vec::new();
    for t in tasks.iter().filter(|t| {
        t.status() == TaskStatus::Running && live(t.id()) && !stopping.contains(t.id()) && !draining.contains(t.id())
    }) {
        for r in registrations(&s.load_balancers, t).into_iter().chain(registry_entries(&s.service_registries, t)) {
            if !s.registered.contains(&r) {
                new.push(r);
            }
        }
    }
    for (group, n) in per_group(&new) {
        changes.events.push(format!("(service {}) registered {n} targets in (target-group {group})", s.name()));
    }
    s.registered.extend(new.iter().cloned());
    changes.register.extend(new);
}

fn deregistered(s: &Service, regs: Vec<Registration>, changes: &mut TargetChanges) {
    for (group, n) in per_group(&regs) {
        changes.events.push(format!("(service {}) deregistered {n} targets in (target-group {group})", s.name()));
    }
    changes.deregister.extend(regs);
}

/// Targets per target group (registry entries are not said in events).
fn per_group(regs: &[Registration]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in regs.iter().filter(|r| is_target(r)) {
        *out.entry(r.target_group_arn.clone()).or_insert(0) += 1;
    }
    out
}
