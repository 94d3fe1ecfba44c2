//! Content-addressed storage of the registry's blobs under the data dir,
//! shared by every repository and account: `registry/blobs/sha256/<ab>/<hex>`.
//! An upload is a file of its own under `registry/uploads/<id>` until it is
//! finished: its digest verified, the file synced and renamed into place in
//! one step, so a blob is either whole or absent, whatever happens to the
//! process. Which repository holds which blob is the store's business
//! (`ecr_layers`); this knows only files.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::names::hex_of;

/// Why an upload could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("the upload does not exist")]
    Unknown,
    #[error("the content's digest is {actual}, not {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

pub struct BlobStore {
    root: PathBuf,
    /// The running digest of each upload being appended to, so finishing
    /// a large upload does not read it again (lost on restart: then the
    /// file is read once more).
    hashers: Mutex<HashMap<String, (Sha256, u64)>>,
    /// Uploads a request is writing to or finishing: one at a time each,
    /// so nothing is appended to a file once it has become a blob.
    busy: Mutex<std::collections::HashSet<String>>,
}

/// The claim of one request on an upload, released when dropped.
pub struct Claim<'a> {
    store: &'a BlobStore,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.store.busy.lock().unwrap().remove(&self.id);
    }
}

impl BlobStore {
    /// The store under `root`, its folders made if missing; uploads left by
    /// an earlier process are kept (their sessions may be resumed).
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        fs::create_dir_all(root.join("blobs").join("sha256"))?;
        fs::create_dir_all(root.join("uploads"))?;
        Ok(BlobStore {
            root: root.to_path_buf(),
            hashers: Mutex::new(HashMap::new()),
            busy: Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = hex_of(digest)?;
        Some(
            self.root
                .join("blobs")
                .join("sha256")
                .join(&hex[..2])
                .join(hex),
        )
    }

    fn upload_path(&self, id: &str) -> Option<PathBuf> {
        let ok = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.root.join("uploads").join(id))
    }

    /// The size of a stored blob, if it is stored.
    pub fn size(&self, digest: &str) -> Option<u64> {
        fs::metadata(self.blob_path(digest)?).ok().map(|m| m.len())
    }

    /// When a stored blob's file was written.
    pub fn modified(&self, digest: &str) -> Option<std::time::SystemTime> {
        fs::metadata(self.blob_path(digest)?).ok()?.modified().ok()
    }

    /// When an upload's file was last written.
    pub fn upload_modified(&self, id: &str) -> Option<std::time::SystemTime> {
        fs::metadata(self.upload_path(id)?).ok()?.modified().ok()
    }

    /// Open a stored blob for reading.
    pub fn open_blob(&self, digest: &str) -> io::Result<File> {
        let p = self
            .blob_path(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad digest"))?;
        File::open(p)
    }

    /// Read a whole stored blob (manifests, configs).
    pub fn read(&self, digest: &str) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Start an upload: its id.
    pub fn start(&self) -> io::Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let path = self.upload_path(&id).expect("a uuid is a valid id");
        File::create(path)?;
        self.hashers
            .lock()
            .unwrap()
            .insert(id.clone(), (Sha256::new(), 0));
        Ok(id)
    }

    /// The bytes an upload holds so far, if it exists.
    pub fn upload_size(&self, id: &str) -> Option<u64> {
        fs::metadata(self.upload_path(id)?).ok().map(|m| m.len())
    }

    /// Claim an upload for one request; `Busy` while another holds it.
    pub fn claim(&self, id: &str) -> io::Result<Claim<'_>> {
        if !self.busy.lock().unwrap().insert(id.to_string()) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "another request is writing to this upload",
            ));
        }
        Ok(Claim {
            store: self,
            id: id.to_string(),
        })
    }

    /// A writer appending to an upload, for a request body arriving in
    /// pieces; [`Appender::close`] it to keep the running digest. It holds
    /// the upload's claim.
    pub fn appender(&self, id: &str) -> io::Result<Appender<'_>> {
        let claim = self.claim(id)?;
        let path = self
            .upload_path(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such upload"))?;
        let mut f = OpenOptions::new().append(true).open(path)?;
        let start = f.seek(SeekFrom::End(0))?;
        let hasher = match self.hashers.lock().unwrap().remove(id) {
            Some((h, n)) if n == start => Some(h),
            _ => None,
        };
        Ok(Appender {
            _claim: claim,
            store: self,
            id: id.to_string(),
            file: io::BufWriter::with_capacity(1 << 20, f),
            hasher,
            size: start,
        })
    }

    /// Append `bytes` to an upload; its new size.
    pub fn append(&self, id: &str, bytes: &[u8]) -> io::Result<u64> {
        let _claim = self.claim(id)?;
        let path = self
            .upload_path(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such upload"))?;
        let mut f = OpenOptions::new().append(true).open(path)?;
        let before = f.seek(SeekFrom::End(0))?;
        f.write_all(bytes)?;
        let mut hashers = self.hashers.lock().unwrap();
        match hashers.get_mut(id) {
            Some((h, n)) if *n == before => {
                h.update(bytes);
                *n += bytes.len() as u64;
            }
            _ => {
                hashers.remove(id);
            }
        }
        Ok(before + bytes.len() as u64)
    }

    /// Finish an upload as blob `expected`: verified, synced and moved into
    /// place (a blob already stored is kept and the upload dropped). Its
    /// size.
    pub fn finish(&self, id: &str, expected: &str) -> Result<u64, FinishError> {
        let path = self.upload_path(id).ok_or(FinishError::Unknown)?;
        let _claim = self.claim(id)?;
        let file = File::open(&path).map_err(|_| FinishError::Unknown)?;
        let size = file.metadata()?.len();
        let kept = self.hashers.lock().unwrap().remove(id);
        let actual = match kept {
            Some((h, n)) if n == size => format!("sha256:{}", hex::encode(h.finalize())),
            _ => digest_file(&file)?,
        };
        if actual != expected {
            return Err(FinishError::Mismatch {
                expected: expected.to_string(),
                actual,
            });
        }
        file.sync_all()?;
        drop(file);
        let dest = self.blob_path(expected).ok_or(FinishError::Mismatch {
            expected: expected.to_string(),
            actual: actual.clone(),
        })?;
        // A blob already stored is kept when whole; it is made young again
        // so the collector leaves it to the link about to be written.
        if fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            fs::remove_file(&path)?;
            File::options()
                .write(true)
                .open(&dest)?
                .set_modified(std::time::SystemTime::now())?;
            return Ok(size);
        }
        let dir = dest.parent().expect("a blob path has a folder");
        fs::create_dir_all(dir)?;
        fs::rename(&path, &dest)?;
        File::open(dir)?.sync_all()?;
        Ok(size)
    }

    /// Drop an upload.
    pub fn cancel(&self, id: &str) {
        let Ok(_claim) = self.claim(id) else {
            return;
        };
        self.hashers.lock().unwrap().remove(id);
        if let Some(p) = self.upload_path(id) {
            let _ = fs::remove_file(p);
        }
    }

    /// Upload files (id, last written), for the collector to find those
    /// nothing records.
    pub fn upload_files(&self) -> io::Result<Vec<(String, std::time::SystemTime)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("uploads"))? {
            let e = e?;
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                e.metadata()?.modified()?,
            ));
        }
        Ok(out)
    }

    /// Store `bytes` as a blob at once (manifests pushed through the API);
    /// its digest.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let id = self.start()?;
        self.append(&id, bytes)?;
        let digest = super::names::digest_of(bytes);
        self.finish(&id, &digest).map_err(|e| match e {
            FinishError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        Ok(digest)
    }

    /// Remove a stored blob (garbage collection).
    pub fn remove(&self, digest: &str) -> io::Result<()> {
        match self.blob_path(digest) {
            Some(p) => match fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Every stored blob's digest and size.
    pub fn list(&self) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for prefix in fs::read_dir(self.root.join("blobs").join("sha256"))? {
            let prefix = prefix?;
            if !prefix.file_type()?.is_dir() {
                continue;
            }
            for blob in fs::read_dir(prefix.path())? {
                let blob = blob?;
                let name = blob.file_name().to_string_lossy().into_owned();
                let digest = format!("sha256:{name}");
                if hex_of(&digest).is_some() {
                    out.push((digest, blob.metadata()?.len()));
                }
            }
        }
        Ok(out)
    }
}

/// An upload being appended to (see [`BlobStore::appender`]).
pub struct Appender<'a> {
    _claim: Claim<'a>,
    store: &'a BlobStore,
    id: String,
    file: io::BufWriter<File>,
    hasher: Option<Sha256>,
    size: u64,
}

impl Appender<'_> {
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Flush what was written; the upload's size.
    pub fn close(mut self) -> io::Result<u64> {
        self.file.flush()?;
        if let Some(h) = self.hasher.take() {
            self.store
                .hashers
                .lock()
                .unwrap()
                .insert(self.id.clone(), (h, self.size));
        }
        Ok(self.size)
    }
}

fn digest_file(mut f: &File) -> io::Result<String> {
    f.seek(SeekFrom::Start(0))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecr::names::digest_of;

    #[test]
    fn uploads_become_blobs_only_when_their_digest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let id = s.start().unwrap();
        s.append(&id, b"hello ").unwrap();
        assert_eq!(s.append(&id, b"world").unwrap(), 11);
        let wrong = digest_of(b"other");
        assert!(matches!(
            s.finish(&id, &wrong),
            Err(FinishError::Mismatch { .. })
        ));
        assert_eq!(s.size(&wrong), None);
        let right = digest_of(b"hello world");
        assert_eq!(s.finish(&id, &right).unwrap(), 11);
        assert_eq!(s.read(&right).unwrap(), b"hello world");
        assert_eq!(s.upload_size(&id), None);
        assert_eq!(s.list().unwrap(), vec![(right.clone(), 11)]);
        s.remove(&right).unwrap();
        assert_eq!(s.size(&right), None);
    }

    #[test]
    fn an_upload_resumed_after_a_restart_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = BlobStore::open(dir.path()).unwrap();
            let id = s.start().unwrap();
            s.append(&id, b"part one,").unwrap();
            id
        };
        let s = BlobStore::open(dir.path()).unwrap();
        assert_eq!(s.upload_size(&id), Some(9));
        s.append(&id, b" part two").unwrap();
        let d = digest_of(b"part one, part two");
        assert_eq!(s.finish(&id, &d).unwrap(), 18);
        assert!(s.upload_path("../../etc").is_none());
    }
}
