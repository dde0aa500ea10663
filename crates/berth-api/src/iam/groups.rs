//! IAM groups: policies every member user gets. A user's record names
//! its groups; a group's members are the users that name it.

use berth_model::iam::{self, EntityKind, Group, IamError, User};
use berth_store::{StoreError, Versioned};
use berth_wire::iam as w;
use berth_wire::iam::Output;

use super::{Call, RETRIES, now, page, path, path_prefix};
use crate::ApiError;

fn wire(g: &Group) -> w::Group {
    w::Group { path: g.path.clone(), group_name: g.name.clone(), group_id: g.id.clone(), arn: g.arn.clone(), create_date: g.create_date }
}

pub(super) async fn load(call: &Call<'_>, name: &str) -> Result<Versioned<Group>, ApiError> {
    iam::validate_name("groupName", name, 128)?;
    call.api.store.get_group(name).await?.ok_or_else(|| EntityKind::Group.not_found(name).into())
}

/// The users that are members of group `name` (as stored), by name.
async fn members(call: &Call<'_>, name: &str) -> Result<Vec<User>, ApiError> {
    let users = call.api.store.list_users().await?;
    Ok(users.into_iter().map(|v| v.value).filter(|u| u.groups.iter().any(|g| g.eq_ignore_ascii_case(name))).collect())
}

pub(super) async fn create(call: &Call<'_>, r: w::CreateGroupRequest) -> Result<Output, ApiError> {
    iam::validate_name("groupName", &r.group_name, 128)?;
    let path = path(r.path.as_deref())?;
    let group = Group {
        arn: iam::arn(call.account(), EntityKind::Group, &path, &r.group_name),
        id: berth_store::iam::new_unique_id(EntityKind::Group.id_prefix()),
        name: r.group_name,
        path,
        create_date: now(),
        inline_policies: Default::default(),
        attached: Vec::new(),
    };
    match call.api.store.put_group(&group, None).await {
        Ok(_) => Ok(Output::CreateGroup(w::CreateGroupResponse { group: wire(&group) })),
        Err(StoreError::Conflict) => Err(EntityKind::Group.exists(&group.name).into()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get(call: &Call<'_>, r: w::GetGroupRequest) -> Result<Output, ApiError> {
    let group = load(call, &r.group_name).await?.value;
    let users = members(call, &group.name).await?;
    let (users, is_truncated, marker) = page(users, r.marker.as_deref(), r.max_items, |u| u.name.to_lowercase())?;
    let users = users.iter().map(|u| super::users::wire(u, false)).collect();
    Ok(Output::GetGroup(w::GetGroupResponse { group: wire(&group), users, is_truncated, marker }))
}

pub(super) async fn list(call: &Call<'_>, r: w::ListGroupsRequest) -> Result<Output, ApiError> {
    let prefix = path_prefix(r.path_prefix.as_deref())?;
    let groups: Vec<Group> = call.api.store.list_groups().await?.into_iter().map(|v| v.value).filter(|g| g.path.starts_with(&prefix)).collect();
    let (groups, is_truncated, marker) = page(groups, r.marker.as_deref(), r.max_items, |g| g.name.to_lowercase())?;
    Ok(Output::ListGroups(w::ListGroupsResponse { groups: groups.iter().map(wire).collect(), is_truncated, marker }))
}

pub(super) async fn delete(call: &Call<'_>, r: w::DeleteGroupRequest) -> Result<Output, ApiError> {
    for _ in 0..RETRIES {
        let v = load(call, &r.group_name).await?;
        let conflict = |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")).into());
        if !members(call, &v.value.name).await?.is_empty() {
            return conflict("remove users from group");
        }
        if !v.value.attached.is_empty() {
            return conflict("detach all policies");
        }
        if !v.value.inline_policies.is_empty() {
            return conflict("delete policies");
        }
        match call.api.store.delete_group(&v.value.name, v.version).await {
            Ok(_) => return Ok(Output::DeleteGroup),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Adds (`true`) or removes a user's membership of a group.
async fn membership(call: &Call<'_>, group: &str, user: &str, member: bool) -> Result<(), ApiError> {
    let group = load(call, group).await?.value.name;
    for _ in 0..RETRIES {
        let v = super::users::load(call, user).await?;
        let mut u = v.value;
        let had = u.groups.iter().any(|g| g.eq_ignore_ascii_case(&group));
        match (member, had) {
            (true, true) => return Ok(()),
            (true, false) => u.groups.push(group.clone()),
            (false, true) => u.groups.retain(|g| !g.eq_ignore_ascii_case(&group)),
            (false, false) => {
                return Err(IamError::NoSuchEntity(format!("The user with name {} is not in the group {group}.", u.name)).into());
            }
        }
        match call.api.store.put_user(&u, Some(v.version)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

pub(super) async fn add_user(call: &Call<'_>, r: w::AddUserToGroupRequest) -> Result<Output, ApiError> {
    membership(call, &r.group_name, &r.user_name, true).await?;
    Ok(Output::AddUserToGroup)
}

pub(super) async fn remove_user(call: &Call<'_>, r: w::RemoveUserFromGroupRequest) -> Result<Output, ApiError> {
    membership(call, &r.group_name, &r.user_name, false).await?;
    Ok(Output::RemoveUserFromGroup)
}

pub(super) async fn for_user(call: &Call<'_>, r: w::ListGroupsForUserRequest) -> Result<Output, ApiError> {
    let user = super::users::load(call, &r.user_name).await?.value;
    let mut groups = Vec::new();
    for name in &user.groups {
        if let Some(g) = call.api.store.get_group(name).await? {
            groups.push(g.value);
        }
    }
    groups.sort_by_key(|g| g.name.to_lowercase());
    let (groups, is_truncated, marker) = page(groups, r.marker.as_deref(), r.max_items, |g| g.name.to_lowercase())?;
    Ok(Output::ListGroupsForUser(w::ListGroupsForUserResponse { groups: groups.iter().map(wire).collect(), is_truncated, marker }))
}
