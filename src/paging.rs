//! Opaque pagination tokens, one codec for every service: the base64url of
//! a JSON key. Keyed tokens hold the sort key of the last item returned, so
//! a page resumes after it even when items were added or removed meanwhile
//! (ECS, CloudWatch Logs); positional ones hold a kind and an offset (EC2 and
//! Auto Scaling listings, which are small and computed whole). Each service
//! answers a bad token with its own error.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

pub const MAX_RESULTS: i64 = 100;

/// `maxResults` as ECS bounds it (1 to `max`, default `max`).
pub fn page_size(max_results: Option<i64>, max: i64) -> ApiResult<usize> {
    match max_results {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid_parameter(format!(
            "maxResults must be between 1 and {max}, got {n}."
        ))),
    }
}

pub fn encode(key: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("a JSON value serialises"))
}

pub fn decode(token: &str) -> ApiResult<Value> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken."))
}

/// A token's key as the type the listing encoded (e.g. `(i64, String)` for
/// `[created_at, arn]`); `Invalid nextToken.` when it is not one.
pub fn decode_as<T: serde::de::DeserializeOwned>(token: &str) -> ApiResult<T> {
    serde_json::from_value(decode(token)?)
        .map_err(|_| ApiError::invalid_parameter("Invalid nextToken."))
}

/// The offset a positional token of `kind` resumes at; `None` when the
/// token is not one (the caller answers with its service's error).
pub fn offset(token: &str, kind: &str) -> Option<usize> {
    decode_as::<(String, usize)>(token)
        .ok()
        .filter(|(k, _)| k == kind)
        .map(|(_, n)| n)
}

/// One page of `items` from `start`, and the positional token of `kind`
/// for the next page when there is one.
pub fn offset_page<T>(
    items: Vec<T>,
    start: usize,
    size: usize,
    kind: &str,
) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let end = start + page.len();
    let token = (end < total).then(|| encode(&serde_json::json!([kind, end])));
    (page, token)
}

/// Take one page out of `items` (already filtered, in order, and starting
/// after the token's key): returns the page and the token for the next one.
pub fn page<T>(
    mut items: Vec<T>,
    size: usize,
    key: impl Fn(&T) -> Value,
) -> (Vec<T>, Option<String>) {
    if items.len() > size {
        items.truncate(size);
        let token = items.last().map(|last| encode(&key(last)));
        (items, token)
    } else {
        (items, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_round_trip_and_garbage() {
        let k = json!(["fam", 3]);
        assert_eq!(decode(&encode(&k)).unwrap(), k);
        assert_eq!(decode("!!!").unwrap_err().code, "InvalidParameterException");
    }

    #[test]
    fn page_size_bounds() {
        assert_eq!(page_size(None, 100).unwrap(), 100);
        assert!(page_size(Some(0), 100).is_err());
        assert!(page_size(Some(101), 100).is_err());
    }

    #[test]
    fn paging_gives_token_only_when_more() {
        let (p, t) = page(vec![1, 2, 3], 2, |x| json!(x));
        assert_eq!((p, t.is_some()), (vec![1, 2], true));
        let (p, t) = page(vec![1, 2], 2, |x| json!(x));
        assert_eq!((p, t), (vec![1, 2], None));
    }
}
