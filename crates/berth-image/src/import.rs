//! `import`: a root filesystem (a directory, or a tar of one) becomes a
//! one-layer image.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read as _};
use std::path::Path;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::digest::HashingReader;
use crate::ingest::{Incoming, LocalBlob, LocalBlobs};
use crate::records::ImageSource;
use crate::store::blocking;
use crate::unpack::{Compression, decompress};
use crate::{Digest, Image, ImageError, ImageStore, reference};

const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A layer blob about to be ingested.
pub(crate) struct LayerBlob {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
}

impl LayerBlob {
    /// Digest, size and compression of a layer file, plus its DiffID.
    pub(crate) fn inspect(path: &Path) -> io::Result<(Self, Digest)> {
        let digest = Digest::of_file(path)?;
        let size = std::fs::metadata(path)?.len();
        let mut head = [0u8; 4];
        let n = File::open(path)?.read(&mut head)?;
        let mut uncompressed = HashingReader::new(decompress(BufReader::new(File::open(path)?))?);
        io::copy(&mut uncompressed, &mut io::sink())?;
        Ok((Self { digest, size, compression: Compression::sniff(&head[..n]) }, uncompressed.finish()))
    }

    fn media_type(&self) -> &'static str {
        match self.compression {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// An OCI manifest for a config and layers made here (import, docker save).
pub(crate) fn synthesize_manifest(config: &[u8], layers: &[LayerBlob]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type(), "digest": l.digest.to_string(), "size": l.size}))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": CONFIG_TYPE, "digest": Digest::of_bytes(config).to_string(), "size": config.len()},
        "layers": layers,
    });
    manifest.to_string().into_bytes()
}

impl ImageStore {
    /// Imports the root filesystem in `dir` as the one-layer image `name`.
    pub async fn import_dir(&self, dir: &Path, name: &str) -> Result<Image, ImageError> {
        let key = reference::key(&reference::parse(name)?);
        let _no_gc = self.gc_lock.read().await;
        let tar = self.paths.temp_path();
        let (from, into) = (dir.to_owned(), tar.path().to_owned());
        blocking(move || archive_dir(&from, &into)).await.map_err(ImageError::io("archive", dir))?;
        self.import_layer_file(tar.path(), key).await
    }

    /// Imports a tar (plain, gzip or zstd) of a root filesystem as the
    /// one-layer image `name`.
    pub async fn import_tar(&self, tar: &Path, name: &str) -> Result<Image, ImageError> {
        let key = reference::key(&reference::parse(name)?);
        let _no_gc = self.gc_lock.read().await;
        self.import_layer_file(tar, key).await
    }

    async fn import_layer_file(&self, tar: &Path, key: String) -> Result<Image, ImageError> {
        let path = tar.to_owned();
        let (layer, diff_id) = blocking(move || LayerBlob::inspect(&path))
            .await
            .map_err(|e| ImageError::Archive { path: tar.to_owned(), detail: format!("not a readable tar: {e}") })?;
        let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        let config = json!({
            "created": now,
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [DEFAULT_PATH]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "created_by": "berth image import"}],
        })
        .to_string()
        .into_bytes();
        let manifest = synthesize_manifest(&config, std::slice::from_ref(&layer));
        let manifest_digest = Digest::of_bytes(&manifest);
        let blobs = LocalBlobs {
            dir: None,
            files: HashMap::from([
                (Digest::of_bytes(&config), LocalBlob::Bytes(config)),
                (layer.digest, LocalBlob::File(tar.to_owned())),
            ]),
        };
        let incoming = Incoming {
            reference: key,
            digest: manifest_digest.clone(),
            manifest_digest,
            manifest: &manifest,
            source: ImageSource::Import,
        };
        let record = self.ingest(&blobs, incoming).await?;
        self.image(record)
    }
}

/// Writes `dir`'s tree as a tar at `out`: modes, owners and times kept,
/// symlinks stored as symlinks.
fn archive_dir(dir: &Path, out: &Path) -> io::Result<()> {
    let mut builder = tar::Builder::new(io::BufWriter::new(File::create_new(out)?));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", dir)?;
    builder.into_inner()?.into_inner().map_err(|e| e.into_error())?.sync_all()
}
