//! Container `secrets`, resolved as the ECS agent resolves them when a
//! task starts: each `valueFrom` names an SSM parameter (a name or an
//! ARN) or a Secrets Manager secret (an ARN, optionally followed by
//! `:json-key:version-stage:version-id`). The values become environment
//! variables of the containers being created, and nothing else: they are
//! never saved in the task, logged or put in an error.
//!
//! A failure stops the task as ECS does (`TaskFailedToStart`), with ECS's
//! wording: `ResourceInitializationError: unable to pull secrets or
//! registry auth: execution resource retrieval failed: …`.

use std::collections::BTreeMap;

use crate::ecs::shapes::ContainerDefinition;
use crate::error::ApiError;

/// The prefix of every secret failure's stopped reason.
pub const FAILED: &str =
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed";

/// Whether a `valueFrom` names a Secrets Manager secret (else an SSM
/// parameter, by name or ARN).
pub fn is_secrets_manager(value_from: &str) -> bool {
    value_from.starts_with("arn:") && value_from.split(':').nth(2) == Some("secretsmanager")
}

/// The secrets of the containers in `defs`: container → (variable,
/// `valueFrom`), in the order the definition gives them.
pub fn wanted<'a>(
    defs: impl IntoIterator<Item = &'a ContainerDefinition>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for def in defs {
        let list: Vec<(String, String)> = def
            .secrets
            .iter()
            .flatten()
            .map(|s| (s.name.clone(), s.value_from.clone()))
            .collect();
        if !list.is_empty() {
            out.insert(def.name.clone().unwrap_or_default(), list);
        }
    }
    out
}

/// How one lookup went.
pub enum Lookup {
    Found(String),
    /// The parameter or secret does not exist (SSM lists these together).
    Missing,
    Failed(ApiError),
}

/// Resolve every `valueFrom` (in order) with `ssm` and `asm`, the two
/// lookups; `Err` is the task's stopped reason.
pub fn resolve_all(
    value_froms: &[String],
    mut ssm: impl FnMut(&str) -> Lookup,
    mut asm: impl FnMut(&str) -> Lookup,
) -> Result<Vec<String>, String> {
    let lookups = value_froms
        .iter()
        .map(|vf| {
            if is_secrets_manager(vf) {
                asm(vf)
            } else {
                ssm(vf)
            }
        })
        .collect();
    report(value_froms, lookups)
}

/// The values of lookups made one per `valueFrom`, or the task's stopped
/// reason: the first Secrets Manager failure, else every missing
/// parameter at once (SSM's `GetParameters` lists them together).
pub fn report(value_froms: &[String], lookups: Vec<Lookup>) -> Result<Vec<String>, String> {
    let mut values = Vec::with_capacity(value_froms.len());
    let mut invalid = Vec::new();
    for (vf, lookup) in value_froms.iter().zip(lookups) {
        match (is_secrets_manager(vf), lookup) {
            (_, Lookup::Found(v)) => values.push(v),
            (true, Lookup::Missing) => {
                return Err(asm_failure(
                    vf,
                    &ApiError::new(
                        "ResourceNotFoundException",
                        "Secrets Manager can't find the specified secret.",
                    ),
                ))
            }
            (true, Lookup::Failed(e)) => return Err(asm_failure(vf, &e)),
            (false, Lookup::Missing) => invalid.push(vf.clone()),
            (false, Lookup::Failed(e)) => {
                return Err(format!(
                    "{FAILED}: unable to retrieve secrets from ssm: service call has been retried 1 time(s): {}: {}",
                    e.code, e.message
                ))
            }
        }
    }
    if !invalid.is_empty() {
        return Err(format!(
            "{FAILED}: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm parameters: {}",
            invalid.join(" ")
        ));
    }
    Ok(values)
}

fn asm_failure(value_from: &str, e: &ApiError) -> String {
    // The agent's own errors (an unreadable valueFrom, a missing JSON key)
    // are printed without a code, as the ECS agent prints them.
    if e.code == crate::secretsmanager::VALUE_FROM_ERROR {
        return format!(
            "{FAILED}: unable to retrieve secret from asm: {}",
            e.message
        );
    }
    format!(
        "{FAILED}: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {value_from} from secrets manager: {}: {}",
        e.code, e.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_arns_and_everything_else() {
        assert!(is_secrets_manager(
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf"
        ));
        assert!(is_secrets_manager(
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf:password::"
        ));
        assert!(!is_secrets_manager("/app/db"));
        assert!(!is_secrets_manager(
            "arn:aws:ssm:us-east-1:1:parameter/app/db"
        ));
    }

    #[test]
    fn missing_parameters_are_reported_together_and_secrets_one_at_a_time() {
        let vfs: Vec<String> = [
            "/a",
            "/gone",
            "/also-gone",
            "arn:aws:secretsmanager:r:1:secret:s-AbCdEf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ssm = |n: &str| {
            if n == "/a" {
                Lookup::Found("1".into())
            } else {
                Lookup::Missing
            }
        };
        let err = resolve_all(&vfs, ssm, |_| Lookup::Found("s".into())).unwrap_err();
        assert!(err.starts_with(FAILED), "{err}");
        assert!(
            err.ends_with("invalid ssm parameters: /gone /also-gone"),
            "{err}"
        );
        let ok = resolve_all(&vfs[..1], ssm, |_| Lookup::Missing).unwrap();
        assert_eq!(ok, vec!["1"]);
        let err = resolve_all(&vfs[3..], ssm, |_| {
            Lookup::Failed(ApiError::new("DecryptionFailure", "key disabled"))
        })
        .unwrap_err();
        assert!(err.contains("unable to retrieve secret from asm"), "{err}");
        assert!(err.contains("failed to fetch secret arn:aws:secretsmanager:r:1:secret:s-AbCdEf from secrets manager: DecryptionFailure: key disabled"), "{err}");
    }
}
