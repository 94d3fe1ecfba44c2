//! The `Condition` element: operators, their compiled values, and their
//! evaluation against the request's context keys.
//!
//! # Semantics
//!
//! A condition is one (operator, key) pair with one or more policy values;
//! a statement's conditions are ANDed together, and a key's policy values
//! are ORed. Each operator has a *positive* base test between one request
//! value and one policy value (`StringEquals`: equal; `StringNotEquals`:
//! also equal, the operator being *negated*). For one request value `v`:
//!
//! * a positive operator holds when `v` passes the test against **any**
//!   policy value;
//! * a negated operator holds when `v` passes it against **none** ("a
//!   `StringNotEquals` with several values matches none of them").
//!
//! Over the request's values for the key (context keys may be multivalued):
//!
//! * no qualifier: a positive operator holds when some request value
//!   holds, a negated one when every request value holds, i.e. when no
//!   request value matches any policy value;
//! * `ForAnyValue:` holds when at least one request value holds — false
//!   for an absent key or an empty set of values;
//! * `ForAllValues:` holds when every request value holds — true for an
//!   absent key or an empty set of values.
//!
//! A key absent from the request (or present with no value) makes a
//! positive operator false and a negated one true, as the documentation
//! says ("If the policy condition requires that the key is *not* matched,
//! such as `StringNotLike` or `ArnNotLike`, and the right key is not
//! present, the condition is *true*"). `...IfExists` makes any operator
//! true for an absent key. `Null` tests presence alone: `"true"` holds
//! when the key is absent, `"false"` when it is present.
//!
//! Policy variables are substituted (in 2012-10-17 documents) in the
//! values of the string, ARN and `Bool` operators only, which is where the
//! documentation allows them; elsewhere `${...}` is literal text.

use std::net::IpAddr;

use super::eval::ContextKeys;
use super::pattern::{arn_glob, eq_fold, glob, Pattern, Vars};

/// The operator family, without qualifier or `IfExists`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringNotEquals", Operator::StringNotEquals),
    ("StringEqualsIgnoreCase", Operator::StringEqualsIgnoreCase),
    (
        "StringNotEqualsIgnoreCase",
        Operator::StringNotEqualsIgnoreCase,
    ),
    ("StringLike", Operator::StringLike),
    ("StringNotLike", Operator::StringNotLike),
    ("NumericEquals", Operator::NumericEquals),
    ("NumericNotEquals", Operator::NumericNotEquals),
    ("NumericLessThan", Operator::NumericLessThan),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals),
    ("NumericGreaterThan", Operator::NumericGreaterThan),
    (
        "NumericGreaterThanEquals",
        Operator::NumericGreaterThanEquals,
    ),
    ("DateEquals", Operator::DateEquals),
    ("DateNotEquals", Operator::DateNotEquals),
    ("DateLessThan", Operator::DateLessThan),
    ("DateLessThanEquals", Operator::DateLessThanEquals),
    ("DateGreaterThan", Operator::DateGreaterThan),
    ("DateGreaterThanEquals", Operator::DateGreaterThanEquals),
    ("Bool", Operator::Bool),
    ("BinaryEquals", Operator::BinaryEquals),
    ("IpAddress", Operator::IpAddress),
    ("NotIpAddress", Operator::NotIpAddress),
    ("ArnEquals", Operator::ArnEquals),
    ("ArnLike", Operator::ArnLike),
    ("ArnNotEquals", Operator::ArnNotEquals),
    ("ArnNotLike", Operator::ArnNotLike),
    ("Null", Operator::Null),
];

impl Operator {
    /// The operator's name as policies write it.
    pub fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(name, _)| name)
    }

    /// Whether the operator is a negated one (true for an absent key).
    pub fn is_negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    fn kind(self) -> Kind {
        use Operator::*;
        match self {
            StringEquals | StringNotEquals => Kind::StringExact,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => Kind::StringFold,
            StringLike | StringNotLike => Kind::StringLike,
            NumericEquals | NumericNotEquals => Kind::Numeric(Cmp::Eq),
            NumericLessThan => Kind::Numeric(Cmp::Lt),
            NumericLessThanEquals => Kind::Numeric(Cmp::Le),
            NumericGreaterThan => Kind::Numeric(Cmp::Gt),
            NumericGreaterThanEquals => Kind::Numeric(Cmp::Ge),
            DateEquals | DateNotEquals => Kind::Date(Cmp::Eq),
            DateLessThan => Kind::Date(Cmp::Lt),
            DateLessThanEquals => Kind::Date(Cmp::Le),
            DateGreaterThan => Kind::Date(Cmp::Gt),
            DateGreaterThanEquals => Kind::Date(Cmp::Ge),
            Bool => Kind::Bool,
            BinaryEquals => Kind::Binary,
            IpAddress | NotIpAddress => Kind::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Kind::Arn,
            Null => Kind::Null,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    StringExact,
    StringFold,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// `ForAnyValue:` or `ForAllValues:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name: qualifier, operator and `IfExists`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OperatorName {
    pub qualifier: Option<SetQualifier>,
    pub operator: Operator,
    pub if_exists: bool,
}

impl OperatorName {
    /// Parses `ForAllValues:StringLikeIfExists` and the like; `None` for a
    /// name IAM does not know (`NullIfExists` included). Case-sensitive.
    pub fn parse(name: &str) -> Option<OperatorName> {
        let (qualifier, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else {
            (None, name)
        };
        let lookup = |n: &str| OPERATORS.iter().find(|(s, _)| *s == n).map(|(_, op)| *op);
        if let Some(op) = lookup(rest) {
            return Some(OperatorName {
                qualifier,
                operator: op,
                if_exists: false,
            });
        }
        let base = rest.strip_suffix("IfExists")?;
        let op = lookup(base)?;
        if op == Operator::Null {
            return None;
        }
        Some(OperatorName {
            qualifier,
            operator: op,
            if_exists: true,
        })
    }
}

/// The policy values of one condition, compiled for its operator. A value
/// that cannot be read for its operator (a number that is not one, an
/// address that is not one) is kept as `None` and matches no request value.
#[derive(Clone, Debug, PartialEq)]
enum Values {
    Strings(Vec<Pattern>),
    Numbers(Vec<Option<f64>>),
    Dates(Vec<i128>),
    Binary(Vec<Option<Vec<u8>>>),
    Cidrs(Vec<Option<Cidr>>),
    Null(Vec<Option<bool>>),
}

/// One condition: an operator, a context key and the policy's values.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    name: OperatorName,
    key: String,
    key_lower: String,
    raw: Vec<String>,
    values: Values,
}

/// Why a condition could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConditionError {
    /// A date value that is neither ISO 8601 nor epoch seconds.
    InvalidDate(String),
}

impl Condition {
    /// Compiles one condition. `variables` is whether the document's
    /// version substitutes policy variables.
    pub(crate) fn compile(
        name: OperatorName,
        key: &str,
        raw: Vec<String>,
        variables: bool,
    ) -> Result<Condition, ConditionError> {
        let vars = if variables { Vars::On } else { Vars::Off };
        let values = match name.operator.kind() {
            Kind::StringExact | Kind::StringFold | Kind::Bool => Values::Strings(
                raw.iter()
                    .map(|v| Pattern::compile(v, vars, false, false))
                    .collect(),
            ),
            Kind::StringLike | Kind::Arn => Values::Strings(
                raw.iter()
                    .map(|v| Pattern::compile(v, vars, true, false))
                    .collect(),
            ),
            Kind::Numeric(_) => Values::Numbers(raw.iter().map(|v| parse_number(v)).collect()),
            Kind::Date(_) => Values::Dates(
                raw.iter()
                    .map(|v| parse_date(v).ok_or_else(|| ConditionError::InvalidDate(v.clone())))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Binary => Values::Binary(
                raw.iter()
                    .map(|v| {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD.decode(v).ok()
                    })
                    .collect(),
            ),
            Kind::Ip => Values::Cidrs(raw.iter().map(|v| Cidr::parse(v)).collect()),
            Kind::Null => Values::Null(
                raw.iter()
                    .map(|v| match v.to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        Ok(Condition {
            name,
            key: key.to_string(),
            key_lower: key.to_lowercase(),
            raw,
            values,
        })
    }

    /// The operator, with its qualifier and `IfExists`.
    pub fn operator(&self) -> OperatorName {
        self.name
    }

    /// The context key, as the policy writes it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The policy's values, as written (numbers and booleans as text).
    pub fn values(&self) -> &[String] {
        &self.raw
    }

    /// The variables without defaults this condition's values use.
    pub(crate) fn required_vars(&self) -> impl Iterator<Item = &str> {
        let patterns: &[Pattern] = match &self.values {
            Values::Strings(p) => p,
            _ => &[],
        };
        patterns.iter().flat_map(Pattern::required_vars)
    }

    /// Whether the condition holds for the request's context keys.
    pub(crate) fn holds(&self, keys: &ContextKeys) -> bool {
        let present = keys.get_lower(&self.key_lower).filter(|v| !v.is_empty());
        if let Values::Null(wanted) = &self.values {
            return wanted.iter().any(|w| *w == Some(present.is_none()));
        }
        let negated = self.name.operator.is_negated();
        let Some(request) = present else {
            if self.name.if_exists {
                return true;
            }
            return match self.name.qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => negated,
            };
        };
        let one = |v: &String| self.any_value_matches(v, keys) != negated;
        match self.name.qualifier {
            Some(SetQualifier::ForAllValues) => request.iter().all(one),
            Some(SetQualifier::ForAnyValue) => request.iter().any(one),
            None if negated => request.iter().all(one),
            None => request.iter().any(one),
        }
    }

    /// Whether one request value passes the operator's positive test
    /// against any of the policy's values.
    fn any_value_matches(&self, request: &str, keys: &ContextKeys) -> bool {
        match (&self.values, self.name.operator.kind()) {
            (Values::Strings(ps), Kind::StringExact) => ps
                .iter()
                .any(|p| p.text(keys).is_some_and(|t| *t == *request)),
            (Values::Strings(ps), Kind::StringFold | Kind::Bool) => ps
                .iter()
                .any(|p| p.text(keys).is_some_and(|t| eq_fold(&t, request))),
            (Values::Strings(ps), Kind::StringLike) => ps
                .iter()
                .any(|p| p.toks(keys).is_some_and(|t| glob(&t, request, false))),
            (Values::Strings(ps), Kind::Arn) => ps
                .iter()
                .any(|p| p.toks(keys).is_some_and(|t| arn_glob(&t, request))),
            (Values::Numbers(ns), Kind::Numeric(cmp)) => match parse_number(request) {
                Some(r) => ns.iter().flatten().any(|n| cmp.holds(r, *n)),
                None => false,
            },
            (Values::Dates(ds), Kind::Date(cmp)) => match parse_date(request) {
                Some(r) => ds.iter().any(|d| cmp.holds(r, *d)),
                None => false,
            },
            (Values::Binary(bs), _) => bs.iter().flatten().any(|b| b == request.as_bytes()),
            (Values::Cidrs(cs), _) => match request.trim().parse::<IpAddr>() {
                Ok(ip) => cs.iter().flatten().any(|c| c.contains(ip)),
                Err(_) => false,
            },
            _ => false,
        }
    }
}

/// A number as IAM's numeric operators read it: an integer or a decimal.
fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date as nanoseconds since the Unix epoch: epoch seconds (digits, with
/// an optional fraction) or one of the W3C profiles of ISO 8601
/// (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.s]]TZD`, with
/// `TZD` one of `Z`, `+hh:mm`, `-hh:mm`, `+hhmm`, or absent for UTC). A
/// value of digits alone is epoch seconds, so `2020` is a second of 1970.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        if secs.is_empty() || secs.len() > 12 || frac.len() > 9 || frac.contains('.') {
            return None;
        }
        let secs: i128 = secs.parse().ok()?;
        return Some(secs * 1_000_000_000 + fraction_nanos(frac)?);
    }
    let (date, time) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let year = dp.next().filter(|y| y.len() == 4)?;
    let year: i64 = digits(year)?;
    let month: i64 = match dp.next() {
        Some(m) if m.len() == 2 => digits(m)?,
        Some(_) => return None,
        None => 1,
    };
    let day: i64 = match dp.next() {
        Some(d) if d.len() == 2 => digits(d)?,
        Some(_) => return None,
        None => 1,
    };
    if dp.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        return None;
    }
    let mut nanos: i128 = 0;
    let mut offset_secs: i64 = 0;
    if let Some(time) = time {
        let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
            Some(i) => (&time[..i], &time[i..]),
            None => (time, ""),
        };
        let mut cp = clock.split(':');
        let hour: i64 = digits(cp.next().filter(|h| h.len() == 2)?)?;
        let minute: i64 = digits(cp.next().filter(|m| m.len() == 2)?)?;
        let (second, frac) = match cp.next() {
            Some(sec) => {
                let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
                if whole.len() != 2 || (sec.contains('.') && frac.is_empty()) || frac.len() > 9 {
                    return None;
                }
                (digits(whole)?, fraction_nanos(frac)?)
            }
            None => (0, 0),
        };
        if cp.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        nanos = i128::from(hour * 3600 + minute * 60 + second) * 1_000_000_000 + frac;
        offset_secs = match zone {
            "" | "Z" | "z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let hm = &z[1..];
                let (h, m) = match hm.split_once(':') {
                    Some((h, m)) => (h, m),
                    None if hm.len() == 4 => hm.split_at(2),
                    None => return None,
                };
                if h.len() != 2 || m.len() != 2 {
                    return None;
                }
                let (h, m): (i64, i64) = (digits(h)?, digits(m)?);
                if h > 23 || m > 59 {
                    return None;
                }
                sign * (h * 3600 + m * 60)
            }
        };
    }
    let days = days_from_civil(year, month, day);
    Some(i128::from(days * 86_400 - offset_secs) * 1_000_000_000 + nanos)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn fraction_nanos(frac: &str) -> Option<i128> {
    if frac.is_empty() {
        return Some(0);
    }
    let n: i128 = i128::from(digits(frac)?);
    Some(n * 10i128.pow(9 - frac.len() as u32))
}

fn days_in(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An IPv4 or IPv6 network in CIDR notation; an address without a prefix
/// length is the single address (`/32`, `/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { net: u32, len: u8 },
    V6 { net: u128, len: u8 },
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let len: Option<u8> = match len {
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                Some(l.parse().ok()?)
            }
            Some(_) => return None,
            None => None,
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return None;
                }
                Some(Cidr::V4 {
                    net: u32::from(a) & mask32(len),
                    len,
                })
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return None;
                }
                Some(Cidr::V6 {
                    net: u128::from(a) & mask128(len),
                    len,
                })
            }
        }
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Cidr::V4 { net, len }, IpAddr::V4(a)) => u32::from(a) & mask32(len) == net,
            (Cidr::V6 { net, len }, IpAddr::V6(a)) => u128::from(a) & mask128(len) == net,
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    const SEC: i128 = 1_000_000_000;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_date("2020-01-01T00:00:00Z"),
            Some(1_577_836_800 * SEC)
        );
        assert_eq!(parse_date("1577836800"), Some(1_577_836_800 * SEC));
        assert_eq!(parse_date("2020-01-01"), Some(1_577_836_800 * SEC));
        assert_eq!(parse_date("2020"), Some(2020 * SEC));
        assert_eq!(
            parse_date("2020-01-01T01:00:00+01:00"),
            Some(1_577_836_800 * SEC)
        );
        assert_eq!(
            parse_date("2019-12-31T23:00:00-01:00"),
            Some(1_577_836_800 * SEC)
        );
        assert_eq!(
            parse_date("2020-01-01T00:00:00.5Z"),
            Some(1_577_836_800 * SEC + SEC / 2)
        );
        assert_eq!(parse_date("2020-01-01T00:00Z"), Some(1_577_836_800 * SEC));
        assert_eq!(
            parse_date("2024-02-29T00:00:00Z"),
            Some(1_709_164_800 * SEC)
        );
        assert_eq!(parse_date("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_date("2020-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("2020-01-01T25:00:00Z"), None);
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        let one = Cidr::parse("10.0.0.1").unwrap();
        assert!(one.contains("10.0.0.1".parse().unwrap()));
        assert!(!one.contains("10.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains("2001:db8:1234:5678:abcd::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1234:5679::1".parse().unwrap()));
        assert!(!v6.contains("203.0.113.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("nonsense"), None);
    }

    #[test]
    fn operator_names() {
        let n = OperatorName::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(n.qualifier, Some(SetQualifier::ForAllValues));
        assert_eq!(n.operator, Operator::StringLike);
        assert!(n.if_exists);
        assert_eq!(OperatorName::parse("NullIfExists"), None);
        assert_eq!(OperatorName::parse("StringEqualz"), None);
        assert_eq!(OperatorName::parse("stringequals"), None);
        assert_eq!(
            Operator::NumericLessThanEquals.name(),
            "NumericLessThanEquals"
        );
    }
}
