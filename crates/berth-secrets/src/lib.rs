//! Secrets at rest and their resolution, apart from HTTP so that the
//! API (SSM Parameter Store, Secrets Manager) and the node agent (a
//! container's `secrets`) share them.
//!
//! - [`cipher`]: the key in the data dir (`secrets.key`, 0600) and the
//!   authenticated cipher that seals every SecureString and secret value
//!   before the store sees it, bound to its record's identity.
//! - [`lookup`]: how SSM and Secrets Manager find what a read names
//!   (selectors, partial ARNs, staging labels), for both callers.
//! - [`resolve`]: a `valueFrom` read as ECS reads it, with ECS's
//!   stoppedReason when it cannot be.
//!
//! No clear value is ever in a `Debug` or an error message here.

pub mod cipher;
pub mod lookup;
pub mod resolve;

pub use cipher::{Aad, Cipher, CipherError, KeyError};
pub use resolve::{ResolveError, ResolvedSecret, ValueFrom, resolve, resource_action, resource_arn};
