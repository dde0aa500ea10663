//! The guest's disks: one read-only ext4 image per distinct image (its
//! layers merged), built once and shared by every task that runs it, and
//! a per-task writable disk (the task's ephemeral storage, sparse), on
//! which the guest keeps each container's overlay upper layer.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{MsFlags, mount, umount2, MntFlags};
use sha2::{Digest, Sha256};

use crate::MicroVmError;

/// The shared image disk for a container's `layers` (lowest first),
/// built into `cache` on first use. Keyed by the layer paths, which are
/// content-addressed by the image store (a layer's path names its digest).
pub fn image_disk(layers: &[PathBuf], cache: &Path) -> Result<PathBuf, MicroVmError> {
    if layers.is_empty() {
        return Err(MicroVmError::Setup("a container has no image layers".into()));
    }
    let mut hash = Sha256::new();
    for l in layers {
        hash.update(l.display().to_string().as_bytes());
        hash.update(b"\n");
    }
    let key = hex::encode(&hash.finalize()[..16]);
    let path = cache.join(format!("{key}.ext4"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache).map_err(MicroVmError::io("creating", cache))?;
    let unique = format!("{}.{}", std::process::id(), nanos());
    let tmp = cache.join(format!("{key}.ext4.tmp{unique}"));
    let started = std::time::Instant::now();
    let built = if let [only] = layers {
        mkfs(only, &tmp, true)
    } else {
        // The layers merged by the kernel's own overlay (whiteouts and
        // opaque directories as a container would see them), read-only.
        let mnt = cache.join(format!("{key}.mnt{unique}"));
        std::fs::create_dir_all(&mnt).map_err(MicroVmError::io("creating", &mnt))?;
        let lower = layers.iter().rev().map(|l| l.display().to_string()).collect::<Vec<_>>().join(":");
        let opts = format!("lowerdir={lower}");
        let result = mount(Some("overlay"), &mnt, Some("overlay"), MsFlags::MS_RDONLY, Some(opts.as_str()))
            .map_err(|e| MicroVmError::Setup(format!("merging the image's layers: {e}")))
            .and_then(|()| {
                let r = mkfs(&mnt, &tmp, true);
                let _ = umount2(&mnt, MntFlags::MNT_DETACH);
                r
            });
        let _ = std::fs::remove_dir(&mnt);
        result
    };
    if let Err(e) = built {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(MicroVmError::io("renaming", &path))?;
    tracing::info!(disk = %path.display(), layers = layers.len(), elapsed = ?started.elapsed(), "built an image disk");
    Ok(path)
}

/// A fresh, empty, sparse ext4 disk of `size_mib` at `path`.
pub fn scratch_disk(path: &Path, size_mib: u64) -> Result<(), MicroVmError> {
    let f = std::fs::File::create(path).map_err(MicroVmError::io("creating", path))?;
    f.set_len(size_mib * 1024 * 1024).map_err(MicroVmError::io("sizing", path))?;
    drop(f);
    run_mkfs(&[], path, None)
}

/// `mkfs.ext4 -d DIR` into a new sparse file at `img`, sized for DIR.
fn mkfs(dir: &Path, img: &Path, read_only: bool) -> Result<(), MicroVmError> {
    let (bytes, inodes) = tree_size(dir);
    let size_mib = (bytes * 5 / 4 / (1024 * 1024)) + 32;
    let f = std::fs::File::create(img).map_err(MicroVmError::io("creating", img))?;
    f.set_len(size_mib * 1024 * 1024).map_err(MicroVmError::io("sizing", img))?;
    drop(f);
    let inodes = (inodes * 2 + 1024).to_string();
    let mut args = vec!["-N", inodes.as_str()];
    if read_only {
        args.extend(["-L", "berth-image"]);
    }
    run_mkfs(&args, img, Some(dir))
}

fn run_mkfs(extra: &[&str], img: &Path, dir: Option<&Path>) -> Result<(), MicroVmError> {
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-F", "-q", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,lazy_journal_init=1"]);
    cmd.args(extra);
    if let Some(d) = dir {
        cmd.arg("-d").arg(d);
    }
    cmd.arg(img);
    let out = cmd.output().map_err(MicroVmError::io("running mkfs.ext4 (Debian package e2fsprogs)", Path::new("mkfs.ext4")))?;
    if !out.status.success() {
        return Err(MicroVmError::Setup(format!(
            "mkfs.ext4 {}: {}",
            img.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Bytes (in 4 KiB blocks) and entries under `dir`, not following links.
fn tree_size(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut inodes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            inodes += 1;
            let Ok(meta) = entry.metadata() else { continue };
            bytes += meta.len().div_ceil(4096) * 4096 + 4096;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
