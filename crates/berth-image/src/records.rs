//! Image records: one JSON file per reference, naming the blobs and
//! layers the image is made of. Written atomically (temp file + rename).

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Digest, ImageError};

/// Where an image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageSource {
    Registry,
    Import,
    Load,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub reference: String,
    /// What the reference resolved to: an index's digest for a
    /// multi-platform tag, else the manifest's.
    pub digest: Digest,
    pub manifest: Digest,
    pub config: Digest,
    /// Lowest first.
    pub layers: Vec<LayerRecord>,
    pub source: ImageSource,
    #[serde(with = "time::serde::rfc3339")]
    pub pulled_at: OffsetDateTime,
    /// When the registry last confirmed `digest` for the reference.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LayerRecord {
    pub blob: Digest,
    pub diff_id: Digest,
    pub size: u64,
}

#[derive(Debug)]
pub(crate) struct Records {
    dir: PathBuf,
}

impl Records {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, reference: &str) -> PathBuf {
        self.dir.join(format!("{}.json", Digest::of_bytes(reference.as_bytes()).hex()))
    }

    pub(crate) fn get(&self, reference: &str) -> Result<Option<Record>, ImageError> {
        let path = self.path(reference);
        match fs::read(&path) {
            Ok(bytes) => parse(&bytes, path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("read", path)(e)),
        }
    }

    pub(crate) fn put(&self, record: &Record) -> Result<(), ImageError> {
        let path = self.path(&record.reference);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let json = serde_json::to_vec_pretty(record).map_err(|e| ImageError::io("encode", &path)(e.into()))?;
        fs::write(&tmp, json).map_err(ImageError::io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(ImageError::io("write", &path))
    }

    /// Removes the record; false if there was none.
    pub(crate) fn remove(&self, reference: &str) -> Result<bool, ImageError> {
        let path = self.path(reference);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::io("remove", path)(e)),
        }
    }

    pub(crate) fn all(&self) -> Result<Vec<Record>, ImageError> {
        let entries = fs::read_dir(&self.dir).map_err(ImageError::io("list", &self.dir))?;
        let mut records = Vec::new();
        for entry in entries {
            let path = entry.map_err(ImageError::io("list", &self.dir))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = fs::read(&path).map_err(ImageError::io("read", &path))?;
                records.push(parse(&bytes, path)?);
            }
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }
}

fn parse(bytes: &[u8], path: PathBuf) -> Result<Record, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Archive { path, detail: format!("corrupt image record: {e}") })
}
