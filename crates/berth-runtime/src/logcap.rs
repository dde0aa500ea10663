//! Caps a container's output files. The container's stdout and stderr
//! are the files themselves (opened with `O_APPEND`), so nothing sees its
//! writes: the shim looks at their sizes every [`CHECK_EVERY`] while the
//! container runs, and once more when it exits, and a file past the cap
//! is rotated as logrotate's `copytruncate` does — copied to `NAME.1`
//! (replacing the previous copy), then truncated in place. The writer's
//! next append lands at the new end, and the awslogs tailer, finding the
//! file shorter than what it shipped, starts again from its start.
//!
//! Documented losses: bytes written between the end of the copy and the
//! truncation are in neither file; lines not yet shipped by awslogs when
//! the file is rotated (at most a poll's worth, 200 ms, at the shipping
//! budget) stay in `NAME.1` unshipped. A file can pass the cap by what
//! the container writes in one [`CHECK_EVERY`], so on disk a stream
//! takes at most twice (cap + that slack).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the shim looks at a running container's output sizes.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The copy kept of a rotated file: `NAME.1`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Rotates `path` if it holds more than `max` bytes; returns whether it
/// did. A file not there yet is not an error.
pub fn cap(path: &Path, max: u64) -> io::Result<bool> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max {
        return Ok(false);
    }
    let copy = rotated(path);
    let mut tmp = copy.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::copy(path, &tmp)?;
    std::fs::rename(&tmp, &copy)?;
    std::fs::OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn a_file_past_the_cap_is_copied_then_emptied_and_its_writer_goes_on_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.log");
        assert!(!cap(&path, 10).unwrap(), "no file yet");
        let mut writer = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        writer.write_all(b"0123456789").unwrap();
        assert!(!cap(&path, 10).unwrap(), "at the cap is under it");
        writer.write_all(b"abc\n").unwrap();
        assert!(cap(&path, 10).unwrap());
        assert_eq!(std::fs::read(rotated(&path)).unwrap(), b"0123456789abc\n");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        writer.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"after\n", "appends land at the new end");
        writer.write_all(b"more than ten\n").unwrap();
        assert!(cap(&path, 10).unwrap());
        assert_eq!(std::fs::read(rotated(&path)).unwrap(), b"after\nmore than ten\n", "the copy is replaced");
        assert!(!dir.path().join("stdout.log.1.tmp").exists());
    }
}
