//! The AWS wire protocols a request can come in, told apart by their
//! marks, and how each writes an answer and an error. The edge decides
//! the protocol once; handlers never see it.
//!
//! | protocol          | request                                             | answer                         | error                                               |
//! |-------------------|-----------------------------------------------------|--------------------------------|-----------------------------------------------------|
//! | AWS JSON 1.0/1.1  | `POST /`, `X-Amz-Target: Prefix.Op`, JSON body       | JSON                           | `{"__type","message"}`                              |
//! | AWS Query         | form body (or query string), `Action=Op`, the SigV4 scope names the service | `<OpResponse><OpResult>` XML | `<ErrorResponse><Error><Type>Sender</Type><Code>…` |
//! | EC2               | as Query, for `ec2`                                 | `<OpResponse>` XML, no wrapper | `<Response><Errors><Error>…</Errors><RequestID>`    |
//! | Smithy RPC v2 CBOR| `POST /service/NAME/operation/OP`, `smithy-protocol: rpc-v2-cbor` | CBOR (timestamps tag 1, blobs byte strings) | CBOR `{"__type","message"}` |
//! | REST-JSON         | the model's `http.method` + `http.requestUri`, members in the path, query string, headers and JSON body; the SigV4 scope names the service | status, headers, JSON body | the error shape's HTTP status, `x-amzn-ErrorType`, `{"__type","Message"}` |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_wire::codec::{QueryError, RestErrorShape, RestResponse, XmlWriter};

use crate::ApiError;
use crate::sigv4::AuthError;

pub const JSON_1_0: &str = "application/x-amz-json-1.0";
pub const JSON_1_1: &str = "application/x-amz-json-1.1";
pub const CBOR: &str = "application/cbor";
/// The header of Smithy RPC v2 CBOR requests and answers.
pub const SMITHY_PROTOCOL: &str = "smithy-protocol";
pub const RPC_V2_CBOR: &str = "rpc-v2-cbor";

/// The protocol a request came in, so its answer and errors go out in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.0 (`minor == 0`) or 1.1. `query_compatible`: the
    /// service also speaks Query (CloudWatch), so errors carry
    /// `x-amzn-query-error: Code;Sender` for clients in query mode.
    Json { minor: u8, query_compatible: bool },
    Query,
    Ec2,
    /// Smithy RPC v2 CBOR.
    Cbor { query_compatible: bool },
    /// REST-JSON (restJson1), with the service's error shapes (their
    /// HTTP statuses and message members).
    RestJson { errors: &'static [RestErrorShape] },
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Json { minor: 0, .. } => "AWS JSON 1.0",
            Self::Json { .. } => "AWS JSON 1.1",
            Self::Query => "AWS Query",
            Self::Ec2 => "EC2",
            Self::Cbor { .. } => "Smithy RPC v2 CBOR",
            Self::RestJson { .. } => "REST-JSON",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json { minor: 0, .. } => JSON_1_0,
            Self::Json { .. } => JSON_1_1,
            Self::Query | Self::Ec2 => "text/xml",
            Self::Cbor { .. } => CBOR,
            Self::RestJson { .. } => "application/json",
        }
    }

    /// A successful REST-JSON answer: its status, headers and body.
    pub fn rest_ok(answer: RestResponse) -> Response {
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        let mut r = (status, answer.body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
        for (name, value) in answer.headers {
            if let (Ok(n), Ok(v)) = (header::HeaderName::try_from(name), HeaderValue::from_str(&value)) {
                r.headers_mut().append(n, v);
            }
        }
        r
    }

    /// A successful answer with `body` (already in this protocol).
    pub fn ok(self, body: Vec<u8>) -> Response {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        if let Self::Cbor { .. } = self {
            r.headers_mut().insert(SMITHY_PROTOCOL, HeaderValue::from_static(RPC_V2_CBOR));
        }
        r
    }

    /// The error code a client of this protocol expects for `e`.
    pub fn code(self, e: &ApiError) -> &'static str {
        let xml = matches!(self, Self::Query | Self::Ec2);
        match e {
            ApiError::Auth(a) if xml => match a {
                AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
                AuthError::IncompleteSignature(_) => "IncompleteSignature",
                AuthError::InvalidSignature(_) => "SignatureDoesNotMatch",
                AuthError::UnrecognizedClient if self == Self::Ec2 => "AuthFailure",
                AuthError::UnrecognizedClient => "InvalidClientTokenId",
                AuthError::ExpiredToken if self == Self::Ec2 => "RequestExpired",
                AuthError::ExpiredToken => "ExpiredToken",
            },
            ApiError::UnknownOperation(_) if xml => "InvalidAction",
            ApiError::AccessDenied(_) if self == Self::Ec2 => "UnauthorizedOperation",
            ApiError::AccessDenied(_) if xml => "AccessDenied",
            ApiError::Unsupported(_) => match self {
                Self::Ec2 => "UnsupportedOperation",
                Self::Query => "InvalidAction",
                _ => "UnknownOperationException",
            },
            ApiError::UnknownService(_) if xml => "UnknownService",
            ApiError::Serialization(_) if xml => "MalformedQueryString",
            ApiError::TooLarge(_) if xml => "RequestEntityTooLarge",
            ApiError::Timeout(_) if xml => "RequestTimeout",
            ApiError::Internal(_) if self == Self::Ec2 => "InternalError",
            ApiError::Internal(_) if xml => "InternalFailure",
            other => other.aws_type(),
        }
    }

    /// The error response for `e`, in this protocol.
    pub fn error(self, e: &ApiError, request_id: &str) -> Response {
        if let ApiError::Internal(cause) = e {
            tracing::error!(error = %cause, cause = ?std::error::Error::source(cause), "internal error");
        }
        let code = self.code(e);
        let message = e.client_message();
        let modeled = match self {
            Self::RestJson { errors } => errors.iter().find(|s| s.code == code),
            _ => None,
        };
        let status = match (self, e) {
            (Self::Query | Self::Ec2 | Self::RestJson { .. }, ApiError::Auth(_) | ApiError::AccessDenied(_)) => {
                StatusCode::FORBIDDEN
            }
            (Self::RestJson { .. }, ApiError::UnknownOperation(_)) => StatusCode::NOT_FOUND,
            _ => modeled.and_then(|m| StatusCode::from_u16(m.status).ok()).unwrap_or_else(|| e.status()),
        };
        let fault = if status.is_server_error() { "Receiver" } else { "Sender" };
        let body = match self {
            Self::Json { .. } => {
                let mut body = serde_json::json!({ "__type": code, "message": message });
                if let ApiError::Conflict { resource_ids, .. } = e {
                    body["resourceIds"] = resource_ids.clone().into();
                }
                body.to_string().into_bytes()
            }
            // The error shape's members (its message member as the model
            // names it), and `__type` for clients that read it.
            Self::RestJson { .. } => {
                let member = modeled.map_or("message", |m| m.message_member);
                let mut body = serde_json::Map::new();
                body.insert("__type".into(), code.into());
                body.insert(member.into(), message.clone().into());
                serde_json::Value::Object(body).to_string().into_bytes()
            }
            Self::Cbor { .. } => {
                let mut out = Vec::new();
                let map = std::collections::BTreeMap::from([("__type", code), ("message", message.as_str())]);
                // Writing a map of strings into a Vec cannot fail.
                let _ = ciborium::into_writer(&map, &mut out);
                out
            }
            Self::Query => {
                let mut w = XmlWriter::document("ErrorResponse", "");
                w.start("Error");
                w.scalar("Type", fault);
                w.scalar("Code", code);
                w.scalar("Message", message.as_str());
                w.end("Error");
                w.scalar("RequestId", request_id);
                w.finish().into_bytes()
            }
            Self::Ec2 => {
                let mut w = XmlWriter::document("Response", "");
                w.start("Errors");
                w.start("Error");
                w.scalar("Code", code);
                w.scalar("Message", message.as_str());
                w.end("Error");
                w.end("Errors");
                w.scalar("RequestID", request_id);
                w.finish().into_bytes()
            }
        };
        let mut r = (status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        match self {
            Self::Cbor { query_compatible } | Self::Json { query_compatible, .. } => {
                if let Self::Cbor { .. } = self {
                    r.headers_mut().insert(SMITHY_PROTOCOL, HeaderValue::from_static(RPC_V2_CBOR));
                }
                if query_compatible && let Ok(v) = HeaderValue::from_str(&format!("{code};{fault}")) {
                    r.headers_mut().insert("x-amzn-query-error", v);
                }
            }
            Self::RestJson { .. } => {
                r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(code));
            }
            Self::Query | Self::Ec2 => {}
        }
        r
    }
}

/// Reads a CBOR request body into the JSON data model the typed inputs
/// are read from, as Smithy RPC v2 CBOR maps them: byte strings are blobs
/// (base64 text, as the wire shapes hold them), tag 1 is a timestamp
/// (epoch seconds), integers and floats are numbers. Anything else (not
/// CBOR, trailing bytes, a map key that is not text, other tags) is a
/// `SerializationException`.
pub fn cbor_to_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let bad = |m: String| ApiError::Serialization(format!("The request body is not valid CBOR: {m}"));
    let mut reader = body;
    let value: ciborium::Value = ciborium::from_reader(&mut reader).map_err(|e| bad(cbor_error(e)))?;
    if !reader.is_empty() {
        return Err(bad(format!("{} bytes after the first data item", reader.len())));
    }
    if !value.is_map() {
        return Err(bad("the input must be a map".into()));
    }
    convert(value, 0).map_err(bad)
}

/// ciborium's error in words (its `Display` is its `Debug`).
fn cbor_error(e: ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error;
    match e {
        Error::Io(_) => "the body ends inside a data item".into(),
        Error::Syntax(at) => format!("malformed at byte {at}"),
        Error::Semantic(Some(at), m) => format!("{m} (at byte {at})"),
        Error::Semantic(None, m) => m,
        Error::RecursionLimitExceeded => "nested too deeply".into(),
    }
}

fn convert(v: ciborium::Value, depth: usize) -> Result<serde_json::Value, String> {
    use base64::Engine as _;
    use ciborium::Value as C;
    use serde_json::Value as J;
    if depth > 64 {
        return Err("nested too deeply".into());
    }
    Ok(match v {
        C::Null => J::Null,
        C::Bool(b) => J::Bool(b),
        C::Text(t) => J::String(t),
        C::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        C::Integer(i) => {
            let i = i128::from(i);
            match i64::try_from(i) {
                Ok(n) => J::from(n),
                Err(_) => return Err(format!("integer {i} is out of range")),
            }
        }
        C::Float(f) => serde_json::Number::from_f64(f).map(J::Number).ok_or("a float that is not finite")?,
        C::Tag(1, inner) => match *inner {
            C::Integer(i) => J::from(i64::try_from(i128::from(i)).map_err(|_| "timestamp out of range")?),
            C::Float(f) => serde_json::Number::from_f64(f).map(J::Number).ok_or("timestamp not finite")?,
            _ => return Err("tag 1 (a timestamp) must hold a number".into()),
        },
        C::Tag(t, _) => return Err(format!("tag {t} is not used by Smithy RPC v2 CBOR")),
        C::Array(items) => J::Array(items.into_iter().map(|i| convert(i, depth + 1)).collect::<Result<_, _>>()?),
        C::Map(entries) => {
            let mut out = serde_json::Map::new();
            for (k, v) in entries {
                let C::Text(k) = k else { return Err("a map key is not text".into()) };
                out.insert(k, convert(v, depth + 1)?);
            }
            J::Object(out)
        }
        _ => return Err("an unsupported CBOR value".into()),
    })
}

/// The error of parameters that do not make an operation's input.
impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::MissingParameter(_) => ApiError::service("MissingParameter", e.to_string()),
            QueryError::InvalidValue { .. } => ApiError::service("InvalidParameterValue", e.to_string()),
            QueryError::Malformed(m) => ApiError::service("MalformedQueryString", m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_names_errors_its_own_way() {
        let e = ApiError::Auth(AuthError::UnrecognizedClient);
        assert_eq!(Protocol::Ec2.code(&e), "AuthFailure");
        assert_eq!(Protocol::Query.code(&e), "InvalidClientTokenId");
        assert_eq!(Protocol::Json { minor: 1, query_compatible: false }.code(&e), "UnrecognizedClientException");
        let x = ApiError::Auth(AuthError::ExpiredToken);
        assert_eq!(Protocol::Query.code(&x), "ExpiredToken");
        assert_eq!(Protocol::Json { minor: 1, query_compatible: false }.code(&x), "ExpiredTokenException");
        let u = ApiError::Unsupported("x".into());
        assert_eq!(Protocol::Ec2.code(&u), "UnsupportedOperation");
        assert_eq!(Protocol::Query.code(&u), "InvalidAction");
        assert_eq!(Protocol::Cbor { query_compatible: true }.code(&u), "UnknownOperationException");
        let g = ApiError::service("InvalidGroup.NotFound", "no");
        assert_eq!(Protocol::Ec2.code(&g), "InvalidGroup.NotFound");
    }

    mod fuzz {
        //! `cbor_to_json` on random bytes and on random CBOR values
        //! (nested, tagged, with byte strings and non-text keys): a JSON
        //! value or a `SerializationException`, never a panic.
        use super::super::*;
        use ciborium::Value as C;
        use proptest::prelude::*;

        fn cbor_value() -> impl Strategy<Value = C> {
            let leaf = prop_oneof![
                Just(C::Null),
                any::<bool>().prop_map(C::Bool),
                any::<i64>().prop_map(|i| C::Integer(i.into())),
                any::<u64>().prop_map(|i| C::Integer(i.into())),
                any::<f64>().prop_map(C::Float),
                ".{0,8}".prop_map(C::Text),
                proptest::collection::vec(any::<u8>(), 0..8).prop_map(C::Bytes),
            ];
            leaf.prop_recursive(6, 64, 5, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(C::Array),
                    proptest::collection::vec((prop_oneof![".{0,6}".prop_map(C::Text), inner.clone()], inner.clone()), 0..4).prop_map(C::Map),
                    (0u64..4, inner).prop_map(|(t, v)| C::Tag(t, Box::new(v))),
                ]
            })
        }

        fn check(bytes: &[u8]) {
            if let Err(e) = cbor_to_json(bytes) {
                let ApiError::Serialization(m) = &e else { panic!("{e:?}") };
                // Words, not ciborium's Debug forms (found by this test).
                assert!(!m.contains("Semantic(") && !m.contains("Io(") && !m.contains("Syntax("), "{m}");
            }
        }

        #[test]
        fn errors_are_words() {
            let msg = |b: &[u8]| match cbor_to_json(b) {
                Err(ApiError::Serialization(m)) => m,
                other => panic!("{other:?}"),
            };
            assert_eq!(msg(&[0xa1, 0x61]), "The request body is not valid CBOR: the body ends inside a data item");
            assert_eq!(msg(&[0xff]), "The request body is not valid CBOR: invalid type: break, expected non-break");
            assert_eq!(msg(&[0x1c]), "The request body is not valid CBOR: malformed at byte 0");
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                check(&bytes);
            }

            #[test]
            fn random_values(v in cbor_value(), trailing in proptest::collection::vec(any::<u8>(), 0..2)) {
                let mut bytes = Vec::new();
                ciborium::into_writer(&C::Map(vec![(C::Text("a".into()), v)]), &mut bytes).expect("encode");
                check(&bytes);
                bytes.extend(trailing);
                check(&bytes);
            }
        }

        /// Deep nesting: refused with an error, not a stack overflow.
        #[test]
        fn deep_nesting() {
            let mut bytes = vec![0xa1, 0x61, b'a'];
            bytes.extend(std::iter::repeat_n(0x81, 100_000));
            bytes.push(0xf6);
            check(&bytes);
        }
    }
}
