//! SSM Parameter Store parameters and Secrets Manager secrets as Berth
//! stores them. A SecureString's value and every secret value are kept
//! only [`Sealed`] (encrypted by `berth-secrets`, which alone holds the
//! key); plain String and StringList values are kept as given. Nothing
//! here encrypts, decrypts or does I/O, and no `Debug` shows a value.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An encrypted value: a nonce, the ciphertext and its tag, as
/// `berth-secrets` writes them. Stored as lowercase hex; its `Debug`
/// shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("a sealed value is not hex");
        if text.len() % 2 != 0 {
            return Err(bad());
        }
        (0..text.len())
            .step_by(2)
            .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(bad))
            .collect::<Result<Vec<u8>, D::Error>>()
            .map(Sealed)
    }
}

/// The three parameter types, by SSM's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::StringList => "StringList",
            Self::SecureString => "SecureString",
        }
    }
}

/// A parameter version's value: in the clear (String, StringList) or
/// sealed (SecureString).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ParameterValue {
    Plain(String),
    Sealed(Sealed),
}

impl std::fmt::Debug for ParameterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(v) => write!(f, "Plain({} chars)", v.chars().count()),
            Self::Sealed(s) => s.fmt(f),
        }
    }
}

/// One version of a parameter, with what PutParameter gave for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterVersion {
    /// 1, 2, … (never reused, even after older versions are dropped).
    pub version: i64,
    pub r#type: ParameterType,
    pub value: ParameterValue,
    /// The KMS key a SecureString names (recorded; Berth's own key
    /// encrypts). `None` for the other types.
    pub key_id: Option<String>,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    /// `Standard`, `Advanced` (Intelligent-Tiering picks one of them).
    pub tier: String,
    pub data_type: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Epoch seconds.
    pub last_modified_date: f64,
    pub last_modified_user: String,
}

/// A parameter: its versions (oldest first) and its tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    pub name: String,
    pub versions: Vec<ParameterVersion>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Parameter {
    /// The newest version (a stored parameter has at least one).
    pub fn latest(&self) -> Option<&ParameterVersion> {
        self.versions.last()
    }

    /// The parent path the parameter is listed under by path: `/a/b` for
    /// `/a/b/c`, `/` for `/c` and for names outside a hierarchy.
    pub fn path(&self) -> &str {
        match self.name.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.name[..i],
        }
    }

    /// `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME` (one slash: a
    /// hierarchical name's leading one is not repeated).
    pub fn arn(&self, region: &str, account_id: &str) -> String {
        parameter_arn(region, account_id, &self.name)
    }
}

pub fn parameter_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:ssm:{region}:{account_id}:parameter/{}", name.strip_prefix('/').unwrap_or(name))
}

/// A secret version's value, sealed: SecretString or SecretBinary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretValue {
    String(Sealed),
    Binary(Sealed),
}

/// One version of a secret and the staging labels on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub version_id: String,
    pub value: SecretValue,
    /// `AWSCURRENT`, `AWSPREVIOUS`, or the caller's own labels.
    pub stages: Vec<String>,
    /// Epoch seconds.
    pub created_date: f64,
}

/// A secret: its metadata and versions (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`.
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// The KMS key named at creation or update (recorded only).
    pub kms_key_id: Option<String>,
    /// In the order they were given.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    pub created_date: f64,
    pub last_changed_date: f64,
    pub last_accessed_date: Option<f64>,
    /// When a DeleteSecret's recovery window ends; `Some` while the secret
    /// is marked for deletion.
    pub deleted_date: Option<f64>,
    pub versions: Vec<SecretVersion>,
}

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

impl Secret {
    /// The version carrying `stage`.
    pub fn version_with_stage(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.stages.iter().any(|s| s == stage))
    }

    pub fn version(&self, version_id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.version_id == version_id)
    }

    /// Adds `version` with the staging labels it carries (none given:
    /// AWSCURRENT), as PutSecretValue does: each label leaves whichever
    /// version had it, and the version that loses AWSCURRENT gets
    /// AWSPREVIOUS. Versions left with no label beyond the newest 100 are
    /// dropped.
    pub fn add_version(&mut self, mut version: SecretVersion) {
        if version.stages.is_empty() {
            version.stages.push(AWSCURRENT.to_owned());
        }
        if version.stages.iter().any(|s| s == AWSCURRENT) {
            for v in &mut self.versions {
                v.stages.retain(|s| s != AWSPREVIOUS);
                if v.stages.iter().any(|s| s == AWSCURRENT) {
                    v.stages.push(AWSPREVIOUS.to_owned());
                }
            }
        }
        for v in &mut self.versions {
            v.stages.retain(|s| !version.stages.contains(s));
        }
        self.versions.push(version);
        while self.versions.len() > 100 {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(i) => {
                    self.versions.remove(i);
                }
                None => break,
            }
        }
    }
}

/// The 6-character suffix Secrets Manager puts after a secret's name in
/// its ARN, from 6 random bytes.
pub fn secret_arn(region: &str, account_id: &str, name: &str, random: [u8; 6]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let suffix: String = random.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str) -> SecretVersion {
        SecretVersion { version_id: id.into(), value: SecretValue::String(Sealed(vec![1])), stages: vec![], created_date: 0.0 }
    }

    #[test]
    fn a_new_current_version_moves_the_stages() {
        let mut s = Secret {
            arn: "a".into(),
            name: "n".into(),
            description: None,
            kms_key_id: None,
            tags: vec![],
            created_date: 0.0,
            last_changed_date: 0.0,
            last_accessed_date: None,
            deleted_date: None,
            versions: vec![],
        };
        s.add_version(version("v1"));
        s.add_version(version("v2"));
        s.add_version(version("v3"));
        assert_eq!(s.version_with_stage(AWSCURRENT).map(|v| v.version_id.as_str()), Some("v3"));
        assert_eq!(s.version_with_stage(AWSPREVIOUS).map(|v| v.version_id.as_str()), Some("v2"));
        assert!(s.version("v1").is_some_and(|v| v.stages.is_empty()));
    }

    #[test]
    fn arns_and_paths() {
        assert_eq!(parameter_arn("r", "1", "/app/db"), "arn:aws:ssm:r:1:parameter/app/db");
        assert_eq!(parameter_arn("r", "1", "db"), "arn:aws:ssm:r:1:parameter/db");
        let p = Parameter { name: "/a/b/c".into(), versions: vec![], tags: BTreeMap::new() };
        assert_eq!(p.path(), "/a/b");
        let arn = secret_arn("r", "1", "db", [0, 1, 2, 3, 4, 61]);
        assert_eq!(arn, "arn:aws:secretsmanager:r:1:secret:db-abcde9");
    }

    #[test]
    fn debug_shows_no_value() {
        let v = ParameterValue::Plain("hunter2".into());
        assert!(!format!("{v:?}").contains("hunter2"));
        assert_eq!(format!("{:?}", Sealed(vec![1, 2, 3])), "Sealed(3 bytes)");
    }

    #[test]
    fn sealed_values_are_stored_as_hex() {
        let s = Sealed(vec![0, 1, 0xab, 0xff]);
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert_eq!(json, "\"0001abff\"");
        assert_eq!(serde_json::from_str::<Sealed>(&json).ok(), Some(s));
        assert!(serde_json::from_str::<Sealed>("\"0g\"").is_err());
        assert!(serde_json::from_str::<Sealed>("\"012\"").is_err());
    }
}
