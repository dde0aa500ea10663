//! Removing images, and collecting the blobs and layers no image uses.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::paths::remove_any;
use crate::store::blocking;
use crate::{Digest, ImageError, ImageStore, reference};

/// What a garbage collection freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

impl ImageStore {
    /// Forgets the image and collects what no other image uses. Layers
    /// in use by running containers are the caller's to protect: remove
    /// an image only when nothing runs from it.
    pub async fn remove(&self, reference: &str) -> Result<GcReport, ImageError> {
        let key = reference::key(&reference::parse(reference)?);
        let _exclusive = self.gc_lock.write().await;
        if !self.records.remove(&key)? {
            return Err(ImageError::NotFound { reference: key });
        }
        self.collect().await
    }

    /// Removes every blob and unpacked layer that no image record names.
    pub async fn gc(&self) -> Result<GcReport, ImageError> {
        let _exclusive = self.gc_lock.write().await;
        self.collect().await
    }

    async fn collect(&self) -> Result<GcReport, ImageError> {
        let records = self.records.all()?;
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for record in records {
            blobs.extend([record.manifest.hex().to_owned(), record.config.hex().to_owned()]);
            for layer in record.layers {
                blobs.insert(layer.blob.hex().to_owned());
                layers.insert(layer.diff_id.hex().to_owned());
            }
        }
        let (blob_dir, layer_dir) = (self.paths.blobs(), self.paths.layers());
        let report = blocking(move || {
            let (blobs_removed, blob_bytes) = sweep(&blob_dir, &blobs)?;
            let (layers_removed, layer_bytes) = sweep(&layer_dir, &layers)?;
            Ok::<_, ImageError>(GcReport { blobs_removed, layers_removed, bytes_freed: blob_bytes + layer_bytes })
        })
        .await?;
        tracing::info!(?report, "image garbage collected");
        Ok(report)
    }
}

/// Removes the entries of `dir` whose names are not in `keep`.
fn sweep(dir: &Path, keep: &HashSet<String>) -> Result<(usize, u64), ImageError> {
    let mut removed = (0, 0);
    for entry in fs::read_dir(dir).map_err(ImageError::io("list", dir))? {
        let entry = entry.map_err(ImageError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = format!("sha256:{name}").parse::<Digest>().is_ok();
        if ours && !keep.contains(&name) {
            removed.0 += 1;
            removed.1 += remove_any(&entry.path());
        }
    }
    Ok(removed)
}
