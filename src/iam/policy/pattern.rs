//! Compiled string patterns: `*`/`?` globs, policy variables and ARNs.
//!
//! A pattern is compiled once, when its document is parsed, into a list of
//! [`Part`]s: literal characters, the two wildcards, and policy variables
//! (`${aws:username}`, `${aws:PrincipalTag/team, 'none'}`). A pattern with
//! no variable is resolved at compile time, so matching it allocates
//! nothing; one with variables is resolved against the request's context
//! keys when it is matched. A variable's value is always literal text: a
//! `*` in a user name is not a wildcard, which is also what `${*}`, `${?}`
//! and `${$}` are for.

use std::borrow::Cow;

use super::eval::ContextKeys;

/// One element of a compiled glob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// This character (already lower-cased for case-insensitive patterns).
    Char(char),
    /// `*`: any run of characters, the empty one included.
    Any,
    /// `?`: exactly one character.
    One,
}

/// A policy variable: the (lower-cased) context key and its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Var {
    pub(crate) key: String,
    pub(crate) default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Tok(Tok),
    Var(Var),
}

/// Where `${...}` is read as a policy variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vars {
    /// Nowhere: a 2008-10-17 document, or an operator that takes none.
    Off,
    /// Anywhere in the string (string, ARN and Bool condition values).
    On,
    /// Only after the fifth colon of an ARN: the `Resource` element.
    ResourcePart,
}

/// A compiled pattern; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// Set when the pattern has no variable: its tokens.
    fixed: Option<Vec<Tok>>,
    /// Set when the pattern has no variable: its text, each `Tok::Any`
    /// written `*` and each `Tok::One` written `?`.
    fixed_text: Option<String>,
    parts: Vec<Part>,
}

impl Pattern {
    /// Compiles `raw`. With `fold`, literal characters are lower-cased (the
    /// text is then matched case-insensitively, see [`glob`]). With
    /// `wildcards` false, `*` and `?` are literal characters.
    pub(crate) fn compile(raw: &str, vars: Vars, wildcards: bool, fold: bool) -> Pattern {
        let var_from = match vars {
            Vars::Off => usize::MAX,
            Vars::On => 0,
            Vars::ResourcePart => resource_part_start(raw).unwrap_or(usize::MAX),
        };
        let mut parts = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let rest = &raw[i..];
            if i >= var_from && rest.starts_with("${") {
                if let Some(end) = rest.find('}') {
                    if let Some(part) = variable(&rest[2..end]) {
                        parts.push(part);
                        i += end + 1;
                        continue;
                    }
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            let tok = match c {
                '*' if wildcards => Tok::Any,
                '?' if wildcards => Tok::One,
                c if fold => Tok::Char(fold_char(c)),
                c => Tok::Char(c),
            };
            parts.push(Part::Tok(tok));
            i += c.len_utf8();
        }
        let fixed: Option<Vec<Tok>> = parts
            .iter()
            .map(|p| match p {
                Part::Tok(t) => Some(*t),
                Part::Var(_) => None,
            })
            .collect();
        let fixed_text = fixed.as_deref().map(toks_text);
        Pattern {
            fixed,
            fixed_text,
            parts,
        }
    }

    /// The variables without a default value: a statement holding one that
    /// the request cannot resolve does not apply.
    pub(crate) fn required_vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(Var { key, default: None }) => Some(key.as_str()),
            _ => None,
        })
    }

    /// The tokens, variables substituted; `None` when a variable cannot be
    /// resolved.
    pub(crate) fn toks<'a>(&'a self, keys: &ContextKeys) -> Option<Cow<'a, [Tok]>> {
        if let Some(fixed) = &self.fixed {
            return Some(Cow::Borrowed(fixed));
        }
        let mut out = Vec::with_capacity(self.parts.len() + 16);
        for part in &self.parts {
            match part {
                Part::Tok(t) => out.push(*t),
                Part::Var(v) => out.extend(resolve(v, keys)?.chars().map(Tok::Char)),
            }
        }
        Some(Cow::Owned(out))
    }

    /// The text, variables substituted (for the exact-match operators).
    pub(crate) fn text<'a>(&'a self, keys: &ContextKeys) -> Option<Cow<'a, str>> {
        if let Some(text) = &self.fixed_text {
            return Some(Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(self.parts.len() + 16);
        for part in &self.parts {
            match part {
                Part::Tok(t) => out.push(tok_char(*t)),
                Part::Var(v) => out.push_str(resolve(v, keys)?),
            }
        }
        Some(Cow::Owned(out))
    }
}

/// The value of a variable: the key's single value, else its default.
/// Multivalued keys cannot be policy variables.
fn resolve<'a>(v: &'a Var, keys: &'a ContextKeys) -> Option<&'a str> {
    match keys.get_lower(&v.key) {
        Some([one]) => Some(one.as_str()),
        _ => v.default.as_deref(),
    }
}

/// Parses the inside of `${...}`: `*`, `?`, `$`, `key` or `key, 'default'`.
fn variable(inner: &str) -> Option<Part> {
    match inner {
        "*" => return Some(Part::Tok(Tok::Char('*'))),
        "?" => return Some(Part::Tok(Tok::Char('?'))),
        "$" => return Some(Part::Tok(Tok::Char('$'))),
        _ => {}
    }
    let (name, default) = match inner.split_once(',') {
        None => (inner.trim(), None),
        Some((name, default)) => {
            let d = default.trim();
            let d = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (name.trim(), Some(d.to_string()))
        }
    };
    if name.is_empty() || name.contains(['$', '{', '\'']) {
        return None;
    }
    Some(Part::Var(Var {
        key: name.to_lowercase(),
        default,
    }))
}

/// The byte offset just after the fifth colon that is not inside `${...}`.
fn resource_part_start(raw: &str) -> Option<usize> {
    let mut colons = 0;
    let mut depth = false;
    for (i, c) in raw.char_indices() {
        match c {
            '$' if raw[i..].starts_with("${") => depth = true,
            '}' => depth = false,
            ':' if !depth => {
                colons += 1;
                if colons == 5 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn tok_char(t: Tok) -> char {
    match t {
        Tok::Char(c) => c,
        Tok::Any => '*',
        Tok::One => '?',
    }
}

fn toks_text(toks: &[Tok]) -> String {
    toks.iter().map(|t| tok_char(*t)).collect()
}

/// Case folding for action names: ASCII only, which is what action names
/// are made of, so that matching never allocates.
fn fold_char(c: char) -> char {
    c.to_ascii_lowercase()
}

/// Whether `text` matches the glob `p`. With `fold`, each character of
/// `text` is ASCII-lower-cased before comparison (the pattern was compiled
/// with `fold`). No allocation: one backtracking point, the last `*`.
pub(crate) fn glob(p: &[Tok], text: &str, fold: bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = text[ti..].chars().next() {
        let c = if fold { fold_char(c) } else { c };
        match p.get(pi) {
            Some(Tok::Any) => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(Tok::One) => {
                pi += 1;
                ti += text[ti..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            Some(Tok::Char(pc)) if *pc == c => {
                pi += 1;
                ti += text[ti..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                let next = st + text[st..].chars().next().map_or(1, char::len_utf8);
                star = Some((sp, next));
                pi = sp + 1;
                ti = next;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|t| *t == Tok::Any)
}

/// Matches an ARN pattern against an ARN: each of the first five
/// colon-separated fields separately (a wildcard does not cross a colon
/// there), the sixth (the resource, which may itself hold colons) as one.
/// A pattern with fewer than six fields (`*`, `arn:aws:s3*`) is matched
/// against the whole text; a six-field pattern never matches a text with
/// fewer fields.
pub(crate) fn arn_glob(p: &[Tok], text: &str) -> bool {
    let Some(pf) = split_toks(p) else {
        return glob(p, text, false);
    };
    let mut tf = text.splitn(6, ':');
    let mut fields: [&str; 6] = [""; 6];
    for f in fields.iter_mut() {
        match tf.next() {
            Some(s) => *f = s,
            None => return false,
        }
    }
    pf.iter().zip(fields).all(|(p, t)| glob(p, t, false))
}

/// The six fields of a tokenised ARN pattern, or `None` if it has fewer.
fn split_toks(p: &[Tok]) -> Option<[&[Tok]; 6]> {
    let mut out: [&[Tok]; 6] = [&[]; 6];
    let mut start = 0;
    let mut n = 0;
    for (i, t) in p.iter().enumerate() {
        if *t == Tok::Char(':') && n < 5 {
            out[n] = &p[start..i];
            n += 1;
            start = i + 1;
        }
    }
    if n < 5 {
        return None;
    }
    out[5] = &p[start..];
    Some(out)
}

/// Case-insensitive equality (Unicode simple lower-casing), no allocation.
pub(crate) fn eq_fold(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn g(p: &str, t: &str) -> bool {
        let pat = Pattern::compile(p, Vars::Off, true, false);
        glob(&pat.toks(&ContextKeys::new()).unwrap(), t, false)
    }

    #[test]
    fn globs() {
        assert!(g("*", ""));
        assert!(g("a*c", "abbbc"));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "ac"));
        assert!(g("*a*b*", "xxaxxbxx"));
        assert!(!g("*a*b", "xxaxxbxxc"));
        assert!(g("é?", "éü"));
        assert!(!g("abc", "abcd"));
    }

    #[test]
    fn arn_fields() {
        let p = Pattern::compile(
            "arn:aws:someservice:*:111122223333:finance/*",
            Vars::Off,
            true,
            false,
        );
        let toks = p.toks(&ContextKeys::new()).unwrap();
        assert!(arn_glob(
            &toks,
            "arn:aws:someservice:us-east-2:111122223333:finance/doc.txt"
        ));
        // The documentation's example: the `*` in the region does not cross colons.
        assert!(!arn_glob(
            &toks,
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
        ));
        assert!(g(
            "arn:aws:someservice:*:111122223333:finance/*",
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
        ));
    }

    #[test]
    fn variables() {
        let keys = ContextKeys::new().with("aws:username", "bo*b");
        let p = Pattern::compile("home/${aws:username}/${*}x", Vars::On, true, false);
        assert_eq!(p.text(&keys).unwrap(), "home/bo*b/*x");
        let toks = p.toks(&keys).unwrap();
        assert!(glob(&toks, "home/bo*b/*x", false));
        assert!(
            !glob(&toks, "home/bobob/*x", false),
            "a variable's value is literal"
        );
        let d = Pattern::compile("${aws:userid, 'anonymous'}", Vars::On, true, false);
        assert_eq!(d.text(&ContextKeys::new()).unwrap(), "anonymous");
        assert_eq!(d.required_vars().count(), 0);
        let off = Pattern::compile("${aws:username}", Vars::Off, true, false);
        assert_eq!(off.text(&keys).unwrap(), "${aws:username}");
        let r = Pattern::compile(
            "arn:aws:s3:::${aws:username}/${aws:username}",
            Vars::ResourcePart,
            true,
            false,
        );
        assert_eq!(r.text(&keys).unwrap(), "arn:aws:s3:::bo*b/bo*b");
        let early = Pattern::compile(
            "arn:aws:s3:${aws:username}::x",
            Vars::ResourcePart,
            true,
            false,
        );
        assert_eq!(early.text(&keys).unwrap(), "arn:aws:s3:${aws:username}::x");
    }
}
