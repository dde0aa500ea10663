//! Patterns as IAM reads them: `*` and `?` wildcards, policy variables
//! (`${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, and the
//! escapes `${*}` `${?}` `${$}`), and ARNs matched segment by segment.

use std::collections::BTreeMap;

/// One element of a pattern once its variables are substituted: a literal
/// character (also a `*` that came from `${*}` or a variable's value) or a
/// wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    Star,
    One,
}

/// Where a pattern's variables come from; `None` for a policy without
/// `"Version": "2012-10-17"`, whose `${…}` are plain text as in IAM.
pub(crate) type Vars<'a> = Option<&'a BTreeMap<String, Vec<String>>>;

/// The pattern with its variables substituted, or `None` when a variable
/// has no value in the request and no default (IAM: the element does not
/// match).
pub(crate) fn expand(pattern: &str, vars: Vars<'_>) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let (Some(vars), Some(body)) = (vars, rest.strip_prefix("${"))
            && let Some(end) = body.find('}')
        {
            let inner = &body[..end];
            rest = &body[end + 1..];
            match inner {
                "*" => out.push(Tok::Lit('*')),
                "?" => out.push(Tok::Lit('?')),
                "$" => out.push(Tok::Lit('$')),
                _ => out.extend(variable(inner, vars)?.chars().map(Tok::Lit)),
            }
            continue;
        }
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// `name` or `name, 'default'`; names are case-insensitive.
fn variable(inner: &str, vars: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let (name, default) = match inner.split_once(',') {
        Some((name, default)) => {
            let d = default.trim();
            let d = d.strip_prefix('\'').and_then(|d| d.strip_suffix('\'')).unwrap_or(d);
            (name.trim(), Some(d))
        }
        None => (inner.trim(), None),
    };
    vars.get(&name.to_ascii_lowercase())
        .and_then(|v| v.first().cloned())
        .or_else(|| default.map(str::to_owned))
}

/// The pattern as text again, its wildcards as plain `*`/`?` (for the
/// operators that do not take wildcards, e.g. StringEquals).
pub(crate) fn literal(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

/// Glob match of the whole of `value` (iterative, linear backtracking on
/// the last `*`: no recursion, no blow-up on long inputs).
pub(crate) fn glob(toks: &[Tok], value: &str, ignore_case: bool) -> bool {
    let fold = |c: char| if ignore_case { c.to_lowercase().next().unwrap_or(c) } else { c };
    let v: Vec<char> = value.chars().map(fold).collect();
    let (mut p, mut i) = (0usize, 0usize);
    let mut back: Option<(usize, usize)> = None;
    while i < v.len() {
        match toks.get(p) {
            Some(Tok::Star) => {
                back = Some((p, i));
                p += 1;
                continue;
            }
            Some(Tok::One) => {
                p += 1;
                i += 1;
                continue;
            }
            Some(Tok::Lit(c)) if fold(*c) == v[i] => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match back {
            Some((bp, bi)) => {
                p = bp + 1;
                i = bi + 1;
                back = Some((bp, bi + 1));
            }
            None => return false,
        }
    }
    toks[p.min(toks.len())..].iter().all(|t| *t == Tok::Star)
}

/// ARN matching as IAM does it: each of the six colon-separated parts
/// (`arn:partition:service:region:account:resource`, the last one keeping
/// its own colons) is matched on its own, so a wildcard never spans a
/// colon before the resource part. A pattern without colons (`*`) is
/// matched whole; one of fewer than six parts matches no ARN.
pub(crate) fn arn_match(toks: &[Tok], value: &str) -> bool {
    let pat: Vec<&[Tok]> = split_toks(toks);
    let val: Vec<&str> = value.splitn(6, ':').collect();
    if pat.len() == 1 || val.len() == 1 {
        return glob(toks, value, false);
    }
    if pat.len() != val.len() {
        return false;
    }
    pat.iter().zip(&val).all(|(p, v)| glob(p, v, false))
}

fn split_toks(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::with_capacity(6);
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if parts.len() == 5 {
            break;
        }
        if *t == Tok::Lit(':') {
            parts.push(&toks[start..i]);
            start = i + 1;
        }
    }
    parts.push(&toks[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> Vec<Tok> {
        expand(p, Some(&BTreeMap::new())).unwrap_or_default()
    }

    #[test]
    fn globs() {
        for (p, v, ok) in [
            ("*", "", true),
            ("*", "anything", true),
            ("ecs:Describe*", "ecs:DescribeTasks", true),
            ("ecs:Describe*", "ecs:ListTasks", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxxc", false),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(glob(&t(p), v, false), ok, "{p} ~ {v}");
        }
        assert!(glob(&t("ECS:describe*"), "ecs:DescribeTasks", true));
        assert!(!glob(&t("ECS:describe*"), "ecs:DescribeTasks", false));
    }

    #[test]
    fn arns_match_segment_wise() {
        let task = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd";
        assert!(arn_match(&t("arn:aws:ecs:*:*:task/prod/*"), task));
        assert!(arn_match(&t("arn:aws:ecs:us-east-1:123456789012:*"), task));
        assert!(!arn_match(&t("arn:aws:ecs:us-east-1:123456789012:task/dev/*"), task));
        // a wildcard does not span the region/account colons
        assert!(!arn_match(&t("arn:aws:ecs:*:task/prod/*"), task));
        assert!(arn_match(&t("*"), task));
        let stream = "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:web/1";
        assert!(arn_match(&t("arn:aws:logs:*:*:log-group:app:*"), stream));
        assert!(!arn_match(&t("arn:aws:logs:*:*:log-group:other:*"), stream));
        // ARNs are case-sensitive
        assert!(!arn_match(&t("arn:aws:ecs:*:*:task/PROD/*"), task));
        // "*" as a resource is matched only by patterns that match "*"
        assert!(!arn_match(&t("arn:aws:ecs:*:*:*"), "*"));
    }

    #[test]
    fn variables() {
        let mut vars = BTreeMap::new();
        vars.insert("aws:username".to_owned(), vec!["alice".to_owned()]);
        let v = Some(&vars);
        assert_eq!(literal(&expand("home/${aws:username}/*", v).unwrap_or_default()), "home/alice/*");
        assert_eq!(literal(&expand("home/${AWS:UserName}", v).unwrap_or_default()), "home/alice");
        assert_eq!(expand("${aws:PrincipalTag/team}", v), None);
        assert_eq!(literal(&expand("${aws:PrincipalTag/team, 'none'}", v).unwrap_or_default()), "none");
        let escaped = expand("a${*}b${?}${$}", v).unwrap_or_default();
        assert!(glob(&escaped, "a*b?$", false));
        assert!(!glob(&escaped, "axxb?$", false));
        // a policy without Version 2012-10-17 has no variables
        assert_eq!(literal(&expand("${aws:username}", None).unwrap_or_default()), "${aws:username}");
        // unterminated: plain text
        assert_eq!(literal(&expand("${aws:username", v).unwrap_or_default()), "${aws:username");
    }
}
