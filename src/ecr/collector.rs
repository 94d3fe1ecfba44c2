//! The registry's collector, a controller: it enforces each repository's
//! lifecycle policy on its schedule (`--ecr-lifecycle-interval-seconds`,
//! and at once after a policy is put), unlinks blobs a repository was sent
//! but no image of it came to use, removes the files of blobs no
//! repository holds, and drops abandoned uploads. So storage is actually
//! freed, not only hidden.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{layers, policies, repositories, Ecr};
use crate::controllers::Controller;
use crate::error::ApiResult;

/// A blob a repository was sent but no image of it references is unlinked
/// after this long (a push sends its layers before its manifest).
pub const UNREFERENCED_GRACE_MS: i64 = 3_600_000;
/// An upload untouched this long is abandoned.
pub const UPLOAD_TTL_MS: i64 = 24 * 3_600_000;
/// A blob file no repository holds is removed once it is this old (its
/// link may be about to be written).
pub const FILE_GRACE: Duration = Duration::from_secs(60);

pub struct Collector {
    pub ecr: Arc<Ecr>,
    /// How often each repository's lifecycle policy is enforced.
    pub lifecycle_interval_ms: i64,
    /// How old an unheld blob file must be to be removed ([`FILE_GRACE`]).
    pub file_grace: Duration,
}

impl Collector {
    pub fn new(ecr: Arc<Ecr>, lifecycle_interval_ms: i64) -> Collector {
        Collector {
            ecr,
            lifecycle_interval_ms,
            file_grace: FILE_GRACE,
        }
    }
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub expired: usize,
    pub unlinked: usize,
    pub files_removed: usize,
    pub bytes_freed: u64,
}

impl Collector {
    /// One pass, at `now_ms`.
    pub fn collect(&self, now_ms: i64) -> ApiResult<Collected> {
        let ecr = &self.ecr;
        let mut out = Collected::default();
        let repos = ecr.store.read(repositories::all)?;
        for r in repos.iter().filter(|r| r.lifecycle_policy.is_some()) {
            let due = r
                .lifecycle_updated
                .is_none_or(|at| now_ms - at >= self.lifecycle_interval_ms);
            if due {
                // One repository's failure does not stop the rest.
                match policies::enforce(ecr, r.id, now_ms) {
                    Ok(expired) => {
                        if !expired.is_empty() {
                            tracing::info!(repository = %r.name, images = expired.len(), "lifecycle policy expired images");
                        }
                        out.expired += expired.len();
                    }
                    Err(e) => {
                        tracing::warn!(repository = %r.name, error = %e, "lifecycle policy not enforced")
                    }
                }
            }
        }
        out.unlinked = ecr.store.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM ecr_layers WHERE linked_at < ?1 AND NOT EXISTS (SELECT 1 FROM ecr_image_refs r \
                 WHERE r.repository_id = ecr_layers.repository_id AND r.ref_digest = ecr_layers.digest)",
                [now_ms - UNREFERENCED_GRACE_MS],
            )?)
        })?;
        let files = ecr.blobs.list().map_err(layers::io_error)?;
        let old_enough = std::time::SystemTime::now() - self.file_grace;
        for (digest, size) in files {
            if ecr.blobs.modified(&digest).is_none_or(|m| m >= old_enough) {
                continue;
            }
            // Checked and removed under the store's writer, so no link to
            // it is written meanwhile (a finishing upload makes the file
            // young again before it links it).
            let removed = ecr.store.write(|tx| {
                if layers::linked_anywhere(tx, &digest)?
                    || ecr.blobs.modified(&digest).is_none_or(|m| m >= old_enough)
                {
                    return Ok(false);
                }
                ecr.blobs.remove(&digest).map_err(layers::io_error)?;
                Ok(true)
            })?;
            if removed {
                out.files_removed += 1;
                out.bytes_freed += size;
            }
        }
        let stale: Vec<String> = ecr
            .store
            .read(layers::uploads)?
            .into_iter()
            .filter(|(id, started)| {
                now_ms - started > UPLOAD_TTL_MS
                    && ecr.blobs.upload_modified(id).is_none_or(|m| {
                        m < std::time::SystemTime::now()
                            - Duration::from_millis(UPLOAD_TTL_MS as u64)
                    })
            })
            .map(|(id, _)| id)
            .collect();
        for id in stale {
            ecr.blobs.cancel(&id);
            ecr.store.write(|tx| layers::forget_upload(tx, &id))?;
        }
        // Upload files nothing records (their repository was deleted, or
        // the process stopped between making the file and its row).
        let known: std::collections::HashSet<String> = ecr
            .store
            .read(layers::uploads)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let abandoned = std::time::SystemTime::now() - self.file_grace.max(FILE_GRACE);
        for (id, modified) in ecr.blobs.upload_files().map_err(layers::io_error)? {
            if !known.contains(&id) && modified < abandoned {
                ecr.blobs.cancel(&id);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Controller for Collector {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn tick(&self) -> Duration {
        Duration::from_millis(self.lifecycle_interval_ms.clamp(1_000, 60_000) as u64)
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let now = self.ecr.clock.now_ms();
        let done = tokio::task::block_in_place(|| self.collect(now))?;
        if done.files_removed > 0 {
            tracing::info!(
                files = done.files_removed,
                bytes = done.bytes_freed,
                "registry storage freed"
            );
        }
        Ok(())
    }
}
