//! Pulls from a real registry (Debian's docker-registry on loopback),
//! with test images made from busybox-static and pushed with skopeo.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};

use berth_image::{Credentials, ImageError, ImageStoreConfig};
use berth_testinfra::registry::{BUSYBOX, ImageSpec, LayerBuilder, OciLayout, Registry, registry_tools_available};
use common::{TestResult, busybox_layer, layout_with, manifest_json, push_busybox, store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_busybox_into_unpacked_layers() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    push_busybox(&registry, "busybox:v1")?;
    let (dir, store) = store(ImageStoreConfig::default())?;

    let image = store.pull(&registry.reference("busybox:v1"), None).await?;

    assert_eq!(image.reference, registry.reference("busybox:v1"));
    assert_eq!(image.layers.len(), 1);
    assert!(image.layers[0].starts_with(dir.path().join("images/layers/sha256")));
    let busybox = fs::metadata(image.layers[0].join("bin/busybox"))?;
    assert_eq!(busybox.permissions().mode() & 0o7777, 0o755);
    assert_eq!((busybox.uid(), busybox.gid()), (0, 0));
    assert_eq!(busybox.len(), fs::metadata(BUSYBOX)?.len());
    assert_eq!(fs::read_link(image.layers[0].join("bin/sh"))?.to_str(), Some("busybox"));
    assert_eq!(fs::metadata(image.layers[0].join("tmp"))?.permissions().mode() & 0o7777, 0o1777);
    let config = image.config.config().clone().expect("image config");
    assert_eq!(config.cmd().as_deref(), Some(&["/bin/sh".to_owned()][..]));
    assert_eq!(image.digest, image.manifest_digest);

    registry.push_with(&layout_with("v1", &[busybox_layer()?], &ImageSpec::default())?.1, "v1", "busybox:docker", &["--format", "v2s2"])?;
    let docker = store.pull(&registry.reference("busybox:docker"), None).await?;
    let manifest = manifest_json(dir.path(), &docker.manifest_digest.to_string())?;
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(docker.layers, image.layers, "same layer, unpacked once");

    let listed = store.list().await?;
    let names: Vec<_> = listed.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(names, [docker.reference.as_str(), image.reference.as_str()]);
    let got = store.get(&registry.reference("busybox:v1")).await?.expect("cached");
    assert_eq!(got.layers, image.layers);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_pull_only_asks_for_the_digest() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    push_busybox(&registry, "busybox:v1")?;
    let reference = registry.reference("busybox:v1");
    let (_dir, store) = store(ImageStoreConfig::default())?;

    let first = store.pull(&reference, None).await?;
    let before = registry.requests().len();
    assert_eq!(registry.all_blob_downloads(), 2, "config and one layer");
    let second = store.pull(&reference, None).await?;

    let after = registry.requests();
    // oci-client probes `GET /v2/` for an auth challenge before requests
    // to a registry that has none: cheap, and not about the image.
    let new: Vec<_> = after[before..]
        .iter()
        .map(|(m, p, s)| format!("{m} {p} {s}"))
        .filter(|r| r != "GET /v2/ 200")
        .collect();
    assert_eq!(new, ["HEAD /v2/busybox/manifests/v1 200"], "one HEAD and nothing else");
    assert_eq!(registry.all_blob_downloads(), 2);
    assert_eq!(first.layers, second.layers);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_cache_skips_the_registry_and_a_moved_tag_is_pulled_again() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    push_busybox(&registry, "app:v1")?;
    let reference = registry.reference("app:v1");
    let (_dir, fresh) = store(ImageStoreConfig { max_age_secs: 3600, ..Default::default() })?;
    let (_dir2, always) = store(ImageStoreConfig::default())?;
    let old = fresh.pull(&reference, None).await?;
    always.pull(&reference, None).await?;

    let layer2 = LayerBuilder::new().file("etc/version", b"2\n", 0o644).build();
    let (_l, layout) = layout_with("v2", &[busybox_layer()?, layer2], &ImageSpec::default())?;
    registry.push(&layout, "v2", "app:v1")?;

    let before = registry.requests().len();
    let cached = fresh.pull(&reference, None).await?;
    assert_eq!(registry.requests().len(), before, "max age not reached: no request");
    assert_eq!(cached.digest, old.digest);

    let moved = always.pull(&reference, None).await?;
    assert_ne!(moved.digest, old.digest);
    assert_eq!(moved.layers.len(), 2);
    assert_eq!(fs::read(moved.layers[1].join("etc/version"))?, b"2\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_and_opaque_dirs_work_in_an_overlay_stack() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    let lower = LayerBuilder::new()
        .busybox()?
        .file("etc/old.conf", b"old\n", 0o644)
        .dir("var", 0o755)
        .dir("var/cache", 0o755)
        .file("var/cache/a", b"a", 0o644)
        .file("var/cache/b", b"b", 0o644)
        .build();
    let upper = LayerBuilder::new()
        .whiteout("etc/old.conf")
        .dir("var/cache", 0o755)
        .opaque("var/cache")
        .file("var/cache/c", b"c", 0o644)
        .build();
    let (_l, layout) = layout_with("v1", &[lower, upper], &ImageSpec::default())?;
    registry.push(&layout, "v1", "layered:v1")?;
    let (_dir, store) = store(ImageStoreConfig::default())?;

    let image = store.pull(&registry.reference("layered:v1"), None).await?;

    let top = &image.layers[1];
    let whiteout = fs::symlink_metadata(top.join("etc/old.conf"))?;
    assert!(whiteout.file_type().is_char_device(), "whiteout is a character device");
    assert_eq!(whiteout.rdev(), 0, "device 0/0");
    assert_eq!(xattr::get(top.join("var/cache"), "trusted.overlay.opaque")?.as_deref(), Some(&b"y"[..]));
    let names = |dir: &std::path::Path| -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> =
            fs::read_dir(dir)?.map(|e| Ok(e?.file_name().to_string_lossy().into_owned())).collect::<anyhow::Result<_>>()?;
        names.sort();
        Ok(names)
    };
    assert_eq!(names(&top.join("var/cache"))?, ["c"], "no .wh. files left in the layer");
    assert_eq!(names(&top.join("etc"))?, ["old.conf"]);

    let merged = common::Overlay::mount(&image.layers)?;
    assert!(!merged.target.join("etc/old.conf").exists(), "whited out");
    assert!(merged.target.join("etc/passwd").exists());
    assert_eq!(names(&merged.target.join("var/cache"))?, ["c"], "opaque dir hides the lower entries");
    assert!(merged.target.join("bin/busybox").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_and_uncompressed_layers_and_docker_manifests() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    let (_l, layout) = layout_with("v1", &[busybox_layer()?], &ImageSpec::default())?;
    registry.push_with(&layout, "v1", "zstd:v1", &["--dest-compress-format", "zstd"])?;
    // An uncompressed layer in a Docker schema 2 manifest, uploaded as is
    // (skopeo would compress it).
    let layer = LayerBuilder::new().file("plain", b"yes", 0o600).build();
    let config = ImageSpec::default().config_json(std::slice::from_ref(&layer));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": registry.upload_blob("plain", &config)?,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
            "digest": registry.upload_blob("plain", &layer)?,
            "size": layer.len(),
        }],
    });
    let docker_v2 = "application/vnd.docker.distribution.manifest.v2+json";
    registry.put_manifest("plain", "v1", docker_v2, manifest.to_string().as_bytes())?;
    let (dir, store) = store(ImageStoreConfig::default())?;

    let image = store.pull(&registry.reference("zstd:v1"), None).await?;
    let manifest = manifest_json(dir.path(), &image.manifest_digest.to_string())?;
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    assert_eq!(fs::metadata(image.layers[0].join("bin/busybox"))?.len(), fs::metadata(BUSYBOX)?.len());

    let image = store.pull(&registry.reference("plain:v1"), None).await?;
    let manifest = manifest_json(dir.path(), &image.manifest_digest.to_string())?;
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar");
    assert_eq!(fs::read(image.layers[0].join("plain"))?, b"yes");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_resolves_to_linux_amd64() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let mut layout = OciLayout::create(dir.path())?;
    let arch_layer = |arch: &str| LayerBuilder::new().file("arch", arch.as_bytes(), 0o644).build();
    let amd64 = layout.add_image(None, &[busybox_layer()?, arch_layer("amd64")], &ImageSpec::default())?;
    let arm64_spec = ImageSpec { architecture: "arm64".into(), ..Default::default() };
    let arm64 = layout.add_image(None, &[arch_layer("arm64")], &arm64_spec)?;
    let index = layout.add_index("multi", &[(arm64.clone(), "arm64"), (amd64.clone(), "amd64")])?;
    layout.add_index("armonly", &[(arm64, "arm64")])?;
    registry.push_with(&layout, "multi", "multi:v1", &["--all"])?;
    registry.push_with(&layout, "armonly", "multi:arm", &["--all"])?;
    let (_dir, store) = store(ImageStoreConfig::default())?;

    let image = store.pull(&registry.reference("multi:v1"), None).await?;
    assert_eq!(fs::read(image.layers[1].join("arch"))?, b"amd64");
    assert_eq!(image.digest.to_string(), index.digest, "the tag's digest is the index's");
    assert_eq!(image.manifest_digest.to_string(), amd64.digest);

    let err = store.pull(&registry.reference("multi:arm"), None).await.expect_err("no amd64");
    assert!(matches!(err, ImageError::NoMatchingPlatform { .. }), "{err:?}");
    assert!(err.to_string().contains("linux/arm64"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start_with_basic_auth("berth", "s3cret-pw")?;
    push_busybox(&registry, "private:v1")?;
    let reference = registry.reference("private:v1");
    let (_dir, store) = store(ImageStoreConfig::default())?;

    let anonymous = store.pull(&reference, None).await.expect_err("needs credentials");
    assert!(matches!(anonymous, ImageError::Unauthorized { .. }), "{anonymous:?}");

    let wrong = Credentials::new("berth", "wrong-password-42");
    let err = store.pull(&reference, Some(&wrong)).await.expect_err("wrong password");
    assert!(matches!(err, ImageError::Unauthorized { .. }), "{err:?}");
    let shown = format!("{} / {:?} / {}", err, err, err.report());
    assert!(!shown.contains("wrong-password-42"), "the password leaked: {shown}");

    let right = Credentials::new("berth", "s3cret-pw");
    let image = store.pull(&reference, Some(&right)).await?;
    assert!(image.layers[0].join("bin/busybox").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start_with_token_auth("berth", "t0ken-pw")?;
    push_busybox(&registry, "team/private:v1")?;
    let reference = registry.reference("team/private:v1");
    let (_dir, store) = store(ImageStoreConfig::default())?;

    let anonymous = store.pull(&reference, None).await.expect_err("the token server wants credentials");
    assert!(matches!(anonymous, ImageError::Unauthorized { .. }), "{anonymous:?}");
    let wrong = Credentials::new("berth", "not-the-t0ken-pw");
    let err = store.pull(&reference, Some(&wrong)).await.expect_err("wrong password");
    assert!(matches!(err, ImageError::Unauthorized { .. }), "{err:?}");
    assert!(!err.report().contains("not-the-t0ken-pw"), "{}", err.report());

    let image = store.pull(&reference, Some(&Credentials::new("berth", "t0ken-pw"))).await?;
    assert!(image.layers[0].join("bin/busybox").exists());
    let again = store.pull(&reference, Some(&Credentials::new("berth", "t0ken-pw"))).await?;
    assert_eq!(again.digest, image.digest);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tag_and_unknown_repository_are_told_apart() -> TestResult {
    if !registry_tools_available(false) {
        return Ok(());
    }
    let registry = Registry::start()?;
    push_busybox(&registry, "busybox:v1")?;
    let (_dir, store) = store(ImageStoreConfig::default())?;

    let tag = store.pull(&registry.reference("busybox:nope"), None).await.expect_err("unknown tag");
    assert!(matches!(tag, ImageError::ManifestNotFound { .. }), "{tag:?}");
    let repo = store.pull(&registry.reference("nothing/here:v1"), None).await.expect_err("unknown repo");
    assert!(matches!(repo, ImageError::RepositoryNotFound { ref repository, .. } if repository == "nothing/here"), "{repo:?}");
    assert!(tag.is_not_found() && repo.is_not_found());
    assert!(repo.to_string().contains("nothing/here"), "{repo}");
    Ok(())
}

/// Pushes busybox as `name` (tag v1); its one layer's digest and the file
/// the registry keeps it in.
fn push_one_layer(registry: &Registry, name: &str) -> anyhow::Result<(String, std::path::PathBuf)> {
    let dir = tempfile::tempdir()?;
    let mut layout = OciLayout::create(dir.path())?;
    let manifest = layout.add_image(Some("v1"), &[busybox_layer()?], &ImageSpec::default())?;
    registry.push(&layout, "v1", name)?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("blobs/sha256").join(&manifest.digest[7..]))?)?;
    let layer_digest = manifest["layers"][0]["digest"].as_str().expect("layer digest").to_owned();
    let stored = registry.blob_file(&layer_digest);
    Ok((layer_digest, stored))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_fails_verification_and_leaves_nothing() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    let (layer_digest, stored) = push_one_layer(&registry, "bad:v1")?;
    let mut bytes = fs::read(&stored)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&stored, bytes)?;
    let (root, store) = store(ImageStoreConfig::default())?;

    let err = store.pull(&registry.reference("bad:v1"), None).await.expect_err("tampered");

    assert!(matches!(err, ImageError::DigestMismatch { ref digest, .. } if *digest == layer_digest), "{err:?}");
    assert!(store.get(&registry.reference("bad:v1")).await?.is_none());
    let images = root.path().join("images");
    assert!(!images.join("blobs/sha256").join(&layer_digest[7..]).exists());
    assert_eq!(fs::read_dir(images.join("layers/sha256"))?.count(), 0);
    assert_eq!(fs::read_dir(images.join("tmp"))?.count(), 0, "temporary files cleaned up");
    Ok(())
}

/// A layer is unpacked while it downloads: a registry that serves a
/// well-formed layer other than the one the digest names gets it unpacked
/// in full before the download's digest check fails, and nothing of it
/// may stay in the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_layer_unpacked_while_streaming_is_thrown_away() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    let (layer_digest, stored) = push_one_layer(&registry, "swapped:v1")?;
    let size = fs::metadata(&stored)?.len() as usize;
    // Another valid tar, padded with zero blocks (tar's end) to the size
    // the registry has on record.
    let mut other = LayerBuilder::new().file("planted", b"not from this image", 0o644).build();
    assert!(other.len() <= size, "the replacement fits");
    other.resize(size, 0);
    fs::write(&stored, other)?;
    let (root, store) = store(ImageStoreConfig::default())?;

    let err = store.pull(&registry.reference("swapped:v1"), None).await.expect_err("swapped");

    assert!(matches!(err, ImageError::DigestMismatch { ref digest, .. } if *digest == layer_digest), "{err:?}");
    assert!(store.get(&registry.reference("swapped:v1")).await?.is_none());
    let images = root.path().join("images");
    assert_eq!(fs::read_dir(images.join("layers/sha256"))?.count(), 0, "no layer kept");
    assert_eq!(fs::read_dir(images.join("tmp"))?.count(), 0, "the unpacked tree is removed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_download_each_blob_once() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let mut layout = OciLayout::create(dir.path())?;
    let base = busybox_layer()?;
    let app = |name: &str| LayerBuilder::new().file("app", name.as_bytes(), 0o644).build();
    layout.add_image(Some("one"), &[base.clone(), app("one")], &ImageSpec::default())?;
    layout.add_image(Some("two"), &[base, app("two")], &ImageSpec::default())?;
    registry.push(&layout, "one", "one:v1")?;
    registry.push(&layout, "two", "two:v1")?;
    let (_root, store) = store(ImageStoreConfig::default())?;
    let (one, two) = (registry.reference("one:v1"), registry.reference("two:v1"));

    let pulls = (0..10).map(|i| store.pull(if i % 2 == 0 { &one } else { &two }, None));
    let images = futures_util::future::try_join_all(pulls).await?;

    assert!(images.iter().all(|i| i.layers[0] == images[0].layers[0]), "one shared base layer dir");
    let blob_gets: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|(m, p, s)| m == "GET" && *s == 200 && p.contains("/blobs/"))
        .map(|(_, p, _)| p.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let mut unique = blob_gets.clone();
    unique.sort();
    unique.dedup();
    // Two configs, two app layers, one base layer: five blobs, each fetched once.
    assert_eq!(unique.len(), 5, "{blob_gets:?}");
    assert_eq!(blob_gets.len(), 5, "a blob was downloaded twice: {blob_gets:?}");
    let manifest_gets = registry.requests().iter().filter(|(m, p, _)| m == "GET" && p.contains("/manifests/")).count();
    assert_eq!(manifest_gets, 2, "one manifest GET per image");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_is_a_network_error_but_a_cached_image_still_serves() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    push_busybox(&registry, "busybox:v1")?;
    let reference = registry.reference("busybox:v1");
    let (_root, store) = store(ImageStoreConfig::default())?;
    let cached = store.pull(&reference, None).await?;
    let other = registry.reference("other:v1");
    drop(registry);

    let err = store.pull(&other, None).await.expect_err("registry is gone");
    assert!(matches!(err, ImageError::Network { .. }), "{err:?}");
    let again = store.pull(&reference, None).await?;
    assert_eq!(again.digest, cached.digest);
    Ok(())
}

/// An image imported under a registry's name is the user's own: a pull
/// of that name never asks the registry (tests and users with no network
/// must not send traffic off the machine for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_image_is_never_checked_against_a_registry() -> TestResult {
    if !registry_tools_available(true) {
        return Ok(());
    }
    let registry = Registry::start()?;
    push_busybox(&registry, "app:v1")?;
    let reference = registry.reference("app:v1");
    let (_dir, store) = store(ImageStoreConfig::default())?;
    let root = tempfile::tempdir()?;
    fs::create_dir_all(root.path().join("etc"))?;
    fs::write(root.path().join("etc/mine"), b"imported\n")?;
    let imported = store.import_dir(root.path(), &reference).await?;

    let before = registry.requests().len();
    let got = store.pull(&reference, None).await?;
    assert_eq!(registry.requests().len(), before, "the registry was asked about an imported image");
    assert_eq!(got.digest, imported.digest, "the imported image serves, not the registry's");
    Ok(())
}
