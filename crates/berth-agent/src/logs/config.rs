//! A container's `logConfiguration` → where the awslogs driver sends its
//! output. Pure rules, shared with `berth logs`, which reads from the same
//! place.

use berth_wire::ecs::{ContainerDefinition, LogDriver, TaskDefinition};

/// ECS's stoppedReason when a container's log group does not exist and
/// `awslogs-create-group` is not "true" (as Fargate reports it, platform
/// version 1.4: the logger's validation fails creating the stream).
pub const GROUP_MISSING: &str = "ResourceInitializationError: failed to validate logger args: create stream has been \
     retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does \
     not exist. : exit status 1";

/// The awslogs options Berth knows (Docker's awslogs driver and ECS's
/// `awslogs-stream-prefix`). Those without effect here are accepted: the
/// region and endpoints (Berth is the one region), `mode` and
/// `max-buffer-size` (output goes to files, so a container never waits on
/// its logs), and the multi-line options (each line is an event).
const KNOWN_OPTIONS: &[&str] = &[
    "awslogs-group",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "awslogs-region",
    "awslogs-endpoint",
    "awslogs-credentials-endpoint",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "awslogs-force-flush-interval-seconds",
    "awslogs-max-buffered-events",
    "awslogs-format",
    "mode",
    "max-buffer-size",
    "tag",
];

/// Where one container's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub container: String,
    pub group: String,
    /// `PREFIX/CONTAINER/TASK-ID`, as ECS names it (`CONTAINER/TASK-ID`
    /// without a prefix; ECS requires one on Fargate).
    pub stream: String,
    /// `awslogs-create-group` is true: create the group if it is missing.
    pub create_group: bool,
}

/// Where the awslogs driver sends a container's output: `Ok(None)` if it
/// does not use awslogs; `Err` with ECS's reason if its options are
/// unusable (the task cannot start).
pub fn destination(container: &ContainerDefinition, task_id: &str) -> Result<Option<Destination>, String> {
    let Some(config) = container.log_configuration.as_ref().filter(|c| c.log_driver == LogDriver::Awslogs) else {
        return Ok(None);
    };
    let name = container.name.clone().unwrap_or_default();
    let options = config.options.clone().unwrap_or_default();
    let invalid = |what: String| format!("ResourceInitializationError: failed to validate logger args: {what}");
    if let Some(unknown) = options.keys().find(|k| !KNOWN_OPTIONS.contains(&k.as_str())) {
        return Err(invalid(format!("unknown log opt '{unknown}' for awslogs log driver")));
    }
    let group = options.get("awslogs-group").filter(|g| !g.is_empty());
    let Some(group) = group else {
        return Err(invalid("must specify a value for log opt 'awslogs-group'".into()));
    };
    if group.len() > 512 || !group.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b)) {
        return Err(invalid(format!(
            "InvalidParameterException: log group name {group:?} must be 1 to 512 of [.-_/#A-Za-z0-9]"
        )));
    }
    let create_group = match options.get("awslogs-create-group").map(String::as_str) {
        None | Some("") => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            invalid(format!("must specify valid value for log opt 'awslogs-create-group': invalid syntax {v:?}"))
        })?,
    };
    let stream = match options.get("awslogs-stream-prefix").filter(|p| !p.is_empty()) {
        Some(prefix) => format!("{prefix}/{name}/{task_id}"),
        None => format!("{name}/{task_id}"),
    };
    if stream.contains([':', '*']) || stream.chars().count() > 512 {
        return Err(invalid(format!(
            "InvalidParameterException: log stream name {stream:?} must be 1 to 512 characters without ':' or '*'"
        )));
    }
    Ok(Some(Destination { container: name, group: group.clone(), stream, create_group }))
}

/// Every awslogs destination of a task's containers, in definition order;
/// `Err` with the first container's reason if one is unusable.
pub fn destinations(definition: &TaskDefinition, task_id: &str) -> Result<Vec<Destination>, String> {
    let mut out = Vec::new();
    for c in definition.container_definitions.iter().flatten() {
        out.extend(destination(c, task_id)?);
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`, which Docker reads the option with.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use berth_wire::ecs::LogConfiguration;

    use super::*;

    fn container(driver: LogDriver, options: &[(&str, &str)]) -> ContainerDefinition {
        ContainerDefinition {
            name: Some("web".into()),
            log_configuration: Some(LogConfiguration {
                log_driver: driver,
                options: Some(options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                secret_options: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn streams_are_named_as_ecs_names_them() {
        let c = container(
            LogDriver::Awslogs,
            &[("awslogs-group", "/ecs/web"), ("awslogs-stream-prefix", "ecs"), ("awslogs-region", "us-east-1")],
        );
        let d = destination(&c, "0123abcd").unwrap().unwrap();
        assert_eq!(
            d,
            Destination {
                container: "web".into(),
                group: "/ecs/web".into(),
                stream: "ecs/web/0123abcd".into(),
                create_group: false
            }
        );
        let c = container(LogDriver::Awslogs, &[("awslogs-group", "g"), ("awslogs-create-group", "true")]);
        let d = destination(&c, "t1").unwrap().unwrap();
        assert_eq!((d.stream.as_str(), d.create_group), ("web/t1", true));
    }

    #[test]
    fn other_drivers_and_no_configuration_ship_nothing() {
        assert_eq!(destination(&container(LogDriver::JsonFile, &[]), "t").unwrap(), None);
        assert_eq!(destination(&ContainerDefinition::default(), "t").unwrap(), None);
    }

    #[test]
    fn unusable_options_fail_with_the_loggers_reason() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "must specify a value for log opt 'awslogs-group'"),
            (&[("awslogs-group", "g"), ("awslogs-create-group", "yes")], "'awslogs-create-group'"),
            (&[("awslogs-group", "g"), ("awslogs-bogus", "1")], "unknown log opt 'awslogs-bogus'"),
            (&[("awslogs-group", "a b")], "log group name"),
            (&[("awslogs-group", "g"), ("awslogs-stream-prefix", "a:b")], "log stream name"),
        ];
        for (options, want) in cases {
            let err = destination(&container(LogDriver::Awslogs, options), "t").unwrap_err();
            assert!(err.starts_with("ResourceInitializationError: failed to validate logger args: "), "{err}");
            assert!(err.contains(want), "{options:?}: {err}");
        }
        let ok = container(LogDriver::Awslogs, &[("awslogs-group", "g"), ("awslogs-create-group", "false")]);
        assert!(!destination(&ok, "t").unwrap().unwrap().create_group);
    }
}
