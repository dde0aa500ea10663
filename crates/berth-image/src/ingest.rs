//! Getting an image's content into the cache, whatever its source: each
//! blob fetched once and verified against its digest, each layer unpacked
//! once and verified against its DiffID, then the record written.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use time::OffsetDateTime;

use crate::records::{ImageSource, LayerRecord, Record};
use crate::store::blocking;
use crate::unpack::{self, Options};
use crate::{Digest, ImageError, ImageStore};

/// The pipe between a layer's download and its unpack.
const STREAM_BUFFER: usize = 256 * 1024;

/// Somewhere blobs come from: a registry, an OCI layout, files on disk.
pub(crate) trait BlobSource: Sync {
    /// Writes the blob named `digest` to the new file `dest`. The caller
    /// verifies the digest, unless [`verified`](Self::verified) says the
    /// source did while it wrote.
    fn fetch(&self, digest: &Digest, dest: &Path) -> impl Future<Output = Result<(), ImageError>> + Send;

    /// Whether `fetch` itself fails on content that does not hash to its
    /// digest (a registry client that hashes as it downloads).
    fn verified(&self) -> bool {
        false
    }

    /// Streams the blob into `sink` (verifying it, as [`verified`](Self::verified)
    /// sources do), or `None` when this source only writes files. A layer
    /// from a streaming source is unpacked while it downloads.
    fn stream(
        &self,
        _digest: &Digest,
        _sink: tokio::io::DuplexStream,
    ) -> Option<impl Future<Output = Result<(), ImageError>> + Send> {
        None::<std::future::Ready<Result<(), ImageError>>>
    }
}

/// Blobs on the local disk or in memory: `files` first, then `dir/<hex>`.
#[derive(Default)]
pub(crate) struct LocalBlobs {
    pub dir: Option<PathBuf>,
    pub files: HashMap<Digest, LocalBlob>,
}

pub(crate) enum LocalBlob {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl BlobSource for LocalBlobs {
    async fn fetch(&self, digest: &Digest, dest: &Path) -> Result<(), ImageError> {
        let from = match self.files.get(digest) {
            Some(LocalBlob::Bytes(bytes)) => {
                return tokio::fs::write(dest, bytes).await.map_err(ImageError::io("write", dest));
            }
            Some(LocalBlob::File(path)) => path.clone(),
            None => match &self.dir {
                Some(dir) => dir.join(digest.hex()),
                None => return Err(ImageError::Archive { path: dest.to_owned(), detail: format!("blob {digest} missing") }),
            },
        };
        match tokio::fs::copy(&from, dest).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ImageError::Archive { path: from, detail: format!("blob {digest} missing") })
            }
            Err(e) => Err(ImageError::io("copy", from)(e)),
        }
    }
}

/// An image about to be ingested.
pub(crate) struct Incoming<'a> {
    pub reference: String,
    pub digest: Digest,
    pub manifest_digest: Digest,
    pub manifest: &'a [u8],
    pub source: ImageSource,
}

const CONFIG_TYPES: &[&str] = &["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

impl ImageStore {
    pub(crate) async fn ingest(&self, blobs: &impl BlobSource, incoming: Incoming<'_>) -> Result<Record, ImageError> {
        let reference = incoming.reference.as_str();
        let invalid = |detail: String| ImageError::InvalidImage { reference: reference.to_owned(), detail };
        let manifest: ImageManifest =
            serde_json::from_slice(incoming.manifest).map_err(|e| invalid(format!("manifest: {e}")))?;
        self.put_blob_bytes(&incoming.manifest_digest, incoming.manifest, reference).await?;

        check_media_type(manifest.config(), CONFIG_TYPES, "config", reference)?;
        let config_digest = descriptor_digest(manifest.config(), reference)?;
        let config_path = self.ensure_blob(blobs, &config_digest, reference).await?;
        let config = read_config(&config_path, reference)?;
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse::<Digest>().map_err(|e| invalid(format!("config: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(invalid(format!(
                "{} layers in the manifest but {} in the config",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }

        // A vector of futures rather than a closure over borrowed items:
        // keeps the whole future `Send` (rust-lang/rust#102211).
        let fetches: Vec<_> = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(descriptor, diff_id)| self.layer(blobs, descriptor.clone(), diff_id, reference))
            .collect();
        let layers = futures_util::stream::iter(fetches)
            .buffered(self.config.max_concurrent_downloads.max(1))
            .try_collect::<Vec<_>>()
            .await?;

        let now = OffsetDateTime::now_utc();
        let record = Record {
            reference: incoming.reference,
            digest: incoming.digest,
            manifest: incoming.manifest_digest,
            config: config_digest,
            layers,
            source: incoming.source,
            pulled_at: now,
            checked_at: now,
        };
        self.records.put(&record)?;
        Ok(record)
    }

    async fn layer(
        &self,
        blobs: &impl BlobSource,
        descriptor: Descriptor,
        diff_id: Digest,
        reference: &str,
    ) -> Result<LayerRecord, ImageError> {
        check_media_type(&descriptor, LAYER_TYPES, "layer", reference)?;
        let blob = descriptor_digest(&descriptor, reference)?;
        self.ensure_layer(blobs, &blob, &diff_id, reference).await?;
        Ok(LayerRecord { blob, diff_id, size: descriptor.size() })
    }

    /// The blob's path in the cache, fetching it first if needed.
    async fn ensure_blob(&self, blobs: &impl BlobSource, digest: &Digest, reference: &str) -> Result<PathBuf, ImageError> {
        let _one_at_a_time = self.locks.lock(format!("blob:{digest}")).await;
        let dest = self.paths.blob(digest);
        if dest.exists() {
            return Ok(dest);
        }
        let tmp = self.paths.temp_path();
        tracing::debug!(%digest, reference, "fetching blob");
        blobs.fetch(digest, tmp.path()).await?;
        if !blobs.verified() {
            let path = tmp.path().to_owned();
            let actual = blocking(move || Digest::of_file(&path)).await.map_err(ImageError::io("read", tmp.path()))?;
            if actual != *digest {
                return Err(ImageError::DigestMismatch {
                    reference: reference.to_owned(),
                    digest: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        tmp.persist(&dest).map_err(ImageError::io("store", &dest))?;
        Ok(dest)
    }

    /// Stores bytes already in memory (a manifest) under their digest.
    pub(crate) async fn put_blob_bytes(&self, digest: &Digest, bytes: &[u8], reference: &str) -> Result<(), ImageError> {
        let source = LocalBlobs { files: HashMap::from([(digest.clone(), LocalBlob::Bytes(bytes.to_vec()))]), dir: None };
        self.ensure_blob(&source, digest, reference).await.map(drop)
    }

    /// Makes sure the layer with this DiffID is unpacked in the cache.
    async fn ensure_layer(
        &self,
        blobs: &impl BlobSource,
        blob: &Digest,
        diff_id: &Digest,
        reference: &str,
    ) -> Result<(), ImageError> {
        let _one_at_a_time = self.locks.lock(format!("layer:{diff_id}")).await;
        let dest = self.paths.layer(diff_id);
        if dest.exists() {
            return Ok(());
        }
        let tmp = self.paths.temp_path();
        let into = tmp.path().to_owned();
        let unpack_error = |source| ImageError::Unpack { reference: reference.to_owned(), digest: blob.to_string(), source };
        let (pipe, sink) = tokio::io::duplex(STREAM_BUFFER);
        let actual = match blobs.stream(blob, sink).filter(|_| !self.paths.blob(blob).exists()) {
            // Unpacked as it arrives; the compressed blob is not kept (a
            // layer is only ever used unpacked).
            Some(download) => {
                tracing::debug!(%blob, %diff_id, reference, "streaming and unpacking layer");
                let read = std::io::BufReader::with_capacity(STREAM_BUFFER, tokio_util::io::SyncIoBridge::new(pipe));
                let unpacking = blocking(move || unpack::unpack_new_from(read, &into, Options { layer: true }));
                match tokio::join!(download, unpacking) {
                    (Ok(()), Ok(actual)) => actual,
                    // The unpack stopped reading first (bad data): its error says why.
                    (Err(ImageError::Io { .. }), Err(e)) | (Ok(()), Err(e)) => return Err(unpack_error(e)),
                    (Err(e), _) => return Err(e),
                }
            }
            None => {
                let blob_path = self.ensure_blob(blobs, blob, reference).await?;
                tracing::debug!(%blob, %diff_id, reference, "unpacking layer");
                blocking(move || unpack::unpack_into_new(&blob_path, &into, Options { layer: true }))
                    .await
                    .map_err(unpack_error)?
            }
        };
        if actual != *diff_id {
            return Err(ImageError::DigestMismatch {
                reference: reference.to_owned(),
                digest: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        tmp.persist(&dest).map_err(ImageError::io("store", &dest))
    }
}

fn check_media_type(descriptor: &Descriptor, allowed: &[&str], what: &str, reference: &str) -> Result<(), ImageError> {
    let media_type = descriptor.media_type().to_string();
    if allowed.contains(&media_type.as_str()) {
        return Ok(());
    }
    Err(ImageError::Unsupported { reference: reference.to_owned(), what: format!("{what} media type {media_type}") })
}

pub(crate) fn descriptor_digest(descriptor: &Descriptor, reference: &str) -> Result<Digest, ImageError> {
    let digest = descriptor.digest().to_string();
    digest.parse().map_err(|_| ImageError::Unsupported {
        reference: reference.to_owned(),
        what: format!("digest {digest} (only sha256 is supported)"),
    })
}

pub(crate) fn read_config(path: &Path, reference: &str) -> Result<ImageConfiguration, ImageError> {
    let bytes = std::fs::read(path).map_err(ImageError::io("read", path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::InvalidImage { reference: reference.to_owned(), detail: format!("config: {e}") })
}
