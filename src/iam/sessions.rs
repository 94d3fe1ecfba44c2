//! Temporary credentials (table `iam_sessions`): what STS's
//! `AssumeRole` and `GetSessionToken` issue. Each is an `ASIA…` key, a
//! secret sealed under the master key, and the SHA-256 of its session
//! token (the token itself is shown once).

use rusqlite::{params, Connection, OptionalExtension};

use super::{names, Iam};
use crate::error::ApiResult;
use crate::wire::identity::token_digest;

/// Whose permissions a session carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// An assumed role: the role's name.
    Role(String),
    /// A user's session (`GetSessionToken`).
    User(String),
    /// The root user's session (`GetSessionToken` with root keys).
    Root,
}

/// A session as stored (its secret still sealed).
#[derive(Debug, Clone)]
pub struct Session {
    pub access_key_id: String,
    pub account: String,
    pub sealed: Vec<u8>,
    pub token_sha256: String,
    pub principal_arn: String,
    /// `AROA…:session` for a role session, the user's id otherwise.
    pub user_id: String,
    pub holder: Holder,
    /// The session policies passed when it was made (a JSON array of
    /// documents).
    pub policy: Option<String>,
    /// Session tags.
    pub tags: Vec<(String, String)>,
    pub source_identity: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// What a new session's holder is told, once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_key_id: String,
    pub secret: String,
    pub token: String,
    pub expires_ms: i64,
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct Request {
    pub account: String,
    pub principal_arn: String,
    pub user_id: String,
    pub holder: Holder,
    pub policy: Option<String>,
    pub tags: Vec<(String, String)>,
    pub source_identity: Option<String>,
    pub now_ms: i64,
    pub duration_s: i64,
}

/// Issue a session; sessions expired a day ago are forgotten meanwhile.
pub fn issue(iam: &Iam, req: Request) -> ApiResult<Issued> {
    let mut random = rand::rngs::OsRng;
    let id = names::new_id("ASIA", 20, &mut random);
    let secret = names::new_secret(&mut random);
    let token = names::new_session_token(&mut random);
    let sealed = iam.kms.seal_under_master(&id, secret.as_bytes());
    let expires_ms = req.now_ms + req.duration_s * 1000;
    let (role, user) = match &req.holder {
        Holder::Role(r) => (Some(r.as_str()), None),
        Holder::User(u) => (None, Some(u.as_str())),
        Holder::Root => (None, None),
    };
    iam.store.write(|tx| {
        tx.execute(
            "DELETE FROM iam_sessions WHERE expires_at < ?1",
            [req.now_ms - 86_400_000],
        )?;
        tx.execute(
            "INSERT INTO iam_sessions (access_key_id, account, sealed, token_hash, principal_arn,
               user_id, role_name, user_name, policy, tags, source_identity, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                id,
                req.account,
                sealed,
                token_digest(&token),
                req.principal_arn,
                req.user_id,
                role,
                user,
                req.policy,
                serde_json::to_string(&req.tags).expect("tags serialise"),
                req.source_identity,
                req.now_ms,
                expires_ms,
            ],
        )?;
        Ok(())
    })?;
    Ok(Issued {
        access_key_id: id,
        secret,
        token,
        expires_ms,
    })
}

/// The session whose key is `id`.
pub fn get(conn: &Connection, id: &str) -> ApiResult<Option<Session>> {
    Ok(conn
        .prepare_cached(
            "SELECT access_key_id, account, sealed, token_hash, principal_arn, user_id, role_name,
                    user_name, policy, tags, source_identity, created_at, expires_at
             FROM iam_sessions WHERE access_key_id = ?1",
        )?
        .query_row([id], |r| {
            let role: Option<String> = r.get(6)?;
            let user: Option<String> = r.get(7)?;
            let tags: String = r.get(9)?;
            Ok(Session {
                access_key_id: r.get(0)?,
                account: r.get(1)?,
                sealed: r.get(2)?,
                token_sha256: r.get(3)?,
                principal_arn: r.get(4)?,
                user_id: r.get(5)?,
                holder: match (role, user) {
                    (Some(r), _) => Holder::Role(r),
                    (None, Some(u)) => Holder::User(u),
                    (None, None) => Holder::Root,
                },
                policy: r.get(8)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                source_identity: r.get(10)?,
                created_ms: r.get(11)?,
                expires_ms: r.get(12)?,
            })
        })
        .optional()?)
}
