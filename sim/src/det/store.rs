//! The simulated server's storage, in memory, with ferryd's rules: an upload is staged out of
//! sight until its digest matched; a staged upload resumes only under the same name, tag and
//! size, from its hash checkpoint; one upload per name at a time (`InProgress`); an existing
//! name is replaced only with overwrite (`AlreadyExists`); missing names are `NotFound`.

use std::collections::BTreeMap;
use std::rc::Rc;

use ferry_protocol::{Digest, ErrorCode, HASH_UNIT_LEN, HashCheckpoint, PutRequest, SourceTag};

/// A visible file.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    /// Content, shared with downloads under way (like an open file handle).
    pub data: Rc<Vec<u8>>,
    /// Its digest, as verified on upload.
    pub digest: Digest,
}

#[derive(Debug)]
struct Partial {
    size: u64,
    tag: SourceTag,
    data: Vec<u8>,
    checkpoint: HashCheckpoint,
}

/// Switches that break the server on purpose, to show the simulator catches it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sabotage {
    /// Make an upload visible even though its digest did not match.
    pub commit_on_digest_mismatch: bool,
    /// Flip one bit of every stored file longer than a hash unit, after acknowledging it.
    pub corrupt_after_commit: bool,
}

/// The whole store.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub files: BTreeMap<String, Stored>,
    partials: BTreeMap<String, Partial>,
    /// Name → connection receiving an upload to it.
    active: BTreeMap<String, usize>,
    sabotage: Sabotage,
}

impl Store {
    pub(crate) fn new(sabotage: Sabotage) -> Self {
        Store {
            sabotage,
            ..Store::default()
        }
    }

    /// Decides an upload request of connection `conn`: the checkpoint to go ahead from, or a
    /// refusal.
    pub(crate) fn put(
        &mut self,
        conn: usize,
        request: &PutRequest,
    ) -> Result<HashCheckpoint, ErrorCode> {
        if self.active.contains_key(&request.name) {
            return Err(ErrorCode::InProgress);
        }
        if self.files.contains_key(&request.name) && !request.overwrite {
            return Err(ErrorCode::AlreadyExists);
        }
        let resumable = self.partials.get(&request.name).filter(|partial| {
            request.resume && partial.tag == request.tag && partial.size == request.size
        });
        let checkpoint = resumable.map_or_else(HashCheckpoint::start, |p| p.checkpoint.clone());
        let mut data = match self.partials.remove(&request.name) {
            Some(partial) if checkpoint.offset() > 0 => partial.data,
            _ => Vec::new(),
        };
        data.truncate(usize::try_from(checkpoint.offset()).unwrap_or(usize::MAX));
        self.partials.insert(
            request.name.clone(),
            Partial {
                size: request.size,
                tag: request.tag,
                data,
                checkpoint: checkpoint.clone(),
            },
        );
        self.active.insert(request.name.clone(), conn);
        Ok(checkpoint)
    }

    /// Appends received file bytes to the staged upload.
    pub(crate) fn write(&mut self, name: &str, data: &[u8]) {
        if let Some(partial) = self.partials.get_mut(name) {
            partial.data.extend_from_slice(data);
        }
    }

    /// The connection verified the upload: make it visible. An error names a storage
    /// inconsistency (the simulator's own bug, or the protocol's).
    pub(crate) fn commit(&mut self, name: &str, digest: Digest, size: u64) -> Result<(), String> {
        self.active.remove(name);
        let partial = self
            .partials
            .remove(name)
            .ok_or_else(|| format!("verified upload of {name:?} has no staged data"))?;
        if partial.data.len() as u64 != size || Digest::of(&partial.data) != digest {
            return Err(format!(
                "staged bytes of {name:?} ({} bytes) do not match the verified upload ({size} bytes)",
                partial.data.len()
            ));
        }
        let mut data = partial.data;
        if self.sabotage.corrupt_after_commit && data.len() as u64 > HASH_UNIT_LEN {
            data[HASH_UNIT_LEN as usize] ^= 1;
        }
        self.files.insert(
            name.to_owned(),
            Stored {
                data: Rc::new(data),
                digest,
            },
        );
        Ok(())
    }

    /// The digest did not match: discard the staged data (unless sabotaged).
    pub(crate) fn reject(&mut self, name: &str) {
        self.active.remove(name);
        if let Some(partial) = self.partials.remove(name)
            && self.sabotage.commit_on_digest_mismatch
        {
            let digest = Digest::of(&partial.data);
            self.files.insert(
                name.to_owned(),
                Stored {
                    data: Rc::new(partial.data),
                    digest,
                },
            );
        }
    }

    /// The upload stopped unfinished (cancel, end of stream, timeout, error): keep what the
    /// checkpoint covers, for a resume.
    pub(crate) fn interrupt(&mut self, name: &str, checkpoint: Option<HashCheckpoint>) {
        self.active.remove(name);
        let Some(partial) = self.partials.get_mut(name) else {
            return;
        };
        let checkpoint = checkpoint.unwrap_or_else(HashCheckpoint::start);
        partial
            .data
            .truncate(usize::try_from(checkpoint.offset()).unwrap_or(usize::MAX));
        if (partial.data.len() as u64) < checkpoint.offset() {
            partial.checkpoint = HashCheckpoint::start();
            partial.data.clear();
        } else {
            partial.checkpoint = checkpoint;
        }
    }

    /// A file to download.
    pub(crate) fn get(&self, name: &str) -> Option<&Stored> {
        self.files.get(name)
    }

    /// Names and sizes under `prefix`, in order.
    pub(crate) fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        self.files
            .range(prefix.to_owned()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, file)| (name.clone(), file.data.len() as u64))
            .collect()
    }

    /// Removes a file.
    pub(crate) fn remove(&mut self, name: &str) -> Result<(), ErrorCode> {
        self.files
            .remove(name)
            .map(|_| ())
            .ok_or(ErrorCode::NotFound)
    }

    /// What a `QUERY` answers.
    pub(crate) fn query(
        &self,
        name: &str,
        tag: SourceTag,
    ) -> (Option<u64>, Option<Digest>, Option<u64>) {
        let stored = self.files.get(name).map(|file| file.data.len() as u64);
        let digest = self.files.get(name).map(|file| file.digest);
        let partial = self
            .partials
            .get(name)
            .filter(|partial| partial.tag == tag)
            .map(|partial| partial.checkpoint.offset());
        (stored, digest, partial)
    }

    /// Uploads still marked as under way.
    pub(crate) fn active_uploads(&self) -> usize {
        self.active.len()
    }
}
