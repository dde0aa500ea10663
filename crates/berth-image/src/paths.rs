//! Where things live in the cache:
//!
//! ```text
//! ROOT/blobs/sha256/<hex>     manifests, configs and layer blobs, by digest
//! ROOT/layers/sha256/<hex>    unpacked layers, by DiffID
//! ROOT/records/<hex>.json     one per image reference (hex = sha256 of it)
//! ROOT/tmp/                   work in progress, renamed into place when done
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Digest;

#[derive(Debug)]
pub(crate) struct CachePaths {
    root: PathBuf,
    next_temp: AtomicU64,
}

impl CachePaths {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root, next_temp: AtomicU64::new(0) }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    pub(crate) fn layers(&self) -> PathBuf {
        self.root.join("layers/sha256")
    }

    pub(crate) fn layer(&self, diff_id: &Digest) -> PathBuf {
        self.layers().join(diff_id.hex())
    }

    pub(crate) fn records(&self) -> PathBuf {
        self.root.join("records")
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Creates the directories and empties `tmp/` of leftovers from a
    /// process that died mid-way.
    pub(crate) fn prepare(&self) -> io::Result<()> {
        let _ = fs::remove_dir_all(self.tmp());
        for dir in [self.blobs(), self.layers(), self.records(), self.tmp()] {
            fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    /// A fresh path under `tmp/`, removed (with whatever is there) when
    /// dropped unless persisted.
    pub(crate) fn temp_path(&self) -> TempPath {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        TempPath(Some(self.tmp().join(format!("{}-{n}", std::process::id()))))
    }
}

#[derive(Debug)]
pub(crate) struct TempPath(Option<PathBuf>);

impl TempPath {
    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Renames the file or directory to `dest`. If `dest` already exists
    /// (someone else put the same content there first), the temporary
    /// copy is dropped and that is a success too.
    pub(crate) fn persist(mut self, dest: &Path) -> io::Result<()> {
        let Some(path) = self.0.take() else { return Ok(()) };
        match fs::rename(&path, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.exists() => {
                self.0 = Some(path);
                Ok(())
            }
            Err(e) => {
                self.0 = Some(path);
                Err(e)
            }
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            remove_any(&path);
        }
    }
}

/// Removes a file or a directory tree; a missing path is fine.
pub(crate) fn remove_any(path: &Path) -> u64 {
    let size = disk_usage(path);
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => return 0,
    };
    if let Err(e) = removed {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove");
    }
    size
}

/// Bytes used by a file or directory tree (apparent sizes, hard links
/// counted once per path).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = fs::read_dir(path) else { return 0 };
    entries.flatten().map(|e| disk_usage(&e.path())).sum()
}
