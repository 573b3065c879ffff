//! What the in-memory store holds, and which of it would survive a power cut.
//!
//! The model follows the folder store's fsyncs: every byte written to a partial upload is
//! volatile until a checkpoint makes it durable (the folder store's `fdatasync` of the data,
//! then its checkpoint file); a commit makes the whole file and its digest durable at once (its
//! `fsync`, rename and folder sync); removals are durable at once (it syncs the folder).
//! [`Disk::power_cut`] keeps only what is durable.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ferry_protocol::{Digest, HashCheckpoint, SourceTag, Timestamp, validate_name};

use crate::store::PartialKey;
use crate::store::error::StorageError;

/// A visible file, one version of it: a download holds on to its bytes even if the name is
/// replaced meanwhile.
#[derive(Clone)]
pub struct StoredFile {
    /// Its content.
    pub bytes: Arc<Vec<u8>>,
    /// Its digest, recorded at commit (or remembered by a download).
    pub digest: Option<Digest>,
    /// When it was committed, on the store's clock.
    pub modified: Timestamp,
    /// Which version of the name this is, unique within a store.
    pub(super) version: u64,
}

impl fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredFile")
            .field("len", &self.bytes.len())
            .field("digest", &self.digest)
            .field("modified", &self.modified)
            .finish()
    }
}

/// A partial upload in the staging area.
#[derive(Debug)]
pub(super) struct Partial {
    /// Name the upload is for.
    pub(super) name: String,
    /// Tag of the client's file.
    pub(super) tag: SourceTag,
    /// Declared size of the whole file.
    pub(super) size: u64,
    /// The data received so far, from offset 0.
    pub(super) data: Vec<u8>,
    /// How many of `data`'s bytes are durable.
    pub(super) synced: u64,
    /// The durable hash state, covering at most `synced` bytes.
    pub(super) checkpoint: Option<HashCheckpoint>,
    /// When its data or checkpoint was last written.
    pub(super) touched: Timestamp,
}

/// Visible files and partial uploads.
#[derive(Debug, Default)]
pub(super) struct Disk {
    /// Visible files by name.
    pub(super) files: BTreeMap<String, StoredFile>,
    /// Partial uploads by key (ordered, so that sweeps run in the same order every time).
    pub(super) partials: BTreeMap<String, Partial>,
    /// Versions handed out so far.
    versions: u64,
}

impl Disk {
    /// Bytes of every visible file and every partial upload's data.
    pub(super) fn bytes(&self) -> u64 {
        let files: u64 = self.files.values().map(|f| f.bytes.len() as u64).sum();
        let staged: u64 = self.partials.values().map(|p| p.data.len() as u64).sum();
        files.saturating_add(staged)
    }

    /// Refuses a name the folder store would refuse: not a valid relative path, a name under a
    /// file (`f/g` when `f` is a file), or a name that is a folder (`d` when `d/x` exists).
    pub(super) fn check_place(&self, name: &str) -> Result<(), StorageError> {
        let bad = |reason| StorageError::BadName {
            name: name.to_owned(),
            reason,
        };
        validate_name(name).map_err(|_| bad("not an acceptable relative path"))?;
        let under_file = name
            .match_indices('/')
            .any(|(end, _)| self.files.contains_key(&name[..end]));
        if under_file {
            return Err(bad("a folder in the name is a file"));
        }
        let folder = format!("{name}/");
        let is_folder = self
            .files
            .range(folder.clone()..)
            .next()
            .is_some_and(|(other, _)| other.starts_with(&folder));
        if is_folder {
            return Err(bad("the name is a folder"));
        }
        Ok(())
    }

    /// The durable checkpoint of `key` if it belongs to exactly this name and tag and its data
    /// is all there; with the declared size it was saved for.
    pub(super) fn resumable(
        &self,
        key: &PartialKey,
        name: &str,
        tag: &SourceTag,
    ) -> Option<(&HashCheckpoint, u64)> {
        let partial = self.partials.get(&key.0)?;
        let checkpoint = partial.checkpoint.as_ref()?;
        let whole =
            partial.data.len() as u64 >= checkpoint.offset() && checkpoint.offset() <= partial.size;
        (partial.name == name && partial.tag == *tag && whole).then_some((checkpoint, partial.size))
    }

    /// Stages `key` for an upload of `size` bytes of `name` from `tag` resuming at `offset`
    /// (its data cut there, created empty if missing). Returns the bytes it held before.
    pub(super) fn stage(
        &mut self,
        key: &PartialKey,
        (name, tag, size): (&str, SourceTag, u64),
        offset: u64,
        now: Timestamp,
    ) -> u64 {
        let partial = self.partials.entry(key.0.clone()).or_insert(Partial {
            name: name.to_owned(),
            tag,
            size,
            data: Vec::new(),
            synced: 0,
            checkpoint: None,
            touched: now,
        });
        let before = partial.data.len() as u64;
        partial.name = name.to_owned();
        partial.tag = tag;
        partial.size = size;
        partial.touched = now;
        cut(partial, offset);
        before
    }

    /// Cuts `key`'s data to `len` bytes.
    pub(super) fn cut(&mut self, key: &PartialKey, len: u64) {
        if let Some(partial) = self.partials.get_mut(&key.0) {
            cut(partial, len);
        }
    }

    /// Forgets the checkpoint of `key` (a new upload starts over).
    pub(super) fn forget_checkpoint(&mut self, key: &PartialKey) {
        if let Some(partial) = self.partials.get_mut(&key.0) {
            partial.checkpoint = None;
        }
    }

    /// Removes a partial upload; returns the data bytes freed.
    pub(super) fn discard(&mut self, key: &PartialKey) -> u64 {
        self.partials
            .remove(&key.0)
            .map_or(0, |partial| partial.data.len() as u64)
    }

    /// Makes `data` the visible, durable file `name` with `digest`; returns the size of the
    /// file it replaced, if any.
    pub(super) fn publish(
        &mut self,
        name: &str,
        data: Vec<u8>,
        digest: Option<Digest>,
        now: Timestamp,
    ) -> Option<u64> {
        self.versions += 1;
        let file = StoredFile {
            bytes: Arc::new(data),
            digest,
            modified: now,
            version: self.versions,
        };
        self.files
            .insert(name.to_owned(), file)
            .map(|old| old.bytes.len() as u64)
    }

    /// Takes `name` back to `before` if it still shows `version` (a commit that was never
    /// durable, under the sabotage `Faults::volatile_commits`).
    pub(super) fn undo_publish(&mut self, name: &str, version: u64, before: Option<StoredFile>) {
        if self
            .files
            .get(name)
            .is_none_or(|file| file.version != version)
        {
            return;
        }
        match before {
            Some(file) => self.files.insert(name.to_owned(), file),
            None => self.files.remove(name),
        };
    }

    /// What a power cut leaves: visible files as they are; each partial upload's data cut to
    /// its durable bytes; partial uploads with no durable checkpoint gone (nothing could resume
    /// them; the folder store's sweep would remove their data later).
    pub(super) fn power_cut(&mut self) {
        self.partials.retain(|_, partial| {
            let durable = partial.synced;
            cut(partial, durable);
            partial
                .checkpoint
                .as_ref()
                .is_some_and(|checkpoint| checkpoint.offset() <= durable)
        });
    }
}

/// Cuts a partial upload's data to `len` bytes (cutting is durable at once: it only drops data).
fn cut(partial: &mut Partial, len: u64) {
    partial
        .data
        .truncate(usize::try_from(len).unwrap_or(usize::MAX));
    partial.synced = partial.synced.min(partial.data.len() as u64);
    if partial
        .checkpoint
        .as_ref()
        .is_some_and(|checkpoint| checkpoint.offset() > partial.synced)
    {
        partial.checkpoint = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_under_a_file_or_onto_a_folder_are_refused() {
        let mut disk = Disk::default();
        disk.publish("f", vec![1], None, Timestamp::ZERO);
        disk.publish("d/x", vec![1], None, Timestamp::ZERO);
        let reason = |name| match disk.check_place(name) {
            Err(StorageError::BadName { reason, .. }) => reason,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(reason("f/g"), "a folder in the name is a file");
        assert_eq!(reason("d"), "the name is a folder");
        assert_eq!(reason("../x"), "not an acceptable relative path");
        assert!(disk.check_place("d/y").is_ok());
        assert!(disk.check_place("dx").is_ok());
    }

    #[test]
    fn a_power_cut_keeps_only_durable_bytes_and_checkpoints() {
        let mut disk = Disk::default();
        let tag = SourceTag([1; 16]);
        let synced = PartialKey::new("a", &tag);
        let unsynced = PartialKey::new("b", &tag);
        disk.stage(&synced, ("a", tag, 10), 0, Timestamp::ZERO);
        disk.stage(&unsynced, ("b", tag, 10), 0, Timestamp::ZERO);
        for key in [&synced, &unsynced] {
            disk.partials.get_mut(&key.0).unwrap().data = vec![7; 8];
        }
        let partial = disk.partials.get_mut(&synced.0).unwrap();
        partial.synced = 5;
        partial.checkpoint = Some(HashCheckpoint::start());
        disk.power_cut();
        assert_eq!(disk.partials.get(&synced.0).unwrap().data, vec![7; 5]);
        assert!(!disk.partials.contains_key(&unsynced.0));
    }
}
