//! AWS Certificate Manager (`acm`, AWS JSON 1.1): the subset Berth's
//! HTTPS listeners need. ImportCertificate reads the PEM certificate
//! (x509-parser) for its names, validity, serial and key algorithm, and
//! checks that the private key is the certificate's (rustls loads the key
//! and derives its public key). The key is kept in the store beside the
//! record and is never shown: GetCertificate answers the certificate and
//! its chain only, as ACM does.

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_model::elb::{self, CertificateRecord};
use berth_store::{PrivateKeyPem, StoreError};
use berth_wire::acm::{
    Action, CertificateDetail, CertificateStatus, CertificateSummary, CertificateType, DescribeCertificateResponse,
    GetCertificateResponse, ImportCertificateRequest, ImportCertificateResponse, KeyAlgorithm, ListCertificatesRequest,
    ListCertificatesResponse, ListTagsForCertificateResponse, RenewalEligibility, Tag,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use crate::{Api, ApiError};

fn acm(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::service(code, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    acm("ValidationException", message)
}

fn not_found(arn: &str) -> ApiError {
    acm("ResourceNotFoundException", format!("Could not find certificate {arn}."))
}

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Value, ApiError> {
    Ok(match action {
        Action::ImportCertificate(r) => json(&import(api, r).await?),
        Action::DescribeCertificate(r) => {
            let cert = get(api, &r.certificate_arn).await?;
            let detail = detail(api, &cert).await?;
            json(&DescribeCertificateResponse { certificate: Some(detail) })
        }
        Action::ListCertificates(r) => json(&list(api, r).await?),
        Action::GetCertificate(r) => {
            let cert = get(api, &r.certificate_arn).await?;
            json(&GetCertificateResponse { certificate: Some(cert.certificate_pem), certificate_chain: cert.chain_pem })
        }
        Action::DeleteCertificate(r) => {
            let cert = get(api, &r.certificate_arn).await?;
            let users = in_use_by(api, &cert.arn).await?;
            if let Some(l) = users.first() {
                return Err(acm("ResourceInUseException", format!("Certificate {} is in use by {l}.", cert.arn)));
            }
            api.store.delete_certificate(&cert.arn).await?;
            Value::Object(Default::default())
        }
        Action::AddTagsToCertificate(r) => {
            for _ in 0..8 {
                let v = api.store.get_certificate(&r.certificate_arn).await?.ok_or_else(|| not_found(&r.certificate_arn))?;
                let mut next = v.value.clone();
                next.tags = tags(&next.tags, &r.tags)?;
                match api.store.update_certificate(&next, v.version).await {
                    Ok(_) => return Ok(Value::Object(Default::default())),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            return Err(ApiError::Internal(StoreError::Conflict));
        }
        Action::ListTagsForCertificate(r) => {
            let cert = get(api, &r.certificate_arn).await?;
            let tags = cert.tags.into_iter().map(|(key, value)| Tag { key, value: Some(value) }).collect();
            json(&ListTagsForCertificateResponse { tags: Some(tags) })
        }
    })
}

/// A response as JSON (plain data: serialising it cannot fail).
fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

async fn get(api: &Api, arn: &str) -> Result<CertificateRecord, ApiError> {
    if !arn.starts_with("arn:aws:acm:") {
        return Err(acm("InvalidArnException", format!("The ARN {arn} is not a certificate ARN.")));
    }
    Ok(api.store.get_certificate(arn).await?.ok_or_else(|| not_found(arn))?.value)
}

fn tags(current: &BTreeMap<String, String>, new: &[Tag]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = current.clone();
    for t in new {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(acm("InvalidTagException", format!("Tag key '{}' must be 1 to 128 characters and its value at most 256.", t.key)));
        }
        if t.key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(acm("InvalidTagException", format!("Tag key '{}' uses the reserved prefix 'aws:'.", t.key)));
        }
        out.insert(t.key.clone(), t.value.clone().unwrap_or_default());
    }
    if out.len() > 50 {
        return Err(acm("TooManyTagsException", "A certificate can have at most 50 tags."));
    }
    Ok(out)
}

/// A blob member: base64 of the PEM text, as SDKs send it.
fn pem_text(member: &str, b64: &str) -> Result<String, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| invalid(format!("The {member} is not valid base64.")))?;
    String::from_utf8(bytes).map_err(|_| invalid(format!("The {member} is not PEM text.")))
}

/// What ImportCertificate reads from a certificate and its key.
pub(crate) struct Parsed {
    pub domain_name: String,
    pub sans: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub key_algorithm: &'static str,
    pub signature_algorithm: String,
    pub not_before: f64,
    pub not_after: f64,
}

/// Parses a PEM certificate and checks that `key_pem` is its key.
pub(crate) fn parse(cert_pem: &str, key_pem: &str) -> Result<Parsed, ApiError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("The certificate field is not a PEM-encoded certificate."))?;
    let [der] = certs.as_slice() else {
        return Err(invalid(if certs.is_empty() {
            "The certificate field does not contain a certificate."
        } else {
            "The certificate field contains more than one certificate. You can specify only one certificate in this field."
        }));
    };
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|_| invalid("The certificate could not be parsed as X.509."))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| invalid("The private key is not a PEM-encoded private key."))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| invalid("The private key is not supported."))?;
    let public = signer.public_key().ok_or_else(|| invalid("The private key is not supported."))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    if public.as_ref() != spki {
        return Err(invalid("The private key does not match the public key in the certificate."));
    }
    let key_algorithm = key_algorithm(&cert)?;
    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).map(str::to_owned);
    let mut sans: Vec<String> = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            if let GeneralName::DNSName(d) = name {
                sans.push((*d).to_owned());
            }
        }
    }
    let domain_name = cn.or_else(|| sans.first().cloned()).ok_or_else(|| invalid("The certificate has no domain name (no CN and no DNS name)."))?;
    if !sans.contains(&domain_name) {
        sans.insert(0, domain_name.clone());
    }
    let serial = cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    Ok(Parsed {
        domain_name,
        sans,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial,
        key_algorithm,
        signature_algorithm: signature_algorithm(&cert),
        not_before: cert.validity().not_before.timestamp() as f64,
        not_after: cert.validity().not_after.timestamp() as f64,
    })
}

/// ACM's name of the certificate's key algorithm.
fn key_algorithm(cert: &X509Certificate<'_>) -> Result<&'static str, ApiError> {
    use x509_parser::public_key::PublicKey;
    let unsupported = || invalid("The certificate's key algorithm is not supported (RSA 1024 to 4096 bits, or EC P-256, P-384, P-521).");
    match cert.public_key().parsed().map_err(|_| unsupported())? {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            1024 => Ok("RSA_1024"),
            2048 => Ok("RSA_2048"),
            3072 => Ok("RSA_3072"),
            4096 => Ok("RSA_4096"),
            _ => Err(unsupported()),
        },
        PublicKey::EC(point) => match point.key_size() {
            256 => Ok("EC_prime256v1"),
            384 => Ok("EC_secp384r1"),
            521 | 528 => Ok("EC_secp521r1"),
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

/// ACM's spelling of the signature algorithm, e.g. `SHA256WITHRSA`.
fn signature_algorithm(cert: &X509Certificate<'_>) -> String {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA",
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA",
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA",
        "1.2.840.113549.1.1.5" => "SHA1WITHRSA",
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA",
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA",
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA",
        other => return other.to_owned(),
    }
    .to_owned()
}

async fn import(api: &Api, r: ImportCertificateRequest) -> Result<ImportCertificateResponse, ApiError> {
    let cert_pem = pem_text("certificate", &r.certificate)?;
    let key_pem = pem_text("private key", &r.private_key)?;
    let chain_pem = r.certificate_chain.as_deref().map(|c| pem_text("certificate chain", c)).transpose()?;
    if let Some(chain) = &chain_pem
        && CertificateDer::pem_slice_iter(chain.as_bytes()).any(|c| c.is_err())
    {
        return Err(invalid("The certificate chain is not a list of PEM-encoded certificates."));
    }
    let p = parse(&cert_pem, &key_pem)?;
    let account = api.account();
    let (arn, existing) = match &r.certificate_arn {
        // Re-import: the same ARN, its tags kept (tags cannot be given).
        Some(arn) => {
            if r.tags.is_some() {
                return Err(acm("InvalidParameterException", "Tags cannot be given when a certificate is re-imported."));
            }
            let v = api.store.get_certificate(arn).await?.ok_or_else(|| not_found(arn))?;
            (arn.clone(), Some(v))
        }
        None => (elb::certificate_arn(&account.region, &account.account_id, &uuid::Uuid::new_v4().to_string()), None),
    };
    let record = CertificateRecord {
        arn: arn.clone(),
        domain_name: p.domain_name,
        subject_alternative_names: p.sans,
        subject: p.subject,
        issuer: p.issuer,
        serial: p.serial,
        key_algorithm: p.key_algorithm.to_owned(),
        signature_algorithm: p.signature_algorithm,
        not_before: p.not_before,
        not_after: p.not_after,
        imported_at: crate::berth::network::now(),
        certificate_pem: cert_pem,
        chain_pem,
        tags: match &existing {
            Some(v) => v.value.tags.clone(),
            None => tags(&BTreeMap::new(), r.tags.as_deref().unwrap_or_default())?,
        },
    };
    api.store.put_certificate(&record, &PrivateKeyPem(key_pem), existing.map(|v| v.version)).await?;
    Ok(ImportCertificateResponse { certificate_arn: Some(arn) })
}

/// The listeners whose certificates include `arn`.
async fn in_use_by(api: &Api, arn: &str) -> Result<Vec<String>, ApiError> {
    let listeners = api.store.list_listeners(None).await?;
    let mut lbs: Vec<String> =
        listeners.into_iter().filter(|l| l.value.certificates.iter().any(|c| c == arn)).map(|l| l.value.load_balancer_arn).collect();
    lbs.sort();
    lbs.dedup();
    Ok(lbs)
}

fn status(c: &CertificateRecord) -> CertificateStatus {
    if c.not_after < crate::berth::network::now() { CertificateStatus::Expired } else { CertificateStatus::Issued }
}

fn algorithm(c: &CertificateRecord) -> Option<KeyAlgorithm> {
    c.key_algorithm.parse().ok()
}

async fn detail(api: &Api, c: &CertificateRecord) -> Result<CertificateDetail, ApiError> {
    Ok(CertificateDetail {
        certificate_arn: Some(c.arn.clone()),
        domain_name: Some(c.domain_name.clone()),
        subject_alternative_names: Some(c.subject_alternative_names.clone()),
        serial: Some(c.serial.clone()),
        subject: Some(c.subject.clone()),
        issuer: Some(c.issuer.clone()),
        imported_at: Some(c.imported_at),
        status: Some(status(c)),
        not_before: Some(c.not_before),
        not_after: Some(c.not_after),
        key_algorithm: algorithm(c),
        signature_algorithm: Some(c.signature_algorithm.clone()),
        in_use_by: Some(in_use_by(api, &c.arn).await?),
        r#type: Some(CertificateType::Imported),
        renewal_eligibility: Some(RenewalEligibility::Ineligible),
        ..Default::default()
    })
}

async fn list(api: &Api, r: ListCertificatesRequest) -> Result<ListCertificatesResponse, ApiError> {
    let key_types: Vec<KeyAlgorithm> = r
        .includes
        .as_ref()
        .and_then(|f| f.key_types.clone())
        .unwrap_or_else(|| vec![KeyAlgorithm::Rsa1024, KeyAlgorithm::Rsa2048]);
    let limit = match r.max_items {
        None => 1000,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => return Err(invalid(format!("MaxItems must be from 1 to 1000; {n} was given."))),
    };
    let after: Option<String> = crate::paging::decode(r.next_token.as_deref())
        .map_err(|_| acm("InvalidArgsException", "The NextToken was not returned by a previous call."))?;
    let in_use: Vec<String> = api.store.list_listeners(None).await?.into_iter().flat_map(|l| l.value.certificates).collect();
    let rows: Vec<CertificateRecord> = api
        .store
        .list_certificates()
        .await?
        .into_iter()
        .map(|v| v.value)
        .filter(|c| after.as_ref().is_none_or(|a| &c.arn > a))
        .filter(|c| algorithm(c).is_some_and(|a| key_types.contains(&a)))
        .filter(|c| r.certificate_statuses.as_ref().is_none_or(|s| s.contains(&status(c))))
        .take(limit as usize + 1)
        .collect();
    let (rows, next_token) = crate::paging::finish(rows, limit, |c| c.arn.clone());
    let summaries = rows
        .iter()
        .map(|c| CertificateSummary {
            certificate_arn: Some(c.arn.clone()),
            domain_name: Some(c.domain_name.clone()),
            subject_alternative_name_summaries: Some(c.subject_alternative_names.clone()),
            has_additional_subject_alternative_names: Some(false),
            status: Some(status(c)),
            r#type: Some(CertificateType::Imported),
            key_algorithm: algorithm(c),
            in_use: Some(in_use.contains(&c.arn)),
            renewal_eligibility: Some(RenewalEligibility::Ineligible),
            not_before: Some(c.not_before),
            not_after: Some(c.not_after),
            imported_at: Some(c.imported_at),
            ..Default::default()
        })
        .collect();
    Ok(ListCertificatesResponse { next_token, certificate_summary_list: Some(summaries) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../tests/fixtures/acm/web.example.crt");
    const KEY: &str = include_str!("../tests/fixtures/acm/web.example.key");
    const OTHER_KEY: &str = include_str!("../tests/fixtures/acm/other.key");

    #[test]
    fn a_certificate_is_read_for_its_names_dates_and_key() {
        let p = parse(CERT, KEY).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.domain_name, "web.example");
        assert_eq!(p.sans, ["web.example", "*.web.example"]);
        assert_eq!(p.key_algorithm, "EC_prime256v1");
        assert_eq!(p.signature_algorithm, "SHA256WITHECDSA");
        assert!(p.not_after - p.not_before > 3000.0 * 86_400.0);
        assert!(p.serial.contains(':') && p.serial.len() > 20, "{}", p.serial);
        assert_eq!(p.subject, "CN=web.example");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let Err(e) = parse(CERT, OTHER_KEY) else { panic!("accepted another key") };
        assert_eq!(e.aws_type(), "ValidationException");
        assert!(e.to_string().contains("does not match"), "{e}");
        let Err(e) = parse(&format!("{CERT}{CERT}"), KEY) else { panic!("accepted two certificates") };
        assert!(e.to_string().contains("more than one"), "{e}");
        assert!(parse(KEY, KEY).is_err(), "a key is not a certificate");
    }
}
