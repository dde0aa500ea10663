//! What can go wrong with images. Messages are for users: they name the
//! reference, the registry and the digest involved, and never carry a
//! password or a token.

use std::path::PathBuf;

use crate::unpack::UnpackError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// The registry does not know the repository at all.
    #[error("repository {repository} not found in registry {registry}")]
    RepositoryNotFound { reference: String, registry: String, repository: String },

    /// The repository exists but has no such tag or digest.
    #[error("{reference} not found: registry {registry} has no manifest for it")]
    ManifestNotFound { reference: String, registry: String },

    #[error("{reference}: blob {digest} not found in registry {registry}")]
    BlobNotFound { reference: String, registry: String, digest: String },

    /// Credentials missing, wrong, or without pull access.
    #[error("{reference}: registry {registry} refused access: {detail}")]
    Unauthorized { reference: String, registry: String, detail: String },

    /// The registry could not be reached or the connection broke.
    #[error("{reference}: cannot reach registry {registry}")]
    Network {
        reference: String,
        registry: String,
        #[source]
        source: BoxError,
    },

    /// The registry answered something this client cannot use.
    #[error("{reference}: unexpected answer from registry {registry}: {detail}")]
    Registry { reference: String, registry: String, detail: String },

    /// Content did not hash to the digest that names it.
    #[error("{reference}: content of {digest} does not match its digest (got {actual})")]
    DigestMismatch { reference: String, digest: String, actual: String },

    #[error("{reference} has no linux/amd64 image (it has: {available})")]
    NoMatchingPlatform { reference: String, available: String },

    #[error("{reference}: unsupported {what}")]
    Unsupported { reference: String, what: String },

    /// A manifest, index or config that does not parse or does not add up.
    #[error("{reference}: invalid image: {detail}")]
    InvalidImage { reference: String, detail: String },

    #[error("{reference}: cannot unpack layer {digest}")]
    Unpack {
        reference: String,
        digest: String,
        #[source]
        source: UnpackError,
    },

    /// No image of that name in the local cache.
    #[error("no image {reference} in the cache")]
    NotFound { reference: String },

    /// An archive or directory given to `import` or `load` that is not what it should be.
    #[error("{}: {detail}", path.display())]
    Archive { path: PathBuf, detail: String },

    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    /// True when the image, its repository or one of its blobs does not
    /// exist in the registry (or, for local operations, in the cache).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::RepositoryNotFound { .. }
                | Self::ManifestNotFound { .. }
                | Self::BlobNotFound { .. }
                | Self::NotFound { .. }
        )
    }

    /// The message with all its causes, `outer: inner: innermost`, as a
    /// one-line reason for users (e.g. after `CannotPullContainerError: `).
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            out.push_str(": ");
            out.push_str(&e.to_string());
            source = e.source();
        }
        out
    }
}
