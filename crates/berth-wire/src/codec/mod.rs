//! The mechanics of the AWS Query and EC2 protocols that the generated
//! modules call: reading a form's flattened parameters into typed
//! requests ([`FromQuery`], [`QueryInput`]) and writing typed responses as
//! XML ([`ToXml`], [`XmlWriter`]). Which member has which name is the
//! generated code's business; this module knows only how names nest.
//! JSON and CBOR need nothing here: serde does both.

mod query;
mod xml;

pub use query::{FromQuery, QueryError, QueryInput, key};
pub use xml::{ToXml, XmlScalar, XmlWriter, escape};
