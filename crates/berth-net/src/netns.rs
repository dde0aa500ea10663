//! Named network namespaces, made the way `ip netns add` makes them, so
//! `ip netns exec berth-<task> ...` works for debugging and an OCI runtime
//! joins one by path.
//!
//! A namespace lives as long as something refers to it: a process in it,
//! an open socket or file of it, or a bind mount of its nsfs file. Berth
//! keeps exactly one reference, a bind mount of `/proc/thread-self/ns/net`
//! on `/run/netns/<name>`, made by a dedicated OS thread that `unshare`s a
//! new namespace (only that thread changes namespace, never a tokio worker)
//! and then exits. Unmounting and removing the file releases it.
//!
//! `/run/netns` itself is made a shared mount point first (bind-mounted on
//! itself if it is not a mount point), as iproute2 does: mount namespaces
//! created later (a container's) then receive the unmount too, instead of
//! pinning the namespace forever. Processes doing this at once are
//! serialised by a `flock` on the directory.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::NetError;
use crate::names::{NETNS_DIR, TaskNames};
use crate::netlink::Netlink;

/// Where a thread finds its own network namespace.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Creates the task's namespace file (which must not exist yet), and
/// returns a netlink connection inside the new namespace. IPv6 is off for
/// interfaces added to it later (`lo` keeps `::1`). On error nothing is
/// left behind.
pub(crate) async fn create(names: &TaskNames) -> Result<Netlink, NetError> {
    let path = names.netns_path.as_path();
    prepare_dir()?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(NetError::AlreadyAttached {
                task_id: names.task_id.clone(),
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(NetError::Io {
                action: "creating",
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let rt = tokio::runtime::Handle::current();
    let target = path.to_path_buf();
    let made = on_fresh_thread("netns-new", move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetError::Namespace {
            action: "unshare(CLONE_NEWNET) for",
            path: target.clone(),
            source,
        })?;
        nix::mount::mount(
            Some(THREAD_NETNS),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| NetError::Namespace {
            action: "bind-mounting the new namespace on",
            path: target.clone(),
            source,
        })?;
        // Still inside: /proc/sys/net is this thread's namespace's.
        write_sysctl_if_present("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")?;
        let _rt = rt.enter();
        Netlink::connect()
    })
    .await
    .and_then(|r| r);
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// Runs `f` on a new OS thread that has joined the namespace at `path`,
/// and returns what it returns. Sockets `f` opens stay in that namespace
/// after the thread ends (a listener for a test server, say).
pub async fn in_netns<T, F>(path: &Path, f: F) -> Result<T, NetError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = path.to_path_buf();
    on_fresh_thread("netns-enter", move || {
        let ns = File::open(&path).map_err(|source| NetError::Io {
            action: "opening",
            path: path.clone(),
            source,
        })?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|source| NetError::Namespace {
            action: "setns into",
            path: path.clone(),
            source,
        })?;
        drop(ns);
        Ok(f())
    })
    .await?
}

/// Unmounts and removes the namespace file; a file or mount already gone
/// is fine.
pub(crate) fn remove(path: &Path) -> Result<(), NetError> {
    // A crash between two attaches could stack mounts; bounded.
    for _ in 0..8 {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => break,
            Err(source) => {
                return Err(NetError::Namespace {
                    action: "unmounting",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetError::Io {
            action: "removing",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether `path` is a mount point (of this process's mount namespace).
pub fn is_mounted(path: &Path) -> Result<bool, NetError> {
    Ok(mount_point(path)?.is_some())
}

/// Makes `/run/netns` exist and be a shared mount point.
fn prepare_dir() -> Result<(), NetError> {
    let dir = Path::new(NETNS_DIR);
    let io = |action| {
        move |source| NetError::Io {
            action,
            path: dir.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("creating"))?;
    let lock = File::open(dir).map_err(io("opening"))?;
    lock.lock().map_err(io("locking"))?;
    let ns = |action| {
        move |source| NetError::Namespace {
            action,
            path: dir.to_path_buf(),
            source,
        }
    };
    match mount_point(dir)? {
        Some(MountPoint { shared: true }) => return Ok(()),
        Some(_) => {}
        None => nix::mount::mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(ns("bind-mounting on itself"))?,
    }
    nix::mount::mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(ns("making a shared mount"))
}

struct MountPoint {
    shared: bool,
}

/// The topmost mount on `path` in `/proc/self/mountinfo`, if any.
fn mount_point(path: &Path) -> Result<Option<MountPoint>, NetError> {
    let info_path = PathBuf::from("/proc/self/mountinfo");
    let info = std::fs::read_to_string(&info_path).map_err(|source| NetError::Io {
        action: "reading",
        path: info_path,
        source,
    })?;
    let want = path.to_string_lossy();
    Ok(info.lines().rev().find_map(|line| {
        // id parent maj:min root mount-point options [optional...] - fs source super
        let fields: Vec<&str> = line.split(' ').collect();
        let point = unescape_mountinfo(fields.get(4)?);
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        let shared = optional.clone().any(|f| f.starts_with("shared:"));
        (point == want).then_some(MountPoint { shared })
    }))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn write_sysctl_if_present(path: &str, value: &str) -> Result<(), NetError> {
    match std::fs::write(path, value) {
        Ok(()) => Ok(()),
        // No IPv6 in this kernel: nothing to turn off.
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetError::Io {
            action: "writing",
            path: PathBuf::from(path),
            source,
        }),
    }
}

/// Runs `f` on a new OS thread (never a pooled one: `f` may change the
/// thread's namespaces) and waits for it without blocking the runtime.
async fn on_fresh_thread<T, F>(what: &'static str, f: F) -> Result<T, NetError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("berth-{what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|_| NetError::Thread(what))?;
    rx.await.map_err(|_| NetError::Thread(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/run/a\\040b\\134c"), "/run/a b\\c");
        assert_eq!(unescape_mountinfo("/run/netns"), "/run/netns");
    }
}
