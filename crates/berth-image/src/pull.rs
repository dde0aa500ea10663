//! Pulling from a registry, with the pull policy: a cached image is
//! used as is while younger than `max_age`; past that (by default always)
//! a HEAD of the manifest asks whether the tag still points at it.

use oci_spec::distribution::Reference;
use oci_spec::image::{Arch, ImageIndex, Os};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ingest::{Incoming, descriptor_digest};
use crate::records::{ImageSource, Record};
use crate::registry::Remote;
use crate::{Credentials, Digest, Image, ImageError, ImageStore, reference};

impl ImageStore {
    /// Pulls `reference` (or finds it fresh in the cache). Concurrent
    /// pulls of one reference make one set of registry requests; pulls of
    /// images that share layers fetch and unpack each layer once.
    pub async fn pull(&self, reference: &str, credentials: Option<&Credentials>) -> Result<Image, ImageError> {
        let asked_at = OffsetDateTime::now_utc();
        let parsed = reference::parse(reference)?;
        let key = reference::key(&parsed);
        let _no_gc = self.gc_lock.read().await;
        let _one_at_a_time = self.locks.lock(format!("image:{key}")).await;
        let remote = Remote::new(&parsed, credentials, self.config.is_insecure(parsed.registry()), &self.clients);

        let current = match self.records.get(&key)?.filter(|r| self.is_complete(r)) {
            Some(record) => self.still_current(record, &parsed, &remote, asked_at).await?,
            None => None,
        };
        if let Some(record) = current {
            return self.image(record);
        }
        let record = self.fetch(&remote, &parsed, key).await?;
        tracing::info!(reference = %record.reference, digest = %record.digest, "pulled image");
        self.image(record)
    }

    /// The cached record if it may be used without pulling again.
    async fn still_current(
        &self,
        mut record: Record,
        parsed: &Reference,
        remote: &Remote,
        asked_at: OffsetDateTime,
    ) -> Result<Option<Record>, ImageError> {
        let pinned = parsed.digest().is_some(); // content by digest never changes
        let fresh = OffsetDateTime::now_utc() - record.checked_at < self.config.max_age();
        // Checked by a pull that finished while this one waited for the lock.
        let just_checked = record.checked_at >= asked_at;
        // An image imported or loaded into the cache came from no
        // registry: there is nothing to ask (and no network to touch).
        let local = record.source != ImageSource::Registry;
        if pinned || fresh || just_checked || local {
            return Ok(Some(record));
        }
        match remote.head_digest().await {
            Ok(digest) if digest == record.digest => {
                record.checked_at = OffsetDateTime::now_utc();
                self.records.put(&record)?;
                Ok(Some(record))
            }
            Ok(_) => Ok(None),
            Err(e @ ImageError::Network { .. }) => {
                tracing::warn!(reference = %record.reference, error = %e.report(), "registry unreachable; using the cached image");
                Ok(Some(record))
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch(&self, remote: &Remote, parsed: &Reference, key: String) -> Result<Record, ImageError> {
        remote.login().await?;
        let (bytes, digest) = remote.manifest(parsed).await?;
        let (manifest, manifest_digest) = if is_index(&bytes, &key)? {
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::InvalidImage { reference: key.clone(), detail: format!("index: {e}") })?;
            let chosen = select_platform(&index, &key)?;
            remote.manifest(&parsed.clone_with_digest(chosen.to_string())).await?
        } else {
            (bytes, digest.clone())
        };
        let incoming = Incoming { reference: key, digest, manifest_digest, manifest: &manifest, source: ImageSource::Registry };
        self.ingest(remote, incoming).await
    }
}

/// Whether a manifest document is an index (or Docker manifest list).
pub(crate) fn is_index(bytes: &[u8], reference: &str) -> Result<bool, ImageError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: u32,
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::InvalidImage { reference: reference.to_owned(), detail: format!("manifest: {e}") })?;
    if probe.schema_version != 2 {
        let what = format!("manifest schema version {}", probe.schema_version);
        return Err(ImageError::Unsupported { reference: reference.to_owned(), what });
    }
    let index_type = probe.media_type.as_deref().is_some_and(|t| t.contains("index") || t.contains("manifest.list"));
    Ok(index_type || probe.manifests.is_some())
}

/// The linux/amd64 entry of an index.
pub(crate) fn select_platform(index: &ImageIndex, reference: &str) -> Result<Digest, ImageError> {
    let chosen = index.manifests().iter().find(|m| {
        m.platform().as_ref().is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
    });
    match chosen {
        Some(descriptor) => descriptor_digest(descriptor, reference),
        None => {
            let available = index
                .manifests()
                .iter()
                .filter_map(|m| m.platform().as_ref().map(|p| format!("{}/{}", p.os(), p.architecture())))
                .collect::<Vec<_>>();
            let available = if available.is_empty() { "no platforms".to_owned() } else { available.join(", ") };
            Err(ImageError::NoMatchingPlatform { reference: reference.to_owned(), available })
        }
    }
}
