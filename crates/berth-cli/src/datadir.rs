//! The data dir: its exclusive lock, and the AWS credentials and config
//! files Berth writes there for clients.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use nix::fcntl::{Flock, FlockArg};

/// The data dir when neither `--data-dir` nor `BERTH_DATA_DIR` is given:
/// `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".local/share/berth")
}

/// An exclusive hold on a data dir, for as long as the value lives.
pub struct DataDir {
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl DataDir {
    /// Creates the dir (mode 0700) if needed and locks it. A second
    /// `berth up` on the same dir is refused, naming the holder's PID.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("cannot create data dir {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions of {}", path.display()))?;
        let lock_path = path.join("berth.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                bail!(
                    "data dir {} is in use by another berth (pid {}); stop it first or choose another --data-dir",
                    path.display(),
                    holder.trim()
                );
            }
        };
        lock.set_len(0)?;
        lock.rewind()?;
        write!(lock, "{}", std::process::id())?;
        Ok(Self { path: path.to_owned(), _lock: lock })
    }

    /// This host's node id, made once and kept in `DATA_DIR/node-id`.
    pub fn node_id(&self) -> anyhow::Result<String> {
        let path = self.path.join("node-id");
        match std::fs::read_to_string(&path) {
            Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
            _ => {
                let id = format!("node-{:016x}", rand::random::<u64>());
                write_private(&path, &id)?;
                Ok(id)
            }
        }
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.path.join("credentials")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config")
    }

    /// Writes `credentials` in the AWS shared-credentials format, mode 0600.
    pub fn write_credentials(&self, access_key_id: &str, secret: &str) -> anyhow::Result<()> {
        let text = format!("[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n");
        write_private(&self.credentials_path(), &text)
    }

    /// Writes `config` (profile `default`: region and endpoint), mode 0600.
    pub fn write_config(&self, region: &str, endpoint: &str) -> anyhow::Result<()> {
        // Every operation is served at the one endpoint: AWS's per-operation
        // host prefixes (Cloud Map's DiscoverInstances on `data-`) name no
        // host here, so the SDKs are told not to add them.
        let text = format!(
            "[default]\nregion = {region}\nendpoint_url = {endpoint}\noutput = json\ndisable_host_prefix_injection = true\n"
        );
        write_private(&self.config_path(), &text)
    }
}

/// Writes a file readable only by its owner, replacing it atomically.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).err().expect("second open must fail").to_string();
        assert!(err.contains("in use by another berth"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        assert!(DataDir::open(dir.path()).is_ok(), "the lock is released on drop");
    }

    #[test]
    fn credentials_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::open(dir.path()).unwrap();
        d.write_credentials("AKIDTEST", "secret").unwrap();
        let mode = std::fs::metadata(d.credentials_path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(d.credentials_path()).unwrap();
        assert!(text.contains("aws_access_key_id = AKIDTEST"));
    }
}
