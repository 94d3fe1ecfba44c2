//! Keys kept in their own files, apart from the database: read one, or
//! make one (32 random bytes, mode 0600, written whole then renamed into
//! place) the first time.

use std::io::{Read, Write};
use std::path::Path;

/// The 32-byte key at `path`, made there if no file exists.
pub fn load_or_create(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    match std::fs::File::open(path) {
        Ok(mut f) => {
            f.read_exact(&mut key).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("{}: a key file holds 32 bytes: {e}", path.display()),
                )
            })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&key)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
        }
        Err(e) => return Err(e),
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/master.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, [0u8; 32]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
