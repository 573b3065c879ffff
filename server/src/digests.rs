//! Digest records of stored files, so a download need not rehash the file before its `DONE`.
//!
//! Each record sits in `<root>/.ferry-meta/<hash of the name>` and names the exact file version
//! it describes (device, inode, size, modification time). A download compares that identity
//! with the file handle it opened; on any difference (the file was replaced since, or the
//! record is stale or torn) it computes the digest from the handle instead. A record is thus
//! only ever a shortcut, never a source of wrong answers.

use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_protocol::{DIGEST_LEN, Digest};

const RECORD_MAGIC: &[u8; 8] = b"FRYDGST1";
const RECORD_LEN: usize = 8 + 5 * 8 + DIGEST_LEN + DIGEST_LEN;

/// Which version of a file a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    /// The identity of the file `meta` describes.
    pub(crate) fn of(meta: &Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    fn encode(&self, digest: &Digest) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_LEN);
        out.extend_from_slice(RECORD_MAGIC);
        for field in [
            self.dev,
            self.ino,
            self.size,
            self.mtime as u64,
            self.mtime_nsec as u64,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out.extend_from_slice(&digest.0);
        let check = Digest::of(&out);
        out.extend_from_slice(&check.0);
        out
    }
}

/// Where the records live.
#[derive(Debug)]
pub(crate) struct DigestStore {
    dir: PathBuf,
}

impl DigestStore {
    /// Records kept in `dir` (which must exist).
    pub(crate) fn new(dir: PathBuf) -> Self {
        DigestStore { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(Digest::of(name.as_bytes()).to_hex())
    }

    /// The recorded digest of `name`, if the record describes exactly the version `id`.
    pub(crate) fn get(&self, name: &str, id: &FileId) -> Option<Digest> {
        let bytes = fs::read(self.path(name)).ok()?;
        let expected = id.encode(&Digest([0; DIGEST_LEN]));
        if bytes.len() != RECORD_LEN || bytes[..48] != expected[..48] {
            return None;
        }
        let (body, check) = bytes.split_at(RECORD_LEN - DIGEST_LEN);
        if Digest::of(body).0 != check {
            return None;
        }
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&body[48..]);
        Some(Digest(digest))
    }

    /// Records `digest` for version `id` of `name` (written aside, then renamed over).
    pub(crate) fn put(&self, name: &str, id: &FileId, digest: &Digest) -> io::Result<()> {
        // A name of its own per write: a commit and a download may record the same name at once.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let path = self.path(name);
        let temp = path.with_extension(format!("{}.tmp", WRITES.fetch_add(1, Ordering::Relaxed)));
        let mut file = fs::File::create(&temp)?;
        file.write_all(&id.encode(digest))?;
        drop(file);
        fs::rename(&temp, &path)
    }

    /// Forgets the record of `name`.
    pub(crate) fn remove(&self, name: &str) {
        let _ = fs::remove_file(self.path(name));
    }

    /// Removes leftovers of writes cut short by a crash.
    pub(crate) fn clean_temporaries(&self) {
        remove_with_extension(&self.dir, "tmp");
    }
}

/// Removes the files in `dir` whose extension is `ext`.
pub(crate) fn remove_with_extension(dir: &Path, ext: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == ext) {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_is_used_only_for_the_same_file_version() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(root.path().to_path_buf());
        let file = root.path().join("f");
        fs::write(&file, b"one").unwrap();
        let id = FileId::of(&fs::metadata(&file).unwrap());
        let digest = Digest::of(b"one");
        store.put("f", &id, &digest).unwrap();
        assert_eq!(store.get("f", &id), Some(digest));
        let other = FileId {
            ino: id.ino + 1,
            ..id
        };
        assert_eq!(store.get("f", &other), None);
        assert_eq!(store.get("g", &id), None);
    }

    #[test]
    fn torn_record_is_ignored() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(root.path().to_path_buf());
        let id = FileId::of(&fs::metadata(root.path()).unwrap());
        store.put("f", &id, &Digest::of(b"x")).unwrap();
        let path = store.path("f");
        let mut bytes = fs::read(&path).unwrap();
        bytes[60] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert_eq!(store.get("f", &id), None);
    }
}
