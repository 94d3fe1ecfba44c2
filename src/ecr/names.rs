//! Names in the registry (pure): repository names, tags and digests as ECR
//! and the distribution protocol check them, and the image references of
//! task definitions that name an ECR registry
//! (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`).

use std::sync::OnceLock;

use regex::Regex;

/// ECR's repository name rule (the model's `RepositoryName` pattern), with
/// its length bounds.
pub fn valid_repository_name(name: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
            .expect("static regex")
    });
    (2..=256).contains(&name.len()) && re.is_match(name)
}

/// The distribution protocol's tag rule: `[\w][\w.-]{0,127}`, which is also
/// what the docker CLI accepts.
pub fn valid_tag(tag: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re =
        RE.get_or_init(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("static re"));
    re.is_match(tag)
}

/// A content digest, `sha256:<64 lowercase hex>` (the only algorithm the
/// registry stores).
pub fn valid_digest(digest: &str) -> bool {
    hex_of(digest).is_some()
}

/// The hex part of a valid `sha256:` digest.
pub fn hex_of(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// A digest of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What an image reference points at in its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    /// A manifest reference as the protocol gives it: a digest if it looks
    /// like one, else a tag.
    pub fn parse(s: &str) -> Reference {
        if s.contains(':') {
            Reference::Digest(s.to_string())
        } else {
            Reference::Tag(s.to_string())
        }
    }
}

/// An image reference naming an ECR registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    pub reference: Reference,
}

impl EcrImage {
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`
    /// (also `.amazonaws.com.cn`, and the FIPS and dual-stack forms); a tag
    /// defaults to `latest` as with docker.
    pub fn parse(image: &str) -> Option<EcrImage> {
        static RE: OnceLock<Regex> = OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(
                r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)/([^:@]+)(?::([^@]+))?(?:@(sha256:[0-9a-f]{64}))?$",
            )
            .expect("static regex")
        });
        let c = re.captures(image)?;
        let repository = c[3].to_string();
        if !valid_repository_name(&repository) {
            return None;
        }
        let reference = match (c.get(5), c.get(4)) {
            (Some(d), _) => Reference::Digest(d.as_str().to_string()),
            (None, Some(t)) => Reference::Tag(t.as_str().to_string()),
            (None, None) => Reference::Tag("latest".to_string()),
        };
        Some(EcrImage {
            account: c[1].to_string(),
            region: c[2].to_string(),
            repository,
            reference,
        })
    }

    /// The same image in the registry at `host` (`127.0.0.1:4566`).
    pub fn at(&self, host: &str) -> String {
        match &self.reference {
            Reference::Tag(t) => format!("{host}/{}:{t}", self.repository),
            Reference::Digest(d) => format!("{host}/{}@{d}", self.repository),
        }
    }
}

/// A repository's ARN.
pub fn repository_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:ecr:{region}:{account}:repository/{name}")
}

/// The (region, account, name) of a repository ARN.
pub fn parse_repository_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:ecr:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account, rest) = rest.split_once(':')?;
    let name = rest.strip_prefix("repository/")?;
    Some((region, account, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr() {
        for ok in ["ab", "team/app", "a.b_c__d-e--f", "x/y/z0"] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in ["a", "Bad_Name", "-a", "a/", "/a", "a//b", "a..b", "a_"] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("v1.2-rc_3"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(&"a".repeat(129)));
        let d = digest_of(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(valid_digest(&d));
        assert!(!valid_digest("sha256:ABC"));
        assert!(!valid_digest("md5:e3b0"));
    }

    #[test]
    fn ecr_references_parse() {
        let i =
            EcrImage::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:v1").unwrap();
        assert_eq!(i.account, "123456789012");
        assert_eq!(i.region, "eu-west-1");
        assert_eq!(i.repository, "team/app");
        assert_eq!(i.reference, Reference::Tag("v1".into()));
        assert_eq!(i.at("127.0.0.1:4566"), "127.0.0.1:4566/team/app:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let i = EcrImage::parse(&format!(
            "000000000000.dkr.ecr.us-east-1.amazonaws.com/app@{d}"
        ))
        .unwrap();
        assert_eq!(i.reference, Reference::Digest(d.clone()));
        assert_eq!(i.at("h:1"), format!("h:1/app@{d}"));
        let i = EcrImage::parse("000000000000.dkr.ecr.us-east-1.amazonaws.com/app").unwrap();
        assert_eq!(i.reference, Reference::Tag("latest".into()));
        assert!(EcrImage::parse("docker.io/library/nginx:1").is_none());
        assert!(EcrImage::parse("12345.dkr.ecr.us-east-1.amazonaws.com/app").is_none());
    }

    #[test]
    fn arns_round_trip() {
        let arn = repository_arn("000000000000", "us-east-1", "team/app");
        assert_eq!(
            arn,
            "arn:aws:ecr:us-east-1:000000000000:repository/team/app"
        );
        assert_eq!(
            parse_repository_arn(&arn),
            Some(("us-east-1", "000000000000", "team/app"))
        );
    }
}
