//! The staging area: partial uploads and their durable hash checkpoints.
//!
//! A partial upload of `name` from a client file tagged `tag` is two files in
//! `<root>/.ferry-staging/`, named by a hash of (name, tag):
//!
//! - `<key>.part`: the data received so far, from offset 0;
//! - `<key>.ckpt`: which upload it is (name, tag, declared size) and the BLAKE3 state after its
//!   first `offset` bytes, with a digest over the record so a torn one is never believed.
//!
//! The data file is `fdatasync`ed before a checkpoint is written (aside, then renamed over), so
//! a checkpoint never claims bytes that are not durable. Resuming truncates the data to the
//! checkpoint's offset and continues hashing from the saved state: the stored bytes are never
//! read again.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_protocol::{DIGEST_LEN, Digest, HashCheckpoint, SourceTag};

use crate::confined::{Folder, Kind, Status};
use crate::store::PartialKey;
use crate::store::error::StorageError;
use crate::store::folder::paths::STAGING_DIR;

/// Longest checkpoint record read back: a name, a tag and a hash state are far smaller.
const MAX_STATE_LEN: u64 = 64 * 1024;

/// Mode of staged files: the server's user only.
const STAGED_FILE_MODE: u32 = 0o600;

const STATE_MAGIC: &[u8; 8] = b"FRYSTAG1";

/// What a checkpoint file holds.
#[derive(Clone, Debug)]
pub(crate) struct SavedState {
    /// Name the upload is for.
    pub(crate) name: String,
    /// Tag of the client's file.
    pub(crate) tag: SourceTag,
    /// Declared size of the whole file.
    pub(crate) size: u64,
    /// Hash state after the first `checkpoint.offset()` bytes.
    pub(crate) checkpoint: HashCheckpoint,
}

impl SavedState {
    fn encode(&self) -> Vec<u8> {
        let checkpoint = self.checkpoint.to_bytes();
        let mut out = Vec::with_capacity(64 + self.name.len() + checkpoint.len());
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.tag.0);
        out.extend_from_slice(&(self.name.len() as u32).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&(checkpoint.len() as u32).to_be_bytes());
        out.extend_from_slice(&checkpoint);
        let check = Digest::of(&out);
        out.extend_from_slice(&check.0);
        out
    }

    fn decode(bytes: &[u8]) -> Option<SavedState> {
        let body_len = bytes.len().checked_sub(DIGEST_LEN)?;
        let (body, check) = bytes.split_at(body_len);
        if Digest::of(body).0 != check {
            return None;
        }
        let rest = body.strip_prefix(STATE_MAGIC.as_slice())?;
        let (size, rest) = rest.split_first_chunk::<8>()?;
        let (tag, rest) = rest.split_first_chunk::<16>()?;
        let (name_len, rest) = rest.split_first_chunk::<4>()?;
        let name_len = usize::try_from(u32::from_be_bytes(*name_len)).ok()?;
        let name = std::str::from_utf8(rest.get(..name_len)?).ok()?;
        let rest = &rest[name_len..];
        let (ck_len, rest) = rest.split_first_chunk::<4>()?;
        let ck_len = usize::try_from(u32::from_be_bytes(*ck_len)).ok()?;
        if rest.len() != ck_len {
            return None;
        }
        Some(SavedState {
            name: name.to_owned(),
            tag: SourceTag(*tag),
            size: u64::from_be_bytes(*size),
            checkpoint: HashCheckpoint::from_bytes(rest).ok()?,
        })
    }
}

/// The staging folder, reached through the root's handle.
///
/// It is opened anew for each operation ([`Staging::folder`]), so a staging folder removed
/// while the server runs is made again, and one replaced by a symbolic link is refused.
#[derive(Clone, Debug)]
pub(crate) struct Staging {
    root: Arc<Folder>,
}

impl Staging {
    /// Partial uploads kept in the root's staging folder.
    pub(crate) fn new(root: Arc<Folder>) -> Self {
        Staging { root }
    }

    /// The staging folder, made if missing (mode 0700), refused if it is a symbolic link, not
    /// a folder or another user's.
    pub(crate) fn folder(&self) -> Result<Folder, StorageError> {
        self.root
            .own_folder(STAGING_DIR, Path::new(STAGING_DIR))
            .map_err(|error| StorageError::io("opening the staging folder")(error.into()))
    }

    /// Name of a partial upload's data in the staging folder.
    pub(crate) fn data_name(key: &PartialKey) -> String {
        format!("{}.part", key.0)
    }

    fn state_name(key: &PartialKey) -> String {
        format!("{}.ckpt", key.0)
    }

    /// The saved state of `key`, if there is a valid one for exactly this name and tag whose
    /// data is all on disk, in a staged file that has no other name.
    pub(crate) fn load(&self, key: &PartialKey, name: &str, tag: &SourceTag) -> Option<SavedState> {
        let folder = self.folder().ok()?;
        let bytes = folder.read(&Self::state_name(key), MAX_STATE_LEN).ok()?;
        let state = SavedState::decode(&bytes)?;
        if state.name != name || state.tag != *tag {
            return None;
        }
        let data = staged_data(&folder, key)?;
        (data.size() >= state.checkpoint.offset() && state.checkpoint.offset() <= state.size)
            .then_some(state)
    }

    /// Opens `key`'s staged data in `folder` for writing at `offset`, creating it if missing,
    /// and cuts it to `offset`. Anything else under its name (a symbolic link, a file that also
    /// has a visible name) is removed first and never written through. Returns the file and the
    /// bytes it held before.
    pub(crate) fn open_data(
        folder: &Folder,
        key: &PartialKey,
        offset: u64,
    ) -> Result<(File, u64), StorageError> {
        let name = Self::data_name(key);
        let status = folder
            .status(&name)
            .map_err(StorageError::io("looking up the staging file"))?;
        if let Some(status) = status
            && (status.kind() != Kind::File || status.links() != 1)
        {
            folder
                .remove(&name)
                .map_err(StorageError::io("removing a stray staging entry"))?;
        }
        let mut file = folder
            .open_write(&name, STAGED_FILE_MODE)
            .map_err(StorageError::io("opening the staging file"))?;
        let status = Status::of(&file).map_err(StorageError::io("reading the staging file"))?;
        if status.kind() != Kind::File || status.links() != 1 {
            let shared = io::Error::other("the staging file gained another name");
            return Err(StorageError::io("opening the staging file")(shared));
        }
        file.set_len(offset)
            .map_err(StorageError::io("truncating the staging file"))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(StorageError::io("positioning in the staging file"))?;
        Ok((file, status.size()))
    }

    /// Writes `state` durably in `folder`: aside, synced, then renamed over the previous one.
    /// The caller has already made the data it covers durable.
    pub(crate) fn save(folder: &Folder, key: &PartialKey, state: &SavedState) -> io::Result<()> {
        folder.write_atomically(
            &Self::state_name(key),
            &state.encode(),
            STAGED_FILE_MODE,
            true,
        )
    }

    /// Forgets the saved state of `key` (its data is gone or was committed).
    pub(crate) fn forget_state(&self, key: &PartialKey) {
        if let Ok(folder) = self.folder() {
            let _ = folder.remove(&Self::state_name(key));
        }
    }

    /// Removes a partial upload; returns the data bytes freed.
    pub(crate) fn discard(&self, key: &PartialKey) -> u64 {
        let Ok(folder) = self.folder() else { return 0 };
        let _ = folder.remove(&Self::state_name(key));
        let name = Self::data_name(key);
        let freed = match folder.status(&name) {
            Ok(Some(status)) if status.kind() == Kind::File && status.links() == 1 => status.size(),
            _ => 0,
        };
        match folder.remove(&name) {
            Ok(true) => freed,
            _ => 0,
        }
    }

    /// Repairs what a crash or a local user left in the staging folder, at start (while the
    /// server runs, a `.tmp` file is a checkpoint being written): removes half-written
    /// checkpoints, anything that is not a plain file (a planted symbolic link is removed, never
    /// followed), and staged data that also has another name — a crash between linking an
    /// upload into place and removing its staged name leaves one, and it must never be resumed
    /// into, since that would write to a visible file. Returns how many entries it removed.
    pub(crate) fn repair(&self) -> Result<usize, StorageError> {
        let folder = self.folder()?;
        let entries = folder
            .entries()
            .map_err(StorageError::io("listing the staging folder"))?;
        let mut removed = 0;
        for (name, kind) in entries {
            let Some(name) = name.to_str() else { continue };
            let stray = match kind {
                Kind::File if name.ends_with(".tmp") => true,
                Kind::File if name.ends_with(".part") => folder
                    .status(name)
                    .ok()
                    .flatten()
                    .is_some_and(|status| status.links() != 1),
                Kind::File => false,
                Kind::Folder => {
                    tracing::warn!(
                        entry = name,
                        "a folder in the staging folder is not ferryd's; leaving it"
                    );
                    false
                }
                Kind::Symlink | Kind::Other => true,
            };
            if stray && folder.remove(name).unwrap_or(false) {
                tracing::warn!(
                    entry = name,
                    "removed a stray entry from the staging folder"
                );
                if let Some(stem) = name.strip_suffix(".part") {
                    let _ = folder.remove(&format!("{stem}.ckpt"));
                }
                removed += 1;
            }
        }
        if removed > 0 {
            folder
                .sync()
                .map_err(StorageError::io("syncing the staging folder"))?;
        }
        Ok(removed)
    }

    /// Bytes of every partial upload's data.
    pub(crate) fn bytes(&self) -> u64 {
        self.folder()
            .map_or(0, |folder| folder.bytes_under(|_| false))
    }

    /// Offers every partial upload untouched for longer than `max_age` to `remove` (which
    /// removes it unless an upload is using it, and returns the bytes freed); returns the total.
    pub(crate) fn sweep(
        &self,
        max_age: Duration,
        mut remove: impl FnMut(&PartialKey) -> u64,
    ) -> u64 {
        let Ok(folder) = self.folder() else { return 0 };
        let Ok(entries) = folder.entries() else {
            return 0;
        };
        let now = SystemTime::now();
        let mut keys: Vec<String> = entries
            .iter()
            .filter_map(|(name, _)| name.to_str()?.split('.').next().map(str::to_owned))
            .filter(|stem| !stem.is_empty())
            .collect();
        keys.sort();
        keys.dedup();
        let mut freed = 0u64;
        for stem in keys {
            let key = PartialKey(stem);
            let touched = [Self::data_name(&key), Self::state_name(&key)]
                .iter()
                .filter_map(|name| folder.status(name).ok().flatten())
                .map(|status| modified_time(&status))
                .max();
            let old = touched.is_none_or(|t| now.duration_since(t).unwrap_or_default() > max_age);
            if old {
                freed = freed.saturating_add(remove(&key));
                tracing::info!(
                    partial = key.0,
                    "removed a partial upload older than the staging age limit"
                );
            }
        }
        freed
    }
}

/// The status of `key`'s staged data if it is a regular file with no other name.
fn staged_data(folder: &Folder, key: &PartialKey) -> Option<Status> {
    folder
        .status(&Staging::data_name(key))
        .ok()
        .flatten()
        .filter(|status| status.kind() == Kind::File && status.links() == 1)
}

fn modified_time(status: &Status) -> SystemTime {
    let (secs, nanos) = status.modified();
    UNIX_EPOCH
        + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_protocol::FileHasher;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn saved_state_round_trips_and_rejects_corruption() {
        let mut hasher = FileHasher::new();
        hasher.update(&vec![7u8; 200_000]);
        let state = SavedState {
            name: "dir/file".into(),
            tag: SourceTag([3; 16]),
            size: 1_000_000,
            checkpoint: hasher.checkpoint(),
        };
        let bytes = state.encode();
        let back = SavedState::decode(&bytes).unwrap();
        assert_eq!(back.name, state.name);
        assert_eq!(back.size, state.size);
        assert_eq!(back.checkpoint, state.checkpoint);
        for i in [0, 9, 20, bytes.len() - 1] {
            let mut torn = bytes.clone();
            torn[i] ^= 0x40;
            assert!(SavedState::decode(&torn).is_none(), "byte {i}");
        }
        assert!(SavedState::decode(&bytes[..bytes.len() - 3]).is_none());
    }

    /// A root with its staging folder, the staging area and its folder handle.
    fn staging_in(root: &tempfile::TempDir) -> (Staging, Folder) {
        let staging = Staging::new(Arc::new(Folder::open(root.path()).unwrap()));
        let folder = staging.folder().unwrap();
        (staging, folder)
    }

    #[test]
    fn staged_data_with_a_second_name_is_never_opened_for_writing() {
        let root = tempfile::tempdir().unwrap();
        let (_, folder) = staging_in(&root);
        let key = PartialKey::new("victim", &SourceTag([1; 16]));
        let visible = root.path().join("victim");
        std::fs::write(&visible, b"confirmed bytes").unwrap();
        let staged = root.path().join(STAGING_DIR).join(Staging::data_name(&key));
        std::fs::hard_link(&visible, &staged).unwrap();

        let (_, before) = Staging::open_data(&folder, &key, 0).unwrap();
        assert_eq!(before, 0, "a fresh staged file, not the linked one");
        assert_eq!(std::fs::read(&visible).unwrap(), b"confirmed bytes");
        assert_eq!(std::fs::metadata(&visible).unwrap().nlink(), 1);
    }

    #[test]
    fn a_checkpoint_over_staged_data_with_a_second_name_is_not_believed() {
        let root = tempfile::tempdir().unwrap();
        let (staging, folder) = staging_in(&root);
        let tag = SourceTag([2; 16]);
        let key = PartialKey::new("victim", &tag);
        let visible = root.path().join("victim");
        std::fs::write(&visible, vec![5u8; 100_000]).unwrap();
        std::fs::hard_link(
            &visible,
            root.path().join(STAGING_DIR).join(Staging::data_name(&key)),
        )
        .unwrap();
        let mut hasher = FileHasher::new();
        hasher.update(&vec![5u8; 65_536]);
        let state = SavedState {
            name: "victim".into(),
            tag,
            size: 100_000,
            checkpoint: hasher.checkpoint(),
        };
        Staging::save(&folder, &key, &state).unwrap();
        assert!(staging.load(&key, "victim", &tag).is_none());
    }

    #[test]
    fn repair_removes_linked_staged_data_planted_links_and_half_written_checkpoints() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (staging, _) = staging_in(&root);
        let dir = root.path().join(STAGING_DIR);
        let visible = root.path().join("victim");
        std::fs::write(&visible, b"confirmed").unwrap();
        std::fs::hard_link(&visible, dir.join("aaaa.part")).unwrap();
        std::fs::write(dir.join("aaaa.ckpt"), b"state").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("bbbb.part")).unwrap();
        std::fs::write(dir.join("cccc.ckpt.1.2.tmp"), b"").unwrap();
        std::fs::write(dir.join("dddd.part"), b"partial").unwrap();

        assert_eq!(staging.repair().unwrap(), 3);
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["dddd.part"]);
        assert_eq!(std::fs::read(&visible).unwrap(), b"confirmed");
        assert_eq!(std::fs::metadata(&visible).unwrap().nlink(), 1);
    }

    #[test]
    fn keys_differ_by_name_and_tag() {
        let a = PartialKey::new("a", &SourceTag([0; 16]));
        assert_ne!(a, PartialKey::new("b", &SourceTag([0; 16])));
        assert_ne!(a, PartialKey::new("a", &SourceTag([1; 16])));
    }
}
