//! Images that do not come from a registry (`import`, `load`), removal
//! with garbage collection, and what unpacking does with odd or hostile
//! layers.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use berth_image::{ImageError, ImageSource, ImageStoreConfig, UnpackError};
use berth_testinfra::registry::{
    BUSYBOX, ImageSpec, LayerBuilder, OciLayout, busybox_rootfs, gzip, registry_tools_available, tar_of_dir,
    write_docker_save,
};
use common::{TestResult, busybox_layer, store};

fn assert_busybox(layer: &Path) -> TestResult {
    let busybox = fs::metadata(layer.join("bin/busybox"))?;
    assert_eq!(busybox.len(), fs::metadata(BUSYBOX)?.len());
    assert_eq!(busybox.permissions().mode() & 0o777, 0o755);
    assert_eq!(fs::read_link(layer.join("bin/sh"))?.to_str(), Some("busybox"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_a_directory_and_a_tar() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let rootfs = tempfile::tempdir()?;
    busybox_rootfs(rootfs.path())?;
    let (_root, store) = store(ImageStoreConfig::default())?;

    let from_dir = store.import_dir(rootfs.path(), "imported:dir").await?;
    assert_eq!(from_dir.reference, "docker.io/library/imported:dir");
    assert_eq!(from_dir.source, ImageSource::Import);
    assert_eq!(from_dir.layers.len(), 1);
    assert_busybox(&from_dir.layers[0])?;
    let env = from_dir.config.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default();
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");

    let tarball = rootfs.path().with_extension("tar.gz");
    fs::write(&tarball, gzip(&tar_of_dir(rootfs.path())?))?;
    let from_tar = store.import_tar(&tarball, "imported:tar").await?;
    fs::remove_file(&tarball)?;
    assert_busybox(&from_tar.layers[0])?;
    assert_eq!(from_tar.layers, from_dir.layers, "same content, same DiffID, one layer dir");
    assert_eq!(store.list().await?.len(), 2);

    let not_a_tar = rootfs.path().join("bin/busybox");
    let err = store.import_tar(&not_a_tar, "broken:1").await.expect_err("not a tar");
    assert!(matches!(err, ImageError::Unpack { .. } | ImageError::Archive { .. }), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_an_oci_layout_directory_and_tar() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&dir.path().join("layout"))?;
    let app = LayerBuilder::new().file("etc/app", b"v1", 0o644).build();
    let manifest = layout.add_image(Some("v1"), &[busybox_layer()?, app], &ImageSpec::default())?;
    layout.tag("ignored", &manifest, Some("registry.example/team/app:named"))?;
    let (_root, store) = store(ImageStoreConfig::default())?;

    let err = store.load(layout.path(), None).await.expect_err("the v1 image has no repository name");
    assert!(matches!(err, ImageError::Archive { .. }), "{err:?}");
    let loaded = store.load(layout.path(), Some("app")).await?;
    let names: Vec<_> = loaded.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(names, ["docker.io/library/app:v1", "registry.example/team/app:named"]);
    assert_eq!(loaded[0].manifest_digest.to_string(), manifest.digest);
    assert_eq!(fs::read(loaded[0].layers[1].join("etc/app"))?, b"v1");
    assert_busybox(&loaded[0].layers[0])?;

    let archive = dir.path().join("layout.tar");
    layout.write_tar(&archive)?;
    let (_root2, store2) = common::store(ImageStoreConfig::default())?;
    let from_tar = store2.load(&archive, Some("app")).await?;
    assert_eq!(from_tar.len(), 2);
    assert_eq!(from_tar[0].source, ImageSource::Load);
    assert_busybox(&from_tar[0].layers[0])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_a_docker_save_tarball() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("saved.tar");
    let upper = LayerBuilder::new().whiteout("etc/group").file("hello", b"hi\n", 0o644).build();
    write_docker_save(&archive, &["saved:1", "saved:latest"], &[busybox_layer()?, upper], &ImageSpec::default())?;
    let (_root, store) = store(ImageStoreConfig::default())?;

    let loaded = store.load(&archive, None).await?;

    let names: Vec<_> = loaded.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(names, ["docker.io/library/saved:1", "docker.io/library/saved:latest"]);
    assert_eq!(loaded[0].layers, loaded[1].layers);
    assert_busybox(&loaded[0].layers[0])?;
    assert_eq!(fs::read(loaded[0].layers[1].join("hello"))?, b"hi\n");
    assert_eq!(fs::symlink_metadata(loaded[0].layers[1].join("etc/group"))?.rdev(), 0, "overlay whiteout");
    let cmd = loaded[0].config.config().as_ref().and_then(|c| c.cmd().clone());
    assert_eq!(cmd, Some(vec!["/bin/sh".to_owned()]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_collects_what_no_image_uses() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let rootfs = tempfile::tempdir()?;
    busybox_rootfs(rootfs.path())?;
    let (root, store) = store(ImageStoreConfig::default())?;
    let images = root.path().join("images");
    let base = store.import_dir(rootfs.path(), "base:1").await?;
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("saved.tar");
    let extra = LayerBuilder::new().file("big", &vec![7u8; 1 << 20], 0o644).build();
    write_docker_save(&archive, &["extra:1"], &[extra], &ImageSpec::default())?;
    let extra = store.load(&archive, None).await?.remove(0);
    let full = common_usage(&images);

    let report = store.remove("extra:1").await?;

    assert_eq!(report.layers_removed, 1);
    assert_eq!(report.blobs_removed, 3, "manifest, config, layer");
    assert!(report.bytes_freed >= 2 << 20, "the layer blob and its unpacked copy: {report:?}");
    assert!(!extra.layers[0].exists());
    assert!(base.layers[0].join("bin/busybox").exists(), "other images keep their layers");
    assert!(common_usage(&images) + (2 << 20) <= full);
    assert!(store.get("extra:1").await?.is_none());
    let err = store.remove("extra:1").await.expect_err("already gone");
    assert!(matches!(err, ImageError::NotFound { .. }) && err.is_not_found(), "{err:?}");

    store.remove("base:1").await?;
    assert_eq!(fs::read_dir(images.join("layers/sha256"))?.count(), 0);
    assert_eq!(fs::read_dir(images.join("blobs/sha256"))?.count(), 0);
    Ok(())
}

fn common_usage(dir: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(dir) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(dir).map(|d| d.flatten().map(|e| common_usage(&e.path())).sum()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_modes_hard_links_and_devices_are_kept() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let layer = LayerBuilder::new()
        .owned_file("usr/bin/su", b"#!/bin/sh\n", 0o4755, 0, 0)
        .owned_file("home/app/data", b"mine", 0o600, 1000, 1001)
        .hardlink("home/app/data-link", "home/app/data")
        .entry(tar::EntryType::Fifo, "run/fifo", None, 0o600, &[])
        .dir("opt", 0o700)
        .build();
    let dir = tempfile::tempdir()?;
    let tarball = dir.path().join("layer.tar");
    fs::write(&tarball, &layer)?;
    let (_root, store) = store(ImageStoreConfig::default())?;

    let image = store.import_tar(&tarball, "meta:1").await?;

    let top = &image.layers[0];
    assert_eq!(fs::metadata(top.join("usr/bin/su"))?.mode() & 0o7777, 0o4755, "setuid kept after chown");
    let data = fs::metadata(top.join("home/app/data"))?;
    assert_eq!((data.uid(), data.gid(), data.mode() & 0o777), (1000, 1001, 0o600));
    assert_eq!(fs::metadata(top.join("home/app/data-link"))?.ino(), data.ino(), "hard link");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fs::symlink_metadata(top.join("run/fifo"))?.file_type()));
    assert_eq!(fs::metadata(top.join("opt"))?.mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(top.join("opt"))?.mtime(), 1_700_000_000, "directory times set last");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_layers_cannot_write_outside_the_layer() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let outside = dir.path().join("outside");
    fs::create_dir(&outside)?;
    let (root, store) = store(ImageStoreConfig::default())?;
    let escape = format!("../../../../../../../../..{}/pwned", outside.display());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", LayerBuilder::new().file(&escape, b"x", 0o644).build()),
        (
            "symlink parent",
            LayerBuilder::new()
                .symlink("evil", &outside.display().to_string())
                .file("evil/pwned", b"x", 0o644)
                .build(),
        ),
        (
            "relative symlink parent",
            LayerBuilder::new().dir("a", 0o755).symlink("a/up", "../../../../../../../..").file("a/up/tmp/pwned", b"x", 0o644).build(),
        ),
        ("hard link out", LayerBuilder::new().hardlink("passwd", "../../../../../../etc/passwd").build()),
        (
            "hard link through symlink",
            LayerBuilder::new().symlink("etc", "/etc").hardlink("passwd", "etc/passwd").build(),
        ),
    ];
    for (name, layer) in cases {
        let tarball = dir.path().join("hostile.tar");
        fs::write(&tarball, &layer)?;
        let err = store.import_tar(&tarball, "hostile:1").await.expect_err(name);
        let ImageError::Unpack { source, .. } = &err else { panic!("{name}: {err:?}") };
        assert!(
            matches!(source, UnpackError::Escape { .. } | UnpackError::ThroughSymlink { .. }),
            "{name}: {source:?}"
        );
        assert!(err.report().contains("layer"), "{name}: {}", err.report());
    }
    assert_eq!(fs::read_dir(&outside)?.count(), 0, "nothing written outside");
    assert!(!Path::new("/tmp/pwned").exists());
    let images = root.path().join("images");
    assert_eq!(fs::read_dir(images.join("layers/sha256"))?.count(), 0);
    assert_eq!(fs::read_dir(images.join("tmp"))?.count(), 0);
    Ok(())
}
