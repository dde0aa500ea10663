//! The cipher that seals secret values at rest, and its key file.
//!
//! XChaCha20-Poly1305 (the `chacha20poly1305` crate): a fresh random
//! 192-bit nonce per value (random nonces that long never collide in
//! practice), the record's identity as associated data ([`Aad`]) so a
//! sealed value copied to another record, version or name fails to open.
//! A sealed value is `FORMAT || nonce || ciphertext+tag`.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use berth_model::secrets::Sealed;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The key file's name in the data dir.
pub const KEY_FILE: &str = "secrets.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The first byte of every sealed value: its layout, for a later change.
const FORMAT: u8 = 1;

/// What a sealed value is bound to: the record (and version) it belongs
/// to. Opening it under any other identity fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(String);

impl Aad {
    /// A SecureString parameter's version.
    pub fn parameter(name: &str, version: i64) -> Self {
        Self(format!("ssm:parameter:{name}:{version}"))
    }

    /// A Secrets Manager secret's version.
    pub fn secret(arn: &str, version_id: &str) -> Self {
        Self(format!("secretsmanager:{arn}:{version_id}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    /// Wrong key, other identity, or the bytes were changed.
    #[error("the sealed value cannot be opened: it was changed, or sealed for another record or under another key")]
    Tampered,
    #[error("the sealed value is not in a format this Berth knows")]
    Format,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or create the secrets key {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the secrets key {path} is not {KEY_LEN} bytes: restore it from a backup (values sealed under it cannot be read without it)")]
    Length { path: PathBuf },
    #[error("the secrets key {path} is readable by others (mode {mode:o}): make it 0600")]
    Permissions { path: PathBuf, mode: u32 },
}

/// The key and the AEAD over it. Its `Debug` shows nothing of the key.
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<key redacted>)")
    }
}

impl Cipher {
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self { aead: XChaCha20Poly1305::new(Key::from_slice(key)) }
    }

    /// A cipher under a new random key that lives only in memory (tests,
    /// and API instances that keep no secret beyond their life).
    pub fn ephemeral() -> Self {
        let key = Zeroizing::new(rand::random::<[u8; KEY_LEN]>());
        Self::from_key(&key)
    }

    /// The key in `dir/secrets.key`, made (random, mode 0600) if there is
    /// none yet. A key file others can read, or of the wrong size, is
    /// refused rather than used.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let io = |source| KeyError::Io { path: path.clone(), source };
        let new_key = Zeroizing::new(rand::random::<[u8; KEY_LEN]>());
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut file) => {
                file.write_all(new_key.as_slice()).and_then(|()| file.sync_all()).map_err(io)?;
                return Ok(Self::from_key(&new_key));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let mut file = OpenOptions::new().read(true).open(&path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path, mode });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        file.read_to_end(&mut bytes).map_err(io)?;
        let key: Zeroizing<[u8; KEY_LEN]> =
            Zeroizing::new(bytes.as_slice().try_into().map_err(|_| KeyError::Length { path: path.clone() })?);
        Ok(Self::from_key(&key))
    }

    /// Seals `clear` for the record `aad` names.
    pub fn seal(&self, aad: &Aad, clear: &[u8]) -> Sealed {
        let nonce = rand::random::<[u8; NONCE_LEN]>();
        let payload = Payload { msg: clear, aad: aad.0.as_bytes() };
        // Encryption fails only for messages over 256 GiB.
        let ct = self.aead.encrypt(XNonce::from_slice(&nonce), payload).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Sealed(out)
    }

    /// Opens a value sealed for `aad`; wiped from memory when dropped.
    pub fn open(&self, aad: &Aad, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let bytes = sealed.0.as_slice();
        let (format, rest) = bytes.split_first().ok_or(CipherError::Format)?;
        if *format != FORMAT || rest.len() < NONCE_LEN {
            return Err(CipherError::Format);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let payload = Payload { msg: ct, aad: aad.0.as_bytes() };
        self.aead.decrypt(XNonce::from_slice(nonce), payload).map(Zeroizing::new).map_err(|_| CipherError::Tampered)
    }

    /// [`Self::open`] for a value sealed from text.
    pub fn open_string(&self, aad: &Aad, sealed: &Sealed) -> Result<Zeroizing<String>, CipherError> {
        let bytes = self.open(aad, sealed)?;
        std::str::from_utf8(&bytes).map(|s| Zeroizing::new(s.to_owned())).map_err(|_| CipherError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_for_its_record_and_unchanged() {
        let c = Cipher::ephemeral();
        let aad = Aad::parameter("/app/db", 1);
        let sealed = c.seal(&aad, b"hunter2");
        assert!(!sealed.0.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(c.open(&aad, &sealed).unwrap().as_slice(), b"hunter2");
        // Another version, another name, another key: refused.
        assert!(matches!(c.open(&Aad::parameter("/app/db", 2), &sealed), Err(CipherError::Tampered)));
        assert!(matches!(c.open(&Aad::secret("/app/db", "1"), &sealed), Err(CipherError::Tampered)));
        assert!(matches!(Cipher::ephemeral().open(&aad, &sealed), Err(CipherError::Tampered)));
        // Any flipped bit: refused.
        for i in 1..sealed.0.len() {
            let mut bad = sealed.clone();
            bad.0[i] ^= 0x01;
            assert!(matches!(c.open(&aad, &bad), Err(CipherError::Tampered)), "byte {i}");
        }
        assert!(matches!(c.open(&aad, &Sealed(vec![])), Err(CipherError::Format)));
        assert!(matches!(c.open(&aad, &Sealed(vec![9; 40])), Err(CipherError::Format)));
    }

    #[test]
    fn nonces_differ_per_value() {
        let c = Cipher::ephemeral();
        let aad = Aad::secret("arn", "v1");
        assert_ne!(c.seal(&aad, b"x"), c.seal(&aad, b"x"));
    }

    #[test]
    fn the_key_file_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cipher::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = a.seal(&Aad::parameter("p", 1), b"v");
        let b = Cipher::load_or_create(dir.path()).unwrap();
        assert_eq!(b.open(&Aad::parameter("p", 1), &sealed).unwrap().as_slice(), b"v");
        assert_eq!(format!("{b:?}"), "Cipher(<key redacted>)");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Cipher::load_or_create(dir.path()), Err(KeyError::Permissions { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(Cipher::load_or_create(dir.path()), Err(KeyError::Length { .. })));
    }
}
