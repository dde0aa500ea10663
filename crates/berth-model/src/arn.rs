//! ECS ARNs: building them for an account and region, and reading the
//! `cluster`/`taskDefinition`/`resourceArn` parameters that accept either
//! a short name or a full ARN.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// The account and region this Berth answers as. Every ARN it writes
/// carries them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    pub region: String,
    pub account_id: String,
}

impl Account {
    pub fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}", self.region, self.account_id)
    }

    pub fn cluster_arn(&self, name: &str) -> String {
        self.cluster(name).to_string()
    }

    pub fn task_definition_arn(&self, family: &str, revision: i32) -> String {
        self.task_definition(family, revision).to_string()
    }

    pub fn task_arn(&self, cluster: &str, id: &str) -> String {
        self.task(cluster, id).to_string()
    }

    pub fn service_arn(&self, cluster: &str, name: &str) -> String {
        self.service(cluster, name).to_string()
    }

    pub fn cluster(&self, name: &str) -> ClusterArn {
        ClusterArn { account: self.clone(), name: name.to_owned() }
    }

    pub fn task(&self, cluster: &str, id: &str) -> TaskArn {
        TaskArn { account: self.clone(), cluster: cluster.to_owned(), id: id.to_owned() }
    }

    pub fn task_definition(&self, family: &str, revision: i32) -> TaskDefinitionArn {
        TaskDefinitionArn { account: self.clone(), family: family.to_owned(), revision }
    }

    pub fn service(&self, cluster: &str, name: &str) -> ServiceArn {
        ServiceArn { account: self.clone(), cluster: cluster.to_owned(), name: name.to_owned() }
    }
}

/// A cluster's ARN, parsed: `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterArn {
    pub account: Account,
    pub name: String,
}

/// A task's ARN, parsed: `arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskArn {
    pub account: Account,
    pub cluster: String,
    /// 32 lowercase hex digits for tasks Berth starts.
    pub id: String,
}

/// A task definition revision's ARN, parsed:
/// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskDefinitionArn {
    pub account: Account,
    pub family: String,
    pub revision: i32,
}

/// A service's ARN, parsed: `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceArn {
    pub account: Account,
    pub cluster: String,
    pub name: String,
}

impl TaskArn {
    /// The ARN of the cluster the task runs in.
    pub fn cluster_arn(&self) -> ClusterArn {
        ClusterArn { account: self.account.clone(), name: self.cluster.clone() }
    }
}

impl ServiceArn {
    pub fn cluster_arn(&self) -> ClusterArn {
        ClusterArn { account: self.account.clone(), name: self.cluster.clone() }
    }
}

/// Splits `arn:aws:ecs:REGION:ACCOUNT:RESOURCE` into its account and
/// resource, for an ECS ARN of any account and region.
fn split_ecs(arn: &str) -> Option<(Account, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account_id, resource] = parts.as_slice() else {
        return None;
    };
    if *scheme != "arn" || *partition != "aws" || *service != "ecs" || region.is_empty() || account_id.is_empty() {
        return None;
    }
    Some((Account { region: (*region).to_owned(), account_id: (*account_id).to_owned() }, resource))
}

/// A typed ARN: written as AWS writes it, read back from that text, and
/// stored as that text (serde goes through the string form).
macro_rules! typed_arn {
    ($ty:ident, $what:literal, |$s:ident| $display:expr, |$account:ident, $rest:ident| $parse:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $s = self;
                write!(f, "{}:{}", $s.account.prefix(), $display)
            }
        }

        impl FromStr for $ty {
            type Err = ModelError;
            fn from_str(text: &str) -> Result<Self, ModelError> {
                let invalid = || ModelError::invalid(format!("{text} is not a {} ARN.", $what));
                let ($account, resource) = split_ecs(text).ok_or_else(invalid)?;
                let $rest = resource.strip_prefix(concat!($what, "/")).ok_or_else(invalid)?;
                let parsed: Option<Self> = $parse;
                parsed.ok_or_else(invalid)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A non-empty path segment without `/`.
fn segment(s: &str) -> Option<String> {
    (!s.is_empty() && !s.contains('/')).then(|| s.to_owned())
}

typed_arn!(ClusterArn, "cluster", |a| format!("cluster/{}", a.name), |account, rest| {
    segment(rest).map(|name| ClusterArn { account, name })
});

typed_arn!(TaskArn, "task", |a| format!("task/{}/{}", a.cluster, a.id), |account, rest| {
    rest.split_once('/').and_then(|(c, i)| Some(TaskArn { account, cluster: segment(c)?, id: segment(i)? }))
});

typed_arn!(ServiceArn, "service", |a| format!("service/{}/{}", a.cluster, a.name), |account, rest| {
    rest.split_once('/').and_then(|(c, n)| Some(ServiceArn { account, cluster: segment(c)?, name: segment(n)? }))
});

typed_arn!(TaskDefinitionArn, "task-definition", |a| format!("task-definition/{}:{}", a.family, a.revision), |account, rest| {
    rest.rsplit_once(':').and_then(|(family, rev)| {
        let revision = rev.parse::<i32>().ok().filter(|r| *r >= 1)?;
        Some(TaskDefinitionArn { account, family: segment(family)?, revision })
    })
});

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
        let (owner, resource) = split_ecs(arn).ok_or_else(invalid)?;
        if owner != *account {
            return Err(ModelError::invalid(format!(
                "The ARN {arn} is not in this account and region ({}/{})",
                account.account_id, account.region
            )));
        }
        let kind = resource.split_once('/').map_or(resource, |(k, _)| k);
        let parsed = match kind {
            "cluster" => arn.parse::<ClusterArn>().map(|a| Self::Cluster { name: a.name }),
            "task-definition" => {
                arn.parse::<TaskDefinitionArn>().map(|a| Self::TaskDefinition { family: a.family, revision: a.revision })
            }
            "task" => arn.parse::<TaskArn>().map(|a| Self::Task { cluster: a.cluster, id: a.id }),
            "service" => arn.parse::<ServiceArn>().map(|a| Self::Service { cluster: a.cluster, name: a.name }),
            _ => return Err(invalid()),
        };
        parsed.map_err(|_| invalid())
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
    fn typed_arns_round_trip_as_text_and_json() {
        let a = acct();
        let task = a.task("web", "0123456789abcdef0123456789abcdef");
        assert_eq!(task.to_string().parse::<TaskArn>().unwrap(), task);
        assert_eq!(task.cluster_arn().to_string(), a.cluster_arn("web"));
        let def = a.task_definition("api", 7);
        assert_eq!(def.to_string(), "arn:aws:ecs:us-east-1:000000000000:task-definition/api:7");
        assert_eq!(serde_json::to_string(&def).unwrap(), format!("\"{def}\""));
        assert_eq!(serde_json::from_str::<TaskDefinitionArn>(&format!("\"{def}\"")).unwrap(), def);
        let svc = a.service("web", "front");
        assert_eq!(svc.to_string().parse::<ServiceArn>().unwrap(), svc);
        // Another account's ARN parses (it is well formed) but keeps its account.
        let other: ClusterArn = "arn:aws:ecs:eu-west-1:111111111111:cluster/x".parse().unwrap();
        assert_eq!((other.account.region.as_str(), other.name.as_str()), ("eu-west-1", "x"));
        for bad in [
            "arn:aws:ecs:us-east-1:000000000000:task/web",
            "arn:aws:ecs:us-east-1:000000000000:task/web/a/b",
            "arn:aws:ecs:us-east-1:000000000000:cluster/web",
        ] {
            assert!(bad.parse::<TaskArn>().is_err(), "{bad}");
        }
        assert!("arn:aws:ecs:us-east-1:000000000000:task-definition/api:0".parse::<TaskDefinitionArn>().is_err());
        assert!(serde_json::from_str::<TaskArn>("\"nope\"").is_err());
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
