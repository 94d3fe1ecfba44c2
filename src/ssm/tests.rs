use std::sync::Arc;

use super::parameters::*;
use super::shapes::*;
use super::*;
use crate::context::Ctx;
use crate::kms::Kms;

fn ssm() -> (tempfile::TempDir, Ssm) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_in(dir.path()).unwrap());
    let kms = Arc::new(Kms::with_master(store.clone(), [5; 32]));
    (dir, Ssm { store, kms })
}

fn ctx() -> Ctx {
    Ctx::for_tests(chrono::Utc::now())
}

fn put_p(
    s: &Ssm,
    name: &str,
    value: &str,
    kind: Option<ParameterType>,
    overwrite: bool,
) -> crate::error::ApiResult<i64> {
    put(
        s,
        &ctx(),
        PutParameterRequest {
            name: name.into(),
            value: value.into(),
            r#type: kind,
            overwrite: Some(overwrite),
            ..Default::default()
        },
    )
    .map(|r| r.version.unwrap())
}

fn get_v(s: &Ssm, name: &str, decrypt: bool) -> crate::error::ApiResult<Parameter> {
    get(
        s,
        &ctx(),
        GetParameterRequest {
            name: name.into(),
            with_decryption: Some(decrypt),
        },
    )
    .map(|r| r.parameter.unwrap())
}

#[test]
fn versions_selectors_and_overwrite() {
    let (_d, s) = ssm();
    assert_eq!(
        put_p(&s, "/app/url", "v1", Some(ParameterType::String), false).unwrap(),
        1
    );
    let again = put_p(&s, "/app/url", "v2", Some(ParameterType::String), false);
    assert_eq!(again.unwrap_err().code, "ParameterAlreadyExists");
    assert_eq!(put_p(&s, "/app/url", "v2", None, true).unwrap(), 2);
    assert_eq!(get_v(&s, "/app/url", false).unwrap().value.unwrap(), "v2");
    let one = get_v(&s, "/app/url:1", false).unwrap();
    assert_eq!(one.value.unwrap(), "v1");
    assert_eq!(one.selector.as_deref(), Some(":1"));
    assert_eq!(
        get_v(&s, "/app/url:9", false).unwrap_err().code,
        "ParameterVersionNotFound"
    );
    assert_eq!(
        get_v(&s, "/nope", false).unwrap_err().code,
        "ParameterNotFound"
    );
    let by_arn = get_v(
        &s,
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/url",
        false,
    )
    .unwrap();
    assert_eq!(by_arn.value.unwrap(), "v2");
    assert_eq!(
        get_v(
            &s,
            "arn:aws:ssm:us-east-1:999999999999:parameter/app/url",
            false
        )
        .unwrap_err()
        .code,
        "ParameterNotFound"
    );
    // A new parameter needs a type.
    assert_eq!(
        put_p(&s, "/app/new", "x", None, false).unwrap_err().code,
        "ValidationException"
    );
}

#[test]
fn secure_strings_are_sealed_and_decrypted_on_request() {
    let (dir, s) = ssm();
    put_p(
        &s,
        "/app/db",
        "SECRET-MARKER-123",
        Some(ParameterType::SecureString),
        false,
    )
    .unwrap();
    let plain = get_v(&s, "/app/db", true).unwrap();
    assert_eq!(plain.value.unwrap(), "SECRET-MARKER-123");
    let sealed = get_v(&s, "/app/db", false).unwrap().value.unwrap();
    assert_ne!(sealed, "SECRET-MARKER-123");
    assert_eq!(
        s.resolve_value_from("000000000000", "us-east-1", "/app/db")
            .unwrap(),
        "SECRET-MARKER-123"
    );
    assert_eq!(
        s.resolve_value_from(
            "000000000000",
            "us-east-1",
            "arn:aws:ssm:us-east-1:000000000000:parameter/app/db"
        )
        .unwrap(),
        "SECRET-MARKER-123"
    );
    let meta = describe(&s, &ctx(), DescribeParametersRequest::default())
        .unwrap()
        .parameters
        .unwrap();
    assert!(meta[0]
        .key_id
        .as_deref()
        .unwrap()
        .starts_with("arn:aws:kms:"));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(17).any(|w| w == b"SECRET-MARKER-123"));
    }
    // KeyId is for SecureStrings only.
    let r = put(
        &s,
        &ctx(),
        PutParameterRequest {
            name: "/app/plain".into(),
            value: "x".into(),
            r#type: Some(ParameterType::String),
            key_id: Some("alias/aws/ssm".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap_err().code, "ValidationException");
}

#[test]
fn paths_filters_and_history() {
    let (_d, s) = ssm();
    for (n, k) in [
        ("/a/one", ParameterType::String),
        ("/a/two", ParameterType::SecureString),
        ("/a/deep/three", ParameterType::String),
        ("/b/other", ParameterType::String),
        ("top", ParameterType::String),
    ] {
        put_p(&s, n, "v", Some(k), false).unwrap();
    }
    let path = |recursive: bool, filters: Option<Vec<ParameterStringFilter>>| {
        get_by_path(
            &s,
            &ctx(),
            GetParametersByPathRequest {
                path: "/a".into(),
                recursive: Some(recursive),
                parameter_filters: filters,
                ..Default::default()
            },
        )
        .unwrap()
        .parameters
        .unwrap()
        .into_iter()
        .map(|p| p.name.unwrap())
        .collect::<Vec<_>>()
    };
    assert_eq!(path(false, None), vec!["/a/one", "/a/two"]);
    assert_eq!(path(true, None), vec!["/a/deep/three", "/a/one", "/a/two"]);
    let secure = vec![ParameterStringFilter {
        key: "Type".into(),
        option: None,
        values: Some(vec!["SecureString".into()]),
    }];
    assert_eq!(path(true, Some(secure)), vec!["/a/two"]);
    let bad = get_by_path(
        &s,
        &ctx(),
        GetParametersByPathRequest {
            path: "a".into(),
            ..Default::default()
        },
    );
    assert_eq!(bad.unwrap_err().code, "ValidationException");
    // Paging.
    let first = get_by_path(
        &s,
        &ctx(),
        GetParametersByPathRequest {
            path: "/a".into(),
            recursive: Some(true),
            max_results: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.parameters.unwrap().len(), 2);
    let rest = get_by_path(
        &s,
        &ctx(),
        GetParametersByPathRequest {
            path: "/a".into(),
            recursive: Some(true),
            max_results: Some(2),
            next_token: first.next_token,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rest.parameters.unwrap().len(), 1);
    assert!(rest.next_token.is_none());
    // DescribeParameters with Name BeginsWith.
    let d = describe(
        &s,
        &ctx(),
        DescribeParametersRequest {
            parameter_filters: Some(vec![ParameterStringFilter {
                key: "Name".into(),
                option: Some("BeginsWith".into()),
                values: Some(vec!["/b".into()]),
            }]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(d.parameters.unwrap()[0].name.as_deref(), Some("/b/other"));
    // History keeps every version.
    put_p(&s, "top", "w", None, true).unwrap();
    let h = history(
        &s,
        &ctx(),
        GetParameterHistoryRequest {
            name: "top".into(),
            ..Default::default()
        },
    )
    .unwrap()
    .parameters
    .unwrap();
    let values: Vec<_> = h.iter().map(|p| p.value.clone().unwrap()).collect();
    assert_eq!(values, vec!["v", "w"]);
}

#[test]
fn labels_move_between_versions() {
    let (_d, s) = ssm();
    put_p(&s, "/l", "one", Some(ParameterType::String), false).unwrap();
    put_p(&s, "/l", "two", None, true).unwrap();
    let r = label(
        &s,
        &ctx(),
        LabelParameterVersionRequest {
            name: "/l".into(),
            labels: vec!["prod".into(), "1bad".into()],
            parameter_version: Some(1),
        },
    )
    .unwrap();
    assert_eq!(r.invalid_labels.unwrap(), vec!["1bad"]);
    assert_eq!(get_v(&s, "/l:prod", false).unwrap().value.unwrap(), "one");
    label(
        &s,
        &ctx(),
        LabelParameterVersionRequest {
            name: "/l".into(),
            labels: vec!["prod".into()],
            parameter_version: None,
        },
    )
    .unwrap();
    assert_eq!(get_v(&s, "/l:prod", false).unwrap().value.unwrap(), "two");
    let u = unlabel(
        &s,
        &ctx(),
        UnlabelParameterVersionRequest {
            name: "/l".into(),
            labels: vec!["prod".into(), "other".into()],
            parameter_version: 2,
        },
    )
    .unwrap();
    assert_eq!(u.removed_labels.unwrap(), vec!["prod"]);
    assert_eq!(u.invalid_labels.unwrap(), vec!["other"]);
    assert_eq!(
        get_v(&s, "/l:prod", false).unwrap_err().code,
        "ParameterVersionNotFound"
    );
}

#[test]
fn limits_patterns_tiers_and_deletes() {
    let (_d, s) = ssm();
    let long = "x".repeat(4097);
    let r = put_p(&s, "/big", &long, Some(ParameterType::String), false);
    assert_eq!(r.unwrap(), 1);
    let meta = describe(&s, &ctx(), DescribeParametersRequest::default())
        .unwrap()
        .parameters
        .unwrap();
    assert_eq!(meta[0].tier, Some(ParameterTier::Advanced));
    let r = put(
        &s,
        &ctx(),
        PutParameterRequest {
            name: "/std".into(),
            value: long.clone(),
            r#type: Some(ParameterType::String),
            tier: Some(ParameterTier::Standard),
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap_err().code, "ValidationException");
    let r = put(
        &s,
        &ctx(),
        PutParameterRequest {
            name: "/num".into(),
            value: "abc".into(),
            r#type: Some(ParameterType::String),
            allowed_pattern: Some("^\\d+$".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap_err().code, "ParameterPatternMismatchException");
    // A refused call changes nothing.
    assert_eq!(
        get_v(&s, "/num", false).unwrap_err().code,
        "ParameterNotFound"
    );
    let deep = "/l".repeat(16);
    assert_eq!(
        put_p(&s, &deep, "x", Some(ParameterType::String), false)
            .unwrap_err()
            .code,
        "HierarchyLevelLimitExceededException"
    );
    let del = delete_many(
        &s,
        &ctx(),
        DeleteParametersRequest {
            names: vec!["/big".into(), "/ghost".into()],
        },
    )
    .unwrap();
    assert_eq!(del.deleted_parameters.unwrap(), vec!["/big"]);
    assert_eq!(del.invalid_parameters.unwrap(), vec!["/ghost"]);
    assert_eq!(
        delete(
            &s,
            &ctx(),
            DeleteParameterRequest {
                name: "/big".into()
            }
        )
        .unwrap_err()
        .code,
        "ParameterNotFound"
    );
}

#[test]
fn the_oldest_of_a_hundred_versions_leaves_unless_labelled() {
    let (_d, s) = ssm();
    put_p(&s, "/v", "0", Some(ParameterType::String), false).unwrap();
    for i in 1..100 {
        put_p(&s, "/v", &i.to_string(), None, true).unwrap();
    }
    assert_eq!(put_p(&s, "/v", "100", None, true).unwrap(), 101);
    assert_eq!(
        get_v(&s, "/v:1", false).unwrap_err().code,
        "ParameterVersionNotFound"
    );
    label(
        &s,
        &ctx(),
        LabelParameterVersionRequest {
            name: "/v".into(),
            labels: vec!["keep".into()],
            parameter_version: Some(2),
        },
    )
    .unwrap();
    assert_eq!(
        put_p(&s, "/v", "101", None, true).unwrap_err().code,
        "ParameterMaxVersionLimitExceeded"
    );
}

#[test]
fn tags_on_parameters() {
    let (_d, s) = ssm();
    put(
        &s,
        &ctx(),
        PutParameterRequest {
            name: "/t".into(),
            value: "x".into(),
            r#type: Some(ParameterType::String),
            tags: Some(vec![Tag {
                key: "team".into(),
                value: "a".into(),
            }]),
            ..Default::default()
        },
    )
    .unwrap();
    let with_overwrite = put(
        &s,
        &ctx(),
        PutParameterRequest {
            name: "/t".into(),
            value: "y".into(),
            overwrite: Some(true),
            tags: Some(vec![Tag {
                key: "team".into(),
                value: "b".into(),
            }]),
            ..Default::default()
        },
    );
    assert_eq!(with_overwrite.unwrap_err().code, "ValidationException");
    add_tags(
        &s,
        &ctx(),
        AddTagsToResourceRequest {
            resource_id: "/t".into(),
            resource_type: ResourceTypeForTagging::Parameter,
            tags: vec![Tag {
                key: "env".into(),
                value: "prod".into(),
            }],
        },
    )
    .unwrap();
    let list = |s: &Ssm| {
        list_tags(
            s,
            &ctx(),
            ListTagsForResourceRequest {
                resource_id: "/t".into(),
                resource_type: ResourceTypeForTagging::Parameter,
            },
        )
        .unwrap()
        .tag_list
        .unwrap()
        .into_iter()
        .map(|t| t.key)
        .collect::<Vec<_>>()
    };
    assert_eq!(list(&s), vec!["team", "env"]);
    remove_tags(
        &s,
        &ctx(),
        RemoveTagsFromResourceRequest {
            resource_id: "/t".into(),
            resource_type: ResourceTypeForTagging::Parameter,
            tag_keys: vec!["team".into()],
        },
    )
    .unwrap();
    assert_eq!(list(&s), vec!["env"]);
    let missing = list_tags(
        &s,
        &ctx(),
        ListTagsForResourceRequest {
            resource_id: "/none".into(),
            resource_type: ResourceTypeForTagging::Parameter,
        },
    );
    assert_eq!(missing.unwrap_err().code, "InvalidResourceId");
}
