//! The service scheduler's rules as tables: a service and its tasks in,
//! the plan out.

use berth_model::arn::TaskDefinitionArn;
use berth_model::lifecycle::{TaskEvent, TaskStatus};
use berth_model::service::{CircuitBreaker, DeploymentConfiguration, DeploymentStatus, RolloutState, Service, ServiceStatus};
use berth_model::task::{HealthStatus, NewTask, StopCode, Task, build};
use berth_model::testing;

use super::*;


const NOW: f64 = 1_000_000.0;

fn revision(n: i32) -> TaskDefinitionArn {
    format!("{}:task-definition/web:{n}", testing::account().prefix()).parse().unwrap()
}

/// A service of `desired` tasks with one deployment (number 1) of revision 1.
fn service(desired: u32) -> Service {
    let acct = testing::account();
    let mut s = Service::new(acct.service("default", "web"), revision(1), desired, 0.0);
    s.deploy(1, 0.0);
    s
}

/// A task of deployment `number`, brought to `status` through the
/// lifecycle, created at `created` and started 100 s before NOW.
fn task(id: u32, number: u64, status: TaskStatus, created: f64) -> Task {
    let acct = testing::account();
    let def = testing::definition(&acct, "web", &["app"]);
    let mut t = build(NewTask::plain(&acct, "default", &format!("{id:032x}"), &def, created)).unwrap();
    t.started_by = Some(format!("ecs-svc/{number}"));
    t.group = "service:web".into();
    use TaskEvent as E;
    let path: &[TaskEvent] = match status {
        TaskStatus::Provisioning => &[],
        TaskStatus::Pending => &[E::Provisioned],
        TaskStatus::Running => &[E::Provisioned, E::ContainersStarted, E::Activated],
        TaskStatus::Stopped => &[E::Provisioned, E::ContainersStarted, E::Activated, E::EssentialContainerExited, E::Deactivated, E::ContainersStopped, E::Deprovisioned],
        other => panic!("no path to {other:?} in these tests"),
    };
    t.apply_all(path).unwrap();
    if status >= TaskStatus::Running {
        t.times.started_at = Some(NOW - 100.0);
    }
    if status == TaskStatus::Stopped {
        t.times.stopping_at = Some(NOW - 1.0);
        t.set_stop_reason(StopCode::EssentialContainerExited, "Essential container in task exited");
    }
    t
}

/// A task that stopped without ever reaching RUNNING.
fn failed(id: u32, number: u64) -> Task {
    let mut t = task(id, number, TaskStatus::Provisioning, 0.0);
    t.apply_all(&[TaskEvent::Provisioned, TaskEvent::StartFailed, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned]).unwrap();
    t.set_stop_reason(StopCode::TaskFailedToStart, "CannotPullContainerError");
    t
}

fn with_checks(mut t: Task, health: HealthStatus) -> Task {
    t.containers[0].health = Some(health);
    t.health = health;
    t
}

fn plan(s: &Service, tasks: &[Task]) -> Plan {
    plan_at(s, tasks, NOW)
}

fn plan_at(s: &Service, tasks: &[Task], now: f64) -> Plan {
    plan_with(s, tasks, now, &Targets::default())
}

fn plan_with(s: &Service, tasks: &[Task], now: f64, targets: &Targets) -> Plan {
    let mut n = 0u64;
    let mut fresh = move || {
        n += 1;
        n
    };
    reconcile(s, tasks, &mut Env { now, fresh: &mut fresh, targets })
}

fn messages(s: &Service) -> Vec<&str> {
    s.events.iter().map(|e| e.message.as_str()).collect()
}

fn stopped_ids(p: &Plan) -> Vec<u32> {
    p.stop.iter().map(|s| u32::from_str_radix(&s.task_id, 16).unwrap()).collect()
}

/// `s` after its first deployment completed with `tasks` running, and a
/// new deployment (2) of revision 2 made with `cfg`.
fn rolling(desired: u32, cfg: DeploymentConfiguration) -> (Service, Vec<Task>) {
    let mut s = service(desired);
    s.deployment_configuration = cfg;
    let tasks: Vec<Task> = (0..desired).map(|i| task(i, 1, TaskStatus::Running, 10.0 + f64::from(i))).collect();
    s.deployments[0].in_flight = tasks.iter().map(|t| t.id().to_owned()).collect();
    s.deployments[0].rollout_state = RolloutState::Completed;
    s.task_definition = revision(2);
    s.deploy(2, NOW - 5.0);
    (s, tasks)
}

fn percent(min: u32, max: u32) -> DeploymentConfiguration {
    DeploymentConfiguration { minimum_healthy_percent: min, maximum_percent: max, ..Default::default() }
}

#[test]
fn a_new_service_launches_its_desired_count() {
    let p = plan(&service(3), &[]);
    assert_eq!((p.launch, p.stop.len()), (3, 0));
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::InProgress);
}

#[test]
fn a_full_healthy_service_completes_its_deployment_and_says_it_is_steady() {
    let s = service(3);
    let tasks: Vec<Task> = (0..3).map(|i| task(i, 1, TaskStatus::Running, 1.0)).collect();
    let p = plan(&s, &tasks);
    assert_eq!(p.launch, 0);
    let d = p.service.primary().unwrap();
    assert_eq!((d.rollout_state, d.running_count, d.pending_count), (RolloutState::Completed, 3, 0));
    assert_eq!(d.rollout_state_reason.as_deref(), Some("ECS deployment ecs-svc/1 completed."));
    assert_eq!(
        messages(&p.service),
        ["(service web) has reached a steady state.", "(service web) (deployment ecs-svc/1) deployment completed."]
    );
    let again = plan(&p.service, &tasks);
    assert_eq!(again.service, p.service, "nothing new to say or do the second time");
    let later = plan_at(&p.service, &tasks, NOW + STEADY_REPEAT_SECS);
    assert_eq!(later.service.events.len(), 3, "the steady state is said again after six hours");
}

#[test]
fn a_deployment_completes_on_tasks_that_ran_past_their_start() {
    let s = service(2);
    let mut tasks: Vec<Task> = (0..2).map(|i| task(i, 1, TaskStatus::Running, 1.0)).collect();
    tasks[1].times.started_at = Some(NOW - 2.0);
    let p = plan(&s, &tasks);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::InProgress, "one started 2 s ago");
    assert_eq!(p.wake_at, Some(NOW - 2.0 + STARTUP_SECS));
    let p = plan_at(&p.service, &tasks, NOW - 2.0 + STARTUP_SECS);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Completed);
}

#[test]
fn pending_tasks_are_counted_and_not_launched_again() {
    let s = service(3);
    let tasks = [task(0, 1, TaskStatus::Pending, 1.0), task(1, 1, TaskStatus::Running, 1.0)];
    let p = plan(&s, &tasks);
    assert_eq!(p.launch, 1, "two of three exist");
    let d = p.service.primary().unwrap();
    assert_eq!((d.pending_count, d.running_count), (1, 1));
    assert_eq!(d.in_flight.len(), 2, "tasks the record did not know yet (a lost write) are adopted");
}

#[test]
fn a_task_that_died_after_running_is_replaced_without_throttle() {
    let mut s = service(3);
    let mut tasks: Vec<Task> = (0..3).map(|i| task(i, 1, TaskStatus::Running, 1.0)).collect();
    s.deployments[0].in_flight = tasks.iter().map(|t| t.id().to_owned()).collect();
    tasks[1] = task(1, 1, TaskStatus::Stopped, 1.0);
    let p = plan(&s, &tasks);
    assert_eq!(p.launch, 1);
    let d = p.service.primary().unwrap();
    assert_eq!((d.throttle.failures, d.failed_tasks), (0, 0));
    assert_eq!(d.in_flight.len(), 2, "the stopped task was counted and left the list");
    let again = plan(&p.service, &tasks);
    assert_eq!(again.service.primary().unwrap().throttle.failures, 0, "counted once");
}

#[test]
fn rolling_at_50_200_starts_all_new_and_stops_one_old_at_once() {
    let (s, old) = rolling(3, percent(50, 200));
    let p = plan(&s, &old);
    assert_eq!(p.launch, 3, "maximumPercent 200 leaves room for 3 more");
    assert_eq!(stopped_ids(&p), [0], "min healthy 2 of 3 lets one old task go, the oldest");
    assert_eq!(p.stop[0].reason, "Scaling activity initiated by (deployment ecs-svc/1)");
    assert_eq!(p.service.primary().unwrap().id(), "ecs-svc/2");
}

#[test]
fn rolling_at_100_200_stops_old_tasks_only_as_new_ones_become_healthy() {
    let (s, mut tasks) = rolling(3, percent(100, 200));
    let p = plan(&s, &tasks);
    assert_eq!((p.launch, p.stop.len()), (3, 0));
    // Two new ones are RUNNING, one still pending.
    tasks.extend([task(10, 2, TaskStatus::Running, 50.0), task(11, 2, TaskStatus::Running, 50.0), task(12, 2, TaskStatus::Pending, 50.0)]);
    let p = plan(&p.service, &tasks);
    assert_eq!(p.launch, 0);
    assert_eq!(stopped_ids(&p), [0, 1], "healthy 5, minimum 3: two old ones may go");
    assert_eq!(p.service.deployments[1].status, DeploymentStatus::Active, "the old one still has tasks");
}

#[test]
fn the_old_deployment_goes_inactive_when_drained_and_the_new_one_completes() {
    let (s, _) = rolling(2, percent(100, 200));
    let tasks = [task(10, 2, TaskStatus::Running, 50.0), task(11, 2, TaskStatus::Running, 50.0), task(0, 1, TaskStatus::Stopped, 1.0)];
    let p = plan(&s, &tasks);
    let old = p.service.deployment(1).unwrap();
    assert_eq!(old.status, DeploymentStatus::Inactive);
    let new = p.service.primary().unwrap();
    assert_eq!(new.rollout_state, RolloutState::Completed);
    assert!(messages(&p.service).contains(&"(service web) (deployment ecs-svc/2) deployment completed."));
}

#[test]
fn maximum_percent_caps_what_is_alive_and_stopping_tasks_count() {
    let (s, mut tasks) = rolling(2, percent(0, 100));
    let p = plan(&s, &tasks);
    assert_eq!(p.launch, 0, "no room above 100 % until an old task is gone");
    assert_eq!(stopped_ids(&p), [0, 1], "minimum 0 lets every old task go");
    for t in &mut tasks {
        t.request_stop(StopCode::ServiceSchedulerInitiated, "x", NOW);
    }
    let p = plan(&p.service, &tasks);
    assert_eq!(p.launch, 0, "tasks still stopping occupy their room");
    tasks[0] = task(0, 1, TaskStatus::Stopped, 1.0);
    let p = plan(&p.service, &tasks);
    assert_eq!(p.launch, 1);
}

#[test]
fn a_deployment_the_percentages_forbid_says_so() {
    let (s, tasks) = rolling(2, percent(100, 100));
    let p = plan(&s, &tasks);
    assert_eq!((p.launch, p.stop.len()), (0, 0), "no room above 100 %, no healthy task to spare below 100 %");
    assert_eq!(
        messages(&p.service)[0],
        "(service web) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
    );
    let (s, tasks) = rolling(2, percent(50, 100));
    let p = plan(&s, &tasks);
    assert_eq!(stopped_ids(&p), [0], "50 % lets one go, which makes room");
    assert!(!messages(&p.service).iter().any(|m| m.contains("unable to stop or start")));
}

#[test]
fn scale_in_stops_unhealthy_then_newest() {
    let mut s = service(1);
    s.health_check_grace_period_seconds = Some(1000);
    let tasks = [
        with_checks(task(0, 1, TaskStatus::Running, 1.0), HealthStatus::Healthy),
        with_checks(task(1, 1, TaskStatus::Running, 3.0), HealthStatus::Healthy),
        with_checks(task(2, 1, TaskStatus::Running, 2.0), HealthStatus::Unhealthy),
    ];
    let p = plan(&s, &tasks);
    assert_eq!(stopped_ids(&p), [2, 1]);
    assert_eq!(messages(&p.service)[0], format!("(service web) has stopped 2 running tasks: (task {:032x}) (task {:032x}).", 2, 1));
    assert!(p.stop.iter().all(|s| s.reason == "Scaling activity initiated by (deployment ecs-svc/1)"));
}

#[test]
fn an_unhealthy_task_is_replaced_after_the_grace_period_only() {
    let mut s = service(2);
    s.health_check_grace_period_seconds = Some(300);
    let tasks = [
        with_checks(task(0, 1, TaskStatus::Running, 1.0), HealthStatus::Healthy),
        with_checks(task(1, 1, TaskStatus::Running, 1.0), HealthStatus::Unhealthy),
    ];
    let p = plan(&s, &tasks);
    assert!(p.stop.is_empty(), "started 100 s ago, grace is 300 s");
    assert_eq!(p.wake_at, Some(NOW - 100.0 + 300.0));
    s.health_check_grace_period_seconds = Some(60);
    let p = plan(&s, &tasks);
    assert_eq!(stopped_ids(&p), [1]);
    assert_eq!(p.stop[0].reason, "Task failed container health checks");
    assert_eq!(p.service.primary().unwrap().failed_tasks, 1, "a failed health check counts for the breaker");
    assert_eq!(p.launch, 1, "the replacement starts at once: the maximum leaves room beside the one stopping");
}

#[test]
fn the_breaker_fails_the_deployment_and_rolls_back_to_the_completed_one() {
    let cfg = DeploymentConfiguration {
        circuit_breaker: Some(CircuitBreaker { enable: true, rollback: true }),
        ..percent(100, 200)
    };
    let (mut s, mut tasks) = rolling(2, cfg);
    let threshold = failure_threshold(2);
    assert_eq!(threshold, 3, "half of 2, but at least 3");
    let bad: Vec<Task> = (0..threshold).map(|i| failed(20 + i, 2)).collect();
    s.deployments[0].in_flight = bad.iter().map(|t| t.id().to_owned()).collect();
    tasks.extend(bad);
    let p = plan(&s, &tasks);
    let failed = p.service.deployment(2).unwrap();
    assert_eq!(failed.rollout_state, RolloutState::Failed);
    assert_ne!(failed.status, DeploymentStatus::Primary);
    let primary = p.service.primary().unwrap();
    assert_eq!((primary.number, primary.rollback), (1, true), "the completed deployment is PRIMARY again");
    assert_eq!(p.service.task_definition, revision(1));
    let said = messages(&p.service);
    assert!(said.contains(&"(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start."), "{said:?}");
    assert!(said.contains(&"(service web) rolling back to deployment ecs-svc/1."), "{said:?}");
    // The old tasks are the primary's again: nothing to launch. The
    // rollback is in progress for a while, the failed deployment shown
    // beside it (ACTIVE, FAILED), as ECS shows it to a poller.
    assert_eq!(p.launch, 0);
    assert_eq!((failed.status, failed.rollout_state), (DeploymentStatus::Active, RolloutState::Failed));
    assert_eq!(primary.rollout_state, RolloutState::InProgress);
    assert_eq!(p.wake_at, Some(NOW + ROLLBACK_SETTLE_SECS), "looked at again when the rollback may complete");
    let p = plan_at(&p.service, &tasks, NOW + ROLLBACK_SETTLE_SECS - 1.0);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::InProgress);
    assert_eq!(p.service.deployment(2).unwrap().rollout_state, RolloutState::Failed);
    assert_eq!(p.service.deployment(2).unwrap().status, DeploymentStatus::Active, "still shown");
    // With nothing left in the failed deployment, the rollback is done.
    let p = plan_at(&p.service, &tasks, NOW + ROLLBACK_SETTLE_SECS);
    assert_eq!(p.service.deployment(2).unwrap().status, DeploymentStatus::Inactive);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Completed);
}

#[test]
fn a_failed_deployment_stays_shown_until_its_rollback_completes() {
    let cfg = DeploymentConfiguration {
        circuit_breaker: Some(CircuitBreaker { enable: true, rollback: true }),
        ..percent(50, 200)
    };
    let (mut s, mut tasks) = rolling(2, cfg);
    tasks[1] = task(1, 1, TaskStatus::Stopped, 1.0); // drained for the bad revision
    let bad: Vec<Task> = (0..3).map(|i| failed(20 + i, 2)).collect();
    s.deployments[0].in_flight = bad.iter().map(|t| t.id().to_owned()).collect();
    tasks.extend(bad);
    let p = plan(&s, &tasks);
    let failed = p.service.deployment(2).unwrap();
    assert_eq!((failed.status, failed.rollout_state), (DeploymentStatus::Active, RolloutState::Failed));
    assert_eq!(p.launch, 1, "the rollback refills the slot the bad revision took");
    tasks.push(task(30, 1, TaskStatus::Running, 60.0));
    let p = plan_at(&p.service, &tasks, NOW + ROLLBACK_SETTLE_SECS);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Completed);
    assert_eq!(p.service.deployment(2).unwrap().status, DeploymentStatus::Inactive, "gone once the rollback is done");
}

#[test]
fn a_task_ending_by_itself_holds_its_slot_until_it_is_counted() {
    let mut s = service(1);
    let mut t = task(0, 1, TaskStatus::Provisioning, 0.0);
    t.apply_all(&[TaskEvent::Provisioned, TaskEvent::StartFailed]).unwrap();
    t.set_stop_reason(StopCode::TaskFailedToStart, "CannotPullContainerError");
    assert_eq!(t.status(), TaskStatus::Stopping);
    s.deployments[0].in_flight = vec![t.id().to_owned()];
    let p = plan(&s, std::slice::from_ref(&t));
    assert_eq!(p.launch, 0, "not replaced before it is STOPPED and its failure counted");
    let mut stopped = t.clone();
    stopped.apply_all(&[TaskEvent::ContainersStopped, TaskEvent::Deprovisioned]).unwrap();
    let p = plan(&p.service, &[stopped]);
    assert_eq!((p.launch, p.service.primary().unwrap().throttle.failures), (1, 1));
}

#[test]
fn without_rollback_a_failed_deployment_launches_nothing() {
    let mut s = service(1);
    s.deployment_configuration.circuit_breaker = Some(CircuitBreaker { enable: true, rollback: false });
    let bad: Vec<Task> = (0..3).map(|i| failed(i, 1)).collect();
    s.deployments[0].in_flight = bad.iter().map(|t| t.id().to_owned()).collect();
    let p = plan(&s, &bad);
    let d = p.service.primary().unwrap();
    assert_eq!((d.rollout_state, d.number), (RolloutState::Failed, 1));
    assert_eq!(d.rollout_state_reason.as_deref(), Some("ECS deployment circuit breaker: tasks failed to start."));
    assert_eq!(p.launch, 0);
}

#[test]
fn a_failed_deployment_does_not_drain_the_one_before() {
    let cfg = DeploymentConfiguration {
        circuit_breaker: Some(CircuitBreaker { enable: true, rollback: false }),
        ..percent(50, 200)
    };
    let (mut s, mut tasks) = rolling(4, cfg);
    let bad: Vec<Task> = (0..3).map(|i| failed(20 + i, 2)).collect();
    s.deployments[0].in_flight = bad.iter().map(|t| t.id().to_owned()).collect();
    tasks.extend(bad);
    let p = plan(&s, &tasks);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Failed);
    assert!(p.stop.is_empty(), "min 50 % would let two old tasks go, but nothing replaces them: {:?}", p.stop);
    assert_eq!(p.launch, 0);
}

#[test]
fn a_deployment_whose_task_ran_counts_only_health_check_failures() {
    let mut s = service(2);
    s.deployment_configuration.circuit_breaker = Some(CircuitBreaker { enable: true, rollback: false });
    let mut tasks = vec![task(0, 1, TaskStatus::Running, 1.0)];
    let bad: Vec<Task> = (1..5).map(|i| failed(i, 1)).collect();
    s.deployments[0].in_flight = bad.iter().map(|t| t.id().to_owned()).collect();
    tasks.extend(bad);
    let p = plan(&s, &tasks);
    let d = p.service.primary().unwrap();
    assert!(d.ran);
    assert_eq!((d.failed_tasks, d.rollout_state), (0, RolloutState::InProgress));
}

#[test]
fn tasks_that_fail_to_start_throttle_launches() {
    let mut s = service(1);
    let first = failed(0, 1);
    s.deployments[0].in_flight = vec![first.id().to_owned()];
    let p = plan(&s, std::slice::from_ref(&first));
    assert_eq!(p.launch, 1, "the first failure retries at once");
    let mut s = p.service;
    let second = failed(1, 1);
    s.deployments[0].in_flight.push(second.id().to_owned());
    let p = plan(&s, &[first.clone(), second.clone()]);
    assert_eq!(p.launch, 0, "the second waits");
    assert_eq!(p.service.primary().unwrap().throttle.failures, 2);
    assert_eq!(p.wake_at, Some(NOW + throttle_delay(2)));
    assert_eq!(messages(&p.service)[0], "(service web) is unable to consistently start tasks successfully.");
    let later = plan_at(&p.service, &[first, second], NOW + throttle_delay(2));
    assert_eq!(later.launch, 1, "and launches when the wait is over");
    assert_eq!(later.service.events.len(), p.service.events.len(), "the cause is said once");
}

#[test]
fn a_container_that_exits_at_once_failed_to_start() {
    let mut t = task(0, 1, TaskStatus::Stopped, 1.0);
    t.times.started_at = Some(NOW - 2.0);
    assert!(failed_to_start(&t), "exited 1 s after it started");
    t.times.started_at = Some(NOW - 60.0);
    assert!(!failed_to_start(&t), "ran for a minute");
    assert!(failed_to_start(&failed(1, 1)));
}

#[test]
fn the_throttle_grows_to_ecs_maximum() {
    let delays: Vec<f64> = (1..=12).map(throttle_delay).collect();
    assert_eq!(&delays[..4], [0.0, 10.0, 20.0, 40.0]);
    assert!(delays.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(throttle_delay(40), 27.0 * 60.0);
}

#[test]
fn a_draining_service_stops_everything_then_goes_inactive() {
    let mut s = service(2);
    s.status = ServiceStatus::Draining;
    s.desired_count = 0;
    let mut tasks = vec![task(0, 1, TaskStatus::Running, 1.0), task(1, 1, TaskStatus::Pending, 1.0)];
    let p = plan(&s, &tasks);
    assert_eq!(stopped_ids(&p), [0, 1]);
    assert_eq!(p.service.status, ServiceStatus::Draining);
    for t in &mut tasks {
        t.request_stop(StopCode::ServiceSchedulerInitiated, "x", NOW);
    }
    tasks[0] = task(0, 1, TaskStatus::Stopped, 1.0);
    tasks[1].apply(TaskEvent::StopRequested).unwrap();
    let p = plan(&p.service, &tasks);
    assert!(p.stop.is_empty());
    assert_eq!(p.service.status, ServiceStatus::Draining, "a task is still stopping");
    tasks[1].apply_all(&[TaskEvent::ContainersStopped, TaskEvent::Deprovisioned]).unwrap();
    let p = plan(&p.service, &tasks);
    assert_eq!(p.service.status, ServiceStatus::Inactive, "every task is STOPPED");
    assert!(p.service.deployments.iter().all(|d| d.status == DeploymentStatus::Inactive));
}

#[test]
fn three_to_zero_to_two() {
    let mut s = service(3);
    let tasks: Vec<Task> = (0..3).map(|i| task(i, 1, TaskStatus::Running, 1.0)).collect();
    s.desired_count = 0;
    let p = plan(&s, &tasks);
    assert_eq!(p.stop.len(), 3);
    let mut s = p.service;
    s.desired_count = 2;
    let stopped: Vec<Task> = (0..3).map(|i| task(i, 1, TaskStatus::Stopped, 1.0)).collect();
    let p = plan(&s, &stopped);
    assert_eq!(p.launch, 2);
}

#[test]
fn a_launch_is_recorded_with_ecs_event_and_a_shortage_waits() {
    let mut s = service(3);
    let mut n = 0u64;
    let mut fresh = move || {
        n += 1;
        n
    };
    let targets = Targets::default();
    let mut env = Env { now: NOW, fresh: &mut fresh, targets: &targets };
    let out = Launched { started: vec!["a1".into(), "b2".into()], shortage: Some("RESOURCE:MEMORY".into()) };
    record_launch(&mut s, 1, &out, &mut env);
    let d = s.primary().unwrap();
    assert_eq!(d.in_flight, ["a1", "b2"]);
    let wait = d.capacity_wait.unwrap();
    assert_eq!((wait.attempts, wait.not_before), (1, NOW + capacity_delay(1)));
    assert_eq!(
        messages(&s),
        [
            "(service web) was unable to place a task because no container instance met all of its requirements. Reason: RESOURCE:MEMORY. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
            "(service web) has started 2 tasks: (task a1) (task b2).",
        ]
    );
    let tasks = [task(0xa1, 1, TaskStatus::Pending, 1.0)];
    let p = plan(&s, &tasks);
    assert_eq!(p.launch, 0, "no launch before the wait is over");
    assert_eq!(p.wake_at, Some(wait.not_before));
    record_launch(&mut s, 1, &Launched { started: vec!["c3".into()], shortage: None }, &mut env);
    assert!(s.primary().unwrap().capacity_wait.is_none(), "room again ends the wait");
}

#[path = "tests_balancing.rs"]
mod balancing;
