//! Signs requests the way the aws CLI and the SDKs do, with AWS's own SigV4
//! implementation (`aws-sigv4`), so Berth's verifier is tested against code
//! it shares nothing with.

use std::time::SystemTime;

use anyhow::Context as _;
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

/// A long-term access key, as in a `credentials` file.
#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// What a client may add beyond the plain CLI-style signature.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Sent (and signed) as `X-Amz-Security-Token`, as with temporary credentials.
    pub session_token: Option<String>,
    /// Add a signed `X-Amz-Content-Sha256` header, as S3 clients do.
    pub content_sha256_header: bool,
}

/// Signs `req` in place as the aws CLI would: adds `X-Amz-Date` and
/// `Authorization` (replacing any there), signing every header present
/// except `User-Agent` and friends. The request must carry a `Host` header
/// (or an absolute URI) and its body is hashed as is.
pub fn sign(
    req: &mut http::Request<Vec<u8>>,
    creds: &Creds,
    region: &str,
    service: &str,
    at: SystemTime,
) -> anyhow::Result<()> {
    sign_with(req, creds, region, service, at, &SignOptions::default())
}

/// [`sign`] with [`SignOptions`].
pub fn sign_with(
    req: &mut http::Request<Vec<u8>>,
    creds: &Creds,
    region: &str,
    service: &str,
    at: SystemTime,
    options: &SignOptions,
) -> anyhow::Result<()> {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        options.session_token.clone(),
        None,
        "berth-testinfra",
    )
    .into();
    let mut settings = SigningSettings::default();
    if options.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .context("invalid signing parameters")?
        .into();

    let (instructions, _signature) = {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| Ok((k.as_str(), v.to_str().with_context(|| format!("header {k} is not text"))?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let uri = req.uri().to_string();
        let signable =
            SignableRequest::new(req.method().as_str(), uri, headers.into_iter(), SignableBody::Bytes(req.body()))
                .context("request cannot be signed")?;
        aws_sigv4::http_request::sign(signable, &params).context("signing failed")?.into_parts()
    };
    instructions.apply_to_request_http1x(req);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn adds_date_and_authorization() {
        let mut req = http::Request::builder()
            .method("POST")
            .uri("http://berth.test/")
            .header("host", "berth.test")
            .header("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters")
            .body(b"{}".to_vec())
            .unwrap();
        let creds = Creds { access_key_id: "AKIDEXAMPLE".into(), secret_access_key: "secret".into() };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        sign(&mut req, &creds, "us-east-1", "ecs", at).unwrap();
        assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-target, Signature="
            ),
            "{auth}"
        );
        assert!(!format!("{creds:?}").contains("secret\""), "Debug hides the secret");
    }
}
