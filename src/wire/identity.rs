//! Who signed a request. The pipeline finds the secret a request's access
//! key is signed with through [`Identities`]: the keys configured at start
//! are their accounts' roots ([`Credentials`]); the identity service adds
//! its users' access keys and STS's temporary credentials.

use crate::config::Credentials;
use crate::error::ApiError;

/// Who an access key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    /// `arn:aws:iam::<account>:root`, `…:user/<path><name>`, or
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub principal_arn: String,
    /// The secret the request must be signed with.
    pub secret: String,
    /// For temporary credentials, the session token the request must
    /// carry and when it stops being valid.
    pub session: Option<SessionToken>,
}

/// What a request signed with temporary credentials must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// SHA-256 of the token, lower-case hex.
    pub token_sha256: String,
    pub expires_ms: i64,
}

pub trait Identities: Send + Sync {
    /// The caller an access key belongs to; `None` for a key that does
    /// not exist or is not active.
    fn lookup(&self, access_key: &str) -> Result<Option<Caller>, ApiError>;
}

/// The configured keys: each its account's root.
impl Identities for Credentials {
    fn lookup(&self, access_key: &str) -> Result<Option<Caller>, ApiError> {
        Ok(self.get(access_key).map(|key| Caller {
            account: key.account.clone(),
            principal_arn: root_arn(&key.account),
            secret: key.secret.clone(),
            session: None,
        }))
    }
}

/// The ARN of an account's root user.
pub fn root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// SHA-256 of a session token, as [`SessionToken::token_sha256`] holds it.
pub fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}
