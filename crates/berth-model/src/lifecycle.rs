//! The ECS task lifecycle: `lastStatus` as an enum with one transition
//! function, tested as a table of (from, event) → to.
//!
//! PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING →
//! STOPPING → DEPROVISIONING → STOPPED. A task can leave the happy path
//! from any live state towards STOPPED (a stop request, a failure, an
//! essential container exiting) but never moves backwards, and STOPPED is
//! final.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A task's `lastStatus`, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [Self; 8] = [
        Self::Provisioning,
        Self::Pending,
        Self::Activating,
        Self::Running,
        Self::Deactivating,
        Self::Stopping,
        Self::Deprovisioning,
        Self::Stopped,
    ];

    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Activating => "ACTIVATING",
            Self::Running => "RUNNING",
            Self::Deactivating => "DEACTIVATING",
            Self::Stopping => "STOPPING",
            Self::Deprovisioning => "DEPROVISIONING",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Counted as "pending" in cluster statistics, as ECS counts them.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Provisioning | Self::Pending | Self::Activating)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEvent {
    /// Its node has it and its resources (network, storage) are ready.
    Provisioned,
    /// Images are pulled and the containers are created and started.
    ContainersStarted,
    /// Dependencies and health conditions are met: it serves.
    Activated,
    /// StopTask, a service scaling in, or a node draining.
    StopRequested,
    /// Fargate Spot takes its capacity back: the two-minute warning. The
    /// task keeps its status (desiredStatus becomes STOPPED, stopCode
    /// TerminationNotice); the stop follows as for StopRequested.
    SpotInterrupted,
    /// It could not be started (pull failure, bad spec, resources).
    StartFailed,
    /// An essential container exited.
    EssentialContainerExited,
    /// Its containers have been told to stop (SIGTERM sent).
    Deactivated,
    /// All its containers have exited.
    ContainersStopped,
    /// Everything it held is released (mounts, cgroups, network, disk).
    Deprovisioned,
}

/// An event that makes no sense in a state (e.g. anything after STOPPED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a task in {from} cannot take event {event:?}")]
pub struct InvalidTransition {
    pub from: TaskStatus,
    pub event: TaskEvent,
}

/// The one transition function of the task lifecycle.
pub fn transition(from: TaskStatus, event: TaskEvent) -> Result<TaskStatus, InvalidTransition> {
    use TaskEvent as E;
    use TaskStatus as S;
    let to = match (from, event) {
        (S::Provisioning, E::Provisioned) => S::Pending,
        (S::Pending, E::ContainersStarted) => S::Activating,
        (S::Activating, E::Activated) => S::Running,

        // Nothing runs yet: release what was provisioned.
        (S::Provisioning, E::StopRequested | E::StartFailed) => S::Deprovisioning,
        // Containers may exist: stop them first.
        (S::Pending, E::StopRequested | E::StartFailed | E::EssentialContainerExited) => S::Stopping,
        (S::Activating | S::Running, E::StopRequested | E::StartFailed | E::EssentialContainerExited) => {
            S::Deactivating
        }

        (S::Deactivating, E::Deactivated) => S::Stopping,
        // Containers can all be gone before the SIGTERM was even sent.
        (S::Deactivating | S::Stopping, E::ContainersStopped) => S::Deprovisioning,
        (S::Deprovisioning, E::Deprovisioned) => S::Stopped,

        // The warning leaves a serving task where it is: a stop follows.
        (S::Activating | S::Running, E::SpotInterrupted) => from,

        // Stopping twice, or an exit while already stopping, changes nothing.
        (
            S::Deactivating | S::Stopping | S::Deprovisioning,
            E::StopRequested | E::EssentialContainerExited | E::SpotInterrupted,
        ) => from,

        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

/// A task's `desiredStatus`: RUNNING until someone (StopTask, a service,
/// the task's own end) wants it stopped, and never back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    #[default]
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Stopped].into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for DesiredStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's `lastStatus`: PENDING → RUNNING → STOPPED, or PENDING →
/// STOPPED for one that never started. STOPPED is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    #[default]
    Pending,
    Running,
    Stopped,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }
}

/// A container status change that would go backwards (e.g. a stopped
/// container reported running again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a container in {} cannot go to {}", from.as_str(), to.as_str())]
pub struct InvalidContainerTransition {
    pub from: ContainerStatus,
    pub to: ContainerStatus,
}

/// The container lifecycle's transition function: forwards or staying put.
pub fn container_transition(
    from: ContainerStatus,
    to: ContainerStatus,
) -> Result<ContainerStatus, InvalidContainerTransition> {
    if to >= from { Ok(to) } else { Err(InvalidContainerTransition { from, to }) }
}

#[cfg(test)]
mod tests {
    use super::TaskEvent as E;
    use super::TaskStatus as S;
    use super::*;

    /// Every (from, event) pair that is allowed, and where it leads.
    const TABLE: &[(S, E, S)] = &[
        (S::Provisioning, E::Provisioned, S::Pending),
        (S::Provisioning, E::StopRequested, S::Deprovisioning),
        (S::Provisioning, E::StartFailed, S::Deprovisioning),
        (S::Pending, E::ContainersStarted, S::Activating),
        (S::Pending, E::StopRequested, S::Stopping),
        (S::Pending, E::StartFailed, S::Stopping),
        (S::Pending, E::EssentialContainerExited, S::Stopping),
        (S::Activating, E::Activated, S::Running),
        (S::Activating, E::StopRequested, S::Deactivating),
        (S::Activating, E::StartFailed, S::Deactivating),
        (S::Activating, E::EssentialContainerExited, S::Deactivating),
        (S::Activating, E::SpotInterrupted, S::Activating),
        (S::Running, E::StopRequested, S::Deactivating),
        (S::Running, E::StartFailed, S::Deactivating),
        (S::Running, E::EssentialContainerExited, S::Deactivating),
        (S::Running, E::SpotInterrupted, S::Running),
        (S::Deactivating, E::Deactivated, S::Stopping),
        (S::Deactivating, E::ContainersStopped, S::Deprovisioning),
        (S::Deactivating, E::StopRequested, S::Deactivating),
        (S::Deactivating, E::EssentialContainerExited, S::Deactivating),
        (S::Deactivating, E::SpotInterrupted, S::Deactivating),
        (S::Stopping, E::ContainersStopped, S::Deprovisioning),
        (S::Stopping, E::StopRequested, S::Stopping),
        (S::Stopping, E::EssentialContainerExited, S::Stopping),
        (S::Stopping, E::SpotInterrupted, S::Stopping),
        (S::Deprovisioning, E::Deprovisioned, S::Stopped),
        (S::Deprovisioning, E::StopRequested, S::Deprovisioning),
        (S::Deprovisioning, E::EssentialContainerExited, S::Deprovisioning),
        (S::Deprovisioning, E::SpotInterrupted, S::Deprovisioning),
    ];

    const EVENTS: [E; 10] = [
        E::Provisioned,
        E::ContainersStarted,
        E::Activated,
        E::StopRequested,
        E::SpotInterrupted,
        E::StartFailed,
        E::EssentialContainerExited,
        E::Deactivated,
        E::ContainersStopped,
        E::Deprovisioned,
    ];

    #[test]
    fn the_table_is_the_whole_truth() {
        for from in S::ALL {
            for event in EVENTS {
                let expected = TABLE.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to);
                match (transition(from, event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from} + {event:?}"),
                    (Err(_), None) => {}
                    (got, want) => panic!("{from} + {event:?}: got {got:?}, table says {want:?}"),
                }
            }
        }
    }

    #[test]
    fn never_moves_backwards_and_stopped_is_final() {
        for &(from, event, to) in TABLE {
            assert!(to >= from, "{from} + {event:?} went back to {to}");
        }
        for event in EVENTS {
            assert!(transition(S::Stopped, event).is_err());
        }
    }

    #[test]
    fn happy_path_reaches_stopped() {
        let path = [
            E::Provisioned,
            E::ContainersStarted,
            E::Activated,
            E::EssentialContainerExited,
            E::Deactivated,
            E::ContainersStopped,
            E::Deprovisioned,
        ];
        let end = path.iter().try_fold(S::Provisioning, |s, e| transition(s, *e)).unwrap();
        assert_eq!(end, S::Stopped);
    }

    #[test]
    fn containers_only_move_forwards() {
        use ContainerStatus as C;
        let table = [
            (C::Pending, C::Pending, true),
            (C::Pending, C::Running, true),
            (C::Pending, C::Stopped, true),
            (C::Running, C::Running, true),
            (C::Running, C::Stopped, true),
            (C::Running, C::Pending, false),
            (C::Stopped, C::Stopped, true),
            (C::Stopped, C::Running, false),
            (C::Stopped, C::Pending, false),
        ];
        for (from, to, ok) in table {
            assert_eq!(container_transition(from, to).is_ok(), ok, "{from:?} → {to:?}");
        }
    }

    #[test]
    fn statuses_are_stored_in_ecs_spelling() {
        assert_eq!(serde_json::to_string(&S::Deprovisioning).unwrap(), "\"DEPROVISIONING\"");
        assert_eq!(serde_json::to_string(&DesiredStatus::Stopped).unwrap(), "\"STOPPED\"");
        assert_eq!(serde_json::from_str::<ContainerStatus>("\"RUNNING\"").unwrap(), ContainerStatus::Running);
        assert_eq!(DesiredStatus::parse("RUNNING"), Some(DesiredStatus::Running));
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("SLEEPING"), None);
    }
}
