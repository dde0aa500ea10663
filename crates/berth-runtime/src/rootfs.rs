//! A container's root filesystem: an overlay of the image's layers
//! (read-only, shared by every container of the image) under a writable
//! layer in the task's storage.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::SandboxError;

/// The mount options string has to fit in a page.
const MAX_OPTIONS: usize = 4000;

/// Mounts `layers` (lowest first) with `upper`/`work` at `target`.
pub fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), SandboxError> {
    let options = overlay_options(layers, upper, work)?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|source| SandboxError::Mount {
        action: "mounting overlay at",
        path: target.into(),
        source,
    })
}

fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> Result<String, SandboxError> {
    // overlayfs lists the top layer first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() > MAX_OPTIONS {
        return Err(SandboxError::invalid(format!(
            "{} layers: overlay options exceed {MAX_OPTIONS} bytes",
            layers.len()
        )));
    }
    Ok(options)
}

/// Unmounts `target` if something is mounted there; lazily if it is busy.
pub fn unmount(target: &Path) -> Result<(), SandboxError> {
    if !is_mount_point(target) {
        return Ok(());
    }
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::Error::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|source| SandboxError::Mount {
                action: "unmounting",
                path: target.into(),
                source,
            })
        }
        Err(nix::Error::EINVAL | nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(SandboxError::Mount {
            action: "unmounting",
            path: target.into(),
            source,
        }),
    }
}

/// True when `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.display().to_string();
    text.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| unescape(m) == wanted))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn top_layer_first() {
        let o = overlay_options(
            &["/l/base".into(), "/l/top".into()],
            Path::new("/u"),
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(o, "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
