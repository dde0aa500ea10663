//! AWS Query and EC2 requests: `application/x-www-form-urlencoded`
//! parameters whose names nest members with dots (`Filter.1.Name`,
//! `Tags.member.2.Key`, `Attributes.entry.1.key`).

use std::collections::BTreeMap;
use std::str::FromStr;

/// A request's parameters, decoded once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryInput {
    params: BTreeMap<String, String>,
}

/// Why parameters do not make the operation's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required member is absent (`MissingParameter`).
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(String),
    /// A value is not of the member's type (`InvalidParameterValue`).
    #[error("Value ({value}) for parameter {name} is invalid: expected {expected}.")]
    InvalidValue { name: String, value: String, expected: &'static str },
    /// The body is not a form at all (`MalformedQueryString`).
    #[error("{0}")]
    Malformed(String),
}

/// The name of member `name` under `prefix` (`prefix.name`, or `name` at
/// the top).
pub fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
}

/// A structure read from the parameters under a prefix (`""` for the
/// operation's input).
pub trait FromQuery: Sized {
    fn from_query(q: &QueryInput, prefix: &str) -> Result<Self, QueryError>;
}

impl QueryInput {
    /// Decodes a form body (or a URL's query string). Refuses what is not
    /// a form: bytes that are not UTF-8, a `%` not followed by two hex
    /// digits, a parameter without a name.
    pub fn parse(body: &[u8]) -> Result<Self, QueryError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| QueryError::Malformed("The request body is not UTF-8 form data.".into()))?;
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%' && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return Err(QueryError::Malformed(format!("Malformed percent-encoding at byte {i} of the request.")));
            }
        }
        let mut params = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(text.trim().as_bytes()) {
            if k.is_empty() {
                return Err(QueryError::Malformed("A request parameter has no name.".into()));
            }
            params.insert(k.into_owned(), v.into_owned());
        }
        Ok(Self { params })
    }

    /// From parameters already decoded (tests, other front ends).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { params: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The `Action` parameter: the operation's name.
    pub fn action(&self) -> &str {
        self.get("Action").unwrap_or("")
    }

    /// The `Version` parameter: the API version the client speaks.
    pub fn version(&self) -> Option<&str> {
        self.get("Version")
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Whether anything is given at `key` or under it (`key.…`).
    pub fn present(&self, key: &str) -> bool {
        self.params.contains_key(key) || self.under(key).next().is_some()
    }

    fn under<'a>(&'a self, key: &str) -> impl Iterator<Item = (&'a String, &'a String)> + 'a {
        let dotted = format!("{key}.");
        self.params.range(dotted.clone()..).take_while(move |(k, _)| k.starts_with(&dotted))
    }

    /// The numbers N that `items.N` or `items.N.…` are given for, in order.
    fn indices(&self, items: &str) -> Vec<u32> {
        let skip = items.len() + 1;
        let mut out: Vec<u32> = self
            .under(items)
            .filter_map(|(k, _)| k[skip..].split('.').next().and_then(|n| n.parse::<u32>().ok()))
            .filter(|n| *n > 0)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// A scalar member: strings as given, numbers, `true`/`false`, enums
    /// by their wire spelling.
    pub fn scalar<T: FromStr>(&self, key: &str) -> Result<Option<T>, QueryError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|_| QueryError::InvalidValue {
                name: key.to_owned(),
                value: v.to_owned(),
                expected: expected::<T>(),
            }),
        }
    }

    /// A timestamp: ISO 8601 (as botocore writes them) or epoch seconds.
    pub fn timestamp(&self, key: &str) -> Result<Option<f64>, QueryError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        if let Ok(secs) = v.parse::<f64>() {
            return Ok(Some(secs));
        }
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp_nanos() as f64 / 1e9))
            .map_err(|_| QueryError::InvalidValue { name: key.to_owned(), value: v.to_owned(), expected: "an ISO 8601 timestamp" })
    }

    /// A structure member, if anything is given under `key`.
    pub fn structure<T: FromQuery>(&self, key: &str) -> Result<Option<T>, QueryError> {
        if self.under(key).next().is_some() { T::from_query(self, key).map(Some) } else { Ok(None) }
    }

    /// A list member: elements at `items.1`, `items.2`, … (`items` is
    /// `key.member` in Query, `key` itself in EC2 and for flattened
    /// lists). `key` given empty is the empty list (Query writes `Name=`).
    pub fn list<T>(
        &self,
        key: &str,
        items: &str,
        element: impl Fn(&Self, String) -> Result<Option<T>, QueryError>,
    ) -> Result<Option<Vec<T>>, QueryError> {
        let indices = self.indices(items);
        if indices.is_empty() {
            return Ok(self.get(key).is_some_and(str::is_empty).then(Vec::new));
        }
        let mut out = Vec::with_capacity(indices.len());
        for n in indices {
            if let Some(v) = element(self, format!("{items}.{n}"))? {
                out.push(v);
            }
        }
        Ok(Some(out))
    }

    /// A map member: entries at `entries.1`, `entries.2`, … each read by
    /// `entry` (its key and value members).
    pub fn map<K: Ord, V>(
        &self,
        entries: &str,
        entry: impl Fn(&Self, String) -> Result<Option<(K, V)>, QueryError>,
    ) -> Result<Option<BTreeMap<K, V>>, QueryError> {
        let indices = self.indices(entries);
        if indices.is_empty() {
            return Ok(None);
        }
        let mut out = BTreeMap::new();
        for n in indices {
            if let Some((k, v)) = entry(self, format!("{entries}.{n}"))? {
                out.insert(k, v);
            }
        }
        Ok(Some(out))
    }

    /// A required member: absent is `MissingParameter` naming it.
    pub fn required<T>(&self, value: Option<T>, key: &str) -> Result<T, QueryError> {
        value.ok_or_else(|| QueryError::MissingParameter(key.to_owned()))
    }

    /// `a.b.c` with its last part replaced (a flattened list whose member
    /// has its own name).
    pub fn rename_last(&self, key: &str, name: &str) -> String {
        match key.rsplit_once('.') {
            Some((head, _)) => format!("{head}.{name}"),
            None => name.to_owned(),
        }
    }
}

fn expected<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "i32" | "i64" => "an integer",
        "f64" => "a number",
        "bool" => "true or false",
        _ => "one of the values the API allows",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded_and_malformed_ones_refused() {
        let q = QueryInput::parse(b"Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a+b").unwrap();
        assert_eq!(q.action(), "DescribeVpcs");
        assert_eq!(q.get("Filter.1.Name"), Some("tag:Name"));
        assert_eq!(q.get("Filter.1.Value.1"), Some("a b"));
        assert!(matches!(QueryInput::parse(b"Action=%zz"), Err(QueryError::Malformed(_))));
        assert!(matches!(QueryInput::parse(b"Action=x&%"), Err(QueryError::Malformed(_))));
        assert!(matches!(QueryInput::parse(b"\xff\xfe"), Err(QueryError::Malformed(_))));
        assert!(matches!(QueryInput::parse(b"=v"), Err(QueryError::Malformed(_))));
        assert_eq!(QueryInput::parse(b"").unwrap().action(), "");
    }

    #[test]
    fn lists_scalars_and_maps_nest_by_index() {
        let q = QueryInput::from_pairs([
            ("A.member.2", "two"),
            ("A.member.1", "one"),
            ("A.member.10", "ten"),
            ("B", ""),
            ("N", "x7"),
            ("M.entry.1.key", "k"),
            ("M.entry.1.value", "v"),
            ("T", "2024-05-01T10:00:00Z"),
        ]);
        let strings = |q: &QueryInput, k: String| q.scalar::<String>(&k);
        assert_eq!(q.list("A", "A.member", strings).unwrap().unwrap(), ["one", "two", "ten"]);
        assert_eq!(q.list("B", "B.member", strings).unwrap(), Some(vec![]));
        assert_eq!(q.list("C", "C.member", strings).unwrap(), None);
        let e = q.scalar::<i32>("N").unwrap_err();
        assert_eq!(e.to_string(), "Value (x7) for parameter N is invalid: expected an integer.");
        let m = q
            .map("M.entry", |q, k| {
                Ok(match (q.scalar::<String>(&key(&k, "key"))?, q.scalar::<String>(&key(&k, "value"))?) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                })
            })
            .unwrap()
            .unwrap();
        assert_eq!(m.get("k").map(String::as_str), Some("v"));
        assert_eq!(q.timestamp("T").unwrap(), Some(1_714_557_600.0));
        assert!(q.timestamp("N").is_err());
        assert_eq!(q.required::<String>(None, "X").unwrap_err(), QueryError::MissingParameter("X".into()));
    }
}
