//! `ListSecrets`' and `BatchGetSecretValue`'s filters, as the API
//! reference describes them:
//!
//! * `name`: prefix of the name, case-sensitive;
//! * `description`: prefix of the description, not case-sensitive;
//! * `tag-key`, `tag-value`: prefix of one of the secret's tag keys
//!   (values), case-sensitive;
//! * `primary-region`, `owning-service`: Berth replicates no secret and no
//!   service owns one, so these match no secret;
//! * `all`: the value is broken into words (at spaces and at every
//!   character that is not a letter or a digit), and each word must begin
//!   one of the words of the name, description, tag keys or tag values,
//!   not case-sensitive.
//!
//! A value beginning with `!` negates. A filter holds when one of its
//! plain values matches (or it has none) and none of its negated ones
//! does; every filter must hold.

use super::invalid_parameter;
use super::secrets::Secret;
use super::shapes::{Filter, FilterNameStringType};
use crate::error::ApiResult;

/// One filter, its values split into plain and negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub key: FilterNameStringType,
    pub plain: Vec<String>,
    pub negated: Vec<String>,
}

/// The filters of a request, checked.
pub fn parse(filters: &[Filter]) -> ApiResult<Vec<Parsed>> {
    filters
        .iter()
        .map(|f| {
            let key = f
                .key
                .ok_or_else(|| invalid_parameter("Invalid filter: every filter needs a Key."))?;
            let values = f.values.clone().unwrap_or_default();
            if values.is_empty() {
                return Err(invalid_parameter(format!(
                    "Invalid filter values for key {}: a filter needs at least one value.",
                    key.as_str()
                )));
            }
            let (negated, plain): (Vec<String>, Vec<String>) =
                values.into_iter().partition(|v| v.starts_with('!'));
            Ok(Parsed {
                key,
                plain,
                negated: negated.into_iter().map(|v| v[1..].to_string()).collect(),
            })
        })
        .collect()
}

/// What filters look at in a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub tag_keys: Vec<&'a str>,
    pub tag_values: Vec<&'a str>,
}

impl<'a> Attributes<'a> {
    pub fn of(s: &'a Secret) -> Attributes<'a> {
        Attributes {
            name: &s.name,
            description: s.description.as_deref(),
            tag_keys: s.tags.iter().filter_map(|t| t.key.as_deref()).collect(),
            tag_values: s.tags.iter().filter_map(|t| t.value.as_deref()).collect(),
        }
    }
}

/// Whether a secret with `attrs` passes every filter.
pub fn matches(filters: &[Parsed], attrs: &Attributes) -> bool {
    filters.iter().all(|f| {
        (f.plain.is_empty() || f.plain.iter().any(|v| hit(f.key, v, attrs)))
            && !f.negated.iter().any(|v| hit(f.key, v, attrs))
    })
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Whether one (plain) filter value matches.
fn hit(key: FilterNameStringType, value: &str, a: &Attributes) -> bool {
    match key {
        FilterNameStringType::Name => a.name.starts_with(value),
        FilterNameStringType::Description => a
            .description
            .is_some_and(|d| d.to_lowercase().starts_with(&value.to_lowercase())),
        FilterNameStringType::TagKey => a.tag_keys.iter().any(|k| k.starts_with(value)),
        FilterNameStringType::TagValue => a.tag_values.iter().any(|v| v.starts_with(value)),
        FilterNameStringType::PrimaryRegion | FilterNameStringType::OwningService => false,
        FilterNameStringType::All => {
            let wanted: Vec<String> = words(value).collect();
            if wanted.is_empty() {
                return false;
            }
            let mut have: Vec<String> = words(a.name).collect();
            have.extend(a.description.into_iter().flat_map(words));
            for t in a.tag_keys.iter().chain(a.tag_values.iter()) {
                have.extend(words(t));
            }
            wanted
                .iter()
                .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(key: FilterNameStringType, values: &[&str]) -> Filter {
        Filter {
            key: Some(key),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn attrs() -> Attributes<'static> {
        Attributes {
            name: "prod/db-Password",
            description: Some("Main DATABASE credentials"),
            tag_keys: vec!["team", "Env"],
            tag_values: vec!["payments", "production"],
        }
    }

    fn check(filters: &[Filter]) -> bool {
        matches(&parse(filters).unwrap(), &attrs())
    }

    #[test]
    fn name_tag_key_and_tag_value_are_case_sensitive_prefixes() {
        use FilterNameStringType::*;
        assert!(check(&[f(Name, &["prod/"])]));
        assert!(!check(&[f(Name, &["Prod/"])]));
        assert!(!check(&[f(Name, &["db"])]), "a prefix, not a substring");
        assert!(check(&[f(TagKey, &["Env"])]));
        assert!(!check(&[f(TagKey, &["env"])]));
        assert!(check(&[f(TagValue, &["prod"])]));
        assert!(!check(&[f(TagValue, &["Prod"])]));
    }

    #[test]
    fn description_is_a_prefix_in_any_case() {
        use FilterNameStringType::*;
        assert!(check(&[f(Description, &["main data"])]));
        assert!(!check(&[f(Description, &["database"])]));
    }

    #[test]
    fn all_matches_words_of_every_attribute() {
        use FilterNameStringType::*;
        assert!(check(&[f(All, &["PASS"])]), "a word of the name");
        assert!(check(&[f(All, &["data cred"])]), "words of the description");
        assert!(check(&[f(All, &["paym"])]), "a tag value");
        assert!(check(&[f(All, &["env"])]), "a tag key");
        assert!(
            !check(&[f(All, &["word db nothing"])]),
            "every word must match"
        );
        assert!(
            !check(&[f(All, &["/"])]),
            "a value without words matches nothing"
        );
    }

    #[test]
    fn negation_excludes_and_values_of_one_filter_are_alternatives() {
        use FilterNameStringType::*;
        assert!(!check(&[f(Name, &["!prod"])]));
        assert!(check(&[f(Name, &["!dev"])]));
        assert!(check(&[f(Name, &["dev/", "prod/"])]));
        assert!(!check(&[f(Name, &["prod/", "!prod/db"])]));
        // Filters combine: every one must hold.
        assert!(!check(&[f(Name, &["prod/"]), f(TagKey, &["owner"])]));
        assert!(check(&[f(Name, &["prod/"]), f(TagKey, &["team"])]));
        assert!(!check(&[f(PrimaryRegion, &["us-east-1"])]));
        assert!(check(&[f(OwningService, &["!rds"])]));
    }

    #[test]
    fn a_filter_needs_a_key_and_values() {
        let no_key = Filter {
            key: None,
            values: Some(vec!["x".into()]),
        };
        assert_eq!(
            parse(&[no_key]).unwrap_err().code,
            "InvalidParameterException"
        );
        let no_values = Filter {
            key: Some(FilterNameStringType::Name),
            values: None,
        };
        assert_eq!(
            parse(&[no_values]).unwrap_err().code,
            "InvalidParameterException"
        );
    }
}
