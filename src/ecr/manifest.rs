//! Image manifests (pure): which kind a manifest is, what it references,
//! how big the image is, and which of an index's manifests serves a
//! platform. Docker schema 2 and OCI image manifests reference a config
//! and layers (blobs); Docker manifest lists and OCI indexes reference
//! other manifests.

use serde::Deserialize;

pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub artifact_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    /// The config's media type, or the OCI `artifactType`: ECR's
    /// `artifactMediaType`.
    pub artifact_media_type: Option<String>,
    pub kind: Kind,
    /// The manifest this one refers to (OCI referrers).
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An image: its config and its layers, blobs of the repository.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An index or manifest list: manifests of the repository.
    Index { manifests: Vec<Descriptor> },
}

impl Manifest {
    /// Parse `bytes`, whose media type the client declared as `declared`
    /// (the `Content-Type` of a push, `imageManifestMediaType` of
    /// PutImage); the manifest's own `mediaType` wins when both are given
    /// and they disagree is an error.
    pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<Manifest, String> {
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
        if raw.schema_version != Some(2) {
            return Err("the manifest's schemaVersion must be 2".to_string());
        }
        let declared = declared
            .map(|d| d.split(';').next().unwrap_or_default().trim())
            .filter(|d| !d.is_empty() && *d != "application/json");
        let media_type = match (raw.media_type.as_deref(), declared) {
            (Some(own), Some(d)) if own != d => {
                return Err(format!(
                    "the manifest's mediaType {own} is not the declared {d}"
                ))
            }
            (Some(own), _) => own.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
            (None, None) => OCI_MANIFEST.to_string(),
        };
        let kind = match media_type.as_str() {
            DOCKER_V2 | OCI_MANIFEST => {
                let config = raw
                    .config
                    .ok_or_else(|| "an image manifest needs a config".to_string())?;
                let layers = raw.layers.unwrap_or_default();
                Kind::Image { config, layers }
            }
            DOCKER_LIST | OCI_INDEX => Kind::Index {
                manifests: raw
                    .manifests
                    .ok_or_else(|| "an index needs its manifests".to_string())?,
            },
            other => return Err(format!("unsupported manifest media type {other}")),
        };
        let refs: Vec<&Descriptor> = match &kind {
            Kind::Image { config, layers } => std::iter::once(config).chain(layers).collect(),
            Kind::Index { manifests } => manifests.iter().collect(),
        };
        for d in refs {
            if !super::names::valid_digest(&d.digest) {
                return Err(format!("invalid digest {} in the manifest", d.digest));
            }
            if d.size < 0 {
                return Err(format!("negative size for {}", d.digest));
            }
        }
        let artifact_media_type = raw.artifact_type.or_else(|| match &kind {
            Kind::Image { config, .. } => Some(config.media_type.clone()),
            Kind::Index { .. } => None,
        });
        Ok(Manifest {
            media_type,
            artifact_media_type: artifact_media_type.filter(|t| !t.is_empty()),
            kind,
            subject: raw.subject.map(|s| s.digest),
        })
    }

    /// The blobs an image manifest references (config first).
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.kind {
            Kind::Image { config, layers } => std::iter::once(config).chain(layers).collect(),
            Kind::Index { .. } => Vec::new(),
        }
    }

    /// The manifests an index references.
    pub fn children(&self) -> &[Descriptor] {
        match &self.kind {
            Kind::Index { manifests } => manifests,
            Kind::Image { .. } => &[],
        }
    }

    /// ECR's `imageSizeInBytes` of an image manifest: the sum of its
    /// layers (what is stored and pulled). An index's size is given by the
    /// caller from its children.
    pub fn layers_size(&self) -> i64 {
        match &self.kind {
            Kind::Image { layers, .. } => layers.iter().map(|l| l.size).sum(),
            Kind::Index { .. } => 0,
        }
    }

    /// The digest of the index entry for `os/arch[/variant]`.
    pub fn for_platform(&self, os: &str, arch: &str) -> Option<&str> {
        self.children()
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == os && p.architecture == arch)
            })
            .map(|d| d.digest.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn docker_image_manifest() {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('a'), "size": 10},
            "layers": [{"mediaType": "x", "digest": d('b'), "size": 100}, {"mediaType": "x", "digest": d('c'), "size": 50}],
        });
        let m = Manifest::parse(m.to_string().as_bytes(), Some(DOCKER_V2)).unwrap();
        assert_eq!(m.media_type, DOCKER_V2);
        assert_eq!(m.layers_size(), 150);
        assert_eq!(m.blobs().len(), 3);
        assert_eq!(
            m.artifact_media_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
    }

    #[test]
    fn index_by_platform() {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d('a'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": d('b'), "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
            ],
        });
        let m = Manifest::parse(m.to_string().as_bytes(), None).unwrap();
        assert_eq!(m.for_platform("linux", "arm64"), Some(d('b').as_str()));
        assert_eq!(m.for_platform("linux", "s390x"), None);
        assert!(m.blobs().is_empty());
    }

    #[test]
    fn bad_manifests_are_refused() {
        assert!(Manifest::parse(b"nope", None).is_err());
        let v1 = serde_json::json!({"schemaVersion": 1});
        assert!(Manifest::parse(v1.to_string().as_bytes(), None).is_err());
        let no_config =
            serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_V2, "layers": []});
        assert!(Manifest::parse(no_config.to_string().as_bytes(), None).is_err());
        let bad_digest = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_V2,
            "config": {"digest": "sha256:xyz", "size": 1}});
        assert!(Manifest::parse(bad_digest.to_string().as_bytes(), None).is_err());
        let mismatch = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_V2,
            "config": {"digest": d('a'), "size": 1}});
        assert!(Manifest::parse(mismatch.to_string().as_bytes(), Some(OCI_INDEX)).is_err());
    }
}
