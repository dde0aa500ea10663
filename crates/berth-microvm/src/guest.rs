//! The guest's kernel and initramfs.
//!
//! The kernel directory is what `scripts/microvm-kernel.sh` makes from
//! Debian's `linux-image-cloud-amd64`: `vmlinux` (PVH), `release`,
//! `modules/*.ko` and `modules.list` (load order). A minimal kernel with
//! the drivers built in (the later `berth kernel build`) is the same
//! directory with an empty `modules.list`.
//!
//! The initramfs is built once per (kernel, guest agent) into the state
//! directory and shared by every task: `/init` (the `berth-guest` binary,
//! and the shared libraries it needs when it is not static), the modules
//! and their list. Nothing in it is per task: the task arrives over the
//! control port after boot.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::MicroVmError;

/// A guest kernel directory.
#[derive(Clone, Debug)]
pub struct GuestKernel {
    /// The uncompressed kernel.
    pub vmlinux: PathBuf,
    /// Its `uname -r`.
    pub release: String,
    /// Modules to load, in order.
    pub modules: Vec<PathBuf>,
}

impl GuestKernel {
    /// Reads the kernel directory at `dir`.
    pub fn load(dir: &Path) -> Result<Self, MicroVmError> {
        let missing = |what: &str| {
            MicroVmError::Setup(format!(
                "no guest kernel in {}: {what} is missing (make one with scripts/microvm-kernel.sh {})",
                dir.display(),
                dir.display()
            ))
        };
        let vmlinux = dir.join("vmlinux");
        if !vmlinux.is_file() {
            return Err(missing("vmlinux"));
        }
        let release = std::fs::read_to_string(dir.join("release")).map_err(|_| missing("release"))?.trim().to_owned();
        let list = std::fs::read_to_string(dir.join("modules.list")).map_err(|_| missing("modules.list"))?;
        let modules = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| dir.join("modules").join(l))
            .collect::<Vec<_>>();
        if let Some(m) = modules.iter().find(|m| !m.is_file()) {
            return Err(missing(&m.display().to_string()));
        }
        Ok(Self { vmlinux, release, modules })
    }
}

/// Builds (once) the initramfs for `kernel` with `init` as /init, under
/// `cache`; returns its path.
pub fn initramfs(kernel: &GuestKernel, init: &Path, cache: &Path) -> Result<PathBuf, MicroVmError> {
    let init_bytes = std::fs::read(init).map_err(MicroVmError::io("reading the guest agent", init))?;
    let libs = shared_libraries(init)?;
    let mut hash = Sha256::new();
    hash.update(&init_bytes);
    hash.update(kernel.release.as_bytes());
    for m in &kernel.modules {
        hash.update(m.display().to_string().as_bytes());
    }
    for l in &libs {
        hash.update(l.display().to_string().as_bytes());
    }
    let key = hex::encode(&hash.finalize()[..12]);
    let path = cache.join(format!("initramfs-{}-{key}.cpio", kernel.release));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache).map_err(MicroVmError::io("creating", cache))?;
    let mut cpio = Cpio::default();
    for dir in ["dev", "proc", "sys", "run", "mnt", "etc", "etc/berth", "lib", "lib/modules", "tmp"] {
        cpio.dir(dir);
    }
    cpio.file("init", 0o755, &init_bytes);
    let mut list = String::new();
    for m in &kernel.modules {
        let name = m.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(m).map_err(MicroVmError::io("reading", m))?;
        cpio.file(&format!("lib/modules/{name}"), 0o644, &bytes);
        list.push_str(&name);
        list.push('\n');
    }
    cpio.file("etc/berth/modules.list", 0o644, list.as_bytes());
    for lib in &libs {
        let bytes = std::fs::read(lib).map_err(MicroVmError::io("reading", lib))?;
        let rel = lib.strip_prefix("/").unwrap_or(lib);
        let mut parents = Vec::new();
        let mut p = rel.parent();
        while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
            parents.push(dir.display().to_string());
            p = dir.parent();
        }
        for dir in parents.iter().rev() {
            cpio.dir(dir);
        }
        cpio.file(&rel.display().to_string(), 0o755, &bytes);
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, cpio.finish()).map_err(MicroVmError::io("writing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(MicroVmError::io("renaming", &path))?;
    tracing::info!(initramfs = %path.display(), static_init = libs.is_empty(), "built the guest initramfs");
    Ok(path)
}

/// The shared libraries (and loader) a dynamically linked `bin` needs, by
/// `ldd`; none for a static binary (the documented build:
/// `RUSTFLAGS='-C target-feature=+crt-static'`).
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>, MicroVmError> {
    let out = Command::new("ldd").arg(bin).output();
    let Ok(out) = out else { return Ok(Vec::new()) };
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("statically linked") || text.contains("not a dynamic") {
        return Ok(Vec::new());
    }
    let mut libs: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.trim().split(' ').next()?,
                None => l.split(' ').next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    libs.sort();
    libs.dedup();
    Ok(libs)
}

/// A `newc` cpio archive, as the kernel unpacks into its initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: std::collections::HashSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [self.ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        if self.dirs.insert(name.to_owned()) {
            self.entry(name, 0o040_755, &[]);
        }
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | perm, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut c = Cpio::default();
        c.dir("dev");
        c.dir("dev");
        c.file("init", 0o755, b"abc");
        let out = c.finish();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("070701").count(), 3, "a directory is written once");
        assert!(text.contains("init\0"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!\0"));
        // The file's mode field: regular file, 0755.
        assert!(text.contains(&format!("{:08X}", 0o100_755)));
    }
}
