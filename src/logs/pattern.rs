//! CloudWatch Logs filter patterns for unstructured events, as
//! `FilterLogEvents` applies them. Pure.
//!
//! Supported:
//! - empty (or only spaces): every event matches;
//! - terms separated by spaces, each of which must appear in the message
//!   (`ERROR Exception`); matching is case-sensitive and by substring;
//! - a term in double quotes is an exact phrase and may hold spaces and
//!   punctuation (`"user not found"`; `\"` and `\\` escape inside quotes);
//! - a term prefixed with `-` must not appear (`ERROR -Exiting`);
//! - terms prefixed with `?`: at least one of them must appear
//!   (`?ERROR ?WARN`);
//! - `%regex%`: the message must match the regular expression.
//!
//! JSON (`{ $.field = … }`) and space-delimited (`[ip, user, …]`) patterns
//! are refused with `InvalidParameterException`.

use regex::Regex;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub enum FilterPattern {
    /// Matches every event.
    All,
    Terms {
        /// Every one must appear.
        all: Vec<String>,
        /// None may appear.
        none: Vec<String>,
        /// When not empty, at least one must appear.
        any: Vec<String>,
    },
    Regex(Regex),
}

fn invalid(detail: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_parameter(format!("Invalid filter pattern: {detail}"))
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> ApiResult<FilterPattern> {
        let p = pattern.trim();
        if p.is_empty() {
            return Ok(FilterPattern::All);
        }
        if p.len() >= 2 && p.starts_with('%') && p.ends_with('%') {
            let re = Regex::new(&p[1..p.len() - 1]).map_err(invalid)?;
            return Ok(FilterPattern::Regex(re));
        }
        if p.starts_with('{') || p.starts_with('[') {
            return Err(invalid(
                "Berth supports term, phrase, -exclusion, ?alternative and %regex% patterns, not JSON or space-delimited ones.",
            ));
        }
        let mut all = Vec::new();
        let mut none = Vec::new();
        let mut any = Vec::new();
        let mut chars = p.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let target = match first {
                '-' => {
                    chars.next();
                    &mut none
                }
                '?' => {
                    chars.next();
                    &mut any
                }
                _ => &mut all,
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\')) => term.push(e),
                            Some(other) => {
                                term.push('\\');
                                term.push(other);
                            }
                            None => term.push('\\'),
                        },
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(invalid(format!("unterminated quote in '{pattern}'.")));
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(invalid(format!(
                        "a quoted phrase must be followed by a space in '{pattern}'."
                    )));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                return Err(invalid(format!("empty term in '{pattern}'.")));
            }
            target.push(term);
        }
        Ok(FilterPattern::Terms { all, none, any })
    }

    pub fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::All => true,
            FilterPattern::Regex(re) => re.is_match(message),
            FilterPattern::Terms { all, none, any } => {
                all.iter().all(|t| message.contains(t.as_str()))
                    && !none.iter().any(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn empty_matches_everything() {
        assert!(m("", "anything"));
        assert!(m("   ", "anything"));
    }

    #[test]
    fn terms_all_must_appear_case_sensitive() {
        assert!(m("ERROR", "[ERROR] disk full"));
        assert!(!m("ERROR", "[error] disk full"));
        assert!(m("ERROR disk", "[ERROR] disk full"));
        assert!(!m("ERROR memory", "[ERROR] disk full"));
        assert!(m("ERR", "ERRORS everywhere"), "terms match by substring");
    }

    #[test]
    fn quoted_phrases_are_exact() {
        assert!(m("\"disk full\"", "[ERROR] disk full"));
        assert!(!m("\"full disk\"", "[ERROR] disk full"));
        assert!(m("\"user-id: 7\" ERROR", "ERROR user-id: 7 missing"));
        assert!(m(r#""say \"hi\"""#, r#"they say "hi" twice"#));
        assert!(!m("\"disk  full\"", "disk full"));
    }

    #[test]
    fn exclusion_and_alternatives() {
        assert!(m("ERROR -Exiting", "ERROR retrying"));
        assert!(!m("ERROR -Exiting", "ERROR Exiting now"));
        assert!(m("-DEBUG", "INFO hello"));
        assert!(!m("-DEBUG", "DEBUG hello"));
        assert!(m("-\"not me\"", "it is me"));
        assert!(!m("-\"not me\"", "surely not me"));
        assert!(m("?ERROR ?WARN", "WARN low disk"));
        assert!(!m("?ERROR ?WARN", "INFO fine"));
        assert!(m("disk ?ERROR ?WARN", "ERROR disk"));
        assert!(!m("disk ?ERROR ?WARN", "ERROR memory"));
    }

    #[test]
    fn regex_patterns() {
        assert!(m("%ERROR|WARN%", "a WARN b"));
        assert!(!m("%^ERROR%", "not ERROR"));
        assert!(m("%[0-9]{3}%", "status 404"));
    }

    #[test]
    fn bad_patterns_are_invalid_parameter() {
        for p in [
            "\"unterminated",
            "{ $.level = \"ERROR\" }",
            "[ip, user]",
            "- x",
            "%(%",
            "\"a\"b",
        ] {
            let e = FilterPattern::parse(p).unwrap_err();
            assert_eq!(e.code, "InvalidParameterException", "{p}");
        }
    }
}
