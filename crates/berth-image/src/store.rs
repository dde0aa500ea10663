//! The image store: the cache's front door.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use time::OffsetDateTime;
use tokio::sync::RwLock;

use crate::ingest::read_config;
use crate::locks::KeyedLocks;
use crate::paths::CachePaths;
use crate::records::{ImageSource, Record, Records};
use crate::{Digest, ImageError, ImageStoreConfig, reference};

/// An image in the cache, ready to be stacked: `layers` are unpacked
/// directories, lowest first (overlayfs wants them in the reverse order).
#[derive(Clone, Debug)]
pub struct Image {
    /// The normalised reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// What the reference resolved to (an index's digest for a
    /// multi-platform tag, else the manifest's).
    pub digest: Digest,
    /// The linux/amd64 image manifest.
    pub manifest_digest: Digest,
    pub config: ImageConfiguration,
    pub layers: Vec<PathBuf>,
    /// Sum of the layer blobs' sizes, as stored (compressed).
    pub size: u64,
    pub source: ImageSource,
    pub pulled_at: OffsetDateTime,
}

/// The content-addressed image cache under one root directory (the data
/// dir's `images/`). One `ImageStore` per root per process: opening
/// clears the root's `tmp/`.
#[derive(Debug)]
pub struct ImageStore {
    pub(crate) paths: CachePaths,
    pub(crate) config: ImageStoreConfig,
    pub(crate) records: Records,
    pub(crate) locks: KeyedLocks,
    /// Held shared by everything that adds content, exclusively by GC.
    pub(crate) gc_lock: RwLock<()>,
    /// Registry clients shared by anonymous pulls.
    pub(crate) clients: crate::registry::Clients,
}

impl ImageStore {
    pub fn open(root: impl Into<PathBuf>, config: ImageStoreConfig) -> Result<Self, ImageError> {
        let paths = CachePaths::new(root.into());
        paths.prepare().map_err(ImageError::io("create", paths.root()))?;
        let records = Records::new(paths.records());
        Ok(Self {
            paths,
            config,
            records,
            locks: KeyedLocks::default(),
            gc_lock: RwLock::new(()),
            clients: crate::registry::Clients::default(),
        })
    }

    pub fn config(&self) -> &ImageStoreConfig {
        &self.config
    }

    /// Where uploads to be imported or loaded can be staged: a directory
    /// on the cache's file system, emptied when the store is opened.
    pub fn staging_dir(&self) -> PathBuf {
        self.paths.root().join("tmp")
    }

    /// `reference` as the cache names it (`busybox` →
    /// `docker.io/library/busybox:latest`), to compare references.
    pub fn normalize(reference: &str) -> Result<String, ImageError> {
        Ok(reference::key(&reference::parse(reference)?))
    }

    /// The cached image for `reference`, without asking any registry.
    pub async fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let key = reference::key(&reference::parse(reference)?);
        let _no_gc = self.gc_lock.read().await;
        match self.records.get(&key)? {
            Some(record) => self.image(record).map(Some),
            None => Ok(None),
        }
    }

    /// Every cached image, by reference.
    pub async fn list(&self) -> Result<Vec<Image>, ImageError> {
        let _no_gc = self.gc_lock.read().await;
        self.records.all()?.into_iter().map(|r| self.image(r)).collect()
    }

    pub(crate) fn image(&self, record: Record) -> Result<Image, ImageError> {
        let config = read_config(&self.paths.blob(&record.config), &record.reference)?;
        Ok(Image {
            layers: record.layers.iter().map(|l| self.paths.layer(&l.diff_id)).collect(),
            size: record.layers.iter().map(|l| l.size).sum(),
            reference: record.reference,
            digest: record.digest,
            manifest_digest: record.manifest,
            config,
            source: record.source,
            pulled_at: record.pulled_at,
        })
    }

    /// Whether everything the record names is still on disk.
    pub(crate) fn is_complete(&self, record: &Record) -> bool {
        self.paths.blob(&record.config).exists() && record.layers.iter().all(|l| self.paths.layer(&l.diff_id).exists())
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent runs these on spawned tasks: their futures must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(store: &ImageStore, path: &std::path::Path) {
        fn send<T: Send>(_: T) {}
        send(store.pull("busybox", None));
        send(store.get("busybox"));
        send(store.list());
        send(store.remove("busybox"));
        send(store.gc());
        send(store.import_dir(path, "x"));
        send(store.import_tar(path, "x"));
        send(store.load(path, None));
    }
}
