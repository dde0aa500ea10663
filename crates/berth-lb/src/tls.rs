//! TLS: HTTPS listeners' termination (rustls, SNI over several
//! certificates, ALPN h2 and http/1.1) and the client side towards HTTPS
//! targets, which ALB does not verify.

use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::Certificate;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate chain has no PEM certificate")]
    NoCertificate,
    #[error("the certificate chain is not PEM")]
    Chain(#[source] rustls::pki_types::pem::Error),
    #[error("the private key is not a PEM private key")]
    Key(#[source] rustls::pki_types::pem::Error),
    #[error("the private key cannot sign")]
    Unusable(#[source] rustls::Error),
    #[error("the certificate is not an X.509 certificate")]
    Parse(#[source] webpki::Error),
    #[error("an HTTPS listener needs a certificate")]
    None,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate ready to serve.
#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
}

impl Loaded {
    fn load(c: &Certificate, provider: &CryptoProvider) -> Result<Self, CertificateError> {
        let chain = CertificateDer::pem_slice_iter(c.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(CertificateError::Chain)?;
        let leaf = chain.first().ok_or(CertificateError::NoCertificate)?;
        webpki::EndEntityCert::try_from(leaf).map_err(CertificateError::Parse)?;
        let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).map_err(CertificateError::Key)?;
        let signer = provider.key_provider.load_private_key(key).map_err(CertificateError::Unusable)?;
        Ok(Loaded { key: Arc::new(CertifiedKey::new(chain, signer)) })
    }

    fn serves(&self, name: &str) -> bool {
        let Ok(name) = ServerName::try_from(name) else { return false };
        let Some(leaf) = self.key.cert.first() else { return false };
        webpki::EndEntityCert::try_from(leaf).is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
    }
}

/// The listener's certificates: SNI picks the first whose names (SANs,
/// wildcards as RFC 6125 has them) cover the name, else the default.
/// Replaced in place when the listener's certificates change.
#[derive(Debug, Default)]
pub struct Certificates {
    loaded: RwLock<Arc<Vec<Loaded>>>,
}

impl Certificates {
    /// Loads `certs` (the first is the default); on an error the old ones stay.
    pub fn set(&self, certs: &[Certificate], provider: &CryptoProvider) -> Result<(), CertificateError> {
        if certs.is_empty() {
            return Err(CertificateError::None);
        }
        let loaded = certs.iter().map(|c| Loaded::load(c, provider)).collect::<Result<Vec<_>, _>>()?;
        *self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let by_name = sni.and_then(|n| loaded.iter().find(|l| l.serves(n)));
        by_name.or(loaded.first()).map(|l| l.key.clone())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// The server side of an HTTPS listener over `certs`.
pub fn server_config(certs: Arc<Certificates>, provider: Arc<CryptoProvider>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The client side towards HTTPS targets and HTTPS health checks: any
/// certificate is accepted, as ALB does with its targets.
pub fn target_client_config(provider: Arc<CryptoProvider>) -> Result<rustls::ClientConfig, rustls::Error> {
    let verifier = Arc::new(AnyCertificate(provider.clone()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let c = params.self_signed(&key).unwrap();
        Certificate { chain_pem: c.pem(), key_pem: key.serialize_pem() }
    }

    #[test]
    fn sni_picks_by_name_with_wildcards_and_falls_back_to_the_default() {
        let p = provider();
        let certs = Certificates::default();
        let (a, b, c) = (cert(&["default.test"]), cert(&["*.shop.test"]), cert(&["api.test", "www.api.test"]));
        certs.set(&[a.clone(), b.clone(), c.clone()], &p).unwrap();
        let leaf = |k: Arc<CertifiedKey>| k.cert[0].clone();
        let der = |c: &Certificate| CertificateDer::from_pem_slice(c.chain_pem.as_bytes()).unwrap();
        assert_eq!(leaf(certs.pick(Some("x.shop.test")).unwrap()), der(&b));
        assert_eq!(leaf(certs.pick(Some("www.api.test")).unwrap()), der(&c));
        assert_eq!(leaf(certs.pick(Some("a.b.shop.test")).unwrap()), der(&a), "a wildcard covers one label");
        assert_eq!(leaf(certs.pick(Some("other.test")).unwrap()), der(&a));
        assert_eq!(leaf(certs.pick(None).unwrap()), der(&a));
        assert!(matches!(certs.set(&[], &p), Err(CertificateError::None)));
        let broken = Certificate { chain_pem: "nope".into(), key_pem: a.key_pem.clone() };
        assert!(certs.set(&[broken], &p).is_err());
        assert_eq!(leaf(certs.pick(None).unwrap()), der(&a), "a refused update keeps the old certificates");
    }
}
