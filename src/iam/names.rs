//! IAM's names, paths, ids and ARNs (pure).

use super::Kind;

/// The characters of IAM's unique ids and access key ids.
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A unique id as IAM makes them: a four-letter prefix naming the kind of
/// resource (`AIDA` users, `AROA` roles, `AGPA` groups, `ANPA` policies,
/// `AIPA` instance profiles, `AKIA` access keys, `ASIA` temporary keys)
/// and random letters and digits, `len` characters in all.
pub fn new_id(prefix: &str, len: usize, random: &mut impl rand::Rng) -> String {
    let mut id = String::with_capacity(len);
    id.push_str(prefix);
    while id.len() < len {
        id.push(ID_ALPHABET[random.gen_range(0..ID_ALPHABET.len())] as char);
    }
    id
}

/// A secret access key: 40 characters of base64's alphabet.
pub fn new_secret(random: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..40)
        .map(|_| ALPHABET[random.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A session token: 256 random bits, base64, behind a marker that says
/// what it is.
pub fn new_session_token(random: &mut impl rand::Rng) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 96];
    random.fill(&mut bytes[..]);
    format!(
        "IQoJb3JpZ2luX2VjE{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The id prefix of a kind of entity.
pub fn id_prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "AIDA",
        Kind::Role => "AROA",
        Kind::Group => "AGPA",
    }
}

/// `arn:aws:iam::<account>:<kind>/<path><name>` (paths start and end
/// with `/`).
pub fn arn(account: &str, resource: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{resource}{path}{name}")
}

/// The session ARN of an assumed role.
pub fn assumed_role_arn(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

/// A path as IAM takes it: `/`, or `/` … `/` of printable ASCII, at most
/// 512 characters. The message when it is not.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters. ('{path}')"
        ))
    }
}

/// An account id, the part of an IAM ARN naming it, and its resource
/// (`user/path/name`), when `arn` is an IAM ARN.
pub fn split_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    rest.split_once(':')
}

/// The name at the end of an IAM ARN's resource (`role/a/b/name` →
/// `name`).
pub fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Whether `path` is under `prefix` (`/` holds everything).
pub fn under(path: &str, prefix: Option<&str>) -> bool {
    prefix.is_none_or(|p| path.starts_with(p))
}

/// IAM's URL-encoding of a policy document in a response (the CLI and
/// SDKs decode it): everything but unreserved characters is escaped.
pub fn encode_document(document: &str) -> String {
    let mut out = String::with_capacity(document.len() * 3 / 2);
    for b in document.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The service principal of an AWS service's service-linked role name:
/// `ecs.amazonaws.com` → `AWSServiceRoleForECS`.
pub fn service_linked_role_name(service: &str) -> Option<(&'static str, &'static str)> {
    Some(match service {
        "ecs.amazonaws.com" => ("AWSServiceRoleForECS", "AmazonECSServiceRolePolicy"),
        "autoscaling.amazonaws.com" => (
            "AWSServiceRoleForAutoScaling",
            "AutoScalingServiceRolePolicy",
        ),
        "elasticloadbalancing.amazonaws.com" => (
            "AWSServiceRoleForElasticLoadBalancing",
            "AWSElasticLoadBalancingServiceRolePolicy",
        ),
        "ecs.application-autoscaling.amazonaws.com" => (
            "AWSServiceRoleForApplicationAutoScaling_ECSService",
            "AWSApplicationAutoscalingECSServicePolicy",
        ),
        "spot.amazonaws.com" => ("AWSServiceRoleForEC2Spot", "AWSEC2SpotServiceRolePolicy"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_have_their_prefix_length_and_alphabet() {
        let mut r = rand::rngs::StdRng::seed_from_u64(1);
        let id = new_id("AIDA", 21, &mut r);
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
        assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
        let key = new_id("AKIA", 20, &mut r);
        assert_eq!(key.len(), 20);
        assert_eq!(new_secret(&mut r).len(), 40);
        assert_ne!(new_id("AIDA", 21, &mut r), id);
    }

    #[test]
    fn paths_begin_and_end_with_a_slash() {
        assert!(check_path("/").is_ok());
        assert!(check_path("/ops/team/").is_ok());
        assert!(check_path("ops/").is_err());
        assert!(check_path("/ops").is_err());
        assert!(check_path("/o ps/").is_err());
    }

    #[test]
    fn documents_are_url_encoded_as_iam_returns_them() {
        assert_eq!(
            encode_document(r#"{"A": "b/c"}"#),
            "%7B%22A%22%3A%20%22b%2Fc%22%7D"
        );
    }

    #[test]
    fn arns_and_names() {
        assert_eq!(
            arn("123456789012", "role", "/svc/", "web"),
            "arn:aws:iam::123456789012:role/svc/web"
        );
        assert_eq!(
            split_arn("arn:aws:iam::123456789012:user/a/bob"),
            Some(("123456789012", "user/a/bob"))
        );
        assert_eq!(name_of("arn:aws:iam::1:user/a/bob"), "bob");
    }
}
