//! What the sandbox checks of a [`TaskSpec`] beyond the boundary's own
//! rules ([`TaskSpec::validate`]): what it needs of this host.

use berth_runtime_api::TaskSpec;

use crate::SandboxError;

/// Checks what can be checked before anything is created: the boundary's
/// rules, then image layers that are absolute directory paths an overlay
/// can take, and ulimit names the OCI runtime knows.
pub(crate) fn validate(spec: &TaskSpec) -> Result<(), SandboxError> {
    spec.validate()?;
    let bad = |m: String| Err(SandboxError::invalid(m));
    for c in &spec.containers {
        if c.layers.is_empty() {
            return bad(format!("container {}: no image layers", c.name));
        }
        for l in &c.layers {
            let s = l.to_string_lossy();
            if !l.is_absolute() || s.contains([',', ':', '\n']) {
                return bad(format!(
                    "container {}: layer path {s:?} must be absolute, without ',' or ':'",
                    c.name
                ));
            }
            if !l.is_dir() {
                return bad(format!(
                    "container {}: layer {s} is not a directory",
                    c.name
                ));
            }
        }
        for u in &c.ulimits {
            crate::oci::rlimit_type(&u.name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use berth_runtime_api::{ContainerSpec, ImageConfig, TaskId, Ulimit};

    use super::*;

    #[test]
    fn layers_and_ulimits_are_checked() {
        let image = ImageConfig {
            cmd: Some(vec!["true".into()]),
            ..ImageConfig::default()
        };
        let task = |c: ContainerSpec| TaskSpec::new(TaskId::new("t").unwrap(), vec![c]);
        let err = |t: TaskSpec| validate(&t).unwrap_err().to_string();
        let dir = std::env::temp_dir();
        validate(&task(ContainerSpec::new("a", vec![dir.clone()], image.clone()))).unwrap();
        assert!(err(task(ContainerSpec::new("a", vec![], image.clone()))).contains("no image layers"));
        assert!(err(task(ContainerSpec::new("a", vec!["rel".into()], image.clone()))).contains("absolute"));
        let missing = dir.join("berth-no-such-layer");
        assert!(err(task(ContainerSpec::new("a", vec![missing], image.clone()))).contains("not a directory"));
        let mut c = ContainerSpec::new("a", vec![dir], image);
        c.ulimits = vec![Ulimit {
            name: "nosuch".into(),
            soft_limit: 1,
            hard_limit: 1,
        }];
        assert!(err(task(c.clone())).contains("nosuch"));
        // The boundary's rules come first.
        c.name = "a/b".into();
        assert!(err(task(c)).contains("must be 1-64 characters"));
    }
}
