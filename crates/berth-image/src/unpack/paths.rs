//! Entry paths confined to the layer root.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};

use super::UnpackError;

/// The entry's path relative to the root: leading `/` and `.` dropped,
/// `..` refused. `None` for the root itself.
pub(super) fn clean(raw: &Path) -> Result<Option<PathBuf>, UnpackError> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(UnpackError::Escape { path: raw.display().to_string() }),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Makes sure every directory above `rel` exists under `root` as a real
/// directory (missing ones are created 0755), so that nothing written
/// below them can follow a symlink out of the root.
pub(super) fn prepare_parents(root: &Path, rel: &Path) -> Result<(), UnpackError> {
    let mut current = root.to_path_buf();
    let Some(parent) = rel.parent() else { return Ok(()) };
    for part in parent.components() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink { path: shown(rel), symlink: shown(strip(&current, root)) });
            }
            Ok(_) => return Err(UnpackError::NotADirectory { path: shown(rel), parent: shown(strip(&current, root)) }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(0o755).create(&current).map_err(UnpackError::io("create", &current))?;
            }
            Err(e) => return Err(UnpackError::io("inspect", &current)(e)),
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (a file, a symlink — not followed — or a
/// directory tree), if anything.
pub(super) fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(UnpackError::io("replace", path))
}

fn strip<'a>(path: &'a Path, root: &Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_root_and_dots_and_refuses_dotdot() {
        let ok = |s: &str| clean(Path::new(s)).ok().flatten();
        assert_eq!(ok("./bin/sh"), Some(PathBuf::from("bin/sh")));
        assert_eq!(ok("/etc//passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(ok("./"), None);
        assert!(clean(Path::new("a/../../etc")).is_err());
        assert!(clean(Path::new("../x")).is_err());
    }
}
