//! The REST-JSON (restJson1) protocol's mechanics: matching a request's
//! method and path against the model's routes (`http.method` +
//! `http.requestUri`, with `{Label}` and greedy `{Label+}` segments and
//! query-string literals), reading members bound to the URI, the query
//! string and headers ([`RestRequest`]), and writing an answer's status,
//! headers and body ([`RestResponse`]). Members not bound elsewhere are
//! the JSON body, which serde reads and writes. Which member is bound
//! where is the generated code's business.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::de::DeserializeOwned;

/// One operation's route, from its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestRoute {
    pub method: &'static str,
    /// `http.requestUri`: a path pattern, maybe with `?literal` or
    /// `?key=value` query literals the request must carry.
    pub uri: &'static str,
    pub operation: &'static str,
}

/// An error shape of the model: its code, HTTP status, and the member
/// its message is in (`Message` or `message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestErrorShape {
    pub code: &'static str,
    pub status: u16,
    pub message_member: &'static str,
}

/// Why a request does not make an operation's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// A required member is absent.
    #[error("The request must contain the parameter {0}.")]
    MissingMember(String),
    /// A bound value (label, query parameter, header) is not of the
    /// member's type.
    #[error("Value '{value}' at '{name}' is invalid: expected {expected}.")]
    InvalidValue { name: String, value: String, expected: &'static str },
    /// The body is not the operation's JSON input (or the URI is not
    /// well-formed).
    #[error("{0}")]
    Malformed(String),
}

/// A route's labels, by name, decoded.
pub type Labels = BTreeMap<String, String>;

/// The operation whose route `method` and `path` (still percent-encoded)
/// match, with its decoded labels. Of several matches the most specific
/// wins: the one with more literal segments, then more query literals.
pub fn match_route(routes: &'static [RestRoute], method: &str, path: &str, query: &str) -> Option<(&'static RestRoute, Labels)> {
    let given: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut best: Option<((usize, usize), &'static RestRoute, Labels)> = None;
    for route in routes.iter().filter(|r| r.method.eq_ignore_ascii_case(method)) {
        let (pattern, literals) = route.uri.split_once('?').unwrap_or((route.uri, ""));
        let literals: Vec<(&str, Option<&str>)> =
            literals.split('&').filter(|l| !l.is_empty()).map(|l| l.split_once('=').map_or((l, None), |(k, v)| (k, Some(v)))).collect();
        if !literals.iter().all(|(k, v)| pairs.iter().any(|(pk, pv)| pk == k && v.is_none_or(|v| v == pv))) {
            continue;
        }
        let Some((labels, fixed)) = match_path(pattern, &given) else { continue };
        let score = (fixed, literals.len());
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, route, labels));
        }
    }
    best.map(|(_, r, l)| (r, l))
}

/// The labels of `given` (the request's segments) under `pattern`, and
/// how many literal segments matched.
fn match_path(pattern: &str, given: &[&str]) -> Option<(BTreeMap<String, String>, usize)> {
    let pattern: Vec<&str> = pattern.strip_prefix('/').unwrap_or(pattern).split('/').collect();
    let mut labels = BTreeMap::new();
    let mut fixed = 0;
    for (i, seg) in pattern.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            // Greedy: the rest of the path, one segment or more.
            let rest = given.get(i..).filter(|r| !r.is_empty())?;
            let value = rest.iter().map(|s| decode(s)).collect::<Option<Vec<_>>>()?.join("/");
            if value.is_empty() {
                return None;
            }
            labels.insert(name.to_owned(), value);
            return Some((labels, fixed));
        }
        let got = given.get(i)?;
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let value = decode(got)?;
            if value.is_empty() {
                return None;
            }
            labels.insert(name.to_owned(), value);
        } else if seg == got {
            fixed += 1;
        } else {
            return None;
        }
    }
    (given.len() == pattern.len()).then_some((labels, fixed))
}

/// A percent-decoded path segment, if it is well-formed UTF-8.
fn decode(segment: &str) -> Option<String> {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A REST request, its parts decoded once, for the generated `from_rest`.
#[derive(Debug, Clone, Default)]
pub struct RestRequest<'a> {
    labels: BTreeMap<String, String>,
    query: Vec<(String, String)>,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

impl<'a> RestRequest<'a> {
    /// `labels` from [`match_route`]; `query` as received; `headers`
    /// with any case of name.
    pub fn new(
        labels: BTreeMap<String, String>,
        query: &str,
        headers: impl IntoIterator<Item = (String, String)>,
        body: &'a [u8],
    ) -> Result<Self, RestError> {
        let q = query.as_bytes();
        for (i, c) in q.iter().enumerate() {
            if *c == b'%' && !(q.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && q.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return Err(RestError::Malformed(format!("Malformed percent-encoding at byte {i} of the query string.")));
            }
        }
        let query = form_urlencoded::parse(q).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let headers = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        Ok(Self { labels, query, headers, body })
    }

    /// The JSON body as `T` (an empty body is `{}`).
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, RestError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { self.body };
        serde_json::from_slice(body).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).replace('`', "'");
            if e.is_data() && (msg.starts_with("missing field") || msg.starts_with("unknown variant")) {
                RestError::InvalidValue { name: "body".into(), value: msg, expected: "the operation's input" }
            } else {
                RestError::Malformed(format!("The request body could not be read: {msg}"))
            }
        })
    }

    /// A structure payload: the whole body, if there is one.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<Option<T>, RestError> {
        if self.body.is_empty() { Ok(None) } else { self.body().map(Some) }
    }

    /// A blob payload: the raw body, as base64 text (how the wire shapes
    /// hold blobs).
    pub fn payload_blob(&self) -> Option<String> {
        use base64::Engine as _;
        (!self.body.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(self.body))
    }

    /// A string payload: the body as text.
    pub fn payload_string(&self) -> Result<Option<String>, RestError> {
        if self.body.is_empty() {
            return Ok(None);
        }
        String::from_utf8(self.body.to_vec()).map(Some).map_err(|_| RestError::Malformed("The request body is not UTF-8 text.".into()))
    }

    pub fn label<T: FromStr>(&self, name: &str) -> Result<Option<T>, RestError> {
        self.labels.get(name).map(|v| parse(name, v)).transpose()
    }

    pub fn label_timestamp(&self, name: &str) -> Result<Option<f64>, RestError> {
        self.labels.get(name).map(|v| timestamp(name, v)).transpose()
    }

    fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query<T: FromStr>(&self, name: &str) -> Result<Option<T>, RestError> {
        self.query_value(name).map(|v| parse(name, v)).transpose()
    }

    /// A list in the query string: the key repeated.
    pub fn query_list<T: FromStr>(&self, name: &str) -> Result<Option<Vec<T>>, RestError> {
        let items: Vec<T> = self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| parse(name, v)).collect::<Result<_, _>>()?;
        Ok((!items.is_empty()).then_some(items))
    }

    /// A query-string timestamp: ISO 8601 (Smithy's default there).
    pub fn query_timestamp(&self, name: &str) -> Result<Option<f64>, RestError> {
        self.query_value(name).map(|v| timestamp(name, v)).transpose()
    }

    /// A map bound to the whole query string: every parameter not bound
    /// to another member.
    pub fn query_map(&self, bound: &[&str]) -> Option<BTreeMap<String, String>> {
        let m: BTreeMap<String, String> = self.query.iter().filter(|(k, _)| !bound.contains(&k.as_str())).cloned().collect();
        (!m.is_empty()).then_some(m)
    }

    fn header_value(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn header<T: FromStr>(&self, name: &str) -> Result<Option<T>, RestError> {
        self.header_value(name).map(|v| parse(name, v.trim())).transpose()
    }

    /// A list in a header: comma-separated values.
    pub fn header_list<T: FromStr>(&self, name: &str) -> Result<Option<Vec<T>>, RestError> {
        self.header_value(name).map(|v| v.split(',').map(|i| parse(name, i.trim())).collect()).transpose()
    }

    /// A header timestamp: an HTTP date (Smithy's default there), or ISO
    /// 8601 or epoch seconds when the model says so.
    pub fn header_timestamp(&self, name: &str) -> Result<Option<f64>, RestError> {
        self.header_value(name).map(|v| timestamp(name, v.trim())).transpose()
    }

    /// The headers whose names start with `prefix`, by the rest of the name.
    pub fn header_prefix(&self, prefix: &str) -> Option<BTreeMap<String, String>> {
        let prefix = prefix.to_ascii_lowercase();
        let m: BTreeMap<String, String> =
            self.headers.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest.to_owned(), v.clone()))).collect();
        (!m.is_empty()).then_some(m)
    }

    pub fn required<T>(&self, value: Option<T>, name: &str) -> Result<T, RestError> {
        value.ok_or_else(|| RestError::MissingMember(name.to_owned()))
    }
}

fn parse<T: FromStr>(name: &str, v: &str) -> Result<T, RestError> {
    v.parse::<T>().map_err(|_| RestError::InvalidValue { name: name.to_owned(), value: v.to_owned(), expected: expected::<T>() })
}

fn expected<T>() -> &'static str {
    match std::any::type_name::<T>() {
        "i32" | "i64" => "an integer",
        "f64" => "a number",
        "bool" => "true or false",
        _ => "one of the values the API allows",
    }
}

/// A timestamp in any of Smithy's three text forms: ISO 8601, HTTP
/// date, epoch seconds.
fn timestamp(name: &str, v: &str) -> Result<f64, RestError> {
    use time::format_description::well_known::{Rfc2822, Rfc3339};
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(secs);
    }
    let http_date = v.strip_suffix(" GMT").map(|s| format!("{s} +0000"));
    time::OffsetDateTime::parse(v, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(http_date.as_deref().unwrap_or(v), &Rfc2822))
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .map_err(|_| RestError::InvalidValue { name: name.to_owned(), value: v.to_owned(), expected: "a timestamp" })
}

/// Text of a value bound to a header or a query string.
pub trait RestText {
    fn rest_text(&self) -> String;
}

macro_rules! display_text {
    ($($t:ty),*) => { $(impl RestText for $t { fn rest_text(&self) -> String { self.to_string() } })* };
}
display_text!(String, i32, i64, f64, bool);

/// An HTTP date (RFC 7231 IMF-fixdate), how headers carry timestamps.
pub fn http_date(epoch_seconds: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds.floor() as i64)
        .ok()
        .and_then(|t| t.format(time::macros::format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT")).ok())
        .unwrap_or_else(|| "Thu, 01 Jan 1970 00:00:00 GMT".to_owned())
}

/// ISO 8601 with milliseconds, how query strings and `timestampFormat:
/// iso8601` bodies carry timestamps.
pub fn iso8601(epoch_seconds: f64) -> String {
    let nanos = (epoch_seconds * 1e3).round() as i128 * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// A REST answer: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl RestResponse {
    /// `value`'s unbound members as the JSON body (serde skips the bound
    /// ones).
    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// An operation without output: an empty JSON object.
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), content_type: "application/json", body: b"{}".to_vec() }
    }

    pub fn header(&mut self, name: &str, value: &impl RestText) {
        self.headers.push((name.to_owned(), value.rest_text()));
    }

    pub fn header_list(&mut self, name: &str, values: &[impl RestText]) {
        self.headers.push((name.to_owned(), values.iter().map(RestText::rest_text).collect::<Vec<_>>().join(", ")));
    }

    pub fn header_timestamp(&mut self, name: &str, epoch_seconds: f64) {
        self.headers.push((name.to_owned(), http_date(epoch_seconds)));
    }

    pub fn header_prefix(&mut self, prefix: &str, values: &BTreeMap<String, String>) {
        self.headers.extend(values.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone())));
    }

    /// A structure payload: the body is that member alone.
    pub fn payload_json<T: serde::Serialize>(&mut self, value: &T) {
        self.body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    }

    /// A blob payload (base64 text in the wire shape): the raw bytes.
    pub fn payload_blob(&mut self, base64_text: &str) {
        use base64::Engine as _;
        self.content_type = "application/octet-stream";
        self.body = base64::engine::general_purpose::STANDARD.decode(base64_text).unwrap_or_default();
    }

    pub fn payload_string(&mut self, text: &str) {
        self.content_type = "text/plain";
        self.body = text.as_bytes().to_vec();
    }
}

/// serde for a body timestamp the model writes as ISO 8601
/// (`timestampFormat: iso8601`).
pub mod iso8601_body {
    pub fn serialize<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::iso8601(*v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        super::timestamp("timestamp", &text).map_err(serde::de::Error::custom)
    }
}

/// The same for an optional member.
pub mod iso8601_body_opt {
    #[allow(clippy::ref_option)]
    pub fn serialize<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&super::iso8601(*v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let text: Option<String> = serde::Deserialize::deserialize(d)?;
        text.map(|t| super::timestamp("timestamp", &t).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROUTES: &[RestRoute] = &[
        RestRoute { method: "GET", uri: "/schedules", operation: "List" },
        RestRoute { method: "GET", uri: "/schedules/{Name}", operation: "Get" },
        RestRoute { method: "GET", uri: "/schedules/special", operation: "Special" },
        RestRoute { method: "GET", uri: "/files/{Key+}", operation: "Greedy" },
        RestRoute { method: "POST", uri: "/items/{Id}?tagging", operation: "Tag" },
        RestRoute { method: "POST", uri: "/items/{Id}", operation: "Put" },
    ];

    fn op(method: &str, path: &str, query: &str) -> Option<(&'static str, BTreeMap<String, String>)> {
        match_route(ROUTES, method, path, query).map(|(r, l)| (r.operation, l))
    }

    #[test]
    fn routes_match_by_method_path_labels_and_query_literals() {
        assert_eq!(op("GET", "/schedules", "").unwrap().0, "List");
        let (o, l) = op("GET", "/schedules/my%20one", "groupName=x").unwrap();
        assert_eq!((o, l["Name"].as_str()), ("Get", "my one"));
        assert_eq!(op("GET", "/schedules/special", "").unwrap().0, "Special", "a literal segment beats a label");
        let (o, l) = op("GET", "/files/a/b%2Fc/d", "").unwrap();
        assert_eq!((o, l["Key"].as_str()), ("Greedy", "a/b/c/d"));
        assert_eq!(op("POST", "/items/7", "tagging").unwrap().0, "Tag");
        assert_eq!(op("POST", "/items/7", "").unwrap().0, "Put");
        assert!(op("DELETE", "/schedules/x", "").is_none());
        assert!(op("GET", "/schedules/a/b", "").is_none());
        assert!(op("GET", "/schedules/", "").is_none(), "an empty label matches nothing");
        assert!(op("GET", "/files/", "").is_none());
        assert!(op("GET", "/schedules/%zz", "").is_none());
    }

    #[test]
    fn bound_members_are_read_with_their_types() {
        let r = RestRequest::new(
            BTreeMap::from([("Name".into(), "n".into())]),
            "Max=5&When=2024-01-02T03%3A04%3A05Z&Tag=a&Tag=b&bad=x",
            [("X-Count".to_owned(), " 3 ".to_owned()), ("X-Meta-A".to_owned(), "1".to_owned())],
            b"",
        )
        .unwrap();
        assert_eq!(r.label::<String>("Name").unwrap().as_deref(), Some("n"));
        assert_eq!(r.query::<i32>("Max").unwrap(), Some(5));
        assert_eq!(r.query_timestamp("When").unwrap(), Some(1_704_164_645.0));
        assert_eq!(r.query_list::<String>("Tag").unwrap(), Some(vec!["a".into(), "b".into()]));
        assert!(matches!(r.query::<i32>("bad"), Err(RestError::InvalidValue { .. })));
        assert_eq!(r.header::<i64>("x-count").unwrap(), Some(3));
        assert_eq!(r.header_prefix("x-meta-").unwrap()["a"], "1");
        assert_eq!(r.body::<BTreeMap<String, i32>>().unwrap(), BTreeMap::new(), "an empty body is {{}}");
        assert!(RestRequest::new(BTreeMap::new(), "a=%z", [], b"").is_err());
        let bad = RestRequest::new(BTreeMap::new(), "", [], b"{not json").unwrap();
        assert!(matches!(bad.body::<BTreeMap<String, i32>>(), Err(RestError::Malformed(_))));
    }

    #[test]
    fn timestamps_in_each_text_form() {
        assert_eq!(timestamp("t", "Tue, 02 Jan 2024 03:04:05 GMT").unwrap(), 1_704_164_645.0);
        assert_eq!(timestamp("t", "1704164645.5").unwrap(), 1_704_164_645.5);
        assert_eq!(http_date(1_704_164_645.0), "Tue, 02 Jan 2024 03:04:05 GMT");
        assert_eq!(iso8601(1_704_164_645.25), "2024-01-02T03:04:05.250Z");
    }
}
