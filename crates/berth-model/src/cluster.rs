//! Clusters: names, settings, and the record ECS returns.

use berth_wire::ecs::{Cluster, ClusterSetting, ClusterSettingName, Tag};

use crate::{Account, ModelError};

/// The cluster a request without `cluster` uses; created on first use.
pub const DEFAULT_CLUSTER: &str = "default";

pub const STATUS_ACTIVE: &str = "ACTIVE";
pub const STATUS_INACTIVE: &str = "INACTIVE";

/// ECS: up to 255 letters, numbers, underscores and hyphens.
pub fn validate_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ModelError::invalid(format!(
            "Cluster name '{name}' is invalid: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )))
    }
}

/// Checks cluster settings: only `containerInsights` exists, with the
/// values ECS accepts.
pub fn validate_settings(settings: &[ClusterSetting]) -> Result<(), ModelError> {
    for s in settings {
        let name = s.name.ok_or_else(|| ModelError::invalid("Cluster setting name must be specified."))?;
        match (name, s.value.as_deref()) {
            (ClusterSettingName::ContainerInsights, Some("enabled" | "disabled" | "enhanced")) => {}
            (_, v) => {
                return Err(ModelError::invalid(format!(
                    "Invalid value '{}' for cluster setting {name}: valid values are enabled, disabled, enhanced.",
                    v.unwrap_or("")
                )));
            }
        }
    }
    Ok(())
}

/// Merges `updates` into `current`, replacing settings of the same name.
pub fn merge_settings(current: &mut Vec<ClusterSetting>, updates: &[ClusterSetting]) {
    for u in updates {
        match current.iter_mut().find(|c| c.name == u.name) {
            Some(c) => c.value.clone_from(&u.value),
            None => current.push(u.clone()),
        }
    }
}

/// A new ACTIVE cluster record.
pub fn new_cluster(account: &Account, name: &str, settings: Vec<ClusterSetting>, tags: Vec<Tag>) -> Cluster {
    let settings = if settings.is_empty() {
        vec![ClusterSetting { name: Some(ClusterSettingName::ContainerInsights), value: Some("disabled".into()) }]
    } else {
        settings
    };
    Cluster {
        cluster_arn: Some(account.cluster_arn(name)),
        cluster_name: Some(name.to_owned()),
        status: Some(STATUS_ACTIVE.to_owned()),
        registered_container_instances_count: Some(0),
        running_tasks_count: Some(0),
        pending_tasks_count: Some(0),
        active_services_count: Some(0),
        statistics: Some(vec![]),
        tags: Some(tags),
        settings: Some(settings),
        capacity_providers: Some(vec!["FARGATE".into(), "FARGATE_SPOT".into()]),
        default_capacity_provider_strategy: Some(vec![]),
        ..Cluster::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("web-prod_1").is_ok());
        assert!(validate_name(&"a".repeat(255)).is_ok());
        for bad in ["", "has space", "slash/name", "dot.name", &"a".repeat(256)] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn settings_values() {
        let ok = ClusterSetting { name: Some(ClusterSettingName::ContainerInsights), value: Some("enabled".into()) };
        assert!(validate_settings(std::slice::from_ref(&ok)).is_ok());
        let bad = ClusterSetting { value: Some("sometimes".into()), ..ok.clone() };
        let err = validate_settings(&[bad]).unwrap_err();
        assert_eq!(err.aws_type(), "InvalidParameterException");
        assert!(err.to_string().contains("sometimes"));
    }

    #[test]
    fn merge_replaces_by_name() {
        let mut cur = vec![ClusterSetting { name: Some(ClusterSettingName::ContainerInsights), value: Some("disabled".into()) }];
        merge_settings(&mut cur, &[ClusterSetting { name: Some(ClusterSettingName::ContainerInsights), value: Some("enabled".into()) }]);
        assert_eq!(cur.len(), 1);
        assert_eq!(cur[0].value.as_deref(), Some("enabled"));
    }
}
