//! One tar entry made into a file, directory, link or device node.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt as _, lchown, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::{Options, UnpackError, paths, whiteout};

/// What the header says about an entry, read before its body.
struct Meta {
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    link: Option<PathBuf>,
    device: (u32, u32),
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Applies one entry under `root`. Returns a directory and its mtime when
/// the time must be set after its children are written.
pub(super) fn apply<R: Read>(
    root: &Path,
    item: &mut tar::Entry<'_, R>,
    options: Options,
) -> Result<Option<(PathBuf, i64)>, UnpackError> {
    let raw = item.path().map_err(UnpackError::Read)?.into_owned();
    let Some(rel) = paths::clean(&raw)? else { return Ok(None) };
    if options.layer && whiteout::apply(root, &rel)? {
        return Ok(None);
    }
    let meta = read_meta(item)?;
    paths::prepare_parents(root, &rel)?;
    let path = root.join(&rel);
    match meta.kind {
        EntryType::Directory => {
            if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                paths::remove_existing(&path)?;
                fs::create_dir(&path).map_err(UnpackError::io("create", &path))?;
            }
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            paths::remove_existing(&path)?;
            let mut file = fs::File::create_new(&path).map_err(UnpackError::io("create", &path))?;
            io::copy(item, &mut file).map_err(UnpackError::io("write", &path))?;
        }
        EntryType::Symlink => {
            let target = meta.link.as_deref().ok_or_else(|| missing_link(&raw))?;
            paths::remove_existing(&path)?;
            symlink(target, &path).map_err(UnpackError::io("create symlink", &path))?;
        }
        EntryType::Link => {
            let target = meta.link.as_deref().ok_or_else(|| missing_link(&raw))?;
            let target = paths::clean(target)?.ok_or_else(|| missing_link(&raw))?;
            paths::prepare_parents(root, &target)?;
            paths::remove_existing(&path)?;
            fs::hard_link(root.join(&target), &path).map_err(UnpackError::io("create hard link", &path))?;
            return Ok(None); // shares the target's inode and metadata
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo if options.layer => {
            let kind = match meta.kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            paths::remove_existing(&path)?;
            let dev = makedev(meta.device.0.into(), meta.device.1.into());
            mknod(&path, kind, Mode::empty(), dev).map_err(|e| UnpackError::io("create device", &path)(e.into()))?;
        }
        other => {
            tracing::debug!(path = %rel.display(), kind = ?other, "skipped tar entry");
            return Ok(None);
        }
    }
    set_metadata(&path, &meta, options)?;
    if meta.kind == EntryType::Directory {
        return Ok(Some((path, meta.mtime)));
    }
    set_mtime(&path, meta.mtime)?;
    Ok(None)
}

fn read_meta<R: Read>(item: &mut tar::Entry<'_, R>) -> Result<Meta, UnpackError> {
    let header = item.header();
    let bad = |e: io::Error| UnpackError::Read(e);
    let mut meta = Meta {
        kind: header.entry_type(),
        mode: header.mode().map_err(bad)? & 0o7777,
        uid: header.uid().map_err(bad)?,
        gid: header.gid().map_err(bad)?,
        mtime: header.mtime().map_or(0, |t| i64::try_from(t).unwrap_or(0)),
        link: item.link_name().map_err(bad)?.map(|l| l.into_owned()),
        device: (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        ),
        xattrs: Vec::new(),
    };
    if let Some(pax) = item.pax_extensions().map_err(bad)? {
        for ext in pax {
            let ext = ext.map_err(bad)?;
            let Ok(key) = ext.key() else { continue };
            let number = || ext.value().ok().and_then(|v| v.parse::<u64>().ok());
            match key {
                "uid" => meta.uid = number().unwrap_or(meta.uid),
                "gid" => meta.gid = number().unwrap_or(meta.gid),
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        meta.xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

fn set_metadata(path: &Path, meta: &Meta, options: Options) -> Result<(), UnpackError> {
    let is_symlink = meta.kind == EntryType::Symlink;
    let mut mode = meta.mode;
    if options.layer {
        // Owner first: chown clears set-id bits, chmod restores them.
        let id = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        lchown(path, Some(id(meta.uid)), Some(id(meta.gid))).map_err(UnpackError::io("set the owner of", path))?;
        for (name, value) in &meta.xattrs {
            if name.starts_with(whiteout::OVERLAY_XATTR_PREFIX) {
                tracing::warn!(path = %path.display(), name, "ignored an overlay attribute found in a layer");
            } else if let Err(e) = xattr::set(path, name, value) {
                tracing::warn!(path = %path.display(), name, error = %e, "cannot set extended attribute");
            }
        }
    } else if meta.kind == EntryType::Directory {
        mode |= 0o700; // a plain archive is read back by this process
    }
    if !is_symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(UnpackError::io("set the mode of", path))?;
    }
    Ok(())
}

pub(super) fn set_mtime(path: &Path, mtime: i64) -> Result<(), UnpackError> {
    let time = TimeSpec::new(mtime, 0);
    utimensat(AT_FDCWD, path, &time, &time, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| UnpackError::io("set the time of", path)(e.into()))
}

fn missing_link(raw: &Path) -> UnpackError {
    UnpackError::Read(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("link entry {} has no target", raw.display()),
    ))
}
