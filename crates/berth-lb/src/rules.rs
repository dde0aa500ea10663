//! ALB's listener rules, pure: which rule a request meets, and where a
//! redirect points. The request is seen through [`RequestView`] so the
//! rules know nothing of hyper.

use std::net::IpAddr;

use crate::config::{Action, Condition, Redirect, Rule};

/// What rules look at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The raw query string (no `?`), if any.
    pub query: Option<&'a str>,
    /// The Host header (or HTTP/2 `:authority`), with its port if it had one.
    pub host: Option<&'a str>,
    /// Header names and values (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
    pub source: IpAddr,
}

/// The action of the first rule (by ascending priority) whose conditions
/// all hold; the default action when none does.
pub fn route<'a>(rules: &'a [Rule], default: &'a Action, req: &RequestView<'_>) -> &'a Action {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by_key(|r| r.priority);
    sorted.into_iter().find(|r| r.conditions.iter().all(|c| holds(c, req))).map_or(default, |r| &r.action)
}

/// One condition: any of its values matches.
pub fn holds(condition: &Condition, req: &RequestView<'_>) -> bool {
    match condition {
        Condition::PathPattern(patterns) => patterns.iter().any(|p| wildcard(p, req.path, false)),
        Condition::HostHeader(patterns) => {
            let Some(host) = req.host.map(host_without_port) else { return false };
            patterns.iter().any(|p| wildcard(p, host, true))
        }
        Condition::HttpHeader { name, values } => req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| values.iter().any(|p| wildcard(p, v, true))),
        Condition::HttpRequestMethod(methods) => methods.iter().any(|m| m == req.method),
        Condition::QueryString(pairs) => {
            let params: Vec<(String, String)> =
                req.query.map(form_pairs).unwrap_or_default();
            pairs.iter().any(|pair| {
                params.iter().any(|(k, v)| {
                    pair.key.as_deref().is_none_or(|pk| wildcard(pk, k, true)) && wildcard(&pair.value, v, true)
                })
            })
        }
        Condition::SourceIp(nets) => {
            let source = match req.source {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(req.source, IpAddr::V4),
                v4 => v4,
            };
            nets.iter().any(|n| n.contains(&source))
        }
    }
}

/// The query string's pairs, percent-decoded (`+` as space).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// ALB's wildcards: `*` any run of characters (also none), `?` exactly one.
pub fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The request parts a redirect's placeholders stand for.
#[derive(Debug, Clone, Copy)]
pub struct RedirectSource<'a> {
    /// `http` or `https` (the listener's).
    pub protocol: &'a str,
    /// The Host header without its port.
    pub host: &'a str,
    pub port: u16,
    /// The path (starting with `/`).
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// The Location of a redirect. ALB leaves the port out when it is the
/// protocol's default, and the `?` out when the query is empty.
pub fn redirect_location(r: &Redirect, src: &RedirectSource<'_>) -> String {
    let port = src.port.to_string();
    let path_no_slash = src.path.strip_prefix('/').unwrap_or(src.path);
    let fill = |template: &str| {
        template
            .replace("#{protocol}", src.protocol)
            .replace("#{host}", src.host)
            .replace("#{port}", &port)
            .replace("#{path}", path_no_slash)
            .replace("#{query}", src.query.unwrap_or(""))
    };
    let protocol = fill(r.protocol.as_deref().unwrap_or("#{protocol}")).to_ascii_lowercase();
    let host = fill(r.host.as_deref().unwrap_or("#{host}"));
    let port = fill(r.port.as_deref().unwrap_or("#{port}"));
    let mut path = fill(r.path.as_deref().unwrap_or("/#{path}"));
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query = fill(r.query.as_deref().unwrap_or("#{query}"));
    let default_port = matches!((protocol.as_str(), port.as_str()), ("http", "80") | ("https", "443"));
    let mut url = format!("{protocol}://{host}");
    if !default_port && !port.is_empty() {
        url.push(':');
        url.push_str(&port);
    }
    url.push_str(&path);
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    url
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::config::{FixedResponse, QueryPair};

    #[test]
    fn wildcards_as_alb_has_them() {
        let table: &[(&str, &str, bool, bool)] = &[
            ("/api/*", "/api/users", false, true),
            ("/api/*", "/api/", false, true),
            ("/api/*", "/api", false, false),
            ("/api/*", "/API/users", false, false),
            ("/img/*.png", "/img/a/b.png", false, true),
            ("/img/*.png", "/img/a/b.jpg", false, false),
            ("/v?/x", "/v1/x", false, true),
            ("/v?/x", "/v12/x", false, false),
            ("*", "", false, true),
            ("*.example.com", "API.Example.com", true, true),
            ("*.example.com", "example.com", true, false),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("exact", "exact", false, true),
            ("exact", "exactly", false, false),
        ];
        for &(p, t, ic, want) in table {
            assert_eq!(wildcard(p, t, ic), want, "{p:?} vs {t:?}");
        }
    }

    fn req<'a>(method: &'a str, path: &'a str, query: Option<&'a str>, host: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestView<'a> {
        RequestView { method, path, query, host: Some(host), headers, source: "10.0.0.5".parse().unwrap() }
    }

    #[test]
    fn conditions_table() {
        let h = [("X-Env", "Canary-1"), ("user-agent", "curl/8")];
        let r = req("GET", "/api/v1", Some("version=2&flag&name=a%20b"), "Shop.Example.com:8080", &h);
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let table: Vec<(Condition, bool)> = vec![
            (Condition::PathPattern(s(&["/api/*"])), true),
            (Condition::PathPattern(s(&["/web/*", "/api/v?"])), true),
            (Condition::PathPattern(s(&["/API/*"])), false),
            (Condition::HostHeader(s(&["shop.example.com"])), true),
            (Condition::HostHeader(s(&["*.example.org", "*.EXAMPLE.com"])), true),
            (Condition::HostHeader(s(&["example.com"])), false),
            (Condition::HttpHeader { name: "x-env".into(), values: s(&["canary-*"]) }, true),
            (Condition::HttpHeader { name: "x-env".into(), values: s(&["prod"]) }, false),
            (Condition::HttpHeader { name: "x-missing".into(), values: s(&["*"]) }, false),
            (Condition::HttpRequestMethod(s(&["POST", "GET"])), true),
            (Condition::HttpRequestMethod(s(&["get"])), false),
            (Condition::QueryString(vec![QueryPair { key: Some("version".into()), value: "2".into() }]), true),
            (Condition::QueryString(vec![QueryPair { key: Some("VER*".into()), value: "?".into() }]), true),
            (Condition::QueryString(vec![QueryPair { key: None, value: "a b".into() }]), true),
            (Condition::QueryString(vec![QueryPair { key: Some("version".into()), value: "3".into() }]), false),
            (Condition::SourceIp(vec!["10.0.0.0/24".parse().unwrap()]), true),
            (Condition::SourceIp(vec!["192.168.0.0/16".parse().unwrap(), "10.0.0.5/32".parse().unwrap()]), true),
            (Condition::SourceIp(vec!["10.0.1.0/24".parse().unwrap()]), false),
        ];
        for (c, want) in table {
            assert_eq!(holds(&c, &r), want, "{c:?}");
        }
    }

    #[test]
    fn rules_by_priority_all_conditions_and_the_default() {
        let fixed = |s: u16| Action::FixedResponse(FixedResponse { status: s, content_type: None, body: String::new() });
        let rules = vec![
            Rule { priority: 20, conditions: vec![Condition::PathPattern(vec!["/api/*".into()])], action: fixed(220) },
            Rule {
                priority: 10,
                conditions: vec![Condition::PathPattern(vec!["/api/*".into()]), Condition::HttpRequestMethod(vec!["POST".into()])],
                action: fixed(210),
            },
        ];
        let default = fixed(404);
        let status = |a: &Action| match a {
            Action::FixedResponse(f) => f.status,
            _ => 0,
        };
        assert_eq!(status(route(&rules, &default, &req("POST", "/api/x", None, "h", &[]))), 210);
        assert_eq!(status(route(&rules, &default, &req("GET", "/api/x", None, "h", &[]))), 220);
        assert_eq!(status(route(&rules, &default, &req("GET", "/other", None, "h", &[]))), 404);
    }

    #[test]
    fn redirect_placeholders() {
        let src = RedirectSource { protocol: "http", host: "example.com", port: 80, path: "/a/b", query: Some("x=1") };
        let table: Vec<(Redirect, &str)> = vec![
            (Redirect { protocol: Some("HTTPS".into()), port: Some("443".into()), ..Default::default() }, "https://example.com/a/b?x=1"),
            (Redirect::default(), "http://example.com/a/b?x=1"),
            (
                Redirect { host: Some("new.#{host}".into()), port: Some("8443".into()), protocol: Some("HTTPS".into()), path: Some("/v2/#{path}".into()), query: Some("#{query}&r=1".into()), permanent: true },
                "https://new.example.com:8443/v2/a/b?x=1&r=1",
            ),
            (Redirect { query: Some(String::new()), path: Some("/".into()), ..Default::default() }, "http://example.com/"),
        ];
        for (r, want) in table {
            assert_eq!(redirect_location(&r, &src), want, "{r:?}");
        }
        let no_query = RedirectSource { query: None, port: 8080, ..src };
        assert_eq!(redirect_location(&Redirect::default(), &no_query), "http://example.com:8080/a/b");
    }

    #[test]
    fn host_ports_and_decoding() {
        assert_eq!(host_without_port("a.b:80"), "a.b");
        assert_eq!(host_without_port("a.b"), "a.b");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(decode("a%20b+c%zz%4"), "a b c%zz%4");
    }
}
