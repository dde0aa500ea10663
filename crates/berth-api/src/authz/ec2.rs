//! What each EC2 action Berth serves asks of IAM: Describe* have no
//! resource type; creations name the new resource as `TYPE/*` and the VPC;
//! the others the security group or subnet by id.

use berth_model::Account;
use berth_wire::ec2::{Action, Tag, TagSpecification};

use super::{arn, ask, with_tags};
use crate::caller::IamRequest;

pub(crate) fn table(account: &Account, action: &Action) -> Vec<IamRequest> {
    let ec2 = |resources: Vec<String>| ask("ec2", action.name(), resources);
    let res = |kind: &str, id: &str| arn(account, "ec2", &format!("{kind}/{id}"));
    let group = |id: Option<&String>| res("security-group", id.map_or("*", String::as_str));
    let r = match action {
        Action::CreateSecurityGroup(r) => {
            let mut resources = vec![res("security-group", "*")];
            resources.extend(r.vpc_id.iter().map(|v| res("vpc", v)));
            tagged(ec2(resources), specs(&r.tag_specifications))
        }
        Action::CreateSubnet(r) => tagged(ec2(vec![res("subnet", "*"), res("vpc", &r.vpc_id)]), specs(&r.tag_specifications)),
        Action::DeleteSecurityGroup(r) => ec2(vec![group(r.group_id.as_ref())]),
        Action::DeleteSubnet(r) => ec2(vec![res("subnet", &r.subnet_id)]),
        Action::AuthorizeSecurityGroupIngress(r) => ec2(vec![group(r.group_id.as_ref())]),
        Action::RevokeSecurityGroupIngress(r) => ec2(vec![group(r.group_id.as_ref())]),
        Action::AuthorizeSecurityGroupEgress(r) => ec2(vec![group(Some(&r.group_id))]),
        Action::RevokeSecurityGroupEgress(r) => ec2(vec![group(Some(&r.group_id))]),
        Action::CreateTags(r) => tagged(ec2(r.resources.iter().map(|id| by_id(account, id)).collect()), r.tags.iter()),
        Action::DeleteTags(r) => {
            let keys: Vec<String> = r.tags.iter().flatten().filter_map(|t| t.key.clone()).collect();
            super::with_tag_keys(ec2(r.resources.iter().map(|id| by_id(account, id)).collect()), &keys)
        }
        _ => ec2(vec!["*".to_owned()]),
    };
    vec![r]
}

fn specs(specs: &Option<Vec<TagSpecification>>) -> impl Iterator<Item = &Tag> {
    specs.iter().flatten().flat_map(|s| s.tags.iter().flatten())
}

fn tagged<'t>(r: IamRequest, tags: impl Iterator<Item = &'t Tag>) -> IamRequest {
    with_tags(r, tags.filter_map(|t| Some((t.key.as_deref()?, t.value.as_deref().unwrap_or("")))))
}

/// A resource id as its ARN, by its prefix.
fn by_id(account: &Account, id: &str) -> String {
    let kind = match id.split_once('-').map(|(p, _)| p) {
        Some("sg") => "security-group",
        Some("subnet") => "subnet",
        Some("vpc") => "vpc",
        Some("eni") => "network-interface",
        _ => return "*".to_owned(),
    };
    arn(account, "ec2", &format!("{kind}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;
    use berth_wire::codec::QueryInput;

    fn requests(form: &str) -> Vec<IamRequest> {
        let q = QueryInput::parse(form.as_bytes()).expect("form");
        let action = Action::from_query(&q).ok().flatten().expect("action");
        table(&account(), &action)
    }

    #[test]
    fn resources() {
        let r = &requests("Action=DescribeVpcs")[0];
        assert_eq!((r.action.as_str(), r.resources.clone()), ("ec2:DescribeVpcs", vec!["*".to_owned()]));
        let r = &requests("Action=CreateSecurityGroup&GroupName=g&GroupDescription=d&VpcId=vpc-1&TagSpecification.1.ResourceType=security-group&TagSpecification.1.Tag.1.Key=env&TagSpecification.1.Tag.1.Value=prod")[0];
        assert_eq!(r.resources, ["arn:aws:ec2:us-east-1:123456789012:security-group/*", "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"]);
        assert_eq!(r.keys.get("aws:requesttag/env"), Some(&vec!["prod".to_owned()]));
        let r = &requests("Action=AuthorizeSecurityGroupIngress&GroupId=sg-12")[0];
        assert_eq!(r.resources, ["arn:aws:ec2:us-east-1:123456789012:security-group/sg-12"]);
        let r = &requests("Action=CreateTags&ResourceId.1=subnet-9&Tag.1.Key=a&Tag.1.Value=b")[0];
        assert_eq!(r.resources, ["arn:aws:ec2:us-east-1:123456789012:subnet/subnet-9"]);
    }
}
