//! Resource tags: ECS's limits, and merging and removing keys.

use berth_wire::ecs::Tag;

use crate::ModelError;

pub const MAX_TAGS: usize = 50;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

fn reserved(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// One tag as most AWS services check it: key 1..=128 and value
/// 0..=256 characters, no `aws:` prefix on the key; the message says
/// which rule it breaks (the service picks its error code).
pub fn check_pair(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > MAX_KEY || value.chars().count() > MAX_VALUE {
        return Err(format!("Tag key '{key}' must be 1 to {MAX_KEY} characters and its value at most {MAX_VALUE}."));
    }
    if reserved(key) {
        return Err(format!("Tag key '{key}' uses the reserved prefix 'aws:'."));
    }
    Ok(())
}

/// Checks tags as ECS does: key 1..=128 and value 0..=256 characters, no
/// `aws:` prefix, at most 50 per resource, no duplicate keys.
pub fn validate(tags: &[Tag]) -> Result<(), ModelError> {
    if tags.len() > MAX_TAGS {
        return Err(ModelError::invalid(format!("A resource can have at most {MAX_TAGS} tags; {} were given.", tags.len())));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let key = t.key.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > MAX_KEY {
            return Err(ModelError::invalid(format!("Tag key '{key}' must be 1 to {MAX_KEY} characters long.")));
        }
        if value.chars().count() > MAX_VALUE {
            return Err(ModelError::invalid(format!("The value of tag '{key}' must be at most {MAX_VALUE} characters long.")));
        }
        if reserved(key) || reserved(value) {
            return Err(ModelError::invalid(format!("Tag '{key}' uses the reserved prefix 'aws:'.")));
        }
        if !seen.insert(key) {
            return Err(ModelError::invalid(format!("Tag key '{key}' is given more than once.")));
        }
    }
    Ok(())
}

/// Adds `new` to `current`, overwriting the values of existing keys, and
/// checks the result against the limits.
pub fn merge(current: &[Tag], new: &[Tag]) -> Result<Vec<Tag>, ModelError> {
    validate(new)?;
    let mut out = current.to_vec();
    for t in new {
        match out.iter_mut().find(|c| c.key == t.key) {
            Some(c) => c.value.clone_from(&t.value),
            None => out.push(t.clone()),
        }
    }
    validate(&out)?;
    Ok(out)
}

/// Removes the given keys; keys that are absent are ignored, as in ECS.
pub fn remove(current: &[Tag], keys: &[String]) -> Vec<Tag> {
    current.iter().filter(|t| !keys.iter().any(|k| Some(k) == t.key.as_ref())).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag { key: Some(k.into()), value: Some(v.into()) }
    }

    #[test]
    fn merge_overwrites_and_adds() {
        let out = merge(&[tag("a", "1"), tag("b", "2")], &[tag("b", "3"), tag("c", "4")]).unwrap();
        assert_eq!(out, vec![tag("a", "1"), tag("b", "3"), tag("c", "4")]);
    }

    #[test]
    fn limits() {
        assert!(validate(&[tag(&"k".repeat(129), "v")]).is_err());
        assert!(validate(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate(&[tag("aws:owner", "x")]).is_err());
        assert!(validate(&[tag("AWS:owner", "x")]).is_err());
        assert!(validate(&[tag("", "x")]).is_err());
        assert!(validate(&[tag("a", "1"), tag("a", "2")]).is_err());
        let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate(&many).is_ok());
        assert!(merge(&many, &[tag("one-more", "v")]).is_err());
    }

    #[test]
    fn remove_ignores_absent_keys() {
        let out = remove(&[tag("a", "1"), tag("b", "2")], &["b".into(), "zzz".into()]);
        assert_eq!(out, vec![tag("a", "1")]);
    }
}
