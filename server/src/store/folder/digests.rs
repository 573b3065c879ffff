//! Digest records of stored files, so a download need not rehash the file before its `DONE`.
//!
//! Each record sits in `<root>/.ferry-meta/<hash of the name>` and names the exact file version
//! it describes (device, inode, size, modification time). A download compares that identity
//! with the file handle it opened; on any difference (the file was replaced since, or the
//! record is stale or torn) it computes the digest from the handle instead. A record is thus
//! only ever a shortcut, never a source of wrong answers.

use std::path::Path;
use std::sync::Arc;

use ferry_protocol::{DIGEST_LEN, Digest};

use crate::confined::{Folder, Status};
use crate::store::error::StorageError;
use crate::store::folder::paths::META_DIR;

const RECORD_MAGIC: &[u8; 8] = b"FRYDGST1";
const RECORD_LEN: usize = 8 + 5 * 8 + DIGEST_LEN + DIGEST_LEN;

/// Mode of a record: the server's user only.
const RECORD_MODE: u32 = 0o600;

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
    /// The identity of the file `status` describes.
    pub(crate) fn of(status: &Status) -> Self {
        let (dev, ino) = status.inode();
        let (mtime, mtime_nsec) = status.modified();
        FileId {
            dev,
            ino,
            size: status.size(),
            mtime,
            mtime_nsec,
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

/// Where the records live: the root's `.ferry-meta` folder, opened anew for each record (so a
/// removed folder is made again and a symbolic link in its place is refused).
#[derive(Debug)]
pub(crate) struct DigestStore {
    root: Arc<Folder>,
    /// False for a store opened by a tool that only reads ([`DigestStore::read_only`]).
    writable: bool,
}

impl DigestStore {
    /// Records kept in the meta folder of `root`.
    pub(crate) fn new(root: Arc<Folder>) -> Self {
        DigestStore {
            root,
            writable: true,
        }
    }

    /// The records of `root` for a tool that only reads them beside a live server (`ferryd
    /// scrub`): the meta folder is opened as it is (never made, never narrowed, whoever owns
    /// it), and nothing is ever written or removed.
    pub(crate) fn read_only(root: Arc<Folder>) -> Self {
        DigestStore {
            root,
            writable: false,
        }
    }

    /// The meta folder, made if missing (unless read-only).
    pub(crate) fn folder(&self) -> Result<Folder, StorageError> {
        if !self.writable {
            return self
                .root
                .folder(META_DIR)
                .map_err(StorageError::io("opening the digest folder"));
        }
        self.root
            .own_folder(META_DIR, Path::new(META_DIR))
            .map_err(|error| StorageError::io("opening the digest folder")(error.into()))
    }

    fn record_name(name: &str) -> String {
        Digest::of(name.as_bytes()).to_hex()
    }

    /// The recorded digest of `name`, if the record describes exactly the version `id`.
    pub(crate) fn get(&self, name: &str, id: &FileId) -> Option<Digest> {
        let bytes = self
            .folder()
            .ok()?
            .read(&Self::record_name(name), RECORD_LEN as u64)
            .ok()?;
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

    /// Records `digest` for version `id` of `name` (written aside, then renamed over; not
    /// synced: a record lost in a crash only costs a download the digest's computation).
    pub(crate) fn put(&self, name: &str, id: &FileId, digest: &Digest) -> Result<(), StorageError> {
        if !self.writable {
            return Err(StorageError::io("writing a digest record")(
                std::io::ErrorKind::ReadOnlyFilesystem.into(),
            ));
        }
        self.folder()?
            .write_atomically(
                &Self::record_name(name),
                &id.encode(digest),
                RECORD_MODE,
                false,
            )
            .map_err(StorageError::io("writing a digest record"))
    }

    /// Forgets the record of `name`.
    pub(crate) fn remove(&self, name: &str) {
        if !self.writable {
            return;
        }
        if let Ok(folder) = self.folder() {
            let _ = folder.remove(&Self::record_name(name));
        }
    }

    /// Removes leftovers of writes cut short by a crash (only at start: while the server runs,
    /// a `.tmp` file is a record being written).
    pub(crate) fn clean_temporaries(&self) -> Result<(), StorageError> {
        if !self.writable {
            return Ok(());
        }
        let folder = self.folder()?;
        for (name, _) in folder
            .entries()
            .map_err(StorageError::io("listing the digest folder"))?
        {
            if let Some(name) = name.to_str().filter(|n| n.ends_with(".tmp")) {
                let _ = folder.remove(name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_is_used_only_for_the_same_file_version() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(Arc::new(Folder::open(root.path()).unwrap()));
        let file = root.path().join("f");
        std::fs::write(&file, b"one").unwrap();
        let id = FileId::of(&Status::of(&std::fs::File::open(&file).unwrap()).unwrap());
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
    fn a_read_only_store_reads_records_and_never_writes_or_makes_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let folder = Arc::new(Folder::open(root.path()).unwrap());
        let reader = DigestStore::read_only(Arc::clone(&folder));
        let id = FileId::of(&Status::of(&std::fs::File::open(root.path()).unwrap()).unwrap());
        assert_eq!(reader.get("f", &id), None);
        assert!(reader.put("f", &id, &Digest::of(b"x")).is_err());
        assert!(!root.path().join(META_DIR).exists(), "no meta folder made");

        let writer = DigestStore::new(folder);
        writer.put("f", &id, &Digest::of(b"one")).unwrap();
        assert_eq!(reader.get("f", &id), Some(Digest::of(b"one")));
        assert!(reader.put("f", &id, &Digest::of(b"two")).is_err());
        reader.remove("f");
        assert_eq!(
            writer.get("f", &id),
            Some(Digest::of(b"one")),
            "left as it was"
        );
    }

    #[test]
    fn torn_record_is_ignored() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(Arc::new(Folder::open(root.path()).unwrap()));
        let id = FileId::of(&Status::of(&std::fs::File::open(root.path()).unwrap()).unwrap());
        store.put("f", &id, &Digest::of(b"x")).unwrap();
        let path = root
            .path()
            .join(META_DIR)
            .join(DigestStore::record_name("f"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[60] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(store.get("f", &id), None);
    }
}
