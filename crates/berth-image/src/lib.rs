//! Container images for Berth: pulled from OCI/Docker distribution
//! registries, imported from a root filesystem, or loaded from an OCI
//! layout or `docker save` tarball, into a content-addressed cache where
//! every layer is unpacked once into a directory an overlayfs mount can
//! stack (whiteouts in overlay's own form).
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_image::ImageError> {
//! use berth_image::{ImageStore, ImageStoreConfig};
//! let store = ImageStore::open("/var/lib/berth/images", ImageStoreConfig::default())?;
//! let image = store.pull("127.0.0.1:5000/busybox:latest", None).await?;
//! println!("{} layers, lowest first: {:?}", image.layers.len(), image.layers);
//! # Ok(()) }
//! ```

mod config;
mod digest;
mod error;
mod gc;
mod import;
mod ingest;
mod load;
mod locks;
mod paths;
mod pull;
mod records;
mod reference;
mod registry;
mod store;
mod unpack;

pub use config::{Credentials, ImageStoreConfig};
pub use digest::Digest;
pub use error::ImageError;
pub use gc::GcReport;
pub use oci_spec::image::ImageConfiguration;
pub use records::ImageSource;
pub use store::{Image, ImageStore};
pub use unpack::UnpackError;
