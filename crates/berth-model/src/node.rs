//! A node: a host whose agent runs tasks, and the capacity it offers.

use serde::{Deserialize, Serialize};

/// Whether a node takes new tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeStatus {
    /// Takes tasks.
    #[default]
    Active,
    /// Takes none; its tasks run on until they stop.
    Draining,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
        }
    }
}

/// A node and what it offers. (Stored as JSON with these member names
/// since the first release that had nodes.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    /// The Availability Zone its tasks report.
    pub zone: String,
    /// CPU units offered to tasks (1024 per core, less the host's reserve).
    pub cpu: u32,
    /// Memory in MiB offered to tasks (less the host's reserve).
    pub memory: u32,
    pub status: NodeStatus,
    /// Last heartbeat, seconds since the epoch.
    pub heartbeat_at: i64,
}

/// A node whose agent has not heartbeated for this long takes no tasks
/// (agents heartbeat every 10 s).
pub const STALE_AFTER_SECS: i64 = 60;

impl Node {
    /// Whether the scheduler may place tasks on it at `now` (seconds).
    pub fn schedulable(&self, now: i64) -> bool {
        self.status == NodeStatus::Active && now - self.heartbeat_at <= STALE_AFTER_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_earlier_releases_load() {
        // Written by the release before the typed domain.
        let node: Node = serde_json::from_str(include_str!("../tests/fixtures/node-v0.json")).unwrap();
        assert_eq!(node.status, NodeStatus::Active);
        let beat = node.heartbeat_at;
        assert!(node.schedulable(beat + 60));
        assert!(!node.schedulable(beat + 61), "stale after a minute without heartbeat");
        let draining = Node { status: NodeStatus::Draining, ..node };
        assert!(!draining.schedulable(beat));
    }
}
