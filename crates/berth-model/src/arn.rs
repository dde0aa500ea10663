//! ECS ARNs: building them for an account and region, and reading the
//! `cluster`/`taskDefinition`/`resourceArn` parameters that accept either
//! a short name or a full ARN.

use crate::ModelError;

/// The account and region this Berth answers as. Every ARN it writes
/// carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub region: String,
    pub account_id: String,
}

impl Account {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}", self.region, self.account_id)
    }

    pub fn cluster_arn(&self, name: &str) -> String {
        format!("{}:cluster/{name}", self.prefix())
    }

    pub fn task_definition_arn(&self, family: &str, revision: i32) -> String {
        format!("{}:task-definition/{family}:{revision}", self.prefix())
    }

    pub fn task_arn(&self, cluster: &str, id: &str) -> String {
        format!("{}:task/{cluster}/{id}", self.prefix())
    }

    pub fn service_arn(&self, cluster: &str, name: &str) -> String {
        format!("{}:service/{cluster}/{name}", self.prefix())
    }
}

/// A resource named by an ECS ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceArn {
    Cluster { name: String },
    TaskDefinition { family: String, revision: i32 },
    Task { cluster: String, id: String },
    Service { cluster: String, name: String },
}

impl ResourceArn {
    /// Parses an ECS ARN of this account and region. ARNs of another
    /// partition, service, region or account are refused: Berth holds no
    /// such resource.
    pub fn parse(account: &Account, arn: &str) -> Result<Self, ModelError> {
        let invalid = || ModelError::invalid(format!("The ARN provided is invalid: {arn}"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [scheme, partition, service, region, account_id, resource] = parts.as_slice() else {
            return Err(invalid());
        };
        if *scheme != "arn" || *partition != "aws" || *service != "ecs" {
            return Err(invalid());
        }
        if *region != account.region || *account_id != account.account_id {
            return Err(ModelError::invalid(format!(
                "The ARN {arn} is not in this account and region ({}/{})",
                account.account_id, account.region
            )));
        }
        let (kind, rest) = resource.split_once('/').ok_or_else(invalid)?;
        match kind {
            "cluster" if !rest.is_empty() && !rest.contains('/') => Ok(Self::Cluster { name: rest.to_owned() }),
            "task-definition" => {
                let (family, rev) = rest.rsplit_once(':').ok_or_else(invalid)?;
                let revision = rev.parse::<i32>().map_err(|_| invalid())?;
                if family.is_empty() || revision < 1 {
                    return Err(invalid());
                }
                Ok(Self::TaskDefinition { family: family.to_owned(), revision })
            }
            "task" => {
                let (cluster, id) = rest.split_once('/').ok_or_else(invalid)?;
                if cluster.is_empty() || id.is_empty() {
                    return Err(invalid());
                }
                Ok(Self::Task { cluster: cluster.to_owned(), id: id.to_owned() })
            }
            "service" => {
                let (cluster, name) = rest.split_once('/').ok_or_else(invalid)?;
                if cluster.is_empty() || name.is_empty() {
                    return Err(invalid());
                }
                Ok(Self::Service { cluster: cluster.to_owned(), name: name.to_owned() })
            }
            _ => Err(invalid()),
        }
    }
}

/// The cluster a request names: a short name, a cluster ARN, or nothing
/// (ECS's `default` cluster).
pub fn cluster_name(account: &Account, param: Option<&str>) -> Result<String, ModelError> {
    match param {
        None | Some("") => Ok(crate::cluster::DEFAULT_CLUSTER.to_owned()),
        Some(p) if p.starts_with("arn:") => match ResourceArn::parse(account, p)? {
            ResourceArn::Cluster { name } => Ok(name),
            _ => Err(ModelError::invalid(format!("{p} is not a cluster ARN"))),
        },
        Some(p) => Ok(p.to_owned()),
    }
}

/// A task definition reference: `family`, `family:revision`, or a full
/// ARN. `None` revision means the latest ACTIVE revision.
pub fn task_definition_ref(account: &Account, param: &str) -> Result<(String, Option<i32>), ModelError> {
    if param.starts_with("arn:") {
        return match ResourceArn::parse(account, param)? {
            ResourceArn::TaskDefinition { family, revision } => Ok((family, Some(revision))),
            _ => Err(ModelError::invalid(format!("{param} is not a task definition ARN"))),
        };
    }
    match param.rsplit_once(':') {
        Some((family, rev)) => {
            let revision = rev
                .parse::<i32>()
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| ModelError::invalid(format!("Invalid revision number. Number: {rev}")))?;
            Ok((family.to_owned(), Some(revision)))
        }
        None if param.is_empty() => Err(ModelError::invalid("Task definition can not be blank.")),
        None => Ok((param.to_owned(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> Account {
        Account { region: "us-east-1".into(), account_id: "000000000000".into() }
    }

    #[test]
    fn builds_ecs_arns() {
        let a = acct();
        assert_eq!(a.cluster_arn("web"), "arn:aws:ecs:us-east-1:000000000000:cluster/web");
        assert_eq!(a.task_definition_arn("api", 3), "arn:aws:ecs:us-east-1:000000000000:task-definition/api:3");
        assert_eq!(a.task_arn("web", "abc"), "arn:aws:ecs:us-east-1:000000000000:task/web/abc");
    }

    #[test]
    fn parses_what_it_builds() {
        let a = acct();
        assert_eq!(ResourceArn::parse(&a, &a.cluster_arn("web")), Ok(ResourceArn::Cluster { name: "web".into() }));
        assert_eq!(
            ResourceArn::parse(&a, &a.task_definition_arn("api", 12)),
            Ok(ResourceArn::TaskDefinition { family: "api".into(), revision: 12 })
        );
        assert_eq!(
            ResourceArn::parse(&a, &a.service_arn("web", "front")),
            Ok(ResourceArn::Service { cluster: "web".into(), name: "front".into() })
        );
    }

    #[test]
    fn refuses_foreign_and_malformed_arns() {
        let a = acct();
        for bad in [
            "arn:aws:ecs:eu-west-1:000000000000:cluster/web",
            "arn:aws:ecs:us-east-1:111111111111:cluster/web",
            "arn:aws:s3:us-east-1:000000000000:cluster/web",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/api",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/api:0",
            "arn:aws:ecs:us-east-1:000000000000:widget/x",
            "not-an-arn",
        ] {
            assert!(ResourceArn::parse(&a, bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn cluster_param_accepts_name_arn_or_nothing() {
        let a = acct();
        assert_eq!(cluster_name(&a, None).unwrap(), "default");
        assert_eq!(cluster_name(&a, Some("web")).unwrap(), "web");
        assert_eq!(cluster_name(&a, Some(&a.cluster_arn("web"))).unwrap(), "web");
        assert!(cluster_name(&a, Some(&a.task_definition_arn("x", 1))).is_err());
    }

    #[test]
    fn task_definition_refs() {
        let a = acct();
        assert_eq!(task_definition_ref(&a, "api").unwrap(), ("api".into(), None));
        assert_eq!(task_definition_ref(&a, "api:4").unwrap(), ("api".into(), Some(4)));
        assert_eq!(task_definition_ref(&a, &a.task_definition_arn("api", 2)).unwrap(), ("api".into(), Some(2)));
        assert!(task_definition_ref(&a, "api:x").is_err());
        assert!(task_definition_ref(&a, "api:0").is_err());
        assert!(task_definition_ref(&a, "").is_err());
    }
}
