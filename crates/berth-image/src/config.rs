//! The image store's configuration and registry credentials.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the store talks to registries. Shared by the config file and the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageStoreConfig {
    /// Registries reached over plain HTTP, as `host` or `host:port`, on
    /// top of loopback ones (localhost, 127.0.0.0/8, ::1), which always are.
    pub insecure_registries: Vec<String>,
    /// How long a cached image is used without asking its registry. 0 (the
    /// default) asks every time, with a HEAD of the tag's manifest.
    pub max_age_secs: u64,
    /// Layers of one image fetched at the same time.
    pub max_concurrent_downloads: usize,
}

impl Default for ImageStoreConfig {
    fn default() -> Self {
        Self { insecure_registries: Vec::new(), max_age_secs: 0, max_concurrent_downloads: 3 }
    }
}

impl ImageStoreConfig {
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_secs)
    }

    /// Whether `registry` (`host[:port]`) is spoken to over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback || self.insecure_registries.iter().any(|r| r == registry || r == host)
    }
}

/// `host` of `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

/// A registry user name and password (or token used as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into() }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        let config = ImageStoreConfig { insecure_registries: vec!["build.lan:5000".into(), "plain".into()], ..Default::default() };
        for r in ["localhost", "localhost:5000", "127.0.0.1:80", "127.9.0.1", "[::1]:5000", "::1", "build.lan:5000", "plain:1234"] {
            assert!(config.is_insecure(r), "{r}");
        }
        for r in ["docker.io", "build.lan", "build.lan:5001", "10.0.0.1:5000", "localhost.evil.com"] {
            assert!(!config.is_insecure(r), "{r}");
        }
    }

    #[test]
    fn config_denies_unknown_fields_and_defaults_the_rest() {
        let c: ImageStoreConfig = serde_json::from_str(r#"{"max_age_secs": 60}"#).expect("parses");
        assert_eq!(c.max_age(), Duration::from_secs(60));
        assert_eq!(c.max_concurrent_downloads, 3);
        assert!(serde_json::from_str::<ImageStoreConfig>(r#"{"max_age": 60}"#).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", Credentials::new("me", "hunter2"));
        assert!(shown.contains("me") && !shown.contains("hunter2"), "{shown}");
    }
}
