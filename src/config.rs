//! Access keys the server accepts, and where Berth keeps its data.
//!
//! The key `test` with secret `test` in account `000000000000` is always
//! accepted, so scripts written for LocalStack work unchanged. More keys come
//! from a file (`--credentials-file`, or `BERTH_CREDENTIALS_FILE`) with one
//! `ACCESS_KEY SECRET ACCOUNT_ID` per line (`#` starts a comment), and from
//! `BERTH_CREDENTIALS`, a comma-separated list of `ACCESS_KEY:SECRET:ACCOUNT_ID`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

pub const DEFAULT_ACCESS_KEY: &str = "test";
pub const DEFAULT_SECRET_KEY: &str = "test";
pub const DEFAULT_ACCOUNT: &str = "000000000000";

#[derive(Debug, Clone)]
pub struct Key {
    pub secret: String,
    pub account: String,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    keys: HashMap<String, Key>,
}

impl Default for Credentials {
    fn default() -> Self {
        let mut keys = HashMap::new();
        keys.insert(
            DEFAULT_ACCESS_KEY.to_string(),
            Key {
                secret: DEFAULT_SECRET_KEY.to_string(),
                account: DEFAULT_ACCOUNT.to_string(),
            },
        );
        Credentials { keys }
    }
}

impl Credentials {
    pub fn get(&self, access_key: &str) -> Option<&Key> {
        self.keys.get(access_key)
    }

    fn add(&mut self, access_key: &str, secret: &str, account: &str) -> anyhow::Result<()> {
        if access_key.is_empty() || secret.is_empty() {
            bail!("an access key and its secret must not be empty");
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account id '{account}' of key '{access_key}' is not 12 digits");
        }
        self.keys.insert(
            access_key.to_string(),
            Key {
                secret: secret.to_string(),
                account: account.to_string(),
            },
        );
        Ok(())
    }

    /// Parse the credentials file format.
    pub fn add_file_text(&mut self, text: &str) -> anyhow::Result<()> {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [key, secret, account] = parts[..] else {
                bail!("line {}: expected 'ACCESS_KEY SECRET ACCOUNT_ID'", i + 1);
            };
            self.add(key, secret, account)
                .with_context(|| format!("line {}", i + 1))?;
        }
        Ok(())
    }

    /// Parse the `BERTH_CREDENTIALS` format.
    pub fn add_env_text(&mut self, text: &str) -> anyhow::Result<()> {
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let parts: Vec<&str> = item.split(':').collect();
            let [key, secret, account] = parts[..] else {
                bail!("BERTH_CREDENTIALS: expected ACCESS_KEY:SECRET:ACCOUNT_ID, got '{item}'");
            };
            self.add(key, secret, account)?;
        }
        Ok(())
    }

    /// The defaults plus the file and the environment variable, if given.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Credentials> {
        let mut c = Credentials::default();
        if let Some(f) = file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading credentials file {}", f.display()))?;
            c.add_file_text(&text)
                .with_context(|| format!("in credentials file {}", f.display()))?;
        }
        if let Ok(env) = std::env::var("BERTH_CREDENTIALS") {
            c.add_env_text(&env)?;
        }
        Ok(c)
    }
}

/// The default data directory: `$BERTH_DATA_DIR`, else
/// `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`.
pub fn default_data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BERTH_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(d) = std::env::var("XDG_DATA_HOME") {
        return PathBuf::from(d).join("berth");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".local/share/berth")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_formats() {
        let mut c = Credentials::default();
        c.add_file_text(
            "# team keys\nAKIA1 s3cret 111111111111\n\nAKIA2 other 222222222222 # ci\n",
        )
        .unwrap();
        c.add_env_text("AKIA3:x:333333333333").unwrap();
        assert_eq!(c.get("AKIA2").unwrap().account, "222222222222");
        assert_eq!(c.get("AKIA3").unwrap().secret, "x");
        assert_eq!(c.get("test").unwrap().account, DEFAULT_ACCOUNT);
        assert!(c.add_file_text("AKIA4 s 12").is_err());
        assert!(c.add_env_text("AKIA5:only").is_err());
    }
}
