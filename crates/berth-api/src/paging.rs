//! `nextToken`/`maxResults` pagination: opaque tokens that carry the last
//! key of the previous page (keyset pagination, stable under inserts).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// ECS's default and largest page for the list calls Berth serves.
pub const MAX_RESULTS: i32 = 100;

/// The page size a request asks for: `maxResults` in 1..=100, default 100.
pub fn limit(max_results: Option<i32>) -> Result<u32, ApiError> {
    match max_results {
        None => Ok(MAX_RESULTS as u32),
        Some(n) if (1..=MAX_RESULTS).contains(&n) => Ok(n as u32),
        Some(n) => Err(ApiError::invalid_parameter(format!(
            "maxResults must be between 1 and {MAX_RESULTS}; {n} was given."
        ))),
    }
}

pub fn encode<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// The key a `nextToken` carries; a token Berth did not issue is refused.
pub fn decode<K: DeserializeOwned>(token: Option<&str>) -> Result<Option<K>, ApiError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken: it was not returned by a previous call."))
}

/// Cuts a page read with `limit + 1` rows down to `limit`, returning the
/// token for the rest (if there is more).
pub fn finish<T, K: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> (Vec<T>, Option<String>) {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        let token = rows.last().map(|r| encode(&key(r)));
        (rows, token)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_tokens_fail() {
        let t = encode(&("api".to_owned(), 3));
        assert_eq!(decode::<(String, i32)>(Some(&t)).unwrap(), Some(("api".into(), 3)));
        assert_eq!(decode::<String>(None).unwrap(), None);
        assert!(decode::<(String, i32)>(Some("garbage!!")).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1)).unwrap(), 1);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
    }

    #[test]
    fn finish_gives_a_token_only_when_more_rows_exist() {
        let (rows, tok) = finish(vec![1, 2, 3], 2, |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(decode::<i32>(tok.as_deref()).unwrap(), Some(2));
        let (rows, tok) = finish(vec![1, 2], 2, |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert!(tok.is_none());
    }
}
