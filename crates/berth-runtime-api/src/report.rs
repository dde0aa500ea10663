//! What a runtime reports about a task: container states, exits, usage.
//!
//! [`ContainerExit`], [`NotStarted`] and [`Health`] are also the sandbox
//! shim's on-disk records (`exit.json`, `not-started.json`,
//! `health.json`), read by whichever agent runs next: a stable format,
//! held by fixture tests in `berth-runtime`. Unknown fields are ignored;
//! a field added later must be `#[serde(default)]`.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::TaskId;

/// ECS's reason for a container the kernel killed for memory.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How a container's main process ended, as the shim saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerExit {
    /// The exit code, Docker-style: `128 + signal` when killed by a signal.
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of this container.
    pub oom_killed: bool,
    /// When the shim reaped it.
    pub finished_at: SystemTime,
}

impl ContainerExit {
    /// The ECS `reason` for this exit, if it has one.
    pub fn reason(&self) -> Option<&'static str> {
        self.oom_killed.then_some(OOM_REASON)
    }
}

/// Why a container was never started, as the shim recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotStarted {
    /// ECS-style reason, e.g. `CannotStartContainerError: ...`.
    pub reason: String,
}

/// Where a container is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// It waits for its dependencies (ECS: PENDING).
    Waiting,
    /// Its main process runs (with this host pid).
    Running {
        /// Host pid of the container's PID 1.
        pid: i32,
    },
    /// It exited and the shim recorded how.
    Exited(ContainerExit),
    /// It never started: a dependency failed or timed out, the task was
    /// stopped first, or the OCI runtime refused it.
    NotStarted(NotStarted),
    /// It is gone, but nobody recorded how: the shim died (or the host
    /// rebooted) before it could.
    Lost,
}

impl ContainerState {
    /// True when it neither runs nor may still start.
    pub fn is_done(&self) -> bool {
        !matches!(self, Self::Running { .. } | Self::Waiting)
    }
}

/// ECS's health statuses of a container with a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// No check has decided yet.
    Unknown,
    /// The last check passed.
    Healthy,
    /// `retries` checks in a row failed.
    Unhealthy,
}

impl HealthStatus {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Healthy => "HEALTHY",
            Self::Unhealthy => "UNHEALTHY",
        }
    }
}

/// A container's health, as the shim's checks found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Failed checks in a row (those in the start period do not count).
    pub failing_streak: u32,
    /// Checks run so far.
    pub checks: u64,
    /// The exit code of the last check (`None`: it timed out or could not run).
    pub last_exit_code: Option<i32>,
}

impl Health {
    /// Before the first check.
    pub fn unknown() -> Self {
        Self {
            status: HealthStatus::Unknown,
            failing_streak: 0,
            checks: 0,
            last_exit_code: None,
        }
    }
}

/// One container as the runtime sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerReport {
    /// The container's name.
    pub name: String,
    /// Whether its exit ends the task.
    pub essential: bool,
    /// Its state.
    pub state: ContainerState,
    /// Its health, when it has a health check.
    pub health: Option<Health>,
}

/// A task as the runtime sees it: its containers, in spec order. (The
/// domain's task and container statuses are ECS's lifecycle; this is what
/// the agent derives them from.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskReport {
    /// The task.
    pub task_id: TaskId,
    /// Its containers.
    pub containers: Vec<ContainerReport>,
}

impl TaskReport {
    /// True when the task should stop (ECS rules): an essential container
    /// is done (exited, or will never start), or every container is.
    pub fn is_finished(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.essential && c.state.is_done())
            || self.containers.iter().all(|c| c.state.is_done())
    }

    /// True when no container runs any more.
    pub fn all_done(&self) -> bool {
        self.containers.iter().all(|c| c.state.is_done())
    }

    /// True while some container waits for its dependencies.
    pub fn any_waiting(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.state == ContainerState::Waiting)
    }

    /// The named container's state.
    pub fn container(&self, name: &str) -> Option<&ContainerState> {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.state)
    }
}

/// CPU and memory use of a cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use now, in bytes.
    pub memory_bytes: u64,
    /// Highest memory use seen, in bytes (None where the kernel does not say).
    pub memory_peak_bytes: Option<u64>,
}

/// Usage of a task and of its running containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStats {
    /// The whole task.
    pub task: Usage,
    /// Running containers, by name.
    pub containers: Vec<(String, Usage)>,
}

/// Where a container's output is captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPaths {
    /// The container's standard output, appended to as it writes.
    pub stdout: PathBuf,
    /// The container's standard error.
    pub stderr: PathBuf,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

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

    #[test]
    fn finished_by_ecs_rules() {
        let run = ContainerState::Running { pid: 1 };
        let exit = ContainerState::Exited(ContainerExit {
            exit_code: 0,
            signal: None,
            oom_killed: false,
            finished_at: SystemTime::UNIX_EPOCH,
        });
        assert!(!report(&[(true, run.clone()), (false, exit.clone())]).is_finished());
        assert!(report(&[(true, exit.clone()), (false, run.clone())]).is_finished());
        assert!(report(&[(false, exit.clone()), (false, ContainerState::Lost)]).is_finished());
        assert!(!report(&[(false, exit), (false, run.clone())]).is_finished());
        let never = ContainerState::NotStarted(NotStarted { reason: "x".into() });
        assert!(!report(&[(true, run.clone()), (false, ContainerState::Waiting)]).is_finished());
        assert!(
            report(&[(false, run), (true, never)]).is_finished(),
            "an essential container that will never start"
        );
    }

    #[test]
    fn oom_reason_is_ecs_text() {
        let e = ContainerExit {
            exit_code: 137,
            signal: Some(9),
            oom_killed: true,
            finished_at: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(
            e.reason(),
            Some("OutOfMemoryError: Container killed due to memory usage")
        );
    }
}
