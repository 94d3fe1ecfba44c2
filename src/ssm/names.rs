//! Parameter names, ARNs, selectors and labels, as Parameter Store
//! validates them (pure).

use super::validation;
use crate::error::ApiResult;

/// The longest name (SSM reserves 1037 of the model's 2048 characters for
/// the ARN around it).
pub const MAX_NAME: usize = 1011;
/// The deepest hierarchy.
pub const MAX_DEPTH: usize = 15;

/// Check a name `PutParameter` is given.
pub fn check_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(validation(format!(
            "Parameter name must be between 1 and {MAX_NAME} characters."
        )));
    }
    if name.starts_with("arn:") {
        return Err(validation(
            "Parameter name: can't be an ARN. Use the parameter name itself.",
        ));
    }
    if name.contains(' ') {
        return Err(validation("Parameter name can't contain spaces."));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
    {
        return Err(validation(format!(
            "Parameter name: {name} can only include the following letters and symbols: a-zA-Z0-9_.-/"
        )));
    }
    let bare = name.trim_start_matches('/').to_ascii_lowercase();
    if bare.starts_with("aws") || bare.starts_with("ssm") {
        return Err(validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(validation("Parameter name must be a fully qualified name."));
    }
    if name.contains("//") || (name.len() > 1 && name.ends_with('/')) {
        return Err(validation(format!(
            "Parameter name: {name} is not a valid hierarchy: sub-paths can't be empty."
        )));
    }
    if depth(name) > MAX_DEPTH {
        return Err(crate::error::ApiError::new(
            "HierarchyLevelLimitExceededException",
            format!("Parameter name hierarchy depth exceeded: {name} has {} levels; the most is {MAX_DEPTH}.", depth(name)),
        ));
    }
    Ok(())
}

/// How many levels a name has (`/a/b/c` has 3, `a` has 1).
pub fn depth(name: &str) -> usize {
    name.trim_start_matches('/').split('/').count()
}

/// A parameter's ARN: `…:parameter/a/b` for `/a/b`, `…:parameter/a` for `a`.
pub fn arn(account: &str, region: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.trim_start_matches('/')
    )
}

/// Which version a reference asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

impl Selector {
    /// The `Selector` member of an answer (`:3`, `:label`).
    pub fn text(&self) -> Option<String> {
        match self {
            Selector::Latest => None,
            Selector::Version(v) => Some(format!(":{v}")),
            Selector::Label(l) => Some(format!(":{l}")),
        }
    }
}

/// A reference to a parameter as the Get calls take it: a name or an ARN,
/// optionally followed by `:version` or `:label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The names it may be: an ARN `…:parameter/a` may name `/a` or `a`.
    pub candidates: Vec<String>,
    /// The region and account an ARN names.
    pub arn_scope: Option<(String, String)>,
    pub selector: Selector,
}

/// Read a reference; `None` when it is malformed (the caller answers
/// with its own error).
pub fn reference(text: &str) -> Option<Reference> {
    let (scope, rest) = if let Some(after) = text.strip_prefix("arn:aws:ssm:") {
        let mut parts = after.splitn(3, ':');
        let region = parts.next()?;
        let account = parts.next()?;
        let resource = parts.next()?.strip_prefix("parameter/")?;
        (Some((region.to_string(), account.to_string())), resource)
    } else {
        (None, text)
    };
    let (name, selector) = match rest.rsplit_once(':') {
        Some((n, s)) if !s.is_empty() => {
            let sel = match s.parse::<i64>() {
                Ok(v) => Selector::Version(v),
                Err(_) => Selector::Label(s.to_string()),
            };
            (n, sel)
        }
        Some(_) => return None,
        None => (rest, Selector::Latest),
    };
    if name.is_empty() {
        return None;
    }
    let candidates = if scope.is_some() {
        if name.contains('/') {
            vec![format!("/{name}")]
        } else {
            vec![format!("/{name}"), name.to_string()]
        }
    } else {
        vec![name.to_string()]
    };
    Some(Reference {
        candidates,
        arn_scope: scope,
        selector,
    })
}

/// Whether `label` is one SSM accepts: up to 100 characters of letters,
/// digits, `.`, `-` and `_`, not starting with a digit, `aws` or `ssm`.
pub fn valid_label(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label.len() <= 100
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Whether `name` lies under `path` (`/a` holds `/a/b`, and `/a/b/c`
/// only when `recursive`).
pub fn under(path: &str, name: &str, recursive: bool) -> bool {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{}/", path.trim_end_matches('/'))
    };
    match name.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_ssm_checks_them() {
        for ok in ["a", "/a", "/a/b-c/d_e.f", "app.db-url"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "/aws/x",
            "SSM-thing",
            "/a//b",
            "/a/",
            "a$",
            "arn:aws:ssm:us-east-1:000000000000:parameter/a",
        ] {
            assert_eq!(
                check_name(bad).unwrap_err().code,
                "ValidationException",
                "{bad}"
            );
        }
        let deep = "/l".repeat(16);
        assert_eq!(
            check_name(&deep).unwrap_err().code,
            "HierarchyLevelLimitExceededException"
        );
        assert!(check_name(&"/l".repeat(15)).is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn references_take_names_arns_versions_and_labels() {
        let r = reference("/app/db:3").unwrap();
        assert_eq!(r.candidates, vec!["/app/db"]);
        assert_eq!(r.selector, Selector::Version(3));
        let r = reference("arn:aws:ssm:eu-west-1:123456789012:parameter/app/db:prod").unwrap();
        assert_eq!(r.candidates, vec!["/app/db"]);
        assert_eq!(r.selector, Selector::Label("prod".into()));
        assert_eq!(
            r.arn_scope,
            Some(("eu-west-1".into(), "123456789012".into()))
        );
        let r = reference("arn:aws:ssm:eu-west-1:123456789012:parameter/plain").unwrap();
        assert_eq!(r.candidates, vec!["/plain", "plain"]);
        assert_eq!(r.selector, Selector::Latest);
        assert!(reference("name:").is_none());
        assert!(reference("arn:aws:ssm:eu-west-1:1:secret/x").is_none());
    }

    #[test]
    fn arns_drop_the_leading_slash() {
        assert_eq!(arn("1", "r", "/a/b"), "arn:aws:ssm:r:1:parameter/a/b");
        assert_eq!(arn("1", "r", "a"), "arn:aws:ssm:r:1:parameter/a");
    }

    #[test]
    fn labels_and_paths() {
        assert!(valid_label("prod-1.x_y"));
        for bad in ["1st", "awsy", "ssm", "a b", ""] {
            assert!(!valid_label(bad), "{bad}");
        }
        assert!(under("/a", "/a/b", false));
        assert!(!under("/a", "/a/b/c", false));
        assert!(under("/a", "/a/b/c", true));
        assert!(!under("/a", "/ab", true));
        assert!(!under("/a", "/a", true));
        assert!(under("/", "/x", false));
        assert!(!under("/", "x", true));
    }
}
