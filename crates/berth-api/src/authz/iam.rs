//! What each IAM action asks of IAM: the user, role, group or policy it
//! acts on, by ARN (a user's, role's and group's with their path, from the store;
//! an action on one's own user, e.g. CreateAccessKey without UserName, the
//! caller's), request tags, and `iam:PolicyARN` for attachments; the List*
//! of the account have no resource.

use berth_model::Account;
use berth_wire::iam::{Action, Tag};

use super::{ask, with_tag_keys, with_tags};
use crate::caller::{Caller, IamRequest};
use crate::{Api, ApiError};

/// What an action names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A user by name (`None`: the caller's own user).
    User(Option<&'a str>),
    Role(&'a str),
    Group(&'a str),
    Policy(&'a str),
    /// A user, role, group or policy being created: `KIND/PATH/NAME`.
    New { kind: &'static str, path: Option<&'a str>, name: &'a str },
    Account,
}

/// The requests of `action`, reading the named user's, role's or group's ARN.
pub(crate) async fn requests(api: &Api, caller: &Caller, action: &Action) -> Result<Vec<IamRequest>, ApiError> {
    let account = api.account();
    let resource = match target(action) {
        Target::User(None) => caller.arn.clone(),
        Target::User(Some(name)) => match api.store.get_user(name).await? {
            Some(u) => u.value.arn,
            None => iam_arn(account, "user", None, name),
        },
        Target::Role(name) => match api.store.get_role(name).await? {
            Some(r) => r.value.arn,
            None => iam_arn(account, "role", None, name),
        },
        Target::Group(name) => match api.store.get_group(name).await? {
            Some(g) => g.value.arn,
            None => iam_arn(account, "group", None, name),
        },
        other => resource(account, &other),
    };
    Ok(vec![keys(ask("iam", action.name(), [resource]), action)])
}

/// The resource of a target that needs no read.
fn resource(account: &Account, target: &Target<'_>) -> String {
    match *target {
        Target::Group(name) => iam_arn(account, "group", None, name),
        Target::Policy(arn) => arn.to_owned(),
        Target::New { kind, path, name } => iam_arn(account, kind, path, name),
        Target::User(name) => iam_arn(account, "user", None, name.unwrap_or_default()),
        Target::Role(name) => iam_arn(account, "role", None, name),
        Target::Account => "*".to_owned(),
    }
}

pub(crate) fn target(action: &Action) -> Target<'_> {
    use Target::{Group, New, Policy, Role, User};
    match action {
        Action::CreateUser(r) => New { kind: "user", path: r.path.as_deref(), name: &r.user_name },
        Action::CreateRole(r) => New { kind: "role", path: r.path.as_deref(), name: &r.role_name },
        Action::CreateGroup(r) => New { kind: "group", path: r.path.as_deref(), name: &r.group_name },
        Action::CreatePolicy(r) => New { kind: "policy", path: r.path.as_deref(), name: &r.policy_name },
        Action::GetUser(r) => User(r.user_name.as_deref()),
        Action::CreateAccessKey(r) => User(r.user_name.as_deref()),
        Action::DeleteAccessKey(r) => User(r.user_name.as_deref()),
        Action::UpdateAccessKey(r) => User(r.user_name.as_deref()),
        Action::ListAccessKeys(r) => User(r.user_name.as_deref()),
        Action::DeleteUser(r) => User(Some(&r.user_name)),
        Action::UpdateUser(r) => User(Some(&r.user_name)),
        Action::TagUser(r) => User(Some(&r.user_name)),
        Action::UntagUser(r) => User(Some(&r.user_name)),
        Action::ListUserTags(r) => User(Some(&r.user_name)),
        Action::PutUserPolicy(r) => User(Some(&r.user_name)),
        Action::GetUserPolicy(r) => User(Some(&r.user_name)),
        Action::DeleteUserPolicy(r) => User(Some(&r.user_name)),
        Action::ListUserPolicies(r) => User(Some(&r.user_name)),
        Action::AttachUserPolicy(r) => User(Some(&r.user_name)),
        Action::DetachUserPolicy(r) => User(Some(&r.user_name)),
        Action::ListAttachedUserPolicies(r) => User(Some(&r.user_name)),
        Action::ListGroupsForUser(r) => User(Some(&r.user_name)),
        Action::GetRole(r) => Role(&r.role_name),
        Action::DeleteRole(r) => Role(&r.role_name),
        Action::UpdateRole(r) => Role(&r.role_name),
        Action::UpdateAssumeRolePolicy(r) => Role(&r.role_name),
        Action::TagRole(r) => Role(&r.role_name),
        Action::UntagRole(r) => Role(&r.role_name),
        Action::ListRoleTags(r) => Role(&r.role_name),
        Action::PutRolePolicy(r) => Role(&r.role_name),
        Action::GetRolePolicy(r) => Role(&r.role_name),
        Action::DeleteRolePolicy(r) => Role(&r.role_name),
        Action::ListRolePolicies(r) => Role(&r.role_name),
        Action::AttachRolePolicy(r) => Role(&r.role_name),
        Action::DetachRolePolicy(r) => Role(&r.role_name),
        Action::ListAttachedRolePolicies(r) => Role(&r.role_name),
        Action::GetGroup(r) => Group(&r.group_name),
        Action::DeleteGroup(r) => Group(&r.group_name),
        Action::AddUserToGroup(r) => Group(&r.group_name),
        Action::RemoveUserFromGroup(r) => Group(&r.group_name),
        Action::PutGroupPolicy(r) => Group(&r.group_name),
        Action::GetGroupPolicy(r) => Group(&r.group_name),
        Action::DeleteGroupPolicy(r) => Group(&r.group_name),
        Action::ListGroupPolicies(r) => Group(&r.group_name),
        Action::AttachGroupPolicy(r) => Group(&r.group_name),
        Action::DetachGroupPolicy(r) => Group(&r.group_name),
        Action::ListAttachedGroupPolicies(r) => Group(&r.group_name),
        Action::GetPolicy(r) => Policy(&r.policy_arn),
        Action::DeletePolicy(r) => Policy(&r.policy_arn),
        Action::CreatePolicyVersion(r) => Policy(&r.policy_arn),
        Action::GetPolicyVersion(r) => Policy(&r.policy_arn),
        Action::DeletePolicyVersion(r) => Policy(&r.policy_arn),
        Action::ListPolicyVersions(r) => Policy(&r.policy_arn),
        Action::SetDefaultPolicyVersion(r) => Policy(&r.policy_arn),
        // ListUsers, ListRoles, ListGroups, ListPolicies, GetAccessKeyLastUsed, …
        _ => Target::Account,
    }
}

/// The condition keys an action brings: tags, and the policy it attaches.
fn keys(r: IamRequest, action: &Action) -> IamRequest {
    let tagged = |r: IamRequest, tags: &[Tag]| with_tags(r, tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    let attach = |r: IamRequest, arn: &str| r.key("iam:PolicyARN", [arn.to_owned()]);
    match action {
        Action::CreateUser(a) => tagged(r, a.tags.as_deref().unwrap_or_default()),
        Action::CreateRole(a) => tagged(r, a.tags.as_deref().unwrap_or_default()),
        Action::CreatePolicy(a) => tagged(r, a.tags.as_deref().unwrap_or_default()),
        Action::TagUser(a) => tagged(r, &a.tags),
        Action::TagRole(a) => tagged(r, &a.tags),
        Action::UntagUser(a) => with_tag_keys(r, &a.tag_keys),
        Action::UntagRole(a) => with_tag_keys(r, &a.tag_keys),
        Action::AttachUserPolicy(a) => attach(r, &a.policy_arn),
        Action::DetachUserPolicy(a) => attach(r, &a.policy_arn),
        Action::AttachRolePolicy(a) => attach(r, &a.policy_arn),
        Action::DetachRolePolicy(a) => attach(r, &a.policy_arn),
        Action::AttachGroupPolicy(a) => attach(r, &a.policy_arn),
        Action::DetachGroupPolicy(a) => attach(r, &a.policy_arn),
        _ => r,
    }
}

/// `arn:aws:iam::ACCOUNT:KIND/PATH/NAME` (IAM ARNs have no region).
fn iam_arn(account: &Account, kind: &str, path: Option<&str>, name: &str) -> String {
    let path = path.filter(|p| p.starts_with('/') && p.ends_with('/')).unwrap_or("/");
    format!("arn:aws:iam::{}:{kind}{path}{name}", account.account_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;
    use berth_wire::codec::QueryInput;

    fn action(form: &str) -> Action {
        let q = QueryInput::parse(form.as_bytes()).expect("form");
        Action::from_query(&q).ok().flatten().expect("action")
    }

    #[test]
    fn targets_and_keys() {
        let a = account();
        let create = action("Action=CreateUser&UserName=ci&Path=/build/&Tags.member.1.Key=team&Tags.member.1.Value=web");
        assert_eq!(resource(&a, &target(&create)), "arn:aws:iam::123456789012:user/build/ci");
        let r = keys(ask("iam", "CreateUser", ["x".to_owned()]), &create);
        assert_eq!(r.keys.get("aws:requesttag/team"), Some(&vec!["web".to_owned()]));
        let attach = action("Action=AttachRolePolicy&RoleName=app&PolicyArn=arn:aws:iam::aws:policy/ReadOnlyAccess");
        assert_eq!(target(&attach), Target::Role("app"));
        let r = keys(ask("iam", "AttachRolePolicy", ["x".to_owned()]), &attach);
        assert_eq!(r.keys.get("iam:policyarn"), Some(&vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()]));
        assert_eq!(target(&action("Action=CreateAccessKey")), Target::User(None));
        assert_eq!(resource(&a, &target(&action("Action=ListUsers"))), "*");
        assert_eq!(resource(&a, &target(&action("Action=GetPolicy&PolicyArn=arn:aws:iam::123456789012:policy/p"))), "arn:aws:iam::123456789012:policy/p");
    }
}
