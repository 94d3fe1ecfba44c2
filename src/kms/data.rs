//! Cryptographic operations: `Encrypt`, `Decrypt`, `GenerateDataKey`,
//! with symmetric keys and encryption contexts.

use super::keys::{b64, from_b64};
use super::shapes::*;
use super::Kms;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// The most `Encrypt` takes (KMS: 4 KiB).
const MAX_PLAINTEXT: usize = 4096;

fn pairs(context: &Option<std::collections::BTreeMap<String, String>>) -> Vec<(&str, &str)> {
    context
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn symmetric_only(alg: Option<EncryptionAlgorithmSpec>) -> ApiResult<()> {
    match alg {
        None | Some(EncryptionAlgorithmSpec::SymmetricDefault) => Ok(()),
        Some(a) => Err(ApiError::new(
            "InvalidKeyUsageException",
            format!(
                "{} is not a supported encryption algorithm for a SYMMETRIC_DEFAULT key.",
                a.as_str()
            ),
        )),
    }
}

fn dry_run(flag: Option<bool>) -> ApiResult<()> {
    if flag == Some(true) {
        return Err(ApiError::new(
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun flag is set.",
        ));
    }
    Ok(())
}

/// `Encrypt`: up to 4 KiB under a symmetric key.
pub fn encrypt(kms: &Kms, ctx: &Ctx, req: EncryptRequest) -> ApiResult<EncryptResponse> {
    symmetric_only(req.encryption_algorithm)?;
    let plaintext = from_b64("Plaintext", &req.plaintext)?;
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return Err(ApiError::new(
            "ValidationException",
            format!("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and {MAX_PLAINTEXT}"),
        ));
    }
    let context = pairs(&req.encryption_context);
    let (arn, blob) = kms.store.write(|tx| {
        let key = kms.key_for_use(tx, &ctx.account, &ctx.region, &req.key_id, ctx.now_millis())?;
        dry_run(req.dry_run)?;
        Ok((key.arn(), kms.seal_with(&key, &plaintext, &context)?))
    })?;
    Ok(EncryptResponse {
        ciphertext_blob: Some(b64(&blob)),
        encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
        key_id: Some(arn),
    })
}

/// `Decrypt`: the blob names its key; a `KeyId` given must be that key.
pub fn decrypt(kms: &Kms, ctx: &Ctx, req: DecryptRequest) -> ApiResult<DecryptResponse> {
    symmetric_only(req.encryption_algorithm)?;
    let blob = from_b64(
        "CiphertextBlob",
        req.ciphertext_blob.as_deref().unwrap_or_default(),
    )?;
    let context = pairs(&req.encryption_context);
    let (arn, plain) = kms.store.read(|conn| {
        let opened = kms.unseal(conn, &ctx.account, &ctx.region, &blob, &context)?;
        if let Some(named) = &req.key_id {
            let key = kms.describe(conn, &ctx.account, &ctx.region, named)?;
            if key.arn() != opened.0 {
                return Err(ApiError::new(
                    "IncorrectKeyException",
                    "The key ID in the request does not identify a CMK that can perform this operation.",
                ));
            }
        }
        Ok(opened)
    })?;
    dry_run(req.dry_run)?;
    Ok(DecryptResponse {
        encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
        key_id: Some(arn),
        plaintext: Some(b64(&plain)),
        ..Default::default()
    })
}

/// `GenerateDataKey`: `KeySpec` (AES_256, AES_128) or `NumberOfBytes`
/// (1 to 1024), one of them.
pub fn generate_data_key(
    kms: &Kms,
    ctx: &Ctx,
    req: GenerateDataKeyRequest,
) -> ApiResult<GenerateDataKeyResponse> {
    let len = match (req.key_spec, req.number_of_bytes) {
        (Some(DataKeySpec::Aes256), None) => 32,
        (Some(DataKeySpec::Aes128), None) => 16,
        (None, Some(n)) if (1..=1024).contains(&n) => n as usize,
        (None, Some(n)) => {
            return Err(ApiError::new(
                "ValidationException",
                format!("1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "ValidationException",
                "Please specify either number of bytes or key spec.",
            ))
        }
        (None, None) => {
            return Err(ApiError::new(
                "ValidationException",
                "Please specify either number of bytes or key spec.",
            ))
        }
    };
    let mut data_key = vec![0u8; len];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut data_key[..]);
    let context = pairs(&req.encryption_context);
    let (arn, blob) = kms.store.write(|tx| {
        let key = kms.key_for_use(tx, &ctx.account, &ctx.region, &req.key_id, ctx.now_millis())?;
        dry_run(req.dry_run)?;
        Ok((key.arn(), kms.seal_with(&key, &data_key, &context)?))
    })?;
    Ok(GenerateDataKeyResponse {
        ciphertext_blob: Some(b64(&blob)),
        key_id: Some(arn),
        plaintext: Some(b64(&data_key)),
        ..Default::default()
    })
}
