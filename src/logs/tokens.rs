//! Pagination tokens.
//!
//! `GetLogEvents` answers with `nextForwardToken` and `nextBackwardToken` in
//! CloudWatch Logs' style, `f/<56 digits>` and `b/<56 digits>`: a position in
//! the stream (the event's timestamp, 20 digits, then its id, 36 digits) and
//! a direction. A forward token reads the events after its position, a
//! backward token the events before it; when there are none, the answer
//! carries the very token that was passed, which is how clients (the SDK
//! paginators, `aws logs tail`-like loops) know they reached the end.
//!
//! The other operations use opaque tokens: the base64url of the JSON sort key
//! of the last item returned.

use serde_json::Value;

use super::invalid_next_token;
use crate::error::ApiResult;

/// Where an event sits in the total order of events: by timestamp, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub timestamp: i64,
    pub id: i64,
}

impl Position {
    /// Before every event (timestamps are ≥ 0 and ids ≥ 1).
    pub const START: Position = Position {
        timestamp: 0,
        id: 0,
    };
    /// After every event.
    pub const END: Position = Position {
        timestamp: i64::MAX,
        id: i64::MAX,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// `f/…` or `b/…`.
pub fn stream_token(direction: Direction, pos: Position) -> String {
    let d = match direction {
        Direction::Forward => 'f',
        Direction::Backward => 'b',
    };
    format!("{d}/{:020}{:036}", pos.timestamp.max(0), pos.id.max(0))
}

/// Parse a `GetLogEvents` token (also accepting the `/s` suffix newer AWS
/// tokens carry).
pub fn parse_stream_token(token: &str) -> ApiResult<(Direction, Position)> {
    let (direction, rest) = if let Some(r) = token.strip_prefix("f/") {
        (Direction::Forward, r)
    } else if let Some(r) = token.strip_prefix("b/") {
        (Direction::Backward, r)
    } else {
        return Err(invalid_next_token());
    };
    let digits = rest.strip_suffix("/s").unwrap_or(rest);
    if digits.len() != 56 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_next_token());
    }
    let timestamp: i64 = digits[..20].parse().map_err(|_| invalid_next_token())?;
    let id: u128 = digits[20..].parse().map_err(|_| invalid_next_token())?;
    let id = i64::try_from(id).map_err(|_| invalid_next_token())?;
    Ok((direction, Position { timestamp, id }))
}

/// An opaque token for a sort key (the one codec of `crate::paging`).
pub use crate::paging::encode;

/// A sort key back from its token; CloudWatch Logs' error when it is not one.
pub fn decode(token: &str) -> ApiResult<Value> {
    crate::paging::decode(token).map_err(|_| invalid_next_token())
}

/// An opaque token for an event position (`FilterLogEvents`).
pub fn encode_position(pos: Position) -> String {
    encode(&serde_json::json!([pos.timestamp, pos.id]))
}

pub fn decode_position(token: &str) -> ApiResult<Position> {
    let v = decode(token)?;
    match v.as_array().map(Vec::as_slice) {
        Some([t, i]) => match (t.as_i64(), i.as_i64()) {
            (Some(timestamp), Some(id)) => Ok(Position { timestamp, id }),
            _ => Err(invalid_next_token()),
        },
        _ => Err(invalid_next_token()),
    }
}

/// The event id `FilterLogEvents` reports: 56 digits, unique per event.
pub fn event_id(pos: Position) -> String {
    format!("{:020}{:036}", pos.timestamp.max(0), pos.id.max(0))
}

/// The sequence token of a stream's `n`th upload, shaped like AWS's.
pub fn sequence_token(n: i64) -> String {
    format!("49{:054}", n.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_tokens_round_trip() {
        let p = Position {
            timestamp: 1_700_000_000_123,
            id: 42,
        };
        let f = stream_token(Direction::Forward, p);
        assert!(f.starts_with("f/"));
        assert_eq!(f.len(), 58);
        assert_eq!(parse_stream_token(&f).unwrap(), (Direction::Forward, p));
        let b = stream_token(Direction::Backward, p);
        assert_eq!(parse_stream_token(&b).unwrap(), (Direction::Backward, p));
        assert_eq!(
            parse_stream_token(&format!("{b}/s")).unwrap(),
            (Direction::Backward, p)
        );
        let end = stream_token(Direction::Backward, Position::END);
        assert_eq!(parse_stream_token(&end).unwrap().1, Position::END);
    }

    #[test]
    fn bad_stream_tokens_are_invalid_parameter() {
        for t in [
            "",
            "f/",
            "x/00000000000000000000000000000000000000000000000000000000",
            "f/0000000000000000000000000000000000000000000000000000000",
            "f/0000000000000000000a000000000000000000000000000000000000",
            // id beyond i64
            "f/00000000000000000000999999999999999999999999999999999999",
        ] {
            let e = parse_stream_token(t).unwrap_err();
            assert_eq!(e.code, "InvalidParameterException", "{t}");
        }
    }

    #[test]
    fn positions_order_by_time_then_id() {
        let a = Position {
            timestamp: 5,
            id: 9,
        };
        let b = Position {
            timestamp: 6,
            id: 1,
        };
        assert!(Position::START < a && a < b && b < Position::END);
    }

    #[test]
    fn opaque_tokens() {
        let p = Position {
            timestamp: 7,
            id: 8,
        };
        assert_eq!(decode_position(&encode_position(p)).unwrap(), p);
        assert!(decode_position(&encode(&json!("x"))).is_err());
        assert!(decode("!!!").is_err());
        assert_eq!(event_id(p).len(), 56);
        assert_eq!(sequence_token(3).len(), 56);
    }
}
