//! Unpacking a layer tar into a directory that overlayfs can use as a
//! lower layer: whiteouts become overlay whiteouts, modes, owners,
//! symlinks, hard links and extended attributes are kept, and no entry can
//! land outside the directory.

mod compression;
mod entry;
mod paths;
mod whiteout;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};

pub(crate) use compression::{Compression, decompress};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("entry {path:?} points outside the layer")]
    Escape { path: String },
    #[error("entry {path:?} goes through the symlink {symlink:?}")]
    ThroughSymlink { path: String, symlink: String },
    #[error("entry {path:?} is below {parent:?}, which is not a directory")]
    NotADirectory { path: String, parent: String },
    #[error("cannot read the layer tar")]
    Read(#[source] io::Error),
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io { op, path, source }
    }
}

/// How an archive's entries become files.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    /// Layer semantics: `.wh.` entries become overlay whiteouts, owners,
    /// device nodes and extended attributes are applied. Off for plain
    /// archives such as a `docker save` tarball.
    pub layer: bool,
}

/// Unpacks the (possibly compressed) tar `blob` into `dest`, an empty
/// directory, and returns the digest of the uncompressed tar (the DiffID).
pub(crate) fn unpack(blob: impl Read, dest: &Path, options: Options) -> Result<Digest, UnpackError> {
    let mut tar = tar::Archive::new(HashingReader::new(decompress(blob).map_err(UnpackError::Read)?));
    let mut dirs = Vec::new();
    for item in tar.entries().map_err(UnpackError::Read)? {
        let mut item = item.map_err(UnpackError::Read)?;
        if let Some(dir) = entry::apply(dest, &mut item, options)? {
            dirs.push(dir);
        }
    }
    // Directory times last: creating their children changed them.
    for (path, mtime) in dirs.iter().rev() {
        entry::set_mtime(path, *mtime)?;
    }
    // The DiffID covers the whole stream, the tar's end padding included.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(rest.finish())
}

/// Creates `dest` and unpacks the file `blob` into it; removes it again
/// on failure.
pub(crate) fn unpack_into_new(blob: &Path, dest: &Path, options: Options) -> Result<Digest, UnpackError> {
    let file = fs::File::open(blob).map_err(UnpackError::io("open", blob))?;
    unpack_new_from(io::BufReader::new(file), dest, options)
}

/// Creates `dest` and unpacks the stream `blob` into it (read to its end);
/// removes it again on failure.
pub(crate) fn unpack_new_from(blob: impl Read, dest: &Path, options: Options) -> Result<Digest, UnpackError> {
    fs::create_dir(dest).map_err(UnpackError::io("create", dest))?;
    let result = unpack(blob, dest, options);
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}
