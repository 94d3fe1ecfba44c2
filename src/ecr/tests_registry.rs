//! The registry in-process: repositories, pushes, tags, deletions,
//! lifecycle enforcement and the collector, over a real store and blob
//! files in a temp dir, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use super::collector::{Collector, UNREFERENCED_GRACE_MS};
use super::names::{digest_of, Reference};
use super::shapes::*;
use super::{images, layers, policies, repositories, Ecr};
use crate::clock::{Clock, ManualClock};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::events::Bus;
use crate::settings::Settings;
use crate::store::Store;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_790_000_000_000;

struct World {
    _dir: tempfile::TempDir,
    ecr: Arc<Ecr>,
    clock: Arc<ManualClock>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let clock = Arc::new(ManualClock::at_ms(T0));
        let ecr = Arc::new(
            Ecr::open(
                store,
                Bus::new(),
                &Settings::default(),
                &dir.path().join("registry"),
                clock.clone(),
            )
            .unwrap(),
        );
        World {
            _dir: dir,
            ecr,
            clock,
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx::internal("000000000000", "us-east-1", self.clock.now_ms())
    }

    fn create(&self, name: &str, mutability: ImageTagMutability) {
        repositories::create(
            &self.ecr,
            &self.ctx(),
            CreateRepositoryRequest {
                repository_name: name.into(),
                image_tag_mutability: Some(mutability),
                ..Default::default()
            },
        )
        .unwrap();
    }

    fn repo(&self, name: &str) -> repositories::Repo {
        self.ecr
            .store
            .read(|c| repositories::require(c, "000000000000", "us-east-1", name))
            .unwrap()
    }

    /// Upload `layer` (and a config) into `repo` as blobs; the manifest
    /// of an image made of them.
    fn upload(&self, repo: &str, layer: &[u8]) -> Vec<u8> {
        let r = self.repo(repo);
        let config = format!("{{\"config\":{{}},\"layer\":\"{}\"}}", digest_of(layer));
        let mut descriptors = Vec::new();
        for bytes in [config.as_bytes(), layer] {
            let d = self.ecr.blobs.put(bytes).unwrap();
            self.ecr
                .store
                .write(|tx| layers::link(tx, r.id, &d, bytes.len() as i64, self.clock.now_ms()))
                .unwrap();
            descriptors.push(serde_json::json!({"mediaType": "application/octet-stream", "digest": d, "size": bytes.len()}));
        }
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": super::manifest::DOCKER_V2,
            "config": descriptors[0],
            "layers": [descriptors[1]],
        })
        .to_string()
        .into_bytes()
    }

    fn push(&self, repo: &str, manifest: &[u8], tag: Option<&str>) -> Result<String, ApiError> {
        let r = self.repo(repo);
        let now = self.clock.now_ms();
        self.ecr
            .store
            .write(|tx| images::push(tx, &r, manifest, None, tag, None, now))
            .map(|p| p.digest)
    }

    fn tags(&self, repo: &str) -> Vec<(String, Vec<String>)> {
        let r = self.repo(repo);
        self.ecr
            .store
            .read(|c| images::all(c, r.id))
            .unwrap()
            .into_iter()
            .map(|i| (i.digest, i.tags))
            .collect()
    }
}

#[test]
fn an_immutable_tag_cannot_move_by_either_path() {
    let w = World::new();
    w.create("team/app", ImageTagMutability::Immutable);
    let m1 = w.upload("team/app", b"layer one");
    let m2 = w.upload("team/app", b"layer two");
    let d1 = w.push("team/app", &m1, Some("v1")).unwrap();
    let e = w.push("team/app", &m2, Some("v1")).unwrap_err();
    assert_eq!(e.code, "ImageTagAlreadyExistsException");
    let e = images::put_image(
        &w.ecr,
        &w.ctx(),
        PutImageRequest {
            image_manifest: String::from_utf8(m2.clone()).unwrap(),
            image_tag: Some("v1".into()),
            repository_name: "team/app".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "ImageTagAlreadyExistsException");
    // Nothing changed: v1 is still the first image, the second is absent.
    assert_eq!(
        w.tags("team/app"),
        vec![(d1.clone(), vec!["v1".to_string()])]
    );
    // The same manifest again under the same tag is no move.
    assert!(w.push("team/app", &m1, Some("v1")).is_ok());
    // With an exclusion, `latest` may move while the rest stays fixed.
    repositories::put_tag_mutability(
        &w.ecr,
        &w.ctx(),
        PutImageTagMutabilityRequest {
            image_tag_mutability: ImageTagMutability::ImmutableWithExclusion,
            image_tag_mutability_exclusion_filters: Some(vec![ImageTagMutabilityExclusionFilter {
                filter: "latest".into(),
                filter_type: ImageTagMutabilityExclusionFilterType::Wildcard,
            }]),
            repository_name: "team/app".into(),
            ..Default::default()
        },
    )
    .unwrap();
    w.push("team/app", &m1, Some("latest")).unwrap();
    let d2 = w.push("team/app", &m2, Some("latest")).unwrap();
    assert_ne!(d1, d2);
    assert_eq!(
        w.push("team/app", &m2, Some("v1")).unwrap_err().code,
        "ImageTagAlreadyExistsException"
    );
}

#[test]
fn a_manifest_naming_a_layer_the_repository_lacks_is_refused() {
    let w = World::new();
    w.create("aa", ImageTagMutability::Mutable);
    w.create("bb", ImageTagMutability::Mutable);
    let m = w.upload("aa", b"only in a");
    let e = w.push("bb", &m, Some("v1")).unwrap_err();
    assert_eq!(e.code, "LayersNotFoundException");
    assert!(w.tags("bb").is_empty());
    let e = w.push("aa", b"{not json", Some("v1")).unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let e = w.push("aa", &m, Some(".bad")).unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(w.tags("aa").is_empty());
}

#[test]
fn deleting_a_tag_deletes_the_image_only_with_its_last_tag() {
    let w = World::new();
    w.create("app", ImageTagMutability::Mutable);
    let m = w.upload("app", b"content");
    let d = w.push("app", &m, Some("v1")).unwrap();
    w.push("app", &m, Some("v2")).unwrap();
    let r = w.repo("app");
    let out = w
        .ecr
        .store
        .write(|tx| images::delete(tx, r.id, &Reference::Tag("v2".into()), T0))
        .unwrap();
    assert_eq!(out, Ok(d.clone()));
    assert_eq!(w.tags("app"), vec![(d.clone(), vec!["v1".to_string()])]);
    w.ecr
        .store
        .write(|tx| images::delete(tx, r.id, &Reference::Tag("v1".into()), T0))
        .unwrap()
        .unwrap();
    assert!(w.tags("app").is_empty());
    // Its layers stay through the grace (a push under way may count on
    // them), then leave the repository.
    let layers = |w: &World| -> i64 {
        w.ecr
            .store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM ecr_layers WHERE repository_id = ?1",
                    [r.id],
                    |row| row.get(0),
                )?)
            })
            .unwrap()
    };
    assert_eq!(layers(&w), 2);
    w.clock.advance_ms(UNREFERENCED_GRACE_MS + 1);
    let mut collector = Collector::new(w.ecr.clone(), DAY);
    collector.file_grace = Duration::ZERO;
    assert_eq!(collector.collect(w.clock.now_ms()).unwrap().unlinked, 2);
    assert_eq!(layers(&w), 0);
}

#[test]
fn an_index_keeps_the_images_it_references() {
    let w = World::new();
    w.create("multi", ImageTagMutability::Mutable);
    let amd = w.upload("multi", b"amd64 layer");
    let arm = w.upload("multi", b"arm64 layer");
    let d_amd = w.push("multi", &amd, None).unwrap();
    let d_arm = w.push("multi", &arm, None).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": super::manifest::OCI_INDEX,
        "manifests": [
            {"mediaType": super::manifest::DOCKER_V2, "digest": d_amd, "size": amd.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": super::manifest::DOCKER_V2, "digest": d_arm, "size": arm.len(), "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    })
    .to_string();
    let d_index = w.push("multi", index.as_bytes(), Some("v1")).unwrap();
    let r = w.repo("multi");
    let image = w
        .ecr
        .store
        .read(|c| images::by_digest(c, r.id, &d_index))
        .unwrap()
        .unwrap();
    assert_eq!(image.media_type, super::manifest::OCI_INDEX);
    assert_eq!(image.size, 11 + 11);
    let out = images::batch_delete_image(
        &w.ecr,
        &w.ctx(),
        BatchDeleteImageRequest {
            image_ids: vec![ImageIdentifier {
                image_digest: Some(d_arm.clone()),
                image_tag: None,
            }],
            repository_name: "multi".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        out.failures.unwrap()[0].failure_code,
        Some(ImageFailureCode::ImageReferencedByManifestList)
    );
    // An index naming an image the repository lacks is refused.
    let dangling = index.replace(&d_arm, &digest_of(b"nothing"));
    assert_eq!(
        w.push("multi", dangling.as_bytes(), Some("v2"))
            .unwrap_err()
            .code,
        "ReferencedImagesNotFoundException"
    );
}

fn policy(rules: serde_json::Value) -> String {
    serde_json::json!({ "rules": rules }).to_string()
}

#[test]
fn lifecycle_policies_expire_what_their_preview_shows_and_free_the_files() {
    let w = World::new();
    w.create("ttl", ImageTagMutability::Mutable);
    // An image pushed as v1, then v1 moved to a newer image: the first is
    // left untagged.
    let old = w.upload("ttl", b"old layer");
    let d_old = w.push("ttl", &old, Some("v1")).unwrap();
    w.clock.advance_ms(2 * DAY);
    let new = w.upload("ttl", b"new layer");
    let d_new = w.push("ttl", &new, Some("v1")).unwrap();
    let text = policy(serde_json::json!([{
        "rulePriority": 1, "description": "untagged for a day",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
        "action": {"type": "expire"}
    }]));
    // A bad policy is refused and changes nothing.
    let bad = text.replace("\"days\"", "\"weeks\"");
    let e = policies::put(
        &w.ecr,
        &w.ctx(),
        PutLifecyclePolicyRequest {
            lifecycle_policy_text: bad,
            repository_name: "ttl".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(w.repo("ttl").lifecycle_policy.is_none());
    policies::put(
        &w.ecr,
        &w.ctx(),
        PutLifecyclePolicyRequest {
            lifecycle_policy_text: text,
            repository_name: "ttl".into(),
            ..Default::default()
        },
    )
    .unwrap();
    policies::start_preview(
        &w.ecr,
        &w.ctx(),
        StartLifecyclePolicyPreviewRequest {
            repository_name: "ttl".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let preview = policies::get_preview(
        &w.ecr,
        &w.ctx(),
        GetLifecyclePolicyPreviewRequest {
            repository_name: "ttl".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let previewed: Vec<String> = preview
        .preview_results
        .unwrap()
        .into_iter()
        .map(|r| r.image_digest.unwrap())
        .collect();
    assert_eq!(previewed, vec![d_old.clone()]);
    assert_eq!(preview.summary.unwrap().expiring_image_total_count, Some(1));
    let files_before = w.ecr.blobs.list().unwrap().len();
    let mut collector = Collector::new(w.ecr.clone(), DAY);
    collector.file_grace = Duration::ZERO;
    let done = collector.collect(w.clock.now_ms()).unwrap();
    assert_eq!(done.expired, 1);
    assert_eq!(w.tags("ttl"), vec![(d_new.clone(), vec!["v1".to_string()])]);
    assert_eq!(done.files_removed, 0, "the layers' grace has not passed");
    // After the grace the old image's layer and config are gone from the
    // disk, the new one's are kept.
    w.clock.advance_ms(UNREFERENCED_GRACE_MS + 1);
    let done = collector.collect(w.clock.now_ms()).unwrap();
    assert_eq!(done.files_removed, 2);
    assert_eq!(w.ecr.blobs.list().unwrap().len(), files_before - 2);
    assert_eq!(
        w.ecr.blobs.size(&digest_of(b"old layer")),
        None,
        "the expired layer's file is removed"
    );
    assert!(w.ecr.blobs.size(&digest_of(b"new layer")).is_some());
    // Not due again until the interval has passed.
    let again = collector.collect(w.clock.now_ms()).unwrap();
    assert_eq!(again.expired, 0);
    let got = policies::get(
        &w.ecr,
        &w.ctx(),
        GetLifecyclePolicyRequest {
            repository_name: "ttl".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(got.last_evaluated_at.is_some());
}

#[test]
fn a_blob_no_image_came_to_use_is_unlinked_after_the_grace() {
    let w = World::new();
    w.create("app", ImageTagMutability::Mutable);
    let _manifest = w.upload("app", b"sent, never used");
    let mut collector = Collector::new(w.ecr.clone(), DAY);
    collector.file_grace = Duration::ZERO;
    let r = w.repo("app");
    let linked = |w: &World| {
        w.ecr
            .store
            .read(|c| layers::linked(c, r.id, &digest_of(b"sent, never used")))
            .unwrap()
    };
    assert_eq!(collector.collect(w.clock.now_ms()).unwrap().unlinked, 0);
    assert!(linked(&w).is_some(), "a push in progress keeps its layers");
    w.clock.advance_ms(UNREFERENCED_GRACE_MS + 1);
    let done = collector.collect(w.clock.now_ms()).unwrap();
    assert_eq!(done.unlinked, 2);
    assert!(linked(&w).is_none());
    assert_eq!(done.files_removed, 2);
}

#[test]
fn repository_errors_change_nothing() {
    let w = World::new();
    w.create("app", ImageTagMutability::Mutable);
    let ctx = w.ctx();
    let create = |name: &str| {
        repositories::create(
            &w.ecr,
            &ctx,
            CreateRepositoryRequest {
                repository_name: name.into(),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        create("app").unwrap_err().code,
        "RepositoryAlreadyExistsException"
    );
    assert_eq!(
        create("Bad_Name").unwrap_err().code,
        "InvalidParameterException"
    );
    let m = w.upload("app", b"x");
    w.push("app", &m, Some("v1")).unwrap();
    let delete = |force| {
        repositories::delete(
            &w.ecr,
            &ctx,
            DeleteRepositoryRequest {
                repository_name: "app".into(),
                force: Some(force),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        delete(false).unwrap_err().code,
        "RepositoryNotEmptyException"
    );
    assert_eq!(w.tags("app").len(), 1);
    delete(true).unwrap();
    let e = w
        .ecr
        .store
        .read(|c| repositories::require(c, "000000000000", "us-east-1", "app"))
        .unwrap_err();
    assert_eq!(e.code, "RepositoryNotFoundException");
    // Its blobs go at the collector's pass.
    let mut collector = Collector::new(w.ecr.clone(), DAY);
    collector.file_grace = Duration::ZERO;
    assert_eq!(
        collector.collect(w.clock.now_ms()).unwrap().files_removed,
        2
    );
}
