//! Registry credentials. `GetAuthorizationToken` gives, as ECR does, the
//! base64 of `AWS:<password>` valid for 12 hours; the password is Berth's
//! own token: the account and region it is for and its expiry, signed with
//! HMAC-SHA256 under a key kept in its own file (mode 0600) beside the
//! blobs. The registry accepts it as HTTP Basic credentials (`docker login
//! --username AWS`) and serves that account's repositories in that region.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::shapes::{
    AuthorizationData, GetAuthorizationTokenRequest, GetAuthorizationTokenResponse,
};
use super::Ecr;
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};

/// How long a token is valid (ECR: 12 hours).
pub const TOKEN_TTL_MS: i64 = 12 * 3600 * 1000;

/// The key tokens are signed with.
pub struct TokenKey {
    key: [u8; 32],
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "a")]
    pub account: String,
    #[serde(rename = "r")]
    pub region: String,
    /// Expiry, ms since the epoch.
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

impl TokenKey {
    /// Read the key at `path`, or make one there (0600) if none exists.
    pub fn load_or_create(path: &Path) -> std::io::Result<TokenKey> {
        Ok(TokenKey {
            key: crate::keyfile::load_or_create(path)?,
        })
    }

    /// A key for tests.
    pub fn fixed(key: [u8; 32]) -> TokenKey {
        TokenKey { key }
    }

    fn mac(&self, payload: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(payload.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// The password for `grant`.
    pub fn issue(&self, grant: &Grant) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).expect("serialises"));
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload));
        format!("{payload}.{sig}")
    }

    /// The grant of a password this key signed that has not expired at
    /// `now_ms`.
    pub fn verify(&self, password: &str, now_ms: i64) -> Option<Grant> {
        let (payload, sig) = password.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(payload.as_bytes());
        m.verify_slice(&sig).ok()?;
        let grant: Grant = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (grant.expires_ms > now_ms).then_some(grant)
    }

    /// The grant of an HTTP `Authorization: Basic …` header carrying
    /// `AWS:<password>`.
    pub fn verify_basic(&self, header: &str, now_ms: i64) -> Option<Grant> {
        let b64 = header.strip_prefix("Basic ")?.trim();
        let text = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
        let (user, password) = text.split_once(':')?;
        (user == "AWS").then(|| self.verify(password, now_ms))?
    }
}

/// `GetAuthorizationToken`: one token for the caller's registry (ECR gives
/// one per registry id asked, all of them the caller's).
pub fn get_authorization_token(
    ecr: &Ecr,
    ctx: &Ctx,
    req: GetAuthorizationTokenRequest,
) -> ApiResult<GetAuthorizationTokenResponse> {
    for id in req.registry_ids.iter().flatten() {
        super::check_registry(ctx, Some(id))?;
    }
    let expires_ms = ctx.now_millis() + TOKEN_TTL_MS;
    let password = ecr.tokens.issue(&Grant {
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        expires_ms,
    });
    Ok(GetAuthorizationTokenResponse {
        authorization_data: Some(vec![AuthorizationData {
            authorization_token: Some(STANDARD.encode(format!("AWS:{password}"))),
            expires_at: Some(millis_to_epoch(expires_ms)),
            proxy_endpoint: Some(format!("http://{}", ecr.host)),
        }]),
    })
}

/// A password for (account, region), for the agent's pulls.
pub fn password_for(ecr: &Ecr, account: &str, region: &str) -> String {
    ecr.tokens.issue(&Grant {
        account: account.to_string(),
        region: region.to_string(),
        expires_ms: ecr.clock.now_ms() + TOKEN_TTL_MS,
    })
}

/// The error for a request without valid credentials.
pub fn unauthorized() -> ApiError {
    ApiError::new("UNAUTHORIZED", "authentication required").with_status(401)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_only_under_their_key() {
        let k = TokenKey::fixed([7; 32]);
        let g = Grant {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            expires_ms: 1_000,
        };
        let p = k.issue(&g);
        assert_eq!(k.verify(&p, 999), Some(g.clone()));
        assert_eq!(k.verify(&p, 1_000), None);
        assert_eq!(TokenKey::fixed([8; 32]).verify(&p, 0), None);
        let tampered = p.replacen('e', "f", 1);
        assert_eq!(k.verify(&tampered, 0), None);
        let basic = format!("Basic {}", STANDARD.encode(format!("AWS:{p}")));
        assert_eq!(k.verify_basic(&basic, 0), Some(g));
        let other_user = format!("Basic {}", STANDARD.encode(format!("bob:{p}")));
        assert_eq!(k.verify_basic(&other_user, 0), None);
    }

    #[test]
    fn the_key_file_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.key");
        let a = TokenKey::load_or_create(&path).unwrap();
        let b = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(a.key, b.key);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
