//! Image references, normalised the way Docker does
//! (`busybox` is `docker.io/library/busybox:latest`).

use oci_spec::distribution::Reference;

use crate::ImageError;

pub(crate) fn parse(reference: &str) -> Result<Reference, ImageError> {
    reference.parse::<Reference>().map_err(|e| ImageError::InvalidReference {
        reference: reference.to_owned(),
        reason: e.to_string(),
    })
}

/// The key an image is recorded under: the full normalised reference.
pub(crate) fn key(reference: &Reference) -> String {
    reference.whole()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        let k = |s: &str| parse(s).map(|r| key(&r)).ok();
        assert_eq!(k("busybox").as_deref(), Some("docker.io/library/busybox:latest"));
        assert_eq!(k("127.0.0.1:5000/a/b:v1").as_deref(), Some("127.0.0.1:5000/a/b:v1"));
        assert!(parse("library/BusyBox").is_err());
        assert!(parse("busybox@sha256:abc").is_err());
        assert!(parse("").is_err());
    }
}
