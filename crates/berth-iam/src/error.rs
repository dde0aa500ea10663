//! Why a policy document is refused: IAM's MalformedPolicyDocument, with
//! IAM's own wording where it has one.

/// A policy document IAM would refuse. `Display` is the message of the
/// `MalformedPolicyDocument` error the API returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or an element of the wrong JSON type.
    #[error("Syntax errors in policy.")]
    Syntax,
    #[error("Unknown field {0}")]
    UnknownField(String),
    #[error("Missing required field {0}")]
    MissingField(&'static str),
    #[error("Has prohibited field {0}")]
    ProhibitedField(&'static str),
    #[error("Policy document should not specify a principal.")]
    PrincipalInIdentityPolicy,
    #[error("Invalid Version {0}: the policy language versions are \"2012-10-17\" and \"2008-10-17\"")]
    InvalidVersion(String),
    #[error("Invalid effect {0}: the policy failed legacy parsing (Effect is \"Allow\" or \"Deny\")")]
    InvalidEffect(String),
    #[error("Statement can specify only one of {0} and Not{0}")]
    BothElements(&'static str),
    #[error("Policy statement must contain actions.")]
    NoActions,
    #[error("Policy statement must contain resources.")]
    NoResources,
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ({0})")]
    NoVendor(String),
    #[error("Resource {0} must be in ARN format or \"*\".")]
    ResourceNotArn(String),
    #[error("Invalid principal in policy: {0}")]
    InvalidPrincipal(String),
    #[error("Invalid Condition type : {0}")]
    InvalidConditionType(String),
    #[error("Statement IDs (SID) in a single policy must be unique.")]
    DuplicateSid,
    #[error("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*")]
    InvalidSid,
}
