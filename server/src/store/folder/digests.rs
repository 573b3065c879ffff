//! Digest records of stored files, so a download need not rehash the file before its `DONE`.
//!
//! A record sits on the file itself, in the extended attribute `user.ferry.digest`: it is
//! written on the staged file before its fsync (so it is as durable as the data), moves with
//! the file when it is renamed and goes when it is removed, and storing a file makes one inode,
//! not two (which on ext4 without a journal is most of what a small upload costs: making an
//! inode scans for those freed in the last 30 s). On a file system without user attributes
//! the record is a file, `<root>/.ferry-meta/<hash of the name>`, instead; a download reads
//! the attribute first, then the file.
//!
//! Either record names the exact file version it describes (size and modification time; the
//! file's device and inode too for a record file). A download compares that identity with the
//! file handle it opened; on any difference (the file was changed or replaced since, or the
//! record is stale or torn) it computes the digest from the handle instead. A record is thus
//! only ever a shortcut, never a source of wrong answers.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use ferry_protocol::{DIGEST_LEN, Digest};
use rustix::fs::XattrFlags;
use rustix::io::Errno;

use crate::confined::{Folder, Status};
use crate::store::error::StorageError;
use crate::store::folder::paths::META_DIR;

/// The extended attribute that holds a file's own record.
const ATTRIBUTE: &str = "user.ferry.digest";
const ATTRIBUTE_MAGIC: &[u8; 4] = b"FRY1";
/// 56 bytes: small enough that ext4 keeps it inside a 256-byte inode (at 64 it takes a block
/// of its own per file).
const ATTRIBUTE_LEN: usize = 4 + 8 + 8 + 4 + DIGEST_LEN;

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

    /// The attribute's value: the version's size and modification time, and its digest (the
    /// device and inode are the file's own).
    fn attribute(&self, digest: &Digest) -> Vec<u8> {
        let mut out = Vec::with_capacity(ATTRIBUTE_LEN);
        out.extend_from_slice(ATTRIBUTE_MAGIC);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.mtime.to_be_bytes());
        // Nanoseconds are below 10⁹: they fit in 32 bits.
        out.extend_from_slice(&(self.mtime_nsec as u32).to_be_bytes());
        out.extend_from_slice(&digest.0);
        out
    }

    /// The digest an attribute's value holds, if it describes this version.
    fn digest_in_attribute(&self, value: &[u8]) -> Option<Digest> {
        let expected = self.attribute(&Digest([0; DIGEST_LEN]));
        let (head, digest) = value.split_at_checked(ATTRIBUTE_LEN - DIGEST_LEN)?;
        if value.len() != ATTRIBUTE_LEN || head != &expected[..head.len()] {
            return None;
        }
        Some(Digest(digest.try_into().ok()?))
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

    /// The recorded digest of the version `id` of `name` that `file` is: the file's own
    /// record, or else the one in the meta folder.
    pub(crate) fn get(&self, name: &str, file: &File, id: &FileId) -> Option<Digest> {
        let mut value = [0u8; ATTRIBUTE_LEN];
        rustix::fs::fgetxattr(file, ATTRIBUTE, &mut value)
            .ok()
            .and_then(|len| id.digest_in_attribute(value.get(..len)?))
            .or_else(|| self.recorded(name, id))
    }

    /// Records `digest` for the version `id` of `name` that `file` is, on the file itself (not
    /// synced: the file's own fsync, which follows, makes it durable), or in the meta folder on
    /// a file system without user attributes or for a file the server may not mark.
    pub(crate) fn attach(
        &self,
        name: &str,
        file: &File,
        id: &FileId,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        self.refuse_if_read_only()?;
        match rustix::fs::fsetxattr(file, ATTRIBUTE, &id.attribute(digest), XattrFlags::empty()) {
            Ok(()) => Ok(()),
            // No user attributes here, or a file this server may read but not mark (a file
            // another user put in the root, hashed on its first download).
            Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS) => self.put(name, id, digest),
            Err(errno) => Err(StorageError::io("recording a file's digest")(errno.into())),
        }
    }

    /// The digest the meta folder records for `name`, if the record describes exactly the
    /// version `id`.
    pub(crate) fn recorded(&self, name: &str, id: &FileId) -> Option<Digest> {
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

    /// Records `digest` for version `id` of `name` in the meta folder (written aside, then
    /// renamed over; not synced: a record lost in a crash only costs a download the digest's
    /// computation).
    pub(crate) fn put(&self, name: &str, id: &FileId, digest: &Digest) -> Result<(), StorageError> {
        self.refuse_if_read_only()?;
        self.folder()?
            .write_atomically(
                &Self::record_name(name),
                &id.encode(digest),
                RECORD_MODE,
                false,
            )
            .map_err(StorageError::io("writing a digest record"))
    }

    fn refuse_if_read_only(&self) -> Result<(), StorageError> {
        if self.writable {
            return Ok(());
        }
        Err(StorageError::io("writing a digest record")(
            std::io::ErrorKind::ReadOnlyFilesystem.into(),
        ))
    }

    /// Forgets the record of `name` in the meta folder (a file's own goes with it).
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
        assert_eq!(store.recorded("f", &id), Some(digest));
        let other = FileId {
            ino: id.ino + 1,
            ..id
        };
        assert_eq!(store.recorded("f", &other), None);
        assert_eq!(store.recorded("g", &id), None);
    }

    #[test]
    fn a_read_only_store_reads_records_and_never_writes_or_makes_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let folder = Arc::new(Folder::open(root.path()).unwrap());
        let reader = DigestStore::read_only(Arc::clone(&folder));
        let id = FileId::of(&Status::of(&std::fs::File::open(root.path()).unwrap()).unwrap());
        assert_eq!(reader.recorded("f", &id), None);
        assert!(reader.put("f", &id, &Digest::of(b"x")).is_err());
        assert!(!root.path().join(META_DIR).exists(), "no meta folder made");

        let writer = DigestStore::new(folder);
        writer.put("f", &id, &Digest::of(b"one")).unwrap();
        assert_eq!(reader.recorded("f", &id), Some(Digest::of(b"one")));
        assert!(reader.put("f", &id, &Digest::of(b"two")).is_err());
        reader.remove("f");
        assert_eq!(
            writer.recorded("f", &id),
            Some(Digest::of(b"one")),
            "left as it was"
        );
    }

    fn file_with(root: &tempfile::TempDir, name: &str, bytes: &[u8]) -> (File, FileId) {
        let path = root.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        let id = FileId::of(&Status::of(&file).unwrap());
        (file, id)
    }

    #[test]
    fn a_record_on_the_file_itself_makes_no_record_file_and_is_read_back() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(Arc::new(Folder::open(root.path()).unwrap()));
        let (file, id) = file_with(&root, "f", b"one");
        let digest = Digest::of(b"one");
        let probe = rustix::fs::fsetxattr(&file, "user.ferry.probe", b"", XattrFlags::empty());
        store.attach("f", &file, &id, &digest).unwrap();
        if probe == Err(Errno::NOTSUP) {
            // This file system takes no user attributes (tmpfs before Linux 6.6): the record
            // is a file instead.
            eprintln!("no user attributes under {}", root.path().display());
            assert_eq!(store.recorded("f", &id), Some(digest));
            assert_eq!(store.get("f", &file, &id), Some(digest));
            return;
        }
        let mut value = [0u8; 64];
        let len = rustix::fs::fgetxattr(&file, ATTRIBUTE, &mut value).unwrap();
        assert_eq!(len, ATTRIBUTE_LEN);
        assert!(
            !root.path().join(META_DIR).exists(),
            "no record file, nor its folder"
        );
        assert_eq!(store.get("f", &file, &id), Some(digest));
        // The record is the file's: under another name it still holds.
        assert_eq!(store.get("g", &file, &id), Some(digest));
    }

    #[test]
    fn a_record_on_a_file_changed_since_is_not_believed() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(Arc::new(Folder::open(root.path()).unwrap()));
        let (file, id) = file_with(&root, "f", b"one");
        store.attach("f", &file, &id, &Digest::of(b"one")).unwrap();
        for changed in [
            FileId { size: 4, ..id },
            FileId {
                mtime: id.mtime + 1,
                ..id
            },
            FileId {
                mtime_nsec: (id.mtime_nsec + 1) % 1_000_000_000,
                ..id
            },
        ] {
            assert_eq!(store.get("f", &file, &changed), None, "{changed:?}");
        }
    }

    #[test]
    fn a_foreign_or_torn_attribute_is_not_believed() {
        let root = tempfile::tempdir().unwrap();
        let (_, id) = file_with(&root, "f", b"one");
        let good = id.attribute(&Digest::of(b"one"));
        assert_eq!(good.len(), ATTRIBUTE_LEN);
        let mut foreign = good.clone();
        foreign[0] ^= 1;
        for value in [
            &good[..ATTRIBUTE_LEN - 1],
            &foreign[..],
            &[good.clone(), vec![0]].concat()[..],
            &[][..],
        ] {
            assert_eq!(id.digest_in_attribute(value), None, "{} bytes", value.len());
        }
        assert_eq!(id.digest_in_attribute(&good), Some(Digest::of(b"one")));
    }

    #[test]
    fn without_an_attribute_the_record_file_is_read() {
        let root = tempfile::tempdir().unwrap();
        let store = DigestStore::new(Arc::new(Folder::open(root.path()).unwrap()));
        let (file, id) = file_with(&root, "f", b"one");
        assert_eq!(store.get("f", &file, &id), None);
        store.put("f", &id, &Digest::of(b"one")).unwrap();
        assert_eq!(store.get("f", &file, &id), Some(Digest::of(b"one")));
    }

    #[test]
    fn a_record_file_replaces_a_link_planted_in_its_place_and_writes_nothing_through_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        std::fs::write(&target, b"outside data").unwrap();
        let store = DigestStore::new(Arc::new(Folder::open(root.path()).unwrap()));
        let (_, id) = file_with(&root, "f", b"one");
        let record = root
            .path()
            .join(META_DIR)
            .join(DigestStore::record_name("f"));
        std::fs::create_dir(root.path().join(META_DIR)).unwrap();
        std::os::unix::fs::symlink(&target, &record).unwrap();
        store.put("f", &id, &Digest::of(b"one")).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"outside data");
        assert!(!std::fs::symlink_metadata(&record).unwrap().is_symlink());
        assert_eq!(store.recorded("f", &id), Some(Digest::of(b"one")));
    }

    #[test]
    fn a_read_only_store_attaches_nothing() {
        let root = tempfile::tempdir().unwrap();
        let reader = DigestStore::read_only(Arc::new(Folder::open(root.path()).unwrap()));
        let (file, id) = file_with(&root, "f", b"one");
        assert!(reader.attach("f", &file, &id, &Digest::of(b"one")).is_err());
        let mut value = [0u8; 64];
        assert!(rustix::fs::fgetxattr(&file, ATTRIBUTE, &mut value).is_err());
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
        assert_eq!(store.recorded("f", &id), None);
    }
}
