//! What SSM Parameter Store's and Secrets Manager's actions ask of IAM:
//! the parameter's ARN (`arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`, a
//! `:version` or `:label` selector dropped; every name of GetParameters
//! and DeleteParameters), and the secret's full ARN, random suffix and
//! all (a name or a partial ARN is looked up; one that names no secret is
//! asked as written — `secret:NAME` for a name — so a caller learns that
//! it does not exist only when allowed to ask); CreateSecret asks
//! `secret:NAME-??????` (what `NAME-*` and `NAME-??????` in a policy
//! match). DescribeParameters and ListSecrets have no resource. Secrets
//! Manager's condition keys: `secretsmanager:SecretId`, `…:Name`,
//! `…:VersionId`, `…:VersionStage`, the secret's tags as
//! `secretsmanager:ResourceTag/…` and `aws:ResourceTag/…`.

use berth_model::Account;
use berth_model::secrets::AWSCURRENT;
use berth_secrets::lookup::{find_secret, parameter_ref_arn};
use berth_wire::{secretsmanager as sm, ssm};

use super::{arn, ask, ask_any, with_tag_keys, with_tags};
use crate::caller::IamRequest;
use crate::{Api, ApiError};

pub(crate) fn ssm(account: &Account, action: &ssm::Action) -> Vec<IamRequest> {
    use ssm::Action as A;
    let on = |names: &mut dyn Iterator<Item = &String>| ask("ssm", action.name(), names.map(|n| parameter_ref_arn(account, n)));
    let one = |name: &String| on(&mut std::iter::once(name));
    let tagged = |r: IamRequest, tags: &[ssm::Tag]| with_tags(r, tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    let r = match action {
        A::GetParameter(r) => one(&r.name),
        A::GetParameters(r) => on(&mut r.names.iter()),
        A::GetParametersByPath(r) => one(&r.path.trim_end_matches('/').to_owned()),
        A::GetParameterHistory(r) => one(&r.name),
        A::LabelParameterVersion(r) => one(&r.name),
        A::PutParameter(r) => tagged(one(&r.name), r.tags.as_deref().unwrap_or_default()),
        A::DeleteParameter(r) => one(&r.name),
        A::DeleteParameters(r) => on(&mut r.names.iter()),
        A::AddTagsToResource(r) => tagged(one(&r.resource_id), &r.tags),
        A::RemoveTagsFromResource(r) => with_tag_keys(one(&r.resource_id), &r.tag_keys),
        A::ListTagsForResource(r) => one(&r.resource_id),
        A::DescribeParameters(_) => ask_any("ssm", action.name()),
    };
    vec![r]
}

pub(crate) async fn secretsmanager(api: &Api, action: &sm::Action) -> Result<Vec<IamRequest>, ApiError> {
    use sm::Action as A;
    let id = match action {
        A::CreateSecret(c) => {
            let r = ask("secretsmanager", action.name(), [arn(api.account(), "secretsmanager", &format!("secret:{}-??????", c.name))])
                .key("secretsmanager:Name", [c.name.clone()]);
            return Ok(vec![with_tags(r, pairs(c.tags.as_deref().unwrap_or_default()))]);
        }
        A::DeleteSecret(r) => &r.secret_id,
        A::DescribeSecret(r) => &r.secret_id,
        A::GetSecretValue(r) => &r.secret_id,
        A::ListSecretVersionIds(r) => &r.secret_id,
        A::PutSecretValue(r) => &r.secret_id,
        A::RestoreSecret(r) => &r.secret_id,
        A::TagResource(r) => &r.secret_id,
        A::UntagResource(r) => &r.secret_id,
        A::UpdateSecret(r) => &r.secret_id,
        A::ListSecrets(_) => return Ok(vec![ask_any("secretsmanager", action.name())]),
    };
    let found = find_secret(api.store.as_ref(), id).await?.map(|v| v.value);
    let resource = match &found {
        Some(s) => s.arn.clone(),
        None if id.starts_with("arn:") => id.clone(),
        None => arn(api.account(), "secretsmanager", &format!("secret:{id}")),
    };
    let mut r = ask("secretsmanager", action.name(), [resource]).key("secretsmanager:SecretId", [id.clone()]);
    for (k, v) in found.iter().flat_map(|s| &s.tags) {
        r = r.key(&format!("secretsmanager:ResourceTag/{k}"), [v.clone()]).key(&format!("aws:ResourceTag/{k}"), [v.clone()]);
    }
    Ok(vec![match action {
        A::GetSecretValue(g) => {
            let r = r.key("secretsmanager:VersionStage", [g.version_stage.clone().unwrap_or_else(|| AWSCURRENT.to_owned())]);
            match &g.version_id {
                Some(v) => r.key("secretsmanager:VersionId", [v.clone()]),
                None => r,
            }
        }
        A::TagResource(t) => with_tags(r, pairs(&t.tags)),
        A::UntagResource(u) => with_tag_keys(r, &u.tag_keys),
        _ => r,
    }])
}

/// Secrets Manager's tags as (key, value); a tag without a key is none.
fn pairs(tags: &[sm::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().filter_map(|t| Some((t.key.as_deref()?, t.value.as_deref().unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;

    #[test]
    fn parameters_are_asked_by_arn_without_their_selectors() {
        let get = ssm::Action::parse("GetParameters", br#"{"Names":["/app/db:3","plain","arn:aws:ssm:us-east-1:123456789012:parameter/x"]}"#)
            .ok()
            .flatten()
            .expect("action");
        let r = ssm(&account(), &get).remove(0);
        assert_eq!(r.action, "ssm:GetParameters");
        assert_eq!(
            r.resources,
            [
                "arn:aws:ssm:us-east-1:123456789012:parameter/app/db",
                "arn:aws:ssm:us-east-1:123456789012:parameter/plain",
                "arn:aws:ssm:us-east-1:123456789012:parameter/x"
            ]
        );
        let describe = ssm::Action::parse("DescribeParameters", b"{}").ok().flatten().expect("action");
        assert_eq!(ssm(&account(), &describe)[0].resources, ["*"]);
    }
}
