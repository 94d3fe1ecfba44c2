//! The cryptography under KMS, pure: AES-256-GCM sealing with the nonce
//! passed in, the master key that wraps every KMS key's material, and the
//! ciphertext blobs `Encrypt` returns.
//!
//! Two layers, as KMS has them:
//! * the **master key** (`kms/master.key` under the data dir, 0600, or a
//!   file the operator names) never enters the database; it seals each
//!   KMS key's 32 bytes of material, with the key's ARN as associated data
//!   so material cannot be moved between keys;
//! * a **KMS key** seals data: a ciphertext blob is
//!   `"BK1" ‖ key id (36 bytes) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, with
//!   the encryption context (sorted `key=value` pairs) as associated data,
//!   so a blob decrypts only under its key and with the context it was
//!   made with.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

/// The first bytes of every blob this KMS makes.
const MAGIC: &[u8; 3] = b"BK1";
const KEY_ID_LEN: usize = 36;
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Seal `plaintext` under `key` with `nonce` and `aad`: `nonce ‖ ct ‖ tag`.
pub fn seal(key: &[u8; 32], nonce: &[u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let ct = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM seals any length Berth gives it");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out
}

/// Open what [`seal`] made; `None` when the key, the data or `aad` differ.
pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// The associated data of an encryption context: its pairs sorted by key,
/// each `key=value` ended by a NUL, so `{a: "b=c"}` and `{"a=b": "c"}`
/// differ.
pub fn context_aad<'a>(context: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = context.into_iter().collect();
    pairs.sort();
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// A ciphertext blob: which key made it and what it sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob<'a> {
    pub key_id: &'a str,
    pub sealed: &'a [u8],
}

impl Blob<'_> {
    /// The blob's bytes.
    pub fn encode(key_id: &str, sealed: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + KEY_ID_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(sealed);
        out
    }

    /// Read a blob; `None` for bytes this KMS did not make.
    pub fn decode(bytes: &[u8]) -> Option<Blob<'_>> {
        let rest = bytes.strip_prefix(MAGIC)?;
        if rest.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (id, sealed) = rest.split_at(KEY_ID_LEN);
        let key_id = std::str::from_utf8(id).ok()?;
        uuid::Uuid::parse_str(key_id).ok()?;
        Some(Blob { key_id, sealed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: [u8; 32] = [7; 32];
    const N: [u8; NONCE_LEN] = [1; NONCE_LEN];

    #[test]
    fn sealed_data_opens_only_with_its_key_and_aad() {
        let s = seal(&K, &N, b"hunter2", b"ctx");
        assert!(!s.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(open(&K, &s, b"ctx").unwrap(), b"hunter2");
        assert!(open(&K, &s, b"other").is_none());
        assert!(open(&[8; 32], &s, b"ctx").is_none());
        let mut flipped = s.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&K, &flipped, b"ctx").is_none());
        assert!(open(&K, &s[..10], b"ctx").is_none());
    }

    #[test]
    fn contexts_are_order_free_and_unambiguous() {
        assert_eq!(
            context_aad([("a", "1"), ("b", "2")]),
            context_aad([("b", "2"), ("a", "1")])
        );
        assert_ne!(context_aad([("a", "b=c")]), context_aad([("a=b", "c")]));
        assert!(context_aad([]).is_empty());
    }

    #[test]
    fn blobs_round_trip_and_foreign_bytes_are_refused() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let sealed = seal(&K, &N, b"x", b"");
        let bytes = Blob::encode(id, &sealed);
        let b = Blob::decode(&bytes).unwrap();
        assert_eq!(b.key_id, id);
        assert_eq!(b.sealed, &sealed[..]);
        assert!(Blob::decode(b"BK1short").is_none());
        assert!(Blob::decode(&bytes[1..]).is_none());
        let mut bad_id = bytes.clone();
        bad_id[3] = b'!';
        assert!(Blob::decode(&bad_id).is_none());
    }
}
