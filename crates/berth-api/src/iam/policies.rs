//! Policies: users', roles' and groups' inline policies, the managed
//! policies attached to them, users' and roles' tags (one set of handlers
//! for every kind of holder), and customer managed policies with their versions (at most
//! five; the default one is what applies). AWS's managed policies
//! (`arn:aws:iam::aws:policy/…`, `berth_iam::managed`) can be attached
//! and listed (Scope=AWS) but not changed.

use std::collections::BTreeMap;

use berth_model::iam::{self, EntityKind, Group, IamError, ManagedPolicy, PolicyVersion, Role, User};
use berth_store::StoreError;
use berth_wire::iam as w;
use berth_wire::iam::{Action, Output};

use super::{Call, Listed, RETRIES, check_policy, invalid, now, page, path, path_prefix, tag_pairs, url_encoded, wire_tags};
use crate::ApiError;

/// At most this many managed policies attached to a user or role.
const MAX_ATTACHED: usize = 10;

pub(super) async fn dispatch(call: &Call<'_>, action: Action) -> Result<Output, ApiError> {
    use Action as A;
    use EntityKind::{Group as G, Role as R, User as U};
    Ok(match action {
        A::PutUserPolicy(r) => put_inline(call, U, &r.user_name, r.policy_name, r.policy_document).await.map(|()| Output::PutUserPolicy)?,
        A::PutRolePolicy(r) => put_inline(call, R, &r.role_name, r.policy_name, r.policy_document).await.map(|()| Output::PutRolePolicy)?,
        A::PutGroupPolicy(r) => put_inline(call, G, &r.group_name, r.policy_name, r.policy_document).await.map(|()| Output::PutGroupPolicy)?,
        A::GetGroupPolicy(r) => {
            let policy_document = get_inline(call, G, &r.group_name, &r.policy_name).await?;
            Output::GetGroupPolicy(w::GetGroupPolicyResponse { group_name: r.group_name, policy_name: r.policy_name, policy_document })
        }
        A::ListGroupPolicies(r) => {
            let (policy_names, is_truncated, marker) = list_inline(call, G, &r.group_name, r.marker.as_deref(), r.max_items).await?;
            Output::ListGroupPolicies(w::ListGroupPoliciesResponse { policy_names, is_truncated, marker })
        }
        A::DeleteGroupPolicy(r) => delete_inline(call, G, &r.group_name, &r.policy_name).await.map(|()| Output::DeleteGroupPolicy)?,
        A::AttachGroupPolicy(r) => attach(call, G, &r.group_name, &r.policy_arn).await.map(|()| Output::AttachGroupPolicy)?,
        A::DetachGroupPolicy(r) => detach(call, G, &r.group_name, &r.policy_arn).await.map(|()| Output::DetachGroupPolicy)?,
        A::ListAttachedGroupPolicies(r) => {
            let (attached_policies, is_truncated, marker) =
                list_attached(call, G, &r.group_name, r.path_prefix.as_deref(), r.marker.as_deref(), r.max_items).await?;
            Output::ListAttachedGroupPolicies(w::ListAttachedGroupPoliciesResponse { attached_policies: Some(attached_policies), is_truncated, marker })
        }
        A::GetUserPolicy(r) => {
            let policy_document = get_inline(call, U, &r.user_name, &r.policy_name).await?;
            Output::GetUserPolicy(w::GetUserPolicyResponse { user_name: r.user_name, policy_name: r.policy_name, policy_document })
        }
        A::GetRolePolicy(r) => {
            let policy_document = get_inline(call, R, &r.role_name, &r.policy_name).await?;
            Output::GetRolePolicy(w::GetRolePolicyResponse { role_name: r.role_name, policy_name: r.policy_name, policy_document })
        }
        A::ListUserPolicies(r) => {
            let (policy_names, is_truncated, marker) = list_inline(call, U, &r.user_name, r.marker.as_deref(), r.max_items).await?;
            Output::ListUserPolicies(w::ListUserPoliciesResponse { policy_names, is_truncated, marker })
        }
        A::ListRolePolicies(r) => {
            let (policy_names, is_truncated, marker) = list_inline(call, R, &r.role_name, r.marker.as_deref(), r.max_items).await?;
            Output::ListRolePolicies(w::ListRolePoliciesResponse { policy_names, is_truncated, marker })
        }
        A::DeleteUserPolicy(r) => delete_inline(call, U, &r.user_name, &r.policy_name).await.map(|()| Output::DeleteUserPolicy)?,
        A::DeleteRolePolicy(r) => delete_inline(call, R, &r.role_name, &r.policy_name).await.map(|()| Output::DeleteRolePolicy)?,
        A::AttachUserPolicy(r) => attach(call, U, &r.user_name, &r.policy_arn).await.map(|()| Output::AttachUserPolicy)?,
        A::AttachRolePolicy(r) => attach(call, R, &r.role_name, &r.policy_arn).await.map(|()| Output::AttachRolePolicy)?,
        A::DetachUserPolicy(r) => detach(call, U, &r.user_name, &r.policy_arn).await.map(|()| Output::DetachUserPolicy)?,
        A::DetachRolePolicy(r) => detach(call, R, &r.role_name, &r.policy_arn).await.map(|()| Output::DetachRolePolicy)?,
        A::ListAttachedUserPolicies(r) => {
            let (attached_policies, is_truncated, marker) =
                list_attached(call, U, &r.user_name, r.path_prefix.as_deref(), r.marker.as_deref(), r.max_items).await?;
            Output::ListAttachedUserPolicies(w::ListAttachedUserPoliciesResponse { attached_policies: Some(attached_policies), is_truncated, marker })
        }
        A::ListAttachedRolePolicies(r) => {
            let (attached_policies, is_truncated, marker) =
                list_attached(call, R, &r.role_name, r.path_prefix.as_deref(), r.marker.as_deref(), r.max_items).await?;
            Output::ListAttachedRolePolicies(w::ListAttachedRolePoliciesResponse { attached_policies: Some(attached_policies), is_truncated, marker })
        }
        A::TagUser(r) => tag(call, U, &r.user_name, &r.tags).await.map(|()| Output::TagUser)?,
        A::TagRole(r) => tag(call, R, &r.role_name, &r.tags).await.map(|()| Output::TagRole)?,
        A::UntagUser(r) => untag(call, U, &r.user_name, &r.tag_keys).await.map(|()| Output::UntagUser)?,
        A::UntagRole(r) => untag(call, R, &r.role_name, &r.tag_keys).await.map(|()| Output::UntagRole)?,
        A::ListUserTags(r) => {
            let (tags, is_truncated, marker) = list_tags(call, U, &r.user_name, r.marker.as_deref(), r.max_items).await?;
            Output::ListUserTags(w::ListUserTagsResponse { tags, is_truncated, marker })
        }
        A::ListRoleTags(r) => {
            let (tags, is_truncated, marker) = list_tags(call, R, &r.role_name, r.marker.as_deref(), r.max_items).await?;
            Output::ListRoleTags(w::ListRoleTagsResponse { tags, is_truncated, marker })
        }
        A::CreatePolicy(r) => create_policy(call, r).await?,
        A::GetPolicy(r) => {
            let p = describe(call, &r.policy_arn).await?;
            Output::GetPolicy(w::GetPolicyResponse { policy: Some(p) })
        }
        A::ListPolicies(r) => list_policies(call, r).await?,
        A::DeletePolicy(r) => delete_policy(call, &r.policy_arn).await?,
        A::CreatePolicyVersion(r) => create_version(call, r).await?,
        A::GetPolicyVersion(r) => {
            let (p, _) = customer_or_aws(call, &r.policy_arn).await?;
            let v = p.versions.iter().find(|v| v.version_id == r.version_id).ok_or_else(|| no_version(&r.policy_arn, &r.version_id))?;
            Output::GetPolicyVersion(w::GetPolicyVersionResponse { policy_version: Some(wire_version(&p, v, true)) })
        }
        A::ListPolicyVersions(r) => {
            let (p, _) = customer_or_aws(call, &r.policy_arn).await?;
            let mut versions = p.versions.clone();
            versions.sort_by_key(|v| std::cmp::Reverse(version_number(&v.version_id)));
            let (versions, is_truncated, marker) = page(versions, r.marker.as_deref(), r.max_items, |v| format!("{:010}", u32::MAX - version_number(&v.version_id)))?;
            let versions = Some(versions.iter().map(|v| wire_version(&p, v, false)).collect());
            Output::ListPolicyVersions(w::ListPolicyVersionsResponse { versions, is_truncated, marker })
        }
        A::DeletePolicyVersion(r) => {
            edit_policy(call, &r.policy_arn, |p| {
                if p.default_version == r.version_id {
                    return Err(IamError::DeleteConflict("Cannot delete the default version of a policy.".into()).into());
                }
                let before = p.versions.len();
                p.versions.retain(|v| v.version_id != r.version_id);
                if p.versions.len() == before {
                    return Err(no_version(&r.policy_arn, &r.version_id));
                }
                Ok(())
            })
            .await?;
            Output::DeletePolicyVersion
        }
        A::SetDefaultPolicyVersion(r) => {
            edit_policy(call, &r.policy_arn, |p| {
                if !p.versions.iter().any(|v| v.version_id == r.version_id) {
                    return Err(no_version(&r.policy_arn, &r.version_id));
                }
                p.default_version = r.version_id.clone();
                p.update_date = now();
                Ok(())
            })
            .await?;
            Output::SetDefaultPolicyVersion
        }
        other => return Err(ApiError::Unsupported(format!("Berth does not support the iam operation {} yet.", other.name()))),
    })
}

/// A user, role or group, as far as its policies and tags go.
enum Holder {
    User(User),
    Role(Role),
    Group(Group),
}

/// What the policy handlers change of a holder (groups have no tags).
struct Parts<'a> {
    inline: &'a mut BTreeMap<String, String>,
    attached: &'a mut Vec<String>,
    tags: Option<&'a mut BTreeMap<String, String>>,
}

impl Holder {
    fn parts(&mut self) -> Parts<'_> {
        match self {
            Self::User(u) => Parts { inline: &mut u.inline_policies, attached: &mut u.attached, tags: Some(&mut u.tags) },
            Self::Role(r) => Parts { inline: &mut r.inline_policies, attached: &mut r.attached, tags: Some(&mut r.tags) },
            Self::Group(g) => Parts { inline: &mut g.inline_policies, attached: &mut g.attached, tags: None },
        }
    }
}

async fn read(call: &Call<'_>, kind: EntityKind, name: &str) -> Result<(Holder, i64), ApiError> {
    Ok(match kind {
        EntityKind::Role => {
            let v = super::roles::load(call, name).await?;
            (Holder::Role(v.value), v.version)
        }
        EntityKind::Group => {
            let v = super::groups::load(call, name).await?;
            (Holder::Group(v.value), v.version)
        }
        _ => {
            let v = super::users::load(call, name).await?;
            (Holder::User(v.value), v.version)
        }
    })
}

/// Reads a holder, changes it and writes it back, again if another
/// writer got there first.
async fn edit(call: &Call<'_>, kind: EntityKind, name: &str, change: impl Fn(&mut Parts<'_>) -> Result<(), ApiError>) -> Result<(), ApiError> {
    for _ in 0..RETRIES {
        let (mut holder, version) = read(call, kind, name).await?;
        change(&mut holder.parts())?;
        let written = match &holder {
            Holder::User(u) => call.api.store.put_user(u, Some(version)).await.map(drop),
            Holder::Role(r) => call.api.store.put_role(r, Some(version)).await.map(drop),
            Holder::Group(g) => call.api.store.put_group(g, Some(version)).await.map(drop),
        };
        match written {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// An inline policy's name, and the characters all of a holder's inline
/// policies may have together.
fn inline_limit(kind: EntityKind) -> usize {
    match kind {
        EntityKind::Role => iam::MAX_ROLE_INLINE_CHARS,
        EntityKind::Group => iam::MAX_GROUP_INLINE_CHARS,
        _ => iam::MAX_USER_INLINE_CHARS,
    }
}

async fn put_inline(call: &Call<'_>, kind: EntityKind, holder: &str, name: String, doc: String) -> Result<(), ApiError> {
    iam::validate_name("policyName", &name, 128)?;
    let max = inline_limit(kind);
    check_policy(&doc, max)?;
    edit(call, kind, holder, |p| {
        p.inline.insert(name.clone(), doc.clone());
        let total: usize = p.inline.values().map(|d| d.chars().filter(|c| !c.is_whitespace()).count()).sum();
        if total > max {
            let what = match kind {
                EntityKind::Role => "RolePolicySize",
                EntityKind::Group => "GroupPolicySize",
                _ => "UserPolicySize",
            };
            return Err(IamError::LimitExceeded(format!("Maximum policy size of {max} bytes exceeded for {what}.")).into());
        }
        Ok(())
    })
    .await
}

fn no_inline(kind: EntityKind, name: &str) -> ApiError {
    IamError::NoSuchEntity(format!("The {} policy with name {name} cannot be found.", kind.word())).into()
}

async fn get_inline(call: &Call<'_>, kind: EntityKind, holder: &str, name: &str) -> Result<String, ApiError> {
    let (mut h, _) = read(call, kind, holder).await?;
    let doc = h.parts().inline.get(name).cloned().ok_or_else(|| no_inline(kind, name))?;
    Ok(url_encoded(&doc))
}

async fn list_inline(call: &Call<'_>, kind: EntityKind, holder: &str, marker: Option<&str>, max: Option<i32>) -> Result<Listed<String>, ApiError> {
    let (mut h, _) = read(call, kind, holder).await?;
    let names: Vec<String> = h.parts().inline.keys().cloned().collect();
    page(names, marker, max, Clone::clone)
}

async fn delete_inline(call: &Call<'_>, kind: EntityKind, holder: &str, name: &str) -> Result<(), ApiError> {
    edit(call, kind, holder, |p| p.inline.remove(name).map(drop).ok_or_else(|| no_inline(kind, name))).await
}

fn not_attachable(arn: &str) -> ApiError {
    EntityKind::Policy.not_found(arn).into()
}

async fn attach(call: &Call<'_>, kind: EntityKind, holder: &str, arn: &str) -> Result<(), ApiError> {
    customer_or_aws(call, arn).await?;
    edit(call, kind, holder, |p| {
        if p.attached.iter().any(|a| a == arn) {
            return Ok(());
        }
        if p.attached.len() >= MAX_ATTACHED {
            let what = match kind {
                EntityKind::Role => "PoliciesPerRole",
                EntityKind::Group => "PoliciesPerGroup",
                _ => "PoliciesPerUser",
            };
            return Err(IamError::LimitExceeded(format!("Cannot exceed quota for {what}: {MAX_ATTACHED}")).into());
        }
        p.attached.push(arn.to_owned());
        Ok(())
    })
    .await
}

async fn detach(call: &Call<'_>, kind: EntityKind, holder: &str, arn: &str) -> Result<(), ApiError> {
    edit(call, kind, holder, |p| {
        let before = p.attached.len();
        p.attached.retain(|a| a != arn);
        if p.attached.len() == before {
            return Err(IamError::NoSuchEntity(format!("Policy {arn} was not found.")).into());
        }
        Ok(())
    })
    .await
}

async fn list_attached(
    call: &Call<'_>,
    kind: EntityKind,
    holder: &str,
    prefix: Option<&str>,
    marker: Option<&str>,
    max: Option<i32>,
) -> Result<Listed<w::AttachedPolicy>, ApiError> {
    let prefix = path_prefix(prefix)?;
    let (mut h, _) = read(call, kind, holder).await?;
    let mut out = Vec::new();
    for arn in h.parts().attached.iter() {
        if let Ok((p, _)) = customer_or_aws(call, arn).await
            && p.path.starts_with(&prefix)
        {
            out.push(w::AttachedPolicy { policy_name: Some(p.name), policy_arn: Some(arn.clone()) });
        }
    }
    page(out, marker, max, |a| a.policy_arn.clone().unwrap_or_default())
}

async fn tag(call: &Call<'_>, kind: EntityKind, holder: &str, tags: &[w::Tag]) -> Result<(), ApiError> {
    let new = tag_pairs(Some(tags));
    edit(call, kind, holder, |p| {
        if let Some(tags) = p.tags.as_mut() {
            **tags = iam::merge_tags(tags, &new)?;
        }
        Ok(())
    })
    .await
}

async fn untag(call: &Call<'_>, kind: EntityKind, holder: &str, keys: &[String]) -> Result<(), ApiError> {
    edit(call, kind, holder, |p| {
        if let Some(tags) = p.tags.as_mut() {
            tags.retain(|k, _| !keys.iter().any(|d| d.eq_ignore_ascii_case(k)));
        }
        Ok(())
    })
    .await
}

async fn list_tags(call: &Call<'_>, kind: EntityKind, holder: &str, marker: Option<&str>, max: Option<i32>) -> Result<Listed<w::Tag>, ApiError> {
    let (mut h, _) = read(call, kind, holder).await?;
    let tags = h.parts().tags.map(|t| wire_tags(t)).unwrap_or_default();
    page(tags, marker, max, |t| t.key.clone())
}

/// Whether a managed policy is the account's (`false`: AWS's).
type IsCustomer = bool;

/// The managed policy `arn`: the account's (from the store) or AWS's (as
/// a record of one version, `v1`); NoSuchEntity otherwise.
async fn customer_or_aws(call: &Call<'_>, arn: &str) -> Result<(ManagedPolicy, IsCustomer), ApiError> {
    if let Some(p) = berth_iam::managed::get(arn) {
        let version = PolicyVersion { version_id: "v1".into(), document: p.document.to_owned(), create_date: 0.0 };
        let policy = ManagedPolicy {
            name: p.name.to_owned(),
            id: aws_policy_id(p.name),
            path: p.path.to_owned(),
            arn: p.arn.to_owned(),
            create_date: 0.0,
            update_date: 0.0,
            description: Some(p.description.to_owned()),
            default_version: "v1".into(),
            versions: vec![version],
            next_version: 2,
            tags: BTreeMap::new(),
        };
        return Ok((policy, false));
    }
    Ok((customer(call, arn).await?.value, true))
}

/// A stable id for an AWS managed policy: ANPA and its name's hash.
fn aws_policy_id(name: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let tail: String = digest.iter().map(|b| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[usize::from(b % 32)])).take(17).collect();
    format!("ANPA{tail}")
}

async fn customer(call: &Call<'_>, arn: &str) -> Result<berth_store::Versioned<ManagedPolicy>, ApiError> {
    if !arn.starts_with("arn:") {
        return Err(invalid(format!("ARN {arn} is not valid.")));
    }
    let name = iam::name_in_arn(arn, call.account(), EntityKind::Policy).ok_or_else(|| not_attachable(arn))?;
    match call.api.store.get_policy(name).await? {
        Some(v) if v.value.arn == arn => Ok(v),
        _ => Err(not_attachable(arn)),
    }
}

fn no_version(arn: &str, version: &str) -> ApiError {
    IamError::NoSuchEntity(format!("Policy {arn} version {version} does not exist or is not attachable.")).into()
}

fn version_number(id: &str) -> u32 {
    id.strip_prefix('v').and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn wire_version(p: &ManagedPolicy, v: &PolicyVersion, with_document: bool) -> w::PolicyVersion {
    w::PolicyVersion {
        document: with_document.then(|| url_encoded(&v.document)),
        version_id: Some(v.version_id.clone()),
        is_default_version: Some(v.version_id == p.default_version),
        create_date: Some(v.create_date),
    }
}

/// How many users, roles and groups have each managed policy attached, by ARN.
async fn attachment_counts(call: &Call<'_>) -> Result<BTreeMap<String, i32>, ApiError> {
    let mut counts = BTreeMap::new();
    let users = call.api.store.list_users().await?;
    let roles = call.api.store.list_roles().await?;
    let groups = call.api.store.list_groups().await?;
    let attached = users.iter().flat_map(|u| &u.value.attached).chain(roles.iter().flat_map(|r| &r.value.attached));
    for arn in attached.chain(groups.iter().flat_map(|g| &g.value.attached)) {
        *counts.entry(arn.clone()).or_insert(0) += 1;
    }
    Ok(counts)
}

fn wire_policy(p: &ManagedPolicy, attachments: i32, with_tags: bool) -> w::Policy {
    w::Policy {
        policy_name: Some(p.name.clone()),
        policy_id: Some(p.id.clone()),
        arn: Some(p.arn.clone()),
        path: Some(p.path.clone()),
        default_version_id: Some(p.default_version.clone()),
        attachment_count: Some(attachments),
        permissions_boundary_usage_count: Some(0),
        is_attachable: Some(true),
        description: p.description.clone(),
        create_date: Some(p.create_date),
        update_date: Some(p.update_date),
        tags: (with_tags && !p.tags.is_empty()).then(|| wire_tags(&p.tags)),
    }
}

async fn describe(call: &Call<'_>, arn: &str) -> Result<w::Policy, ApiError> {
    let (p, _) = customer_or_aws(call, arn).await?;
    let counts = attachment_counts(call).await?;
    Ok(wire_policy(&p, counts.get(arn).copied().unwrap_or(0), true))
}

async fn create_policy(call: &Call<'_>, r: w::CreatePolicyRequest) -> Result<Output, ApiError> {
    iam::validate_name("policyName", &r.policy_name, 128)?;
    let path = path(r.path.as_deref())?;
    check_policy(&r.policy_document, iam::MAX_MANAGED_POLICY_CHARS)?;
    let created = now();
    let policy = ManagedPolicy {
        arn: iam::arn(call.account(), EntityKind::Policy, &path, &r.policy_name),
        id: berth_store::iam::new_unique_id(EntityKind::Policy.id_prefix()),
        name: r.policy_name,
        path,
        create_date: created,
        update_date: created,
        description: r.description,
        default_version: "v1".into(),
        versions: vec![PolicyVersion { version_id: "v1".into(), document: r.policy_document, create_date: created }],
        next_version: 2,
        tags: iam::merge_tags(&BTreeMap::new(), &tag_pairs(r.tags.as_deref()))?,
    };
    match call.api.store.put_policy(&policy, None).await {
        Ok(_) => Ok(Output::CreatePolicy(w::CreatePolicyResponse { policy: Some(wire_policy(&policy, 0, true)) })),
        Err(StoreError::Conflict) => Err(EntityKind::Policy.exists(&policy.name).into()),
        Err(e) => Err(e.into()),
    }
}

async fn list_policies(call: &Call<'_>, r: w::ListPoliciesRequest) -> Result<Output, ApiError> {
    let prefix = path_prefix(r.path_prefix.as_deref())?;
    let scope = r.scope.unwrap_or(w::policyScopeType::All);
    let mut all: Vec<ManagedPolicy> = Vec::new();
    if scope != w::policyScopeType::Local {
        for p in berth_iam::managed::all() {
            all.push(customer_or_aws(call, p.arn).await?.0);
        }
    }
    if scope != w::policyScopeType::Aws {
        all.extend(call.api.store.list_policies().await?.into_iter().map(|v| v.value));
    }
    let counts = attachment_counts(call).await?;
    let only_attached = r.only_attached == Some(true);
    let mut listed: Vec<w::Policy> = all
        .iter()
        .filter(|p| p.path.starts_with(&prefix))
        .map(|p| wire_policy(p, counts.get(&p.arn).copied().unwrap_or(0), false))
        .filter(|p| !only_attached || p.attachment_count.unwrap_or(0) > 0)
        .collect();
    listed.sort_by_key(|p| p.arn.clone());
    let (policies, is_truncated, marker) = page(listed, r.marker.as_deref(), r.max_items, |p| p.arn.clone().unwrap_or_default())?;
    Ok(Output::ListPolicies(w::ListPoliciesResponse { policies: Some(policies), is_truncated, marker }))
}

fn aws_managed_refused(arn: &str) -> ApiError {
    IamError::InvalidInput(format!("{arn} is an AWS managed policy: it cannot be changed or deleted.")).into()
}

async fn delete_policy(call: &Call<'_>, arn: &str) -> Result<Output, ApiError> {
    if iam::is_aws_managed(arn) {
        return Err(aws_managed_refused(arn));
    }
    for _ in 0..RETRIES {
        let v = customer(call, arn).await?;
        if attachment_counts(call).await?.get(arn).copied().unwrap_or(0) > 0 {
            return Err(IamError::DeleteConflict("Cannot delete a policy attached to entities.".into()).into());
        }
        if v.value.versions.len() > 1 {
            return Err(IamError::DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. \
                 The default version is deleted with the policy."
                    .into(),
            )
            .into());
        }
        match call.api.store.delete_policy(&v.value.name, v.version).await {
            Ok(_) => return Ok(Output::DeletePolicy),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Reads, changes and writes a customer managed policy.
async fn edit_policy(call: &Call<'_>, arn: &str, change: impl Fn(&mut ManagedPolicy) -> Result<(), ApiError>) -> Result<ManagedPolicy, ApiError> {
    if iam::is_aws_managed(arn) {
        return Err(aws_managed_refused(arn));
    }
    for _ in 0..RETRIES {
        let v = customer(call, arn).await?;
        let mut p = v.value;
        change(&mut p)?;
        match call.api.store.put_policy(&p, Some(v.version)).await {
            Ok(_) => return Ok(p),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

async fn create_version(call: &Call<'_>, r: w::CreatePolicyVersionRequest) -> Result<Output, ApiError> {
    check_policy(&r.policy_document, iam::MAX_MANAGED_POLICY_CHARS)?;
    let default = r.set_as_default == Some(true);
    let created = now();
    let p = edit_policy(call, &r.policy_arn, |p| {
        if p.versions.len() >= iam::MAX_POLICY_VERSIONS {
            return Err(IamError::LimitExceeded(format!(
                "A managed policy can have up to {} versions. Before you create a new version, you must delete an existing version.",
                iam::MAX_POLICY_VERSIONS
            ))
            .into());
        }
        let id = format!("v{}", p.next_version);
        p.next_version += 1;
        p.versions.push(PolicyVersion { version_id: id.clone(), document: r.policy_document.clone(), create_date: created });
        if default {
            p.default_version = id;
        }
        p.update_date = created;
        Ok(())
    })
    .await?;
    let v = p.versions.last().map(|v| wire_version(&p, v, false));
    Ok(Output::CreatePolicyVersion(w::CreatePolicyVersionResponse { policy_version: v }))
}
