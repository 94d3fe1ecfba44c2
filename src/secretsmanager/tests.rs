use std::sync::Arc;

use serde_json::{json, Value};

use super::secrets::{self, DAY_MS};
use super::shapes::*;
use super::values::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use super::*;
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::kms::keys::b64;
use crate::kms::Kms;
use crate::store::Store;

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const UUID_A: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const UUID_B: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const UUID_C: &str = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";

fn sm() -> (tempfile::TempDir, Arc<SecretsManager>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_in(dir.path()).unwrap());
    let kms = Arc::new(Kms::with_master(store.clone(), [9; 32]));
    (dir, Arc::new(SecretsManager { store, kms }))
}

fn at(ms: i64) -> Ctx {
    Ctx::for_tests(chrono::DateTime::from_timestamp_millis(ms).unwrap())
}

fn ctx() -> Ctx {
    at(T0)
}

fn create(s: &SecretsManager, name: &str, value: &str) -> CreateSecretResponse {
    secrets::create(
        s,
        &ctx(),
        CreateSecretRequest {
            name: name.into(),
            secret_string: Some(value.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn get_at(s: &SecretsManager, c: &Ctx, id: &str) -> ApiResult<GetSecretValueResponse> {
    values::get_secret_value(
        s,
        c,
        GetSecretValueRequest {
            secret_id: id.into(),
            ..Default::default()
        },
    )
}

fn get(s: &SecretsManager, id: &str) -> ApiResult<GetSecretValueResponse> {
    get_at(s, &ctx(), id)
}

fn value(s: &SecretsManager, id: &str) -> String {
    get(s, id).unwrap().secret_string.unwrap()
}

fn get_version(
    s: &SecretsManager,
    id: &str,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> ApiResult<GetSecretValueResponse> {
    values::get_secret_value(
        s,
        &ctx(),
        GetSecretValueRequest {
            secret_id: id.into(),
            version_id: version_id.map(str::to_string),
            version_stage: stage.map(str::to_string),
        },
    )
}

fn put(
    s: &SecretsManager,
    id: &str,
    value: &str,
    token: Option<&str>,
    stages: Option<&[&str]>,
) -> ApiResult<PutSecretValueResponse> {
    values::put_secret_value(
        s,
        &ctx(),
        PutSecretValueRequest {
            secret_id: id.into(),
            secret_string: Some(value.into()),
            client_request_token: token.map(str::to_string),
            version_stages: stages.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        },
    )
}

fn describe_at(s: &SecretsManager, c: &Ctx, id: &str) -> ApiResult<DescribeSecretResponse> {
    secrets::describe(
        s,
        c,
        DescribeSecretRequest {
            secret_id: id.into(),
        },
    )
}

fn describe(s: &SecretsManager, id: &str) -> DescribeSecretResponse {
    describe_at(s, &ctx(), id).unwrap()
}

fn stages(s: &SecretsManager, id: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    describe(s, id).version_ids_to_stages.unwrap_or_default()
}

fn delete_at(
    s: &SecretsManager,
    c: &Ctx,
    id: &str,
    days: Option<i64>,
    force: Option<bool>,
) -> ApiResult<DeleteSecretResponse> {
    secrets::delete(
        s,
        c,
        DeleteSecretRequest {
            secret_id: id.into(),
            recovery_window_in_days: days,
            force_delete_without_recovery: force,
        },
    )
}

fn list_at(s: &SecretsManager, c: &Ctx, req: ListSecretsRequest) -> ApiResult<ListSecretsResponse> {
    secrets::list(s, c, req)
}

fn names(r: &ListSecretsResponse) -> Vec<String> {
    r.secret_list
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.clone().unwrap())
        .collect()
}

fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
    r.unwrap_err().code
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

fn customer_key(s: &SecretsManager) -> String {
    crate::kms::keys::create_key(
        &s.kms,
        &ctx(),
        crate::kms::shapes::CreateKeyRequest::default(),
    )
    .unwrap()
    .key_metadata
    .unwrap()
    .key_id
}

fn disable_key(s: &SecretsManager, key: &str) {
    crate::kms::keys::disable_key(
        &s.kms,
        &ctx(),
        crate::kms::shapes::DisableKeyRequest { key_id: key.into() },
    )
    .unwrap();
}

fn version_rows(s: &SecretsManager) -> i64 {
    s.store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM sm_secret_versions", [], |r| r.get(0))?))
        .unwrap()
}

fn secret_rows(s: &SecretsManager) -> i64 {
    s.store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM sm_secrets", [], |r| r.get(0))?))
        .unwrap()
}

// ----- CreateSecret, GetSecretValue, and how a SecretId names a secret -----

#[test]
fn a_secret_is_found_by_name_full_arn_and_partial_arn() {
    let (_d, s) = sm();
    let made = create(&s, "prod/db", "hunter2");
    let arn = made.arn.clone().unwrap();
    let re = regex::Regex::new(
        r"^arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-[A-Za-z0-9]{6}$",
    )
    .unwrap();
    assert!(re.is_match(&arn), "{arn}");
    assert_eq!(made.name.as_deref(), Some("prod/db"));
    assert!(uuid::Uuid::parse_str(made.version_id.as_deref().unwrap()).is_ok());
    let partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db";
    for id in ["prod/db", arn.as_str(), partial] {
        let got = get(&s, id).unwrap();
        assert_eq!(got.secret_string.as_deref(), Some("hunter2"), "{id}");
        assert_eq!(got.arn.as_deref(), Some(arn.as_str()));
        assert_eq!(got.version_stages, Some(vec![AWSCURRENT.to_string()]));
        assert_eq!(got.version_id, made.version_id);
        assert_eq!(got.created_date, Some(T0 as f64 / 1000.0));
    }
    let wrong_suffix = format!("{}XyZ123", &arn[..arn.len() - 6]);
    let other_region = arn.replace("us-east-1", "eu-west-1");
    let other_account = arn.replace("000000000000", "111111111111");
    for id in [
        "prod/dbx",
        "prod",
        wrong_suffix.as_str(),
        other_region.as_str(),
        other_account.as_str(),
        "arn:aws:secretsmanager:us-east-1:000000000000:parameter/prod/db",
    ] {
        let e = get(&s, id).unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException", "{id}");
        assert_eq!(
            e.message,
            "Secrets Manager can't find the specified secret."
        );
    }
    // Another Region of the same account holds none of them.
    let mut eu = ctx();
    eu.region = "eu-west-1".into();
    assert_eq!(
        code(get_at(&s, &eu, "prod/db")),
        "ResourceNotFoundException"
    );
}

#[test]
fn binary_values_are_base64_on_the_wire() {
    let (_d, s) = sm();
    let bytes = [0u8, 159, 146, 150, 255];
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "bin".into(),
            secret_binary: Some(b64(&bytes)),
            ..Default::default()
        },
    )
    .unwrap();
    let got = get(&s, "bin").unwrap();
    assert_eq!(got.secret_binary.as_deref(), Some(b64(&bytes).as_str()));
    assert_eq!(got.secret_string, None);
    let bad = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "bad".into(),
            secret_binary: Some("not base64!".into()),
            ..Default::default()
        },
    );
    assert_eq!(code(bad), "SerializationException");
}

#[test]
fn a_secret_made_without_a_value_has_no_current_version_until_one_is_put() {
    let (_d, s) = sm();
    let made = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "empty".into(),
            description: Some("nothing yet".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(made.version_id, None);
    let e = get(&s, "empty").unwrap_err();
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"
    );
    assert_eq!(describe(&s, "empty").version_ids_to_stages, None);
    // The first version is AWSCURRENT even when other labels are named.
    let p = put(&s, "empty", "v1", Some(UUID_A), Some(&["mine"])).unwrap();
    let mut labels = p.version_stages.unwrap();
    labels.sort();
    assert_eq!(labels, vec![AWSCURRENT.to_string(), "mine".to_string()]);
    assert_eq!(value(&s, "empty"), "v1");
}

#[test]
fn create_refuses_bad_names_both_values_replicas_and_oversized_values() {
    let (_d, s) = sm();
    let mk = |req: CreateSecretRequest| secrets::create(&s, &ctx(), req);
    for name in ["has space", "colon:name", "star*", "", &"a".repeat(513)] {
        let e = mk(CreateSecretRequest {
            name: name.into(),
            secret_string: Some("x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException", "{name}");
    }
    assert!(mk(CreateSecretRequest {
        name: "ok/_+=.@-Name9".into(),
        secret_string: Some("x".into()),
        ..Default::default()
    })
    .is_ok());
    let both = mk(CreateSecretRequest {
        name: "both".into(),
        secret_string: Some("x".into()),
        secret_binary: Some(b64(b"x")),
        ..Default::default()
    });
    assert_eq!(code(both), "InvalidParameterException");
    let replicas = mk(CreateSecretRequest {
        name: "rep".into(),
        secret_string: Some("x".into()),
        add_replica_regions: Some(vec![ReplicaRegionType {
            region: Some("eu-west-1".into()),
            kms_key_id: None,
        }]),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(replicas.code, "InvalidRequestException");
    assert!(replicas.message.contains("AddReplicaRegions"));
    // 65,536 bytes is the limit, whatever the characters.
    assert!(mk(CreateSecretRequest {
        name: "max".into(),
        secret_string: Some("x".repeat(65_536)),
        ..Default::default()
    })
    .is_ok());
    let multibyte = mk(CreateSecretRequest {
        name: "big".into(),
        secret_string: Some("é".repeat(40_000)),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(multibyte.code, "ValidationException");
    assert!(!multibyte.message.contains('é'));
    let big_binary = mk(CreateSecretRequest {
        name: "bigbin".into(),
        secret_binary: Some(b64(&vec![7u8; 65_537])),
        ..Default::default()
    });
    assert_eq!(code(big_binary), "ValidationException");
    assert_eq!(secret_rows(&s), 2);
}

// ----- versions and staging labels -----

#[test]
fn putting_values_moves_current_and_previous() {
    let (_d, s) = sm();
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "app".into(),
            secret_string: Some("one".into()),
            client_request_token: Some(UUID_A.into()),
            ..Default::default()
        },
    )
    .unwrap();
    let p2 = put(&s, "app", "two", Some(UUID_B), None).unwrap();
    assert_eq!(p2.version_stages, Some(vec![AWSCURRENT.to_string()]));
    put(&s, "app", "three", Some(UUID_C), None).unwrap();
    let map = stages(&s, "app");
    assert_eq!(map.len(), 2, "the oldest version is deprecated: {map:?}");
    assert_eq!(map[UUID_C], vec![AWSCURRENT]);
    assert_eq!(map[UUID_B], vec![AWSPREVIOUS]);
    assert_eq!(value(&s, "app"), "three");
    let prev = get_version(&s, "app", None, Some(AWSPREVIOUS)).unwrap();
    assert_eq!(prev.secret_string.as_deref(), Some("two"));
    assert_eq!(prev.version_id.as_deref(), Some(UUID_B));
    // A deprecated version is still readable by its id.
    let old = get_version(&s, "app", Some(UUID_A), None).unwrap();
    assert_eq!(old.secret_string.as_deref(), Some("one"));
    assert_eq!(old.version_stages, None);
    // Both given: they must agree.
    assert!(get_version(&s, "app", Some(UUID_C), Some(AWSCURRENT)).is_ok());
    assert_eq!(
        code(get_version(&s, "app", Some(UUID_B), Some(AWSCURRENT))),
        "InvalidRequestException"
    );
    let e = get_version(
        &s,
        "app",
        Some("dddddddd-dddd-4ddd-8ddd-dddddddddddd"),
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret value for VersionId: dddddddd-dddd-4ddd-8ddd-dddddddddddd"
    );
    let e = get_version(&s, "app", None, Some("nope")).unwrap_err();
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret value for staging label: nope"
    );
    // ListSecretVersionIds: newest first, deprecated ones on request.
    let list = |deprecated| {
        values::list_version_ids(
            &s,
            &ctx(),
            ListSecretVersionIdsRequest {
                secret_id: "app".into(),
                include_deprecated: deprecated,
                ..Default::default()
            },
        )
        .unwrap()
        .versions
        .unwrap()
        .into_iter()
        .map(|v| v.version_id.unwrap())
        .collect::<Vec<_>>()
    };
    assert_eq!(list(None), vec![UUID_C, UUID_B]);
    assert_eq!(list(Some(true)), vec![UUID_C, UUID_B, UUID_A]);
    let paged = values::list_version_ids(
        &s,
        &ctx(),
        ListSecretVersionIdsRequest {
            secret_id: "app".into(),
            include_deprecated: Some(true),
            max_results: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(paged.versions.unwrap().len(), 2);
    let rest = values::list_version_ids(
        &s,
        &ctx(),
        ListSecretVersionIdsRequest {
            secret_id: "app".into(),
            include_deprecated: Some(true),
            next_token: paged.next_token,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        rest.versions.unwrap()[0].version_id.as_deref(),
        Some(UUID_A)
    );
    assert_eq!(rest.next_token, None);
}

#[test]
fn explicit_stages_leave_current_alone_and_take_labels_from_other_versions() {
    let (_d, s) = sm();
    let first = create(&s, "rot", "current").version_id.unwrap();
    let pending = put(&s, "rot", "pending", Some(UUID_A), Some(&[AWSPENDING])).unwrap();
    assert_eq!(pending.version_stages, Some(vec![AWSPENDING.to_string()]));
    assert_eq!(value(&s, "rot"), "current");
    let pending2 = put(
        &s,
        "rot",
        "pending2",
        Some(UUID_B),
        Some(&[AWSPENDING, "blue"]),
    )
    .unwrap();
    assert_eq!(pending2.version_id.as_deref(), Some(UUID_B));
    let map = stages(&s, "rot");
    assert_eq!(map[&first], vec![AWSCURRENT]);
    assert!(
        !map.contains_key(UUID_A),
        "AWSPENDING moved off it: {map:?}"
    );
    assert_eq!(map[UUID_B], vec![AWSPENDING, "blue"]);
    let got = get_version(&s, "rot", None, Some("blue")).unwrap();
    assert_eq!(got.secret_string.as_deref(), Some("pending2"));
}

#[test]
fn tokens_make_requests_idempotent_and_versions_immutable() {
    let (_d, s) = sm();
    let req = CreateSecretRequest {
        name: "idem".into(),
        secret_string: Some("v".into()),
        client_request_token: Some(UUID_A.into()),
        ..Default::default()
    };
    let a = secrets::create(&s, &ctx(), req.clone()).unwrap();
    let b = secrets::create(&s, &ctx(), req.clone()).unwrap();
    assert_eq!(a, b);
    assert_eq!(version_rows(&s), 1);
    let changed = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            secret_string: Some("other".into()),
            ..req.clone()
        },
    )
    .unwrap_err();
    assert_eq!(changed.code, "ResourceExistsException");
    assert!(changed.message.contains(UUID_A));
    assert!(!changed.message.contains("other"));
    let again = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            client_request_token: Some(UUID_B.into()),
            ..req.clone()
        },
    )
    .unwrap_err();
    assert_eq!(again.code, "ResourceExistsException");
    assert_eq!(
        again.message,
        "The operation failed because the secret idem already exists."
    );
    // PutSecretValue: the same token and value change nothing.
    put(&s, "idem", "second", Some(UUID_B), None).unwrap();
    let replay = put(&s, "idem", "second", Some(UUID_B), None).unwrap();
    assert_eq!(replay.version_id.as_deref(), Some(UUID_B));
    assert_eq!(replay.version_stages, Some(vec![AWSCURRENT.to_string()]));
    assert_eq!(stages(&s, "idem")[UUID_A], vec![AWSPREVIOUS]);
    assert_eq!(version_rows(&s), 2);
    let e = put(&s, "idem", "third", Some(UUID_B), None).unwrap_err();
    assert_eq!(e.code, "ResourceExistsException");
    assert!(!e.message.contains("third") && !e.message.contains("second"));
    assert_eq!(value(&s, "idem"), "second");
    // A token names a version of its secret only.
    create(&s, "other", "x");
    assert!(put(&s, "other", "y", Some(UUID_A), None).is_ok());
}

#[test]
fn update_secret_changes_description_value_and_key() {
    let (_d, s) = sm();
    create(&s, "upd", "one");
    let no_value = secrets::update(
        &s,
        &ctx(),
        UpdateSecretRequest {
            secret_id: "upd".into(),
            description: Some("described".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(no_value.version_id, None);
    assert_eq!(
        describe(&s, "upd").description.as_deref(),
        Some("described")
    );
    assert_eq!(
        describe(&s, "upd").kms_key_id,
        None,
        "the AWS managed key is not shown"
    );
    let key = customer_key(&s);
    let with_value = secrets::update(
        &s,
        &ctx(),
        UpdateSecretRequest {
            secret_id: "upd".into(),
            kms_key_id: Some(key.clone()),
            secret_string: Some("two".into()),
            client_request_token: Some(UUID_A.into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(with_value.version_id.as_deref(), Some(UUID_A));
    assert_eq!(value(&s, "upd"), "two");
    assert_eq!(
        describe(&s, "upd").kms_key_id.as_deref(),
        Some(key.as_str())
    );
    assert_eq!(stages(&s, "upd").len(), 2);
    // The previous version was sealed again under the customer key: with
    // that key disabled, it no longer opens.
    disable_key(&s, &key);
    assert_eq!(
        code(get_version(&s, "upd", None, Some(AWSPREVIOUS))),
        "DecryptionFailure"
    );
    let bad_key = secrets::update(
        &s,
        &ctx(),
        UpdateSecretRequest {
            secret_id: "upd".into(),
            kms_key_id: Some("alias/none".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(bad_key.code, "InvalidParameterException");
    assert!(bad_key
        .message
        .starts_with("The operation failed because of an invalid KMS key"));
    assert_eq!(
        code(secrets::update(
            &s,
            &ctx(),
            UpdateSecretRequest {
                secret_id: "missing".into(),
                description: Some("x".into()),
                ..Default::default()
            },
        )),
        "ResourceNotFoundException"
    );
}

#[test]
fn kms_refusals_are_encryption_and_decryption_failures() {
    let (_d, s) = sm();
    let key = customer_key(&s);
    let made = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "k".into(),
            kms_key_id: Some(key.clone()),
            secret_string: Some("v".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(value(&s, made.arn.as_deref().unwrap()), "v");
    disable_key(&s, &key);
    let e = get(&s, "k").unwrap_err();
    assert_eq!(e.code, "DecryptionFailure");
    assert!(e.message.contains("is disabled"), "{}", e.message);
    let e = put(&s, "k", "w", None, None).unwrap_err();
    assert_eq!(e.code, "EncryptionFailure");
    assert_eq!(version_rows(&s), 1, "nothing was written");
    let missing = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "k2".into(),
            kms_key_id: Some("alias/missing".into()),
            secret_string: Some("v".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(missing.code, "InvalidParameterException");
    let missing_no_value = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "k3".into(),
            kms_key_id: Some("1234abcd-12ab-34cd-56ef-1234567890ab".into()),
            ..Default::default()
        },
    );
    assert_eq!(code(missing_no_value), "InvalidParameterException");
    assert_eq!(secret_rows(&s), 1);
}

#[test]
fn version_stages_move_as_update_secret_version_stage_says() {
    let (_d, s) = sm();
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "st".into(),
            secret_string: Some("a".into()),
            client_request_token: Some(UUID_A.into()),
            ..Default::default()
        },
    )
    .unwrap();
    put(&s, "st", "b", Some(UUID_B), Some(&[AWSPENDING])).unwrap();
    let mv = |stage: &str, from: Option<&str>, to: Option<&str>| {
        values::update_version_stage(
            &s,
            &ctx(),
            UpdateSecretVersionStageRequest {
                secret_id: "st".into(),
                version_stage: stage.into(),
                remove_from_version_id: from.map(str::to_string),
                move_to_version_id: to.map(str::to_string),
            },
        )
    };
    // AWSCURRENT is on A: moving it needs RemoveFromVersionId.
    let e = mv(AWSCURRENT, None, Some(UUID_B)).unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e.message.contains(UUID_A));
    assert_eq!(
        code(mv(AWSCURRENT, Some(UUID_A), None)),
        "InvalidParameterException"
    );
    assert_eq!(
        code(mv(AWSCURRENT, Some(UUID_B), Some(UUID_A))),
        "InvalidParameterException"
    );
    assert_eq!(
        code(mv(AWSCURRENT, None, None)),
        "InvalidParameterException"
    );
    assert_eq!(
        code(mv(AWSCURRENT, Some(UUID_C), Some(UUID_B))),
        "ResourceNotFoundException"
    );
    let done = mv(AWSCURRENT, Some(UUID_A), Some(UUID_B)).unwrap();
    assert_eq!(done.name.as_deref(), Some("st"));
    let map = stages(&s, "st");
    assert_eq!(map[UUID_B], vec![AWSPENDING, AWSCURRENT]);
    assert_eq!(map[UUID_A], vec![AWSPREVIOUS]);
    assert_eq!(value(&s, "st"), "b");
    // A label other than AWSCURRENT can simply be removed, or added.
    mv(AWSPENDING, Some(UUID_B), None).unwrap();
    mv("blue", None, Some(UUID_A)).unwrap();
    let map = stages(&s, "st");
    assert_eq!(map[UUID_B], vec![AWSCURRENT]);
    assert_eq!(map[UUID_A], vec![AWSPREVIOUS, "blue"]);
    // Twenty labels at most across the versions.
    for i in 0..17 {
        mv(&format!("l{i}"), None, Some(UUID_A)).unwrap();
    }
    assert_eq!(
        code(mv("one-too-many", None, Some(UUID_A))),
        "LimitExceededException"
    );
}

#[test]
fn deprecated_versions_go_past_one_hundred() {
    let (_d, s) = sm();
    create(&s, "many", "v0");
    for i in 1..=105 {
        put(&s, "many", &format!("v{i}"), None, None).unwrap();
    }
    assert_eq!(version_rows(&s), 100);
    let all = values::list_version_ids(
        &s,
        &ctx(),
        ListSecretVersionIdsRequest {
            secret_id: "many".into(),
            include_deprecated: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.versions.unwrap().len(), 100);
    assert_eq!(value(&s, "many"), "v105");
}

// ----- deletion -----

#[test]
fn deletion_waits_for_its_window_and_restore_cancels_it() {
    let (_d, s) = sm();
    let arn = create(&s, "del", "v").arn.unwrap();
    let later = at(T0 + 1000);
    let d = delete_at(&s, &later, "del", None, None).unwrap();
    assert_eq!(d.arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        d.deletion_date,
        Some((T0 + 1000 + 30 * DAY_MS) as f64 / 1000.0)
    );
    let e = get(&s, "del").unwrap_err();
    assert_eq!(e.code, "InvalidRequestException");
    assert_eq!(
        e.message,
        "You can't perform this operation on the secret because it was marked for deletion."
    );
    assert_eq!(
        code(put(&s, "del", "w", None, None)),
        "InvalidRequestException"
    );
    assert_eq!(
        code(delete_at(&s, &ctx(), "del", Some(7), None)),
        "InvalidRequestException"
    );
    let described = describe(&s, "del");
    assert_eq!(described.deleted_date, d.deletion_date);
    let plain = list_at(&s, &ctx(), ListSecretsRequest::default()).unwrap();
    assert!(names(&plain).is_empty());
    let planned = list_at(
        &s,
        &ctx(),
        ListSecretsRequest {
            include_planned_deletion: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(names(&planned), vec!["del"]);
    let again = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "del".into(),
            secret_string: Some("x".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(again.code, "InvalidRequestException");
    assert_eq!(
        again.message,
        "You can't create this secret because a secret with this name is already scheduled for deletion."
    );
    let r = secrets::restore(
        &s,
        &ctx(),
        RestoreSecretRequest {
            secret_id: arn.clone(),
        },
    )
    .unwrap();
    assert_eq!(r.name.as_deref(), Some("del"));
    assert_eq!(value(&s, "del"), "v");
    assert_eq!(describe(&s, "del").deleted_date, None);
    // A window of 7 to 30 days; not with ForceDeleteWithoutRecovery.
    for days in [6, 31, 0] {
        assert_eq!(
            code(delete_at(&s, &ctx(), "del", Some(days), None)),
            "InvalidParameterException"
        );
    }
    assert_eq!(
        code(delete_at(&s, &ctx(), "del", Some(7), Some(true))),
        "InvalidParameterException"
    );
    let week = delete_at(&s, &ctx(), "del", Some(7), None).unwrap();
    assert_eq!(week.deletion_date, Some((T0 + 7 * DAY_MS) as f64 / 1000.0));
}

#[test]
fn a_secret_past_its_deletion_date_is_gone_and_its_name_free() {
    let (_d, s) = sm();
    let old_arn = create(&s, "gone", "old").arn.unwrap();
    delete_at(&s, &ctx(), "gone", Some(7), None).unwrap();
    let just_before = at(T0 + 7 * DAY_MS - 1);
    assert_eq!(
        describe_at(&s, &just_before, "gone")
            .unwrap()
            .name
            .as_deref(),
        Some("gone")
    );
    let after = at(T0 + 7 * DAY_MS);
    assert_eq!(
        code(get_at(&s, &after, "gone")),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(describe_at(&s, &after, "gone")),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(secrets::restore(
            &s,
            &after,
            RestoreSecretRequest {
                secret_id: "gone".into()
            }
        )),
        "ResourceNotFoundException"
    );
    let listed = list_at(
        &s,
        &after,
        ListSecretsRequest {
            include_planned_deletion: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(names(&listed).is_empty());
    // The next write removes its rows; the name makes a new secret.
    let made = secrets::create(
        &s,
        &after,
        CreateSecretRequest {
            name: "gone".into(),
            secret_string: Some("new".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(made.arn.as_deref(), Some(old_arn.as_str()));
    assert_eq!(secret_rows(&s), 1);
    assert_eq!(version_rows(&s), 1);
    assert_eq!(
        get_at(&s, &after, "gone").unwrap().secret_string.as_deref(),
        Some("new")
    );
    assert_eq!(
        code(get_at(&s, &after, &old_arn)),
        "ResourceNotFoundException"
    );
}

#[test]
fn force_delete_removes_at_once_and_answers_for_missing_secrets() {
    let (_d, s) = sm();
    let arn = create(&s, "f", "v").arn.unwrap();
    put(&s, "f", "w", None, None).unwrap();
    let d = delete_at(&s, &ctx(), &arn, None, Some(true)).unwrap();
    assert_eq!(d.deletion_date, Some(T0 as f64 / 1000.0));
    assert_eq!(d.name.as_deref(), Some("f"));
    assert_eq!(secret_rows(&s), 0);
    assert_eq!(version_rows(&s), 0);
    assert_eq!(
        code(describe_at(&s, &ctx(), "f")),
        "ResourceNotFoundException"
    );
    create(&s, "f", "again");
    assert_eq!(value(&s, "f"), "again");
    // A secret already scheduled is removed too.
    delete_at(&s, &ctx(), "f", None, None).unwrap();
    delete_at(&s, &ctx(), "f", None, Some(true)).unwrap();
    assert_eq!(secret_rows(&s), 0);
    let missing = delete_at(&s, &ctx(), "never", None, Some(true)).unwrap();
    assert_eq!(missing.name.as_deref(), Some("never"));
    assert_eq!(
        missing.arn.as_deref(),
        Some("arn:aws:secretsmanager:us-east-1:000000000000:secret:never")
    );
    assert_eq!(
        code(delete_at(&s, &ctx(), "never", None, None)),
        "ResourceNotFoundException"
    );
}

// ----- DescribeSecret, ListSecrets, tags, policies -----

#[test]
fn describe_reports_dates_tags_and_access_by_the_day() {
    let (_d, s) = sm();
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "d".into(),
            description: Some("the db".into()),
            secret_string: Some("v".into()),
            tags: Some(vec![tag("team", "a"), tag("env", "prod")]),
            ..Default::default()
        },
    )
    .unwrap();
    let first = describe(&s, "d");
    assert_eq!(first.created_date, Some(T0 as f64 / 1000.0));
    assert_eq!(first.last_changed_date, Some(T0 as f64 / 1000.0));
    assert_eq!(first.last_accessed_date, None);
    assert_eq!(first.description.as_deref(), Some("the db"));
    assert_eq!(first.tags.as_ref().unwrap().len(), 2);
    assert_eq!(first.kms_key_id, None);
    // Read at 15:00 the next day: the date recorded is that day's midnight.
    let next_day = (T0 / DAY_MS + 1) * DAY_MS;
    get_at(&s, &at(next_day + 15 * 3_600_000), "d").unwrap();
    let after = describe(&s, "d");
    assert_eq!(after.last_accessed_date, Some(next_day as f64 / 1000.0));
    assert_eq!(
        after.last_changed_date, first.last_changed_date,
        "a read changes nothing"
    );
    // Tags: replace by key, remove, reserved prefix, at most 50.
    let tag_req = |tags: Vec<Tag>| {
        secrets::tag_resource(
            &s,
            &at(T0 + 5000),
            TagResourceRequest {
                secret_id: "d".into(),
                tags,
            },
        )
    };
    tag_req(vec![tag("team", "b"), tag("owner", "me")]).unwrap();
    secrets::untag_resource(
        &s,
        &at(T0 + 6000),
        UntagResourceRequest {
            secret_id: "d".into(),
            tag_keys: vec!["env".into(), "absent".into()],
        },
    )
    .unwrap();
    let tagged = describe(&s, "d");
    assert_eq!(
        tagged.tags,
        Some(vec![tag("team", "b"), tag("owner", "me")])
    );
    assert_eq!(tagged.last_changed_date, Some((T0 + 6000) as f64 / 1000.0));
    assert_eq!(
        code(tag_req(vec![tag("aws:x", "y")])),
        "InvalidParameterException"
    );
    let many: Vec<Tag> = (0..49).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert_eq!(code(tag_req(many)), "InvalidParameterException");
    assert_eq!(
        describe(&s, "d").tags.unwrap().len(),
        2,
        "a refused call changes nothing"
    );
}

#[test]
fn list_secrets_filters_sorts_and_pages() {
    let (_d, s) = sm();
    for (i, (name, desc, tags)) in [
        ("prod/db", "Database login", vec![tag("env", "production")]),
        (
            "prod/api",
            "API key",
            vec![tag("env", "production"), tag("team", "web")],
        ),
        (
            "dev/db",
            "database for dev",
            vec![tag("env", "development")],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        secrets::create(
            &s,
            &at(T0 + i as i64 * 1000),
            CreateSecretRequest {
                name: name.into(),
                description: Some(desc.into()),
                secret_string: Some("v".into()),
                tags: Some(tags),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let list = |filters: Vec<Filter>| {
        names(
            &list_at(
                &s,
                &ctx(),
                ListSecretsRequest {
                    filters: Some(filters),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    };
    let f = |key: FilterNameStringType, values: &[&str]| Filter {
        key: Some(key),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    };
    use FilterNameStringType::*;
    assert_eq!(list(vec![f(Name, &["prod/"])]), vec!["prod/db", "prod/api"]);
    assert_eq!(
        list(vec![f(Description, &["database"])]),
        vec!["prod/db", "dev/db"]
    );
    assert_eq!(list(vec![f(TagKey, &["team"])]), vec!["prod/api"]);
    assert_eq!(list(vec![f(TagValue, &["dev"])]), vec!["dev/db"]);
    assert_eq!(list(vec![f(All, &["db"])]), vec!["prod/db", "dev/db"]);
    assert_eq!(list(vec![f(Name, &["!prod"])]), vec!["dev/db"]);
    assert_eq!(
        list(vec![f(Name, &["prod"]), f(Description, &["api"])]),
        vec!["prod/api"]
    );
    // Sorting.
    let sorted = |by: SortByType, order: SortOrderType| {
        names(
            &list_at(
                &s,
                &ctx(),
                ListSecretsRequest {
                    sort_by: Some(by),
                    sort_order: Some(order),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    };
    assert_eq!(
        sorted(SortByType::Name, SortOrderType::Asc),
        vec!["dev/db", "prod/api", "prod/db"]
    );
    assert_eq!(
        sorted(SortByType::CreatedDate, SortOrderType::Desc),
        vec!["dev/db", "prod/api", "prod/db"]
    );
    assert_eq!(
        sorted(SortByType::CreatedDate, SortOrderType::Asc),
        vec!["prod/db", "prod/api", "dev/db"]
    );
    // Paging.
    let page1 = list_at(
        &s,
        &ctx(),
        ListSecretsRequest {
            max_results: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(names(&page1), vec!["prod/db", "prod/api"]);
    let page2 = list_at(
        &s,
        &ctx(),
        ListSecretsRequest {
            max_results: Some(2),
            next_token: page1.next_token.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(names(&page2), vec!["dev/db"]);
    assert_eq!(page2.next_token, None);
    let bad = list_at(
        &s,
        &ctx(),
        ListSecretsRequest {
            next_token: Some("garbage".into()),
            ..Default::default()
        },
    );
    assert_eq!(code(bad), "InvalidNextTokenException");
    // Entries carry their versions' labels.
    let entry = &page1.secret_list.unwrap()[0];
    assert_eq!(entry.secret_versions_to_stages.as_ref().unwrap().len(), 1);
    assert_eq!(entry.tags.as_ref().unwrap().len(), 1);
}

#[test]
fn resource_policies_are_kept_as_given() {
    let (_d, s) = sm();
    create(&s, "p", "v");
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let got = |s: &SecretsManager| {
        secrets::get_policy(
            s,
            &ctx(),
            GetResourcePolicyRequest {
                secret_id: "p".into(),
            },
        )
        .unwrap()
    };
    assert_eq!(got(&s).resource_policy, None);
    let put_policy = |text: &str| {
        secrets::put_policy(
            &s,
            &ctx(),
            PutResourcePolicyRequest {
                secret_id: "p".into(),
                resource_policy: text.into(),
                block_public_policy: Some(true),
            },
        )
    };
    put_policy(doc).unwrap();
    assert_eq!(got(&s).resource_policy.as_deref(), Some(doc));
    for bad in ["not json", "[1,2]", "\"text\""] {
        assert_eq!(
            code(put_policy(bad)),
            "MalformedPolicyDocumentException",
            "{bad}"
        );
    }
    assert_eq!(got(&s).resource_policy.as_deref(), Some(doc));
    let deleted = secrets::delete_policy(
        &s,
        &ctx(),
        DeleteResourcePolicyRequest {
            secret_id: "p".into(),
        },
    )
    .unwrap();
    assert_eq!(deleted.name.as_deref(), Some("p"));
    assert_eq!(got(&s).resource_policy, None);
    assert_eq!(
        code(secrets::get_policy(
            &s,
            &ctx(),
            GetResourcePolicyRequest {
                secret_id: "nope".into()
            }
        )),
        "ResourceNotFoundException"
    );
}

#[test]
fn batch_get_answers_each_secret_or_its_error() {
    let (_d, s) = sm();
    create(&s, "b1", "one");
    create(&s, "b2", "two");
    create(&s, "b3", "three");
    delete_at(&s, &ctx(), "b3", None, None).unwrap();
    let out = values::batch_get_secret_value(
        &s,
        &ctx(),
        BatchGetSecretValueRequest {
            secret_id_list: Some(vec![
                "b1".into(),
                "missing".into(),
                "b3".into(),
                "b2".into(),
            ]),
            ..Default::default()
        },
    )
    .unwrap();
    let got: Vec<(String, String)> = out
        .secret_values
        .unwrap()
        .into_iter()
        .map(|v| (v.name.unwrap(), v.secret_string.unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![("b1".into(), "one".into()), ("b2".into(), "two".into())]
    );
    let errors = out.errors.unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].secret_id.as_deref(), Some("missing"));
    assert_eq!(
        errors[0].error_code.as_deref(),
        Some("ResourceNotFoundException")
    );
    assert_eq!(
        errors[1].error_code.as_deref(),
        Some("InvalidRequestException")
    );
    // By filter, a page at a time; deleted secrets are not selected.
    let by_filter = |token: Option<String>| {
        values::batch_get_secret_value(
            &s,
            &ctx(),
            BatchGetSecretValueRequest {
                filters: Some(vec![Filter {
                    key: Some(FilterNameStringType::Name),
                    values: Some(vec!["b".into()]),
                }]),
                max_results: Some(1),
                next_token: token,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let p1 = by_filter(None);
    assert_eq!(
        p1.secret_values.as_ref().unwrap()[0].name.as_deref(),
        Some("b1")
    );
    let p2 = by_filter(p1.next_token.clone());
    assert_eq!(
        p2.secret_values.as_ref().unwrap()[0].name.as_deref(),
        Some("b2")
    );
    assert_eq!(p2.next_token, None);
    let both = values::batch_get_secret_value(
        &s,
        &ctx(),
        BatchGetSecretValueRequest {
            secret_id_list: Some(vec!["b1".into()]),
            filters: Some(vec![]),
            ..Default::default()
        },
    );
    assert_eq!(code(both), "InvalidParameterException");
    let neither = values::batch_get_secret_value(&s, &ctx(), BatchGetSecretValueRequest::default());
    assert_eq!(code(neither), "InvalidParameterException");
    let max_with_ids = values::batch_get_secret_value(
        &s,
        &ctx(),
        BatchGetSecretValueRequest {
            secret_id_list: Some(vec!["b1".into()]),
            max_results: Some(5),
            ..Default::default()
        },
    );
    assert_eq!(code(max_with_ids), "InvalidParameterException");
}

// ----- the ECS agent's valueFrom -----

#[test]
fn value_from_resolves_every_ecs_form() {
    let (_d, s) = sm();
    let json_doc = r#"{"username":"admin","password":"pa:ss","port":5432,"opts":{"tls":true}}"#;
    let arn = secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "db".into(),
            secret_string: Some(json_doc.into()),
            client_request_token: Some(UUID_A.into()),
            ..Default::default()
        },
    )
    .unwrap()
    .arn
    .unwrap();
    put(
        &s,
        "db",
        r#"{"username":"root"}"#,
        Some(UUID_B),
        Some(&["next"]),
    )
    .unwrap();
    let resolve = |v: &str| s.resolve_value_from("000000000000", "us-east-1", v, T0);
    let partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db";
    assert_eq!(resolve(&arn).unwrap(), json_doc);
    assert_eq!(resolve(partial).unwrap(), json_doc);
    assert_eq!(resolve("db").unwrap(), json_doc);
    assert_eq!(resolve(&format!("{arn}:password::")).unwrap(), "pa:ss");
    assert_eq!(resolve(&format!("{arn}:port::")).unwrap(), "5432");
    assert_eq!(
        resolve(&format!("{arn}:opts::")).unwrap(),
        r#"{"tls":true}"#
    );
    assert_eq!(
        resolve(&format!("{arn}::next:")).unwrap(),
        r#"{"username":"root"}"#
    );
    assert_eq!(resolve(&format!("{arn}:username:next:")).unwrap(), "root");
    assert_eq!(
        resolve(&format!("{arn}:username::{UUID_A}")).unwrap(),
        "admin"
    );
    assert_eq!(
        resolve(&format!("{partial}:username:AWSCURRENT:")).unwrap(),
        "admin"
    );
    assert_eq!(resolve("db:username:next:").unwrap(), "root");
    // A missing key is named; the value never is.
    let e = resolve(&format!("{arn}:nokey::")).unwrap_err();
    assert_eq!(e.code, VALUE_FROM_ERROR);
    assert_eq!(
        e.message,
        "retrieved secret from Secrets Manager did not contain json key nokey"
    );
    // Secrets Manager's own errors come back as they are.
    let e =
        resolve("arn:aws:secretsmanager:us-east-1:000000000000:secret:nope-AbCdEf").unwrap_err();
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret."
    );
    let e = resolve(&format!("{arn}::missing-stage:")).unwrap_err();
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret value for staging label: missing-stage"
    );
    assert_eq!(
        code(resolve(&arn.replace("us-east-1", "us-west-2"))),
        "ResourceNotFoundException"
    );
    for bad in [
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:db:onlykey",
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:db:a:b:c:d",
        "arn:aws:ssm:us-east-1:000000000000:parameter/db",
        "arn:aws:secretsmanager:us-east-1",
        "",
    ] {
        let e = resolve(bad).unwrap_err();
        assert_eq!(e.code, VALUE_FROM_ERROR, "{bad}");
        assert!(e.message.starts_with("an invalid ARN format"), "{bad}");
    }
    // Plain text with a key asked for; a binary secret.
    create(&s, "plain", "just-a-password");
    let e = resolve("plain:k::").unwrap_err();
    assert_eq!(e.code, VALUE_FROM_ERROR);
    assert!(!e.message.contains("just-a-password"));
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "binary".into(),
            secret_binary: Some(b64(b"raw")),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(code(resolve("binary")), VALUE_FROM_ERROR);
    // Resolving is an access; a secret scheduled for deletion refuses.
    assert!(describe(&s, "db").last_accessed_date.is_some());
    delete_at(&s, &ctx(), "db", None, None).unwrap();
    assert_eq!(code(resolve(&arn)), "InvalidRequestException");
}

#[test]
fn value_from_forms_parse_as_the_agent_reads_them() {
    let p = values::parse_value_from(
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:a/b-AbCdEf:key:AWSPREVIOUS:",
    )
    .unwrap();
    assert_eq!(
        p.secret_id,
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:a/b-AbCdEf"
    );
    assert_eq!(p.json_key.as_deref(), Some("key"));
    assert_eq!(p.version_stage.as_deref(), Some("AWSPREVIOUS"));
    assert_eq!(p.version_id, None);
    let bare = values::parse_value_from("a/b").unwrap();
    assert_eq!(
        (
            bare.secret_id.as_str(),
            bare.json_key,
            bare.version_stage,
            bare.version_id
        ),
        ("a/b", None, None, None)
    );
    assert!(values::parse_value_from("a/b:key").is_err());
    assert_eq!(values::json_field(r#"{"n":null}"#, "n").unwrap(), "null");
    assert_eq!(
        values::json_field(r#"{"n":[1,"x"]}"#, "n").unwrap(),
        r#"[1,"x"]"#
    );
    assert_eq!(
        values::json_field(r#"[1]"#, "n").unwrap_err().code,
        VALUE_FROM_ERROR
    );
}

// ----- values stay sealed -----

#[test]
fn no_value_is_stored_or_reported_in_plain_text() {
    let (dir, s) = sm();
    const MARKER: &str = "PLAINTEXT-MARKER-5f1c0a";
    let key = customer_key(&s);
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "m1".into(),
            secret_string: Some(format!("{{\"password\":\"{MARKER}\"}}")),
            ..Default::default()
        },
    )
    .unwrap();
    secrets::create(
        &s,
        &ctx(),
        CreateSecretRequest {
            name: "m2".into(),
            kms_key_id: Some(key.clone()),
            secret_binary: Some(b64(format!("bin-{MARKER}").as_bytes())),
            ..Default::default()
        },
    )
    .unwrap();
    put(&s, "m1", &format!("put-{MARKER}"), Some(UUID_A), None).unwrap();
    secrets::update(
        &s,
        &ctx(),
        UpdateSecretRequest {
            secret_id: "m1".into(),
            secret_string: Some(format!("update-{MARKER}")),
            kms_key_id: Some(key.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    // Every failure on the way says nothing of the value.
    let errors = [
        put(&s, "m1", &format!("again-{MARKER}"), Some(UUID_A), None).unwrap_err(),
        put(&s, "missing", &format!("x-{MARKER}"), None, None).unwrap_err(),
        s.resolve_value_from("000000000000", "us-east-1", "m1:nokey::", T0)
            .unwrap_err(),
        values::plain_from_request(Some(&format!("{MARKER}{}", "x".repeat(70_000))), None)
            .unwrap_err(),
    ];
    for e in &errors {
        assert!(!e.to_string().contains(MARKER), "{e}");
    }
    let plain = values::plain_from_request(Some(MARKER), None)
        .unwrap()
        .unwrap();
    assert!(!format!("{plain:?}").contains(MARKER));
    // The values are there, sealed.
    assert_eq!(value(&s, "m1"), format!("update-{MARKER}"));
    // Neither the database nor its journal holds the marker.
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        scanned += bytes.len();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} holds a value in plain text",
            path.display()
        );
    }
    assert!(scanned > 0);
}

// ----- through the pipeline -----

fn app(s: &Arc<SecretsManager>) -> crate::wire::App {
    let mut registry = crate::wire::Registry::default();
    registry.add(s.clone().service());
    crate::wire::App::in_process(registry)
}

fn call(a: &crate::wire::App, op: &str, input: Value) -> ApiResult<Value> {
    a.call_named("SecretsManager", &ctx(), op, input)
}

#[test]
fn the_pipeline_serves_every_operation_with_model_clean_answers() {
    let (_d, s) = sm();
    let a = app(&s);
    let service = s.clone().service();
    assert_eq!(service.operations().len(), 17);
    assert_eq!(
        service.model.target_prefix.as_deref(),
        Some("secretsmanager")
    );
    let token = UUID_A;
    let made = call(
        &a,
        "CreateSecret",
        json!({"Name": "pipe", "SecretString": "v1", "ClientRequestToken": token,
               "Description": "d", "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .unwrap();
    let arn = made["ARN"].as_str().unwrap().to_string();
    assert_eq!(made["VersionId"], token);
    call(
        &a,
        "PutSecretValue",
        json!({"SecretId": "pipe", "SecretString": "v2", "ClientRequestToken": UUID_B}),
    )
    .unwrap();
    let got = call(&a, "GetSecretValue", json!({"SecretId": arn})).unwrap();
    assert_eq!(got["SecretString"], "v2");
    assert_eq!(got["VersionStages"], json!(["AWSCURRENT"]));
    let calls = [
        ("DescribeSecret", json!({"SecretId": "pipe"})),
        (
            "ListSecrets",
            json!({"Filters": [{"Key": "name", "Values": ["pi"]}]}),
        ),
        (
            "ListSecretVersionIds",
            json!({"SecretId": "pipe", "IncludeDeprecated": true}),
        ),
        (
            "BatchGetSecretValue",
            json!({"SecretIdList": ["pipe", "nope"]}),
        ),
        (
            "UpdateSecret",
            json!({"SecretId": "pipe", "Description": "e"}),
        ),
        (
            "UpdateSecretVersionStage",
            json!({"SecretId": "pipe", "VersionStage": "x", "MoveToVersionId": UUID_A}),
        ),
        (
            "TagResource",
            json!({"SecretId": "pipe", "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
        (
            "UntagResource",
            json!({"SecretId": "pipe", "TagKeys": ["a"]}),
        ),
        (
            "PutResourcePolicy",
            json!({"SecretId": "pipe", "ResourcePolicy": "{}"}),
        ),
        ("GetResourcePolicy", json!({"SecretId": "pipe"})),
        ("DeleteResourcePolicy", json!({"SecretId": "pipe"})),
        ("GetRandomPassword", json!({"PasswordLength": 20})),
        (
            "DeleteSecret",
            json!({"SecretId": "pipe", "RecoveryWindowInDays": 7}),
        ),
        ("RestoreSecret", json!({"SecretId": "pipe"})),
    ];
    for (op, input) in calls {
        call(&a, op, input).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    let pw = call(&a, "GetRandomPassword", json!({"PasswordLength": 20})).unwrap();
    assert_eq!(pw["RandomPassword"].as_str().unwrap().len(), 20);
    // The model's bounds answer ValidationException, Secrets Manager's own
    // rules InvalidParameterException.
    for (op, input) in [
        (
            "CreateSecret",
            json!({"Name": "t", "SecretString": "v", "ClientRequestToken": "short"}),
        ),
        (
            "CreateSecret",
            json!({"Name": "t", "SecretString": "x".repeat(65_537)}),
        ),
        ("CreateSecret", json!({"Name": "t", "SecretString": ""})),
        ("GetSecretValue", json!({})),
        ("ListSecrets", json!({"MaxResults": 101})),
        ("GetRandomPassword", json!({"PasswordLength": 4097})),
        (
            "ListSecrets",
            json!({"Filters": [{"Key": "name", "Values": ["a*b"]}]}),
        ),
    ] {
        let e = call(&a, op, input).unwrap_err();
        assert_eq!(e.code, "ValidationException", "{op}: {e}");
    }
    let e = call(
        &a,
        "CreateSecret",
        json!({"Name": "bad name", "SecretString": "v"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let unserved = call(&a, "RotateSecret", json!({"SecretId": "pipe"})).unwrap_err();
    assert!(unserved.message.contains("RotateSecret"), "{unserved}");
}
