//! `GetRandomPassword`: a password drawn from the operating system's
//! random source.
//!
//! The characters are the ASCII letters, the digits, and the punctuation
//! ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``, each set left out on request,
//! the space added with `IncludeSpace`, and `ExcludeCharacters` removed
//! from them all. With `RequireEachIncludedType` (the default) the
//! password holds at least one character of each set that still has
//! characters (the space is never required).

use rand::seq::SliceRandom;
use rand::Rng;

use super::invalid_parameter;
use super::shapes::{GetRandomPasswordRequest, GetRandomPasswordResponse};
use super::SecretsManager;
use crate::context::Ctx;
use crate::error::ApiResult;

pub const DEFAULT_LENGTH: i64 = 32;
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The character sets a request allows: the required ones, then the
/// optional space.
fn sets(req: &GetRandomPasswordRequest) -> (Vec<Vec<char>>, Vec<char>) {
    let excluded: Vec<char> = req
        .exclude_characters
        .as_deref()
        .unwrap_or_default()
        .chars()
        .collect();
    let keep = |s: &str| -> Vec<char> { s.chars().filter(|c| !excluded.contains(c)).collect() };
    let mut required = Vec::new();
    if !req.exclude_lowercase.unwrap_or(false) {
        required.push(keep("abcdefghijklmnopqrstuvwxyz"));
    }
    if !req.exclude_uppercase.unwrap_or(false) {
        required.push(keep("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    }
    if !req.exclude_numbers.unwrap_or(false) {
        required.push(keep("0123456789"));
    }
    if !req.exclude_punctuation.unwrap_or(false) {
        required.push(keep(PUNCTUATION));
    }
    required.retain(|s| !s.is_empty());
    let space = if req.include_space.unwrap_or(false) {
        keep(" ")
    } else {
        Vec::new()
    };
    (required, space)
}

/// A password as `req` asks, from `rng`.
pub fn generate(req: &GetRandomPasswordRequest, rng: &mut impl Rng) -> ApiResult<String> {
    let length = req.password_length.unwrap_or(DEFAULT_LENGTH);
    if !(1..=4096).contains(&length) {
        return Err(invalid_parameter(format!(
            "PasswordLength must be between 1 and 4096, got {length}."
        )));
    }
    let length = length as usize;
    let (required, space) = sets(req);
    let pool: Vec<char> = required
        .iter()
        .flatten()
        .chain(space.iter())
        .copied()
        .collect();
    if pool.is_empty() {
        return Err(invalid_parameter(
            "The parameters exclude every character: there is nothing to make a password of.",
        ));
    }
    let mut out: Vec<char> = Vec::with_capacity(length);
    if req.require_each_included_type.unwrap_or(true) {
        if length < required.len() {
            return Err(invalid_parameter(
                "Password length is too short based on the required types.",
            ));
        }
        for set in &required {
            out.push(set[rng.gen_range(0..set.len())]);
        }
    }
    while out.len() < length {
        out.push(pool[rng.gen_range(0..pool.len())]);
    }
    out.shuffle(rng);
    Ok(out.into_iter().collect())
}

/// `GetRandomPassword`.
pub fn get_random_password(
    _sm: &SecretsManager,
    _ctx: &Ctx,
    req: GetRandomPasswordRequest,
) -> ApiResult<GetRandomPasswordResponse> {
    Ok(GetRandomPasswordResponse {
        random_password: Some(generate(&req, &mut rand::rngs::OsRng)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(req: GetRandomPasswordRequest) -> ApiResult<String> {
        generate(&req, &mut rand::rngs::OsRng)
    }

    #[test]
    fn the_default_is_32_characters_of_every_type() {
        for _ in 0..50 {
            let p = gen(GetRandomPasswordRequest::default()).unwrap();
            assert_eq!(p.chars().count(), 32);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| PUNCTUATION.contains(c)));
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn exclusions_are_honoured() {
        let req = GetRandomPasswordRequest {
            password_length: Some(200),
            exclude_punctuation: Some(true),
            exclude_uppercase: Some(true),
            exclude_characters: Some("abc0123".into()),
            ..Default::default()
        };
        let p = gen(req).unwrap();
        assert_eq!(p.len(), 200);
        assert!(p
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert!(!p.chars().any(|c| "abc0123".contains(c)));
        let only_digits = GetRandomPasswordRequest {
            password_length: Some(12),
            exclude_punctuation: Some(true),
            exclude_uppercase: Some(true),
            exclude_lowercase: Some(true),
            ..Default::default()
        };
        assert!(gen(only_digits)
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn spaces_only_when_asked() {
        let req = GetRandomPasswordRequest {
            password_length: Some(400),
            include_space: Some(true),
            exclude_punctuation: Some(true),
            exclude_numbers: Some(true),
            exclude_uppercase: Some(true),
            ..Default::default()
        };
        let p = gen(req).unwrap();
        assert!(
            p.contains(' '),
            "400 draws from 27 characters include a space"
        );
        assert!(p.chars().all(|c| c == ' ' || c.is_ascii_lowercase()));
    }

    #[test]
    fn too_short_or_nothing_left_is_refused() {
        let short = GetRandomPasswordRequest {
            password_length: Some(3),
            ..Default::default()
        };
        let e = gen(short).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(
            e.message,
            "Password length is too short based on the required types."
        );
        let short_ok = GetRandomPasswordRequest {
            password_length: Some(3),
            require_each_included_type: Some(false),
            ..Default::default()
        };
        assert_eq!(gen(short_ok).unwrap().len(), 3);
        let nothing = GetRandomPasswordRequest {
            exclude_punctuation: Some(true),
            exclude_numbers: Some(true),
            exclude_uppercase: Some(true),
            exclude_lowercase: Some(true),
            ..Default::default()
        };
        assert_eq!(gen(nothing).unwrap_err().code, "InvalidParameterException");
        let excluded_all_digits = GetRandomPasswordRequest {
            password_length: Some(3),
            exclude_characters: Some("0123456789".into()),
            ..Default::default()
        };
        // Digits have no characters left, so three required types remain.
        assert_eq!(gen(excluded_all_digits).unwrap().len(), 3);
    }

    #[test]
    fn two_passwords_differ() {
        let a = gen(GetRandomPasswordRequest::default()).unwrap();
        let b = gen(GetRandomPasswordRequest::default()).unwrap();
        assert_ne!(a, b);
    }
}
