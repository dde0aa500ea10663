//! ECS task definition + overrides + pulled images → the runtime's
//! `TaskSpec`. Pure mapping, no I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use berth_image::{Credentials, ImageConfiguration};
use berth_runtime_api::{
    Condition, ContainerSpec, Dependency, HealthCheck, ImageConfig, TaskId, TaskSpec, Ulimit, VolumeMount,
};
use berth_model::task::{Protocol, TaskOverrides, TaskSize};
use berth_wire::ecs::{ContainerCondition, ContainerDefinition, TaskDefinition};

use crate::plane::SecretValue;

/// A container's pulled image: its unpacked layers and config.
pub struct Pulled {
    pub layers: Vec<PathBuf>,
    pub config: ImageConfiguration,
}

fn image_config(c: &ImageConfiguration) -> ImageConfig {
    let Some(cfg) = c.config() else { return ImageConfig::default() };
    ImageConfig {
        env: cfg.env().clone().unwrap_or_default(),
        entrypoint: cfg.entrypoint().clone(),
        cmd: cfg.cmd().clone(),
        working_dir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
    }
}

/// A container's secrets as read for it: (variable name, value).
pub type Secrets = Vec<(String, SecretValue)>;

/// What ECS's reasons for secrets and registry logins that could not be
/// read begin with.
/// The longest stopTimeout Fargate honours, in seconds.
pub const MAX_STOP_TIMEOUT_SECS: i32 = 120;

pub const SECRETS_REASON: &str = "ResourceInitializationError: unable to pull secrets or registry auth: ";

/// The registry login a `repositoryCredentials.credentialsParameter`
/// secret holds: a SecretString `{"username": …, "password": …}`. The
/// error names the secret, never its content.
pub fn registry_login(secret: &SecretValue, arn: &str) -> Result<Credentials, String> {
    #[derive(serde::Deserialize)]
    struct Login {
        username: String,
        password: String,
    }
    serde_json::from_str::<Login>(secret.expose()).map(|l| Credentials::new(l.username, l.password)).map_err(|_| {
        format!("the registry credentials secret {arn} is not a JSON object with \"username\" and \"password\"")
    })
}

/// One container, with the task's overrides for it applied and its
/// secrets in its environment (they win over its `environment`).
pub fn container(def: &ContainerDefinition, overrides: &TaskOverrides, image: &Pulled, secrets: &[(String, SecretValue)]) -> ContainerSpec {
    let name = def.name.clone().unwrap_or_default();
    let over = overrides.container(&name);
    let mut spec = ContainerSpec::new(name, image.layers.clone(), image_config(&image.config));
    spec.command = over.and_then(|o| o.command.clone()).or_else(|| def.command.clone());
    spec.entry_point = def.entry_point.clone();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for kv in def.environment.iter().flatten() {
        if let Some(k) = &kv.name {
            env.insert(k.clone(), kv.value.clone().unwrap_or_default());
        }
    }
    for kv in over.map(|o| o.environment.as_slice()).unwrap_or_default() {
        env.insert(kv.name.clone(), kv.value.clone());
    }
    for (name, value) in secrets {
        env.insert(name.clone(), value.expose().to_owned());
    }
    spec.environment = env;
    spec.working_directory = def.working_directory.clone();
    spec.user = def.user.clone();
    spec.readonly_root_filesystem = def.readonly_root_filesystem.unwrap_or(false);
    spec.ulimits = def
        .ulimits
        .iter()
        .flatten()
        .map(|u| Ulimit {
            name: u.name.as_str().to_owned(),
            soft_limit: u64::try_from(u.soft_limit).unwrap_or(0),
            hard_limit: u64::try_from(u.hard_limit).unwrap_or(0),
        })
        .collect();
    // Fargate waits at most 120 s after SIGTERM (a Spot task's two-minute
    // warning is the same wait).
    spec.stop_timeout =
        def.stop_timeout.map(|s| Duration::from_secs(u64::try_from(s.clamp(0, MAX_STOP_TIMEOUT_SECS)).unwrap_or(0)));
    spec.init_process_enabled =
        def.linux_parameters.as_ref().and_then(|l| l.init_process_enabled).unwrap_or(false);
    spec.cpu = over.and_then(|o| o.cpu).or(def.cpu).and_then(|c| u32::try_from(c).ok()).filter(|c| *c > 0);
    spec.memory_mib = over.and_then(|o| o.memory).or(def.memory).and_then(|m| u64::try_from(m).ok());
    spec.memory_reservation_mib =
        over.and_then(|o| o.memory_reservation).or(def.memory_reservation).and_then(|m| u64::try_from(m).ok());
    spec.essential = def.essential.unwrap_or(true);
    spec.depends_on = def
        .depends_on
        .iter()
        .flatten()
        .map(|d| Dependency { container: d.container_name.clone(), condition: condition(d.condition) })
        .collect();
    spec.start_timeout = def.start_timeout.and_then(|s| u64::try_from(s).ok()).map(Duration::from_secs);
    spec.health_check = def.health_check.as_ref().and_then(health_check);
    let capabilities = def.linux_parameters.as_ref().and_then(|l| l.capabilities.as_ref());
    spec.cap_add = capabilities.and_then(|k| k.add.clone()).unwrap_or_default();
    spec.cap_drop = capabilities.and_then(|k| k.drop.clone()).unwrap_or_default();
    spec.volume_mounts = def
        .mount_points
        .iter()
        .flatten()
        .filter_map(|m| {
            Some(VolumeMount {
                volume: m.source_volume.clone()?,
                container_path: m.container_path.clone()?,
                read_only: m.read_only.unwrap_or(false),
            })
        })
        .collect();
    spec.sysctls = def
        .system_controls
        .iter()
        .flatten()
        .filter_map(|sc| Some((sc.namespace.clone()?, sc.value.clone().unwrap_or_default())))
        .collect();
    spec
}

fn condition(c: ContainerCondition) -> Condition {
    match c {
        ContainerCondition::Start => Condition::Start,
        ContainerCondition::Complete => Condition::Complete,
        ContainerCondition::Success => Condition::Success,
        ContainerCondition::Healthy => Condition::Healthy,
    }
}

/// ECS's health check with its defaults: `CMD` arguments run as they
/// are, `CMD-SHELL` ones with the container's `/bin/sh -c`.
fn health_check(hc: &berth_wire::ecs::HealthCheck) -> Option<HealthCheck> {
    let (kind, rest) = hc.command.split_first()?;
    let command = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
        _ => return None,
    };
    let secs = |v: Option<i32>, default: Duration| {
        v.and_then(|s| u64::try_from(s).ok()).map_or(default, Duration::from_secs)
    };
    let defaults = HealthCheck::new(command.clone());
    Some(HealthCheck {
        command,
        interval: secs(hc.interval, defaults.interval),
        timeout: secs(hc.timeout, defaults.timeout),
        retries: hc.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(defaults.retries),
        start_period: secs(hc.start_period, defaults.start_period),
    })
}

/// The whole task: its size and its containers in definition order.
pub fn task(
    id: TaskId,
    definition: &TaskDefinition,
    overrides: &TaskOverrides,
    size: TaskSize,
    images: &[Pulled],
    secrets: &[Secrets],
) -> TaskSpec {
    let containers = definition
        .container_definitions
        .iter()
        .flatten()
        .zip(images)
        .enumerate()
        .map(|(i, (def, image))| container(def, overrides, image, secrets.get(i).map_or(&[], Vec::as_slice)))
        .collect();
    let mut spec = TaskSpec::new(id, containers);
    spec.cpu = Some(size.cpu);
    spec.memory_mib = Some(u64::from(size.memory));
    spec.ephemeral_storage_gib = Some(berth_model::task::ephemeral_storage_gib(definition, overrides));
    spec
}


/// The task's role: RunTask's override, else the definition's.
pub fn task_role(definition: Option<&TaskDefinition>, overrides: &TaskOverrides) -> Option<String> {
    overrides.task_role_arn.clone().or_else(|| definition?.task_role_arn.clone()).filter(|r| !r.is_empty())
}

/// The task's execution role: RunTask's override, else the definition's.
pub fn execution_role(definition: &TaskDefinition, overrides: &TaskOverrides) -> Option<String> {
    overrides.execution_role_arn.clone().or_else(|| definition.execution_role_arn.clone()).filter(|r| !r.is_empty())
}

/// Why the task's volumes cannot be given as its definition asks, if so:
/// Berth's volumes are Fargate's bind mounts on the task's own storage;
/// a host path, an EFS file system or a Docker volume driver it has not.
pub fn unsupported_volumes(definition: &TaskDefinition) -> Option<String> {
    definition.volumes.iter().flatten().find_map(|v| {
        let name = v.name.as_deref().unwrap_or_default();
        let kind = if v.host.as_ref().is_some_and(|h| h.source_path.is_some()) {
            "a host path (host.sourcePath)"
        } else if v.efs_volume_configuration.is_some() {
            "an EFS file system"
        } else if v.docker_volume_configuration.is_some() {
            "a Docker volume (dockerVolumeConfiguration)"
        } else if v.fsx_windows_file_server_volume_configuration.is_some() {
            "an FSx for Windows file server"
        } else {
            return None;
        };
        Some(format!(
            "CannotStartContainerError: volume '{name}' is {kind}, which Berth cannot mount; Berth gives tasks \
             bind mount volumes on their own storage (a volume with only a name)."
        ))
    })
}

/// The container ports a task publishes with `assignPublicIp: ENABLED`:
/// every `portMappings` entry (in awsvpc, hostPort is containerPort).
pub fn published_ports(definition: &berth_wire::ecs::TaskDefinition) -> Vec<(String, Protocol, u16)> {
    definition
        .container_definitions
        .iter()
        .flatten()
        .flat_map(|c| {
            let name = c.name.clone().unwrap_or_default();
            c.port_mappings.iter().flatten().filter_map(move |m| {
                let port = u16::try_from(m.container_port?).ok()?;
                let protocol = match m.protocol.unwrap_or_default() {
                    berth_wire::ecs::TransportProtocol::Tcp => Protocol::Tcp,
                    berth_wire::ecs::TransportProtocol::Udp => Protocol::Udp,
                };
                Some((name.clone(), protocol, port))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use berth_model::task::{ContainerOverride, EnvVar};
    use berth_wire::ecs::{KeyValuePair, LinuxParameters};

    use super::*;

    fn pulled() -> Pulled {
        let config: ImageConfiguration = serde_json_from(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/srv"},
               "rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        Pulled { layers: vec![PathBuf::from("/layers/a")], config }
    }

    fn serde_json_from(s: &str) -> ImageConfiguration {
        ImageConfiguration::from_reader(s.as_bytes()).unwrap()
    }

    fn kv(k: &str, v: &str) -> KeyValuePair {
        KeyValuePair { name: Some(k.into()), value: Some(v.into()) }
    }

    #[test]
    fn definition_and_overrides_map_onto_the_container() {
        let def = ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            command: Some(vec!["sleep".into(), "5".into()]),
            environment: Some(vec![kv("A", "1"), kv("B", "2")]),
            memory: Some(128),
            essential: Some(false),
            stop_timeout: Some(7),
            linux_parameters: Some(LinuxParameters { init_process_enabled: Some(true), ..Default::default() }),
            ..Default::default()
        };
        let overrides = TaskOverrides {
            containers: vec![ContainerOverride {
                name: "app".into(),
                command: Some(vec!["echo".into(), "hi".into()]),
                environment: vec![EnvVar { name: "B".into(), value: "3".into() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = container(&def, &overrides, &pulled(), &[]);
        assert_eq!(c.command, Some(vec!["echo".into(), "hi".into()]));
        assert_eq!(c.environment.get("A").map(String::as_str), Some("1"));
        assert_eq!(c.environment.get("B").map(String::as_str), Some("3"), "overrides win");
        assert_eq!(c.memory_mib, Some(128));
        assert!(!c.essential);
        assert!(c.init_process_enabled);
        assert_eq!(c.stop_timeout, Some(Duration::from_secs(7)));
        let long = ContainerDefinition { stop_timeout: Some(600), ..def.clone() };
        let spec = container(&long, &TaskOverrides::default(), &pulled(), &[]);
        assert_eq!(spec.stop_timeout, Some(Duration::from_secs(120)), "Fargate's stopTimeout is at most 120 s");
        assert_eq!(c.image.cmd, Some(vec!["sh".into()]));
        assert_eq!(c.image.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.layers, vec![PathBuf::from("/layers/a")]);
    }

    #[test]
    fn capabilities_volumes_and_sysctls_map_onto_the_container() {
        let def = ContainerDefinition {
            name: Some("app".into()),
            linux_parameters: Some(LinuxParameters {
                capabilities: Some(berth_wire::ecs::KernelCapabilities {
                    add: Some(vec!["SYS_PTRACE".into()]),
                    drop: Some(vec!["ALL".into()]),
                }),
                ..Default::default()
            }),
            mount_points: Some(vec![berth_wire::ecs::MountPoint {
                source_volume: Some("scratch".into()),
                container_path: Some("/scratch".into()),
                read_only: Some(true),
            }]),
            system_controls: Some(vec![berth_wire::ecs::SystemControl {
                namespace: Some("net.ipv4.tcp_keepalive_time".into()),
                value: Some("120".into()),
            }]),
            ..Default::default()
        };
        let c = container(&def, &TaskOverrides::default(), &pulled(), &[]);
        assert_eq!((c.cap_add, c.cap_drop), (vec!["SYS_PTRACE".to_string()], vec!["ALL".to_string()]));
        assert_eq!(
            c.volume_mounts,
            vec![VolumeMount { volume: "scratch".into(), container_path: "/scratch".into(), read_only: true }]
        );
        assert_eq!(c.sysctls.get("net.ipv4.tcp_keepalive_time").map(String::as_str), Some("120"));
    }

    #[test]
    fn volumes_berth_cannot_mount_are_named() {
        let with = |v: berth_wire::ecs::Volume| TaskDefinition { volumes: Some(vec![v]), ..Default::default() };
        let named = berth_wire::ecs::Volume { name: Some("data".into()), ..Default::default() };
        assert_eq!(unsupported_volumes(&with(named.clone())), None);
        let host = berth_wire::ecs::Volume {
            host: Some(berth_wire::ecs::HostVolumeProperties { source_path: Some("/srv".into()) }),
            ..named.clone()
        };
        assert!(unsupported_volumes(&with(host)).unwrap().contains("volume 'data' is a host path"));
        let efs = berth_wire::ecs::Volume {
            efs_volume_configuration: Some(berth_wire::ecs::EFSVolumeConfiguration {
                file_system_id: "fs-1".into(),
                ..Default::default()
            }),
            ..named
        };
        assert!(unsupported_volumes(&with(efs)).unwrap().contains("an EFS file system"));
    }

    #[test]
    fn dependencies_and_health_checks_map_with_ecs_defaults() {
        let def = ContainerDefinition {
            name: Some("app".into()),
            depends_on: Some(vec![berth_wire::ecs::ContainerDependency {
                container_name: "db".into(),
                condition: ContainerCondition::Healthy,
            }]),
            start_timeout: Some(20),
            health_check: Some(berth_wire::ecs::HealthCheck {
                command: vec!["CMD-SHELL".into(), "wget -q -O- localhost || exit 1".into()],
                retries: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = container(&def, &TaskOverrides::default(), &pulled(), &[]);
        assert_eq!(c.depends_on, vec![Dependency { container: "db".into(), condition: Condition::Healthy }]);
        assert_eq!(c.start_timeout, Some(Duration::from_secs(20)));
        let hc = c.health_check.unwrap();
        assert_eq!(hc.command, ["/bin/sh", "-c", "wget -q -O- localhost || exit 1"]);
        assert_eq!((hc.interval, hc.timeout, hc.retries, hc.start_period), (Duration::from_secs(30), Duration::from_secs(5), 5, Duration::ZERO));
        let cmd = health_check(&berth_wire::ecs::HealthCheck { command: vec!["CMD".into(), "true".into()], ..Default::default() });
        assert_eq!(cmd.unwrap().command, ["true"]);
    }

    #[test]
    fn secrets_join_the_environment_and_win_over_it() {
        let def = ContainerDefinition {
            name: Some("app".into()),
            environment: Some(vec![kv("DB_PASSWORD", "placeholder"), kv("A", "1")]),
            ..Default::default()
        };
        let secrets = vec![
            ("DB_PASSWORD".to_owned(), SecretValue::new("hunter2".into())),
            ("API_KEY".to_owned(), SecretValue::new("k3y".into())),
        ];
        let c = container(&def, &TaskOverrides::default(), &pulled(), &secrets);
        assert_eq!(c.environment.get("DB_PASSWORD").map(String::as_str), Some("hunter2"));
        assert_eq!(c.environment.get("API_KEY").map(String::as_str), Some("k3y"));
        assert_eq!(c.environment.get("A").map(String::as_str), Some("1"));
        assert!(!format!("{secrets:?}").contains("hunter2"), "Debug hides secret values");
    }

    #[test]
    fn registry_logins_come_from_a_json_secret_string() {
        let ok = registry_login(&SecretValue::new(r#"{"username":"ci","password":"pw"}"#.into()), "arn:s").unwrap();
        assert_eq!((ok.username.as_str(), ok.password.as_str()), ("ci", "pw"));
        let bad = registry_login(&SecretValue::new("not json with pw".into()), "arn:s").unwrap_err();
        assert!(bad.contains("arn:s") && !bad.contains("pw"), "{bad}");
    }

    #[test]
    fn roles_come_from_the_overrides_else_the_definition() {
        let def = TaskDefinition {
            task_role_arn: Some("arn:aws:iam::000000000000:role/def".into()),
            execution_role_arn: Some("arn:aws:iam::000000000000:role/exec".into()),
            ..Default::default()
        };
        let none = TaskOverrides::default();
        assert_eq!(task_role(Some(&def), &none).as_deref(), Some("arn:aws:iam::000000000000:role/def"));
        assert_eq!(task_role(None, &none), None);
        let over = TaskOverrides { task_role_arn: Some("arn:aws:iam::000000000000:role/o".into()), ..Default::default() };
        assert_eq!(task_role(Some(&def), &over).as_deref(), Some("arn:aws:iam::000000000000:role/o"));
        assert_eq!(execution_role(&def, &none).as_deref(), Some("arn:aws:iam::000000000000:role/exec"));
        assert_eq!(execution_role(&TaskDefinition::default(), &none), None);
    }

    #[test]
    fn task_size_is_enforced_from_the_record() {
        let def = TaskDefinition {
            container_definitions: Some(vec![ContainerDefinition { name: Some("a".into()), ..Default::default() }]),
            ..Default::default()
        };
        let t = task(TaskId::new("abc").unwrap(), &def, &TaskOverrides::default(), TaskSize { cpu: 256, memory: 512 }, &[pulled()], &[]);
        assert_eq!((t.cpu, t.memory_mib, t.containers.len()), (Some(256), Some(512), 1));
        assert!(t.containers[0].essential, "essential defaults to true");
    }
}
