//! Finding a parameter's version and a secret's version as SSM's and
//! Secrets Manager's reads do, shared by the API and by [`crate::resolve`]:
//! parameter references (`name`, `name:version`, `name:label`, the ARN
//! with either), secret ids (name, full ARN, ARN without its random
//! suffix), and the choice of a secret version by id or staging label.

use berth_model::Account;
use berth_model::secrets::{AWSCURRENT, Parameter, ParameterValue, ParameterVersion, Secret, SecretValue, SecretVersion};
use berth_store::{SecretStore, StoreError, Versioned};
use zeroize::Zeroizing;

use crate::cipher::{Aad, Cipher, CipherError};

/// Which version of a parameter a reference asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

/// A parameter reference as GetParameter(s) take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterRef {
    /// The names it can mean, most likely first (an ARN drops a
    /// hierarchical name's leading slash, so `parameter/db` is `db` or `/db`).
    pub names: Vec<String>,
    pub selector: Selector,
    /// The text after the name (`:3`, `:prod`), as SSM echoes it in `Selector`.
    pub selector_text: Option<String>,
}

const PARAMETER_ARN_MARK: &str = ":parameter/";

/// Reads `name`, `name:3`, `name:label`, or
/// `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:selector]`.
pub fn parameter_ref(reference: &str) -> ParameterRef {
    let (names_part, from_arn) = match reference.strip_prefix("arn:").and_then(|_| reference.split_once(PARAMETER_ARN_MARK)) {
        Some((_, rest)) => (rest, true),
        None => (reference, false),
    };
    let (name, selector_text) = match names_part.split_once(':') {
        Some((n, s)) => (n, Some(s)),
        None => (names_part, None),
    };
    let names = if !from_arn {
        vec![name.to_owned()]
    } else if name.contains('/') {
        vec![format!("/{name}")]
    } else {
        vec![name.to_owned(), format!("/{name}")]
    };
    let selector = match selector_text {
        None => Selector::Latest,
        Some(s) => match s.parse::<i64>() {
            Ok(v) => Selector::Version(v),
            Err(_) => Selector::Label(s.to_owned()),
        },
    };
    ParameterRef { names, selector, selector_text: selector_text.map(|s| format!(":{s}")) }
}

/// The ARN of the parameter a reference names (selector dropped).
pub fn parameter_ref_arn(account: &Account, reference: &str) -> String {
    let r = parameter_ref(reference);
    let name = r.names.last().map_or(reference, String::as_str);
    berth_model::secrets::parameter_arn(&account.region, &account.account_id, name)
}

/// Why a parameter version cannot be read, as SSM says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterLookupError {
    #[error("Parameter {0} not found.")]
    NotFound(String),
    #[error("Systems Manager could not find version {version} of {name}. Verify the version and try again.")]
    VersionNotFound { name: String, version: String },
}

impl ParameterLookupError {
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "ParameterNotFound",
            Self::VersionNotFound { .. } => "ParameterVersionNotFound",
        }
    }
}

/// The stored parameter a reference names, if any.
pub async fn find_parameter(store: &dyn SecretStore, r: &ParameterRef) -> Result<Option<Versioned<Parameter>>, StoreError> {
    for name in &r.names {
        if let Some(p) = store.get_parameter(name).await? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The version a selector picks.
pub fn select_version<'a>(p: &'a Parameter, selector: &Selector) -> Result<&'a ParameterVersion, ParameterLookupError> {
    let found = match selector {
        Selector::Latest => p.latest(),
        Selector::Version(v) => p.versions.iter().find(|x| x.version == *v),
        Selector::Label(l) => p.versions.iter().find(|x| x.labels.iter().any(|y| y == l)),
    };
    found.ok_or_else(|| match selector {
        Selector::Latest => ParameterLookupError::NotFound(p.name.clone()),
        Selector::Version(v) => ParameterLookupError::VersionNotFound { name: p.name.clone(), version: v.to_string() },
        Selector::Label(l) => ParameterLookupError::VersionNotFound { name: p.name.clone(), version: l.clone() },
    })
}

/// A parameter version's value in the clear.
pub fn open_parameter(cipher: &Cipher, name: &str, v: &ParameterVersion) -> Result<Zeroizing<String>, CipherError> {
    match &v.value {
        ParameterValue::Plain(s) => Ok(Zeroizing::new(s.clone())),
        ParameterValue::Sealed(s) => cipher.open_string(&Aad::parameter(name, v.version), s),
    }
}

const SECRET_ARN_PREFIX: &str = "arn:aws:secretsmanager:";

/// The secret a SecretId names: its name, its full ARN, or its ARN
/// without the random suffix (a partial ARN).
pub async fn find_secret(store: &dyn SecretStore, id: &str) -> Result<Option<Versioned<Secret>>, StoreError> {
    if id.starts_with(SECRET_ARN_PREFIX) {
        if let Some(s) = store.get_secret(id).await? {
            return Ok(Some(s));
        }
        let Some((_, name)) = id.split_once(":secret:") else { return Ok(None) };
        let found = store.get_secret_by_name(name).await?;
        // A partial ARN must otherwise be this secret's own.
        return Ok(found.filter(|s| s.value.arn.starts_with(id)));
    }
    store.get_secret_by_name(id).await
}

/// Why a secret's value cannot be read, as Secrets Manager says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretLookupError {
    #[error("Secrets Manager can't find the specified secret.")]
    NotFound,
    #[error("You can't perform this operation on the secret because it was marked for deletion.")]
    MarkedForDeletion,
    #[error("Secrets Manager can't find the specified secret value for VersionId: {0}")]
    NoVersionId(String),
    #[error("Secrets Manager can't find the specified secret value for staging label: {0}")]
    NoStage(String),
    #[error("You provided a VersionId and a VersionStage that don't match the same version.")]
    Mismatch,
}

impl SecretLookupError {
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::NotFound | Self::NoVersionId(_) | Self::NoStage(_) => "ResourceNotFoundException",
            Self::MarkedForDeletion => "InvalidRequestException",
            Self::Mismatch => "InvalidParameterException",
        }
    }
}

/// The version GetSecretValue reads: by id, by stage, both (they must
/// agree), or AWSCURRENT.
pub fn select_secret_version<'a>(
    s: &'a Secret,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<&'a SecretVersion, SecretLookupError> {
    if s.deleted_date.is_some() {
        return Err(SecretLookupError::MarkedForDeletion);
    }
    let by_id = version_id.map(|id| s.version(id).ok_or_else(|| SecretLookupError::NoVersionId(id.to_owned()))).transpose()?;
    let by_stage = match (stage, by_id) {
        (None, Some(_)) => None,
        (stage, _) => {
            let stage = stage.unwrap_or(AWSCURRENT);
            Some(s.version_with_stage(stage).ok_or_else(|| SecretLookupError::NoStage(stage.to_owned()))?)
        }
    };
    match (by_id, by_stage) {
        (Some(a), Some(b)) if a.version_id != b.version_id => Err(SecretLookupError::Mismatch),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(SecretLookupError::NotFound),
    }
}

/// A secret version's value in the clear: text, or bytes.
pub enum SecretPlain {
    String(Zeroizing<String>),
    Binary(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for SecretPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::String(_) => "SecretPlain::String(<redacted>)",
            Self::Binary(_) => "SecretPlain::Binary(<redacted>)",
        })
    }
}

pub fn open_secret(cipher: &Cipher, arn: &str, v: &SecretVersion) -> Result<SecretPlain, CipherError> {
    let aad = Aad::secret(arn, &v.version_id);
    Ok(match &v.value {
        SecretValue::String(s) => SecretPlain::String(cipher.open_string(&aad, s)?),
        SecretValue::Binary(s) => SecretPlain::Binary(cipher.open(&aad, s)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_references() {
        let r = parameter_ref("/app/db");
        assert_eq!((r.names.as_slice(), &r.selector), (&["/app/db".to_owned()][..], &Selector::Latest));
        assert_eq!(parameter_ref("/app/db:3").selector, Selector::Version(3));
        assert_eq!(parameter_ref("db:prod").selector, Selector::Label("prod".into()));
        assert_eq!(parameter_ref("db:prod").selector_text.as_deref(), Some(":prod"));
        let r = parameter_ref("arn:aws:ssm:us-east-1:123456789012:parameter/app/db:2");
        assert_eq!(r.names, ["/app/db"]);
        assert_eq!(r.selector, Selector::Version(2));
        assert_eq!(parameter_ref("arn:aws:ssm:us-east-1:123456789012:parameter/db").names, ["db", "/db"]);
        let a = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
        assert_eq!(parameter_ref_arn(&a, "/app/db:3"), "arn:aws:ssm:us-east-1:123456789012:parameter/app/db");
        assert_eq!(parameter_ref_arn(&a, "db"), "arn:aws:ssm:us-east-1:123456789012:parameter/db");
    }
}
