//! EC2 (`ec2`, the EC2 protocol): the VPC subset over Berth's subnets and
//! security groups. Typed requests in, typed responses out.

use berth_wire::ec2::{Action, Output};

use crate::{Api, ApiError};

/// One authenticated EC2 call.
pub(crate) struct Call<'a> {
    pub api: &'a Api,
    /// The signing key (EC2 answers as its account).
    #[allow(dead_code)]
    pub access_key_id: &'a str,
}

pub(crate) async fn dispatch(_call: &Call<'_>, action: Action) -> Result<Output, ApiError> {
    let op = match &action {
        Action::AuthorizeSecurityGroupEgress(_) => "AuthorizeSecurityGroupEgress",
        _ => "this operation",
    };
    Err(ApiError::Unsupported(format!("Berth does not support the ec2 operation {op} yet.")))
}
