//! The mechanics of the protocols that the generated modules call:
//! AWS Query and EC2 requests read into typed requests ([`FromQuery`],
//! [`QueryInput`]) and typed responses written as XML ([`ToXml`],
//! [`XmlWriter`]); REST-JSON routes, bound members and answers
//! ([`rest`]); CBOR's own forms of timestamps and blobs in answers
//! ([`cbor`]). Which member has which name or binding is the generated
//! code's business; this module knows only how names nest and how values
//! are written. JSON bodies need nothing here: serde does them.

pub mod cbor;
mod query;
pub mod rest;
mod xml;

pub use query::{FromQuery, QueryError, QueryInput, key};
pub use rest::{RestError, RestErrorShape, RestRequest, RestResponse, RestRoute, RestText};
pub use xml::{ToXml, XmlScalar, XmlWriter, escape};
