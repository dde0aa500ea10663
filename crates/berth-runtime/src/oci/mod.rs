//! The OCI runtime config (`config.json`) of a container.

pub mod defaults;
pub mod seccomp;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::SandboxError;
use berth_runtime_api::ContainerSpec;
use crate::user::User;

const MIB: u64 = 1024 * 1024;

/// Everything about a container's config that is not in its spec.
#[derive(Debug)]
pub struct Context<'a> {
    /// The container.
    pub container: &'a ContainerSpec,
    /// Hostname.
    pub hostname: &'a str,
    /// The container's cgroup path (a child of the task's).
    pub cgroups_path: PathBuf,
    /// The task's network namespace, if it has one.
    pub netns: Option<&'a Path>,
    /// The resolved user.
    pub user: User,
    /// The container's process limit.
    pub pids_limit: i64,
    /// The host's init binary, when the container runs one.
    pub init: Option<&'a Path>,
    /// Give the container its own cgroup namespace (cgroup v2).
    pub cgroup_ns: bool,
    /// The task's volumes directory: volume `v` is `<volumes>/v`.
    pub volumes: &'a Path,
}

/// Maps an ECS ulimit name (`nofile`) to its OCI type (`RLIMIT_NOFILE`).
pub fn rlimit_type(name: &str) -> Result<PosixRlimitType, SandboxError> {
    use PosixRlimitType as T;
    Ok(match name {
        "core" => T::RlimitCore,
        "cpu" => T::RlimitCpu,
        "data" => T::RlimitData,
        "fsize" => T::RlimitFsize,
        "locks" => T::RlimitLocks,
        "memlock" => T::RlimitMemlock,
        "msgqueue" => T::RlimitMsgqueue,
        "nice" => T::RlimitNice,
        "nofile" => T::RlimitNofile,
        "nproc" => T::RlimitNproc,
        "rss" => T::RlimitRss,
        "rtprio" => T::RlimitRtprio,
        "rttime" => T::RlimitRttime,
        "sigpending" => T::RlimitSigpending,
        "stack" => T::RlimitStack,
        _ => {
            return Err(SandboxError::invalid(format!(
                "unknown ulimit {name:?}"
            )));
        }
    })
}

/// Builds the config of one container.
pub fn build(ctx: &Context<'_>) -> Result<Spec, SandboxError> {
    let c = ctx.container;
    let mut args = c.args()?;
    let mut mounts = defaults::mounts()?;
    if let Some(init) = ctx.init {
        args.splice(0..0, [defaults::INIT_PATH.to_string(), "--".to_string()]);
        mounts.push(bind(init, defaults::INIT_PATH, true)?);
    }
    for m in &c.mounts {
        mounts.push(bind(&m.source, &m.destination, m.read_only)?);
    }
    for m in &c.volume_mounts {
        mounts.push(bind(&ctx.volumes.join(&m.volume), &m.container_path, m.read_only)?);
    }

    let caps = capabilities(c)?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()?;

    let mut rlimits = Vec::new();
    if !c.ulimits.iter().any(|u| u.name == "nofile") {
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(defaults::default_nofile())
                .hard(defaults::default_nofile())
                .build()?,
        );
    }
    for u in &c.ulimits {
        let typ = rlimit_type(&u.name)?;
        let (soft, hard) = defaults::within_host(typ, u.soft_limit, u.hard_limit);
        if hard < u.hard_limit {
            tracing::warn!(
                container = %c.name, ulimit = %u.name, asked = u.hard_limit, given = hard,
                "this host cannot raise the hard limit that far (no CAP_SYS_RESOURCE): the container gets the host's"
            );
        }
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()?,
        );
    }

    let user = UserBuilder::default()
        .uid(ctx.user.uid)
        .gid(ctx.user.gid)
        .additional_gids(ctx.user.additional_gids.clone())
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(args)
        .env(c.env())
        .cwd(c.cwd())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(true)
        .build()?;

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    let net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    namespaces.push(match ctx.netns {
        Some(path) => net.path(path).build()?,
        None => net.build()?,
    });
    if ctx.cgroup_ns {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()?,
        );
    }

    let mut memory = LinuxMemoryBuilder::default();
    if let Some(mib) = c.memory_mib {
        let bytes = to_i64(mib * MIB);
        memory = memory.limit(bytes).swap(bytes);
    }
    if let Some(mib) = c.memory_reservation_mib {
        memory = memory.reservation(to_i64(mib * MIB));
    }
    let mut resources = LinuxResourcesBuilder::default()
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()?,
        ])
        .memory(memory.build()?)
        .pids(LinuxPidsBuilder::default().limit(ctx.pids_limit).build()?);
    if let Some(shares) = c.cpu {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .shares(u64::from(shares.max(2)))
                .build()?,
        );
    }

    let mut linux = LinuxBuilder::default();
    if !c.sysctls.is_empty() {
        linux = linux.sysctl(c.sysctls.clone().into_iter().collect::<std::collections::HashMap<_, _>>());
    }
    let linux = linux
        .namespaces(namespaces)
        .resources(resources.build()?)
        .cgroups_path(ctx.cgroups_path.clone())
        .masked_paths(
            defaults::MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            defaults::READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .seccomp(seccomp::profile()?)
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(c.readonly_root_filesystem)
                .build()?,
        )
        .mounts(mounts)
        .process(process)
        .hostname(ctx.hostname)
        .linux(linux)
        .build()?)
}

/// Docker's default set, less `cap_drop`, plus `cap_add` (ECS's order:
/// drop first, then add); `ALL` in `cap_drop` empties the set, in
/// `cap_add` grants every capability.
pub fn capabilities(c: &ContainerSpec) -> Result<oci_spec::runtime::Capabilities, SandboxError> {
    let parse = |name: &str| {
        let bare = name.strip_prefix("CAP_").unwrap_or(name);
        bare.to_ascii_uppercase().parse::<Capability>().map_err(|_| {
            SandboxError::invalid(format!("container {}: unknown capability {name:?}", c.name))
        })
    };
    let all = |list: &[String]| list.iter().any(|n| n.eq_ignore_ascii_case("ALL"));
    let mut caps: oci_spec::runtime::Capabilities = if all(&c.cap_drop) {
        oci_spec::runtime::Capabilities::new()
    } else {
        let dropped = c.cap_drop.iter().map(|n| parse(n)).collect::<Result<Vec<_>, _>>()?;
        defaults::CAPABILITIES.into_iter().filter(|cap| !dropped.contains(cap)).collect()
    };
    if all(&c.cap_add) {
        caps.extend(defaults::ALL_CAPABILITIES);
    } else {
        for name in &c.cap_add {
            caps.insert(parse(name)?);
        }
    }
    Ok(caps)
}

fn bind(
    source: &Path,
    destination: &str,
    read_only: bool,
) -> Result<oci_spec::runtime::Mount, SandboxError> {
    let mut options = vec![
        "rbind".to_string(),
        "nosuid".to_string(),
        "nodev".to_string(),
    ];
    if read_only {
        options.push("ro".into());
    }
    Ok(MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()?)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use berth_runtime_api::{ImageConfig, Ulimit};

    fn ctx(c: &ContainerSpec) -> Context<'_> {
        Context {
            container: c,
            hostname: "h",
            cgroups_path: "/berth/t/c".into(),
            netns: Some(Path::new("/run/netns/t")),
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
            },
            pids_limit: 100,
            init: Some(Path::new("/usr/bin/tini-static")),
            cgroup_ns: false,
            volumes: Path::new("/tasks/t/volumes"),
        }
    }

    #[test]
    fn maps_the_container() {
        let mut c = ContainerSpec::new("c", vec!["/l".into()], ImageConfig::default());
        c.command = Some(vec!["sleep".into(), "1".into()]);
        c.readonly_root_filesystem = true;
        c.memory_mib = Some(64);
        c.cpu = Some(128);
        c.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft_limit: 10,
            hard_limit: 20,
        }];
        let json = serde_json::to_value(build(&ctx(&c)).unwrap()).unwrap();
        assert_eq!(
            json["process"]["args"],
            serde_json::json!(["/sbin/docker-init", "--", "sleep", "1"])
        );
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(
            json["process"]["rlimits"],
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}])
        );
        assert_eq!(
            json["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(json["root"]["readonly"], true);
        assert_eq!(
            json["linux"]["resources"]["memory"]["limit"],
            64 * 1024 * 1024
        );
        assert_eq!(json["linux"]["resources"]["cpu"]["shares"], 128);
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(json["linux"]["cgroupsPath"], "/berth/t/c");
        let ns = json["linux"]["namespaces"].as_array().unwrap();
        assert!(
            ns.iter()
                .any(|n| n["type"] == "network" && n["path"] == "/run/netns/t")
        );
        assert_eq!(ns.len(), 5);
        assert!(
            json["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "/proc/kcore")
        );
        assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    }
}
