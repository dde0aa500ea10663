//! IAM roles: a trust policy (who may assume it, checked by STS's
//! AssumeRole), a MaxSessionDuration (3600..=43200 s), and policies like
//! a user's. DeleteRole is refused while policies remain, as IAM does.

use berth_model::iam::{self, EntityKind, IamError, Role};
use berth_store::{StoreError, Versioned};
use berth_wire::iam as w;
use berth_wire::iam::Output;

use super::{Call, RETRIES, check_trust, invalid, now, page, path, path_prefix, tag_pairs, url_encoded, wire_tags};
use crate::ApiError;

pub(super) fn wire(r: &Role, with_tags: bool) -> w::Role {
    w::Role {
        path: r.path.clone(),
        role_name: r.name.clone(),
        role_id: r.id.clone(),
        arn: r.arn.clone(),
        create_date: r.create_date,
        assume_role_policy_document: Some(url_encoded(&r.assume_role_policy)),
        description: r.description.clone(),
        max_session_duration: Some(r.max_session_duration as i32),
        permissions_boundary: None,
        tags: (with_tags && !r.tags.is_empty()).then(|| wire_tags(&r.tags)),
        role_last_used: None,
    }
}

pub(super) async fn load(call: &Call<'_>, name: &str) -> Result<Versioned<Role>, ApiError> {
    iam::validate_name("roleName", name, 64)?;
    call.api.store.get_role(name).await?.ok_or_else(|| EntityKind::Role.not_found(name).into())
}

fn max_session(seconds: Option<i32>) -> Result<i64, ApiError> {
    let s = seconds.map_or(iam::DEFAULT_SESSION_SECONDS, i64::from);
    if !(iam::DEFAULT_SESSION_SECONDS..=iam::MAX_ROLE_SESSION_SECONDS).contains(&s) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{s}' at 'maxSessionDuration' failed to satisfy constraint: \
             Member must have value between {} and {}",
            iam::DEFAULT_SESSION_SECONDS,
            iam::MAX_ROLE_SESSION_SECONDS
        )));
    }
    Ok(s)
}

fn description(d: Option<String>) -> Result<Option<String>, ApiError> {
    if d.as_ref().is_some_and(|d| d.chars().count() > 1000) {
        return Err(invalid("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000"));
    }
    Ok(d)
}

pub(super) async fn create(call: &Call<'_>, r: w::CreateRoleRequest) -> Result<Output, ApiError> {
    iam::validate_name("roleName", &r.role_name, 64)?;
    let path = path(r.path.as_deref())?;
    check_trust(&r.assume_role_policy_document)?;
    if r.permissions_boundary.is_some() {
        return Err(ApiError::Unsupported("Berth does not support permissions boundaries yet.".into()));
    }
    let role = Role {
        arn: iam::arn(call.account(), EntityKind::Role, &path, &r.role_name),
        id: berth_store::iam::new_unique_id(EntityKind::Role.id_prefix()),
        name: r.role_name,
        path,
        create_date: now(),
        assume_role_policy: r.assume_role_policy_document,
        description: description(r.description)?,
        max_session_duration: max_session(r.max_session_duration)?,
        tags: iam::merge_tags(&Default::default(), &tag_pairs(r.tags.as_deref()))?,
        inline_policies: Default::default(),
        attached: Vec::new(),
    };
    match call.api.store.put_role(&role, None).await {
        Ok(_) => Ok(Output::CreateRole(w::CreateRoleResponse { role: wire(&role, true) })),
        Err(StoreError::Conflict) => Err(EntityKind::Role.exists(&role.name).into()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get(call: &Call<'_>, r: w::GetRoleRequest) -> Result<Output, ApiError> {
    let role = load(call, &r.role_name).await?.value;
    Ok(Output::GetRole(w::GetRoleResponse { role: wire(&role, true) }))
}

pub(super) async fn list(call: &Call<'_>, r: w::ListRolesRequest) -> Result<Output, ApiError> {
    let prefix = path_prefix(r.path_prefix.as_deref())?;
    let roles: Vec<Role> = call.api.store.list_roles().await?.into_iter().map(|v| v.value).filter(|x| x.path.starts_with(&prefix)).collect();
    let (roles, is_truncated, marker) = page(roles, r.marker.as_deref(), r.max_items, |x| x.name.to_lowercase())?;
    Ok(Output::ListRoles(w::ListRolesResponse { roles: roles.iter().map(|x| wire(x, false)).collect(), is_truncated, marker }))
}

/// Reads, changes and writes a role, again if another writer got there first.
async fn edit(call: &Call<'_>, name: &str, change: impl Fn(&mut Role) -> Result<(), ApiError>) -> Result<(), ApiError> {
    for _ in 0..RETRIES {
        let v = load(call, name).await?;
        let mut role = v.value;
        change(&mut role)?;
        match call.api.store.put_role(&role, Some(v.version)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

pub(super) async fn update(call: &Call<'_>, r: w::UpdateRoleRequest) -> Result<Output, ApiError> {
    let max = r.max_session_duration.map(|s| max_session(Some(s))).transpose()?;
    let desc = description(r.description)?;
    edit(call, &r.role_name, |role| {
        if let Some(m) = max {
            role.max_session_duration = m;
        }
        if desc.is_some() {
            role.description = desc.clone();
        }
        Ok(())
    })
    .await?;
    Ok(Output::UpdateRole(w::UpdateRoleResponse {}))
}

pub(super) async fn update_trust(call: &Call<'_>, r: w::UpdateAssumeRolePolicyRequest) -> Result<Output, ApiError> {
    check_trust(&r.policy_document)?;
    edit(call, &r.role_name, |role| {
        role.assume_role_policy = r.policy_document.clone();
        Ok(())
    })
    .await?;
    Ok(Output::UpdateAssumeRolePolicy)
}

pub(super) async fn delete(call: &Call<'_>, r: w::DeleteRoleRequest) -> Result<Output, ApiError> {
    for _ in 0..RETRIES {
        let v = load(call, &r.role_name).await?;
        let conflict = |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")).into());
        if !v.value.attached.is_empty() {
            return conflict("detach all policies");
        }
        if !v.value.inline_policies.is_empty() {
            return conflict("delete policies");
        }
        match call.api.store.delete_role(&v.value.name, v.version).await {
            Ok(_) => return Ok(Output::DeleteRole),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
