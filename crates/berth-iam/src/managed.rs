//! AWS managed policies (`arn:aws:iam::aws:policy/…`) that ECS users
//! attach by ARN, with their documents as the AWS Managed Policy
//! Reference gives them (`managed/*.json`; a file's trimming, if any, is
//! said in the table below).

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
    }
}
