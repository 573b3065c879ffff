//! The client's operations in the `pair` fuzz target, and what ferryd's answer to each must
//! show, judged by what the client did and was told before.

use ferry_protocol::limits::MAX_DATA_CHUNK;
use ferry_protocol::{
    ClientEvent, CommandError, Digest, ErrorCode, FileHasher, HASH_UNIT_LEN, HashCheckpoint,
    SourceTag, validate_name,
};

use super::{PAIR_NAMES, Pair, PairOp};

/// Largest file a `pair` operation moves: a few hash units, so resume is exercised.
const PAIR_MAX_FILE: u32 = 3 * HASH_UNIT_LEN as u32 + 1000;

/// Bytes of a made-up file: a pattern that depends on `seed`.
fn content(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(7))
                .wrapping_add((i >> 8) as u64) as u8
        })
        .collect()
}

/// The checkpoint a receiver holding `bytes` (from offset 0) resumes from.
fn checkpoint_of(bytes: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(bytes);
    hasher.checkpoint()
}

/// The name `index` picks.
fn name_at(index: u8) -> &'static str {
    PAIR_NAMES[usize::from(index) % PAIR_NAMES.len()]
}

/// A command refused locally for its name: only a name the protocol refuses.
fn assert_bad_name(error: &CommandError, name: &str) {
    assert!(
        matches!(error, CommandError::BadName(_)) && validate_name(name).is_err(),
        "{error}"
    );
}

/// `event` is a refusal with `code`.
fn assert_refused(event: &ClientEvent, code: ErrorCode) {
    assert!(
        matches!(event, ClientEvent::Refused { code: got, .. } if *got == code),
        "expected a refusal with {code}, got {event:?}"
    );
}

impl Pair {
    /// Runs one operation to its end; afterwards the client is idle and the store agrees
    /// with what the client was told.
    pub(super) fn run(&mut self, op: &PairOp) {
        assert!(self.client.is_idle(), "client busy between operations");
        match *op {
            PairOp::Put {
                name,
                size,
                seed,
                overwrite,
                resume,
                cancel_at,
                chunk,
            } => self.put(name, size, seed, (overwrite, resume), cancel_at, chunk),
            PairOp::Get {
                name,
                resume_units,
                chunk: _,
            } => self.get(name, resume_units),
            PairOp::List { prefix } => self.list(prefix),
            PairOp::Remove { name } => self.remove(name),
            PairOp::Query { name, seed } => self.query(name, seed),
            PairOp::Ping(nonce) => {
                self.client.ping(nonce).expect("ping while idle");
                let event = self.wait_for(|e| matches!(e, ClientEvent::Pong { .. }));
                assert_eq!(event, ClientEvent::Pong { nonce });
            }
        }
        assert!(self.client.is_idle(), "client not idle after an operation");
        self.assert_store_agrees();
    }

    /// An upload, perhaps resumed, perhaps cancelled: refused only over an existing file
    /// without overwrite; resumed no later than what reached the server before, at a unit;
    /// stored as sent.
    fn put(
        &mut self,
        name: u8,
        size: u32,
        seed: u8,
        (overwrite, resume): (bool, bool),
        cancel_at: Option<u32>,
        chunk: u16,
    ) {
        let name = name_at(name);
        let size = size % PAIR_MAX_FILE;
        // The tag names the content: same tag, same bytes, so resuming is sound.
        let mut tag = [seed; 16];
        tag[..4].copy_from_slice(&size.to_be_bytes());
        let tag = SourceTag(tag);
        let file = content(u64::from(seed), size as usize);
        if let Err(error) = self
            .client
            .put(name, u64::from(size), overwrite, resume, tag)
        {
            return assert_bad_name(&error, name);
        }
        let existed = self.told.contains_key(name);
        let event = self.wait_for(|e| {
            matches!(
                e,
                ClientEvent::PutReady { .. } | ClientEvent::Refused { .. }
            )
        });
        let ClientEvent::PutReady { offset } = event else {
            assert!(existed && !overwrite, "refused an upload: {event:?}");
            return assert_refused(&event, ErrorCode::AlreadyExists);
        };
        assert!(!existed || overwrite, "accepted an upload over {name:?}");
        let key = (name.to_owned(), tag);
        let reached = self.sent_before.get(&key).copied().unwrap_or(0);
        assert!(
            offset.is_multiple_of(HASH_UNIT_LEN) && offset <= reached && (resume || offset == 0),
            "resumed at {offset}; {reached} bytes reached the server before (resume {resume})"
        );
        // Chunks no smaller than 1/256 of the file, so a run stays short.
        let chunk = usize::from(chunk).clamp(1 + file.len() / 256, MAX_DATA_CHUNK);
        let mut pos = offset as usize;
        let mut sent = 0u32;
        while pos < file.len() {
            if cancel_at.is_some_and(|at| sent >= at) {
                self.client.cancel_upload().expect("cancel an upload");
                // Let the server see the CANCEL before the next request is checked.
                self.step();
                self.step();
                self.sent_before.insert(key, reached.max(pos as u64));
                return;
            }
            let n = chunk.min(file.len() - pos);
            self.client
                .send_file_data(&file[pos..pos + n])
                .expect("client frames a chunk");
            let _ = self.client.poll_transmit(&mut self.to_server);
            self.to_server.extend_from_slice(&file[pos..pos + n]);
            pos += n;
            sent += n as u32;
            if self.steps.is_multiple_of(2) || n < 4096 {
                self.step();
            }
        }
        self.client
            .finish_upload(Digest::of(&file))
            .expect("finish the upload");
        let stored = self.wait_for(|e| matches!(e, ClientEvent::PutStored));
        assert_eq!(stored, ClientEvent::PutStored);
        self.sent_before.remove(&key);
        self.told.insert(name.to_owned(), file);
    }

    /// A download resumed from the client's own copy: the stored bytes from there, and the
    /// digest of the whole file; refused only for a file the client never stored.
    fn get(&mut self, name: u8, resume_units: u8) {
        let name = name_at(name);
        let stored = self.told.get(name).cloned();
        // A hasher folds a unit only once a byte after it arrives, so a checkpoint at `keep`
        // needs one byte past it: resume at most at the last unit boundary before the end.
        let local_units = stored
            .as_ref()
            .map_or(0, |f| (f.len() as u64).saturating_sub(1) / HASH_UNIT_LEN);
        let units = u64::from(resume_units).min(local_units);
        let keep = (units * HASH_UNIT_LEN) as usize;
        let checkpoint = match &stored {
            Some(file) if keep > 0 => checkpoint_of(&file[..keep + 1]),
            _ => HashCheckpoint::start(),
        };
        assert_eq!(checkpoint.offset(), keep as u64);
        if let Err(error) = self.client.get(name, checkpoint) {
            return assert_bad_name(&error, name);
        }
        self.downloaded.clear();
        let event = self.wait_for(|e| {
            matches!(
                e,
                ClientEvent::GetReady { .. } | ClientEvent::Refused { .. }
            )
        });
        let Some(file) = stored else {
            return assert_refused(&event, ErrorCode::NotFound);
        };
        assert_eq!(
            event,
            ClientEvent::GetReady {
                size: file.len() as u64,
                offset: keep as u64
            }
        );
        let verified = self.wait_for(|e| matches!(e, ClientEvent::GetVerified { .. }));
        assert_eq!(
            verified,
            ClientEvent::GetVerified {
                digest: Digest::of(&file)
            }
        );
        assert_eq!(
            self.downloaded,
            file[keep..],
            "downloaded bytes differ from the stored file"
        );
    }

    /// A listing: the files the client stored under the prefix, in name order, with sizes.
    fn list(&mut self, prefix: u8) {
        let prefix = match prefix % 4 {
            0 => "",
            1 => "docs/",
            2 => "d",
            _ => "ü",
        };
        self.client.list(prefix).expect("list while idle");
        let mut entries = Vec::new();
        while let ClientEvent::ListEntry(entry) =
            self.wait_for(|e| matches!(e, ClientEvent::ListEntry(_) | ClientEvent::ListEnd))
        {
            entries.push((entry.name, entry.size));
        }
        let expected: Vec<(String, u64)> = self
            .told
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, f)| (n.clone(), f.len() as u64))
            .collect();
        assert_eq!(entries, expected, "listing of {prefix:?}");
    }

    /// A removal: done for a stored file, refused for any other name.
    fn remove(&mut self, name: u8) {
        let name = name_at(name);
        if let Err(error) = self.client.remove(name) {
            return assert_bad_name(&error, name);
        }
        let event =
            self.wait_for(|e| matches!(e, ClientEvent::Removed | ClientEvent::Refused { .. }));
        if self.told.remove(name).is_some() {
            assert_eq!(event, ClientEvent::Removed);
        } else {
            assert_refused(&event, ErrorCode::NotFound);
        }
    }

    /// A query: the stored file's size and digest; a partial upload only for a tag whose
    /// upload was cancelled, at a unit no later than what reached the server.
    fn query(&mut self, name: u8, seed: u8) {
        let name = name_at(name);
        let tag = SourceTag([seed; 16]);
        if let Err(error) = self.client.query(name, tag) {
            return assert_bad_name(&error, name);
        }
        let event = self.wait_for(|e| matches!(e, ClientEvent::QueryReply { .. }));
        let ClientEvent::QueryReply {
            stored_size,
            stored_digest,
            partial_offset,
        } = event
        else {
            unreachable!("waited for a QueryReply");
        };
        let file = self.told.get(name);
        assert_eq!(stored_size, file.map(|f| f.len() as u64));
        assert_eq!(stored_digest, file.map(|f| Digest::of(f)));
        let reached = self.sent_before.get(&(name.to_owned(), tag)).copied();
        if let Some(offset) = partial_offset {
            assert!(
                offset.is_multiple_of(HASH_UNIT_LEN) && reached.is_some_and(|r| offset <= r),
                "partial at {offset}; {reached:?} bytes reached the server"
            );
        }
    }
}
