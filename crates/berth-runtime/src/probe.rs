//! The start-up probe: which OCI runtime actually runs a container on this
//! host (crun first, as the fastest, then runc), and the cgroup version.
//!
//! A runtime is judged by running a real container with the host's own
//! `/usr` mounted read-only and a memory limit in a `berth/` cgroup, as
//! tasks will have: Debian's crun 1.8, for one, refuses hybrid cgroup
//! layouts only at that point.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, MountBuilder, ProcessBuilder, RootBuilder, SpecBuilder,
};

use crate::cgroup::{BERTH_CGROUP, CgroupVersion, Cgroups};
use crate::oci_cli::OciCli;
use crate::{RuntimeConfig, SandboxError};

/// What the probe found.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The OCI runtime binary to use.
    pub oci_runtime: PathBuf,
    /// The host's cgroup interface.
    pub cgroups: CgroupVersion,
    /// The shim binary.
    pub shim: PathBuf,
    /// How a task's ephemeral storage is made here.
    pub scratch: crate::scratch::Scratch,
}

const CANDIDATES: [&str; 2] = ["crun", "runc"];
const SEARCH_PATH: [&str; 4] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/// Probes the host.
pub fn probe(config: &RuntimeConfig, cgroups: &Cgroups) -> Result<Probe, SandboxError> {
    let shim = shim_path(config)?;
    let candidates: Vec<PathBuf> = match &config.oci_runtime {
        Some(path) => vec![path.clone()],
        None => CANDIDATES
            .iter()
            .filter_map(|name| find_binary(name))
            .collect(),
    };
    let mut tried = Vec::new();
    for (i, binary) in candidates.into_iter().enumerate() {
        let cli = OciCli {
            binary: binary.clone(),
            root: config.oci_root.clone(),
        };
        match try_runtime(&cli, config, cgroups, i) {
            Ok(()) => {
                tracing::info!(runtime = %binary.display(), cgroups = ?cgroups.version(), "OCI runtime probe passed");
                return Ok(Probe {
                    oci_runtime: binary,
                    cgroups: cgroups.version(),
                    shim,
                    scratch: crate::scratch::Scratch::probe(),
                });
            }
            Err(e) => {
                tracing::info!(runtime = %binary.display(), error = %e, "OCI runtime probe failed");
                tried.push(format!("{}: {e}", binary.display()));
            }
        }
    }
    if tried.is_empty() {
        tried.push(format!("none of {} found", CANDIDATES.join(", ")));
    }
    Err(SandboxError::NoWorkingRuntime {
        tried: tried.join("; "),
    })
}

fn shim_path(config: &RuntimeConfig) -> Result<PathBuf, SandboxError> {
    let path = match &config.shim {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("berth-shim")))
            .unwrap_or_else(|| PathBuf::from("berth-shim")),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(SandboxError::ShimNotFound { path })
    }
}

/// Finds `name` on PATH or in the usual system directories.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path_var = std::env::var("PATH").unwrap_or_default();
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(SEARCH_PATH)
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn try_runtime(
    cli: &OciCli,
    config: &RuntimeConfig,
    cgroups: &Cgroups,
    n: usize,
) -> Result<(), SandboxError> {
    // Unique across threads too: runtimes may be created concurrently.
    static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("probe-{}-{seq}-{n}", std::process::id());
    let dir = config.tasks_dir.join(format!(".{id}"));
    let result = write_bundle(&dir, &id).and_then(|()| cli.run_foreground(&id, &dir));
    let _ = cli.delete(&id);
    let _ = cgroups.at(Path::new(BERTH_CGROUP).join(&id)).remove();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A bundle whose rootfs is the host's `/usr` (and the `/bin`, `/lib`
/// links or directories beside it), read-only, running `true`.
fn write_bundle(dir: &Path, id: &str) -> Result<(), SandboxError> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("proc")).map_err(SandboxError::io("creating", &rootfs))?;
    let mut mounts = vec![
        MountBuilder::default()
            .destination("/proc")
            .typ("proc")
            .source("proc")
            .build()?,
    ];
    for top in ["usr", "bin", "sbin", "lib", "lib64"] {
        let host = Path::new("/").join(top);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&host).map_err(SandboxError::io("reading", &host))?;
            std::os::unix::fs::symlink(&target, rootfs.join(top))
                .map_err(SandboxError::io("linking", rootfs.join(top)))?;
        } else if meta.is_dir() {
            std::fs::create_dir_all(rootfs.join(top))
                .map_err(SandboxError::io("creating", rootfs.join(top)))?;
            mounts.push(
                MountBuilder::default()
                    .destination(format!("/{top}"))
                    .typ("bind")
                    .source(&host)
                    .options(vec!["rbind".to_string(), "ro".to_string()])
                    .build()?,
            );
        }
    }
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<Result<Vec<_>, _>>()?;
    let resources = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(64i64 << 20).build()?)
        .pids(LinuxPidsBuilder::default().limit(16).build()?)
        .build()?;
    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()?,
        )
        .mounts(mounts)
        .process(
            ProcessBuilder::default()
                .args(vec!["true".to_string()])
                .env(vec![format!("PATH={}", berth_runtime_api::DEFAULT_PATH)])
                .cwd("/")
                .build()?,
        )
        .hostname("probe")
        .linux(
            LinuxBuilder::default()
                .namespaces(namespaces)
                .resources(resources)
                .cgroups_path(Path::new("/").join(BERTH_CGROUP).join(id))
                .build()?,
        )
        .build()?;
    spec.save(dir.join("config.json"))?;
    Ok(())
}
