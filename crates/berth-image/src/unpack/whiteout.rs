//! OCI/AUFS whiteouts turned into overlayfs's own form, so that a stack
//! of unpacked layers mounted as overlay lower dirs hides what it should:
//! `.wh.NAME` becomes a 0/0 character device NAME, and `.wh..wh..opq`
//! becomes the `trusted.overlay.opaque=y` attribute on its directory.

use std::path::Path;

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::{UnpackError, paths};

const PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// Overlay's own attributes: set only by us, never taken from a layer.
pub(super) const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// If `rel` is a whiteout entry, applies it under `root` and returns true.
pub(super) fn apply(root: &Path, rel: &Path) -> Result<bool, UnpackError> {
    let Some(name) = rel.file_name().and_then(|n| n.to_str()) else { return Ok(false) };
    if !name.starts_with(PREFIX) {
        return Ok(false);
    }
    paths::prepare_parents(root, rel)?;
    let dir = root.join(rel.parent().unwrap_or(Path::new("")));
    if name == OPAQUE {
        let opaque = format!("{OVERLAY_XATTR_PREFIX}opaque");
        xattr::set(&dir, opaque, b"y").map_err(UnpackError::io("mark opaque", &dir))?;
    } else if !name.starts_with(".wh..wh.") {
        // `.wh..wh.*` other than the opaque marker is AUFS bookkeeping: dropped.
        let target = dir.join(&name[PREFIX.len()..]);
        paths::remove_existing(&target)?;
        mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| UnpackError::io("create whiteout", &target)(e.into()))?;
    }
    Ok(true)
}
