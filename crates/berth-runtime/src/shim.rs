//! `berth-shim`: the per-task supervisor that keeps a task's containers
//! (and the record of how they ended) independent of the agent.
//!
//! `berth-shim start TASK_DIR` is run by the agent. It spawns
//! `berth-shim serve TASK_DIR` and exits as soon as that reports whether
//! the containers started, so the server is re-parented away from the
//! agent (a double spawn). The server:
//! 1. leaves the agent's session (`setsid`) and becomes a child subreaper,
//!    so each container's PID 1 becomes its child once the OCI runtime exits;
//! 2. runs `RUNTIME run --detach` for each container, in order, with the
//!    container's stdout/stderr going straight to files in its directory;
//! 3. answers `ok` or `error: ...` on its stdout (the starter relays it);
//! 4. reaps children until every container's PID 1 has exited, writing
//!    each one's exit record (code, signal, OOM kills from its cgroup);
//! 5. exits. Releasing mounts, cgroups and runtime state is the agent's job.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::SystemTime;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::RuntimeError;
use crate::cgroup::Cgroups;
use crate::layout::{TaskDir, oci_id};
use crate::oci_cli::OciCli;
use crate::record::{ProcessId, TaskRecord, read_json, write_json};
use crate::status::ContainerExit;

/// The reply of a shim whose containers all started.
pub const READY: &str = "ok";

/// Entry point of the `berth-shim` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("start"), Some(dir)) => start(Path::new(dir)),
        (Some("serve"), Some(dir)) => serve(Path::new(dir)),
        _ => {
            eprintln!("usage: berth-shim start|serve TASK_DIR");
            ExitCode::from(2)
        }
    }
}

/// Spawns the server and relays its one-line answer.
fn start(dir: &Path) -> ExitCode {
    let answer = (|| -> Result<String, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let log_path = TaskDir::at(dir).shim_log();
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
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the shim: {e}"))?;
        // The server lives on; it is re-parented when this process exits.
        Ok(line.trim().to_string())
    })();
    let answer = answer.unwrap_or_else(|e| format!("error: {e}"));
    let answer = if answer.is_empty() {
        "error: the shim exited without answering (see shim.log)".into()
    } else {
        answer
    };
    println!("{answer}");
    if answer == READY {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(dir: &Path) -> ExitCode {
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("berth-shim: setsid: {e}");
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        println!("error: becoming a subreaper: {e}");
        return ExitCode::FAILURE;
    }
    let task_dir = TaskDir::at(dir);
    let supervised = match start_containers(&task_dir) {
        Ok(s) => s,
        Err(e) => {
            println!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let answer = match &supervised.failure {
        None => READY.to_string(),
        Some(e) => format!("error: {e}"),
    };
    println!("{answer}");
    let _ = std::io::stdout().flush();
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
    reap(&task_dir, supervised);
    ExitCode::SUCCESS
}

struct Supervised {
    task: crate::TaskId,
    cgroups: Option<Cgroups>,
    /// Host pid of each started container's PID 1 → (name, exit file).
    running: HashMap<i32, (String, PathBuf)>,
    failure: Option<String>,
}

fn start_containers(task_dir: &TaskDir) -> Result<Supervised, RuntimeError> {
    let me = ProcessId::of(std::process::id() as i32)
        .ok_or_else(|| RuntimeError::Shim("reading own /proc entry".into()))?;
    me.write(&task_dir.shim_pid())?;
    let record: TaskRecord = read_json(&task_dir.record())?
        .ok_or_else(|| RuntimeError::TaskNotFound(task_dir.path().display().to_string()))?;
    let cli = OciCli {
        binary: record.oci_runtime.clone(),
        root: record.oci_root.clone(),
    };
    let task = record.spec.task_id.clone();
    let mut supervised = Supervised {
        task: task.clone(),
        cgroups: Cgroups::detect().ok(),
        running: HashMap::new(),
        failure: None,
    };
    for c in &record.spec.containers {
        let dir = task_dir.container(&c.name);
        let started = (|| -> Result<i32, RuntimeError> {
            let open = |p: PathBuf| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(RuntimeError::io("opening", p))
            };
            cli.run_detached(
                &oci_id(task.as_str(), &c.name),
                &dir.bundle(),
                &dir.pid_file(),
                &dir.runtime_log(),
                open(dir.stdout())?,
                open(dir.stderr())?,
            )?;
            let pid = std::fs::read_to_string(dir.pid_file())
                .map_err(RuntimeError::io("reading", dir.pid_file()))?;
            pid.trim().parse().map_err(|_| {
                RuntimeError::Shim(format!("bad pid file {}", dir.pid_file().display()))
            })
        })();
        match started {
            Ok(pid) => {
                supervised
                    .running
                    .insert(pid, (c.name.clone(), dir.exit_file()));
            }
            Err(e) => {
                supervised.failure = Some(format!("container {}: {e}", c.name));
                break;
            }
        }
    }
    Ok(supervised)
}

/// Waits for every container's PID 1 and records how it ended.
fn reap(task_dir: &TaskDir, mut s: Supervised) {
    while !s.running.is_empty() {
        let (pid, exit_code, signal) = match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code, None),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32, Some(sig as i32)),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => {
                // No children left, yet containers unaccounted for: they
                // were never re-parented to us. Nothing more can be learnt.
                eprintln!(
                    "berth-shim {}: waitpid: {e}; {} container(s) unrecorded",
                    task_dir.path().display(),
                    s.running.len()
                );
                break;
            }
        };
        let Some((name, exit_file)) = s.running.remove(&pid.as_raw()) else {
            continue;
        };
        let oom_kills = s
            .cgroups
            .as_ref()
            .map_or(0, |cg| cg.task(&s.task).oom_kills(&name));
        let exit = ContainerExit {
            exit_code,
            signal,
            oom_killed: oom_kills > 0,
            finished_at: SystemTime::now(),
        };
        if let Err(e) = write_json(&exit_file, &exit) {
            eprintln!("berth-shim: recording the exit of {name}: {e}");
        }
    }
}
