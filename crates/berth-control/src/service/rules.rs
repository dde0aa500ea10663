//! The service scheduler's rules, pure: from a service and its tasks as
//! they are now, the plan that brings them to what the service asks —
//! which tasks to start, which to stop, and the service's record as it
//! should read afterwards (counts, deployment states, events). No I/O
//! and no clock: the caller passes the time and fresh numbers in
//! [`Env`]. Tested as tables in `tests.rs`.
//!
//! The rules, as ECS has them:
//! - The PRIMARY deployment is brought to `desiredCount` tasks; older
//!   deployments are drained. At no point are fewer than
//!   `minimumHealthyPercent × desired` (rounded up) tasks healthy because
//!   the scheduler stopped one, nor more than `maximumPercent × desired`
//!   (rounded down) tasks alive: new tasks start first, as the maximum
//!   allows, and old ones stop as new ones become healthy.
//! - A task is healthy when RUNNING, wanted RUNNING, and (if it has
//!   health checks) HEALTHY. One UNHEALTHY past the health check grace
//!   period is replaced.
//! - Tasks that fail (never reach RUNNING, or are stopped for failing
//!   their health checks) count against the PRIMARY deployment; with the
//!   circuit breaker on, reaching the threshold fails the deployment and,
//!   with rollback, starts a new one of the last completed revision.
//! - Tasks that fail to start slow their deployment's launches down (the
//!   throttle); a task that ran resets it.

use std::collections::{BTreeMap, HashSet};

use berth_model::lifecycle::{DesiredStatus, TaskStatus};
use berth_model::service::{
    CapacityWait, Deployment, DeploymentStatus, RolloutState, Service, ServiceStatus, Throttle, deployment_id,
    deployment_number,
};
use berth_model::task::{HealthStatus, StopCode, Task};

use super::balancing::{self, TargetChanges, Targets};
use berth_model::service::Registration;

/// A container that exits within this many seconds of starting is counted
/// as a task that failed to start: the RUNNING report races an instant
/// exit, and what counts as a failure must not depend on which won.
pub const STARTUP_SECS: f64 = 10.0;

/// A circuit breaker's rollback completes no sooner than this many
/// seconds after the failure, as long as a new task must run before it
/// counts ([`STARTUP_SECS`]): the failed deployment stays shown
/// meanwhile.
pub const ROLLBACK_SETTLE_SECS: f64 = STARTUP_SECS;

/// The circuit breaker's threshold: half the desired count rounded up, at
/// least 3, at most 200.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// The launch throttle: how long a deployment waits before its next
/// launch after `failures` tasks in a row failed to start. The first
/// failure retries at once; then 10 s, doubling, up to ECS's documented
/// maximum of 27 minutes.
pub fn throttle_delay(failures: u32) -> f64 {
    const FIRST: f64 = 10.0;
    const MAX: f64 = 27.0 * 60.0;
    match failures {
        0 | 1 => 0.0,
        n => (FIRST * f64::from(1u32 << (n - 2).min(16))).min(MAX),
    }
}

/// How long a deployment waits before trying again to place a task no
/// node had room for, after `attempts` tries: 5 s doubling to 5 minutes.
pub fn capacity_delay(attempts: u32) -> f64 {
    (5.0 * f64::from(1u32 << attempts.saturating_sub(1).min(16))).min(300.0)
}

/// The steady-state event is said again after this long of being steady,
/// and a repeated cause (throttle, no room) is said at most once per it.
pub const STEADY_REPEAT_SECS: f64 = 6.0 * 3600.0;

/// What the caller provides: the time and a source of fresh numbers
/// (event ids, a rollback's deployment number).
pub struct Env<'a> {
    pub now: f64,
    pub fresh: &'a mut (dyn FnMut() -> u64 + Send),
    /// What the load balancers say of the service's targets.
    pub targets: &'a Targets,
}

impl Env<'_> {
    fn event_id(&mut self) -> String {
        let (a, b) = ((self.fresh)(), (self.fresh)());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

/// A task the plan stops, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub task_id: String,
    pub reason: String,
}

/// What to do for a service now.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The record as it should be written (unchanged when nothing moved).
    pub service: Service,
    /// Start this many tasks of the PRIMARY deployment.
    pub launch: u32,
    pub stop: Vec<Stop>,
    /// Targets to register in, and to take out of, the service's target
    /// groups (before the stops are carried out).
    pub register: Vec<Registration>,
    pub deregister: Vec<Registration>,
    /// Look again at this time at the latest (a throttle or wait ends, a
    /// grace period runs out), besides the controller's resync.
    pub wake_at: Option<f64>,
}

/// What a launch did: the tasks it started, and why no node took the
/// rest (`None` when all were placed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Launched {
    pub started: Vec<String>,
    pub shortage: Option<String>,
}

/// The plan for `service`, whose tasks (live ones of its group, and any
/// its deployments still count in flight) are `tasks`.
pub fn reconcile(service: &Service, tasks: &[Task], env: &mut Env<'_>) -> Plan {
    let now = env.now;
    let mut s = service.clone();
    let by_deployment = group(&s, tasks);
    let throttled = account_ended_tasks(&mut s, &by_deployment, now);
    if throttled {
        let message = format!("(service {}) is unable to consistently start tasks successfully.", s.name());
        let id = env.event_id();
        s.push_event_once(id, message, now, STEADY_REPEAT_SECS);
    }
    let grace = f64::from(s.health_check_grace_period_seconds.unwrap_or(0));
    let targets = env.targets;
    let lbs = s.load_balancers.clone();
    // Tasks whose drain is over stop now; the others are left alone.
    let (drained, drain_end) = balancing::drained(&mut s, tasks, targets);
    // Tasks being drained, or stopped now that their drain is over: no
    // other rule decides anything for them.
    let draining: HashSet<String> =
        balancing::draining_ids(&s).into_iter().chain(drained.iter().map(|d| d.task_id.clone())).collect();
    let healthy = |t: &Task| is_healthy(t) && balancing::healthy(&lbs, targets, t) && !draining.contains(t.id());
    let mut stop: Vec<Stop> = Vec::new();
    let mut wake_at: Option<f64> = drain_end;

    if s.status != ServiceStatus::Active {
        // Deleted: stop everything; INACTIVE once nothing is left.
        // Deleting scales the service to 0: the same reason ECS gives.
        let fallback = s.primary().map_or(0, |d| d.number);
        for t in tasks.iter().filter(|t| wanted(t) && !draining.contains(t.id())) {
            let n = deployment_of(&s, t).unwrap_or(fallback);
            stop.push(Stop { task_id: t.id().to_owned(), reason: scaling(n) });
        }
        // INACTIVE once its tasks are gone (every one STOPPED).
        let live = tasks.iter().filter(|t| t.status() != TaskStatus::Stopped).count();
        if live == 0 && s.status == ServiceStatus::Draining {
            s.status = ServiceStatus::Inactive;
            for d in s.deployments.iter_mut().filter(|d| d.is_live()) {
                d.status = DeploymentStatus::Inactive;
                d.finished_at.get_or_insert(now);
                d.updated_at = now;
            }
        }
        count(&mut s, &by_deployment);
        let (stop, register, deregister) = targets_first(&mut s, tasks, stop, drained, env);
        say_stopped(&mut s, &stop, env);
        return Plan { service: s, launch: 0, stop, register, deregister, wake_at };
    }

    trip_breaker(&mut s, env);
    let Some(primary) = s.primary().map(|d| d.number) else {
        return Plan { service: s, launch: 0, stop, register: Vec::new(), deregister: Vec::new(), wake_at: None };
    };
    let desired = s.desired_count;
    if let Some(p) = s.primary_mut() {
        p.desired_count = desired;
    }
    let cfg = s.deployment_configuration.clone();

    // Replace tasks that failed their health checks (the containers' or
    // a load balancer's) past the grace period.
    for t in tasks.iter().filter(|t| wanted(t) && t.status() == TaskStatus::Running && !draining.contains(t.id())) {
        let reason = if t.health == HealthStatus::Unhealthy {
            "Task failed container health checks".to_owned()
        } else if let Some(group) = balancing::unhealthy_in(&lbs, targets, t) {
            format!("Task failed ELB health checks in (target-group {group})")
        } else {
            continue;
        };
        let started = t.times.started_at.unwrap_or(t.times.created_at);
        if now - started >= grace {
            stop.push(Stop { task_id: t.id().to_owned(), reason });
            if let Some(d) = deployment_of(&s, t).and_then(|n| s.deployments.iter_mut().find(|d| d.number == n)) {
                if d.status == DeploymentStatus::Primary && d.rollout_state == RolloutState::InProgress {
                    d.failed_tasks += 1;
                }
            }
        } else {
            wake_at = earliest(wake_at, started + grace);
        }
    }
    let stopping: HashSet<String> = stop.iter().map(|s| s.task_id.clone()).chain(draining.iter().cloned()).collect();
    let kept = |t: &&Task| wanted(t) && !stopping.contains(t.id());

    let empty = Vec::new();
    let of_primary = by_deployment.get(&Some(primary)).unwrap_or(&empty);
    let primary_tasks: Vec<&Task> = of_primary.iter().copied().filter(kept).collect();
    // A task ending by itself holds its slot until it is STOPPED and
    // counted (a failure, the throttle): only then is it replaced.
    let holding = of_primary.iter().filter(|t| kept(t) || ending_by_itself(t)).count() as u32;
    let alive = tasks.iter().filter(|t| t.status() != TaskStatus::Stopped).count() as u32;

    // Scale in: the surplus of the PRIMARY, unhealthy and newest first.
    let mut launch = 0;
    // Tasks wanted but neither launched now nor held back by a wait.
    let mut starved = false;
    if primary_tasks.len() as u32 > desired {
        let mut surplus = primary_tasks.clone();
        surplus.sort_by(|a, b| {
            (healthy(a), b.times.created_at).partial_cmp(&(healthy(b), a.times.created_at)).unwrap_or(std::cmp::Ordering::Equal)
        });
        for t in surplus.iter().take(primary_tasks.len() - desired as usize) {
            stop.push(Stop { task_id: t.id().to_owned(), reason: scaling(primary) });
        }
    } else {
        let room = cfg.max_running(desired).saturating_sub(alive);
        let want = desired.saturating_sub(holding);
        let d = s.primary().expect("primary exists");
        let blocked = d.rollout_state == RolloutState::Failed;
        let not_before = d.throttle.not_before.max(d.capacity_wait.map_or(0.0, |w| w.not_before));
        if want > 0 && !blocked {
            if not_before > now {
                wake_at = earliest(wake_at, not_before);
            } else {
                launch = want.min(room);
                starved = launch == 0;
            }
        }
    }

    // Drain older deployments as far as the minimum healthy count allows.
    let stopping: HashSet<String> = stop.iter().map(|s| s.task_id.clone()).chain(draining.iter().cloned()).collect();
    let healthy_now = tasks.iter().filter(|t| healthy(t) && !stopping.contains(t.id())).count() as u32;
    let mut may_stop_healthy = healthy_now.saturating_sub(cfg.min_healthy(desired));
    let mut old: Vec<&Task> =
        tasks.iter().filter(|t| kept(t) && !stopping.contains(t.id()) && deployment_of(&s, t) != Some(primary)).collect();
    // Unhealthy and not yet running first (they cost no healthy count), then the oldest.
    old.sort_by(|a, b| {
        (healthy(a), a.times.created_at).partial_cmp(&(healthy(b), b.times.created_at)).unwrap_or(std::cmp::Ordering::Equal)
    });
    // A FAILED deployment launches nothing, so nothing older is drained
    // for it either (unhealthy or not-yet-running old tasks excepted).
    let failed = s.primary().is_some_and(|d| d.rollout_state == RolloutState::Failed);
    if failed {
        may_stop_healthy = 0;
    }
    for t in old {
        if healthy(t) {
            if may_stop_healthy == 0 {
                continue;
            }
            may_stop_healthy -= 1;
        }
        let n = deployment_of(&s, t).unwrap_or(primary);
        stop.push(Stop { task_id: t.id().to_owned(), reason: scaling(n) });
    }

    // No room to start, nothing allowed to stop, nothing on its way: only
    // a new configuration moves this deployment on.
    let moving = tasks.iter().any(|t| t.status() != TaskStatus::Stopped && (t.desired() == DesiredStatus::Stopped || is_pending(t)));
    if starved && stop.is_empty() && !moving {
        let message = format!(
            "(service {}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
            s.name()
        );
        let id = env.event_id();
        s.push_event_once(id, message, now, STEADY_REPEAT_SECS);
    }

    count(&mut s, &by_deployment);
    // A target not judged yet is looked at again soon (its health is
    // also announced, but a missed notice must not stall a deployment).
    let judged = |t: &Task| draining.contains(t.id()) || balancing::healthy(&lbs, targets, t);
    if tasks.iter().any(|t| wanted(t) && t.status() == TaskStatus::Running && !judged(t)) {
        wake_at = earliest(wake_at, now + TARGET_RECHECK_SECS);
    }
    let (stop, register, deregister) = targets_first(&mut s, tasks, stop, drained, env);
    if let Some(at) = finish_deployments(&mut s, &by_deployment, &stop, launch, &healthy, env) {
        wake_at = earliest(wake_at, at);
    }
    say_stopped(&mut s, &stop, env);
    Plan { service: s, launch, stop, register, deregister, wake_at }
}

/// How soon a service whose targets are not all healthy is looked at again.
pub const TARGET_RECHECK_SECS: f64 = 5.0;

/// The stops decided, with the load balancers first: a stop of a task
/// with targets becomes a drain (deregistered now, stopped later), the
/// tasks whose drain is over stop, RUNNING tasks are registered and ended
/// ones deregistered. Returns the stops to carry out now and the targets
/// to register and deregister; ECS's events said.
fn targets_first(
    s: &mut Service,
    tasks: &[Task],
    decided: Vec<Stop>,
    drained: Vec<Stop>,
    env: &mut Env<'_>,
) -> (Vec<Stop>, Vec<Registration>, Vec<Registration>) {
    let mut changes = TargetChanges::default();
    let mut stop = balancing::drain_first(s, decided, &mut changes);
    stop.extend(drained);
    let stopping: HashSet<String> =
        stop.iter().map(|s| s.task_id.clone()).chain(balancing::draining_ids(s)).collect();
    balancing::register(s, tasks, &stopping, &mut changes);
    for message in changes.events {
        let id = env.event_id();
        s.push_event(id, message, env.now);
    }
    (stop, changes.register, changes.deregister)
}

/// Records what a launch for deployment `number` did: the tasks it
/// started (in flight from now, and said in an event), or why no node
/// had room (an event, and a wait that grows with each try).
pub fn record_launch(service: &mut Service, number: u64, launched: &Launched, env: &mut Env<'_>) {
    let now = env.now;
    let name = service.name().to_owned();
    let Some(d) = service.deployments.iter_mut().find(|d| d.number == number) else { return };
    for id in &launched.started {
        if !d.in_flight.contains(id) {
            d.in_flight.push(id.clone());
        }
    }
    d.updated_at = now;
    let mut events = Vec::new();
    match &launched.shortage {
        Some(reason) => {
            let attempts = d.capacity_wait.map_or(0, |w| w.attempts) + 1;
            d.capacity_wait = Some(CapacityWait { attempts, not_before: now + capacity_delay(attempts) });
            let message = format!(
                "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {reason}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
            );
            events.push((message, true));
        }
        None => d.capacity_wait = None,
    }
    if !launched.started.is_empty() {
        let ids: Vec<String> = launched.started.iter().map(|id| format!("(task {id})")).collect();
        events.insert(0, (format!("(service {name}) has started {} tasks: {}.", ids.len(), ids.join(" ")), false));
    }
    for (message, once) in events {
        let id = env.event_id();
        if once {
            service.push_event_once(id, message, now, STEADY_REPEAT_SECS);
        } else {
            service.push_event(id, message, now);
        }
    }
}

/// Tasks by the deployment that started them (`None`: one the service no
/// longer knows).
fn group<'t>(s: &Service, tasks: &'t [Task]) -> BTreeMap<Option<u64>, Vec<&'t Task>> {
    let mut out: BTreeMap<Option<u64>, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        out.entry(deployment_of(s, t)).or_default().push(t);
    }
    out
}

fn deployment_of(s: &Service, t: &Task) -> Option<u64> {
    let n = t.started_by.as_deref().and_then(deployment_number)?;
    s.deployment(n).map(|d| d.number)
}

/// Counts each task that ended once (it leaves its deployment's in-flight
/// list): failures for the breaker, and the throttle; live tasks the
/// deployment did not know yet (a launch whose record write was lost)
/// join the list. A deployment one of whose tasks ran leaves the
/// breaker's first stage (its count starts again, for health checks
/// only). `true` when a deployment is now throttled.
fn account_ended_tasks(s: &mut Service, by_deployment: &BTreeMap<Option<u64>, Vec<&Task>>, now: f64) -> bool {
    let mut throttled = false;
    for d in s.deployments.iter_mut() {
        let Some(tasks) = by_deployment.get(&Some(d.number)) else {
            d.in_flight.clear();
            continue;
        };
        if !d.ran && tasks.iter().any(|t| ran(t, now)) {
            d.ran = true;
            d.failed_tasks = 0;
        }
        for t in tasks {
            let known = d.in_flight.iter().position(|id| id == t.id());
            match (t.status() == TaskStatus::Stopped, known) {
                (true, Some(i)) => {
                    d.in_flight.remove(i);
                    end_of(d, t, now);
                }
                (false, None) => d.in_flight.push(t.id().to_owned()),
                _ => {}
            }
        }
        // A task in flight that is no longer found was removed: forget it.
        d.in_flight.retain(|id| tasks.iter().any(|t| t.id() == id));
        throttled |= d.status == DeploymentStatus::Primary && d.throttle.not_before > now;
    }
    throttled
}

fn end_of(d: &mut Deployment, t: &Task, now: f64) {
    if requested(t) {
        return;
    }
    if failed_to_start(t) {
        if !d.ran && d.status == DeploymentStatus::Primary && d.rollout_state == RolloutState::InProgress {
            d.failed_tasks += 1;
        }
        let failures = d.throttle.failures + 1;
        d.throttle = Throttle { failures, not_before: now + throttle_delay(failures) };
    } else {
        d.throttle = Throttle::default();
    }
    d.updated_at = now;
}

/// A task that ran: RUNNING (or ended) at least [`STARTUP_SECS`] after
/// it started, and not unhealthy.
fn ran(t: &Task, now: f64) -> bool {
    let Some(start) = t.times.started_at else { return false };
    let end = match t.status() {
        TaskStatus::Running => now,
        TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => return false,
        _ => t.times.stopping_at.or(t.times.stopped_at).unwrap_or(now),
    };
    end - start >= STARTUP_SECS && t.health != HealthStatus::Unhealthy
}

/// Whether a task that ended never really started: it stopped before
/// RUNNING, or its containers exited within [`STARTUP_SECS`].
pub fn failed_to_start(t: &Task) -> bool {
    if t.stop.as_ref().is_some_and(|r| r.code == StopCode::TaskFailedToStart) {
        return true;
    }
    match (t.times.started_at, t.times.stopping_at.or(t.times.stopped_at)) {
        (None, _) => true,
        (Some(start), Some(end)) => end - start < STARTUP_SECS,
        (Some(_), None) => false,
    }
}

/// The circuit breaker: a PRIMARY deployment in progress with as many
/// failed tasks as the threshold fails; with rollback, the last completed
/// revision is deployed again.
fn trip_breaker(s: &mut Service, env: &mut Env<'_>) {
    let breaker = s.deployment_configuration.breaker();
    let threshold = failure_threshold(s.desired_count);
    let name = s.name().to_owned();
    let now = env.now;
    let Some(d) = s.primary_mut() else { return };
    if !breaker.enable || d.rollout_state != RolloutState::InProgress || d.failed_tasks < threshold {
        return;
    }
    let failed = d.number;
    d.rollout_state = RolloutState::Failed;
    d.rollout_state_reason = Some("ECS deployment circuit breaker: tasks failed to start.".into());
    d.finished_at = Some(now);
    d.updated_at = now;
    let id = env.event_id();
    s.push_event(id, format!("(service {name}) (deployment {}) deployment failed: tasks failed to start.", deployment_id(failed)), now);
    if !breaker.rollback {
        return;
    }
    // The most recent COMPLETED deployment becomes PRIMARY again; with
    // none, the deployment stays FAILED and launches nothing.
    let good = s.deployments.iter().filter(|d| d.rollout_state == RolloutState::Completed).max_by(|a, b| {
        a.created_at.partial_cmp(&b.created_at).unwrap_or(std::cmp::Ordering::Equal)
    });
    let Some(good) = good.map(|d| d.number) else { return };
    s.roll_back_to(good, now);
    let id = env.event_id();
    s.push_event(id, format!("(service {name}) rolling back to deployment {}.", deployment_id(good)), now);
}

/// Counts per deployment and for the service.
fn count(s: &mut Service, by_deployment: &BTreeMap<Option<u64>, Vec<&Task>>) {
    for d in s.deployments.iter_mut() {
        let tasks = by_deployment.get(&Some(d.number)).map(Vec::as_slice).unwrap_or_default();
        d.running_count = tasks.iter().filter(|t| t.status() == TaskStatus::Running).count() as u32;
        d.pending_count = tasks.iter().filter(|t| is_pending(t)).count() as u32;
    }
}

/// Old deployments with nothing left become INACTIVE; the PRIMARY
/// completes once it alone holds `desired` healthy tasks; the service
/// says when it is steady.
fn finish_deployments(
    s: &mut Service,
    by_deployment: &BTreeMap<Option<u64>, Vec<&Task>>,
    stop: &[Stop],
    launch: u32,
    healthy: &dyn Fn(&Task) -> bool,
    env: &mut Env<'_>,
) -> Option<f64> {
    let now = env.now;
    let name = s.name().to_owned();
    let alive_in = |n: Option<u64>| by_deployment.get(&n).is_some_and(|ts| ts.iter().any(|t| t.status() != TaskStatus::Stopped));
    let others_live = s.deployments.iter().any(|d| d.status == DeploymentStatus::Active && alive_in(Some(d.number)))
        || alive_in(None);
    let desired = s.desired_count;
    let nothing_draining = s.draining.is_empty();
    let held = rollback_hold(s);
    let Some(p) = s.primary_mut() else { return None };
    let tasks = by_deployment.get(&Some(p.number)).map(Vec::as_slice).unwrap_or_default();
    let healthy: Vec<&&Task> = tasks.iter().filter(|t| healthy(t)).collect();
    // A deployment completes on tasks that ran past their start, not on
    // ones RUNNING for an instant before they crash.
    let young = healthy.iter().filter(|t| !ran(t, now)).filter_map(|t| t.times.started_at).reduce(f64::min);
    let held_now = held.filter(|&until| now < until);
    let settled = !others_live
        && healthy.len() as u32 == desired
        && young.is_none()
        && held_now.is_none()
        && p.pending_count == 0
        && stop.is_empty()
        && nothing_draining
        && launch == 0;
    let mut events = Vec::new();
    if settled && p.rollout_state == RolloutState::InProgress {
        p.rollout_state = RolloutState::Completed;
        p.rollout_state_reason = Some(format!("ECS deployment {} completed.", p.id()));
        p.finished_at = Some(now);
        p.updated_at = now;
        p.throttle = Throttle::default();
        events.push(format!("(service {name}) (deployment {}) deployment completed.", p.id()));
    }
    let steady = settled && p.rollout_state == RolloutState::Completed && p.running_count == desired;
    let primary_done = p.rollout_state == RolloutState::Completed;
    match (steady, s.steady_since) {
        (true, None) => {
            s.steady_since = Some(now);
            events.push(format!("(service {name}) has reached a steady state."));
        }
        (true, Some(since)) if now - since >= STEADY_REPEAT_SECS => {
            s.steady_since = Some(now);
            events.push(format!("(service {name}) has reached a steady state."));
        }
        (false, Some(_)) => s.steady_since = None,
        _ => {}
    }
    // Drained older deployments go INACTIVE; a FAILED one stays shown
    // (ACTIVE, FAILED) until the deployment that replaced it completes.
    for d in s.deployments.iter_mut().filter(|d| d.status == DeploymentStatus::Active) {
        if !alive_in(Some(d.number)) && (d.rollout_state != RolloutState::Failed || primary_done) {
            d.status = DeploymentStatus::Inactive;
            d.finished_at.get_or_insert(now);
            d.updated_at = now;
        }
    }
    for message in events {
        let id = env.event_id();
        s.push_event(id, message, now);
    }
    s.trim_history();
    young.map(|started| started + STARTUP_SECS).into_iter().chain(held_now).reduce(f64::min)
}

/// When the PRIMARY, if the circuit breaker rolled back to it, may
/// complete: [`ROLLBACK_SETTLE_SECS`] after the deployment it replaced
/// failed. ECS shows the failed deployment (ACTIVE, rolloutState
/// FAILED) beside the rollback while the rollback is in progress, and
/// a rollback to tasks that still run is not done in the instant it
/// begins: a poller of DescribeServices sees how the deployment ended.
fn rollback_hold(s: &Service) -> Option<f64> {
    let p = s.primary()?;
    if !p.rollback || p.rollout_state != RolloutState::InProgress {
        return None;
    }
    let failed = s.deployments.iter().find(|d| Some(d.number) == p.source && d.rollout_state == RolloutState::Failed)?;
    failed.finished_at.map(|at| at + ROLLBACK_SETTLE_SECS)
}

fn say_stopped(s: &mut Service, stop: &[Stop], env: &mut Env<'_>) {
    if stop.is_empty() {
        return;
    }
    let ids: Vec<String> = stop.iter().map(|t| format!("(task {})", t.task_id)).collect();
    let message = format!("(service {}) has stopped {} running tasks: {}.", s.name(), ids.len(), ids.join(" "));
    let id = env.event_id();
    s.push_event(id, message, env.now);
}

fn scaling(number: u64) -> String {
    format!("Scaling activity initiated by (deployment {})", deployment_id(number))
}

/// Alive, wanted STOPPED because it ended by itself (not at anyone's
/// request).
fn ending_by_itself(t: &Task) -> bool {
    t.status() != TaskStatus::Stopped && t.desired() == DesiredStatus::Stopped && !requested(t)
}

/// Stopped at the scheduler's or a user's request, or interrupted by
/// Fargate Spot (the platform's request: not a failure of the task).
fn requested(t: &Task) -> bool {
    matches!(
        t.stop.as_ref().map(|r| r.code),
        Some(
            StopCode::UserInitiated
                | StopCode::ServiceSchedulerInitiated
                | StopCode::TerminationNotice
                | StopCode::SpotInterruption
        )
    )
}

/// Alive and wanted running.
fn wanted(t: &Task) -> bool {
    t.status() != TaskStatus::Stopped && t.desired() == DesiredStatus::Running
}

fn is_pending(t: &Task) -> bool {
    matches!(t.status(), TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating)
}

/// RUNNING, wanted RUNNING, and healthy if it has health checks.
pub fn is_healthy(t: &Task) -> bool {
    let checked = t.containers.iter().any(|c| c.health.is_some());
    wanted(t) && t.status() == TaskStatus::Running && (!checked || t.health == HealthStatus::Healthy)
}

fn earliest(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.min(b)))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
