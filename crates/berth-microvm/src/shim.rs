//! `berth-vm-shim`: the per-task supervisor of one micro-VM, independent
//! of the agent (the sandbox shim's approach: a double spawn, `setsid`).
//!
//! `berth-vm-shim start TASK_DIR` is run by the runtime. It spawns
//! `berth-vm-shim serve TASK_DIR` and relays its one-line answer (`ok` or
//! `error: ...`), so the server is re-parented away from the agent. The
//! server:
//! 1. leaves the agent's session and joins the task's cgroup
//!    (`berth/<task>/vmm`) and network namespace, so the VMM it starts is
//!    inside both from its first instruction;
//! 2. starts the VMM (`qemu.pid`), its output in `qemu.log`;
//! 3. hands the guest its task: one JSON line into the control FIFO;
//! 4. answers, then waits for the VMM and records how it ended
//!    (`vm-exit.json`: code or signal, and whether the host's OOM killer
//!    struck the VMM's cgroup).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use berth_runtime::manifest::{ProcessId, write_json};
use berth_runtime_api::TaskId;

use crate::runtime::{Layout, VmExit, VmManifest};

/// The reply of a shim whose VM started.
pub const READY: &str = "ok";

/// How long the guest's control port may take to be opened by the VMM.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Entry point of the `berth-vm-shim` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("start"), Some(dir)) => start(Path::new(dir)),
        (Some("serve"), Some(dir)) => serve(Path::new(dir)),
        _ => {
            eprintln!("usage: berth-vm-shim start|serve TASK_DIR");
            ExitCode::from(2)
        }
    }
}

fn start(dir: &Path) -> ExitCode {
    let answer = (|| -> Result<String, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let log_path = Layout(dir.to_path_buf()).shim_log();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning the shim: {e}"))?;
        let stdout = child.stdout.take().ok_or("no pipe to the shim")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("reading the shim: {e}"))?;
        Ok(line.trim().to_string())
    })();
    let answer = match answer {
        Ok(a) if a.is_empty() => "error: the shim exited without answering (see shim.log)".to_owned(),
        Ok(a) => a,
        Err(e) => format!("error: {e}"),
    };
    println!("{answer}");
    if answer == READY { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn serve(dir: &Path) -> ExitCode {
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("berth-vm-shim: setsid: {e}");
    }
    let layout = Layout(dir.to_path_buf());
    let me = ProcessId::of(std::process::id() as i32).map(|p| p.write(&layout.shim_pid()));
    if !matches!(me, Some(Ok(()))) {
        println!("error: cannot write {}", layout.shim_pid().display());
        return ExitCode::FAILURE;
    }
    let mut child = match launch(&layout) {
        Ok(c) => c,
        Err(e) => {
            println!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{READY}");
    let _ = std::io::stdout().flush();
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
    let status = child.wait();
    record_exit(&layout, status.ok());
    ExitCode::SUCCESS
}

/// Joins the cgroup and namespace, starts the VMM and sends the task.
fn launch(layout: &Layout) -> Result<std::process::Child, String> {
    let manifest = VmManifest::read(&layout.manifest()).map_err(|e| e.to_string())?;
    let task = manifest.spec.task_id.clone();
    let cgroups = berth_runtime::cgroup::Cgroups::detect().map_err(|e| e.to_string())?;
    cgroups
        .task(&task)
        .join("vmm", std::process::id())
        .map_err(|e| format!("joining the task's cgroup: {e}"))?;
    if let Some(netns) = &manifest.spec.netns {
        let ns = std::fs::File::open(netns).map_err(|e| format!("{}: {e}", netns.display()))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("joining the network namespace {}: {e}", netns.display()))?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.vmm_log())
        .map_err(|e| format!("{}: {e}", layout.vmm_log().display()))?;
    let Some((program, args)) = manifest.argv.split_first() else {
        return Err("the manifest has no VMM command".into());
    };
    let mut child = Command::new(program)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {program}: {e}"))?;
    let pid = ProcessId::of(child.id() as i32).ok_or("the VMM exited at once (see qemu.log)")?;
    pid.write(&layout.vmm_pid()).map_err(|e| e.to_string())?;
    if let Err(e) = send_task(layout, &manifest, &mut child) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// Writes the task line into the control FIFO once the VMM has it open.
fn send_task(layout: &Layout, manifest: &VmManifest, child: &mut std::process::Child) -> Result<(), String> {
    let mut line = serde_json::to_vec(&manifest.guest).map_err(|e| e.to_string())?;
    line.push(b'\n');
    let fifo = layout.control_in();
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    let mut file = loop {
        match OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&fifo) {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) && Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("the VMM exited ({status}) before the guest could be given its task: see qemu.log"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("the guest's control channel {}: {e}", fifo.display())),
        }
    };
    // Blocking from here: the task line may be longer than a FIFO write
    // that never splits.
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()))
        .map_err(|e| format!("the guest's control channel: {e}"))?;
    file.write_all(&line).map_err(|e| format!("sending the task: {e}"))
}

fn record_exit(layout: &Layout, status: Option<std::process::ExitStatus>) {
    use std::os::unix::process::ExitStatusExt as _;
    let oom_killed = VmManifest::read(&layout.manifest())
        .ok()
        .map(|m| task_oom_kills(&m.spec.task_id) > 0)
        .unwrap_or(false);
    let exit = VmExit {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        oom_killed,
        finished_at: SystemTime::now(),
    };
    if let Err(e) = write_json(&layout.vm_exit(), &exit) {
        eprintln!("berth-vm-shim: recording the VM's exit: {e}");
    }
}

fn task_oom_kills(task: &TaskId) -> u64 {
    berth_runtime::cgroup::Cgroups::detect().map_or(0, |c| c.task(task).oom_kills("vmm"))
}
