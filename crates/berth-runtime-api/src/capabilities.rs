//! What kind of backend a runtime is and which forms of root filesystem
//! and network it takes, so the agent prepares a task in the form its
//! backend can use and finds the right backend again after a restart.

use serde::{Deserialize, Serialize};

/// The backends Berth knows. Recorded per task by the agent: after a
/// restart, `list`/`recover` go to the backend that started the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RuntimeKind {
    /// OCI containers under a per-task shim (`berth-runtime`).
    #[serde(rename = "sandbox")]
    Sandbox,
    /// A micro-VM per task (`berth-microvm`).
    #[serde(rename = "microvm")]
    MicroVm,
}

impl RuntimeKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 2] = [Self::Sandbox, Self::MicroVm];

    /// The stored spelling (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::MicroVm => "microvm",
        }
    }

    /// The kind spelled `s`, if there is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A runtime kind no backend of this Berth has (e.g. one a newer Berth
/// recorded).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime kind {0:?} (known: sandbox, microvm)")]
pub struct RuntimeKindError(pub String);

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| RuntimeKindError(s.to_string()))
    }
}

/// How a container's root filesystem is handed to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RootfsForm {
    /// Unpacked image layer directories ([`ContainerSpec::layers`](crate::ContainerSpec::layers)),
    /// stacked by the backend as an overlay.
    Layers,
    /// A block device (a disk image) the backend attaches, as a VM needs.
    BlockDevice,
}

/// How a task's network is handed to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkForm {
    /// The path of a network namespace every container joins
    /// ([`TaskSpec::netns`](crate::TaskSpec::netns)).
    Netns,
    /// A TAP device inside the task's network namespace, which the
    /// backend (a VM's virtio-net) attaches to.
    Tap,
}

/// The forms a backend takes its inputs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// The root filesystem form.
    pub rootfs: RootfsForm,
    /// The network form.
    pub network: NetworkForm,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in RuntimeKind::ALL {
            assert_eq!(RuntimeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.as_str().parse::<RuntimeKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<RuntimeKind>(&json).unwrap(), kind);
        }
        assert_eq!(RuntimeKind::Sandbox.as_str(), "sandbox");
        assert_eq!(RuntimeKind::MicroVm.as_str(), "microvm");
        assert_eq!(RuntimeKind::parse("Sandbox"), None);
        let err = "firecracker".parse::<RuntimeKind>().unwrap_err();
        assert!(err.to_string().contains("firecracker"), "{err}");
    }

    #[test]
    fn capabilities_serialize_in_camel_case() {
        let caps = Capabilities {
            rootfs: RootfsForm::BlockDevice,
            network: NetworkForm::Tap,
        };
        let json = serde_json::to_value(caps).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rootfs": "blockDevice", "network": "tap"})
        );
        assert_eq!(serde_json::from_value::<Capabilities>(json).unwrap(), caps);
    }
}
