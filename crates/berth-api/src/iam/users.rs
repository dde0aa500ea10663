//! IAM users and their access keys. A user's long-term key is `AKIA…`
//! with a 40-character secret shown only by CreateAccessKey; at most two
//! per user; an Inactive key is refused at signing.

use berth_model::iam::{self, EntityKind, IamError, KeyOwner, KeyStatus, MAX_ACCESS_KEYS, User};
use berth_store::{AccessKey, KeyRecord, StoreError};
use berth_wire::iam as w;
use berth_wire::iam::Output;

use super::{Call, RETRIES, invalid, now, page, path, path_prefix, tag_pairs, wire_tags};
use crate::ApiError;
use crate::caller::CallerKind;

pub(super) fn wire(u: &User, with_tags: bool) -> w::User {
    w::User {
        path: u.path.clone(),
        user_name: u.name.clone(),
        user_id: u.id.clone(),
        arn: u.arn.clone(),
        create_date: u.create_date,
        password_last_used: None,
        permissions_boundary: None,
        tags: (with_tags && !u.tags.is_empty()).then(|| wire_tags(&u.tags)),
    }
}

pub(super) async fn load(call: &Call<'_>, name: &str) -> Result<berth_store::Versioned<User>, ApiError> {
    iam::validate_name("userName", name, 64)?;
    call.api.store.get_user(name).await?.ok_or_else(|| EntityKind::User.not_found(name).into())
}

pub(super) async fn create(call: &Call<'_>, r: w::CreateUserRequest) -> Result<Output, ApiError> {
    iam::validate_name("userName", &r.user_name, 64)?;
    let path = path(r.path.as_deref())?;
    if r.permissions_boundary.is_some() {
        return Err(ApiError::Unsupported("Berth does not support permissions boundaries yet.".into()));
    }
    let tags = iam::merge_tags(&Default::default(), &tag_pairs(r.tags.as_deref()))?;
    let user = User {
        arn: iam::arn(call.account(), EntityKind::User, &path, &r.user_name),
        id: berth_store::iam::new_unique_id(EntityKind::User.id_prefix()),
        name: r.user_name,
        path,
        create_date: now(),
        tags,
        inline_policies: Default::default(),
        attached: Vec::new(),
        groups: Vec::new(),
    };
    match call.api.store.put_user(&user, None).await {
        Ok(_) => Ok(Output::CreateUser(w::CreateUserResponse { user: Some(wire(&user, true)) })),
        Err(StoreError::Conflict) => Err(EntityKind::User.exists(&user.name).into()),
        Err(e) => Err(e.into()),
    }
}

/// The user a call names, or (no name) the calling user itself.
fn named_or_caller(call: &Call<'_>, name: Option<String>) -> Result<Option<String>, ApiError> {
    match (name, &call.caller.kind) {
        (Some(n), _) => Ok(Some(n)),
        (None, CallerKind::User { name }) => Ok(Some(name.clone())),
        (None, CallerKind::Root) => Ok(None),
        (None, CallerKind::AssumedRole { .. }) => Err(invalid("Must specify userName when calling with non-User credentials")),
    }
}

pub(super) async fn get(call: &Call<'_>, r: w::GetUserRequest) -> Result<Output, ApiError> {
    let Some(name) = named_or_caller(call, r.user_name)? else {
        // The root user: its ARN and the account id.
        let user = w::User { user_id: call.account().to_owned(), arn: call.caller.arn.clone(), create_date: 0.0, ..Default::default() };
        return Ok(Output::GetUser(w::GetUserResponse { user }));
    };
    let user = load(call, &name).await?.value;
    Ok(Output::GetUser(w::GetUserResponse { user: wire(&user, true) }))
}

pub(super) async fn list(call: &Call<'_>, r: w::ListUsersRequest) -> Result<Output, ApiError> {
    let prefix = path_prefix(r.path_prefix.as_deref())?;
    let users: Vec<User> = call.api.store.list_users().await?.into_iter().map(|v| v.value).filter(|u| u.path.starts_with(&prefix)).collect();
    let (users, is_truncated, marker) = page(users, r.marker.as_deref(), r.max_items, |u| u.name.to_lowercase())?;
    Ok(Output::ListUsers(w::ListUsersResponse { users: users.iter().map(|u| wire(u, false)).collect(), is_truncated, marker }))
}

/// UpdateUser: a new path (a new name is not served: its keys and
/// policies would have to follow).
pub(super) async fn update(call: &Call<'_>, r: w::UpdateUserRequest) -> Result<Output, ApiError> {
    if r.new_user_name.as_ref().is_some_and(|n| *n != r.user_name) {
        return Err(ApiError::Unsupported("Berth does not support renaming a user yet.".into()));
    }
    for _ in 0..RETRIES {
        let v = load(call, &r.user_name).await?;
        let mut user = v.value;
        if let Some(p) = &r.new_path {
            iam::validate_path("newPath", p)?;
            user.path = p.clone();
            user.arn = iam::arn(call.account(), EntityKind::User, p, &user.name);
        }
        match call.api.store.put_user(&user, Some(v.version)).await {
            Ok(_) => return Ok(Output::UpdateUser),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

pub(super) async fn delete(call: &Call<'_>, r: w::DeleteUserRequest) -> Result<Output, ApiError> {
    for _ in 0..RETRIES {
        let v = load(call, &r.user_name).await?;
        let conflict = |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")).into());
        if !v.value.inline_policies.is_empty() {
            return conflict("delete policies");
        }
        if !v.value.attached.is_empty() {
            return conflict("detach all policies");
        }
        if !v.value.groups.is_empty() {
            return conflict("remove user from all groups");
        }
        match call.api.store.delete_user(&v.value.name, v.version).await {
            Ok(_) => return Ok(Output::DeleteUser),
            Err(StoreError::Rejected) => return conflict("delete access keys"),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// The user whose keys a call is about: named, else the calling user.
async fn key_user(call: &Call<'_>, name: Option<String>) -> Result<User, ApiError> {
    let name = named_or_caller(call, name)?
        .ok_or_else(|| ApiError::Unsupported("Berth keeps the root key outside IAM: name a user (UserName).".into()))?;
    Ok(load(call, &name).await?.value)
}

fn metadata(user: &str, k: &KeyRecord) -> w::AccessKeyMetadata {
    w::AccessKeyMetadata {
        user_name: Some(user.to_owned()),
        access_key_id: Some(k.key.access_key_id.clone()),
        status: Some(status(k.status)),
        create_date: Some(k.key.created_at as f64),
    }
}

fn status(s: KeyStatus) -> w::statusType {
    match s {
        KeyStatus::Active => w::statusType::Active,
        KeyStatus::Inactive => w::statusType::Inactive,
    }
}

pub(super) async fn create_key(call: &Call<'_>, r: w::CreateAccessKeyRequest) -> Result<Output, ApiError> {
    let user = key_user(call, r.user_name).await?;
    if call.api.store.list_user_keys(&user.name).await?.len() >= MAX_ACCESS_KEYS {
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")).into());
    }
    let created_at = now() as i64;
    loop {
        let (access_key_id, secret_access_key) = berth_store::iam::new_key_pair("AKIA");
        let record = KeyRecord {
            key: AccessKey { access_key_id: access_key_id.clone(), secret_access_key: secret_access_key.clone(), created_at },
            owner: KeyOwner::User { name: user.name.clone() },
            status: KeyStatus::Active,
        };
        match call.api.store.insert_key(&record).await {
            Ok(()) => {
                return Ok(Output::CreateAccessKey(w::CreateAccessKeyResponse {
                    access_key: w::AccessKey {
                        user_name: user.name,
                        access_key_id,
                        status: w::statusType::Active,
                        secret_access_key,
                        create_date: Some(created_at as f64),
                    },
                }));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

pub(super) async fn list_keys(call: &Call<'_>, r: w::ListAccessKeysRequest) -> Result<Output, ApiError> {
    let user = key_user(call, r.user_name).await?;
    let keys = call.api.store.list_user_keys(&user.name).await?;
    let (keys, is_truncated, marker) = page(keys, r.marker.as_deref(), r.max_items, |k| k.key.access_key_id.clone())?;
    let access_key_metadata = keys.iter().map(|k| metadata(&user.name, k)).collect();
    Ok(Output::ListAccessKeys(w::ListAccessKeysResponse { access_key_metadata, is_truncated, marker }))
}

/// The user's key `id`, or NoSuchEntity as IAM says it.
async fn user_key(call: &Call<'_>, user: &User, id: &str) -> Result<KeyRecord, ApiError> {
    let found = call.api.store.get_key(id).await?;
    match found {
        Some(k) if k.owner == (KeyOwner::User { name: user.name.clone() }) => Ok(k),
        _ => Err(IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found.")).into()),
    }
}

pub(super) async fn update_key(call: &Call<'_>, r: w::UpdateAccessKeyRequest) -> Result<Output, ApiError> {
    let user = key_user(call, r.user_name).await?;
    let key = user_key(call, &user, &r.access_key_id).await?;
    let to = match r.status {
        w::statusType::Active => KeyStatus::Active,
        w::statusType::Inactive => KeyStatus::Inactive,
        w::statusType::Expired => return Err(invalid("The status of an access key must be Active or Inactive.")),
    };
    call.api.store.set_key_status(&key.key.access_key_id, to).await?;
    Ok(Output::UpdateAccessKey)
}

pub(super) async fn delete_key(call: &Call<'_>, r: w::DeleteAccessKeyRequest) -> Result<Output, ApiError> {
    let user = key_user(call, r.user_name).await?;
    let key = user_key(call, &user, &r.access_key_id).await?;
    call.api.store.delete_key(&key.key.access_key_id).await?;
    Ok(Output::DeleteAccessKey)
}

/// Berth does not record keys' use: a key is answered as never used.
pub(super) async fn key_last_used(call: &Call<'_>, r: w::GetAccessKeyLastUsedRequest) -> Result<Output, ApiError> {
    let Some(key) = call.api.store.get_key(&r.access_key_id).await? else {
        return Err(IamError::NoSuchEntity(format!("The Access Key with id {} cannot be found.", r.access_key_id)).into());
    };
    let user_name = match key.owner {
        KeyOwner::User { name } => Some(name),
        _ => None,
    };
    Ok(Output::GetAccessKeyLastUsed(w::GetAccessKeyLastUsedResponse {
        user_name,
        access_key_last_used: Some(w::AccessKeyLastUsed { last_used_date: None, service_name: "N/A".into(), region: "N/A".into() }),
    }))
}
