//! The service scheduler with load balancers, as tables: registration,
//! health gating, replacement on failed ELB health checks, drains before
//! stops.

use std::net::Ipv4Addr;

use berth_model::service::{LoadBalancerRef, Registration, RegistryRef};
use berth_model::task::{Eni, EniStatus, Networking};

use super::*;
use crate::service::balancing::{TargetState, Targets};

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";

fn lb_service(desired: u32) -> Service {
    let mut s = service(desired);
    s.load_balancers = vec![LoadBalancerRef {
        target_group_arn: Some(TG.into()),
        load_balancer_name: None,
        container_name: Some("app".into()),
        container_port: Some(80),
    }];
    s
}

fn ip(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 10 + id as u8)
}

/// A task as `task` makes it, with an address.
fn lb_task(id: u32, number: u64, status: TaskStatus, created: f64) -> Task {
    with_address(task(id, number, status, created))
}

fn reg(id: u32) -> Registration {
    Registration { task_id: format!("{id:032x}"), target_group_arn: TG.into(), ip: ip(id), port: 80 }
}

fn targets(states: &[(u32, TargetState)]) -> Targets {
    let mut t = Targets::default();
    for (id, state) in states {
        t.set(&reg(*id), state.clone());
    }
    t
}

/// `s` as the plan wrote it, with every task's target registered.
fn registered(mut s: Service, ids: &[u32]) -> Service {
    s.registered = ids.iter().map(|&i| reg(i)).collect();
    s
}

#[test]
fn running_tasks_are_registered_once_with_ecs_event() {
    let s = lb_service(2);
    let tasks = [lb_task(0, 1, TaskStatus::Running, 1.0), lb_task(1, 1, TaskStatus::Pending, 1.0)];
    let p = plan(&s, &tasks);
    assert_eq!(p.register, [reg(0)], "only the RUNNING task, at containerPort");
    assert_eq!(p.service.registered, [reg(0)]);
    assert!(messages(&p.service).contains(&format!("(service web) registered 1 targets in (target-group {TG})").as_str()));
    let again = plan(&p.service, &tasks);
    assert!(again.register.is_empty(), "registered once");
}

#[test]
fn a_deployment_completes_only_once_its_targets_are_healthy() {
    let s = registered(lb_service(2), &[0, 1]);
    let tasks = [lb_task(0, 1, TaskStatus::Running, 1.0), lb_task(1, 1, TaskStatus::Running, 1.0)];
    let initial = targets(&[(0, TargetState::Healthy), (1, TargetState::Initial)]);
    let p = plan_with(&s, &tasks, NOW, &initial);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::InProgress, "one target is still initial");
    assert_eq!(p.wake_at, Some(NOW + TARGET_RECHECK_SECS), "looked at again soon");
    let healthy = targets(&[(0, TargetState::Healthy), (1, TargetState::Healthy)]);
    let p = plan_with(&p.service, &tasks, NOW + 5.0, &healthy);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Completed);
}

#[test]
fn a_target_failing_its_health_checks_replaces_the_task_after_the_grace_period() {
    let mut s = registered(lb_service(2), &[0, 1]);
    s.health_check_grace_period_seconds = Some(120);
    let tasks = [lb_task(0, 1, TaskStatus::Running, 1.0), lb_task(1, 1, TaskStatus::Running, 1.0)];
    let unhealthy = targets(&[(0, TargetState::Healthy), (1, TargetState::Unhealthy)]);
    // Started 100 s before NOW: still in its grace period.
    let p = plan_with(&s, &tasks, NOW, &unhealthy);
    assert!(p.stop.is_empty() && p.deregister.is_empty(), "{p:?}");
    assert_eq!(p.wake_at, Some(NOW + TARGET_RECHECK_SECS), "an unhealthy target is looked at again soon");
    let p = plan_with(&s, &tasks, NOW + 30.0, &unhealthy);
    assert_eq!(p.deregister, [reg(1)], "taken out of the target group first");
    assert!(p.stop.is_empty(), "stopped once drained");
    let d = &p.service.draining[0];
    assert_eq!(d.reason, format!("Task failed ELB health checks in (target-group {TG})"));
    assert_eq!(p.service.primary().unwrap().failed_tasks, 1, "counts for the circuit breaker");
    assert_eq!(p.launch, 1, "its replacement starts while it drains");
}

#[test]
fn a_task_is_drained_before_the_scheduler_stops_it() {
    let (s, mut tasks) = rolling(1, percent(100, 200));
    let mut s = lb_service_like(s);
    tasks = tasks.into_iter().map(with_address).collect();
    tasks.push(lb_task(7, 2, TaskStatus::Running, NOW - 50.0));
    s.registered = vec![reg(0), reg(7)];
    let all_healthy = targets(&[(0, TargetState::Healthy), (7, TargetState::Healthy)]);
    let p = plan_with(&s, &tasks, NOW, &all_healthy);
    assert!(p.stop.is_empty(), "not stopped while registered: {:?}", p.stop);
    assert_eq!(p.deregister, [reg(0)]);
    assert_eq!(p.service.registered, [reg(7)]);
    let said = messages(&p.service);
    assert!(said.contains(&"(service web) has begun draining connections on 1 tasks."), "{said:?}");
    assert!(said.contains(&format!("(service web) deregistered 1 targets in (target-group {TG})").as_str()), "{said:?}");
    assert_ne!(p.service.primary().unwrap().rollout_state, RolloutState::Completed, "not while a task drains");

    // Draining for 300 s: nothing is stopped, the controller looks again then.
    let draining = targets(&[(0, TargetState::Draining { until: Some(NOW + 300.0) }), (7, TargetState::Healthy)]);
    let p = plan_with(&p.service, &tasks, NOW + 1.0, &draining);
    assert!(p.stop.is_empty() && p.deregister.is_empty() && p.register.is_empty(), "{p:?}");
    assert_eq!(p.wake_at, Some(NOW + 300.0));

    // The target is gone: the task stops for the reason chosen at first.
    let gone = targets(&[(7, TargetState::Healthy)]);
    let p = plan_with(&p.service, &tasks, NOW + 301.0, &gone);
    assert_eq!(stopped_ids(&p), [0]);
    assert_eq!(p.stop[0].reason, "Scaling activity initiated by (deployment ecs-svc/1)");
    assert!(p.service.draining.is_empty());
}

#[test]
fn a_task_that_ends_by_itself_is_deregistered_at_once() {
    let s = registered(lb_service(1), &[0]);
    let mut t = lb_task(0, 1, TaskStatus::Running, 1.0);
    t.apply(TaskEvent::EssentialContainerExited).unwrap();
    let p = plan_with(&s, &[t], NOW, &targets(&[(0, TargetState::Healthy)]));
    assert_eq!(p.deregister, [reg(0)]);
    assert!(p.service.registered.is_empty() && p.service.draining.is_empty());
}

#[test]
fn a_deleted_service_drains_its_tasks_before_stopping_them() {
    let mut s = registered(lb_service(1), &[0]);
    s.status = ServiceStatus::Draining;
    s.desired_count = 0;
    let tasks = [lb_task(0, 1, TaskStatus::Running, 1.0)];
    let p = plan_with(&s, &tasks, NOW, &targets(&[(0, TargetState::Healthy)]));
    assert!(p.stop.is_empty());
    assert_eq!(p.deregister, [reg(0)]);
    let p = plan_with(&p.service, &tasks, NOW + 10.0, &Targets::default());
    assert_eq!(stopped_ids(&p), [0]);
}

#[test]
fn without_load_balancers_targets_change_nothing() {
    let s = service(1);
    let tasks = [lb_task(0, 1, TaskStatus::Running, 1.0)];
    let p = plan(&s, &tasks);
    assert!(p.register.is_empty() && p.deregister.is_empty());
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Completed);
}

fn lb_service_like(mut s: Service) -> Service {
    s.load_balancers = lb_service(1).load_balancers;
    s
}

fn with_address(mut t: Task) -> Task {
    let id = u32::from_str_radix(t.id(), 16).unwrap();
    t.network = Some(Networking {
        subnets: vec!["subnet-1".into()],
        security_groups: Vec::new(),
        assign_public_ip: false,
        eni: Eni {
            attachment_id: "a".into(),
            status: EniStatus::Attached,
            subnet_id: "subnet-1".into(),
            ip: Some(ip(id)),
            mac: None,
        },
    });
    t
}

const REGISTRY: &str = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-0123456789abcdef";

#[test]
fn registry_entries_register_and_deregister_without_judging_health_or_saying_target_events() {
    let mut s = service(1);
    s.service_registries = vec![RegistryRef { registry_arn: Some(REGISTRY.into()), port: None, container_name: None, container_port: None }];
    let tasks = [lb_task(0, 1, TaskStatus::Running, 1.0)];
    let p = plan(&s, &tasks);
    let entry = Registration { task_id: format!("{:032x}", 0), target_group_arn: REGISTRY.into(), ip: ip(0), port: 0 };
    assert_eq!(p.register, [entry.clone()]);
    assert_eq!(p.service.primary().unwrap().rollout_state, RolloutState::Completed, "registries gate nothing");
    assert!(!messages(&p.service).iter().any(|m| m.contains("targets in")), "{:?}", messages(&p.service));

    // Scaled to 0: the entry goes first, then the task stops.
    let mut s = p.service.clone();
    s.desired_count = 0;
    let mut present = Targets::default();
    present.set(&entry, TargetState::Healthy);
    let p = plan_with(&s, &tasks, NOW, &present);
    assert_eq!((p.deregister.clone(), p.stop.len()), (vec![entry], 0));
    assert!(!messages(&p.service).iter().any(|m| m.contains("draining connections")));
    let p = plan_with(&p.service, &tasks, NOW + 1.0, &Targets::default());
    assert_eq!(stopped_ids(&p), [0]);
}
