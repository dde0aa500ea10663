//! Berth's own operator API: what AWS has no API for here (the node's
//! image cache, subnets and security groups; later nodes). Written by hand
//! in the style of the generated AWS shapes: AWS JSON 1.1 with
//! `X-Amz-Target: Berth_20261201.<Op>`, SigV4 signing name `berth`,
//! camelCase members, times as epoch seconds.
//!
//! Image imports and loads carry a tarball, too big for a JSON body: they
//! are `PUT /berth/images/import?name=NAME` and `PUT /berth/images/load`
//! (optionally `?name=NAME`) with the tarball as the body, signed like any
//! request and with the body's SHA-256 in `X-Amz-Content-Sha256`; both
//! answer an [`ImagesResponse`].

use serde::{Deserialize, Serialize};

/// The `X-Amz-Target` prefix of Berth's operator API.
pub const TARGET_PREFIX: &str = "Berth_20261201";

/// The SigV4 signing name of Berth's operator API.
pub const SIGNING_NAME: &str = "berth";

/// The upload route of `berth image import`.
pub const IMPORT_PATH: &str = "/berth/images/import";

/// The upload route of `berth image load`.
pub const LOAD_PATH: &str = "/berth/images/load";

/// An image in a node's cache.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetail {
    /// The normalised reference, e.g. `127.0.0.1:5000/busybox:latest`.
    pub reference: String,
    /// What the reference resolved to (an index's digest for a
    /// multi-platform tag, else the manifest's).
    pub digest: String,
    /// The linux/amd64 image manifest's digest.
    pub manifest_digest: String,
    /// Number of layers.
    pub layers: u32,
    /// Sum of the layer blobs' sizes as stored (compressed), in bytes.
    pub size_bytes: u64,
    /// `registry`, `import` or `load`.
    pub source: String,
    /// When it entered the cache (epoch seconds).
    pub pulled_at: f64,
    /// The image's Entrypoint and Cmd, if it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullImageRequest {
    pub reference: String,
    /// Registry credentials for this pull (never stored or logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullImageResponse {
    pub image: ImageDetail,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesRequest {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesResponse {
    pub images: Vec<ImageDetail>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveImageRequest {
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveImageResponse {
    pub reference: String,
    /// Blobs and unpacked layers no other image used, now deleted.
    pub blobs_removed: u64,
    pub layers_removed: u64,
    pub bytes_freed: u64,
}

/// A subnet tasks get their addresses from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetDetail {
    /// `subnet-…`.
    pub subnet_id: String,
    pub cidr_block: String,
    #[serde(default)]
    pub name: String,
    /// Whether tasks may reach beyond the host.
    pub egress: bool,
    /// Addresses still free for tasks.
    pub available_ip_address_count: u64,
    /// Whether this is the subnet Berth made at first start.
    pub default_for_berth: bool,
    pub created_at: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubnetRequest {
    pub cidr_block: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Let tasks reach beyond the host (masqueraded behind its address).
    #[serde(default)]
    pub egress: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetResponse {
    pub subnet: SubnetDetail,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSubnetsRequest {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSubnetsResponse {
    pub subnets: Vec<SubnetDetail>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSubnetRequest {
    pub subnet_id: String,
}

/// An ingress rule: `protocol` is `tcp`, `udp`, `icmp` or `-1` (all);
/// ports for TCP/UDP; exactly one of `cidrIp` and `sourceGroupId`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    pub ip_protocol: String,
    #[serde(default)]
    pub from_port: Option<u16>,
    #[serde(default)]
    pub to_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupDetail {
    /// `sg-…`.
    pub group_id: String,
    pub group_name: String,
    #[serde(default)]
    pub description: String,
    pub ingress: Vec<IngressRule>,
    /// Egress rules (`cidrIp`/`sourceGroupId` is the destination), as
    /// EC2's AuthorizeSecurityGroupEgress makes them.
    #[serde(default)]
    pub egress: Vec<IngressRule>,
    pub created_at: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSecurityGroupRequest {
    pub group_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub ingress: Option<Vec<IngressRule>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupResponse {
    pub security_group: SecurityGroupDetail,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSecurityGroupsRequest {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSecurityGroupsResponse {
    pub security_groups: Vec<SecurityGroupDetail>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSecurityGroupRequest {
    pub group_id: String,
}

/// Adds (Authorize) or removes (Revoke) ingress rules of a group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupIngressRequest {
    pub group_id: String,
    pub rules: Vec<IngressRule>,
}

/// An answer with nothing to say.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmptyResponse {}

/// Every operation of Berth's operator API, with its typed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    InterruptSpotTasks(InterruptSpotTasksRequest),
    GetCostReport(GetCostReportRequest),
    PullImage(PullImageRequest),
    ListImages(ListImagesRequest),
    RemoveImage(RemoveImageRequest),
    CreateSubnet(CreateSubnetRequest),
    ListSubnets(ListSubnetsRequest),
    DeleteSubnet(DeleteSubnetRequest),
    CreateSecurityGroup(CreateSecurityGroupRequest),
    ListSecurityGroups(ListSecurityGroupsRequest),
    DeleteSecurityGroup(DeleteSecurityGroupRequest),
    AuthorizeSecurityGroupIngress(SecurityGroupIngressRequest),
    RevokeSecurityGroupIngress(SecurityGroupIngressRequest),
}

impl Action {
    /// Parses operation `name` with its JSON `body`; `None` for an
    /// operation Berth's API does not have.
    pub fn parse(name: &str, body: &[u8]) -> Result<Option<Self>, serde_json::Error> {
        Ok(Some(match name {
            "InterruptSpotTasks" => Self::InterruptSpotTasks(serde_json::from_slice(body)?),
            "GetCostReport" => Self::GetCostReport(serde_json::from_slice(body)?),
            "PullImage" => Self::PullImage(serde_json::from_slice(body)?),
            "ListImages" => Self::ListImages(serde_json::from_slice(body)?),
            "RemoveImage" => Self::RemoveImage(serde_json::from_slice(body)?),
            "CreateSubnet" => Self::CreateSubnet(serde_json::from_slice(body)?),
            "ListSubnets" => Self::ListSubnets(serde_json::from_slice(body)?),
            "DeleteSubnet" => Self::DeleteSubnet(serde_json::from_slice(body)?),
            "CreateSecurityGroup" => Self::CreateSecurityGroup(serde_json::from_slice(body)?),
            "ListSecurityGroups" => Self::ListSecurityGroups(serde_json::from_slice(body)?),
            "DeleteSecurityGroup" => Self::DeleteSecurityGroup(serde_json::from_slice(body)?),
            "AuthorizeSecurityGroupIngress" => Self::AuthorizeSecurityGroupIngress(serde_json::from_slice(body)?),
            "RevokeSecurityGroupIngress" => Self::RevokeSecurityGroupIngress(serde_json::from_slice(body)?),
            _ => return Ok(None),
        }))
    }

    /// The operation's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InterruptSpotTasks(_) => "InterruptSpotTasks",
            Self::GetCostReport(_) => "GetCostReport",
            Self::PullImage(_) => "PullImage",
            Self::ListImages(_) => "ListImages",
            Self::RemoveImage(_) => "RemoveImage",
            Self::CreateSubnet(_) => "CreateSubnet",
            Self::ListSubnets(_) => "ListSubnets",
            Self::DeleteSubnet(_) => "DeleteSubnet",
            Self::CreateSecurityGroup(_) => "CreateSecurityGroup",
            Self::ListSecurityGroups(_) => "ListSecurityGroups",
            Self::DeleteSecurityGroup(_) => "DeleteSecurityGroup",
            Self::AuthorizeSecurityGroupIngress(_) => "AuthorizeSecurityGroupIngress",
            Self::RevokeSecurityGroupIngress(_) => "RevokeSecurityGroupIngress",
        }
    }
}

/// `berth spot interrupt`: Fargate Spot takes capacity back. Either
/// `taskArn` (that Spot task) or `count` (that many running Spot tasks,
/// 1 when neither is given).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterruptSpotTasksRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterruptSpotTasksResponse {
    /// The tasks that got the two-minute warning.
    pub task_arns: Vec<String>,
    /// Each as the interruption wrote it (in `taskArns`' order).
    #[serde(default)]
    pub tasks: Vec<InterruptedTask>,
}

/// A task as its interruption left it: still RUNNING, wanted STOPPED,
/// stopCode TerminationNotice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterruptedTask {
    pub task_arn: String,
    pub last_status: String,
    pub desired_status: String,
    pub stop_code: String,
    pub stopped_reason: String,
}

/// `berth cost`: Fargate usage and cost since `since` (epoch seconds),
/// per period (`hourly` or `daily`) and per `by` (`cluster`, `service`,
/// `family`, `capacity-provider` or `tag:KEY`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetCostReportRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
}

/// One row of a cost report: a period and a group's usage and cost.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostRow {
    /// The period's start and end (epoch seconds).
    pub start: i64,
    pub end: i64,
    /// The group's value (`""` for usage without it, e.g. an untagged task).
    pub key: String,
    /// Task-seconds billed.
    pub seconds: i64,
    pub vcpu_hours: f64,
    pub gb_hours: f64,
    pub storage_gb_hours: f64,
    /// USD.
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetCostReportResponse {
    pub by: String,
    pub granularity: String,
    pub rows: Vec<CostRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_unknown_ones_are_none() {
        let a = Action::parse("PullImage", br#"{"reference": "busybox", "newField": 1}"#).unwrap();
        assert_eq!(a, Some(Action::PullImage(PullImageRequest { reference: "busybox".into(), ..Default::default() })));
        assert!(Action::parse("PullImage", b"{}").is_err(), "reference is required");
        assert_eq!(Action::parse("Nope", b"{}").unwrap(), None);
        assert_eq!(Action::parse("ListImages", b"{}").unwrap().map(|a| a.name()), Some("ListImages"));
    }
}
