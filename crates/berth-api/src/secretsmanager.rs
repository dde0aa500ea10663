//! AWS Secrets Manager (`secretsmanager`, AWS JSON 1.1): secrets with
//! versions and staging labels (AWSCURRENT, AWSPREVIOUS, the caller's
//! own), tags, and deletion with a recovery window. Every value is
//! sealed by `berth-secrets` before it is stored; only GetSecretValue
//! opens one. DescribeSecret, ListSecrets and ListSecretVersionIds never
//! carry a value. `KmsKeyId` is recorded, not used.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_model::secrets::{self as model, AWSCURRENT, Secret, SecretValue, SecretVersion};
use berth_secrets::lookup::{self, SecretLookupError, SecretPlain};
use berth_secrets::Aad;
use berth_store::{StoreError, Versioned};
use berth_wire::secretsmanager::{
    Action, CreateSecretRequest, CreateSecretResponse, DeleteSecretRequest, DeleteSecretResponse, DescribeSecretResponse,
    FilterNameStringType, GetSecretValueRequest, GetSecretValueResponse, ListSecretVersionIdsRequest,
    ListSecretVersionIdsResponse, ListSecretsRequest, ListSecretsResponse, PutSecretValueRequest, PutSecretValueResponse,
    RestoreSecretResponse, SecretListEntry, SecretVersionsListEntry, SortByType, SortOrderType, Tag, UpdateSecretRequest,
    UpdateSecretResponse,
};
use serde_json::Value;

use crate::{Api, ApiError};

const MAX_VALUE_BYTES: usize = 65_536;
const DAY: f64 = 86_400.0;

fn sm(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::service(code, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    sm("InvalidParameterException", message)
}

fn lookup_error(e: SecretLookupError) -> ApiError {
    sm(e.aws_type(), e.to_string())
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn now() -> f64 {
    crate::berth::network::now()
}

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Value, ApiError> {
    Ok(match action {
        Action::CreateSecret(r) => json(&create(api, r).await?),
        Action::GetSecretValue(r) => json(&get_value(api, r).await?),
        Action::PutSecretValue(r) => json(&put_value(api, r).await?),
        Action::UpdateSecret(r) => json(&update(api, r).await?),
        Action::DescribeSecret(r) => json(&describe(&find(api, &r.secret_id).await?.value)),
        Action::ListSecrets(r) => json(&list(api, r).await?),
        Action::ListSecretVersionIds(r) => json(&version_ids(api, r).await?),
        Action::DeleteSecret(r) => json(&delete(api, r).await?),
        Action::RestoreSecret(r) => {
            let s = edit(api, &r.secret_id, false, |s| {
                s.deleted_date = None;
                Ok(())
            })
            .await?;
            json(&RestoreSecretResponse { arn: Some(s.arn), name: Some(s.name) })
        }
        Action::TagResource(r) => {
            edit(api, &r.secret_id, true, |s| {
                for t in &r.tags {
                    let key = t.key.clone().unwrap_or_default();
                    check_tag(&key, t.value.as_deref().unwrap_or(""))?;
                    let value = t.value.clone().unwrap_or_default();
                    match s.tags.iter_mut().find(|(k, _)| *k == key) {
                        Some(existing) => existing.1 = value,
                        None => s.tags.push((key, value)),
                    }
                }
                if s.tags.len() > 50 {
                    return Err(invalid("A secret can have at most 50 tags."));
                }
                Ok(())
            })
            .await?;
            Value::Object(Default::default())
        }
        Action::UntagResource(r) => {
            edit(api, &r.secret_id, true, |s| {
                s.tags.retain(|(k, _)| !r.tag_keys.contains(k));
                Ok(())
            })
            .await?;
            Value::Object(Default::default())
        }
    })
}

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    berth_model::tags::check_pair(key, value).map_err(invalid)
}

/// A secret by SecretId (name, ARN, partial ARN). One whose recovery
/// window has ended is deleted now and is not found.
async fn find(api: &Api, id: &str) -> Result<Versioned<Secret>, ApiError> {
    let found = lookup::find_secret(api.store.as_ref(), id).await?;
    match found {
        Some(s) if s.value.deleted_date.is_some_and(|d| d <= now()) => {
            api.store.delete_secret(&s.value.arn).await?;
            Err(lookup_error(SecretLookupError::NotFound))
        }
        Some(s) => Ok(s),
        None => Err(lookup_error(SecretLookupError::NotFound)),
    }
}

/// Read, change, write back at the version read (retrying a race). With
/// `live`, a secret marked for deletion is refused.
async fn edit(api: &Api, id: &str, live: bool, mut change: impl FnMut(&mut Secret) -> Result<(), ApiError>) -> Result<Secret, ApiError> {
    for _ in 0..8 {
        let v = find(api, id).await?;
        if live && v.value.deleted_date.is_some() {
            return Err(lookup_error(SecretLookupError::MarkedForDeletion));
        }
        let mut next = v.value.clone();
        change(&mut next)?;
        match api.store.put_secret(&next, Some(v.version)).await {
            Ok(w) => return Ok(w.value),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(StoreError::Conflict))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 512 {
        return Err(invalid("The secret name must be 1 to 512 characters."));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b)) {
        return Err(invalid("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"));
    }
    Ok(())
}

/// The value a request gives: SecretString or SecretBinary (base64 on
/// the wire), at most one, at most 64 KiB.
fn given_value(string: Option<&str>, binary: Option<&str>) -> Result<Option<Given>, ApiError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(invalid("You can't specify both a binary secret value and a string secret value in the same secret.")),
        (None, None) => Ok(None),
        (Some(s), None) => {
            if s.len() > MAX_VALUE_BYTES {
                return Err(invalid("The SecretString is larger than 65536 bytes."));
            }
            Ok(Some(Given::String(s.as_bytes().to_vec())))
        }
        (None, Some(b)) => {
            let bytes = STANDARD.decode(b.trim()).map_err(|_| invalid("The SecretBinary is not valid base64."))?;
            if bytes.len() > MAX_VALUE_BYTES {
                return Err(invalid("The SecretBinary is larger than 65536 bytes."));
            }
            Ok(Some(Given::Binary(bytes)))
        }
    }
}

enum Given {
    String(Vec<u8>),
    Binary(Vec<u8>),
}

fn seal(api: &Api, arn: &str, version_id: &str, given: &Given) -> SecretValue {
    let aad = Aad::secret(arn, version_id);
    match given {
        Given::String(b) => SecretValue::String(api.cipher.seal(&aad, b)),
        Given::Binary(b) => SecretValue::Binary(api.cipher.seal(&aad, b)),
    }
}

fn token(given: Option<&str>) -> Result<String, ApiError> {
    match given {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t.to_owned()),
        Some(_) => Err(invalid("ClientRequestToken must be 32 to 64 characters.")),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

async fn create(api: &Api, r: CreateSecretRequest) -> Result<CreateSecretResponse, ApiError> {
    check_name(&r.name)?;
    let given = given_value(r.secret_string.as_deref(), r.secret_binary.as_deref())?;
    let version_id = token(r.client_request_token.as_deref())?;
    if let Some(existing) = api.store.get_secret_by_name(&r.name).await? {
        return Err(if existing.value.deleted_date.is_some() {
            sm("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
        } else {
            sm("ResourceExistsException", format!("The operation failed because the secret {} already exists.", r.name))
        });
    }
    let mut tags = Vec::new();
    for t in r.tags.iter().flatten() {
        let key = t.key.clone().unwrap_or_default();
        check_tag(&key, t.value.as_deref().unwrap_or(""))?;
        tags.push((key, t.value.clone().unwrap_or_default()));
    }
    let account = api.account();
    let arn = model::secret_arn(&account.region, &account.account_id, &r.name, rand::random());
    let at = now();
    let mut secret = Secret {
        arn: arn.clone(),
        name: r.name.clone(),
        description: r.description,
        kms_key_id: r.kms_key_id,
        tags,
        created_date: at,
        last_changed_date: at,
        last_accessed_date: None,
        deleted_date: None,
        versions: Vec::new(),
    };
    if let Some(g) = &given {
        secret.add_version(SecretVersion { version_id: version_id.clone(), value: seal(api, &arn, &version_id, g), stages: vec![], created_date: at });
    }
    match api.store.put_secret(&secret, None).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => {
            return Err(sm("ResourceExistsException", format!("The operation failed because the secret {} already exists.", r.name)));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(CreateSecretResponse { arn: Some(arn), name: Some(r.name), version_id: given.map(|_| version_id), replication_status: None })
}

async fn get_value(api: &Api, r: GetSecretValueRequest) -> Result<GetSecretValueResponse, ApiError> {
    let s = find(api, &r.secret_id).await?;
    let v = lookup::select_secret_version(&s.value, r.version_id.as_deref(), r.version_stage.as_deref()).map_err(lookup_error)?;
    let plain = lookup::open_secret(&api.cipher, &s.value.arn, v).map_err(|e| {
        tracing::error!(secret = %s.value.arn, error = %e, "a stored secret value cannot be opened");
        sm("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
    })?;
    let (secret_string, secret_binary) = match plain {
        SecretPlain::String(t) => (Some(t.to_string()), None),
        SecretPlain::Binary(b) => (None, Some(STANDARD.encode(b.as_slice()))),
    };
    let out = GetSecretValueResponse {
        arn: Some(s.value.arn.clone()),
        name: Some(s.value.name.clone()),
        version_id: Some(v.version_id.clone()),
        secret_binary,
        secret_string,
        version_stages: Some(v.stages.clone()),
        created_date: Some(v.created_date),
    };
    // The day it was last read (Secrets Manager keeps the date only).
    let today = (now() / DAY).floor() * DAY;
    if s.value.last_accessed_date != Some(today) {
        let mut next = s.value.clone();
        next.last_accessed_date = Some(today);
        // A lost race only loses the read date.
        let _ = api.store.put_secret(&next, Some(s.version)).await;
    }
    Ok(out)
}

/// Adds a version (PutSecretValue, UpdateSecret with a value). A retry
/// with the same token and value changes nothing; the same token with
/// another value is refused.
fn add_version(api: &Api, s: &mut Secret, version_id: &str, given: &Given, stages: Vec<String>) -> Result<bool, ApiError> {
    if let Some(existing) = s.version(version_id) {
        let same = match lookup::open_secret(&api.cipher, &s.arn, existing) {
            Ok(SecretPlain::String(t)) => matches!(given, Given::String(b) if b.as_slice() == t.as_bytes()),
            Ok(SecretPlain::Binary(old)) => matches!(given, Given::Binary(b) if b.as_slice() == old.as_slice()),
            Err(_) => false,
        };
        return if same {
            Ok(false)
        } else {
            Err(sm("ResourceExistsException", "You can't modify an existing version, you can only create a new version."))
        };
    }
    let at = now();
    let value = seal(api, &s.arn, version_id, given);
    s.add_version(SecretVersion { version_id: version_id.to_owned(), value, stages, created_date: at });
    s.last_changed_date = at;
    Ok(true)
}

async fn put_value(api: &Api, r: PutSecretValueRequest) -> Result<PutSecretValueResponse, ApiError> {
    let given = given_value(r.secret_string.as_deref(), r.secret_binary.as_deref())?
        .ok_or_else(|| invalid("You must provide either SecretString or SecretBinary."))?;
    let version_id = token(r.client_request_token.as_deref())?;
    let stages = r.version_stages.clone().unwrap_or_default();
    if stages.len() > 20 {
        return Err(invalid("A version can have at most 20 staging labels."));
    }
    let s = edit(api, &r.secret_id, true, |s| add_version(api, s, &version_id, &given, stages.clone()).map(|_| ())).await?;
    let stages = s.version(&version_id).map(|v| v.stages.clone());
    Ok(PutSecretValueResponse { arn: Some(s.arn.clone()), name: Some(s.name.clone()), version_id: Some(version_id), version_stages: stages })
}

async fn update(api: &Api, r: UpdateSecretRequest) -> Result<UpdateSecretResponse, ApiError> {
    let given = given_value(r.secret_string.as_deref(), r.secret_binary.as_deref())?;
    let version_id = token(r.client_request_token.as_deref())?;
    let s = edit(api, &r.secret_id, true, |s| {
        if let Some(d) = &r.description {
            s.description = Some(d.clone());
        }
        if let Some(k) = &r.kms_key_id {
            s.kms_key_id = Some(k.clone());
        }
        if let Some(g) = &given {
            add_version(api, s, &version_id, g, vec![AWSCURRENT.to_owned()])?;
        }
        s.last_changed_date = now();
        Ok(())
    })
    .await?;
    Ok(UpdateSecretResponse { arn: Some(s.arn), name: Some(s.name), version_id: given.map(|_| version_id) })
}

fn wire_tags(s: &Secret) -> Vec<Tag> {
    s.tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

/// Versions that carry a label, with their labels (the others are
/// deprecated and not shown).
fn stages(s: &Secret) -> std::collections::BTreeMap<String, Vec<String>> {
    s.versions.iter().filter(|v| !v.stages.is_empty()).map(|v| (v.version_id.clone(), v.stages.clone())).collect()
}

fn describe(s: &Secret) -> DescribeSecretResponse {
    DescribeSecretResponse {
        arn: Some(s.arn.clone()),
        name: Some(s.name.clone()),
        description: s.description.clone(),
        kms_key_id: s.kms_key_id.clone(),
        rotation_enabled: Some(false),
        last_changed_date: Some(s.last_changed_date),
        last_accessed_date: s.last_accessed_date,
        deleted_date: s.deleted_date,
        tags: (!s.tags.is_empty()).then(|| wire_tags(s)),
        version_ids_to_stages: Some(stages(s)),
        created_date: Some(s.created_date),
        ..Default::default()
    }
}

fn entry(s: &Secret) -> SecretListEntry {
    SecretListEntry {
        arn: Some(s.arn.clone()),
        name: Some(s.name.clone()),
        description: s.description.clone(),
        kms_key_id: s.kms_key_id.clone(),
        rotation_enabled: Some(false),
        last_changed_date: Some(s.last_changed_date),
        last_accessed_date: s.last_accessed_date,
        deleted_date: s.deleted_date,
        tags: (!s.tags.is_empty()).then(|| wire_tags(s)),
        secret_versions_to_stages: Some(stages(s)),
        created_date: Some(s.created_date),
        ..Default::default()
    }
}

/// Whether `s` passes one ListSecrets filter: any value matches (a
/// prefix, case-insensitive), a `!value` must not.
fn passes(key: &FilterNameStringType, values: &[String], s: &Secret) -> bool {
    let fields: Vec<&str> = match key {
        FilterNameStringType::Name => vec![s.name.as_str()],
        FilterNameStringType::Description => s.description.iter().map(String::as_str).collect(),
        FilterNameStringType::TagKey => s.tags.iter().map(|(k, _)| k.as_str()).collect(),
        FilterNameStringType::TagValue => s.tags.iter().map(|(_, v)| v.as_str()).collect(),
        FilterNameStringType::All => std::iter::once(s.name.as_str())
            .chain(s.description.iter().map(String::as_str))
            .chain(s.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
            .collect(),
        FilterNameStringType::PrimaryRegion | FilterNameStringType::OwningService => vec![],
    };
    let hit = |want: &str| fields.iter().any(|f| f.to_lowercase().starts_with(&want.to_lowercase()));
    let (negated, wanted): (Vec<&String>, Vec<&String>) = values.iter().partition(|v| v.starts_with('!'));
    negated.iter().all(|n| !hit(&n[1..])) && (wanted.is_empty() || wanted.iter().any(|w| hit(w)))
}

fn page_limit(max: Option<i32>) -> Result<usize, ApiError> {
    match max {
        None => Ok(100),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!("MaxResults must be from 1 to 100; {n} was given."))),
    }
}

fn start<K: serde::de::DeserializeOwned>(token: Option<&str>) -> Result<Option<K>, ApiError> {
    crate::paging::decode(token).map_err(|_| sm("InvalidNextTokenException", "The NextToken value is invalid."))
}

async fn list(api: &Api, r: ListSecretsRequest) -> Result<ListSecretsResponse, ApiError> {
    let limit = page_limit(r.max_results)?;
    let after: Option<usize> = start(r.next_token.as_deref())?;
    let with_deleted = r.include_planned_deletion.unwrap_or(false);
    let filters: Vec<(FilterNameStringType, Vec<String>)> = r
        .filters
        .iter()
        .flatten()
        .map(|f| {
            let key = f.key.ok_or_else(|| invalid("A filter needs a Key."))?;
            Ok((key, f.values.clone().unwrap_or_default()))
        })
        .collect::<Result<_, ApiError>>()?;
    let mut rows: Vec<Secret> = api
        .store
        .list_secrets()
        .await?
        .into_iter()
        .map(|v| v.value)
        .filter(|s| s.deleted_date.is_none_or(|d| with_deleted && d > now()))
        .filter(|s| filters.iter().all(|(k, vs)| passes(k, vs, s)))
        .collect();
    match r.sort_by.unwrap_or(SortByType::CreatedDate) {
        SortByType::Name => {}
        SortByType::CreatedDate => rows.sort_by(|a, b| a.created_date.total_cmp(&b.created_date)),
        SortByType::LastChangedDate => rows.sort_by(|a, b| a.last_changed_date.total_cmp(&b.last_changed_date)),
        SortByType::LastAccessedDate => rows.sort_by(|a, b| a.last_accessed_date.unwrap_or(0.0).total_cmp(&b.last_accessed_date.unwrap_or(0.0))),
    }
    if r.sort_order == Some(SortOrderType::Desc) {
        rows.reverse();
    }
    // An offset into this order (the order is stable for a listing).
    let from = after.unwrap_or(0);
    let page: Vec<SecretListEntry> = rows.iter().skip(from).take(limit).map(entry).collect();
    let next_token = (rows.len() > from + limit).then(|| crate::paging::encode(&(from + limit)));
    Ok(ListSecretsResponse { secret_list: Some(page), next_token })
}

async fn version_ids(api: &Api, r: ListSecretVersionIdsRequest) -> Result<ListSecretVersionIdsResponse, ApiError> {
    let s = find(api, &r.secret_id).await?.value;
    let limit = page_limit(r.max_results)?;
    let from: usize = start(r.next_token.as_deref())?.unwrap_or(0);
    let all: Vec<&SecretVersion> =
        s.versions.iter().rev().filter(|v| r.include_deprecated.unwrap_or(false) || !v.stages.is_empty()).collect();
    let versions = all
        .iter()
        .skip(from)
        .take(limit)
        .map(|v| SecretVersionsListEntry {
            version_id: Some(v.version_id.clone()),
            version_stages: Some(v.stages.clone()),
            last_accessed_date: None,
            created_date: Some(v.created_date),
            kms_key_ids: Some(vec![s.kms_key_id.clone().unwrap_or_else(|| "DefaultEncryptionKey".to_owned())]),
        })
        .collect();
    let next_token = (all.len() > from + limit).then(|| crate::paging::encode(&(from + limit)));
    Ok(ListSecretVersionIdsResponse { versions: Some(versions), next_token, arn: Some(s.arn.clone()), name: Some(s.name.clone()) })
}

async fn delete(api: &Api, r: DeleteSecretRequest) -> Result<DeleteSecretResponse, ApiError> {
    let force = r.force_delete_without_recovery.unwrap_or(false);
    if force && r.recovery_window_in_days.is_some() {
        return Err(invalid("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."));
    }
    let days = r.recovery_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(invalid("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."));
    }
    if force {
        let s = find(api, &r.secret_id).await?.value;
        api.store.delete_secret(&s.arn).await?;
        return Ok(DeleteSecretResponse { arn: Some(s.arn), name: Some(s.name), deletion_date: Some(now()) });
    }
    let when = now() + days as f64 * DAY;
    let s = edit(api, &r.secret_id, true, |s| {
        s.deleted_date = Some(when);
        Ok(())
    })
    .await?;
    Ok(DeleteSecretResponse { arn: Some(s.arn), name: Some(s.name), deletion_date: s.deleted_date })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret {
            arn: "arn".into(),
            name: "prod/db".into(),
            description: Some("The database".into()),
            kms_key_id: None,
            tags: vec![("team".into(), "payments".into())],
            created_date: 0.0,
            last_changed_date: 0.0,
            last_accessed_date: None,
            deleted_date: None,
            versions: vec![],
        }
    }

    #[test]
    fn list_filters() {
        let s = secret();
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(passes(&FilterNameStringType::Name, &v(&["prod/"]), &s));
        assert!(!passes(&FilterNameStringType::Name, &v(&["db"]), &s));
        assert!(passes(&FilterNameStringType::Description, &v(&["the"]), &s));
        assert!(passes(&FilterNameStringType::TagKey, &v(&["te"]), &s));
        assert!(passes(&FilterNameStringType::TagValue, &v(&["pay"]), &s));
        assert!(passes(&FilterNameStringType::All, &v(&["pay"]), &s));
        assert!(!passes(&FilterNameStringType::Name, &v(&["!prod"]), &s));
        assert!(passes(&FilterNameStringType::Name, &v(&["!dev"]), &s));
    }

    #[test]
    fn values_given() {
        assert!(given_value(Some("a"), Some("YQ==")).is_err());
        assert!(matches!(given_value(None, Some("YWJj")), Ok(Some(Given::Binary(b))) if b == b"abc"));
        assert!(given_value(None, Some("%%%")).is_err());
        assert!(given_value(Some(&"x".repeat(MAX_VALUE_BYTES + 1)), None).is_err());
        assert!(check_name("prod/db+x=y.z@w-1").is_ok() && check_name("a b").is_err() && check_name("").is_err());
    }
}
