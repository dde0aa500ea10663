//! Task-role credentials, as Fargate gives them: a task whose definition
//! (or RunTask's overrides) names a `taskRoleArn` gets
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/<id>` in every
//! container, and any SDK's container-credentials provider GETs
//! `http://169.254.170.2<that path>` for temporary credentials of the
//! role (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`,
//! `RoleArn`).
//!
//! Where `169.254.170.2:80` is: the firewall DNATs TCP from Berth's
//! bridges to [`LINK_LOCAL_ADDR`]`:`[`LINK_LOCAL_PORT`] to the task's own
//! subnet gateway at the metadata endpoint's port
//! ([`crate::metadata::METADATA_PORT`]), where [`crate::metadata`] answers
//! `/v2/credentials/{id}` too. A DNAT to a local address rather than the
//! address on every bridge: nothing on the host answers at 169.254.170.2
//! itself (so the host's own link-local traffic is untouched, and a host
//! that is itself on ECS keeps its real endpoint), and a redirected
//! packet is delivered locally, so it never leaves the machine; the input
//! chain admits it exactly as it admits the metadata port.
//!
//! The id is `HMAC-SHA256(node key, task ARN)`, 128 bits in hex: not
//! guessable without the node's key (kept 0600 in the data dir), and the
//! same after an agent restart, so containers started before it keep a
//! working URI without the id being stored anywhere. The endpoint answers
//! only the task whose address the request comes from, and only with that
//! task's id. Neither the id nor the credentials are logged.
//!
//! Credentials are issued by the control plane (session name = the task
//! id, as ECS does) for [`SESSION_SECONDS`], cached per task and issued
//! again when less than [`REFRESH_BEFORE_SECS`] remain: a caller never
//! gets credentials that expire within that margin.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Mutex;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::plane::RoleCredentials;

/// The address SDKs resolve `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` against.
pub const LINK_LOCAL_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
/// Its port.
pub const LINK_LOCAL_PORT: u16 = 80;
/// The environment variable naming the credentials path.
pub const RELATIVE_URI_VAR: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
/// How long one issue of task-role credentials lasts: 6 hours, as ECS's
/// task-role sessions do.
pub const SESSION_SECONDS: u32 = 6 * 3600;
/// Credentials with less than this left are issued again (15 minutes, as
/// SDKs refresh container credentials 15 minutes before they expire).
pub const REFRESH_BEFORE_SECS: i64 = 15 * 60;

/// The node's key for credentials ids. Its Debug shows nothing.
#[derive(Clone)]
pub struct EndpointKey([u8; 32]);

impl std::fmt::Debug for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointKey(<redacted>)")
    }
}

impl EndpointKey {
    /// The key in `path` (32 bytes), made (random, 0600) if there is none.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a 32-byte key", path.display()))
                })?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let tmp = path.with_extension("tmp");
                let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
                f.write_all(&key)?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)?;
                Ok(Self(key))
            }
            Err(e) => Err(e),
        }
    }

    #[cfg(test)]
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The credentials id of a task: 32 hex digits.
    pub fn id(&self, task_arn: &str) -> String {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"berth task credentials\0");
        mac.update(task_arn.as_bytes());
        let tag = mac.finalize().into_bytes();
        tag[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `id` is the task's, compared in constant time.
    pub fn matches(&self, task_arn: &str, id: &str) -> bool {
        let want = self.id(task_arn);
        want.len() == id.len() && want.bytes().zip(id.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The value of [`RELATIVE_URI_VAR`] for a credentials id.
pub fn relative_uri(id: &str) -> String {
    format!("/v2/credentials/{id}")
}

/// Whether credentials expiring at `expiration` must be issued again at
/// `now` (both Unix seconds).
pub fn needs_refresh(expiration: i64, now: i64) -> bool {
    expiration - now < REFRESH_BEFORE_SECS
}

/// The credentials endpoint's answer, as the ECS agent writes it.
pub fn response_json(c: &RoleCredentials) -> serde_json::Value {
    serde_json::json!({
        "RoleArn": c.role_arn,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "Token": c.session_token,
        "Expiration": iso8601(c.expiration),
    })
}

/// `2026-12-04T07:00:00Z`.
fn iso8601(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&format).unwrap_or_default()
}

/// Issued credentials by task ARN, for the role they were issued for.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<String, RoleCredentials>>,
}

impl Cache {
    /// The task's cached credentials for `role_arn`, if still good at `now`.
    pub fn get(&self, task_arn: &str, role_arn: &str, now: i64) -> Option<RoleCredentials> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(task_arn).filter(|c| c.role_arn == role_arn && !needs_refresh(c.expiration, now)).cloned()
    }

    pub fn put(&self, task_arn: &str, credentials: RoleCredentials) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(task_arn.to_owned(), credentials);
    }

    /// Forgets the tasks not in `live`.
    pub fn retain(&self, live: &dyn Fn(&str) -> bool) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|arn, _| live(arn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(expiration: i64) -> RoleCredentials {
        RoleCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: "t0ken".into(),
            expiration,
            role_arn: "arn:aws:iam::000000000000:role/app".into(),
        }
    }

    #[test]
    fn ids_are_per_task_and_key_and_stable() {
        let key = EndpointKey::from_bytes([7; 32]);
        let a = key.id("arn:aws:ecs:us-east-1:000000000000:task/default/a");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, key.id("arn:aws:ecs:us-east-1:000000000000:task/default/a"), "stable across restarts");
        assert_ne!(a, key.id("arn:aws:ecs:us-east-1:000000000000:task/default/b"));
        assert_ne!(a, EndpointKey::from_bytes([8; 32]).id("arn:aws:ecs:us-east-1:000000000000:task/default/a"));
        assert!(key.matches("arn:aws:ecs:us-east-1:000000000000:task/default/a", &a));
        assert!(!key.matches("arn:aws:ecs:us-east-1:000000000000:task/default/b", &a));
        assert!(!key.matches("arn:aws:ecs:us-east-1:000000000000:task/default/a", &a[..31]));
        assert_eq!(relative_uri(&a), format!("/v2/credentials/{a}"));
        assert_eq!(format!("{key:?}"), "EndpointKey(<redacted>)");
    }

    #[test]
    fn the_key_is_made_once_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.key");
        let first = EndpointKey::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = EndpointKey::load_or_create(&path).unwrap();
        assert_eq!(first.id("t"), again.id("t"));
        std::fs::write(&path, b"short").unwrap();
        assert!(EndpointKey::load_or_create(&path).is_err());
    }

    #[test]
    fn credentials_are_issued_again_with_less_than_15_minutes_left() {
        let now = 1_000_000;
        assert!(!needs_refresh(now + 6 * 3600, now));
        assert!(!needs_refresh(now + REFRESH_BEFORE_SECS, now));
        assert!(needs_refresh(now + REFRESH_BEFORE_SECS - 1, now));
        assert!(needs_refresh(now - 1, now), "never served expired");
        let cache = Cache::default();
        cache.put("task", creds(now + 3600));
        let role = "arn:aws:iam::000000000000:role/app";
        assert!(cache.get("task", role, now).is_some());
        assert!(cache.get("task", role, now + 3600 - REFRESH_BEFORE_SECS + 1).is_none(), "rotated before expiry");
        assert!(cache.get("task", "arn:aws:iam::000000000000:role/other", now).is_none(), "another role");
        cache.retain(&|arn| arn != "task");
        assert!(cache.get("task", role, now).is_none(), "a stopped task's credentials are forgotten");
    }

    #[test]
    fn the_answer_has_the_ecs_agents_members_and_an_iso_expiration() {
        let v = response_json(&creds(1_796_371_200));
        assert_eq!(v["Expiration"], "2026-12-04T08:00:00Z");
        assert_eq!(v["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(v["Token"], "t0ken");
        assert_eq!(v["RoleArn"], "arn:aws:iam::000000000000:role/app");
        assert!(!format!("{:?}", creds(0)).contains("s3cr3t"), "Debug hides the secret");
        assert!(!format!("{:?}", creds(0)).contains("t0ken"), "Debug hides the token");
    }
}
