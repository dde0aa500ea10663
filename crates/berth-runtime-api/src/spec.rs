//! What the agent asks a runtime to run: a task of one or more containers.
//!
//! Plain data in Berth's own terms. The agent maps ECS task definitions
//! (and RunTask overrides) into these; the field names follow ECS so the
//! mapping stays obvious.
//!
//! These types are also an on-disk format: the sandbox keeps the spec in
//! each task's manifest, which an upgraded agent must still read. Unknown
//! fields are ignored (a newer agent's manifest is refused by its format
//! version instead), and a field added later must be `#[serde(default)]`
//! so that manifests written before it still load.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// ECS's default stopTimeout.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// ECS's default startTimeout: how long a dependency is waited for.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(180);

/// A task id: the last part of the task ARN. Used in paths, cgroup names
/// and OCI container ids, so it is limited to `[A-Za-z0-9_-]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

impl TaskId {
    /// Checks the id's form.
    pub fn new(id: impl Into<String>) -> Result<Self, RuntimeError> {
        let id = id.into();
        if valid_name(&id, 64) {
            Ok(Self(id))
        } else {
            Err(RuntimeError::InvalidSpec(format!(
                "task id {id:?} must be 1-64 characters of [A-Za-z0-9_-]"
            )))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TaskId {
    type Error = RuntimeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> Self {
        id.0
    }
}

/// True when `s` is 1..=max characters of `[A-Za-z0-9_-]`.
fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Fargate's largest ephemeral storage.
pub const MAX_EPHEMERAL_STORAGE_GIB: u32 = 200;

/// One task: containers sharing a task cgroup and a network namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// The task's id.
    pub task_id: TaskId,
    /// Task CPU in ECS units (1024 = one core), enforced as a quota.
    pub cpu: Option<u32>,
    /// Task memory in MiB, enforced as a hard limit without swap.
    pub memory_mib: Option<u64>,
    /// Task-wide process limit; the runtime config's default when absent.
    pub pids_limit: Option<i64>,
    /// A network namespace (e.g. `/run/netns/NAME`) every container joins;
    /// each container gets a new, empty one when absent.
    pub netns: Option<PathBuf>,
    /// The containers' hostname; the task id when absent.
    pub hostname: Option<String>,
    /// The containers, started in this order.
    pub containers: Vec<ContainerSpec>,
    /// Ephemeral storage in GiB (Fargate's `ephemeralStorage.sizeInGiB`):
    /// the containers' writable layers and the task's volumes together
    /// hold at most this much. Unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_gib: Option<u32>,
}

impl TaskSpec {
    /// A task with no limits and the given containers.
    pub fn new(task_id: TaskId, containers: Vec<ContainerSpec>) -> Self {
        Self {
            task_id,
            cpu: None,
            memory_mib: None,
            pids_limit: None,
            netns: None,
            hostname: None,
            containers,
            ephemeral_storage_gib: None,
        }
    }
}

/// The defaults an image's config gives its containers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    pub cmd: Option<Vec<String>>,
    /// WorkingDir.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
}

/// A container of a task: an image and the task definition's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// The container's name, unique in the task: `[A-Za-z0-9_-]{1,64}`.
    pub name: String,
    /// Unpacked image layer directories, lowest first (overlay-form whiteouts).
    pub layers: Vec<PathBuf>,
    /// The image's config defaults.
    pub image: ImageConfig,
    /// ECS `command`: replaces the image's Cmd.
    pub command: Option<Vec<String>>,
    /// ECS `entryPoint`: replaces the image's Entrypoint (and drops its Cmd).
    pub entry_point: Option<Vec<String>>,
    /// ECS `environment`: added to, and overriding, the image's Env.
    pub environment: BTreeMap<String, String>,
    /// ECS `workingDirectory`.
    pub working_directory: Option<String>,
    /// ECS `user`: `uid`, `uid:gid`, `name`, `name:group`.
    pub user: Option<String>,
    /// ECS `readonlyRootFilesystem`.
    pub readonly_root_filesystem: bool,
    /// ECS `ulimits`.
    pub ulimits: Vec<Ulimit>,
    /// ECS `stopTimeout`: time between SIGTERM and SIGKILL on stop.
    pub stop_timeout: Option<Duration>,
    /// ECS `linuxParameters.initProcessEnabled`: run an init as PID 1.
    pub init_process_enabled: bool,
    /// ECS container `cpu`: a relative CPU weight (cpu shares) in the task.
    pub cpu: Option<u32>,
    /// ECS container `memory`: a hard limit in MiB.
    pub memory_mib: Option<u64>,
    /// ECS container `memoryReservation`: a soft limit in MiB.
    pub memory_reservation_mib: Option<u64>,
    /// ECS `essential`: the task ends when this container exits.
    pub essential: bool,
    /// Extra bind mounts (volumes, resolv.conf, ...).
    pub mounts: Vec<BindMount>,
    /// ECS `dependsOn`: conditions on other containers of the task that
    /// must hold before this one starts.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// ECS `startTimeout`: how long containers that depend on this one
    /// wait for it to reach their condition before giving up.
    #[serde(default)]
    pub start_timeout: Option<Duration>,
    /// ECS `healthCheck`, run inside the container by the shim.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// ECS `linuxParameters.capabilities.add`: capability names as ECS
    /// spells them (`SYS_PTRACE`, or `ALL`), added after `cap_drop`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// ECS `linuxParameters.capabilities.drop`: taken from Docker's
    /// default set (`ALL` drops every one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// ECS `mountPoints` of the task's volumes: each volume is a directory
    /// of the task, shared by every container that mounts it and removed
    /// with the task (Fargate's bind mount volumes on ephemeral storage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// ECS `systemControls`: namespaced kernel parameters (`net.*`, IPC).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

impl ContainerSpec {
    /// An essential container with the image's defaults and no overrides.
    pub fn new(name: impl Into<String>, layers: Vec<PathBuf>, image: ImageConfig) -> Self {
        Self {
            name: name.into(),
            layers,
            image,
            command: None,
            entry_point: None,
            environment: BTreeMap::new(),
            working_directory: None,
            user: None,
            readonly_root_filesystem: false,
            ulimits: Vec::new(),
            stop_timeout: None,
            init_process_enabled: false,
            cpu: None,
            memory_mib: None,
            memory_reservation_mib: None,
            essential: true,
            mounts: Vec::new(),
            depends_on: Vec::new(),
            start_timeout: None,
            health_check: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            volume_mounts: Vec::new(),
            sysctls: BTreeMap::new(),
        }
    }

    /// The start timeout in force (ECS's default on Fargate: 3 minutes).
    pub fn start_timeout(&self) -> Duration {
        self.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT)
    }

    /// The stop timeout in force.
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT)
    }

    /// The process's argv, by Docker's rules: an overridden entrypoint drops
    /// the image's Cmd; an overridden command keeps the image's Entrypoint.
    pub fn args(&self) -> Result<Vec<String>, RuntimeError> {
        let (entrypoint, cmd) = match &self.entry_point {
            Some(ep) => (ep.clone(), self.command.clone().unwrap_or_default()),
            None => (
                self.image.entrypoint.clone().unwrap_or_default(),
                self.command
                    .clone()
                    .or_else(|| self.image.cmd.clone())
                    .unwrap_or_default(),
            ),
        };
        let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        if args.is_empty() {
            return Err(RuntimeError::InvalidSpec(format!(
                "container {}: no command: neither the image nor the task definition gives one",
                self.name
            )));
        }
        Ok(args)
    }

    /// The environment: the image's Env overridden by `environment`, with a
    /// default PATH when neither gives one.
    pub fn env(&self) -> Vec<String> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let pairs = self
            .image
            .env
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map_or((kv.as_str(), ""), |(k, v)| (k, v))
            })
            .chain(
                self.environment
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        for (k, v) in pairs {
            if env.insert(k.to_string(), v.to_string()).is_none() {
                order.push(k.to_string());
            }
        }
        if !env.contains_key("PATH") {
            order.insert(0, "PATH".into());
            env.insert("PATH".into(), DEFAULT_PATH.into());
        }
        order
            .into_iter()
            .map(|k| format!("{k}={}", env[&k]))
            .collect()
    }

    /// The working directory in force.
    pub fn cwd(&self) -> String {
        self.working_directory
            .clone()
            .or_else(|| self.image.working_dir.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// The user in force, if any.
    pub fn user(&self) -> Option<&str> {
        self.user
            .as_deref()
            .or(self.image.user.as_deref())
            .filter(|u| !u.is_empty())
    }
}

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An ECS ulimit: `name` as ECS spells it (`nofile`, `nproc`, `core`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    /// ECS name, e.g. `nofile`.
    pub name: String,
    /// Soft limit.
    pub soft_limit: u64,
    /// Hard limit.
    pub hard_limit: u64,
}

/// ECS `dependsOn` entry: `container` must reach `condition` first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The container waited for.
    pub container: String,
    /// What it must do.
    pub condition: Condition,
}

/// ECS's dependency conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Condition {
    /// It has started.
    Start,
    /// It has exited, with any code.
    Complete,
    /// It has exited with code 0.
    Success,
    /// Its health check passed.
    Healthy,
}

impl Condition {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "START",
            Self::Complete => "COMPLETE",
            Self::Success => "SUCCESS",
            Self::Healthy => "HEALTHY",
        }
    }
}

/// A container health check, with ECS's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The process to run in the container: ECS's `CMD` arguments as
    /// they are, `CMD-SHELL` ones as `/bin/sh -c STRING`.
    pub command: Vec<String>,
    /// Time between checks (ECS default 30 s).
    pub interval: Duration,
    /// How long one check may take before it counts as failed (default 5 s).
    pub timeout: Duration,
    /// Consecutive failures that make the container UNHEALTHY (default 3).
    pub retries: u32,
    /// Grace period after start in which failures do not count (default 0).
    pub start_period: Duration,
}

impl HealthCheck {
    /// A check with ECS's default timings.
    pub fn new(command: Vec<String>) -> Self {
        Self {
            command,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        }
    }
}

/// A bind mount into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A task volume mounted into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume's name in the task definition: `[A-Za-z0-9_-]{1,255}`.
    pub volume: String,
    /// Where it appears in the container (absolute).
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl TaskSpec {
    /// The names of the volumes the task's containers mount, each once.
    pub fn volumes(&self) -> std::collections::BTreeSet<&str> {
        self.containers
            .iter()
            .flat_map(|c| c.volume_mounts.iter().map(|m| m.volume.as_str()))
            .collect()
    }

    /// The rules every runtime applies before it creates anything: at
    /// least one container, unique path-safe names, a command for each,
    /// dependencies that name other containers of the task without
    /// cycles (HEALTHY ones on a container with a health check), positive
    /// task limits. Pure: what a backend needs of the host (layer
    /// directories, ulimit names) it checks itself.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let bad = |m: String| Err(RuntimeError::InvalidSpec(m));
        if self.containers.is_empty() {
            return bad("a task needs at least one container".into());
        }
        if let Some(gib) = self.ephemeral_storage_gib.filter(|g| !(1..=MAX_EPHEMERAL_STORAGE_GIB).contains(g)) {
            return bad(format!("ephemeral storage of {gib} GiB: it must be 1 to {MAX_EPHEMERAL_STORAGE_GIB} GiB"));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.containers {
            if !valid_name(&c.name, 64) {
                return bad(format!(
                    "container name {:?} must be 1-64 characters of [A-Za-z0-9_-]",
                    c.name
                ));
            }
            if !names.insert(c.name.as_str()) {
                return bad(format!("container name {} is used twice", c.name));
            }
            c.args()?;
            for m in &c.volume_mounts {
                if !valid_name(&m.volume, 255) {
                    return bad(format!(
                        "container {}: volume name {:?} must be 1-255 characters of [A-Za-z0-9_-]",
                        c.name, m.volume
                    ));
                }
                if !m.container_path.starts_with('/')
                    || m.container_path.split('/').any(|part| part == "..")
                {
                    return bad(format!(
                        "container {}: volume {} needs an absolute containerPath without '..', not {:?}",
                        c.name, m.volume, m.container_path
                    ));
                }
            }
            for u in &c.ulimits {
                if u.soft_limit > u.hard_limit {
                    return bad(format!(
                        "container {}: ulimit {} soft limit above hard limit",
                        c.name, u.name
                    ));
                }
            }
        }
        check_dependencies(self)?;
        if self.cpu == Some(0) {
            return bad("task cpu must be positive".into());
        }
        if self.memory_mib == Some(0) {
            return bad("task memory must be positive".into());
        }
        Ok(())
    }
}

/// Dependencies name other containers of the task, HEALTHY ones have a
/// health check, and there are no cycles.
fn check_dependencies(spec: &TaskSpec) -> Result<(), RuntimeError> {
    let bad = |m: String| Err(RuntimeError::InvalidSpec(m));
    let find = |name: &str| spec.containers.iter().find(|c| c.name == name);
    for c in &spec.containers {
        if let Some(hc) = &c.health_check
            && (hc.command.is_empty() || hc.retries == 0 || hc.interval.is_zero())
        {
            return bad(format!(
                "container {}: the health check needs a command, an interval and retries",
                c.name
            ));
        }
        for d in &c.depends_on {
            let Some(target) = find(&d.container).filter(|t| t.name != c.name) else {
                return bad(format!(
                    "container {} depends on {}, which is not another container of the task",
                    c.name, d.container
                ));
            };
            if d.condition == Condition::Healthy && target.health_check.is_none() {
                return bad(format!(
                    "container {} waits for {} to be HEALTHY, but {} has no health check",
                    c.name, d.container, d.container
                ));
            }
        }
    }
    // A container is startable once everything it depends on is: anything
    // left over is on a cycle.
    let mut startable: Vec<&str> = Vec::new();
    loop {
        let before = startable.len();
        for c in &spec.containers {
            if !startable.contains(&c.name.as_str())
                && c.depends_on
                    .iter()
                    .all(|d| startable.contains(&d.container.as_str()))
            {
                startable.push(&c.name);
            }
        }
        if startable.len() == before {
            break;
        }
    }
    if startable.len() < spec.containers.len() {
        let cycle: Vec<&str> = spec
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !startable.contains(n))
            .collect();
        return bad(format!(
            "containers {} depend on each other in a cycle",
            cycle.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn image() -> ImageConfig {
        ImageConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["c1".into()]),
            working_dir: Some("/w".into()),
            user: Some("100".into()),
        }
    }

    #[test]
    fn args_follow_docker_rules() {
        let mut c = ContainerSpec::new("a", vec![], image());
        assert_eq!(c.args().unwrap(), ["/ep", "c1"]);
        c.command = Some(vec!["x".into()]);
        assert_eq!(c.args().unwrap(), ["/ep", "x"]);
        c.entry_point = Some(vec!["sh".into()]);
        assert_eq!(c.args().unwrap(), ["sh", "x"]);
        c.command = None;
        assert_eq!(c.args().unwrap(), ["sh"]);
        let empty = ContainerSpec::new("b", vec![], ImageConfig::default());
        assert!(empty.args().is_err());
    }

    #[test]
    fn ephemeral_storage_is_1_to_200_gib() {
        let mut t = TaskSpec::new(TaskId::new("t").unwrap(), vec![ContainerSpec::new("a", vec![], image())]);
        for (gib, ok) in [(None, true), (Some(1), true), (Some(200), true), (Some(0), false), (Some(201), false)] {
            t.ephemeral_storage_gib = gib;
            assert_eq!(t.validate().is_ok(), ok, "{gib:?}");
        }
        // A manifest written before the field loads as unlimited.
        let mut json = serde_json::to_value(&t).unwrap();
        json.as_object_mut().unwrap().remove("ephemeralStorageGib");
        assert_eq!(serde_json::from_value::<TaskSpec>(json).unwrap().ephemeral_storage_gib, None);
    }

    #[test]
    fn env_overrides_image_and_defaults_path() {
        let mut c = ContainerSpec::new("a", vec![], image());
        c.environment.insert("A".into(), "2".into());
        c.environment.insert("B".into(), "3".into());
        assert_eq!(c.env(), ["PATH=/bin", "A=2", "B=3"]);
        let c = ContainerSpec::new("a", vec![], ImageConfig::default());
        assert_eq!(c.env(), [format!("PATH={DEFAULT_PATH}")]);
    }

    #[test]
    fn cwd_and_user_prefer_overrides() {
        let mut c = ContainerSpec::new("a", vec![], image());
        assert_eq!(c.cwd(), "/w");
        assert_eq!(c.user(), Some("100"));
        c.working_directory = Some("/x".into());
        c.user = Some("1:2".into());
        assert_eq!(c.cwd(), "/x");
        assert_eq!(c.user(), Some("1:2"));
        assert_eq!(
            ContainerSpec::new("a", vec![], ImageConfig::default()).cwd(),
            "/"
        );
    }

    #[test]
    fn dependencies_are_checked() {
        let c = |name: &str, deps: &[(&str, Condition)]| {
            let mut c = ContainerSpec::new(name, vec![], image());
            c.depends_on = deps
                .iter()
                .map(|(n, cond)| Dependency {
                    container: (*n).into(),
                    condition: *cond,
                })
                .collect();
            c
        };
        let task = |cs: Vec<ContainerSpec>| TaskSpec::new(TaskId::new("t").unwrap(), cs);
        let ok = task(vec![
            c("a", &[]),
            c("b", &[("a", Condition::Start)]),
            c("c", &[("b", Condition::Complete)]),
        ]);
        ok.validate().unwrap();
        let err = |t: TaskSpec| t.validate().unwrap_err().to_string();
        assert!(
            err(task(vec![
                c("a", &[("b", Condition::Start)]),
                c("b", &[("a", Condition::Start)])
            ]))
            .contains("cycle")
        );
        assert!(
            err(task(vec![c("a", &[("a", Condition::Start)])])).contains("not another container")
        );
        assert!(
            err(task(vec![c("a", &[("x", Condition::Start)])])).contains("not another container")
        );
        assert!(
            err(task(vec![
                c("a", &[]),
                c("b", &[("a", Condition::Healthy)])
            ]))
            .contains("no health check")
        );
        let mut healthy = task(vec![c("a", &[]), c("b", &[("a", Condition::Healthy)])]);
        healthy.containers[0].health_check = Some(HealthCheck::new(vec!["true".into()]));
        healthy.validate().unwrap();
    }

    #[test]
    fn task_ids_are_path_safe() {
        assert!(TaskId::new("0123abcd-EF_").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(TaskId::new(bad).is_err(), "{bad}");
        }
    }
}
