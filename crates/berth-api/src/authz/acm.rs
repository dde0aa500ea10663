//! What each ACM action asks of IAM: the certificate's ARN (ListCertificates
//! and a first ImportCertificate have no resource).

use berth_wire::acm::{Action, Tag};

use super::{ask, with_tags};
use crate::caller::IamRequest;

pub(crate) fn table(action: &Action) -> Vec<IamRequest> {
    let acm = |resource: &str| ask("acm", action.name(), [resource.to_owned()]);
    let r = match action {
        Action::ImportCertificate(r) => tagged(acm(r.certificate_arn.as_deref().unwrap_or("*")), r.tags.iter().flatten()),
        Action::AddTagsToCertificate(r) => tagged(acm(&r.certificate_arn), &r.tags),
        Action::DeleteCertificate(r) => acm(&r.certificate_arn),
        Action::DescribeCertificate(r) => acm(&r.certificate_arn),
        Action::GetCertificate(r) => acm(&r.certificate_arn),
        Action::ListTagsForCertificate(r) => acm(&r.certificate_arn),
        _ => acm("*"),
    };
    vec![r]
}

fn tagged<'t>(r: IamRequest, tags: impl IntoIterator<Item = &'t Tag>) -> IamRequest {
    with_tags(r, tags.into_iter().map(|t| (t.key.as_str(), t.value.as_deref().unwrap_or(""))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates() {
        let cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
        let a = Action::parse("DescribeCertificate", format!(r#"{{"CertificateArn":"{cert}"}}"#).as_bytes()).ok().flatten().expect("action");
        let r = table(&a).remove(0);
        assert_eq!((r.action.as_str(), r.resources.clone()), ("acm:DescribeCertificate", vec![cert.to_owned()]));
        let a = Action::parse("ListCertificates", b"{}").ok().flatten().expect("action");
        assert_eq!(table(&a)[0].resources, ["*"]);
    }
}
