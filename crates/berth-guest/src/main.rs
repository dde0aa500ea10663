//! `berth-guest`: the micro-VM's `/init` (see the library's docs for the
//! protocol).
//!
//! As PID 1 it mounts /dev, /proc, /sys, loads the virtio and overlay
//! modules listed in `/etc/berth/modules.list`, finds its virtio-serial
//! ports, reports [`Event::Booted`], reads the [`GuestTask`] from the
//! control port, sets up hostname, loopback and `eth0`, mounts the
//! writable disk and the image disks, and starts each container as
//! `/init container SPEC`: a process that joins the container's cgroup,
//! unshares mount and PID namespaces and runs `/init pid1 SPEC`, which
//! makes the container's root (overlay on its image disk), chroots, drops
//! to the container's user and execs the command as PID 1 of its
//! namespace. When the task is over (an essential container exited, all
//! did, or the host asked to stop) the rest get SIGTERM, then SIGKILL
//! (`cgroup.kill`) when the host says `kill NAME` after the container's
//! stop timeout on its own clock (the guest's timer is a backstop), and
//! the guest powers off.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use berth_guest::{
    Event, GUEST_FORMAT, GuestContainer, GuestNetwork, GuestTask, KILL, KILL_BACKSTOP, PROBE_ARG, RW_DISK, STOP,
    image_disk, ports,
};
use nix::mount::{MsFlags, mount};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

const CGROUP: &str = "/sys/fs/cgroup";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("container") => container(args.get(2).map_or("", String::as_str)),
        Some("pid1") => pid1(args.get(2).map_or("", String::as_str)),
        _ if std::process::id() == 1 => {
            init();
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("berth-guest is a micro-VM's /init; it runs as PID 1 of a Berth guest");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------- PID 1

/// What the main loop hears.
enum Msg {
    Exited(usize, std::io::Result<ExitStatus>),
    Stop,
    /// The host says this container's stop timeout is over.
    Kill(String),
}

struct Running {
    spec: GuestContainer,
    child: Option<u32>,
    done: bool,
    termed_at: Option<Instant>,
    killed: bool,
}

fn init() {
    if let Err(e) = mount_basics() {
        eprintln!("berth-guest: mounting /dev, /proc, /sys: {e}");
    }
    load_modules();
    let ports = match find_ports(&[ports::EVENTS, ports::CONTROL], Duration::from_secs(20)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-guest: {e}");
            power_off();
        }
    };
    let mut events = match File::options().write(true).open(&ports[ports::EVENTS]) {
        Ok(f) => Reporter(f),
        Err(e) => {
            eprintln!("berth-guest: opening the events port: {e}");
            power_off();
        }
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    events.send(&Event::Booted { kernel: kernel.trim().to_owned(), uptime_ms: uptime_ms() });
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if cmdline.split_whitespace().any(|w| w == PROBE_ARG) {
        power_off();
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    let task = match read_task(&ports[ports::CONTROL], tx.clone()) {
        Ok(t) => t,
        Err(e) => {
            events.send(&Event::Failed { reason: e });
            power_off();
        }
    };
    if let Err(e) = setup(&task) {
        events.send(&Event::Failed { reason: e.clone() });
        for c in &task.containers {
            events.send(&Event::NotStarted {
                container: c.name.clone(),
                reason: format!("CannotStartContainerError: {e}"),
            });
        }
        power_off();
    }
    // Each container's parent relays SIGTERM from a signalfd; blocked here,
    // the mask is inherited, so a stop that comes as it starts is queued
    // for it, never the default action on it.
    let mut relayed = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        relayed.add(s);
    }
    if let Err(e) = relayed.thread_block() {
        eprintln!("berth-guest: blocking signals: {e}");
    }
    let mut running: Vec<Running> = Vec::new();
    for (i, c) in task.containers.iter().enumerate() {
        let started = start_container(i, c, &tx);
        match started {
            Ok(child) => {
                events.send(&Event::Started { container: c.name.clone(), pid: child as i32 });
                running.push(Running { spec: c.clone(), child: Some(child), done: false, termed_at: None, killed: false });
            }
            Err(e) => {
                events.send(&Event::NotStarted {
                    container: c.name.clone(),
                    reason: format!("CannotStartContainerError: {e}"),
                });
                running.push(Running { spec: c.clone(), child: None, done: true, termed_at: None, killed: false });
            }
        }
    }
    drop(tx);
    supervise(&mut running, &rx, &mut events);
    events.send(&Event::PowerOff);
    power_off();
}

/// Waits for the containers; stops the rest once the task is over.
fn supervise(running: &mut [Running], rx: &mpsc::Receiver<Msg>, events: &mut Reporter) {
    let mut stopping = false;
    loop {
        let over = running.iter().any(|r| r.done && r.spec.essential) || running.iter().all(|r| r.done);
        if over && running.iter().all(|r| r.done) {
            return;
        }
        if over {
            stopping = true;
        }
        if stopping {
            let now = Instant::now();
            for r in running.iter_mut().filter(|r| !r.done) {
                let timeout = Duration::from_millis(r.spec.stop_timeout_ms);
                let termed = *r.termed_at.get_or_insert_with(|| {
                    if let (Some(pid), false) = (r.child, timeout.is_zero()) {
                        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                    }
                    now
                });
                // The host measures the timeout and says `kill`; this is
                // only the backstop for a host that went away.
                let backstop = if timeout.is_zero() { Duration::ZERO } else { timeout * 2 + KILL_BACKSTOP };
                if !r.killed && now >= termed + backstop {
                    kill_cgroup(&r.spec.name);
                    r.killed = true;
                }
            }
        }
        match rx.recv_timeout(Duration::from_millis(if stopping { 20 } else { 500 })) {
            Ok(Msg::Stop) => stopping = true,
            Ok(Msg::Kill(name)) => {
                stopping = true;
                for r in running.iter_mut().filter(|r| !r.done && !r.killed && r.spec.name == name) {
                    kill_cgroup(&r.spec.name);
                    r.killed = true;
                }
            }
            Ok(Msg::Exited(i, status)) => {
                let Some(r) = running.get_mut(i) else { continue };
                r.done = true;
                let (exit_code, signal) = match status {
                    Ok(s) => decode(s),
                    Err(_) => (255, None),
                };
                let oom_killed = read_key(&Path::new(CGROUP).join("task").join(&r.spec.name).join("memory.events"), "oom_kill")
                    .is_some_and(|n| n > 0);
                events.send(&Event::Exited {
                    container: r.spec.name.clone(),
                    exit_code,
                    signal,
                    oom_killed,
                    finished_at_ms: now_ms(),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Only the control reader is left and it ended: the host went away.
                if running.iter().all(|r| r.done) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn decode(s: ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt as _;
    match (s.code(), s.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) => (128 + sig, Some(sig)),
        (None, None) => (255, None),
    }
}

/// The events port: one JSON line per event, written whole.
struct Reporter(File);

impl Reporter {
    fn send(&mut self, e: &Event) {
        if let Ok(mut line) = serde_json::to_vec(e) {
            line.push(b'\n');
            if let Err(err) = self.0.write_all(&line) {
                eprintln!("berth-guest: writing an event: {err}");
            }
        }
    }
}

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn mount_basics() -> Result<(), String> {
    let m = |src: &str, dst: &str, fs: &str, flags: MsFlags| {
        let _ = std::fs::create_dir_all(dst);
        match mount(Some(src), dst, Some(fs), flags, None::<&str>) {
            Ok(()) | Err(nix::errno::Errno::EBUSY) => Ok(()),
            Err(e) => Err(format!("{dst}: {e}")),
        }
    };
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    m("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID)?;
    m("proc", "/proc", "proc", safe | MsFlags::MS_NODEV)?;
    m("sysfs", "/sys", "sysfs", safe | MsFlags::MS_NODEV)?;
    m("tmpfs", "/run", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    m("cgroup2", CGROUP, "cgroup2", safe | MsFlags::MS_NODEV)?;
    Ok(())
}

fn load_modules() {
    let list = std::fs::read_to_string("/etc/berth/modules.list").unwrap_or_default();
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new("/lib/modules").join(name);
        let loaded = File::open(&path).map_err(|e| e.to_string()).and_then(|f| {
            match nix::kmod::finit_module(&f, c"", nix::kmod::ModuleInitFlags::empty()) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(e) = loaded {
            eprintln!("berth-guest: loading {name}: {e}");
        }
    }
}

/// The device of each named virtio-serial port, once all of `wanted` exist.
fn find_ports(wanted: &[&str], within: Duration) -> Result<HashMap<String, PathBuf>, String> {
    let deadline = Instant::now() + within;
    loop {
        let mut found = HashMap::new();
        for entry in std::fs::read_dir("/sys/class/virtio-ports").into_iter().flatten().flatten() {
            if let Ok(name) = std::fs::read_to_string(entry.path().join("name")) {
                found.insert(name.trim().to_owned(), Path::new("/dev").join(entry.file_name()));
            }
        }
        if wanted.iter().all(|w| found.get(*w).is_some_and(|p| p.exists())) {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(format!("virtio-serial ports {wanted:?} did not appear (found {:?})", found.keys()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the task (the first line of the control port), then hands every
/// later stop line to the main loop.
fn read_task(port: &Path, tx: mpsc::Sender<Msg>) -> Result<GuestTask, String> {
    let file = File::open(port).map_err(|e| format!("opening the control port: {e}"))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("reading the task: {e}"))?;
    let task: GuestTask = serde_json::from_str(line.trim()).map_err(|e| format!("the task sent is not valid: {e}"))?;
    if task.format_version > GUEST_FORMAT {
        return Err(format!("the task is in format {}, newer than this guest's {GUEST_FORMAT}", task.format_version));
    }
    std::thread::spawn(move || {
        for line in reader.lines() {
            match line {
                Ok(l) => {
                    let msg = match l.trim().split_once(' ') {
                        None if l.trim() == STOP => Msg::Stop,
                        Some((KILL, name)) => Msg::Kill(name.to_owned()),
                        _ => continue,
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    Ok(task)
}

fn setup(task: &GuestTask) -> Result<(), String> {
    nix::unistd::sethostname(&task.hostname).map_err(|e| format!("hostname: {e}"))?;
    net::link_up(1).map_err(|e| format!("loopback: {e}"))?;
    if let Some(n) = &task.network {
        configure_eth0(n)?;
    }
    // Containers' cgroups under one for the task, which holds its memory.
    let task_cg = Path::new(CGROUP).join("task");
    write(&Path::new(CGROUP).join("cgroup.subtree_control"), "+memory +pids")?;
    mkdir(&task_cg)?;
    if let Some(mib) = task.memory_mib {
        write(&task_cg.join("memory.max"), &(mib * 1024 * 1024).to_string())?;
    }
    write(&task_cg.join("cgroup.subtree_control"), "+memory +pids")?;
    let disks = disks_by_serial();
    let rw = disks.get(RW_DISK).ok_or("the task's writable disk is missing")?;
    mount_disk(rw, "/mnt/rw", MsFlags::empty(), Some("noinit_itable"))?;
    let mut images: Vec<usize> = task.containers.iter().map(|c| c.image).collect();
    images.sort_unstable();
    images.dedup();
    for i in images {
        let serial = image_disk(i);
        let dev = disks.get(&serial).ok_or_else(|| format!("image disk {serial} is missing"))?;
        mount_disk(dev, &format!("/mnt/img/{i}"), MsFlags::MS_RDONLY, None)?;
    }
    for c in &task.containers {
        let cg = task_cg.join(&c.name);
        mkdir(&cg)?;
        if let Some(mib) = c.memory_mib {
            write(&cg.join("memory.max"), &(mib * 1024 * 1024).to_string())?;
            let _ = write(&cg.join("memory.swap.max"), "0");
        }
        let rw = Path::new("/mnt/rw").join(&c.name);
        for d in ["upper", "work"] {
            mkdir(&rw.join(d))?;
        }
        let root = root_of(c);
        mkdir(&root)?;
        let opts = format!(
            "lowerdir=/mnt/img/{},upperdir={},workdir={}",
            c.image,
            rw.join("upper").display(),
            rw.join("work").display()
        );
        mount(Some("overlay"), &root, Some("overlay"), MsFlags::empty(), Some(opts.as_str()))
            .map_err(|e| format!("container {}: its root filesystem: {e}", c.name))?;
        for f in &task.files {
            let path = root.join(f.path.trim_start_matches('/'));
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // A symlink (Debian's /etc/resolv.conf can be one) is replaced.
            let _ = std::fs::remove_file(&path);
            std::fs::write(&path, &f.contents).map_err(|e| format!("{}: {e}", f.path))?;
        }
        if c.readonly_root {
            mount(None::<&str>, &root, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)
                .map_err(|e| format!("container {}: read-only root: {e}", c.name))?;
        }
    }
    Ok(())
}

fn root_of(c: &GuestContainer) -> PathBuf {
    Path::new("/mnt/c").join(&c.name)
}

fn configure_eth0(n: &GuestNetwork) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let index = loop {
        match std::fs::read_to_string("/sys/class/net/eth0/ifindex") {
            Ok(s) => break s.trim().parse::<u32>().map_err(|e| format!("eth0 ifindex: {e}"))?,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("no eth0: {e}")),
        }
    };
    net::add_address(index, n.ip, n.prefix).map_err(|e| format!("eth0 address: {e}"))?;
    net::link_up(index).map_err(|e| format!("eth0 up: {e}"))?;
    if let Some(gw) = n.gateway {
        net::add_default_route(gw).map_err(|e| format!("default route: {e}"))?;
    }
    Ok(())
}

/// virtio-blk disks by the serial the host gave them.
fn disks_by_serial() -> HashMap<String, PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut found = HashMap::new();
        for entry in std::fs::read_dir("/sys/block").into_iter().flatten().flatten() {
            if let Ok(serial) = std::fs::read_to_string(entry.path().join("serial")) {
                found.insert(serial.trim().to_owned(), Path::new("/dev").join(entry.file_name()));
            }
        }
        if found.contains_key(RW_DISK) || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Mounts an ext4 disk. The writable disk is made with lazy inode-table
/// init; `noinit_itable` keeps the guest from zeroing the tables in the
/// background, which would fill the sparse file on the host for nothing.
fn mount_disk(dev: &Path, at: &str, flags: MsFlags, data: Option<&str>) -> Result<(), String> {
    mkdir(Path::new(at))?;
    mount(Some(dev), at, Some("ext4"), flags | MsFlags::MS_NODEV, data)
        .map_err(|e| format!("mounting {} at {at}: {e}", dev.display()))
}

fn start_container(index: usize, c: &GuestContainer, tx: &mpsc::Sender<Msg>) -> Result<u32, String> {
    let names = [ports::stdout(index), ports::stderr(index)];
    let found = find_ports(&[&names[0], &names[1]], Duration::from_secs(5))?;
    let open = |n: &str| File::options().write(true).open(&found[n]).map_err(|e| format!("port {n}: {e}"));
    let (out, err) = (open(&names[0])?, open(&names[1])?);
    let launch = serde_json::to_string(c).map_err(|e| e.to_string())?;
    let mut child: Child = Command::new("/init")
        .arg("container")
        .arg(launch)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawning: {e}"))?;
    let pid = child.id();
    let tx = tx.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Msg::Exited(index, child.wait()));
    });
    Ok(pid)
}

fn kill_cgroup(name: &str) {
    let path = Path::new(CGROUP).join("task").join(name).join("cgroup.kill");
    if let Err(e) = std::fs::write(&path, "1") {
        eprintln!("berth-guest: killing {name}: {e}");
    }
}

// ------------------------------------------------ a container's parent

/// Joins the container's cgroup, unshares mount and PID namespaces and
/// runs the container's PID 1, relaying SIGTERM to it and ending as it did.
fn container(launch: &str) -> ExitCode {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("berth-guest: {what}: {e}");
        ExitCode::from(127)
    };
    let c: GuestContainer = match serde_json::from_str(launch) {
        Ok(c) => c,
        Err(e) => return fail("the container spec", &e),
    };
    let procs = Path::new(CGROUP).join("task").join(&c.name).join("cgroup.procs");
    if let Err(e) = std::fs::write(&procs, std::process::id().to_string()) {
        return fail("joining the container's cgroup", &e);
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    let sfd = mask
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC));
    let sfd = match sfd {
        Ok(s) => s,
        Err(e) => return fail("signals", &e),
    };
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_NEWPID) {
        return fail("new namespaces", &e);
    }
    // The child is PID 1 of the new namespace; std's Command clears the
    // signal mask for it.
    let child = match Command::new("/init").arg("pid1").arg(launch).spawn() {
        Ok(c) => c,
        Err(e) => return fail("spawning the container", &e),
    };
    let pid = Pid::from_raw(child.id() as i32);
    loop {
        let sig = match sfd.read_signal() {
            Ok(Some(info)) => info.ssi_signo as i32,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return fail("reading signals", &e),
        };
        if sig == Signal::SIGTERM as i32 || sig == Signal::SIGINT as i32 {
            let _ = kill(pid, Signal::try_from(sig).unwrap_or(Signal::SIGTERM));
            continue;
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return ExitCode::from(u8::try_from(code).unwrap_or(255)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                // End the same way, so PID 1 of the guest sees the signal.
                let mut one = SigSet::empty();
                one.add(sig);
                let _ = one.thread_unblock();
                let _ = kill(Pid::this(), sig);
                return ExitCode::from(128 + sig as u8);
            }
            Ok(_) => {}
            Err(e) => return fail("waiting for the container", &e),
        }
    }
}

// ---------------------------------------------------- a container's PID 1

/// In the new namespaces: makes the container's root, enters it, drops to
/// its user and becomes its command.
fn pid1(launch: &str) -> ExitCode {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("berth: cannot start the container: {what}: {e}");
        ExitCode::from(127)
    };
    let c: GuestContainer = match serde_json::from_str(launch) {
        Ok(c) => c,
        Err(e) => return fail("its spec", &e),
    };
    let root = root_of(&c);
    if let Err(e) = mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>) {
        return fail("private mounts", &e);
    }
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let mounts: [(&str, &str, &str, MsFlags); 3] = [
        ("proc", "proc", "proc", safe),
        ("/dev", "dev", "", MsFlags::MS_BIND | MsFlags::MS_REC),
        ("sysfs", "sys", "sysfs", safe | MsFlags::MS_RDONLY),
    ];
    for (src, dst, fs, flags) in mounts {
        let target = root.join(dst);
        let _ = std::fs::create_dir_all(&target);
        let fs = (!fs.is_empty()).then_some(fs);
        if let Err(e) = mount(Some(src), &target, fs, flags, None::<&str>) {
            return fail(&format!("mounting /{dst}"), &e);
        }
    }
    if let Err(e) = nix::unistd::chroot(&root).and_then(|()| nix::unistd::chdir("/")) {
        return fail("entering its root", &e);
    }
    let (uid, gid) = match resolve_user(c.user.as_deref()) {
        Ok(ids) => ids,
        Err(e) => return fail("its user", &e),
    };
    let path = c.env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(berth_default_path());
    let Some((program, args)) = c.args.split_first() else { return fail("its command", &"empty") };
    let Some(exe) = lookup(program, path) else {
        return fail(program, &"executable file not found in $PATH");
    };
    // std's exec sets the user (dropping supplementary groups), the
    // directory and the environment, and resets SIGPIPE, which the Rust
    // runtime ignores: the command starts as it would under runc.
    let mut env: Vec<(String, String)> = Vec::new();
    for kv in &c.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        env.push((k.to_owned(), v.to_owned()));
    }
    // This process blocked signals (its parent did, and a mask survives
    // spawn and exec): the command starts with none blocked.
    if let Err(e) = SigSet::all().thread_unblock() {
        return fail("its signal mask", &e);
    }
    use std::os::unix::process::CommandExt as _;
    let err = Command::new(&exe)
        .arg0(program)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(&c.cwd)
        .gid(gid)
        .uid(uid)
        .exec();
    fail(&format!("exec {program}"), &err)
}

fn berth_default_path() -> &'static str {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

fn lookup(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// `uid`, `uid:gid`, `name`, `name:group`, by the container's own
/// /etc/passwd and /etc/group (root when none is given).
fn resolve_user(user: Option<&str>) -> Result<(u32, u32), String> {
    let Some(user) = user else { return Ok((0, 0)) };
    let (u, g) = user.split_once(':').map_or((user, None), |(u, g)| (u, Some(g)));
    let table = |file: &str| std::fs::read_to_string(file).unwrap_or_default();
    let passwd = table("/etc/passwd");
    let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.first() == Some(&u));
    let (uid, primary) = match (u.parse::<u32>(), entry) {
        (Ok(uid), _) => (uid, None),
        (Err(_), Some(f)) => (
            f.get(2).and_then(|s| s.parse().ok()).ok_or("bad /etc/passwd")?,
            f.get(3).and_then(|s| s.parse::<u32>().ok()),
        ),
        (Err(_), None) => return Err(format!("no user {u:?} in /etc/passwd")),
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => table("/etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.first() == Some(&g))
                .and_then(|f| f.get(2).and_then(|s| s.parse().ok()))
                .ok_or_else(|| format!("no group {g:?} in /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

// ------------------------------------------------------------- helpers

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, s: &str) -> Result<(), String> {
    std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))
}

fn read_key(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |s| (s * 1000.0) as u64)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Just enough rtnetlink to bring links up, add an address and a default
/// route (the guest has no `ip`).
mod net {
    use super::AsRawFd;
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, socket,
    };
    use std::net::Ipv4Addr;

    const RTM_NEWLINK: u16 = 16;
    const RTM_NEWADDR: u16 = 20;
    const RTM_NEWROUTE: u16 = 24;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLM_F_EXCL: u16 = 0x200;
    const NLM_F_CREATE: u16 = 0x400;
    const NLMSG_ERROR: u16 = 2;
    const AF_INET: u8 = 2;
    const IFF_UP: u32 = 1;

    fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        buf.extend_from_slice(&(len as u16).to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(data);
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
    }

    /// Sends one request and reads the kernel's acknowledgement.
    fn request(kind: u16, flags: u16, body: &[u8]) -> Result<(), String> {
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)
            .map_err(|e| e.to_string())?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| e.to_string())?;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(fd.as_raw_fd(), &msg, MsgFlags::empty()).map_err(|e| e.to_string())?;
        let mut reply = [0u8; 4096];
        let n = recv(fd.as_raw_fd(), &mut reply, MsgFlags::empty()).map_err(|e| e.to_string())?;
        if n >= 20 && u16::from_ne_bytes([reply[4], reply[5]]) == NLMSG_ERROR {
            let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
            if code != 0 {
                return Err(nix::errno::Errno::from_raw(-code).to_string());
            }
        }
        Ok(())
    }

    pub fn link_up(index: u32) -> Result<(), String> {
        let mut b = vec![0u8, 0];
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&(index as i32).to_ne_bytes());
        b.extend_from_slice(&IFF_UP.to_ne_bytes());
        b.extend_from_slice(&IFF_UP.to_ne_bytes());
        request(RTM_NEWLINK, 0, &b)
    }

    pub fn add_address(index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), String> {
        let mut b = vec![AF_INET, prefix, 0, 0];
        b.extend_from_slice(&index.to_ne_bytes());
        attr(&mut b, 2, &ip.octets()); // IFA_LOCAL
        attr(&mut b, 1, &ip.octets()); // IFA_ADDRESS
        request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &b)
    }

    pub fn add_default_route(gateway: Ipv4Addr) -> Result<(), String> {
        // family, dst_len, src_len, tos, table main, protocol boot, scope universe, unicast; flags
        let mut b = vec![AF_INET, 0, 0, 0, 254, 3, 0, 1];
        b.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut b, 5, &gateway.octets()); // RTA_GATEWAY
        request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &b)
    }
}
