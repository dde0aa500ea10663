//! EC2's filters (`Filter.N.Name`, `Filter.N.Value.M`): an object matches
//! when, for every filter, one of its values for the filter's name matches
//! one of the filter's values (`*` and `?` are wildcards); `tag:KEY`
//! matches a tag's value, `tag-key` a tag's key. A name the operation does
//! not know is `InvalidParameterValue`, as EC2 answers. And EC2's pages:
//! `MaxResults` 5 to 1000, an opaque `NextToken`.

use std::collections::BTreeMap;

use berth_wire::ec2::{Filter, Tag};

use super::invalid;
use crate::ApiError;
use crate::paging;

/// The filters of one request, checked against the names an operation
/// knows.
pub(super) struct Filters(Vec<(String, Vec<String>)>);

impl Filters {
    pub fn new(filters: Option<Vec<Filter>>, known: &[&str]) -> Result<Self, ApiError> {
        let mut out = Vec::new();
        for f in filters.unwrap_or_default() {
            let name = f.name.unwrap_or_default();
            if !(known.contains(&name.as_str()) || name.starts_with("tag:") && name.len() > 4) {
                return Err(invalid(format!(
                    "The filter '{name}' is invalid; this operation knows: {}, tag:<key>.",
                    known.join(", ")
                )));
            }
            out.push((name, f.values.unwrap_or_default()));
        }
        Ok(Self(out))
    }

    /// Whether an object matches every filter; `values(name)` gives the
    /// object's values for a (non-tag) filter name, `tags` its tags.
    pub fn matches(&self, tags: &BTreeMap<String, String>, values: impl Fn(&str) -> Vec<String>) -> bool {
        self.0.iter().all(|(name, wanted)| {
            let have: Vec<String> = if let Some(key) = name.strip_prefix("tag:") {
                tags.get(key).cloned().into_iter().collect()
            } else if name == "tag-key" {
                tags.keys().cloned().collect()
            } else if name == "tag-value" {
                tags.values().cloned().collect()
            } else {
                values(name)
            };
            have.iter().any(|h| wanted.iter().any(|w| wildcard(w, h)))
        })
    }
}

/// EC2's filter values: `*` any run, `?` any one character, `\` escapes.
fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some(('\\', rest)) if !rest.is_empty() => t.first() == Some(&rest[0]) && go(&rest[1..], &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// The wire's tags from a map, sorted by key.
pub(super) fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

/// One page of `items` (sorted by `key`), after `next_token`.
pub(super) fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    max_results: Option<i32>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = match max_results {
        None => 1000,
        Some(n @ 5..=1000) => n as u32,
        Some(n) => return Err(invalid(format!("Value ({n}) for parameter maxResults is invalid. Expecting a value between 5 and 1000."))),
    };
    let after: Option<String> =
        paging::decode(next_token).map_err(|_| invalid("The NextToken is not one this operation returned."))?;
    items.sort_by_key(|i| key(i));
    if let Some(after) = after {
        items.retain(|i| key(i) > after);
    }
    items.truncate(limit as usize + 1);
    Ok(paging::finish(items, limit, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_as_ec2_has_them() {
        assert!(wildcard("web-*", "web-a"));
        assert!(wildcard("w?b", "web"));
        assert!(!wildcard("w?b", "wb"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a\\*", "a*"));
        assert!(!wildcard("a\\*", "ab"));
        assert!(!wildcard("web", "web2"));
    }

    #[test]
    fn filters_match_all_names_and_any_value() {
        let f = |name: &str, values: &[&str]| Filter {
            name: Some(name.into()),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let known = ["group-name", "vpc-id"];
        let fs = Filters::new(Some(vec![f("group-name", &["web", "api"]), f("tag:team", &["a*"])]), &known).unwrap();
        let tags = BTreeMap::from([("team".to_owned(), "alpha".to_owned())]);
        assert!(fs.matches(&tags, |n| if n == "group-name" { vec!["api".into()] } else { vec![] }));
        assert!(!fs.matches(&BTreeMap::new(), |_| vec!["api".into()]));
        assert!(!fs.matches(&tags, |_| vec!["db".into()]));
        let e = Filters::new(Some(vec![f("colour", &["x"])]), &known).err().unwrap();
        assert_eq!(e.aws_type(), "InvalidParameterValue");
    }

    #[test]
    fn pages_carry_on_after_their_token() {
        let (first, token) = page((1..=12).collect::<Vec<u32>>(), |i| format!("{i:03}"), Some(5), None).unwrap();
        assert_eq!(first, [1, 2, 3, 4, 5]);
        let (second, token) = page((1..=12).collect(), |i| format!("{i:03}"), Some(5), token.as_deref()).unwrap();
        assert_eq!(second, [6, 7, 8, 9, 10]);
        let (third, token) = page((1..=12).collect(), |i| format!("{i:03}"), Some(5), token.as_deref()).unwrap();
        assert_eq!((third, token), (vec![11, 12], None));
        assert!(page(vec![1u32], |i| i.to_string(), Some(4), None).is_err());
        assert!(page(vec![1u32], |i| i.to_string(), None, Some("nope")).is_err());
    }
}
