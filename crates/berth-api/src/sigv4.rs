//! AWS Signature Version 4 verification, header form, as the aws CLI, boto3
//! and the AWS SDKs sign requests:
//!
//! ```text
//! Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecs/aws4_request,
//!     SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<64 hex>
//! X-Amz-Date: 20261122T120000Z
//! ```
//!
//! Pure code, no I/O: [`parse`] reads the authentication parameters out of
//! the request head; the caller looks up the secret of
//! [`SignedRequest::access_key_id`] (an unknown key is
//! [`AuthError::UnrecognizedClient`]); [`verify`] checks the time, the
//! credential scope against the endpoint's [`Scope`], and the signature over
//! the canonical request built from the head and the whole body.
//!
//! Errors carry AWS's exception types and message forms (as Coral-based JSON
//! services such as DynamoDB and ECS answer). Messages never contain the
//! secret, the signature or a session token.
//!
//! Deliberately absent: presigned (query-string) authentication, chunked
//! `STREAMING-*` and `UNSIGNED-PAYLOAD` bodies (S3 only), SigV4a, and S3's
//! single-encoded, unnormalized paths.

use std::fmt;

use hmac::{Hmac, Mac};
use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The only signing algorithm Berth accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's time may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

const TERMINATOR: &str = "aws4_request";

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// RFC 3986 unreserved characters are left alone; every other byte is `%XX`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping the path's slashes.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// Why a request is not authenticated, by AWS exception type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (or one that is not AWS SigV4 at all).
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header or the date header is malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature, its time or its credential scope is wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// The access key is unknown (the caller decides this after lookup).
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// A temporary key whose session ended.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
}

impl AuthError {
    /// The AWS exception type, for `__type`.
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::ExpiredToken => "ExpiredTokenException",
        }
    }

    /// The HTTP status AWS's JSON-protocol (Coral) services answer with:
    /// 400 for all of them, as observed from DynamoDB and ECS.
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// The region and service an endpoint serves: a credential scope must name
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// The `date/region/service` of a request's `Credential` (its terminator is
/// always `aws4_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
}

/// The SigV4 parameters of a request, as [`parse`] read them.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub access_key_id: String,
    pub credential_scope: CredentialScope,
    /// Lowercase header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The request time from `X-Amz-Date` (or `Date`), UTC.
    pub timestamp: OffsetDateTime,
    /// `X-Amz-Security-Token`, if sent. [`verify`] does not judge it.
    pub session_token: Option<String>,
    /// The request time as in the string to sign, `YYYYMMDDTHHMMSSZ`.
    amz_date: String,
    /// `SignedHeaders` exactly as sent.
    signed_headers_param: String,
    signature: String,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("access_key_id", &self.access_key_id)
            .field("credential_scope", &self.credential_scope)
            .field("signed_headers", &self.signed_headers)
            .field("amz_date", &self.amz_date)
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Reads the SigV4 parameters from the request head.
///
/// Fails with `MissingAuthenticationToken` when there is no AWS4
/// `Authorization` header, `IncompleteSignature` when it or the date header
/// is malformed or the algorithm is not `AWS4-HMAC-SHA256`, and
/// `InvalidSignature` when `host` is not signed.
pub fn parse(parts: &Parts) -> Result<SignedRequest, AuthError> {
    let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthError::MissingAuthenticationToken);
    };
    let header = header
        .to_str()
        .map_err(|_| AuthError::IncompleteSignature("The Authorization header is not printable ASCII.".to_owned()))?;
    if has_query_param(parts.uri.query(), "X-Amz-Algorithm") {
        return Err(AuthError::InvalidSignature(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".to_owned(),
        ));
    }
    if !header.trim_start().starts_with("AWS4-") {
        return Err(AuthError::MissingAuthenticationToken);
    }

    let mut tokens = header.split([',', ' ']).filter(|t| !t.is_empty());
    let algorithm = tokens.next().unwrap_or_default();
    let (mut credential, mut signed_headers, mut signature) = ("", "", "");
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return Err(AuthError::IncompleteSignature(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                redact_if_signature(token),
                redact_authorization(header)
            )));
        };
        match key {
            "Credential" => credential = value,
            "SignedHeaders" => signed_headers = value,
            "Signature" => signature = value,
            _ => {}
        }
    }
    let x_amz_date = header_str(parts, "x-amz-date");
    let date = header_str(parts, "date");
    let mut missing = String::new();
    for (name, value) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if value.is_empty() {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if x_amz_date.is_none() && date.is_none() {
        missing.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    if !missing.is_empty() {
        missing.push_str(&format!("Authorization={}", redact_authorization(header)));
        return Err(AuthError::IncompleteSignature(missing));
    }

    let (timestamp, amz_date) = match x_amz_date {
        Some(v) => (parse_basic_iso8601(v).ok_or_else(|| bad_date(v))?, v.to_owned()),
        None => {
            // An HTTP date, `Sun, 30 Aug 2015 12:36:00 GMT` (present: checked above).
            let v = date.unwrap_or_default();
            let t = OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
                .map_err(|_| bad_date(v))?
                .to_offset(UtcOffset::UTC);
            (t, format_basic_iso8601(t))
        }
    };

    let signed_header_names: Vec<String> = signed_headers.split(';').map(str::to_ascii_lowercase).collect();
    if !signed_header_names.iter().any(|h| h == "host") {
        return Err(AuthError::InvalidSignature(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    if algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now)."
        )));
    }
    let elements: Vec<&str> = credential.trim_end_matches('/').split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = elements[..] else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != TERMINATOR {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }

    Ok(SignedRequest {
        access_key_id: access_key_id.to_owned(),
        credential_scope: CredentialScope {
            date: scope_date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        },
        signed_headers: signed_header_names,
        timestamp,
        session_token: header_str(parts, "x-amz-security-token").map(str::to_owned),
        amz_date,
        signed_headers_param: signed_headers.to_owned(),
        signature: signature.to_owned(),
    })
}

/// Verifies a parsed request with the secret of its access key: its time
/// is within [`MAX_CLOCK_SKEW`] of `now`, its credential scope names the
/// date of its time and the endpoint's `expected` region and service, an
/// `X-Amz-Content-Sha256` header (if any) is the hash of `body`, and the
/// signature matches (compared in constant time).
///
/// `parts` and `body` must be the request exactly as received.
pub fn verify(
    req: &SignedRequest,
    parts: &Parts,
    body: &[u8],
    secret_access_key: &str,
    expected: &Scope<'_>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let payload_hash = hex::encode(Sha256::digest(body));
    let claimed = parts.headers.get("x-amz-content-sha256");
    if claimed.is_some_and(|c| !c.as_bytes().eq_ignore_ascii_case(payload_hash.as_bytes())) {
        check_time(req, now)?;
        check_scope(req, expected)?;
        return Err(AuthError::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned(),
        ));
    }
    verify_for_payload(req, parts, &payload_hash, secret_access_key, expected, now)
}

/// [`verify`] for a body not read yet (an upload): the signature is
/// checked against `payload_hash`, the hex SHA-256 the client claims in
/// `X-Amz-Content-Sha256`. The caller must hash the body as it reads it
/// and reject the request if the hashes differ.
pub fn verify_for_payload(
    req: &SignedRequest,
    parts: &Parts,
    payload_hash: &str,
    secret_access_key: &str,
    expected: &Scope<'_>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    check_time(req, now)?;
    check_scope(req, expected)?;
    let key = signing_key(secret_access_key, &req.credential_scope);
    let provided = decode_signature(&req.signature);
    let matches = |trim: Trim| {
        let to_sign = string_to_sign(req, &canonical_request(req, parts, payload_hash, trim, false));
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        mac.update(to_sign.as_bytes());
        provided.as_ref().is_some_and(|p| mac.verify_slice(p).is_ok())
    };
    // Clients disagree on whitespace other than spaces inside header values
    // (botocore and the JS SDK collapse it, the Go and Rust SDKs keep it):
    // the second form is tried only when a signed value has such whitespace.
    if matches(Trim::AnyWhitespace) || (has_other_whitespace(req, parts) && matches(Trim::SpacesOnly)) {
        return Ok(());
    }
    let canonical = canonical_request(req, parts, payload_hash, Trim::AnyWhitespace, false);
    let shown = canonical_request(req, parts, payload_hash, Trim::AnyWhitespace, true);
    Err(AuthError::InvalidSignature(format!(
        "{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'{}'\n\n\
         The String-to-Sign should have been\n'{}'\n",
        String::from_utf8_lossy(&shown),
        string_to_sign(req, &canonical)
    )))
}

/// How header values are trimmed in the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trim {
    /// Each run of whitespace becomes one space (botocore, the aws CLI).
    AnyWhitespace,
    /// Only runs of spaces collapse, tabs stay (aws-sigv4, the Go SDK).
    SpacesOnly,
}

fn has_other_whitespace(req: &SignedRequest, parts: &Parts) -> bool {
    req.signed_headers.iter().any(|name| {
        parts
            .headers
            .get_all(name.as_str())
            .iter()
            .any(|v| v.as_bytes().iter().any(|b| b.is_ascii_whitespace() && *b != b' '))
    })
}

fn check_time(req: &SignedRequest, now: OffsetDateTime) -> Result<(), AuthError> {
    let now = now.to_offset(UtcOffset::UTC);
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let (earliest, latest) = (now - MAX_CLOCK_SKEW, now + MAX_CLOCK_SKEW);
    let minutes = MAX_CLOCK_SKEW.whole_minutes();
    if req.timestamp < earliest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
            req.amz_date,
            format_basic_iso8601(earliest),
            format_basic_iso8601(now)
        )));
    }
    if req.timestamp > latest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            req.amz_date,
            format_basic_iso8601(latest),
            format_basic_iso8601(now)
        )));
    }
    Ok(())
}

fn check_scope(req: &SignedRequest, expected: &Scope<'_>) -> Result<(), AuthError> {
    let scope = &req.credential_scope;
    let mut problems = Vec::new();
    if scope.region != expected.region {
        // AWS's words, then what to do: Berth serves one region.
        problems.push(format!(
            "Credential should be scoped to a valid region, not '{}'. This Berth serves region '{}' only \
             (berth up --region): sign for it (AWS_REGION={}, or --region {}).",
            scope.region, expected.region, expected.region, expected.region
        ));
    }
    if scope.service != expected.service {
        problems.push(format!("Credential should be scoped to correct service: '{}'.", expected.service));
    }
    let day = req.amz_date.get(..8).unwrap_or_default();
    if scope.date != day {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{}' != '{day}', from '{}'.",
            scope.date, req.amz_date
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(AuthError::InvalidSignature(problems.join(" "))) }
}

/// The canonical request (bytes: header values need not be UTF-8). With
/// `redact`, the session token's value is hidden, for error messages.
fn canonical_request(req: &SignedRequest, parts: &Parts, payload_hash: &str, trim: Trim, redact: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(parts.uri.path()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(parts.uri.query()).as_bytes());
    out.push(b'\n');
    for name in &req.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if redact && name == "x-amz-security-token" {
            out.extend_from_slice(b"<redacted>");
        } else {
            let mut values: Vec<&[u8]> = parts.headers.get_all(name.as_str()).iter().map(|v| v.as_bytes()).collect();
            if values.is_empty() && name == "host" {
                // HTTP/2 carries the host in `:authority`.
                values.extend(parts.uri.authority().map(|a| a.as_str().as_bytes()));
            }
            for (i, value) in values.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                trim_all(value, trim, &mut out);
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(req.signed_headers_param.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// Trims a header value and collapses each run of whitespace inside it to
/// one space: AWS's "Trimall".
fn trim_all(value: &[u8], trim: Trim, out: &mut Vec<u8>) {
    let separates = |b: &u8| match trim {
        Trim::AnyWhitespace => b.is_ascii_whitespace(),
        Trim::SpacesOnly => *b == b' ',
    };
    for (i, word) in value.split(separates).filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

/// The path as received (still percent-encoded), normalized (dot segments
/// removed, repeated slashes merged) and URI-encoded once more, as every
/// AWS SDK does for services other than S3.
fn canonical_uri(path: &str) -> String {
    percent_encode(normalize_path(path).as_bytes(), UNRESERVED_AND_SLASH).to_string()
}

/// RFC 3986 section 5.2.4 "Remove Dot Segments", plus merging of empty
/// segments, on an absolute path.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let ends_in_directory = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if ends_in_directory && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Each `key=value` of the query decoded (`+` is a space) and URI-encoded
/// again, sorted by encoded key, then encoded value.
fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (reencode_query_part(k), reencode_query_part(v))
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn reencode_query_part(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    let decoded: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    percent_encode(&decoded, UNRESERVED).to_string()
}

fn string_to_sign(req: &SignedRequest, canonical_request: &[u8]) -> String {
    let scope = &req.credential_scope;
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/{TERMINATOR}\n{}",
        req.amz_date,
        scope.date,
        scope.region,
        scope.service,
        hex::encode(Sha256::digest(canonical_request))
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret_access_key: &str, scope: &CredentialScope) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret_access_key}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// The signature's bytes if it is 64 lowercase hex digits, as every SDK
/// writes it.
fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    let well_formed = signature.len() == 64 && signature.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if well_formed { hex::decode(signature).ok() } else { None }
}

fn header_str<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn has_query_param(query: Option<&str>, name: &str) -> bool {
    query.unwrap_or_default().split('&').any(|p| p.split('=').next() == Some(name))
}

fn bad_date(got: &str) -> AuthError {
    AuthError::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{got}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// Parses exactly `YYYYMMDDTHHMMSSZ`.
fn parse_basic_iso8601(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = &s[range];
        if digits.bytes().all(|c| c.is_ascii_digit()) { digits.parse().ok() } else { None }
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn format_basic_iso8601(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The Authorization header with its signature hidden, for messages: the
/// `Signature=` value and anything else that looks like one.
fn redact_authorization(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut rest = header;
    while !rest.is_empty() {
        let token_len = rest.find([',', ' ']).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(token_len);
        match token.split_once('=') {
            Some(("Signature", _)) => out.push_str("Signature=[REDACTED]"),
            _ => out.push_str(redact_if_signature(token)),
        }
        let sep_len = tail.find(|c| c != ',' && c != ' ').unwrap_or(tail.len());
        out.push_str(&tail[..sep_len]);
        rest = &tail[sep_len..];
    }
    out
}

/// A stray token of the Authorization header, unless it looks like a
/// signature.
fn redact_if_signature(token: &str) -> &str {
    if token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) { "[REDACTED]" } else { token }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::time::SystemTime;

    use berth_testinfra::sign::{Creds, SignOptions, sign, sign_with};
    use http::{Method, Request};
    use time::macros::datetime;

    use super::*;

    const AKID: &str = "AKIDBERTHTEST0000001";
    const SECRET: &str = "berth/test+secret=0123456789abcdefghij";
    const ECS: Scope<'static> = Scope { region: "us-east-1", service: "ecs" };
    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00:00 UTC);

    fn creds(secret: &str) -> Creds {
        Creds { access_key_id: AKID.into(), secret_access_key: secret.into() }
    }

    fn request(method: &str, uri: &str, body: &[u8]) -> Request<Vec<u8>> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "berth.test")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters")
            .body(body.to_vec())
            .unwrap()
    }

    fn ecs_request(body: &[u8]) -> Request<Vec<u8>> {
        request("POST", "http://berth.test/", body)
    }

    /// Signs as the aws CLI would, for `ecs` in `us-east-1`, at `at`.
    fn signed(mut req: Request<Vec<u8>>, at: OffsetDateTime) -> Request<Vec<u8>> {
        sign(&mut req, &creds(SECRET), "us-east-1", "ecs", SystemTime::from(at)).unwrap();
        req
    }

    fn head(req: &Request<Vec<u8>>) -> Parts {
        let mut b = Request::builder().method(req.method().clone()).uri(req.uri().clone());
        for (k, v) in req.headers() {
            b = b.header(k, v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// What the API edge does: parse, then verify with the key's secret.
    fn check(
        req: &Request<Vec<u8>>,
        secret: &str,
        scope: &Scope<'_>,
        now: OffsetDateTime,
    ) -> Result<SignedRequest, AuthError> {
        let parts = head(req);
        let signed = parse(&parts)?;
        verify(&signed, &parts, req.body(), secret, scope, now)?;
        Ok(signed)
    }

    fn ok(req: &Request<Vec<u8>>) -> SignedRequest {
        check(req, SECRET, &ECS, NOW).unwrap_or_else(|e| panic!("expected a valid signature, got {e:?}"))
    }

    fn invalid(req: &Request<Vec<u8>>) -> String {
        invalid_at(req, &ECS, NOW)
    }

    fn invalid_at(req: &Request<Vec<u8>>, scope: &Scope<'_>, now: OffsetDateTime) -> String {
        match check(req, SECRET, scope, now) {
            Err(AuthError::InvalidSignature(m)) => m,
            other => panic!("expected InvalidSignature, got {other:?}"),
        }
    }

    fn incomplete(req: &Request<Vec<u8>>) -> String {
        match check(req, SECRET, &ECS, NOW) {
            Err(AuthError::IncompleteSignature(m)) => m,
            other => panic!("expected IncompleteSignature, got {other:?}"),
        }
    }

    fn mismatch(req: &Request<Vec<u8>>) {
        let m = invalid(req);
        assert!(m.starts_with(SIGNATURE_MISMATCH), "{m}");
    }

    fn with_auth(req: &Request<Vec<u8>>, auth: &str) -> Request<Vec<u8>> {
        let mut r =
            Request::builder().method(req.method().clone()).uri(req.uri().clone()).body(req.body().clone()).unwrap();
        *r.headers_mut() = req.headers().clone();
        r.headers_mut().insert("authorization", auth.parse().unwrap());
        r
    }

    fn signature_of(req: &Request<Vec<u8>>) -> String {
        let auth = req.headers()["authorization"].to_str().unwrap();
        auth.rsplit("Signature=").next().unwrap().to_owned()
    }

    // ---- AWS's published SigV4 test suite (aws-sig-v4-test-suite, as
    // shipped with aws-sigv4): credentials, time, region and service of
    // every vector, then each vector's request and expected signature.

    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_NOW: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);
    const SUITE_SCOPE: Scope<'static> = Scope { region: "us-east-1", service: "service" };
    const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    /// A vector: the request besides `Host: example.amazonaws.com`,
    /// `X-Amz-Date: 20150830T123600Z` and `Authorization`.
    struct V {
        name: &'static str,
        method: &'static str,
        target: &'static str,
        headers: &'static [(&'static str, &'static str)],
        signed: &'static str,
        body: &'static [u8],
        signature: &'static str,
    }

    #[rustfmt::skip]
    const VECTORS: &[V] = &[
    V { name: "get-vanilla", method: "GET", target: "/", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
    V { name: "get-vanilla-query", method: "GET", target: "/", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
    V { name: "get-vanilla-empty-query-key", method: "GET", target: "/?Param1=value1", headers: &[], signed: "host;x-amz-date", body: b"", signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
    V { name: "get-vanilla-query-order-encoded", method: "GET", target: "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1", headers: &[], signed: "host;x-amz-date", body: b"", signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac" },
    V { name: "get-vanilla-query-order-key-case", method: "GET", target: "/?Param2=value2&Param1=value1", headers: &[], signed: "host;x-amz-date", body: b"", signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
    V { name: "get-vanilla-query-unreserved", method: "GET", target: "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", headers: &[], signed: "host;x-amz-date", body: b"", signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
    V { name: "get-vanilla-utf8-query", method: "GET", target: "/?%E1%88%B4=bar", headers: &[], signed: "host;x-amz-date", body: b"", signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
    V { name: "get-vanilla-with-session-token", method: "GET", target: "/", headers: &[("X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267")], signed: "host;x-amz-date;x-amz-security-token", body: b"", signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8" },
    V { name: "get-unreserved", method: "GET", target: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", headers: &[], signed: "host;x-amz-date", body: b"", signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
    V { name: "get-header-key-duplicate", method: "GET", target: "/", headers: &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], signed: "host;my-header1;x-amz-date", body: b"", signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
    V { name: "get-header-value-order", method: "GET", target: "/", headers: &[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")], signed: "host;my-header1;x-amz-date", body: b"", signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
    V { name: "get-header-value-trim", method: "GET", target: "/", headers: &[("My-Header1", " value1"), ("My-Header2", r#" "a   b   c""#)], signed: "host;my-header1;my-header2;x-amz-date", body: b"", signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
    V { name: "get-relative-normalized", method: "GET", target: "/example/..", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
    V { name: "get-relative-relative-normalized", method: "GET", target: "/example1/example2/../..", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
    V { name: "get-slash-dot-slash-normalized", method: "GET", target: "/./", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
    V { name: "get-slash-normalized", method: "GET", target: "//", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
    V { name: "get-slash-pointless-dot-normalized", method: "GET", target: "/./example", headers: &[], signed: "host;x-amz-date", body: b"", signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5" },
    V { name: "get-slashes-normalized", method: "GET", target: "//example//", headers: &[], signed: "host;x-amz-date", body: b"", signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84" },
    V { name: "post-header-key-case", method: "POST", target: "/", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
    V { name: "post-header-key-sort", method: "POST", target: "/", headers: &[("My-Header1", "value1")], signed: "host;my-header1;x-amz-date", body: b"", signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
    V { name: "post-header-value-case", method: "POST", target: "/", headers: &[("My-Header1", "VALUE1")], signed: "host;my-header1;x-amz-date", body: b"", signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
    V { name: "post-sts-header-after", method: "POST", target: "/", headers: &[("X-Amz-Security-Token", STS_TOKEN)], signed: "host;x-amz-date", body: b"", signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
    V { name: "post-sts-header-before", method: "POST", target: "/", headers: &[("X-Amz-Security-Token", STS_TOKEN)], signed: "host;x-amz-date;x-amz-security-token", body: b"", signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead" },
    V { name: "post-vanilla", method: "POST", target: "/", headers: &[], signed: "host;x-amz-date", body: b"", signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
    V { name: "post-vanilla-empty-query-value", method: "POST", target: "/?Param1=value1", headers: &[], signed: "host;x-amz-date", body: b"", signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
    V { name: "post-vanilla-query", method: "POST", target: "/?Param1=value1", headers: &[], signed: "host;x-amz-date", body: b"", signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
    V { name: "post-x-www-form-urlencoded", method: "POST", target: "/", headers: &[("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "13"), ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")], signed: "content-length;content-type;host;x-amz-content-sha256;x-amz-date", body: b"Param1=value1", signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b" },
    V { name: "post-x-www-form-urlencoded-parameters", method: "POST", target: "/", headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Content-Length", "13"), ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")], signed: "content-length;content-type;host;x-amz-content-sha256;x-amz-date", body: b"Param1=value1", signature: "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422" },
    ];

    fn vector_request(v: &V) -> Request<Vec<u8>> {
        let mut b = Request::builder().method(v.method).uri(v.target).header("Host", "example.amazonaws.com");
        for (k, val) in v.headers {
            b = b.header(*k, *val);
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={}",
            v.signed, v.signature
        );
        b.header("X-Amz-Date", "20150830T123600Z").header("Authorization", auth).body(v.body.to_vec()).unwrap()
    }

    #[test]
    fn aws_test_suite_vectors_verify() {
        for v in VECTORS {
            let req = vector_request(v);
            if let Err(e) = check(&req, SUITE_SECRET, &SUITE_SCOPE, SUITE_NOW) {
                panic!("{}: {e:?}", v.name);
            }
            let wrong = check(&req, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", &SUITE_SCOPE, SUITE_NOW);
            assert!(matches!(wrong, Err(AuthError::InvalidSignature(_))), "{}: {wrong:?}", v.name);
        }
    }

    #[test]
    fn get_vanilla_canonical_request_and_string_to_sign() {
        let v = VECTORS.iter().find(|v| v.name == "get-vanilla").unwrap();
        assert_eq!(v.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        let parts = head(&vector_request(v));
        let signed = parse(&parts).unwrap();
        let empty = hex::encode(Sha256::digest(b""));
        let canonical = canonical_request(&signed, &parts, &empty, Trim::AnyWhitespace, false);
        assert_eq!(
            String::from_utf8(canonical.clone()).unwrap(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(&signed, &canonical),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    #[test]
    fn double_url_encode_canonical_request() {
        // aws-sig-v4-test-suite "double-url-encode": the received path is
        // encoded once more.
        let req = Request::builder()
            .method("POST")
            .uri("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations")
            .header("Host", "lambda.us-east-2.amazonaws.com")
            .header("X-Amz-Date", "20210511T154045Z")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
            )
            .body(Vec::new())
            .unwrap();
        let parts = head(&req);
        let signed = parse(&parts).unwrap();
        let canonical =
            canonical_request(&signed, &parts, &hex::encode(Sha256::digest(b"")), Trim::AnyWhitespace, false);
        assert_eq!(
            String::from_utf8(canonical).unwrap(),
            "POST\n/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations\n\n\
             host:lambda.us-east-2.amazonaws.com\nx-amz-date:20210511T154045Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Requests signed by botocore 1.43.11 (the aws CLI's and boto3's
    /// signer) with its clock pinned at `NOW`, AKID and SECRET.
    #[test]
    fn botocore_signed_requests_verify() {
        let auth = |signed: &str, sig: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential={AKID}/20261122/us-east-1/ecs/aws4_request, SignedHeaders={signed}, \
                 Signature={sig}"
            )
        };
        let ecs = |body: &[u8], headers: &[(&str, &str)], auth: String| {
            let mut b = Request::builder()
                .method("POST")
                .uri("/")
                .header("Host", "berth.test")
                .header("Content-Type", "application/x-amz-json-1.1")
                .header("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.header("Authorization", auth).header("Content-Length", body.len()).body(body.to_vec()).unwrap()
        };
        // What `aws ecs list-clusters --max-results 2` sends.
        let cli = ecs(
            br#"{"maxResults": 2}"#,
            &[("User-Agent", "aws-cli/2.22.0"), ("X-Amz-Date", "20261122T120000Z")],
            auth(
                "content-type;host;x-amz-date;x-amz-target",
                "5afa8c14411971fffbdece18addefccf73ea32794f419d7d0a9f9d827f5b1fa9",
            ),
        );
        // With a `Date` header, botocore signs it instead of `X-Amz-Date`.
        let date = ecs(
            b"{}",
            &[("Date", "Sun, 22 Nov 2026 12:00:00 -0000")],
            auth(
                "content-type;date;host;x-amz-target",
                "272a6d80d656fce0ebc523d28e1389b96e237c660d08ee23e59831aeedad1822",
            ),
        );
        let token = ecs(
            b"{}",
            &[("X-Amz-Date", "20261122T120000Z"), ("X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLETOKEN")],
            auth(
                "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
                "bead00122fee59f602f0dd58ccaf48c81fead5d5f7a051ca3bd1363f9eeaa057",
            ),
        );
        // Encoded path and query, a header with a run of spaces and a tab.
        let get = Request::builder()
            .uri("/a%20b/~c/caf%C3%A9?q=a%20b&u=%C3%A9&a=2&a=1")
            .header("Host", "berth.test")
            .header("X-Spaces", "a   b\tc")
            .header("X-Amz-Date", "20261122T120000Z")
            .header(
                "Authorization",
                auth("host;x-amz-date;x-spaces", "93a6d8761530f676a82557877c4e5cbd6353860acc99e7b1880495bd327b7061"),
            )
            .body(Vec::new())
            .unwrap();
        for (name, req) in [("cli", cli), ("date", date), ("token", token), ("get", get)] {
            if let Err(e) = check(&req, SECRET, &ECS, NOW) {
                panic!("{name}: {e:?}");
            }
            let wrong = check(&req, "not-the-secret", &ECS, NOW);
            assert!(matches!(wrong, Err(AuthError::InvalidSignature(_))), "{name}: {wrong:?}");
        }
    }

    // ---- Round trips with AWS's own signer (aws-sigv4 via testinfra).

    #[test]
    fn cli_style_request_verifies_and_parses() {
        let req = signed(ecs_request(br#"{"maxResults": 2}"#), NOW);
        let s = ok(&req);
        assert_eq!(s.access_key_id, AKID);
        assert_eq!(
            s.credential_scope,
            CredentialScope { date: "20261122".into(), region: "us-east-1".into(), service: "ecs".into() }
        );
        assert_eq!(s.signed_headers, ["content-type", "host", "x-amz-date", "x-amz-target"]);
        assert_eq!(s.timestamp, NOW);
        assert_eq!(s.session_token, None);
        let shown = format!("{s:?}");
        assert!(!shown.contains(&signature_of(&req)), "Debug hides the signature: {shown}");
    }

    #[test]
    fn empty_body_verifies() {
        ok(&signed(ecs_request(b""), NOW));
    }

    #[test]
    fn tampered_body_fails() {
        let mut req = signed(ecs_request(br#"{"clusterName":"a"}"#), NOW);
        *req.body_mut() = br#"{"clusterName":"b"}"#.to_vec();
        mismatch(&req);
    }

    #[test]
    fn tampered_signed_header_fails() {
        let mut req = signed(ecs_request(b"{}"), NOW);
        req.headers_mut().insert("x-amz-target", "AmazonEC2ContainerServiceV20141113.DeleteCluster".parse().unwrap());
        mismatch(&req);
    }

    #[test]
    fn tampered_method_fails() {
        let mut req = signed(ecs_request(b"{}"), NOW);
        *req.method_mut() = Method::PUT;
        mismatch(&req);
    }

    #[test]
    fn tampered_path_fails() {
        let mut req = signed(ecs_request(b"{}"), NOW);
        *req.uri_mut() = "http://berth.test/other".parse().unwrap();
        mismatch(&req);
    }

    #[test]
    fn tampered_query_fails() {
        let mut req = signed(request("POST", "http://berth.test/?a=1", b"{}"), NOW);
        ok(&req);
        *req.uri_mut() = "http://berth.test/?a=2".parse().unwrap();
        mismatch(&req);
        *req.uri_mut() = "http://berth.test/?a=1&b=".parse().unwrap();
        mismatch(&req);
    }

    #[test]
    fn tampered_date_header_fails() {
        let mut req = signed(ecs_request(b"{}"), NOW);
        req.headers_mut().insert("x-amz-date", "20261122T120100Z".parse().unwrap());
        mismatch(&req);
    }

    #[test]
    fn wrong_secret_fails_with_aws_message() {
        let req = signed(ecs_request(b"{}"), NOW);
        let err = check(&req, "not-the-secret", &ECS, NOW).unwrap_err();
        assert_eq!(err.aws_type(), "InvalidSignatureException");
        let m = err.to_string();
        assert!(m.starts_with(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details."
        ));
        assert!(m.contains("The Canonical String for this request should have been\n'POST\n/\n\n"), "{m}");
        assert!(m.contains("The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261122T120000Z\n"), "{m}");
        assert!(!m.contains(SECRET) && !m.contains("not-the-secret"), "{m}");
        assert!(!m.contains(&signature_of(&req)), "{m}");
    }

    #[test]
    fn malformed_signatures_fail_without_panicking() {
        let req = signed(ecs_request(b"{}"), NOW);
        let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
        let sig = signature_of(&req);
        for bad in [sig.to_uppercase(), sig[..63].to_owned(), format!("{sig}00"), "zz".repeat(32)] {
            mismatch(&with_auth(&req, &auth.replace(&sig, &bad)));
        }
    }

    #[test]
    fn sixteen_minutes_off_either_way_fails() {
        let old = signed(ecs_request(b"{}"), NOW - time::Duration::minutes(16));
        assert_eq!(
            invalid(&old),
            "Signature expired: 20261122T114400Z is now earlier than 20261122T114500Z (20261122T120000Z - 15 min.)"
        );
        let future = signed(ecs_request(b"{}"), NOW + time::Duration::minutes(16));
        assert_eq!(
            invalid(&future),
            "Signature not yet current: 20261122T121600Z is still later than 20261122T121500Z (20261122T120000Z + 15 min.)"
        );
    }

    #[test]
    fn fifteen_minutes_off_either_way_is_accepted() {
        ok(&signed(ecs_request(b"{}"), NOW - MAX_CLOCK_SKEW));
        ok(&signed(ecs_request(b"{}"), NOW + MAX_CLOCK_SKEW));
        // Sub-second parts of the server's clock do not matter.
        let req = signed(ecs_request(b"{}"), NOW - MAX_CLOCK_SKEW);
        check(&req, SECRET, &ECS, NOW + time::Duration::milliseconds(999)).unwrap();
    }

    #[test]
    fn wrong_region_fails() {
        let mut req = ecs_request(b"{}");
        sign(&mut req, &creds(SECRET), "eu-west-1", "ecs", SystemTime::from(NOW)).unwrap();
        assert_eq!(
            invalid(&req),
            "Credential should be scoped to a valid region, not 'eu-west-1'. This Berth serves region 'us-east-1' \
             only (berth up --region): sign for it (AWS_REGION=us-east-1, or --region us-east-1)."
        );
    }

    #[test]
    fn wrong_service_fails() {
        let mut req = ecs_request(b"{}");
        sign(&mut req, &creds(SECRET), "us-east-1", "logs", SystemTime::from(NOW)).unwrap();
        assert_eq!(invalid(&req), "Credential should be scoped to correct service: 'ecs'.");
        // The same request is fine for an endpoint serving `logs`.
        check(&req, SECRET, &Scope { region: "us-east-1", service: "logs" }, NOW).unwrap();
    }

    #[test]
    fn wrong_region_and_service_are_both_named() {
        let mut req = ecs_request(b"{}");
        sign(&mut req, &creds(SECRET), "eu-west-1", "logs", SystemTime::from(NOW)).unwrap();
        assert_eq!(
            invalid(&req),
            "Credential should be scoped to a valid region, not 'eu-west-1'. This Berth serves region 'us-east-1' \
             only (berth up --region): sign for it (AWS_REGION=us-east-1, or --region us-east-1). \
             Credential should be scoped to correct service: 'ecs'."
        );
    }

    #[test]
    fn scope_date_must_be_the_request_date() {
        let late = datetime!(2026-11-22 23:59:50 UTC);
        let mut req = signed(ecs_request(b"{}"), late);
        req.headers_mut().insert("x-amz-date", "20261123T000010Z".parse().unwrap());
        assert_eq!(
            invalid_at(&req, &ECS, late),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '20261122' != '20261123', from '20261123T000010Z'."
        );
    }

    #[test]
    fn unsigned_headers_change_freely() {
        let mut req = signed(ecs_request(b"{}"), NOW);
        req.headers_mut().insert("user-agent", "aws-cli/2.22.0".parse().unwrap());
        req.headers_mut().insert("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793".parse().unwrap());
        req.headers_mut().insert("content-length", "2".parse().unwrap());
        req.headers_mut().insert("x-not-signed", "anything".parse().unwrap());
        ok(&req);
    }

    #[test]
    fn paths_and_queries_needing_encoding_verify() {
        for uri in [
            "http://berth.test/a%20b/~c/%25/caf%C3%A9/x+y/%7E",
            "http://berth.test/a/./b/../c//d/",
            "http://berth.test/?q=a%20b&tilde=~x&pct=%25&u=%C3%A9&plus=a+b&z=&a=2&a=1&empty",
            "http://berth.test/%E1%88%B4?%E1%88%B4=%E1%88%B4&k=v%2Bw&sp=%20",
            "http://berth.test/clusters/my%3Acluster?arn=arn%3Aaws%3Aecs%3Aus-east-1%3A123456789012%3Acluster%2Fdefault",
        ] {
            let req = signed(request("GET", uri, b""), NOW);
            if let Err(e) = check(&req, SECRET, &ECS, NOW) {
                panic!("{uri}: {e:?}");
            }
        }
    }

    #[test]
    fn canonical_uri_and_query_forms() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a%20b/~c"), "/a%2520b/~c");
        assert_eq!(canonical_uri("//a/./b/../c/.."), "/a/");
        assert_eq!(canonical_query(Some("b=2&a=2&a=1&c&d=%7e&e=a+b&f=%2B")), "a=1&a=2&b=2&c=&d=~&e=a%20b&f=%2B");
        assert_eq!(canonical_query(None), "");
    }

    #[test]
    fn duplicate_header_values_verify_in_order() {
        let mut req = ecs_request(b"{}");
        req.headers_mut().append("x-dup", "b".parse().unwrap());
        req.headers_mut().append("x-dup", "a".parse().unwrap());
        let mut req = signed(req, NOW);
        ok(&req);
        // The values are signed in order: swapping them breaks the signature.
        req.headers_mut().remove("x-dup");
        req.headers_mut().append("x-dup", "a".parse().unwrap());
        req.headers_mut().append("x-dup", "b".parse().unwrap());
        mismatch(&req);
    }

    #[test]
    fn header_values_with_runs_of_spaces_verify() {
        let mut req = ecs_request(b"{}");
        req.headers_mut().insert("x-spaces", "  a   b    c  ".parse().unwrap());
        let mut req = signed(req, NOW);
        ok(&req);
        // Canonically the same value.
        req.headers_mut().insert("x-spaces", "a b c".parse().unwrap());
        ok(&req);
        req.headers_mut().insert("x-spaces", "a bc".parse().unwrap());
        mismatch(&req);
    }

    #[test]
    fn tabs_inside_header_values_verify_either_way() {
        // aws-sigv4 (like the Go SDK) keeps a tab as is.
        let mut req = ecs_request(b"{}");
        req.headers_mut().insert("x-tab", "a\tb".parse().unwrap());
        ok(&signed(req, NOW));
        // botocore (the aws CLI) signs it as a space.
        let mut req = ecs_request(b"{}");
        req.headers_mut().insert("x-tab", "a b".parse().unwrap());
        let mut req = signed(req, NOW);
        req.headers_mut().insert("x-tab", "a\tb".parse().unwrap());
        ok(&req);
        req.headers_mut().insert("x-tab", "a\tb\tc".parse().unwrap());
        mismatch(&req);
    }

    #[test]
    fn session_token_is_signed_and_exposed() {
        let mut req = ecs_request(b"{}");
        let options = SignOptions { session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".into()), ..SignOptions::default() };
        sign_with(&mut req, &creds(SECRET), "us-east-1", "ecs", SystemTime::from(NOW), &options).unwrap();
        let s = ok(&req);
        assert!(s.signed_headers.iter().any(|h| h == "x-amz-security-token"));
        assert_eq!(s.session_token.as_deref(), Some("FwoGZXIvYXdzEXAMPLETOKEN"));
        assert!(!format!("{s:?}").contains("EXAMPLETOKEN"));
        req.headers_mut().insert("x-amz-security-token", "FwoGZXIvYXdzOTHERTOKEN".parse().unwrap());
        let m = invalid(&req);
        assert!(m.starts_with(SIGNATURE_MISMATCH) && !m.contains("OTHERTOKEN"), "the token is not echoed: {m}");
    }

    #[test]
    fn content_sha256_header_is_checked_against_the_body() {
        let mut req = ecs_request(b"{}");
        let options = SignOptions { content_sha256_header: true, ..SignOptions::default() };
        sign_with(&mut req, &creds(SECRET), "us-east-1", "ecs", SystemTime::from(NOW), &options).unwrap();
        ok(&req);
        let mut tampered = with_auth(&req, req.headers()["authorization"].to_str().unwrap());
        *tampered.body_mut() = b"{\"x\":1}".to_vec();
        assert_eq!(invalid(&tampered), "The provided 'x-amz-content-sha256' header does not match what was computed.");
        req.headers_mut().insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        assert!(invalid(&req).contains("x-amz-content-sha256"));
    }

    // ---- Malformed requests.

    #[test]
    fn missing_or_foreign_authorization_is_missing_token() {
        let req = ecs_request(b"{}");
        assert_eq!(check(&req, SECRET, &ECS, NOW).unwrap_err(), AuthError::MissingAuthenticationToken);
        for auth in ["Bearer eyJhbGciOiJIUzI1NiJ9", "AWS AKIDEXAMPLE:qaNdqGsI6bq4Hi+9Gzovwyjbh0E="] {
            let err = check(&with_auth(&req, auth), SECRET, &ECS, NOW).unwrap_err();
            assert_eq!(err, AuthError::MissingAuthenticationToken, "{auth}");
        }
    }

    #[test]
    fn missing_parameters_are_all_named() {
        let req = ecs_request(b"{}");
        let m = incomplete(&with_auth(&req, "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecs/aws4_request"));
        assert_eq!(
            m,
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' \
             parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecs/aws4_request"
        );
    }

    #[test]
    fn missing_date_is_incomplete_and_hides_the_signature() {
        let mut req = signed(ecs_request(b"{}"), NOW);
        req.headers_mut().remove("x-amz-date");
        let m = incomplete(&req);
        assert!(m.starts_with("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "));
        assert!(m.contains("Signature=[REDACTED]"), "{m}");
        assert!(!m.contains(&signature_of(&req)), "{m}");
    }

    #[test]
    fn pair_without_equal_sign_is_incomplete() {
        let req = signed(ecs_request(b"{}"), NOW);
        let auth = req.headers()["authorization"].to_str().unwrap().replace("Credential=", "Credential= ");
        let m = incomplete(&with_auth(&req, &auth));
        assert!(
            m.starts_with(&format!(
                "'{AKID}/20261122/us-east-1/ecs/aws4_request' not a valid key=value pair (missing equal-sign) in \
                 Authorization header: 'AWS4-HMAC-SHA256 Credential= {AKID}/"
            )),
            "{m}"
        );
        assert!(!m.contains(&signature_of(&req)));
        let auth = req.headers()["authorization"].to_str().unwrap().replace("Signature=", "Signature ");
        let m = incomplete(&with_auth(&req, &auth));
        assert!(m.starts_with("'Signature' not a valid key=value pair"), "{m}");
        assert!(!m.contains(&signature_of(&req)), "{m}");
        let auth = req.headers()["authorization"].to_str().unwrap().replace("Signature=", "Signature= ");
        let m = incomplete(&with_auth(&req, &auth));
        assert!(m.starts_with("'[REDACTED]' not a valid key=value pair"), "{m}");
        assert!(!m.contains(&signature_of(&req)), "{m}");
    }

    #[test]
    fn unsupported_algorithm_is_incomplete() {
        let req = signed(ecs_request(b"{}"), NOW);
        let auth = req.headers()["authorization"].to_str().unwrap().replace(ALGORITHM, "AWS4-HMAC-SHA512");
        assert_eq!(
            incomplete(&with_auth(&req, &auth)),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now)."
        );
    }

    #[test]
    fn credential_needs_five_elements() {
        let req = signed(ecs_request(b"{}"), NOW);
        let auth = req.headers()["authorization"].to_str().unwrap().replace("/ecs/aws4_request", "/aws4_request");
        assert_eq!(
            incomplete(&with_auth(&req, &auth)),
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
                 got '{AKID}/20261122/us-east-1/aws4_request'"
            )
        );
        let auth = req.headers()["authorization"].to_str().unwrap().replace("/aws4_request", "/aws4_request/");
        ok(&with_auth(&req, &auth)); // a trailing slash is ignored
        let auth = req.headers()["authorization"].to_str().unwrap().replace("/aws4_request", "/aws5_request");
        assert_eq!(
            invalid(&with_auth(&req, &auth)),
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
        );
    }

    #[test]
    fn host_must_be_signed() {
        let req = signed(ecs_request(b"{}"), NOW);
        let auth = req.headers()["authorization"].to_str().unwrap().replace("host;", "");
        assert_eq!(invalid(&with_auth(&req, &auth)), "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    }

    #[test]
    fn malformed_date_is_incomplete() {
        for bad in
            ["2026-11-22T12:00:00Z", "20261122T120000", "20261322T120000Z", "20261122T126000Z", "+2026112T120000Z"]
        {
            let mut req = signed(ecs_request(b"{}"), NOW);
            req.headers_mut().insert("x-amz-date", bad.parse().unwrap());
            assert_eq!(
                incomplete(&req),
                format!(
                    "Date must be in ISO-8601 'basic format'. Got '{bad}'. See http://en.wikipedia.org/wiki/ISO_8601"
                )
            );
        }
    }

    #[test]
    fn date_header_stands_in_for_x_amz_date() {
        let req = Request::builder()
            .uri("/")
            .header("host", "berth.test")
            .header("date", "Sun, 30 Aug 2015 12:36:00 GMT")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, \
                 SignedHeaders=date;host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            )
            .body(Vec::new())
            .unwrap();
        let s = parse(&head(&req)).unwrap();
        assert_eq!(s.timestamp, SUITE_NOW);
        assert_eq!(s.amz_date, "20150830T123600Z");
    }

    #[test]
    fn presigned_query_with_header_is_refused() {
        let mut req = signed(request("POST", "http://berth.test/?X-Amz-Algorithm=AWS4-HMAC-SHA256", b"{}"), NOW);
        *req.uri_mut() = "http://berth.test/?X-Amz-Algorithm=AWS4-HMAC-SHA256".parse().unwrap();
        assert!(invalid(&req).starts_with("Found both 'X-Amz-Algorithm'"));
    }

    #[test]
    fn aws_types_and_statuses() {
        let cases = [
            (AuthError::MissingAuthenticationToken, "MissingAuthenticationTokenException"),
            (AuthError::IncompleteSignature(String::new()), "IncompleteSignatureException"),
            (AuthError::InvalidSignature(String::new()), "InvalidSignatureException"),
            (AuthError::UnrecognizedClient, "UnrecognizedClientException"),
        ];
        for (e, t) in cases {
            assert_eq!(e.aws_type(), t);
            assert_eq!(e.http_status(), 400);
        }
        assert_eq!(AuthError::UnrecognizedClient.to_string(), "The security token included in the request is invalid.");
        assert_eq!(AuthError::MissingAuthenticationToken.to_string(), "Request is missing Authentication Token");
    }
}
