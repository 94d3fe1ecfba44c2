//! The ECS cluster query language: the expressions of `memberOf` placement
//! constraints and of the `ListContainerInstances` `filter`.
//!
//! ```text
//! expr     := or
//! or       := and (("or" | "||") and)*
//! and      := unary (("and" | "&&") unary)*
//! unary    := ("not" | "!") unary | "(" expr ")" | condition
//! condition:= subject operator [argument]
//! subject  := attribute:<name> | ec2InstanceId | agentConnected | agentVersion
//!           | registeredAt | runningTasksCount | task:group
//! operator := == | equals | != | not_equals | > | greater_than
//!           | >= | greater_than_equal | < | less_than | <= | less_than_equal
//!           | exists | !exists | not_exists | in | !in | not_in
//!           | =~ | matches | !~ | not_matches
//! argument := value | "[" value ("," value)* "]"
//! value    := 'quoted' | "quoted" | unquoted token
//! ```
//!
//! Precedence, tightest first: `not`, `and`, `or` (the developer guide only
//! documents parentheses for precedence, `(e1 or e2) and e3`, which implies
//! this conventional order). As the guide says, a single condition can't
//! contain parentheses: an unquoted value ends at `(`, `)`, `[`, `]`, `,`,
//! whitespace, `&&` or `||`; quote a value that needs any of them.
//!
//! `matches` / `not_matches` take a Java regular expression in ECS and must
//! match the whole value (Java `Matcher.matches`); here the `regex` crate
//! runs it, anchored, so Java-only features (backreferences, lookaround) are
//! rejected as a parse error.
//!
//! Pure: no IO. Parse once with [`parse`], evaluate many times with
//! [`Expr::eval`] against anything implementing [`Subject`].

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;

/// ECS's limit on an expression's length, in characters.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// What an expression is evaluated against: a container instance as it is
/// at placement time.
pub trait Subject {
    /// `None`: the attribute is absent; `Some(None)`: present without value.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn ec2_instance_id(&self) -> &str;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> &str;
    /// Registration time, seconds since the Unix epoch.
    fn registered_at(&self) -> f64;
    fn running_tasks_count(&self) -> i64;
    /// The task group of each task on the instance (one entry per task).
    fn task_groups(&self) -> &[String];
}

/// A parse error: what is wrong and the character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Offset in characters from the start of the expression.
    pub position: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at position {})", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cond(Condition),
}

/// `subject operator [argument]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub subject: SubjectField,
    pub op: Operator,
    pub arg: Argument,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectField {
    /// `attribute:<name>`
    Attribute(String),
    Ec2InstanceId,
    AgentConnected,
    AgentVersion,
    RegisteredAt,
    RunningTasksCount,
    /// `task:group`
    TaskGroup,
}

impl SubjectField {
    fn name(&self) -> String {
        match self {
            SubjectField::Attribute(n) => format!("attribute:{n}"),
            SubjectField::Ec2InstanceId => "ec2InstanceId".into(),
            SubjectField::AgentConnected => "agentConnected".into(),
            SubjectField::AgentVersion => "agentVersion".into(),
            SubjectField::RegisteredAt => "registeredAt".into(),
            SubjectField::RunningTasksCount => "runningTasksCount".into(),
            SubjectField::TaskGroup => "task:group".into(),
        }
    }

    /// The operators the developer guide lists as valid for the subject
    /// (`attribute:` and `task:group` list none, so all are accepted).
    fn allows(&self, op: Operator) -> bool {
        use Operator::*;
        match self {
            SubjectField::Attribute(_) | SubjectField::TaskGroup => true,
            SubjectField::AgentConnected | SubjectField::Ec2InstanceId => {
                matches!(op, Eq | Ne | In | NotIn | Matches | NotMatches)
            }
            SubjectField::AgentVersion
            | SubjectField::RegisteredAt
            | SubjectField::RunningTasksCount => matches!(op, Eq | Ne | Gt | Ge | Lt | Le),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Operator {
    fn name(self) -> &'static str {
        match self {
            Operator::Eq => "==",
            Operator::Ne => "!=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Exists => "exists",
            Operator::NotExists => "not_exists",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Matches => "=~",
            Operator::NotMatches => "!~",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Argument {
    /// `exists` / `not_exists`.
    None,
    Value(String),
    List(Vec<String>),
    Pattern(Pattern),
    /// `runningTasksCount` arguments.
    Integer(i64),
    /// `registeredAt` arguments, seconds since the Unix epoch.
    Timestamp(i64),
}

/// A compiled `matches` pattern; compares by its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Pattern {
    fn new(source: &str) -> Result<Pattern, String> {
        Regex::new(&format!("^(?:{source})$"))
            .map(|regex| Pattern {
                source: source.to_string(),
                regex,
            })
            .map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("").trim().to_string();
                format!("invalid regular expression '{source}': {last}")
            })
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// Parses an expression. Errors name the problem and where it is.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_EXPRESSION_LEN {
        return Err(ParseError {
            message: format!(
                "the expression is {} characters long; the maximum is {MAX_EXPRESSION_LEN}",
                chars.len()
            ),
            position: MAX_EXPRESSION_LEN,
        });
    }
    let mut p = Parser { s: chars, i: 0 };
    p.skip_ws();
    if p.at_end() {
        return Err(p.err("the expression is empty"));
    }
    let e = p.or_expr()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.err(format!(
            "expected 'and', 'or' or the end of the expression, found {}",
            p.describe_here()
        )));
    }
    Ok(e)
}

struct Parser {
    s: Vec<char>,
    i: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '\\' | ':' | '@')
}

impl Parser {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            position: self.i,
        }
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn starts_with(&self, lit: &str) -> bool {
        lit.chars()
            .enumerate()
            .all(|(k, c)| self.s.get(self.i + k) == Some(&c))
    }

    /// The word (run of word characters) at the cursor, without consuming it.
    fn word_here(&self) -> String {
        self.s[self.i..]
            .iter()
            .take_while(|c| is_word_char(**c))
            .collect()
    }

    /// True when `kw` is at the cursor as a whole word.
    fn keyword_here(&self, kw: &str) -> bool {
        self.starts_with(kw)
            && !self
                .s
                .get(self.i + kw.chars().count())
                .is_some_and(|c| is_word_char(*c))
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the expression".into(),
            Some(_) => {
                let w = self.word_here();
                if w.is_empty() {
                    format!("'{}'", self.s[self.i])
                } else {
                    format!("'{w}'")
                }
            }
        }
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and_expr()?;
        loop {
            self.skip_ws();
            // `||` and `or` are both two characters long.
            if self.starts_with("||") || self.keyword_here("or") {
                self.i += 2;
            } else {
                return Ok(left);
            }
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            self.skip_ws();
            if self.starts_with("&&") {
                self.i += 2;
            } else if self.keyword_here("and") {
                self.i += 3;
            } else {
                return Ok(left);
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.at_end() {
            return Err(self.err("expected a condition, found the end of the expression"));
        }
        if self.peek() == Some('!') {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.keyword_here("not") {
            self.i += 3;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some('(') {
            let open = self.i;
            self.i += 1;
            let e = self.or_expr()?;
            self.skip_ws();
            if self.peek() != Some(')') {
                return Err(ParseError {
                    message: format!(
                        "expected ')' to close the '(' at position {open}, found {}",
                        self.describe_here()
                    ),
                    position: self.i,
                });
            }
            self.i += 1;
            return Ok(e);
        }
        self.condition().map(Expr::Cond)
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let word = self.word_here();
        if word.is_empty() {
            return Err(self.err(format!(
                "expected a subject, found {}",
                self.describe_here()
            )));
        }
        let subject = match word.as_str() {
            "ec2InstanceId" => SubjectField::Ec2InstanceId,
            "agentConnected" => SubjectField::AgentConnected,
            "agentVersion" => SubjectField::AgentVersion,
            "registeredAt" => SubjectField::RegisteredAt,
            "runningTasksCount" => SubjectField::RunningTasksCount,
            "task:group" => SubjectField::TaskGroup,
            w => match w.strip_prefix("attribute:") {
                Some("") => return Err(self.err("'attribute:' needs an attribute name")),
                Some(name) => SubjectField::Attribute(name.to_string()),
                None => {
                    return Err(self.err(format!(
                        "unknown subject '{w}'; expected attribute:<name>, ec2InstanceId, \
                         agentConnected, agentVersion, registeredAt, runningTasksCount \
                         or task:group"
                    )))
                }
            },
        };
        self.i += word.chars().count();
        self.skip_ws();
        let op_at = self.i;
        let op = self.operator(&subject)?;
        if !subject.allows(op) {
            return Err(ParseError {
                message: format!(
                    "operator '{}' is not valid for subject '{}'",
                    op.name(),
                    subject.name()
                ),
                position: op_at,
            });
        }
        let arg = self.argument(&subject, op)?;
        Ok(Condition { subject, op, arg })
    }

    fn operator(&mut self, subject: &SubjectField) -> Result<Operator, ParseError> {
        // Symbolic forms first; the longer spellings before their prefixes.
        const SYMBOLS: [(&str, Operator); 8] = [
            ("==", Operator::Eq),
            ("!=", Operator::Ne),
            ("=~", Operator::Matches),
            ("!~", Operator::NotMatches),
            (">=", Operator::Ge),
            ("<=", Operator::Le),
            (">", Operator::Gt),
            ("<", Operator::Lt),
        ];
        if self.peek() == Some('!') {
            self.i += 1;
            if self.keyword_here("exists") {
                self.i += 6;
                return Ok(Operator::NotExists);
            }
            if self.keyword_here("in") {
                self.i += 2;
                return Ok(Operator::NotIn);
            }
            self.i -= 1;
        }
        for (sym, op) in SYMBOLS {
            if self.starts_with(sym) {
                self.i += sym.len();
                return Ok(op);
            }
        }
        let word = self.word_here();
        let op = match word.as_str() {
            "equals" => Operator::Eq,
            "not_equals" => Operator::Ne,
            "greater_than" => Operator::Gt,
            "greater_than_equal" => Operator::Ge,
            "less_than" => Operator::Lt,
            "less_than_equal" => Operator::Le,
            "exists" => Operator::Exists,
            "not_exists" => Operator::NotExists,
            "in" => Operator::In,
            "not_in" => Operator::NotIn,
            "matches" => Operator::Matches,
            "not_matches" => Operator::NotMatches,
            _ => {
                return Err(self.err(format!(
                    "expected an operator after '{}', found {}",
                    subject.name(),
                    self.describe_here()
                )))
            }
        };
        self.i += word.chars().count();
        Ok(op)
    }

    fn argument(&mut self, subject: &SubjectField, op: Operator) -> Result<Argument, ParseError> {
        match op {
            Operator::Exists | Operator::NotExists => Ok(Argument::None),
            Operator::In | Operator::NotIn => {
                self.skip_ws();
                if self.peek() != Some('[') {
                    return Err(self.err(format!(
                        "'{}' expects a list such as [a, b], found {}",
                        op.name(),
                        self.describe_here()
                    )));
                }
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(']') && items.is_empty() {
                        return Err(self.err("the argument list is empty"));
                    }
                    items.push(self.value(true)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(',') => self.i += 1,
                        Some(']') => {
                            self.i += 1;
                            break;
                        }
                        _ => {
                            return Err(self.err(format!(
                                "expected ',' or ']' in the argument list, found {}",
                                self.describe_here()
                            )))
                        }
                    }
                }
                Ok(Argument::List(items))
            }
            _ => {
                self.skip_ws();
                let at = self.i;
                let v = self.value(false)?;
                let bad = |message: String| ParseError {
                    message,
                    position: at,
                };
                match (op, subject) {
                    (Operator::Matches | Operator::NotMatches, _) => {
                        Pattern::new(&v).map(Argument::Pattern).map_err(bad)
                    }
                    (_, SubjectField::RunningTasksCount) => {
                        v.parse::<i64>().map(Argument::Integer).map_err(|_| {
                            bad(format!("runningTasksCount expects an integer, found '{v}'"))
                        })
                    }
                    (_, SubjectField::RegisteredAt) => {
                        parse_date(&v).map(Argument::Timestamp).ok_or_else(|| {
                            bad(format!(
                                "registeredAt expects a date such as 2018-06-18, \
                                 2018-06-18T22:28:28, 2018-06-18T22:28:28Z or \
                                 2018-06-18T22:28:28+00:00, found '{v}'"
                            ))
                        })
                    }
                    _ => Ok(Argument::Value(v)),
                }
            }
        }
    }

    /// A quoted or unquoted value.
    fn value(&mut self, in_list: bool) -> Result<String, ParseError> {
        match self.peek() {
            None => Err(self.err("expected a value, found the end of the expression")),
            Some(q @ ('\'' | '"')) => {
                let open = self.i;
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(ParseError {
                                message: format!(
                                    "unterminated quoted value starting at position {open}"
                                ),
                                position: self.i,
                            })
                        }
                        Some(c) if c == q => {
                            self.i += 1;
                            return Ok(out);
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            Some(_) => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c.is_whitespace()
                        || matches!(c, '(' | ')' | '[' | ']' | ',')
                        || self.starts_with("&&")
                        || self.starts_with("||")
                    {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    let what = if in_list {
                        "in the argument list"
                    } else {
                        "as the argument"
                    };
                    return Err(self.err(format!(
                        "expected a value {what}, found {}",
                        self.describe_here()
                    )));
                }
                Ok(self.s[start..self.i].iter().collect())
            }
        }
    }
}

/// The date formats the developer guide lists for `registeredAt`; a time
/// without an offset, or a bare date (midnight), is UTC.
fn parse_date(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc().timestamp());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// Orders two attribute values: numerically when both are numbers,
/// otherwise as strings.
fn compare_values(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        _ => a.cmp(b),
    }
}

/// Orders agent versions component by component (`1.9.0 < 1.14.5`), numbers
/// numerically; a leading `v` is ignored and missing components count as 0.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.trim()
            .trim_start_matches(['v', 'V'])
            .split(['.', '-', '+'])
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for k in 0..pa.len().max(pb.len()) {
        let x = pa.get(k).map(String::as_str).unwrap_or("0");
        let y = pb.get(k).map(String::as_str).unwrap_or("0");
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn ordering_holds(op: Operator, o: Ordering) -> bool {
    match op {
        Operator::Eq => o == Ordering::Equal,
        Operator::Ne => o != Ordering::Equal,
        Operator::Gt => o == Ordering::Greater,
        Operator::Ge => o != Ordering::Less,
        Operator::Lt => o == Ordering::Less,
        Operator::Le => o != Ordering::Greater,
        _ => false,
    }
}

impl Condition {
    /// Tests one present string value (the operator is not `exists`/`not_exists`).
    fn test_str(&self, v: &str) -> bool {
        match (&self.op, &self.arg) {
            (Operator::Eq, Argument::Value(a)) => v == a,
            (Operator::Ne, Argument::Value(a)) => v != a,
            (
                op @ (Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le),
                Argument::Value(a),
            ) => ordering_holds(*op, compare_values(v, a)),
            (Operator::In, Argument::List(l)) => l.iter().any(|a| a == v),
            (Operator::NotIn, Argument::List(l)) => l.iter().all(|a| a != v),
            (Operator::Matches, Argument::Pattern(p)) => p.is_match(v),
            (Operator::NotMatches, Argument::Pattern(p)) => !p.is_match(v),
            _ => false,
        }
    }

    /// Tests a subject that may be absent. Every operator but `not_exists`
    /// needs it present: `attribute:stack != prod` selects "the instances
    /// with the custom attribute stack unless the attribute value is prod"
    /// (developer guide, filtering by attribute). A present attribute with
    /// no value compares as the empty string.
    fn test_optional(&self, v: Option<Option<&str>>) -> bool {
        match self.op {
            Operator::Exists => v.is_some(),
            Operator::NotExists => v.is_none(),
            _ => v.is_some_and(|v| self.test_str(v.unwrap_or(""))),
        }
    }

    pub fn eval<S: Subject + ?Sized>(&self, s: &S) -> bool {
        match &self.subject {
            SubjectField::Attribute(name) => self.test_optional(s.attribute(name)),
            SubjectField::Ec2InstanceId => self.test_optional(Some(Some(s.ec2_instance_id()))),
            SubjectField::AgentConnected => {
                let v = if s.agent_connected() { "true" } else { "false" };
                self.test_optional(Some(Some(v)))
            }
            SubjectField::AgentVersion => match &self.arg {
                Argument::Value(a) => {
                    ordering_holds(self.op, compare_versions(s.agent_version(), a))
                }
                _ => false,
            },
            SubjectField::RegisteredAt => match &self.arg {
                Argument::Timestamp(t) => {
                    let at = s.registered_at().floor() as i64;
                    ordering_holds(self.op, at.cmp(t))
                }
                _ => false,
            },
            SubjectField::RunningTasksCount => match &self.arg {
                Argument::Integer(n) => ordering_holds(self.op, s.running_tasks_count().cmp(n)),
                _ => false,
            },
            // An instance runs a set of tasks: the condition holds when some
            // task on it satisfies it (`task:group == databases` selects the
            // instances hosting a task of that group). `exists` holds when
            // the instance runs any task, `not_exists` when it runs none.
            SubjectField::TaskGroup => {
                let groups = s.task_groups();
                match self.op {
                    Operator::Exists => !groups.is_empty(),
                    Operator::NotExists => groups.is_empty(),
                    _ => groups.iter().any(|g| self.test_str(g)),
                }
            }
        }
    }
}

impl Expr {
    /// True when the subject satisfies the expression.
    pub fn eval<S: Subject + ?Sized>(&self, s: &S) -> bool {
        match self {
            Expr::And(a, b) => a.eval(s) && b.eval(s),
            Expr::Or(a, b) => a.eval(s) || b.eval(s),
            Expr::Not(e) => !e.eval(s),
            Expr::Cond(c) => c.eval(s),
        }
    }

    /// True when some condition of the expression reads `task:group`: the
    /// only subject a placement changes, so an expression without it keeps
    /// its value for an instance while tasks are placed.
    pub fn reads_task_groups(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.reads_task_groups() || b.reads_task_groups(),
            Expr::Not(e) => e.reads_task_groups(),
            Expr::Cond(c) => c.subject == SubjectField::TaskGroup,
        }
    }

    /// The operands of the expression's top-level `and`s, left to right (the
    /// expression itself when it is not an `and`): it holds exactly when
    /// all of them hold.
    pub fn conjuncts(&self) -> Vec<&Expr> {
        fn walk<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
            match e {
                Expr::And(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                other => out.push(other),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Inst {
        attrs: BTreeMap<String, Option<String>>,
        id: String,
        connected: bool,
        version: String,
        registered: f64,
        running: i64,
        groups: Vec<String>,
    }

    impl Subject for Inst {
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.attrs.get(name).map(|v| v.as_deref())
        }
        fn ec2_instance_id(&self) -> &str {
            &self.id
        }
        fn agent_connected(&self) -> bool {
            self.connected
        }
        fn agent_version(&self) -> &str {
            &self.version
        }
        fn registered_at(&self) -> f64 {
            self.registered
        }
        fn running_tasks_count(&self) -> i64 {
            self.running
        }
        fn task_groups(&self) -> &[String] {
            &self.groups
        }
    }

    fn inst() -> Inst {
        let mut attrs = BTreeMap::new();
        attrs.insert("ecs.instance-type".into(), Some("t2.small".into()));
        attrs.insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
        attrs.insert("ecs.os-type".into(), Some("linux".into()));
        attrs.insert("ecs.cpu-architecture".into(), Some("x86_64".into()));
        attrs.insert("ecs.ami-id".into(), Some("ami-1234abcd".into()));
        attrs.insert("stack".into(), Some("prod".into()));
        attrs.insert("size".into(), Some("10".into()));
        attrs.insert("ecs.capability.task-eni".into(), None);
        Inst {
            attrs,
            id: "i-abcd1234".into(),
            connected: true,
            version: "1.14.5".into(),
            // 2018-06-18T22:28:28Z
            registered: 1_529_360_908.25,
            running: 1,
            groups: vec!["service:production".into(), "family:web".into()],
        }
    }

    fn t(expr: &str) -> bool {
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .eval(&inst())
    }

    fn err(expr: &str) -> ParseError {
        match parse(expr) {
            Ok(e) => panic!("{expr} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn documented_examples() {
        assert!(t("attribute:ecs.instance-type == t2.small"));
        assert!(t(
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"
        ));
        assert!(t(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d"
        ));
        assert!(t("task:group == service:production"));
        assert!(t("not(task:group == database)"));
        assert!(t("runningTasksCount == 1"));
        assert!(!t("agentVersion < 1.14.5"));
        assert!(!t("registeredAt < 2018-02-13"));
        assert!(t("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']"));
        assert!(t("attribute:stack == prod"));
        assert!(t("attribute:ecs.instance-type in [t2.small, t2.medium]"));
        assert!(t(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a"
        ));
    }

    #[test]
    fn equality_both_spellings() {
        assert!(t("attribute:stack == prod"));
        assert!(t("attribute:stack equals prod"));
        assert!(!t("attribute:stack == dev"));
        assert!(t("attribute:stack != dev"));
        assert!(t("attribute:stack not_equals dev"));
        assert!(!t("attribute:stack != prod"));
        assert!(t("attribute:ecs.os-type==linux"));
        assert!(t("attribute:ecs.cpu-architecture == x86_64"));
        assert!(t("attribute:ecs.ami-id == ami-1234abcd"));
        assert!(t("ec2InstanceId == i-abcd1234"));
        assert!(t("ec2InstanceId != i-other"));
        assert!(t("agentConnected == true"));
        assert!(!t("agentConnected == false"));
        assert!(t("agentConnected != false"));
    }

    #[test]
    fn negative_operators_need_the_attribute() {
        // "instances with the custom attribute stack unless the value is prod"
        assert!(!t("attribute:missing != prod"));
        assert!(!t("attribute:missing not_in [a]"));
        assert!(!t("attribute:missing !~ a.*"));
        assert!(!t("attribute:missing == prod"));
        // but not(...) of a positive condition holds
        assert!(t("not attribute:missing == prod"));
    }

    #[test]
    fn ordering_operators() {
        assert!(t("attribute:size > 9"));
        assert!(t("attribute:size greater_than 9"));
        // numeric, not lexicographic ("10" < "9" as strings)
        assert!(!t("attribute:size < 9"));
        assert!(t("attribute:size >= 10"));
        assert!(t("attribute:size greater_than_equal 10.0"));
        assert!(!t("attribute:size >= 11"));
        assert!(t("attribute:size < 100"));
        assert!(t("attribute:size less_than 100"));
        assert!(t("attribute:size <= 10"));
        assert!(t("attribute:size less_than_equal 10"));
        assert!(!t("attribute:size <= 9.5"));
        // strings compare as strings
        assert!(t("attribute:stack > pra"));
        assert!(t("attribute:ecs.availability-zone < us-east-1b"));
        // == is string equality even for numbers
        assert!(!t("attribute:size == 10.0"));
    }

    #[test]
    fn exists_operators() {
        assert!(t("attribute:stack exists"));
        assert!(t("attribute:ecs.capability.task-eni exists"));
        assert!(!t("attribute:missing exists"));
        assert!(t("attribute:missing !exists"));
        assert!(t("attribute:missing not_exists"));
        assert!(!t("attribute:stack not_exists"));
        assert!(t("task:group exists"));
        let mut empty = inst();
        empty.groups.clear();
        assert!(parse("task:group not_exists").unwrap().eval(&empty));
        assert!(!parse("task:group exists").unwrap().eval(&empty));
    }

    #[test]
    fn valueless_attribute_compares_as_empty() {
        assert!(t("attribute:ecs.capability.task-eni != x"));
        assert!(t("attribute:ecs.capability.task-eni == ''"));
    }

    #[test]
    fn in_lists() {
        assert!(t("attribute:stack in [dev, prod]"));
        assert!(t("attribute:stack in [prod]"));
        assert!(t("attribute:stack in ['dev' , \"prod\"]"));
        assert!(!t("attribute:stack in [dev,test]"));
        assert!(t("attribute:stack not_in [dev, test]"));
        assert!(t("attribute:stack !in [dev, test]"));
        assert!(!t("attribute:stack not_in [dev, prod]"));
        assert!(t("agentConnected in [true]"));
        assert!(t("ec2InstanceId not_in [i-1, i-2]"));
        assert!(t("task:group in [family:web, x]"));
    }

    #[test]
    fn matches_is_a_whole_value_regex() {
        assert!(t("attribute:ecs.instance-type =~ t2.*"));
        assert!(t("attribute:ecs.instance-type matches t2\\..*"));
        assert!(!t("attribute:ecs.instance-type =~ t3.*"));
        // anchored: a fragment does not match
        assert!(!t("attribute:ecs.instance-type =~ t2"));
        assert!(!t("attribute:ecs.instance-type =~ small"));
        assert!(t("attribute:ecs.instance-type =~ .*small"));
        assert!(t("attribute:ecs.instance-type !~ g2.*"));
        assert!(t("attribute:ecs.instance-type not_matches g2.*"));
        assert!(!t("attribute:ecs.instance-type !~ t2.*"));
        // alternation needs quotes: a single condition can't contain parentheses
        assert!(t("attribute:ecs.instance-type =~ 't2.(micro|small)'"));
        assert!(t("ec2InstanceId =~ i-.*"));
        assert!(t("agentConnected =~ tr.e"));
        assert!(t("task:group =~ service:.*"));
        assert!(!t("task:group !~ .*:.*"));
    }

    #[test]
    fn agent_version_registered_at_running_tasks() {
        assert!(t("agentVersion == 1.14.5"));
        assert!(t("agentVersion > 1.9.9"));
        assert!(t("agentVersion >= 1.14"));
        assert!(t("agentVersion < 1.14.10"));
        assert!(t("agentVersion <= 1.14.5"));
        assert!(t("agentVersion != 1.14.4"));
        assert!(t("registeredAt > 2018-06-18"));
        assert!(t("registeredAt < 2018-06-19"));
        assert!(t("registeredAt == 2018-06-18T22:28:28Z"));
        assert!(t("registeredAt == 2018-06-18T22:28:28+00:00"));
        assert!(t("registeredAt == 2018-06-18T22:28:28"));
        assert!(t("registeredAt >= 2018-06-18T23:28:28+01:00"));
        assert!(t("registeredAt <= 2018-06-18T22:28:28"));
        assert!(t("registeredAt != 2018-06-18"));
        assert!(t("runningTasksCount > 0"));
        assert!(t("runningTasksCount >= 1"));
        assert!(t("runningTasksCount < 2"));
        assert!(t("runningTasksCount <= 1"));
        assert!(t("runningTasksCount != 0"));
    }

    #[test]
    fn task_group_is_any_task() {
        assert!(t("task:group == family:web"));
        assert!(!t("task:group == databases"));
        assert!(t("not(task:group == databases)"));
        assert!(!t("not task:group == family:web"));
    }

    #[test]
    fn combinators_and_precedence() {
        assert!(t("attribute:stack == prod and runningTasksCount == 1"));
        assert!(t("attribute:stack == prod && runningTasksCount == 1"));
        assert!(!t("attribute:stack == dev and runningTasksCount == 1"));
        assert!(t("attribute:stack == dev or runningTasksCount == 1"));
        assert!(t("attribute:stack == dev || runningTasksCount == 1"));
        assert!(!t("attribute:stack == dev || runningTasksCount == 2"));
        assert!(t("!attribute:stack == dev"));
        assert!(t("! (attribute:stack == dev)"));
        assert!(t("not attribute:stack == dev"));
        // and binds tighter than or: true or (false and false)
        assert!(t(
            "attribute:stack == prod or attribute:stack == dev and runningTasksCount == 5"
        ));
        // parentheses override: (true or false) and false
        assert!(!t(
            "(attribute:stack == prod or attribute:stack == dev) and runningTasksCount == 5"
        ));
        // not binds tighter than and: (not true) and true
        assert!(!t("not attribute:stack == prod and runningTasksCount == 1"));
        assert!(t(
            "not (attribute:stack == prod and runningTasksCount == 2)"
        ));
        assert!(t("((attribute:stack == prod))"));
        assert!(t("not not attribute:stack == prod"));
        assert!(t("(attribute:stack==prod)&&(runningTasksCount==1)"));
    }

    #[test]
    fn ast_shape() {
        let e = parse("attribute:a == 1 or attribute:b == 2 and not attribute:c exists").unwrap();
        let cond = |n: &str, op: Operator, arg: Argument| {
            Box::new(Expr::Cond(Condition {
                subject: SubjectField::Attribute(n.into()),
                op,
                arg,
            }))
        };
        assert_eq!(
            e,
            Expr::Or(
                cond("a", Operator::Eq, Argument::Value("1".into())),
                Box::new(Expr::And(
                    cond("b", Operator::Eq, Argument::Value("2".into())),
                    Box::new(Expr::Not(cond("c", Operator::Exists, Argument::None))),
                )),
            )
        );
        // left-associative
        let e = parse("attribute:a exists or attribute:b exists or attribute:c exists").unwrap();
        match e {
            Expr::Or(l, _) => assert!(matches!(*l, Expr::Or(_, _))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(err("").message, "the expression is empty");
        assert!(err("   ").message.contains("empty"));
        let e = err("foo == bar");
        assert!(e.message.contains("unknown subject 'foo'"), "{e}");
        assert_eq!(e.position, 0);
        let e = err("attribute:stack prod");
        assert!(e.message.contains("expected an operator"), "{e}");
        assert_eq!(e.position, 16);
        assert!(err("attribute:stack ==")
            .message
            .contains("expected a value"));
        assert!(err("attribute:stack in prod")
            .message
            .contains("expects a list"));
        assert!(err("attribute:stack in [a, b")
            .message
            .contains("expected ',' or ']'"));
        assert!(err("attribute:stack in []").message.contains("empty"));
        assert!(err("attribute:stack in [a,,b]")
            .message
            .contains("expected a value"));
        assert!(err("(attribute:stack == prod")
            .message
            .contains("expected ')'"));
        assert!(err("attribute:stack == prod)")
            .message
            .contains("expected 'and', 'or'"));
        assert!(err("attribute:stack == prod and")
            .message
            .contains("expected a condition"));
        assert!(err("attribute:stack == prod xor a")
            .message
            .contains("'xor'"));
        assert!(err("attribute: == a").message.contains("attribute name"));
        assert!(err("attribute:stack == 'prod")
            .message
            .contains("unterminated"));
        // a single condition can't contain parentheses
        assert!(parse("attribute:stack =~ t2.(a|b)").is_err());
        assert!(err("attribute:stack =~ '(['")
            .message
            .contains("invalid regular expression"));
        assert!(err("runningTasksCount == one").message.contains("integer"));
        assert!(err("registeredAt < yesterday").message.contains("date"));
        let e = err("agentConnected > 1");
        assert!(
            e.message.contains("not valid for subject 'agentConnected'"),
            "{e}"
        );
        assert!(err("agentVersion in [1.0]").message.contains("not valid"));
        assert!(err("runningTasksCount exists")
            .message
            .contains("not valid"));
        assert!(err("registeredAt =~ 2018.*").message.contains("not valid"));
        assert!(err("ec2InstanceId > i-1").message.contains("not valid"));
        // Display carries the position
        assert_eq!(
            err("attribute:stack prod").to_string(),
            "expected an operator after 'attribute:stack', found 'prod' (at position 16)"
        );
    }

    #[test]
    fn length_limit() {
        let pad = " ".repeat(MAX_EXPRESSION_LEN - "runningTasksCount == 1".len());
        assert!(parse(&format!("runningTasksCount == 1{pad}")).is_ok());
        let e = err(&format!("runningTasksCount == 1{pad} "));
        assert!(e.message.contains("maximum is 2000"), "{e}");
    }

    #[test]
    fn task_group_readers_and_conjuncts() {
        let e = parse("attribute:a == 1 and (task:group == x or attribute:b exists) and runningTasksCount == 0")
            .unwrap();
        assert!(e.reads_task_groups());
        let parts = e.conjuncts();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts
                .iter()
                .map(|p| p.reads_task_groups())
                .collect::<Vec<_>>(),
            vec![false, true, false]
        );
        assert!(parse("not(task:group == db)").unwrap().reads_task_groups());
        let e = parse("attribute:a == 1 or attribute:b == 2").unwrap();
        assert!(!e.reads_task_groups());
        assert_eq!(e.conjuncts(), vec![&e]);
    }

    #[test]
    fn version_and_value_ordering() {
        assert_eq!(compare_versions("1.9.0", "1.14.5"), Ordering::Less);
        assert_eq!(compare_versions("v1.14.5", "1.14.5"), Ordering::Equal);
        assert_eq!(compare_versions("1.14", "1.14.0"), Ordering::Equal);
        assert_eq!(compare_values("9", "10"), Ordering::Less);
        assert_eq!(compare_values("b", "a"), Ordering::Greater);
    }
}
