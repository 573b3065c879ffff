//! The client's operations in the [`pair`](super::pair) target, each run to its end and
//! checked against what the server's store holds.

use super::{PAIR_MAX_FILE, PAIR_NAMES, Pair, PairOp};
use crate::fuzzing::checks::{checkpoint_of, ts};
use crate::fuzzing::rng::content;
use crate::limits::MAX_DATA_CHUNK;
use crate::{
    ClientEvent, CommandError, Digest, HASH_UNIT_LEN, HashCheckpoint, SourceTag, validate_name,
};

impl Pair {
    fn expect_refusal(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Refused { code, .. } => {
                assert_eq!(
                    Some(code),
                    self.store.last_refusal.take(),
                    "client saw a refusal the server did not send"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

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
            } => self.put(name, size, seed, overwrite, resume, cancel_at, chunk),
            PairOp::Get {
                name,
                resume_units,
                chunk,
            } => self.get(name, resume_units, chunk),
            PairOp::List { prefix } => {
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
                    .store
                    .files
                    .iter()
                    .filter(|(n, _)| n.starts_with(prefix))
                    .map(|(n, f)| (n.clone(), f.len() as u64))
                    .collect();
                assert_eq!(
                    entries, expected,
                    "listing of {prefix:?} disagrees with the store"
                );
            }
            PairOp::Remove { name } => {
                let name = PAIR_NAMES[usize::from(name) % PAIR_NAMES.len()];
                if let Err(error) = self.client.remove(name) {
                    assert!(
                        matches!(error, CommandError::BadName(_)) && validate_name(name).is_err()
                    );
                    return;
                }
                let existed = self.store.files.contains_key(name);
                let event = self
                    .wait_for(|e| matches!(e, ClientEvent::Removed | ClientEvent::Refused { .. }));
                if existed {
                    assert_eq!(event, ClientEvent::Removed);
                    assert!(
                        !self.store.files.contains_key(name),
                        "removed file still stored"
                    );
                } else {
                    self.expect_refusal(event);
                }
            }
            PairOp::Query { name, seed } => {
                let name = PAIR_NAMES[usize::from(name) % PAIR_NAMES.len()];
                let tag = SourceTag([seed; 16]);
                if self.client.query(name, tag).is_err() {
                    assert!(validate_name(name).is_err());
                    return;
                }
                let event = self.wait_for(|e| matches!(e, ClientEvent::QueryReply { .. }));
                let stored_size = self.store.files.get(name).map(|f| f.len() as u64);
                let stored_digest = self.store.files.get(name).map(|f| Digest::of(f));
                let partial_offset = self
                    .store
                    .partials
                    .get(name)
                    .filter(|p| p.tag == tag)
                    .map(|p| p.checkpoint().offset());
                assert_eq!(
                    event,
                    ClientEvent::QueryReply {
                        stored_size,
                        stored_digest,
                        partial_offset
                    }
                );
            }
            PairOp::Ping(nonce) => {
                self.client.ping(nonce).expect("ping while idle");
                let event = self.wait_for(|e| matches!(e, ClientEvent::Pong { .. }));
                assert_eq!(event, ClientEvent::Pong { nonce });
            }
        }
        assert!(self.client.is_idle(), "client not idle after an operation");
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        name: u8,
        size: u32,
        seed: u8,
        overwrite: bool,
        resume: bool,
        cancel_at: Option<u32>,
        chunk: u16,
    ) {
        let name = PAIR_NAMES[usize::from(name) % PAIR_NAMES.len()];
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
            assert!(
                matches!(error, CommandError::BadName(_)) && validate_name(name).is_err(),
                "{error}"
            );
            return;
        }
        let existed = self.store.files.contains_key(name);
        let event = self.wait_for(|e| {
            matches!(
                e,
                ClientEvent::PutReady { .. } | ClientEvent::Refused { .. }
            )
        });
        let offset = match event {
            ClientEvent::PutReady { offset } => offset,
            refusal => {
                assert!(existed && !overwrite, "refused an upload the store allows");
                return self.expect_refusal(refusal);
            }
        };
        assert_eq!(
            Some(offset),
            self.store.last_put_offset.take(),
            "client and server disagree on the offset"
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
                let partial = &self.store.partials[name];
                assert_eq!(
                    partial.bytes,
                    file[..pos],
                    "server's partial differs from what was sent"
                );
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
        assert_eq!(
            self.store.files.get(name),
            Some(&file),
            "stored file differs from the client's"
        );
        assert!(
            !self.store.partials.contains_key(name),
            "partial left after a stored upload"
        );
    }

    fn get(&mut self, name: u8, resume_units: u8, chunk: u16) {
        let name = PAIR_NAMES[usize::from(name) % PAIR_NAMES.len()];
        let stored = self.store.files.get(name).cloned();
        // The client resumes from a copy it holds: the stored file itself (a single client
        // is the only writer, so its copy is current).
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
        self.store.next_chunk = usize::from(chunk).clamp(
            1 + stored.as_ref().map_or(0, Vec::len) / 256,
            MAX_DATA_CHUNK,
        );
        if let Err(error) = self.client.get(name, checkpoint) {
            assert!(
                matches!(error, CommandError::BadName(_)) && validate_name(name).is_err(),
                "{error}"
            );
            return;
        }
        self.downloaded.clear();
        let event = self.wait_for(|e| {
            matches!(
                e,
                ClientEvent::GetReady { .. } | ClientEvent::Refused { .. }
            )
        });
        let Some(file) = stored else {
            return self.expect_refusal(event);
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

    /// Everything still in flight arrives, both sides end idle, and nothing is left over.
    pub(super) fn finish(&mut self) {
        for _ in 0..4 {
            self.step();
        }
        assert!(self.to_server.is_empty() && self.to_client.is_empty());
        assert!(
            self.store.sending.is_none() && self.store.receiving.is_none(),
            "a transfer is still open"
        );
        assert!(
            self.client_events
                .iter()
                .all(|e| matches!(e, ClientEvent::Pong { .. })),
            "unclaimed events {:?}",
            self.client_events
        );
        assert_eq!(self.client.handle_eof(ts(self.now)), Ok(()));
        assert_eq!(self.server.handle_eof(ts(self.now)), Ok(()));
    }
}
