//! What each Elastic Load Balancing action asks of IAM: the load balancer,
//! listener, rule or target group ARN it names (a creation: the new
//! resource's ARN with `*` for its id; CreateListener the load balancer,
//! CreateRule the listener, as the reference has them); Describe* have no
//! resource type.

use berth_model::Account;
use berth_wire::elbv2::{Action, Tag};

use super::{arn, ask, with_tag_keys, with_tags};
use crate::caller::IamRequest;

pub(crate) fn table(account: &Account, action: &Action) -> Vec<IamRequest> {
    let elb = |resources: Vec<String>| ask("elasticloadbalancing", action.name(), resources);
    let one = |resource: &String| elb(vec![resource.clone()]);
    let new = |resource: String| elb(vec![arn(account, "elasticloadbalancing", &resource)]);
    let r = match action {
        Action::CreateLoadBalancer(r) => tagged(new(format!("loadbalancer/app/{}/*", r.name)), &r.tags),
        Action::CreateTargetGroup(r) => tagged(new(format!("targetgroup/{}/*", r.name)), &r.tags),
        Action::CreateListener(r) => tagged(one(&r.load_balancer_arn), &r.tags),
        Action::CreateRule(r) => tagged(one(&r.listener_arn), &r.tags),
        Action::DeleteLoadBalancer(r) => one(&r.load_balancer_arn),
        Action::ModifyLoadBalancerAttributes(r) => one(&r.load_balancer_arn),
        Action::DeleteListener(r) => one(&r.listener_arn),
        Action::ModifyListener(r) => one(&r.listener_arn),
        Action::ModifyListenerAttributes(r) => one(&r.listener_arn),
        Action::DeleteRule(r) => one(&r.rule_arn),
        Action::ModifyRule(r) => one(&r.rule_arn),
        Action::SetRulePriorities(r) => elb(r.rule_priorities.iter().filter_map(|p| p.rule_arn.clone()).collect()),
        Action::DeleteTargetGroup(r) => one(&r.target_group_arn),
        Action::ModifyTargetGroup(r) => one(&r.target_group_arn),
        Action::ModifyTargetGroupAttributes(r) => one(&r.target_group_arn),
        Action::RegisterTargets(r) => one(&r.target_group_arn),
        Action::DeregisterTargets(r) => one(&r.target_group_arn),
        Action::AddTags(r) => tagged(elb(r.resource_arns.clone()), &Some(r.tags.clone())),
        Action::RemoveTags(r) => with_tag_keys(elb(r.resource_arns.clone()), &r.tag_keys),
        _ => elb(vec!["*".to_owned()]),
    };
    vec![r]
}

fn tagged(r: IamRequest, tags: &Option<Vec<Tag>>) -> IamRequest {
    with_tags(r, tags.iter().flatten().map(|t| (t.key.as_str(), t.value.as_deref().unwrap_or(""))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;
    use berth_wire::codec::QueryInput;

    fn request(form: &str) -> IamRequest {
        let q = QueryInput::parse(form.as_bytes()).expect("form");
        let action = Action::from_query(&q).ok().flatten().expect("action");
        table(&account(), &action).remove(0)
    }

    #[test]
    fn resources() {
        let r = request("Action=CreateLoadBalancer&Name=web&Tags.member.1.Key=env&Tags.member.1.Value=prod");
        assert_eq!(r.action, "elasticloadbalancing:CreateLoadBalancer");
        assert_eq!(r.resources, ["arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/*"]);
        assert_eq!(r.keys.get("aws:tagkeys"), Some(&vec!["env".to_owned()]));
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123";
        let r = request(&format!("Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.1"));
        assert_eq!(r.resources, [tg]);
        let r = request("Action=DescribeLoadBalancers");
        assert_eq!(r.resources, ["*"]);
    }
}
