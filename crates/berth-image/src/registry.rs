//! The distribution protocol, through `oci-client`: auth (basic, or the
//! bearer-token dance after a `WWW-Authenticate` challenge), manifests and
//! blobs (both digest-verified by the client), and the mapping of its
//! errors onto ours.

use std::path::Path;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::distribution::Reference;
use tokio::io::BufWriter;

use crate::ingest::BlobSource;
use crate::{Credentials, Digest, ImageError};

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// One repository of one registry, with the credentials of one pull.
pub(crate) struct Remote {
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
}

/// Registry clients for anonymous pulls, one per protocol, kept for the
/// store's life: making a client loads the system's root certificates
/// (milliseconds of CPU per pull otherwise), and a kept one reuses its
/// connections and bearer tokens. Pulls with credentials get a client of
/// their own, so no pull ever rides on another's credentials.
#[derive(Default)]
pub(crate) struct Clients {
    plain: std::sync::OnceLock<Client>,
    tls: std::sync::OnceLock<Client>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    fn anonymous(&self, insecure: bool) -> Client {
        let cell = if insecure { &self.plain } else { &self.tls };
        cell.get_or_init(|| new_client(insecure)).clone()
    }
}

fn new_client(insecure: bool) -> Client {
    Client::new(ClientConfig {
        protocol: if insecure { ClientProtocol::Http } else { ClientProtocol::Https },
        platform_resolver: None, // we pick the platform ourselves
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(120)),
        user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

impl Remote {
    pub(crate) fn new(
        reference: &Reference,
        credentials: Option<&Credentials>,
        insecure: bool,
        clients: &Clients,
    ) -> Self {
        let (client, auth) = match credentials {
            Some(c) => (new_client(insecure), RegistryAuth::Basic(c.username.clone(), c.password.clone())),
            None => (clients.anonymous(insecure), RegistryAuth::Anonymous),
        };
        Self { client, auth, reference: reference.clone() }
    }

    fn registry(&self) -> String {
        self.reference.registry().to_owned()
    }

    /// Authenticates for pulling (fetches a token when the registry wants one).
    pub(crate) async fn login(&self) -> Result<(), ImageError> {
        match self.client.auth(&self.reference, &self.auth, RegistryOperation::Pull).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(e, Target::Manifest).await),
        }
    }

    /// The digest the reference currently points to, from a HEAD request.
    pub(crate) async fn head_digest(&self) -> Result<Digest, ImageError> {
        match self.client.fetch_manifest_digest(&self.reference, &self.auth).await {
            Ok(digest) => self.digest(&digest),
            Err(e) => Err(self.error(e, Target::Manifest).await),
        }
    }

    /// A manifest or index, verified against its digest, and that digest.
    pub(crate) async fn manifest(&self, reference: &Reference) -> Result<(Vec<u8>, Digest), ImageError> {
        match self.client.pull_manifest_raw(reference, &self.auth, MANIFEST_TYPES).await {
            Ok((bytes, digest)) => Ok((bytes.to_vec(), self.digest(&digest)?)),
            Err(e) => Err(self.error(e, Target::Manifest).await),
        }
    }

    fn digest(&self, digest: &str) -> Result<Digest, ImageError> {
        digest.parse().map_err(|_| ImageError::Unsupported {
            reference: self.reference.whole(),
            what: format!("digest {digest} (only sha256 is supported)"),
        })
    }

    async fn error(&self, error: OciDistributionError, target: Target<'_>) -> ImageError {
        match self.classify(error) {
            Some(error) => error,
            None => match target {
                Target::Blob(digest) => ImageError::BlobNotFound {
                    reference: self.reference.whole(),
                    registry: self.registry(),
                    digest: digest.to_string(),
                },
                Target::Manifest => self.missing_manifest().await,
            },
        }
    }

    /// Our error for the client's; `None` when the registry said "not found".
    fn classify(&self, error: OciDistributionError) -> Option<ImageError> {
        let reference = self.reference.whole();
        let registry = self.registry();
        let unauthorized =
            |detail: String| ImageError::Unauthorized { reference: reference.clone(), registry: registry.clone(), detail };
        Some(match error {
            OciDistributionError::RegistryError { envelope, .. } => {
                let has = |code: OciErrorCode| envelope.errors.iter().any(|e| e.code == code);
                let detail = envelope.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ");
                if has(OciErrorCode::NameUnknown) {
                    self.repository_not_found()
                } else if has(OciErrorCode::ManifestUnknown) || has(OciErrorCode::BlobUnknown) || has(OciErrorCode::NotFound) {
                    return None;
                } else if has(OciErrorCode::Unauthorized) || has(OciErrorCode::Denied) {
                    unauthorized(detail)
                } else {
                    ImageError::Registry { reference, registry, detail }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => return None,
            OciDistributionError::ServerError { code: 401 | 403, message, .. } => unauthorized(message),
            OciDistributionError::ServerError { code, message, .. } => {
                ImageError::Registry { reference, registry, detail: format!("HTTP {code}: {}", message.trim()) }
            }
            OciDistributionError::UnauthorizedError { .. } => unauthorized("credentials missing or rejected".to_owned()),
            OciDistributionError::AuthenticationFailure(detail) => unauthorized(detail),
            OciDistributionError::RequestError(e) => ImageError::Network { reference, registry, source: e.into() },
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError { expected, actual }) => {
                ImageError::DigestMismatch { reference, digest: expected, actual }
            }
            other => ImageError::Registry { reference, registry, detail: other.to_string() },
        })
    }

    /// A manifest the registry does not have: the repository may be
    /// missing altogether (some registries say so only when asked for
    /// its tags), or just the tag.
    async fn missing_manifest(&self) -> ImageError {
        match self.client.list_tags(&self.reference, &self.auth, Some(1), None).await {
            Err(OciDistributionError::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| e.code == OciErrorCode::NameUnknown) =>
            {
                self.repository_not_found()
            }
            Err(OciDistributionError::ServerError { code: 404, .. }) => self.repository_not_found(),
            _ => ImageError::ManifestNotFound { reference: self.reference.whole(), registry: self.registry() },
        }
    }

    fn repository_not_found(&self) -> ImageError {
        ImageError::RepositoryNotFound {
            reference: self.reference.whole(),
            registry: self.registry(),
            repository: self.reference.repository().to_owned(),
        }
    }
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Manifest,
    Blob(&'a Digest),
}

impl BlobSource for Remote {
    /// oci-client hashes each blob as it streams it and fails on a
    /// mismatch (`DigestMismatch` here), so it is not read a second time.
    fn verified(&self) -> bool {
        true
    }

    fn stream(
        &self,
        digest: &Digest,
        sink: tokio::io::DuplexStream,
    ) -> Option<impl Future<Output = Result<(), ImageError>> + Send> {
        Some(async move {
            let digest_text = digest.to_string();
            match self.client.pull_blob(&self.reference, digest_text.as_str(), sink).await {
                Ok(()) => Ok(()),
                Err(OciDistributionError::IoError(e)) => Err(ImageError::io("stream", Path::new(&digest_text))(e)),
                Err(e) => Err(self.error(e, Target::Blob(digest)).await),
            }
        })
    }

    async fn fetch(&self, digest: &Digest, dest: &Path) -> Result<(), ImageError> {
        let file = tokio::fs::File::create(dest).await.map_err(ImageError::io("create", dest))?;
        let digest_text = digest.to_string();
        match self.client.pull_blob(&self.reference, digest_text.as_str(), BufWriter::new(file)).await {
            Ok(()) => Ok(()),
            Err(OciDistributionError::IoError(e)) => Err(ImageError::io("write", dest)(e)),
            Err(e) => Err(self.error(e, Target::Blob(digest)).await),
        }
    }
}
