//! AWS managed policies (`arn:aws:iam::aws:policy/…`) that ECS users
//! attach by ARN, with their default versions' documents whole, as AWS
//! publishes them (`managed/NAME.json`, none trimmed; ReadOnlyAccess is
//! over 100 KB). The versions are those of the AWS Managed Policy
//! Reference in mid-2026 (e.g. AmazonECS_FullAccess v21, ReadOnlyAccess
//! v186, PowerUserAccess v12).

/// One AWS managed policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub name: &'static str,
    /// `arn:aws:iam::aws:policy/PATH/NAME`.
    pub arn: &'static str,
    pub path: &'static str,
    pub description: &'static str,
    /// The default version's JSON document.
    pub document: &'static str,
}

macro_rules! managed {
    ($( $name:literal, $path:literal, $description:literal; )*) => {
        &[$(ManagedPolicy {
            name: $name,
            arn: concat!("arn:aws:iam::aws:policy", $path, $name),
            path: $path,
            description: $description,
            document: include_str!(concat!("../managed/", $name, ".json")),
        }),*]
    };
}

static ALL: &[ManagedPolicy] = managed! {
    "AdministratorAccess", "/", "Provides full access to AWS services and resources.";
    "ReadOnlyAccess", "/", "Provides read-only access to AWS services and resources.";
    "PowerUserAccess", "/", "Provides full access to AWS services and resources, but does not allow management of Users and groups.";
    "AmazonECS_FullAccess", "/", "Provides administrative access to Amazon ECS resources and enables ECS features through access to other AWS service resources, including VPCs, Auto Scaling groups, and CloudFormation stacks.";
    "AmazonECSTaskExecutionRolePolicy", "/service-role/", "Provides access to other AWS service resources that are required to run Amazon ECS tasks";
    "CloudWatchLogsFullAccess", "/", "Provides full access to CloudWatch Logs";
    "CloudWatchLogsReadOnlyAccess", "/", "Provides read only access to CloudWatch Logs";
    "AmazonEC2ContainerRegistryReadOnly", "/", "Provides read-only access to Amazon EC2 Container Registry repositories.";
    "SecretsManagerReadWrite", "/", "Provides read/write access to AWS Secrets Manager via the AWS Management Console. Note: this exludes IAM actions, so combine with IAMFullAccess if rotation configuration is required.";
    "AmazonSSMReadOnlyAccess", "/", "Provides read only access to Amazon SSM.";
    "IAMFullAccess", "/", "Provides full access to IAM via the AWS Management Console.";
    "IAMReadOnlyAccess", "/", "Provides read only access to IAM via the AWS Management Console.";
    "ElasticLoadBalancingFullAccess", "/", "Provides full access to Amazon ElasticLoadBalancing, and limited access to other services necessary to provide ElasticLoadBalancing features.";
    "CloudWatchFullAccess", "/", "Provides full access to CloudWatch.";
    "AmazonEventBridgeSchedulerFullAccess", "/", "Provides full access to Amazon EventBridge Scheduler using the AWS Management Console and SDK";
};

/// Every managed policy Berth knows.
pub fn all() -> &'static [ManagedPolicy] {
    ALL
}

/// The managed policy with this ARN.
pub fn get(arn: &str) -> Option<&'static ManagedPolicy> {
    ALL.iter().find(|p| p.arn == arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolicyDocument;

    #[test]
    fn every_document_parses() {
        assert!(!all().is_empty());
        for p in all() {
            if let Err(e) = PolicyDocument::parse(p.document) {
                panic!("{}: {e}", p.name);
            }
            assert_eq!(get(p.arn).map(|g| g.name), Some(p.name));
            assert!(p.arn.starts_with("arn:aws:iam::aws:policy/") && p.arn.ends_with(p.name), "{}", p.arn);
        }
        assert!(get("arn:aws:iam::aws:policy/NoSuchPolicy").is_none());
        assert!(get("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy").is_some());
    }

    /// The documents mean what their names say for the services Berth serves.
    #[test]
    fn documents_allow_what_they_say() {
        use crate::{Decision, Request, evaluate};
        let keys = std::collections::BTreeMap::new();
        let decide = |name: &str, action: &str| {
            let doc = all().iter().find(|p| p.name == name).and_then(|p| PolicyDocument::parse(p.document).ok());
            let doc = doc.unwrap_or_else(|| panic!("{name}"));
            let req = Request {
                principal_arn: "arn:aws:iam::123456789012:user/u",
                principal_account: "123456789012",
                action,
                resource: "*",
                keys: &keys,
            };
            evaluate(&[&doc], None, &req)
        };
        assert_eq!(decide("ReadOnlyAccess", "ecs:DescribeTasks"), Decision::Allow);
        assert_eq!(decide("ReadOnlyAccess", "ecs:ListClusters"), Decision::Allow);
        assert_eq!(decide("ReadOnlyAccess", "ecs:RunTask"), Decision::ImplicitDeny);
        assert_eq!(decide("PowerUserAccess", "ecs:RunTask"), Decision::Allow);
        assert_eq!(decide("PowerUserAccess", "iam:CreateUser"), Decision::ImplicitDeny);
        assert_eq!(decide("AmazonECS_FullAccess", "ecs:RunTask"), Decision::Allow);
        assert_eq!(decide("AmazonECSTaskExecutionRolePolicy", "logs:PutLogEvents"), Decision::Allow);
        assert_eq!(decide("AmazonECSTaskExecutionRolePolicy", "ecs:RunTask"), Decision::ImplicitDeny);
        assert_eq!(decide("CloudWatchLogsReadOnlyAccess", "logs:GetLogEvents"), Decision::Allow);
        assert_eq!(decide("CloudWatchLogsReadOnlyAccess", "logs:PutLogEvents"), Decision::ImplicitDeny);
        assert_eq!(decide("IAMReadOnlyAccess", "iam:GetUser"), Decision::Allow);
        assert_eq!(decide("IAMReadOnlyAccess", "iam:CreateUser"), Decision::ImplicitDeny);
        assert_eq!(decide("AdministratorAccess", "anything:AtAll"), Decision::Allow);
    }
}
