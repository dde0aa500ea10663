//! `berth-shim`: the per-task supervisor that keeps a task's containers
//! (and the record of how they ended) independent of the agent.
//!
//! `berth-shim start TASK_DIR` is run by the agent. It spawns
//! `berth-shim serve TASK_DIR` and exits as soon as that reports whether
//! the containers started, so the server is re-parented away from the
//! agent (a double spawn). The server:
//! 1. leaves the agent's session (`setsid`) and becomes a child subreaper,
//!    so each container's PID 1 becomes its child once the OCI runtime exits;
//! 2. runs `RUNTIME run --detach` for each container without dependencies,
//!    in order, with the container's stdout/stderr going straight to files
//!    in its directory;
//! 3. answers `ok` or `error: ...` on its stdout (the starter relays it);
//! 4. supervises: reaps children, writing each container's exit record
//!    (code, signal, OOM kills from its cgroup); starts each waiting
//!    container once its `dependsOn` conditions hold ([`crate::deps`]), or
//!    records why it never will; runs health checks ([`crate::health`]);
//!    starts nothing more once the task's stop marker exists;
//! 5. exits when no container runs or waits. Releasing mounts, cgroups and
//!    runtime state is the agent's job.
//!
//! The server sleeps in `poll` on a signalfd for SIGCHLD; it wakes for
//! health checks, every second to cap the containers' output files
//! ([`crate::logcap`], two `stat`s per container; not with a cap of 0)
//! and, while containers wait for dependencies, every 100 ms.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cgroup::Cgroups;
use crate::deps::{Facts, Gate, gate};
use crate::health::{Outcome, record as record_check};
use crate::layout::{ContainerDir, TaskDir, oci_id};
use crate::logcap;
use crate::oci_cli::OciCli;
use crate::manifest::{ProcessId, TaskManifest, write_json};
use berth_runtime_api::ContainerSpec;
use berth_runtime_api::{ContainerExit, Health, NotStarted};
use berth_runtime_api::{RuntimeError, TaskId};

use crate::SandboxError;

/// The reply of a shim whose containers all started.
pub const READY: &str = "ok";

/// How often the shim looks at the stop marker and dependency timeouts
/// while containers wait.
const WAITING_TICK: Duration = Duration::from_millis(100);

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
    // SIGCHLD is read from a signalfd; blocked before any child exists so
    // no exit goes unnoticed. (Children start with an empty mask: std's
    // Command resets it.)
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let signals = mask
        .thread_block()
        .map_err(|e| e.to_string())
        .and_then(|()| {
            SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                .map_err(|e| e.to_string())
        });
    let signals = match signals {
        Ok(fd) => fd,
        Err(e) => {
            println!("error: watching for child exits: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut shim = match Shim::open(&TaskDir::at(dir)) {
        Ok(s) => s,
        Err(e) => {
            println!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let answer = match shim.start_initial() {
        Ok(()) => READY.to_string(),
        Err(e) => {
            // The agent cleans up; start nothing more.
            shim.stopping = true;
            format!("error: {e}")
        }
    };
    println!("{answer}");
    let _ = std::io::stdout().flush();
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
    shim.supervise(&signals);
    ExitCode::SUCCESS
}

/// The server's view of the task.
struct Shim {
    dir: TaskDir,
    task: TaskId,
    cli: OciCli,
    cgroups: Option<Cgroups>,
    slots: Vec<Slot>,
    /// No more containers start (the stop marker, or a failed start).
    stopping: bool,
    started_at: Instant,
    /// The cap of each output file (0: none) and when to look next.
    log_cap: u64,
    next_log_check: Instant,
}

/// One container.
struct Slot {
    spec: ContainerSpec,
    dir: ContainerDir,
    phase: Phase,
    check: Option<Checker>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running { pid: i32 },
    Exited { code: i32 },
    NotStarted,
}

/// A container's health check in progress.
struct Checker {
    health: Health,
    /// When the next check is due.
    next_at: Instant,
    /// Failures before this instant do not count (until a first pass).
    start_period_ends: Instant,
    passed_once: bool,
    /// The check running now: `runc exec`'s pid and its deadline.
    running: Option<(i32, Instant)>,
}

impl Shim {
    fn open(dir: &TaskDir) -> Result<Self, SandboxError> {
        let me = ProcessId::of(std::process::id() as i32)
            .ok_or_else(|| SandboxError::Shim("reading own /proc entry".into()))?;
        me.write(&dir.shim_pid())?;
        let record = TaskManifest::read(&dir.manifest())?
            .ok_or_else(|| RuntimeError::TaskNotFound(dir.path().display().to_string()))?;
        let slots = record
            .spec
            .containers
            .iter()
            .map(|c| Slot {
                spec: c.clone(),
                dir: dir.container(&c.name),
                phase: Phase::Waiting,
                check: None,
            })
            .collect();
        Ok(Self {
            dir: dir.clone(),
            task: record.spec.task_id.clone(),
            cli: OciCli {
                binary: record.oci_runtime.clone(),
                root: record.oci_root.clone(),
            },
            cgroups: Cgroups::detect().ok(),
            slots,
            stopping: false,
            started_at: Instant::now(),
            log_cap: record.log_file_max_bytes,
            next_log_check: Instant::now() + logcap::CHECK_EVERY,
        })
    }

    /// Starts, in order, every container without dependencies; the first
    /// failure is the answer to the agent.
    fn start_initial(&mut self) -> Result<(), SandboxError> {
        for i in 0..self.slots.len() {
            if self.slots[i].spec.depends_on.is_empty() {
                self.launch(i).map_err(|e| {
                    SandboxError::Shim(format!("container {}: {e}", self.slots[i].spec.name))
                })?;
            }
        }
        Ok(())
    }

    /// Runs container `i`; it is Running when this returns Ok.
    fn launch(&mut self, i: usize) -> Result<(), SandboxError> {
        let slot = &self.slots[i];
        let open = |p: PathBuf| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(SandboxError::io("opening", p))
        };
        let dir = &slot.dir;
        self.cli.run_detached(
            &oci_id(self.task.as_str(), &slot.spec.name),
            &dir.bundle(),
            &dir.pid_file(),
            &dir.runtime_log(),
            open(dir.stdout())?,
            open(dir.stderr())?,
        )?;
        let pid = std::fs::read_to_string(dir.pid_file())
            .map_err(SandboxError::io("reading", dir.pid_file()))?;
        let pid: i32 = pid.trim().parse().map_err(|_| {
            SandboxError::Shim(format!("bad pid file {}", dir.pid_file().display()))
        })?;
        let now = Instant::now();
        let slot = &mut self.slots[i];
        slot.phase = Phase::Running { pid };
        slot.check = slot.spec.health_check.as_ref().map(|hc| Checker {
            health: Health::unknown(),
            next_at: now + hc.interval,
            start_period_ends: now + hc.start_period,
            passed_once: false,
            running: None,
        });
        if slot.check.is_some() {
            write_or_log(&slot.dir.health_file(), &Health::unknown());
        }
        Ok(())
    }

    /// Until no container runs or waits: reap, start what may start, run
    /// health checks, sleep.
    fn supervise(&mut self, signals: &SignalFd) {
        loop {
            self.reap();
            if !self.stopping && self.dir.stop_marker().exists() {
                self.stopping = true;
            }
            self.resolve_dependencies();
            self.run_checks();
            if Instant::now() >= self.next_log_check {
                self.next_log_check = Instant::now() + logcap::CHECK_EVERY;
                for slot in &self.slots {
                    if matches!(slot.phase, Phase::Running { .. }) {
                        cap_logs(&slot.dir, self.log_cap);
                    }
                }
            }
            let live = self
                .slots
                .iter()
                .any(|s| matches!(s.phase, Phase::Running { .. } | Phase::Waiting));
            if !live {
                return;
            }
            self.sleep(signals);
        }
    }

    /// Collects every exited child: containers' PID 1s and health checks.
    fn reap(&mut self) {
        loop {
            let (pid, code, signal) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid.as_raw(), 128 + sig as i32, Some(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return,
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    eprintln!("berth-shim {}: waitpid: {e}", self.dir.path().display());
                    return;
                }
            };
            self.child_exited(pid, code, signal);
        }
    }

    fn child_exited(&mut self, pid: i32, code: i32, signal: Option<i32>) {
        let task = self.task.clone();
        for slot in &mut self.slots {
            if slot.phase == (Phase::Running { pid }) {
                let oom_kills = self
                    .cgroups
                    .as_ref()
                    .map_or(0, |cg| cg.task(&task).oom_kills(&slot.spec.name));
                let exit = ContainerExit {
                    exit_code: code,
                    signal,
                    oom_killed: oom_kills > 0,
                    finished_at: SystemTime::now(),
                };
                // What it wrote last is capped too, before its end is told.
                cap_logs(&slot.dir, self.log_cap);
                write_or_log(&slot.dir.exit_file(), &exit);
                slot.phase = Phase::Exited { code };
                if let Some(check) = &mut slot.check {
                    // A check still running in a dead container will fail.
                    check.running = None;
                }
                return;
            }
            let Some(check) = &mut slot.check else {
                continue;
            };
            if check.running.is_some_and(|(p, _)| p == pid) {
                check.running = None;
                let in_start = !check.passed_once && Instant::now() < check.start_period_ends;
                let outcome = if signal.is_some() {
                    Outcome::TimedOut
                } else {
                    Outcome::Exited(code)
                };
                finish_check(slot, outcome, in_start);
                return;
            }
        }
        // Anything else is an orphan re-parented to us (e.g. a process a
        // timed-out check left in the container): nothing to record.
    }

    /// Starts waiting containers whose dependencies hold, and records
    /// those whose dependencies never will.
    fn resolve_dependencies(&mut self) {
        loop {
            let mut changed = false;
            for i in 0..self.slots.len() {
                if self.slots[i].phase != Phase::Waiting {
                    continue;
                }
                let verdict = if self.stopping {
                    Gate::Never("CannotStartContainerError: the task was stopped before the container started".into())
                } else {
                    self.gate(i)
                };
                match verdict {
                    Gate::Wait => {}
                    Gate::Open => {
                        if let Err(e) = self.launch(i) {
                            self.never(i, format!("CannotStartContainerError: {e}"));
                        }
                        changed = true;
                    }
                    Gate::Never(reason) => {
                        self.never(i, reason);
                        changed = true;
                    }
                }
            }
            // A start or a failure may open or close other gates.
            if !changed {
                return;
            }
        }
    }

    fn gate(&self, i: usize) -> Gate {
        let deps: Vec<_> = self.slots[i]
            .spec
            .depends_on
            .iter()
            .filter_map(|d| {
                let target = self.slots.iter().find(|s| s.spec.name == d.container)?;
                let facts = match target.phase {
                    Phase::Waiting => Facts::Waiting,
                    Phase::Running { .. } => {
                        Facts::Running(target.check.as_ref().map(|c| c.health.status))
                    }
                    Phase::Exited { code } => Facts::Exited(code),
                    Phase::NotStarted => Facts::NotStarted,
                };
                Some((d, facts, target.spec.start_timeout()))
            })
            .collect();
        gate(&deps, self.started_at.elapsed())
    }

    fn never(&mut self, i: usize, reason: String) {
        let slot = &mut self.slots[i];
        eprintln!(
            "berth-shim {}: container {} not started: {reason}",
            self.task, slot.spec.name
        );
        write_or_log(&slot.dir.not_started_file(), &NotStarted { reason });
        slot.phase = Phase::NotStarted;
    }

    /// Starts due checks and kills those past their timeout.
    fn run_checks(&mut self) {
        let now = Instant::now();
        let task = self.task.clone();
        for slot in &mut self.slots {
            let Phase::Running { .. } = slot.phase else {
                continue;
            };
            let (Some(check), Some(hc)) = (&mut slot.check, &slot.spec.health_check) else {
                continue;
            };
            match check.running {
                Some((pid, deadline)) if now >= deadline => {
                    // The check's process in the container, then runc exec.
                    let inner = std::fs::read_to_string(slot.dir.check_pid_file());
                    if let Some(inner) = inner.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(inner), Signal::SIGKILL);
                    }
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    // Its exit is reaped later and ignored; count it now.
                    check.running = None;
                    let in_start = !check.passed_once && now < check.start_period_ends;
                    finish_check(slot, Outcome::TimedOut, in_start);
                }
                Some(_) => {}
                None if now >= check.next_at => {
                    check.next_at = now + hc.interval;
                    let _ = std::fs::remove_file(slot.dir.check_pid_file());
                    match self.cli.spawn_exec(
                        &oci_id(task.as_str(), &slot.spec.name),
                        &hc.command,
                        &slot.dir.check_pid_file(),
                    ) {
                        // The child is reaped by `reap` (waitpid on any pid).
                        Ok(child) => check.running = Some((child.id() as i32, now + hc.timeout)),
                        Err(e) => {
                            eprintln!("berth-shim {task}: health check of {}: {e}", slot.spec.name);
                            let in_start = !check.passed_once && now < check.start_period_ends;
                            finish_check(slot, Outcome::NotRun, in_start);
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// Sleeps until a child exits or the next timer is due.
    fn sleep(&self, signals: &SignalFd) {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut earliest = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        if self.slots.iter().any(|s| s.phase == Phase::Waiting) {
            earliest(now + WAITING_TICK);
        }
        if self.log_cap > 0 && self.slots.iter().any(|s| matches!(s.phase, Phase::Running { .. })) {
            earliest(self.next_log_check);
        }
        for slot in &self.slots {
            if let (Phase::Running { .. }, Some(check)) = (slot.phase, &slot.check) {
                earliest(
                    check
                        .running
                        .map_or(check.next_at, |(_, deadline)| deadline),
                );
            }
        }
        let timeout = match wake {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_duration_since(now).as_millis().min(60_000) as u16;
                PollTimeout::from(ms.max(1))
            }
        };
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout);
        // Drain the signalfd; `reap` collects every exit however many
        // signals were merged.
        while let Ok(Some(_)) = signals.read_signal() {}
    }
}

/// Rotates the container's output files past `max` bytes (0: no cap).
fn cap_logs(dir: &ContainerDir, max: u64) {
    if max == 0 {
        return;
    }
    for path in [dir.stdout(), dir.stderr()] {
        match logcap::cap(&path, max) {
            Ok(false) => {}
            Ok(true) => eprintln!("berth-shim: {} passed {max} bytes; rotated", path.display()),
            Err(e) => eprintln!("berth-shim: capping {}: {e}", path.display()),
        }
    }
}

/// Records a finished check in the slot and on disk.
fn finish_check(slot: &mut Slot, outcome: Outcome, in_start_period: bool) {
    let (Some(check), Some(hc)) = (&mut slot.check, &slot.spec.health_check) else {
        return;
    };
    record_check(&mut check.health, outcome, hc.retries, in_start_period);
    if outcome == Outcome::Exited(0) {
        check.passed_once = true;
    }
    write_or_log(&slot.dir.health_file(), &check.health);
}

fn write_or_log<T: serde::Serialize>(path: &Path, value: &T) {
    if let Err(e) = write_json(path, value) {
        eprintln!("berth-shim: writing {}: {e}", path.display());
    }
}
