//! `load`: images from an OCI image layout (a directory or a tar of one)
//! or from a `docker save` tarball.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageIndex;
use serde::Deserialize;

use crate::import::{LayerBlob, synthesize_manifest};
use crate::ingest::{Incoming, LocalBlob, LocalBlobs, descriptor_digest};
use crate::pull::{is_index, select_platform};
use crate::records::ImageSource;
use crate::store::blocking;
use crate::unpack::{self, Options};
use crate::{Digest, Image, ImageError, ImageStore, reference};

const CONTAINERD_NAME: &str = "io.containerd.image.name";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image of a `docker save` tarball's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl ImageStore {
    /// Loads every image of an OCI layout or `docker save` tarball at
    /// `path`. Images are named as the archive names them; where it does
    /// not, `name` is used (a bare tag in an OCI layout becomes `name:tag`).
    pub async fn load(&self, path: &Path, name: Option<&str>) -> Result<Vec<Image>, ImageError> {
        let _no_gc = self.gc_lock.read().await;
        let meta = std::fs::metadata(path).map_err(ImageError::io("read", path))?;
        let extracted = if meta.is_dir() {
            None
        } else {
            let tmp = self.paths.temp_path();
            let (from, into) = (path.to_owned(), tmp.path().to_owned());
            blocking(move || unpack::unpack_into_new(&from, &into, Options { layer: false }))
                .await
                .map_err(|e| archive_error(path, format!("cannot unpack: {}", chain(&e))))?;
            Some(tmp)
        };
        let root = extracted.as_ref().map_or(path, |t| t.path());
        let archive = Archive { root, shown: path, name };
        if root.join("manifest.json").is_file() {
            self.load_docker(&archive).await
        } else if root.join("index.json").is_file() {
            self.load_oci(&archive).await
        } else {
            Err(archive_error(path, "neither an OCI image layout (index.json) nor a docker save tarball (manifest.json)"))
        }
    }

    async fn load_oci(&self, archive: &Archive<'_>) -> Result<Vec<Image>, ImageError> {
        let index: ImageIndex = archive.json("index.json")?;
        let blobs = LocalBlobs { dir: Some(archive.root.join("blobs/sha256")), files: HashMap::new() };
        let mut images = Vec::new();
        for descriptor in index.manifests() {
            let annotations = descriptor.annotations().clone().unwrap_or_default();
            let key = archive.image_name(annotations.get(CONTAINERD_NAME), annotations.get(REF_NAME))?;
            let digest = descriptor_digest(descriptor, &key)?;
            let bytes = archive.blob(&digest, &key)?;
            let (manifest, manifest_digest) = if is_index(&bytes, &key)? {
                let nested: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|e| ImageError::InvalidImage { reference: key.clone(), detail: format!("index: {e}") })?;
                let chosen = select_platform(&nested, &key)?;
                (archive.blob(&chosen, &key)?, chosen)
            } else {
                (bytes, digest.clone())
            };
            let incoming = Incoming { reference: key, digest, manifest_digest, manifest: &manifest, source: ImageSource::Load };
            let record = self.ingest(&blobs, incoming).await?;
            images.push(self.image(record)?);
        }
        Ok(images)
    }

    async fn load_docker(&self, archive: &Archive<'_>) -> Result<Vec<Image>, ImageError> {
        let entries: Vec<DockerEntry> = archive.json("manifest.json")?;
        let mut images = Vec::new();
        for entry in entries {
            let config_path = archive.inside(&entry.config)?;
            let config = std::fs::read(&config_path).map_err(ImageError::io("read", &config_path))?;
            let mut files = HashMap::new();
            let mut layers = Vec::new();
            for layer in &entry.layers {
                let path = archive.inside(layer)?;
                let file = path.clone();
                let (blob, _diff_id) = blocking(move || LayerBlob::inspect(&file))
                    .await
                    .map_err(|e| archive_error(archive.shown, format!("layer {layer}: {e}")))?;
                files.insert(blob.digest.clone(), LocalBlob::File(path));
                layers.push(blob);
            }
            let manifest = synthesize_manifest(&config, &layers);
            let manifest_digest = Digest::of_bytes(&manifest);
            files.insert(Digest::of_bytes(&config), LocalBlob::Bytes(config));
            let blobs = LocalBlobs { dir: None, files };
            let names = match entry.repo_tags {
                Some(tags) if !tags.is_empty() => tags.into_iter().map(|t| archive.image_name(Some(&t), None)).collect(),
                _ => vec![archive.image_name(None, None)],
            };
            for key in names {
                let key = key?;
                let incoming = Incoming {
                    reference: key,
                    digest: manifest_digest.clone(),
                    manifest_digest: manifest_digest.clone(),
                    manifest: &manifest,
                    source: ImageSource::Load,
                };
                let record = self.ingest(&blobs, incoming).await?;
                images.push(self.image(record)?);
            }
        }
        Ok(images)
    }
}

/// An archive's files, as unpacked (or as the directory given).
struct Archive<'a> {
    root: &'a Path,
    /// The path the caller gave, for messages.
    shown: &'a Path,
    name: Option<&'a str>,
}

impl Archive<'_> {
    /// `rel` under the root, refusing anything (`..`, symlinks) that leads out of it.
    fn inside(&self, rel: &str) -> Result<PathBuf, ImageError> {
        let root = self.root.canonicalize().map_err(ImageError::io("read", self.root))?;
        let path = root.join(rel).canonicalize().map_err(|e| archive_error(self.shown, format!("{rel}: {e}")))?;
        if !path.starts_with(&root) {
            return Err(archive_error(self.shown, format!("{rel} points outside the archive")));
        }
        Ok(path)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, rel: &str) -> Result<T, ImageError> {
        let path = self.inside(rel)?;
        let bytes = std::fs::read(&path).map_err(ImageError::io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| archive_error(self.shown, format!("{rel}: {e}")))
    }

    /// A blob's bytes, checked against its digest.
    fn blob(&self, digest: &Digest, reference: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.inside(&format!("blobs/sha256/{}", digest.hex()))?;
        let bytes = std::fs::read(&path).map_err(ImageError::io("read", &path))?;
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            let (digest, actual) = (digest.to_string(), actual.to_string());
            return Err(ImageError::DigestMismatch { reference: reference.to_owned(), digest, actual });
        }
        Ok(bytes)
    }

    /// The image's full reference: the archive's own full name, else its
    /// tag on the caller's `name`, else the caller's `name`.
    fn image_name(&self, full: Option<&String>, tag: Option<&String>) -> Result<String, ImageError> {
        let full_name = tag.filter(|t| t.contains(['/', ':'])).or(full).map(String::as_str);
        let name = match (full_name, tag, self.name) {
            (Some(n), _, _) => n.to_owned(),
            (None, Some(tag), Some(name)) => format!("{name}:{tag}"),
            (None, None, Some(name)) => name.to_owned(),
            (None, _, None) => {
                return Err(archive_error(self.shown, "an image in it has no name: give one"));
            }
        };
        reference::parse(&name).map(|r| reference::key(&r))
    }
}

fn archive_error(path: &Path, detail: impl Into<String>) -> ImageError {
    ImageError::Archive { path: path.to_owned(), detail: detail.into() }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out = format!("{out}: {e}");
        source = e.source();
    }
    out
}
