//! A container's `secrets` entry: its `valueFrom` read as ECS reads it,
//! and the value it names.
//!
//! ECS's forms: an SSM parameter by name (`db`, `/app/db`, with
//! `:version` or `:label` as GetParameters takes them) or ARN
//! (`arn:aws:ssm:REGION:ACCOUNT:parameter/app/db`); a Secrets Manager
//! secret by ARN, full or without its random suffix, optionally followed
//! by `:json-key:version-stage:version-id` (empty fields take their
//! defaults: the whole SecretString, AWSCURRENT). Anything that is not a
//! Secrets Manager ARN is an SSM parameter, as in ECS.

use berth_model::Account;
use berth_store::{Store, StoreError};
use zeroize::Zeroizing;

use crate::cipher::Cipher;
use crate::lookup::{self, SecretPlain};

/// The start of every reason ECS gives a task whose secrets it could not read.
const PREFIX: &str = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: ";
const ASM: &str = "unable to retrieve secret from asm: service call has been retried 1 time(s): ";
const SSM: &str = "unable to retrieve secrets from ssm: service call has been retried 1 time(s): ";

/// A `valueFrom`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFrom {
    /// An SSM parameter reference (name or ARN, with its selector).
    Parameter(String),
    Secret(SecretRef),
}

/// `arn:aws:secretsmanager:…:secret:NAME[-XXXXXX][:json-key:version-stage:version-id]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The ARN without the fields after the name.
    pub arn: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl ValueFrom {
    pub fn parse(value_from: &str) -> Self {
        let Some((head, tail)) = value_from.split_once(":secret:").filter(|_| value_from.starts_with("arn:aws:secretsmanager:"))
        else {
            return Self::Parameter(value_from.to_owned());
        };
        let mut fields = tail.split(':');
        let name = fields.next().unwrap_or_default();
        let mut field = || fields.next().filter(|f| !f.is_empty()).map(str::to_owned);
        let (json_key, version_stage, version_id) = (field(), field(), field());
        Self::Secret(SecretRef { arn: format!("{head}:secret:{name}"), json_key, version_stage, version_id })
    }
}

/// The ARN a read of `value_from` is authorised on: `ssm:GetParameters`
/// on the parameter's ARN, `secretsmanager:GetSecretValue` on the
/// secret's ARN as written (a partial ARN stays partial: check
/// [`ResolvedSecret::resource_arn`] too, the stored secret's full ARN).
/// A bare parameter name is made an ARN in `account`'s region.
pub fn resource_arn(account: &Account, value_from: &str) -> String {
    match ValueFrom::parse(value_from) {
        ValueFrom::Parameter(r) => lookup::parameter_ref_arn(account, &r),
        ValueFrom::Secret(s) => s.arn,
    }
}

/// The IAM action a read of `value_from` needs.
pub fn resource_action(value_from: &str) -> &'static str {
    match ValueFrom::parse(value_from) {
        ValueFrom::Parameter(_) => "ssm:GetParameters",
        ValueFrom::Secret(_) => "secretsmanager:GetSecretValue",
    }
}

/// A resolved value, wiped from memory when dropped; `Debug` shows none of it.
pub struct ResolvedSecret {
    pub value: Zeroizing<String>,
    /// The full ARN of the parameter or secret that was read.
    pub resource_arn: String,
}

impl std::fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecret").field("value", &"<redacted>").field("resource_arn", &self.resource_arn).finish()
    }
}

/// Why a `valueFrom` gave no value. `Display` is the task's stoppedReason, as ECS words it.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such parameter (or version, or label).
    #[error("{PREFIX}{SSM}invalid ssm parameters: {0}")]
    InvalidParameters(String),
    /// Secrets Manager's GetSecretValue failed with `code: message`.
    #[error("{PREFIX}{ASM}failed to fetch secret {arn} from secrets manager: {code}: {message}")]
    Secret { arn: String, code: &'static str, message: String },
    #[error("{PREFIX}{ASM}retrieved secret from Secrets Manager did not contain json key {0}")]
    JsonKey(String),
    /// The execution role may not read it (`message`: IAM's refusal).
    #[error("{PREFIX}{SSM}AccessDeniedException: {0}")]
    ParameterDenied(String),
    #[error("{PREFIX}{ASM}failed to fetch secret {arn} from secrets manager: AccessDeniedException: {message}")]
    SecretDenied { arn: String, message: String },
    /// The store could not be read, or a sealed value not opened (the
    /// cause is for Berth's log, not the task's reason).
    #[error("{PREFIX}{}InternalServerError: the value could not be read", if *.ssm { SSM } else { ASM })]
    Internal { ssm: bool, cause: String },
}

impl ResolveError {
    /// The refusal of the execution role's read of `value_from`, with
    /// IAM's message (`User: ARN is not authorized to perform: …`).
    pub fn denied(value_from: &str, message: impl Into<String>) -> Self {
        match ValueFrom::parse(value_from) {
            ValueFrom::Parameter(_) => Self::ParameterDenied(message.into()),
            ValueFrom::Secret(s) => Self::SecretDenied { arn: s.arn, message: message.into() },
        }
    }

    fn internal(ssm: bool, cause: impl std::fmt::Display) -> Self {
        Self::Internal { ssm, cause: cause.to_string() }
    }
}

/// Reads the value `value_from` names, as ECS does at task start.
pub async fn resolve(store: &dyn Store, cipher: &Cipher, account: &Account, value_from: &str) -> Result<ResolvedSecret, ResolveError> {
    match ValueFrom::parse(value_from) {
        ValueFrom::Parameter(reference) => resolve_parameter(store, cipher, account, &reference).await,
        ValueFrom::Secret(s) => resolve_secret(store, cipher, &s).await,
    }
}

async fn resolve_parameter(store: &dyn Store, cipher: &Cipher, account: &Account, reference: &str) -> Result<ResolvedSecret, ResolveError> {
    let r = lookup::parameter_ref(reference);
    let store_err = |e: StoreError| ResolveError::internal(true, e);
    let p = lookup::find_parameter(store, &r).await.map_err(store_err)?.ok_or_else(|| ResolveError::InvalidParameters(reference.to_owned()))?;
    let v = lookup::select_version(&p.value, &r.selector).map_err(|_| ResolveError::InvalidParameters(reference.to_owned()))?;
    let value = lookup::open_parameter(cipher, &p.value.name, v).map_err(|e| ResolveError::internal(true, e))?;
    Ok(ResolvedSecret { value, resource_arn: p.value.arn(&account.region, &account.account_id) })
}

async fn resolve_secret(store: &dyn Store, cipher: &Cipher, r: &SecretRef) -> Result<ResolvedSecret, ResolveError> {
    let failed = |e: lookup::SecretLookupError| ResolveError::Secret { arn: r.arn.clone(), code: e.aws_type(), message: e.to_string() };
    let s = lookup::find_secret(store, &r.arn)
        .await
        .map_err(|e| ResolveError::internal(false, e))?
        .ok_or_else(|| failed(lookup::SecretLookupError::NotFound))?;
    let v = lookup::select_secret_version(&s.value, r.version_id.as_deref(), r.version_stage.as_deref()).map_err(failed)?;
    let text = match lookup::open_secret(cipher, &s.value.arn, v).map_err(|e| ResolveError::internal(false, e))? {
        SecretPlain::String(t) => t,
        // ECS puts a SecretString in the environment; a binary secret has none.
        SecretPlain::Binary(_) => {
            return Err(ResolveError::Secret {
                arn: r.arn.clone(),
                code: "InvalidRequestException",
                message: "the secret has a SecretBinary and no SecretString".into(),
            });
        }
    };
    let value = match &r.json_key {
        None => text,
        Some(key) => json_member(&text, key).ok_or_else(|| ResolveError::JsonKey(key.clone()))?,
    };
    Ok(ResolvedSecret { value, resource_arn: s.value.arn })
}

/// A top-level member of a JSON object, as text (a string's own text,
/// any other value as JSON).
fn json_member(text: &str, key: &str) -> Option<Zeroizing<String>> {
    let doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let member = doc.as_object()?.get(key)?;
    Some(Zeroizing::new(match member {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

    #[test]
    fn value_from_forms() {
        assert_eq!(ValueFrom::parse("/app/db"), ValueFrom::Parameter("/app/db".into()));
        assert_eq!(ValueFrom::parse("db"), ValueFrom::Parameter("db".into()));
        let ssm_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db";
        assert_eq!(ValueFrom::parse(ssm_arn), ValueFrom::Parameter(ssm_arn.into()));
        let ValueFrom::Secret(s) = ValueFrom::parse(ARN) else { panic!("not a secret") };
        assert_eq!((s.arn.as_str(), s.json_key, s.version_stage, s.version_id), (ARN, None, None, None));
        let ValueFrom::Secret(s) = ValueFrom::parse(&format!("{ARN}:password::")) else { panic!("not a secret") };
        assert_eq!((s.arn.as_str(), s.json_key.as_deref(), s.version_stage), (ARN, Some("password"), None));
        let ValueFrom::Secret(s) = ValueFrom::parse(&format!("{ARN}::AWSPREVIOUS:")) else { panic!("not a secret") };
        assert_eq!((s.json_key, s.version_stage.as_deref()), (None, Some("AWSPREVIOUS")));
        let ValueFrom::Secret(s) = ValueFrom::parse(&format!("{ARN}:k::v-1")) else { panic!("not a secret") };
        assert_eq!(s.version_id.as_deref(), Some("v-1"));
    }

    #[test]
    fn resource_arns_and_actions() {
        let a = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
        assert_eq!(resource_arn(&a, "/app/db"), "arn:aws:ssm:us-east-1:123456789012:parameter/app/db");
        assert_eq!(resource_arn(&a, "db:2"), "arn:aws:ssm:us-east-1:123456789012:parameter/db");
        assert_eq!(resource_arn(&a, &format!("{ARN}:password:AWSCURRENT:")), ARN);
        assert_eq!(resource_action("/app/db"), "ssm:GetParameters");
        assert_eq!(resource_action(ARN), "secretsmanager:GetSecretValue");
    }

    #[test]
    fn reasons_are_ecs_words() {
        let e = ResolveError::InvalidParameters("/app/db".into());
        assert_eq!(
            e.to_string(),
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: \
             unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm parameters: /app/db"
        );
        let e = ResolveError::denied(ARN, "User: x is not authorized");
        assert!(e.to_string().ends_with(&format!("failed to fetch secret {ARN} from secrets manager: AccessDeniedException: User: x is not authorized")));
        assert!(ResolveError::internal(true, "disk on fire").to_string().ends_with("InternalServerError: the value could not be read"));
    }

    #[test]
    fn json_members() {
        assert_eq!(json_member(r#"{"u":"me","n":3}"#, "u").as_deref().map(String::as_str), Some("me"));
        assert_eq!(json_member(r#"{"u":"me","n":3}"#, "n").as_deref().map(String::as_str), Some("3"));
        assert!(json_member(r#"{"u":"me"}"#, "p").is_none());
        assert!(json_member("not json", "p").is_none());
    }
}
