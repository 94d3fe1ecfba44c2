//! What an instance's user data tells the ECS agent: the `ECS_*` settings it
//! would find in `/etc/ecs/ecs.config`.
//!
//! User data is usually a shell script that writes that file. This module
//! reads the forms people use, without running anything:
//!
//! * plain `ECS_CLUSTER=name` lines (user data that is the config itself);
//! * `echo ECS_CLUSTER=name >> /etc/ecs/ecs.config` (quoted or not, `>`
//!   truncating, several commands joined by `;` or `&&`, `echo -e` with `\n`);
//! * heredocs written to the file: `cat <<EOF >> /etc/ecs/ecs.config`,
//!   `cat > /etc/ecs/ecs.config <<'EOF'`, `tee -a /etc/ecs/ecs.config <<EOF`.
//!
//! Lines are read as the agent reads its env file: `KEY=VALUE`, the value
//! verbatim, `#` lines are comments; keys that do not start with `ECS_` are
//! ignored, a later setting wins. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The file the ECS agent reads its settings from.
pub const ECS_CONFIG_PATH: &str = "/etc/ecs/ecs.config";

/// Why user data could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDataError {
    /// The user data is not valid base64.
    InvalidBase64(String),
}

impl fmt::Display for UserDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserDataError::InvalidBase64(e) => {
                write!(f, "Invalid BASE64 encoding of user data: {e}")
            }
        }
    }
}

impl std::error::Error for UserDataError {}

/// Decode base64 user data (whitespace inside is allowed, as EC2 allows it).
pub fn decode(base64: &str) -> Result<Vec<u8>, UserDataError> {
    let compact: String = base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| UserDataError::InvalidBase64(e.to_string()))
}

/// The `ECS_*` settings that base64 user data writes to
/// `/etc/ecs/ecs.config` (see the module documentation for the forms read).
pub fn ecs_config_from_user_data(base64: &str) -> Result<BTreeMap<String, String>, UserDataError> {
    let bytes = decode(base64)?;
    Ok(ecs_config_from_script(&String::from_utf8_lossy(&bytes)))
}

/// [`ecs_config_from_user_data`] on the decoded text.
pub fn ecs_config_from_script(script: &str) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    let mut lines = script.lines();
    while let Some(raw) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = env_line(line) {
            config.insert(k, v);
            continue;
        }
        let tokens = tokenize(line);
        let mut heredoc: Option<Heredoc> = None;
        for command in tokens.split(|t| matches!(t, Token::Op(op) if is_separator(op))) {
            let cmd = Command::parse(command);
            if let Some(h) = cmd.heredoc.clone() {
                heredoc = Some(h);
            }
            let Some(first) = cmd.words.first() else {
                continue;
            };
            if first == "echo" && cmd.writes_config() && cmd.heredoc.is_none() {
                if cmd.truncates() {
                    config.clear();
                }
                let (interpret, args) = echo_args(&cmd.words[1..]);
                let mut text = args.join(" ");
                if interpret {
                    text = text.replace("\\n", "\n");
                }
                for l in text.lines() {
                    if let Some((k, v)) = env_line(l.trim()) {
                        config.insert(k, v);
                    }
                }
            }
        }
        if let Some(h) = heredoc {
            if h.to_config && h.truncate {
                config.clear();
            }
            for body in lines.by_ref() {
                if body.trim() == h.delimiter {
                    break;
                }
                if h.to_config {
                    if let Some((k, v)) = env_line(body.trim()) {
                        config.insert(k, v);
                    }
                }
            }
        }
    }
    config
}

/// `ECS_NAME=value` → `(ECS_NAME, value)`; anything else → `None`.
fn env_line(line: &str) -> Option<(String, String)> {
    let (k, v) = line.split_once('=')?;
    let valid = k.starts_with("ECS_")
        && k.len() > 4
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (k.to_string(), v.to_string()))
}

/// `echo`'s flags: whether `-e` asks for escapes, and the words to print.
fn echo_args(words: &[String]) -> (bool, &[String]) {
    let mut interpret = false;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if w.len() > 1 && w.starts_with('-') && w[1..].chars().all(|c| "neE".contains(c)) {
            interpret |= w.contains('e');
            i += 1;
        } else {
            break;
        }
    }
    (interpret, &words[i..])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Op(String),
}

fn is_separator(op: &str) -> bool {
    matches!(op, ";" | "&&" | "||" | "|" | "&")
}

/// Split one shell line into words (quotes removed) and operators.
fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, in_word: &mut bool, tokens: &mut Vec<Token>| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n) if "\"\\$`".contains(n) => {
                                word.push(n);
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => flush(&mut word, &mut in_word, &mut tokens),
            '>' | '<' | ';' | '&' | '|' => {
                flush(&mut word, &mut in_word, &mut tokens);
                let mut op = c.to_string();
                if chars.peek() == Some(&c) && c != ';' {
                    op.push(c);
                    chars.next();
                    if c == '<' && chars.peek() == Some(&'-') {
                        op.push('-');
                        chars.next();
                    }
                }
                tokens.push(Token::Op(op));
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut in_word, &mut tokens);
    tokens
}

#[derive(Debug, Clone)]
struct Heredoc {
    delimiter: String,
    to_config: bool,
    truncate: bool,
}

/// One simple command: its words and where it writes.
struct Command {
    words: Vec<String>,
    /// `(append, target)` of each output redirection.
    redirects: Vec<(bool, String)>,
    heredoc: Option<Heredoc>,
}

impl Command {
    fn parse(tokens: &[Token]) -> Command {
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        let mut delimiter = None;
        let mut it = tokens.iter();
        while let Some(t) = it.next() {
            match t {
                Token::Word(w) => words.push(w.clone()),
                Token::Op(op) if op == ">" || op == ">>" => {
                    if let Some(Token::Word(target)) = it.next() {
                        redirects.push((op == ">>", target.clone()));
                    }
                }
                Token::Op(op) if op == "<<" || op == "<<-" => {
                    if let Some(Token::Word(d)) = it.next() {
                        delimiter = Some(d.clone());
                    }
                }
                Token::Op(_) => {}
            }
        }
        if words.first().is_some_and(|w| w == "sudo") {
            words.remove(0);
        }
        let mut cmd = Command {
            words,
            redirects,
            heredoc: None,
        };
        if let Some(delimiter) = delimiter {
            let tee = cmd.words.first().is_some_and(|w| w == "tee");
            let tee_target = tee && cmd.words.iter().any(|w| w == ECS_CONFIG_PATH);
            let tee_append = cmd.words.iter().any(|w| w == "-a" || w == "--append");
            cmd.heredoc = Some(Heredoc {
                delimiter,
                to_config: cmd.writes_config() || tee_target,
                truncate: cmd.truncates() || (tee_target && !tee_append),
            });
        }
        cmd
    }

    fn writes_config(&self) -> bool {
        self.redirects.iter().any(|(_, t)| t == ECS_CONFIG_PATH)
    }

    fn truncates(&self) -> bool {
        self.redirects
            .iter()
            .any(|(append, t)| !append && t == ECS_CONFIG_PATH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    fn config(script: &str) -> Vec<(String, String)> {
        ecs_config_from_user_data(&b64(script))
            .unwrap()
            .into_iter()
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_lines_and_comments() {
        let got = config("# settings\nECS_CLUSTER=web\n  ECS_ENABLE_TASK_IAM_ROLE=true\nOTHER=1\n#ECS_LOGLEVEL=debug\n");
        assert_eq!(
            got,
            kv(&[("ECS_CLUSTER", "web"), ("ECS_ENABLE_TASK_IAM_ROLE", "true")])
        );
    }

    #[test]
    fn echo_appends_in_every_quoting() {
        let script = "#!/bin/bash\n\
            echo ECS_CLUSTER=prod >> /etc/ecs/ecs.config\n\
            echo \"ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1h\" >> /etc/ecs/ecs.config; echo 'ECS_AWSVPC_BLOCK_IMDS=true' >> /etc/ecs/ecs.config\n\
            echo ECS_LOGLEVEL=debug >> /tmp/other.config\n\
            yum install -y aws-cli && echo ECS_RESERVED_MEMORY=256 >>/etc/ecs/ecs.config\n\
            echo -e 'ECS_A=1\\nECS_B=2' >> /etc/ecs/ecs.config\n";
        assert_eq!(
            config(script),
            kv(&[
                ("ECS_A", "1"),
                ("ECS_AWSVPC_BLOCK_IMDS", "true"),
                ("ECS_B", "2"),
                ("ECS_CLUSTER", "prod"),
                ("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", "1h"),
                ("ECS_RESERVED_MEMORY", "256"),
            ])
        );
    }

    #[test]
    fn truncating_echo_starts_over() {
        let script =
            "echo ECS_CLUSTER=a >> /etc/ecs/ecs.config\necho ECS_CLUSTER=b > /etc/ecs/ecs.config\n";
        assert_eq!(config(script), kv(&[("ECS_CLUSTER", "b")]));
    }

    #[test]
    fn heredocs_to_the_config_and_elsewhere() {
        let script = "#!/bin/bash\n\
            cat <<EOF >> /etc/ecs/ecs.config\n\
            ECS_CLUSTER=batch\n\
            # a comment\n\
            ECS_CONTAINER_INSTANCE_TAGS={\"team\": \"a\"}\n\
            NOT_ECS=1\n\
            EOF\n\
            cat <<'END' > /etc/motd\n\
            ECS_CLUSTER=not-this-one\n\
            END\n\
            sudo tee -a /etc/ecs/ecs.config <<- X\n\
            \tECS_SPOT=yes\n\
            \tX\n";
        assert_eq!(
            config(script),
            kv(&[
                ("ECS_CLUSTER", "batch"),
                ("ECS_CONTAINER_INSTANCE_TAGS", "{\"team\": \"a\"}"),
                ("ECS_SPOT", "yes"),
            ])
        );
    }

    #[test]
    fn later_settings_win_and_whitespace_in_base64_is_allowed() {
        let text = "ECS_CLUSTER=a\necho ECS_CLUSTER=b >> /etc/ecs/ecs.config\n";
        let wrapped: String = b64(text)
            .as_bytes()
            .chunks(8)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let got = ecs_config_from_user_data(&wrapped).unwrap();
        assert_eq!(got.get("ECS_CLUSTER").map(String::as_str), Some("b"));
    }

    #[test]
    fn non_ecs_and_empty() {
        assert!(config("#!/bin/bash\nyum update -y\nexport FOO=bar\n").is_empty());
        assert!(ecs_config_from_user_data("").unwrap().is_empty());
    }

    #[test]
    fn invalid_base64_is_an_error() {
        assert!(matches!(
            ecs_config_from_user_data("not base64!"),
            Err(UserDataError::InvalidBase64(_))
        ));
    }
}
