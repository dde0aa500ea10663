//! Helpers shared by the image tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::{ImageStore, ImageStoreConfig};
use berth_testinfra::registry::{ImageSpec, LayerBuilder, OciLayout, Registry};

pub type TestResult = anyhow::Result<()>;

/// A fresh store in a temp dir (removed when the `TempDir` drops).
pub fn store(config: ImageStoreConfig) -> anyhow::Result<(tempfile::TempDir, ImageStore)> {
    let dir = tempfile::Builder::new().prefix("berth-images-").tempdir()?;
    let store = ImageStore::open(dir.path().join("images"), config)?;
    Ok((dir, store))
}

pub fn busybox_layer() -> anyhow::Result<Vec<u8>> {
    Ok(LayerBuilder::new().busybox()?.build())
}

/// An OCI layout in a temp dir with one image of `layers` tagged `tag`.
pub fn layout_with(tag: &str, layers: &[Vec<u8>], spec: &ImageSpec) -> anyhow::Result<(tempfile::TempDir, OciLayout)> {
    let dir = tempfile::Builder::new().prefix("berth-layout-").tempdir()?;
    let mut layout = OciLayout::create(dir.path())?;
    layout.add_image(Some(tag), layers, spec)?;
    Ok((dir, layout))
}

/// Pushes a one-layer busybox image as `name` (`repo:tag`).
pub fn push_busybox(registry: &Registry, name: &str) -> TestResult {
    let (_dir, layout) = layout_with("v1", &[busybox_layer()?], &ImageSpec::default())?;
    registry.push(&layout, "v1", name)
}

/// The layer blobs' digests of an image manifest in the store's cache.
pub fn manifest_json(root: &Path, manifest_digest: &str) -> anyhow::Result<serde_json::Value> {
    let hex = manifest_digest.trim_start_matches("sha256:");
    Ok(serde_json::from_slice(&std::fs::read(root.join("images/blobs/sha256").join(hex))?)?)
}

/// An overlayfs mount of `lower` dirs (lowest first), unmounted on drop.
pub struct Overlay {
    pub target: PathBuf,
    _dir: tempfile::TempDir,
}

impl Overlay {
    pub fn mount(lower: &[PathBuf]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("berth-overlay-").tempdir()?;
        let target = dir.path().join("merged");
        std::fs::create_dir(&target)?;
        let lowerdir: Vec<String> = lower.iter().rev().map(|p| p.display().to_string()).collect();
        let status = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={}", lowerdir.join(":")))
            .arg(&target)
            .status()?;
        anyhow::ensure!(status.success(), "mount -t overlay failed");
        Ok(Self { target, _dir: dir })
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
    }
}
