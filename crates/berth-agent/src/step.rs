//! The driver's decision, apart from its effects: from the task as stored
//! and the runtime's report of it, the one next step. Pure, and tested as
//! a table like the lifecycle itself; `driver.rs` carries steps out.

use berth_model::lifecycle::{ContainerStatus, DesiredStatus, TaskEvent, TaskStatus};
use berth_model::task::{HealthStatus, StopCode, Task};
use berth_runtime_api::{ContainerState, ContainerReport, HealthStatus as RuntimeHealth, TaskReport};

/// What the driver does next for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// STOPPED: the driver is done.
    Done,
    /// PROVISIONING: the task's network, then PENDING.
    Provision,
    /// PENDING: pull the images and start the containers (or re-attach to
    /// ones an earlier agent started).
    Start,
    /// A live task is wanted stopped: StopRequested.
    RequestStop,
    /// The node holds nothing of a task that was started: its state was lost.
    Lost,
    /// An essential container is done: the task ends.
    Finished(Ending),
    /// ACTIVATING and no container waits any more: RUNNING.
    Activate,
    /// Running (or waiting on dependencies): record what changed, wait.
    Watch,
    /// DEACTIVATING: SIGTERM, stopTimeout, SIGKILL; then Deactivated.
    Deactivate,
    /// STOPPING: collect the exits; then ContainersStopped.
    CollectExits,
    /// DEPROVISIONING: ship the last logs, release everything; STOPPED.
    Deprovision,
}

/// How a task that finished by ECS rules ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub event: TaskEvent,
    pub code: StopCode,
    pub reason: String,
    /// Some container ran, however briefly (the task has a startedAt).
    pub ran: bool,
}

/// Whether the step for a task in `status` depends on the runtime's report.
pub fn needs_report(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Activating | TaskStatus::Running)
}

/// The next step for `task`. `report` is the runtime's view of a started
/// task (`None`: the runtime holds nothing of it); it is only looked at
/// where [`needs_report`] says so.
pub fn next_step(task: &Task, report: Option<&TaskReport>) -> Step {
    let stop_wanted = task.desired() == DesiredStatus::Stopped;
    match task.status() {
        TaskStatus::Stopped => Step::Done,
        TaskStatus::Provisioning | TaskStatus::Pending if stop_wanted => Step::RequestStop,
        TaskStatus::Provisioning => Step::Provision,
        TaskStatus::Pending => Step::Start,
        TaskStatus::Activating | TaskStatus::Running => match report {
            None => Step::Lost,
            Some(r) if r.is_finished() => Step::Finished(ending(r)),
            Some(_) if stop_wanted => Step::RequestStop,
            Some(r) if task.status() == TaskStatus::Activating && !r.any_waiting() => Step::Activate,
            Some(_) => Step::Watch,
        },
        TaskStatus::Deactivating => Step::Deactivate,
        TaskStatus::Stopping => Step::CollectExits,
        TaskStatus::Deprovisioning => Step::Deprovision,
    }
}

/// A PENDING task the runtime holds but in which nothing ever ran nor
/// runs (every container Lost: no exit recorded, no process): its start
/// was cut short by an agent restart, and it is started again rather
/// than ended.
pub fn interrupted_start(report: &TaskReport) -> bool {
    !report.containers.is_empty() && report.containers.iter().all(|c| c.state == ContainerState::Lost)
}

/// Why a task ends whose essential container nobody saw end: its
/// supervisor (the shim, or the guest) was killed, and the runtime
/// killed what it left unsupervised.
pub const LOST_REASON: &str =
    "Essential container in task exited: the task's supervisor on the node died, so its containers were stopped and their exit status is unknown";

/// Why a finished task ends: an essential container that will never start
/// makes it TaskFailedToStart with that container's reason; otherwise an
/// essential container exited.
pub fn ending(report: &TaskReport) -> Ending {
    let never_started = report.containers.iter().find_map(|c| match &c.state {
        ContainerState::NotStarted(n) if c.essential => Some(n.reason.clone()),
        _ => None,
    });
    let ran = report.containers.iter().any(|c| matches!(c.state, ContainerState::Exited(_) | ContainerState::Running { .. }));
    let lost = report.containers.iter().any(|c| c.essential && c.state == ContainerState::Lost);
    match never_started {
        None if lost => Ending {
            event: TaskEvent::EssentialContainerExited,
            code: StopCode::EssentialContainerExited,
            reason: LOST_REASON.to_owned(),
            ran,
        },
        Some(reason) => Ending { event: TaskEvent::StartFailed, code: StopCode::TaskFailedToStart, reason, ran },
        None => Ending {
            event: TaskEvent::EssentialContainerExited,
            code: StopCode::EssentialContainerExited,
            reason: "Essential container in task exited".to_owned(),
            ran,
        },
    }
}

/// Copies the runtime's container states (and health) into the task's
/// containers, and the task's health from its essential containers'.
/// A container never moves backwards: a report older than what is
/// recorded leaves it as it is.
pub fn record_states(task: &mut Task, states: &[ContainerReport]) {
    for s in states {
        let Some(c) = task.container_mut(&s.name) else { continue };
        let to = match &s.state {
            ContainerState::Waiting => ContainerStatus::Pending,
            ContainerState::Running { pid } => {
                c.runtime_id.get_or_insert_with(|| format!("{}-{pid}", s.name));
                ContainerStatus::Running
            }
            ContainerState::Exited(exit) => {
                c.exit_code = Some(exit.exit_code);
                if let Some(reason) = exit.reason() {
                    c.reason = Some(reason.to_owned());
                }
                ContainerStatus::Stopped
            }
            ContainerState::NotStarted(n) => {
                c.reason = Some(n.reason.clone());
                ContainerStatus::Stopped
            }
            ContainerState::Lost => {
                c.reason.get_or_insert_with(|| "Container exit status unknown: its supervisor was gone.".into());
                ContainerStatus::Stopped
            }
        };
        // Refused only for a stale report (RUNNING after STOPPED): keep what is known.
        let _ = c.advance(to);
        if let Some(h) = &s.health {
            c.health = Some(health(h.status));
        }
    }
    if let Some(h) = task_health(states) {
        task.health = h;
    }
}

/// After a stop: the containers' exits, or (when the runtime held nothing
/// of the task) every container STOPPED.
pub fn record_exits(task: &mut Task, exits: Option<&[ContainerReport]>) {
    match exits {
        Some(states) => record_states(task, states),
        None => task.stop_all_containers(None),
    }
}

fn health(h: RuntimeHealth) -> HealthStatus {
    match h {
        RuntimeHealth::Unknown => HealthStatus::Unknown,
        RuntimeHealth::Healthy => HealthStatus::Healthy,
        RuntimeHealth::Unhealthy => HealthStatus::Unhealthy,
    }
}

/// ECS's task health: UNHEALTHY if an essential container with a health
/// check is, HEALTHY if all of them are, else UNKNOWN; `None` when no
/// essential container has a check.
fn task_health(states: &[ContainerReport]) -> Option<HealthStatus> {
    let checked: Vec<RuntimeHealth> =
        states.iter().filter(|s| s.essential).filter_map(|s| s.health.as_ref().map(|h| h.status)).collect();
    if checked.is_empty() {
        None
    } else if checked.contains(&RuntimeHealth::Unhealthy) {
        Some(HealthStatus::Unhealthy)
    } else if checked.iter().all(|h| *h == RuntimeHealth::Healthy) {
        Some(HealthStatus::Healthy)
    } else {
        Some(HealthStatus::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use berth_model::task::{NewTask, build};
    use berth_model::testing;
    use berth_runtime_api::{ContainerExit, Health, NotStarted, TaskId};

    use super::*;

    fn task_in(status: TaskStatus, stop_wanted: bool) -> Task {
        let acct = testing::account();
        let def = testing::definition(&acct, "web", &["c0"]);
        let mut t = build(NewTask::plain(&acct, "default", "0123456789abcdef0123456789abcdef", &def, 0.0)).unwrap();
        let path: &[TaskEvent] = match status {
            TaskStatus::Provisioning => &[],
            TaskStatus::Pending => &[TaskEvent::Provisioned],
            TaskStatus::Activating => &[TaskEvent::Provisioned, TaskEvent::ContainersStarted],
            TaskStatus::Running => &[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated],
            TaskStatus::Deactivating => &[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::StopRequested],
            TaskStatus::Stopping => &[TaskEvent::Provisioned, TaskEvent::StopRequested],
            TaskStatus::Deprovisioning => &[TaskEvent::StopRequested],
            TaskStatus::Stopped => &[TaskEvent::StopRequested, TaskEvent::Deprovisioned],
        };
        t.apply_all(path).unwrap();
        assert_eq!(t.status(), status);
        if stop_wanted {
            t.request_stop(StopCode::UserInitiated, "stop", 1.0);
        }
        t
    }

    fn report(states: &[(bool, ContainerState)]) -> TaskReport {
        TaskReport {
            task_id: TaskId::new("t").unwrap(),
            containers: states
                .iter()
                .enumerate()
                .map(|(i, (essential, state))| ContainerReport {
                    name: format!("c{i}"),
                    essential: *essential,
                    state: state.clone(),
                    health: None,
                })
                .collect(),
        }
    }

    fn exited(code: i32) -> ContainerState {
        ContainerState::Exited(ContainerExit { exit_code: code, signal: None, oom_killed: false, finished_at: SystemTime::UNIX_EPOCH })
    }

    const RUN: ContainerState = ContainerState::Running { pid: 7 };

    #[test]
    fn the_step_table() {
        use TaskStatus as S;
        let running = report(&[(true, RUN)]);
        let waiting = report(&[(true, RUN), (false, ContainerState::Waiting)]);
        let done = report(&[(true, exited(3))]);
        let never = report(&[(true, ContainerState::NotStarted(NotStarted { reason: "CannotStartContainerError: x".into() }))]);
        let exit = Step::Finished(ending(&done));
        let table: Vec<(S, bool, Option<&TaskReport>, Step)> = vec![
            (S::Provisioning, false, None, Step::Provision),
            (S::Provisioning, true, None, Step::RequestStop),
            (S::Pending, false, None, Step::Start),
            (S::Pending, true, None, Step::RequestStop),
            (S::Activating, false, Some(&waiting), Step::Watch),
            (S::Activating, false, Some(&running), Step::Activate),
            (S::Activating, true, Some(&waiting), Step::RequestStop),
            (S::Activating, false, Some(&done), exit.clone()),
            (S::Activating, false, None, Step::Lost),
            (S::Running, false, Some(&running), Step::Watch),
            (S::Running, false, Some(&waiting), Step::Watch),
            (S::Running, true, Some(&running), Step::RequestStop),
            // An exit seen before the stop request is handled wins: the task
            // ended by itself, and says so.
            (S::Running, true, Some(&done), exit.clone()),
            (S::Running, false, Some(&never), Step::Finished(ending(&never))),
            (S::Running, false, None, Step::Lost),
            (S::Deactivating, false, None, Step::Deactivate),
            (S::Deactivating, true, Some(&running), Step::Deactivate),
            (S::Stopping, true, None, Step::CollectExits),
            (S::Deprovisioning, false, None, Step::Deprovision),
            (S::Stopped, false, None, Step::Done),
            (S::Stopped, true, Some(&running), Step::Done),
        ];
        for (status, stop, r, want) in table {
            let t = task_in(status, stop);
            assert_eq!(next_step(&t, r), want, "{status} stop_wanted={stop} report={r:?}");
        }
    }

    #[test]
    fn every_step_is_a_valid_event_of_its_state() {
        // The events the driver applies for each step are allowed from the
        // states that lead to it: no step can loop on a refused transition.
        let cases = [
            (TaskStatus::Provisioning, TaskEvent::Provisioned),
            (TaskStatus::Provisioning, TaskEvent::StopRequested),
            (TaskStatus::Pending, TaskEvent::ContainersStarted),
            (TaskStatus::Pending, TaskEvent::StartFailed),
            (TaskStatus::Activating, TaskEvent::Activated),
            (TaskStatus::Running, TaskEvent::EssentialContainerExited),
            (TaskStatus::Running, TaskEvent::StartFailed),
            (TaskStatus::Deactivating, TaskEvent::Deactivated),
            (TaskStatus::Stopping, TaskEvent::ContainersStopped),
            (TaskStatus::Deprovisioning, TaskEvent::Deprovisioned),
        ];
        for (status, event) in cases {
            assert!(berth_model::lifecycle::transition(status, event).is_ok(), "{status} + {event:?}");
        }
    }

    #[test]
    fn an_essential_container_that_never_starts_fails_the_task() {
        let r = report(&[
            (false, exited(0)),
            (true, ContainerState::NotStarted(NotStarted { reason: "dependency on init cannot be met".into() })),
        ]);
        let e = ending(&r);
        assert_eq!((e.event, e.code, e.ran), (TaskEvent::StartFailed, StopCode::TaskFailedToStart, true));
        assert!(e.reason.contains("dependency"));
        let e = ending(&report(&[(true, exited(1))]));
        assert_eq!((e.event, e.code), (TaskEvent::EssentialContainerExited, StopCode::EssentialContainerExited));
        assert_eq!(e.reason, "Essential container in task exited");
    }

    #[test]
    fn a_start_cut_short_is_one_where_nothing_ran() {
        assert!(interrupted_start(&report(&[(true, ContainerState::Lost), (false, ContainerState::Lost)])));
        assert!(!interrupted_start(&report(&[(true, ContainerState::Lost), (false, exited(0))])), "something ran");
        assert!(!interrupted_start(&report(&[(true, RUN)])));
        assert!(!interrupted_start(&report(&[])));
    }

    #[test]
    fn a_lost_essential_container_says_its_supervisor_died() {
        let e = ending(&report(&[(false, exited(0)), (true, ContainerState::Lost)]));
        assert_eq!((e.event, e.code), (TaskEvent::EssentialContainerExited, StopCode::EssentialContainerExited));
        assert_eq!(e.reason, LOST_REASON);
        // A lost non-essential container is not the task's end's cause.
        let e = ending(&report(&[(false, ContainerState::Lost), (true, exited(1))]));
        assert_eq!(e.reason, "Essential container in task exited");
    }

    #[test]
    fn states_are_recorded_and_never_go_backwards() {
        let mut t = task_in(TaskStatus::Running, false);
        record_states(&mut t, &report(&[(true, RUN)]).containers);
        assert_eq!(t.containers[0].status(), ContainerStatus::Running);
        assert_eq!(t.containers[0].runtime_id.as_deref(), Some("c0-7"));
        record_states(&mut t, &report(&[(true, exited(3))]).containers);
        assert_eq!((t.containers[0].status(), t.containers[0].exit_code), (ContainerStatus::Stopped, Some(3)));
        record_states(&mut t, &report(&[(true, RUN)]).containers);
        assert_eq!(t.containers[0].status(), ContainerStatus::Stopped, "a stale report does not revive it");
    }

    fn with_health(essential: bool, h: Option<RuntimeHealth>) -> ContainerReport {
        ContainerReport {
            name: "c".into(),
            essential,
            state: ContainerState::Running { pid: 1 },
            health: h.map(|status| Health { status, ..Health::unknown() }),
        }
    }

    #[test]
    fn task_health_follows_essential_containers_with_checks() {
        use RuntimeHealth as R;
        let cases = [
            (vec![with_health(true, None)], None),
            (vec![with_health(true, Some(R::Healthy)), with_health(true, None)], Some(HealthStatus::Healthy)),
            (vec![with_health(true, Some(R::Healthy)), with_health(true, Some(R::Unknown))], Some(HealthStatus::Unknown)),
            (vec![with_health(true, Some(R::Unknown)), with_health(true, Some(R::Unhealthy))], Some(HealthStatus::Unhealthy)),
            (vec![with_health(true, Some(R::Healthy)), with_health(false, Some(R::Unhealthy))], Some(HealthStatus::Healthy)),
        ];
        for (states, want) in cases {
            assert_eq!(task_health(&states), want, "{states:?}");
        }
    }
}
