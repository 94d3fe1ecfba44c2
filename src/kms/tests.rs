use std::collections::BTreeMap;
use std::sync::Arc;

use super::keys::{b64, from_b64};
use super::shapes::*;
use super::*;
use crate::context::Ctx;

fn kms() -> (tempfile::TempDir, Kms) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_in(dir.path()).unwrap());
    (dir, Kms::with_master(store, [9; 32]))
}

fn ctx() -> Ctx {
    Ctx::for_tests(chrono::Utc::now())
}

fn new_key(k: &Kms) -> String {
    keys::create_key(k, &ctx(), CreateKeyRequest::default())
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

fn enc(k: &Kms, key: &str, text: &[u8], context: &[(&str, &str)]) -> ApiResultBlob {
    data::encrypt(
        k,
        &ctx(),
        EncryptRequest {
            key_id: key.into(),
            plaintext: b64(text),
            encryption_context: context_map(context),
            ..Default::default()
        },
    )
    .map(|r| r.ciphertext_blob.unwrap())
}

type ApiResultBlob = crate::error::ApiResult<String>;

fn context_map(context: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    })
}

fn dec(k: &Kms, blob: &str, context: &[(&str, &str)]) -> crate::error::ApiResult<Vec<u8>> {
    data::decrypt(
        k,
        &ctx(),
        DecryptRequest {
            ciphertext_blob: Some(blob.into()),
            encryption_context: context_map(context),
            ..Default::default()
        },
    )
    .map(|r| from_b64("p", &r.plaintext.unwrap()).unwrap())
}

#[test]
fn encrypt_then_decrypt_with_the_same_context_only() {
    let (_d, k) = kms();
    let key = new_key(&k);
    let blob = enc(&k, &key, b"s3cret", &[("app", "web")]).unwrap();
    assert_eq!(dec(&k, &blob, &[("app", "web")]).unwrap(), b"s3cret");
    assert_eq!(
        dec(&k, &blob, &[("app", "db")]).unwrap_err().code,
        "InvalidCiphertextException"
    );
    assert_eq!(
        dec(&k, &blob, &[]).unwrap_err().code,
        "InvalidCiphertextException"
    );
    assert_eq!(
        dec(&k, &b64(b"not a blob"), &[]).unwrap_err().code,
        "InvalidCiphertextException"
    );
}

#[test]
fn aliases_name_keys_and_managed_aliases_make_their_key() {
    let (_d, k) = kms();
    let key = new_key(&k);
    keys::create_alias(
        &k,
        &ctx(),
        CreateAliasRequest {
            alias_name: "alias/app".into(),
            target_key_id: key.clone(),
        },
    )
    .unwrap();
    let blob = enc(&k, "alias/app", b"x", &[]).unwrap();
    assert_eq!(dec(&k, &blob, &[]).unwrap(), b"x");
    let dup = keys::create_alias(
        &k,
        &ctx(),
        CreateAliasRequest {
            alias_name: "alias/app".into(),
            target_key_id: key.clone(),
        },
    );
    assert_eq!(dup.unwrap_err().code, "AlreadyExistsException");
    let reserved = keys::create_alias(
        &k,
        &ctx(),
        CreateAliasRequest {
            alias_name: "alias/aws/mine".into(),
            target_key_id: key,
        },
    );
    assert_eq!(reserved.unwrap_err().code, "NotAuthorizedException");
    assert_eq!(
        enc(&k, "alias/missing", b"x", &[]).unwrap_err().code,
        "NotFoundException"
    );
    // An AWS managed alias makes its key the first time it is used, once.
    let a = enc(&k, "alias/aws/ssm", b"y", &[]).unwrap();
    let b = enc(&k, "alias/aws/ssm", b"y", &[]).unwrap();
    assert_eq!(dec(&k, &a, &[]).unwrap(), b"y");
    assert_eq!(dec(&k, &b, &[]).unwrap(), b"y");
    assert_ne!(a, b, "every encryption draws a fresh nonce");
    let m = keys::describe_key(
        &k,
        &ctx(),
        DescribeKeyRequest {
            key_id: "alias/aws/ssm".into(),
            ..Default::default()
        },
    )
    .unwrap()
    .key_metadata
    .unwrap();
    assert_eq!(m.key_manager, Some(KeyManagerType::Aws));
    let listed = keys::list_keys(&k, &ctx(), ListKeysRequest::default())
        .unwrap()
        .keys
        .unwrap();
    assert_eq!(listed.len(), 2);
}

#[test]
fn disabled_and_deleted_keys_refuse_and_come_back() {
    let (_d, k) = kms();
    let key = new_key(&k);
    let blob = enc(&k, &key, b"x", &[]).unwrap();
    keys::disable_key(
        &k,
        &ctx(),
        DisableKeyRequest {
            key_id: key.clone(),
        },
    )
    .unwrap();
    assert_eq!(dec(&k, &blob, &[]).unwrap_err().code, "DisabledException");
    assert_eq!(
        enc(&k, &key, b"x", &[]).unwrap_err().code,
        "DisabledException"
    );
    keys::enable_key(
        &k,
        &ctx(),
        EnableKeyRequest {
            key_id: key.clone(),
        },
    )
    .unwrap();
    assert_eq!(dec(&k, &blob, &[]).unwrap(), b"x");
    let bad_window = keys::schedule_deletion(
        &k,
        &ctx(),
        ScheduleKeyDeletionRequest {
            key_id: key.clone(),
            pending_window_in_days: Some(3),
        },
    );
    assert_eq!(bad_window.unwrap_err().code, "ValidationException");
    keys::schedule_deletion(
        &k,
        &ctx(),
        ScheduleKeyDeletionRequest {
            key_id: key.clone(),
            pending_window_in_days: Some(7),
        },
    )
    .unwrap();
    assert_eq!(
        dec(&k, &blob, &[]).unwrap_err().code,
        "KMSInvalidStateException"
    );
    keys::cancel_deletion(
        &k,
        &ctx(),
        CancelKeyDeletionRequest {
            key_id: key.clone(),
        },
    )
    .unwrap();
    assert_eq!(dec(&k, &blob, &[]).unwrap_err().code, "DisabledException");
}

#[test]
fn the_master_key_is_needed_and_nothing_plain_is_stored() {
    let (dir, k) = kms();
    let key = new_key(&k);
    let blob = enc(&k, &key, b"PLAINTEXT-MARKER", &[]).unwrap();
    // Another master key cannot open the same database's keys.
    let other = Kms::with_master(k.store.clone(), [1; 32]);
    assert_eq!(dec(&other, &blob, &[]).unwrap_err().code, "ServerException");
    let sealed = k
        .store
        .write(|tx| {
            k.seal(
                tx,
                "000000000000",
                "us-east-1",
                None,
                "alias/aws/secretsmanager",
                b"PLAINTEXT-MARKER",
                &[("SecretARN", "a")],
                0,
            )
        })
        .unwrap();
    let opened = k
        .store
        .read(|c| {
            k.unseal(
                c,
                "000000000000",
                "us-east-1",
                &sealed.blob,
                &[("SecretARN", "a")],
            )
        })
        .unwrap();
    assert_eq!(opened.1, b"PLAINTEXT-MARKER");
    assert_eq!(opened.0, sealed.key_arn);
    let wrong_account = k.store.read(|c| {
        k.unseal(
            c,
            "111111111111",
            "us-east-1",
            &sealed.blob,
            &[("SecretARN", "a")],
        )
    });
    assert_eq!(
        wrong_account.unwrap_err().code,
        "InvalidCiphertextException"
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
    }
}

#[test]
fn data_keys_decrypt_to_themselves() {
    let (_d, k) = kms();
    let key = new_key(&k);
    let out = data::generate_data_key(
        &k,
        &ctx(),
        GenerateDataKeyRequest {
            key_id: key.clone(),
            key_spec: Some(DataKeySpec::Aes256),
            ..Default::default()
        },
    )
    .unwrap();
    let plain = from_b64("p", &out.plaintext.unwrap()).unwrap();
    assert_eq!(plain.len(), 32);
    assert_eq!(dec(&k, &out.ciphertext_blob.unwrap(), &[]).unwrap(), plain);
    let neither = data::generate_data_key(
        &k,
        &ctx(),
        GenerateDataKeyRequest {
            key_id: key,
            ..Default::default()
        },
    );
    assert_eq!(neither.unwrap_err().code, "ValidationException");
}
