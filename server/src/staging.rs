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

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ferry_protocol::{DIGEST_LEN, Digest, HashCheckpoint, SourceTag};

use crate::digests::remove_with_extension;

const STATE_MAGIC: &[u8; 8] = b"FRYSTAG1";

/// Identifies one partial upload: a hash of its name and source tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PartialKey(String);

impl PartialKey {
    /// The key of `name` uploaded from a file tagged `tag`.
    pub(crate) fn new(name: &str, tag: &SourceTag) -> Self {
        let mut input = Vec::with_capacity(name.len() + 17);
        input.extend_from_slice(name.as_bytes());
        input.push(0);
        input.extend_from_slice(&tag.0);
        PartialKey(Digest::of(&input).to_hex()[..32].to_owned())
    }
}

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

/// The staging folder.
#[derive(Clone, Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Partial uploads kept in `dir` (which must exist).
    pub(crate) fn new(dir: PathBuf) -> Self {
        Staging { dir }
    }

    /// The staging folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a partial upload's data.
    pub(crate) fn data_path(&self, key: &PartialKey) -> PathBuf {
        self.dir.join(format!("{}.part", key.0))
    }

    fn state_path(&self, key: &PartialKey) -> PathBuf {
        self.dir.join(format!("{}.ckpt", key.0))
    }

    /// The saved state of `key`, if there is a valid one for exactly this name and tag whose
    /// data is all on disk.
    pub(crate) fn load(&self, key: &PartialKey, name: &str, tag: &SourceTag) -> Option<SavedState> {
        let bytes = fs::read(self.state_path(key)).ok()?;
        let state = SavedState::decode(&bytes)?;
        if state.name != name || state.tag != *tag {
            return None;
        }
        let data_len = fs::metadata(self.data_path(key)).ok()?.len();
        (data_len >= state.checkpoint.offset() && state.checkpoint.offset() <= state.size)
            .then_some(state)
    }

    /// Writes `state` durably: aside, synced, then renamed over the previous one. The caller
    /// has already made the data it covers durable.
    pub(crate) fn save(&self, key: &PartialKey, state: &SavedState) -> io::Result<()> {
        let path = self.state_path(key);
        let temp = path.with_extension("tmp");
        let mut file = fs::File::create(&temp)?;
        file.write_all(&state.encode())?;
        file.sync_data()?;
        drop(file);
        fs::rename(&temp, &path)
    }

    /// Forgets the saved state of `key` (its data is gone or was committed).
    pub(crate) fn forget_state(&self, key: &PartialKey) {
        let _ = fs::remove_file(self.state_path(key));
    }

    /// Removes a partial upload; returns the data bytes freed.
    pub(crate) fn discard(&self, key: &PartialKey) -> u64 {
        let data = self.data_path(key);
        let freed = fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
        self.forget_state(key);
        match fs::remove_file(&data) {
            Ok(()) => freed,
            Err(_) => 0,
        }
    }

    /// Removes checkpoints left half-written by a crash. Only at start: while the server runs,
    /// a `.tmp` file is a checkpoint being written.
    pub(crate) fn clean_temporaries(&self) {
        remove_with_extension(&self.dir, "tmp");
    }

    /// Offers every partial upload untouched for longer than `max_age` to `remove` (which
    /// removes it unless an upload is using it, and returns the bytes freed); returns the total.
    pub(crate) fn sweep(
        &self,
        max_age: Duration,
        mut remove: impl FnMut(&PartialKey) -> u64,
    ) -> u64 {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut freed = 0u64;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let key = PartialKey(stem.to_owned());
            let touched = [self.data_path(&key), self.state_path(&key)]
                .iter()
                .filter_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
                .max();
            let old = touched.is_none_or(|t| now.duration_since(t).unwrap_or_default() > max_age);
            if old && path.exists() {
                freed = freed.saturating_add(remove(&key));
                tracing::info!(
                    partial = stem,
                    "removed a partial upload older than the staging age limit"
                );
            }
        }
        freed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_protocol::FileHasher;

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

    #[test]
    fn keys_differ_by_name_and_tag() {
        let a = PartialKey::new("a", &SourceTag([0; 16]));
        assert_ne!(a, PartialKey::new("b", &SourceTag([0; 16])));
        assert_ne!(a, PartialKey::new("a", &SourceTag([1; 16])));
    }
}
