//! The baselines: the OCI runtime's own `run` of an equivalent bundle
//! (the floor of a sandbox) and `podman run` (a peer).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::json;

use crate::procfs;
use crate::world::{SLEEP_SCRIPT, check, remove_cgroup_tree, run};

/// The cgroup parent of floor containers (`/sys/fs/cgroup/*/NAME/<id>`).
const FLOOR_CGROUP: &str = "berth-bench-floor";

/// `runc run --detach` of a busybox bundle on a fresh overlay root per
/// container, with runc's own default config (`runc spec`: its own
/// mount, PID, IPC, UTS namespaces and a new network namespace, which
/// runc creates with the clone — the cheapest netns there is), the
/// bench's command, and the task cgroup limits Berth sets (memory
/// 512 MiB, CPU quota of 256 units, pids 1024). No seccomp filter, no
/// shim, no store.
pub struct Floor {
    dir: PathBuf,
    lower: PathBuf,
    state: PathBuf,
    runc: PathBuf,
    template: serde_json::Value,
    next: Mutex<usize>,
    live: Mutex<Vec<String>>,
}

impl Floor {
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        let runc = which("runc").context("runc is not installed")?;
        let spec_dir = dir.join("spec");
        std::fs::create_dir_all(&spec_dir)?;
        run(Command::new(&runc).arg("spec").current_dir(&spec_dir))?;
        let mut template: serde_json::Value = serde_json::from_slice(&std::fs::read(spec_dir.join("config.json"))?)?;
        template["process"]["terminal"] = json!(false);
        template["process"]["args"] = json!(["sh", "-c", SLEEP_SCRIPT]);
        template["process"]["env"] = json!(["PATH=/bin"]);
        template["root"]["readonly"] = json!(false);
        let nofile = nofile();
        template["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}]);
        template["linux"]["resources"]["memory"] = json!({"limit": 512u64 * 1024 * 1024});
        template["linux"]["resources"]["cpu"] = json!({"quota": 25_000, "period": 100_000});
        template["linux"]["resources"]["pids"] = json!({"limit": 1024});
        let namespaces = template["linux"]["namespaces"].as_array().cloned().unwrap_or_default();
        ensure!(
            namespaces.iter().any(|n| n["type"] == "network" && n.get("path").is_none()),
            "runc's default spec has no new network namespace: {namespaces:?}"
        );
        Self::with_template(dir, runc, template)
    }

    /// The floor run with the OCI config Berth wrote for one of its tasks
    /// (as `runc` sees it: Docker's capabilities, masked paths, Berth's
    /// mounts and limits, and its seccomp allow-list unless `seccomp` is
    /// false), on the same kind of overlay root, the same command, and a
    /// new network namespace like the floor's (not the task's own, whose
    /// cost is Berth's network setup). `data` is the Berth data dir the
    /// config came from: bind mounts from it get empty files of ours.
    pub fn with_berth_config(dir: &Path, config: &serde_json::Value, data: &Path, seccomp: bool) -> anyhow::Result<Self> {
        let runc = which("runc").context("runc is not installed")?;
        let mut t = config.clone();
        t["process"]["terminal"] = json!(false);
        t["process"]["args"] = json!(["sh", "-c", SLEEP_SCRIPT]);
        for ns in t["linux"]["namespaces"].as_array_mut().into_iter().flatten() {
            if ns["type"] == "network"
                && let Some(o) = ns.as_object_mut()
            {
                o.remove("path");
            }
        }
        let files = dir.join("files");
        std::fs::create_dir_all(&files)?;
        let ours = data.display().to_string();
        for (i, m) in t["mounts"].as_array_mut().into_iter().flatten().enumerate() {
            if m["source"].as_str().is_some_and(|s| s.starts_with(&ours)) {
                let file = files.join(format!("mount-{i}"));
                std::fs::write(&file, "")?;
                m["source"] = json!(file);
            }
        }
        if !seccomp && let Some(linux) = t["linux"].as_object_mut() {
            linux.remove("seccomp");
        }
        Self::with_template(dir, runc, t)
    }

    fn with_template(dir: &Path, runc: PathBuf, template: serde_json::Value) -> anyhow::Result<Self> {
        let lower = dir.join("lower");
        std::fs::create_dir_all(&lower)?;
        berth_testinfra::registry::busybox_rootfs(&lower)?;
        std::fs::create_dir_all(lower.join("etc"))?;
        std::fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        std::fs::create_dir_all(lower.join("tmp"))?;
        let state = dir.join("state");
        std::fs::create_dir_all(&state)?;
        std::fs::create_dir_all(dir.join("runs"))?;
        Ok(Self { dir: dir.to_owned(), lower, state, runc, template, next: Mutex::new(0), live: Mutex::default() })
    }

    /// How many syscall names the config's seccomp filter lists.
    pub fn seccomp_syscalls(&self) -> usize {
        self.template["linux"]["seccomp"]["syscalls"]
            .as_array()
            .map_or(0, |rules| rules.iter().map(|r| r["names"].as_array().map_or(0, Vec::len)).sum())
    }

    pub fn describe(&self) -> String {
        format!("{} run --detach", self.runc.display())
    }

    /// One container: the time from creating its overlay root to `runc
    /// run --detach` returning (the container's process is started),
    /// then removes it (untimed).
    pub fn launch_once(&self) -> anyhow::Result<Duration> {
        let (id, took) = self.start()?;
        self.remove(&id)?;
        Ok(took)
    }

    /// Starts a container; its id and how long it took.
    pub fn start(&self) -> anyhow::Result<(String, Duration)> {
        check()?;
        let n = {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *next += 1;
            *next
        };
        let id = format!("bench-floor-{}-{n}", std::process::id());
        let run_dir = self.dir.join("runs").join(&id);
        let started = Instant::now();
        let (upper, work, rootfs) = (run_dir.join("upper"), run_dir.join("work"), run_dir.join("rootfs"));
        for d in [&upper, &work, &rootfs] {
            std::fs::create_dir_all(d)?;
        }
        let options = format!("lowerdir={},upperdir={},workdir={}", self.lower.display(), upper.display(), work.display());
        nix::mount::mount(Some("overlay"), &rootfs, Some("overlay"), nix::mount::MsFlags::empty(), Some(options.as_str()))
            .with_context(|| format!("mounting the overlay at {}", rootfs.display()))?;
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id.clone());
        let mut config = self.template.clone();
        config["root"]["path"] = json!(rootfs);
        config["hostname"] = json!(id);
        config["linux"]["cgroupsPath"] = json!(format!("/{FLOOR_CGROUP}/{id}"));
        std::fs::write(run_dir.join("config.json"), serde_json::to_vec(&config)?)?;
        let err = std::fs::File::create(run_dir.join("runc.err"))?;
        let status = {
            use std::os::unix::process::CommandExt as _;
            Command::new(&self.runc)
                .arg("--root")
                .arg(&self.state)
                .args(["run", "--detach", "--bundle"])
                .arg(&run_dir)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .process_group(0)
                .status()?
        };
        let took = started.elapsed();
        if !status.success() {
            let why = std::fs::read_to_string(run_dir.join("runc.err")).unwrap_or_default();
            bail!("runc run {id} failed ({status}): {}", why.trim());
        }
        Ok((id, took))
    }

    /// Kills and deletes a container, unmounts its root, removes its dir.
    pub fn remove(&self, id: &str) -> anyhow::Result<()> {
        let run_dir = self.dir.join("runs").join(id);
        let out = Command::new(&self.runc).arg("--root").arg(&self.state).args(["delete", "-f", id]).output()?;
        let rootfs = run_dir.join("rootfs");
        if procfs::overlay_mounts_under(&rootfs).iter().any(|m| m == &rootfs) {
            nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).with_context(|| format!("unmounting {}", rootfs.display()))?;
        }
        std::fs::remove_dir_all(&run_dir)?;
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|l| l != id);
        ensure!(out.status.success(), "runc delete {id}: {}", String::from_utf8_lossy(&out.stderr).trim());
        Ok(())
    }

    /// What floor containers left on the host.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let mounts = procfs::overlay_mounts_under(&self.dir);
        if !mounts.is_empty() {
            left.push(format!("floor: {} overlay mounts", mounts.len()));
        }
        let cgroups: Vec<PathBuf> = procfs::cgroups_named(FLOOR_CGROUP, "")
            .into_iter()
            .filter(|p| std::fs::read_dir(p).is_ok_and(|d| d.filter_map(Result::ok).any(|e| e.file_type().is_ok_and(|t| t.is_dir()))))
            .collect();
        if !cgroups.is_empty() {
            left.push(format!("floor: container cgroups under {}", cgroups[0].display()));
        }
        if let Ok(out) = Command::new(&self.runc).arg("--root").arg(&self.state).args(["list", "-q"]).output() {
            let n = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).count();
            if n > 0 {
                left.push(format!("floor: {n} runc containers"));
            }
        }
        left
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let live = self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for id in live {
            if let Err(e) = self.remove(&id) {
                eprintln!("floor cleanup: {e:#}");
            }
        }
        for cg in procfs::cgroups_named(FLOOR_CGROUP, "") {
            remove_cgroup_tree(&cg);
        }
    }
}

/// `podman run -d` with its own storage under the work dir (`--root`,
/// `--runroot`), cgroupfs, `--network none` (its own netns with only
/// loopback, as the floor and Berth today), Berth's open-files limit.
pub struct Podman {
    base: Vec<String>,
    dir: PathBuf,
    live: Mutex<Vec<String>>,
}

impl Podman {
    /// Finds podman and checks that it can pull from the registry and run
    /// a container here; `Err` says why not (a baseline not measured).
    pub fn new(dir: &Path, probe_image: &str) -> anyhow::Result<Self> {
        let bin = which("podman").context("podman is not installed (scripts/bench.sh installs Debian's podman)")?;
        std::fs::create_dir_all(dir)?;
        let (root, runroot, tmp) = (dir.join("root"), dir.join("runroot"), dir.join("tmp"));
        std::fs::create_dir_all(&tmp)?;
        let base = vec![
            bin.display().to_string(),
            "--root".into(),
            root.display().to_string(),
            "--runroot".into(),
            runroot.display().to_string(),
            "--tmpdir".into(),
            tmp.display().to_string(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            "--storage-driver".into(),
            "overlay".into(),
        ];
        let podman = Self { base, dir: dir.to_owned(), live: Mutex::default() };
        podman.podman(&["pull", "-q", "--tls-verify=false", probe_image]).context("podman pull")?;
        podman.run_once(probe_image, false).context("podman run")?;
        Ok(podman)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.base[0]);
        cmd.args(&self.base[1..]).args(args).stdin(Stdio::null());
        cmd
    }

    fn podman(&self, args: &[&str]) -> anyhow::Result<String> {
        run(&mut self.command(args))
    }

    pub fn version(&self) -> String {
        self.podman(&["--version"]).unwrap_or_default().trim().to_owned()
    }

    /// `podman run -d` until it returns (the container is started), then
    /// removes the container (untimed). `pull`: the image is not cached
    /// (the pull is part of the run).
    pub fn run_once(&self, image: &str, pull: bool) -> anyhow::Result<Duration> {
        check()?;
        // podman raises nofile and nproc to 2^20 and 2^22 for root, which
        // a host with lower hard limits refuses (conmon's runc gets less
        // than podman has): Berth's nofile, and nproc at 1024, the task's
        // pids limit (root's processes are not held to RLIMIT_NPROC anyway).
        let nofile = format!("nofile={0}:{0}", nofile());
        let nproc = "nproc=1024:1024".to_owned();
        let mut args = vec!["run", "-d", "--network", "none", "--ulimit", &nofile, "--ulimit", &nproc];
        if pull {
            args.push("--tls-verify=false");
        }
        args.extend([image, "sh", "-c", SLEEP_SCRIPT]);
        let started = Instant::now();
        let id = self.podman(&args)?;
        let took = started.elapsed();
        let id = id.trim().to_owned();
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id.clone());
        self.podman(&["rm", "-f", "-t", "0", &id])?;
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|l| l != &id);
        Ok(took)
    }

    pub fn leftovers(&self) -> Vec<String> {
        match self.podman(&["ps", "-aq"]) {
            Ok(ids) if ids.trim().is_empty() => Vec::new(),
            Ok(ids) => vec![format!("podman: {} containers", ids.lines().count())],
            Err(e) => vec![format!("podman ps: {e:#}")],
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        let _ = self.podman(&["system", "reset", "--force"]);
        for m in procfs::overlay_mounts_under(&self.dir) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        // Other mounts podman may leave (its storage's own bind mount).
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let ours = self.dir.display().to_string();
            let mut points: Vec<&str> = info.lines().filter_map(|l| l.split_whitespace().nth(4)).filter(|m| m.starts_with(&ours)).collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for m in points {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// The open-files limit Berth gives containers (65535, or the host's hard
/// limit if lower); podman's own default (2^20) cannot be set everywhere.
fn nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(65535, |(_, hard)| hard.min(65535))
}

/// The first `name` on PATH (and in the sbin dirs, where runc lives).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
