//! What a handler knows about the call it serves: who made it, in which
//! region, and the values that are not deterministic (time, request id), which
//! are fixed once at the edge and passed in.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Ctx {
    /// The 12-digit account of the access key that signed the request.
    pub account: String,
    /// The region from the SigV4 credential scope.
    pub region: String,
    /// The access key id that signed the request.
    pub access_key: String,
    /// The ARN of the caller (`arn:aws:iam::<account>:root` for configured keys).
    pub principal_arn: String,
    pub request_id: String,
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// A context for unit tests and local tooling.
    pub fn for_tests(now: DateTime<Utc>) -> Ctx {
        Ctx {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            access_key: "test".into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            request_id: "00000000-0000-0000-0000-000000000000".into(),
            now,
        }
    }

    /// A context for work the server does on its own (the fleet, managed
    /// scaling), on behalf of `account` in `region`, at `now_ms`.
    pub fn internal(account: &str, region: &str, now_ms: i64) -> Ctx {
        Ctx {
            account: account.to_string(),
            region: region.to_string(),
            access_key: String::new(),
            principal_arn: format!("arn:aws:iam::{account}:root"),
            request_id: uuid::Uuid::new_v4().to_string(),
            now: DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
        }
    }

    /// `now` as the epoch seconds (with milliseconds) that JSON services emit.
    pub fn now_epoch(&self) -> f64 {
        epoch_seconds(self.now)
    }

    pub fn now_millis(&self) -> i64 {
        self.now.timestamp_millis()
    }

    /// The call's random source (placement's tie-breaks), seeded from its
    /// request id: nothing draws from a global one, and a call replayed
    /// with the same id decides the same.
    pub fn rng(&self) -> rand::rngs::StdRng {
        use rand::SeedableRng;
        let seed = self.request_id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        rand::rngs::StdRng::seed_from_u64(seed)
    }
}

/// Epoch seconds with millisecond precision, as AWS JSON timestamps are sent.
pub fn epoch_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

pub fn millis_to_epoch(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
