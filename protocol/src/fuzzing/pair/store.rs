//! The server's side of the [`pair`](super::pair) target: a tiny in-memory store and the
//! driver that applies its policy to the server machine's events, as a real server would.

use std::collections::{BTreeMap, HashMap};

use super::Pair;
use crate::fuzzing::checks::assert_resumes;
use crate::{Digest, ErrorCode, HashCheckpoint, ServerEvent, SourceTag};

/// A file the server has not finished receiving, and the hash state the machine gave for it.
pub(super) struct Partial {
    pub(super) tag: SourceTag,
    pub(super) bytes: Vec<u8>,
    pub(super) checkpoint: HashCheckpoint,
}

impl Partial {
    pub(super) fn checkpoint(&self) -> HashCheckpoint {
        self.checkpoint.clone()
    }
}

/// The server's driver: a tiny in-memory store.
#[derive(Default)]
pub(super) struct Store {
    pub(super) files: BTreeMap<String, Vec<u8>>,
    pub(super) partials: HashMap<String, Partial>,
    /// Name of the upload being received.
    pub(super) receiving: Option<String>,
    /// Download being sent: file, next position, chunk size.
    pub(super) sending: Option<(Vec<u8>, usize, usize)>,
    /// Offset of the last `PUT_READY`, for the client side to compare.
    pub(super) last_put_offset: Option<u64>,
    /// Code of the last refusal the server sent.
    pub(super) last_refusal: Option<ErrorCode>,
    /// Chunk size for the next download.
    pub(super) next_chunk: usize,
}

impl Pair {
    pub(super) fn server_sends_chunk(&mut self) {
        let Some((file, pos, chunk)) = self.store.sending.as_mut() else {
            return;
        };
        if *pos < file.len() {
            let n = (*chunk).min(file.len() - *pos);
            self.server
                .send_file_data(&file[*pos..*pos + n])
                .expect("server frames a chunk");
            let _ = self.server.poll_transmit(&mut self.to_client);
            self.to_client.extend_from_slice(&file[*pos..*pos + n]);
            *pos += n;
        } else {
            self.server
                .finish_download(Digest::of(file))
                .expect("server finishes a sent download");
            self.store.sending = None;
        }
    }

    fn refuse(&mut self, code: ErrorCode, message: &str) {
        self.server
            .refuse(code, message)
            .expect("server refuses a request");
        self.store.last_refusal = Some(code);
    }

    /// The server's driver: the store's policy, as a real server would apply it.
    pub(super) fn server_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::ClientHello { .. } => self.server.accept_client().expect("accept"),
            ServerEvent::PutRequested(request) => {
                if self.store.files.contains_key(&request.name) && !request.overwrite {
                    return self.refuse(ErrorCode::AlreadyExists, "exists");
                }
                let resumable = request.resume
                    && self
                        .store
                        .partials
                        .get(&request.name)
                        .is_some_and(|p| p.tag == request.tag);
                let partial = if resumable {
                    let partial = self
                        .store
                        .partials
                        .get_mut(&request.name)
                        .expect("checked above");
                    let checkpoint = partial.checkpoint();
                    partial.bytes.truncate(checkpoint.offset() as usize);
                    checkpoint
                } else {
                    self.store.partials.insert(
                        request.name.clone(),
                        Partial {
                            tag: request.tag,
                            bytes: Vec::new(),
                            checkpoint: HashCheckpoint::start(),
                        },
                    );
                    HashCheckpoint::start()
                };
                self.server.accept_put(&partial).expect("accept an upload");
                self.store.last_put_offset = Some(partial.offset());
                self.store.receiving = Some(request.name);
            }
            ServerEvent::UploadVerified { digest, size } => {
                let name = self
                    .store
                    .receiving
                    .take()
                    .expect("verified upload has a name");
                let partial = self
                    .store
                    .partials
                    .remove(&name)
                    .expect("verified upload has a partial");
                assert_eq!(
                    partial.bytes.len() as u64,
                    size,
                    "server's size disagrees with its data"
                );
                assert_eq!(
                    Digest::of(&partial.bytes),
                    digest,
                    "server's digest disagrees with its data"
                );
                self.store.files.insert(name, partial.bytes);
                self.server.confirm().expect("confirm a commit");
            }
            ServerEvent::UploadCancelled {
                received,
                checkpoint,
            } => {
                let name = self
                    .store
                    .receiving
                    .take()
                    .expect("cancelled upload has a name");
                let partial = self
                    .store
                    .partials
                    .get_mut(&name)
                    .expect("cancelled upload has a partial");
                assert_eq!(
                    partial.bytes.len() as u64,
                    received,
                    "cancelled upload miscounted"
                );
                assert_resumes(&checkpoint, &partial.bytes);
                partial.checkpoint = checkpoint;
            }
            ServerEvent::UploadRejected { error } => {
                panic!("a healthy upload was rejected: {error}")
            }
            ServerEvent::GetRequested { name, offset } => match self.store.files.get(&name) {
                Some(file) if offset <= file.len() as u64 => {
                    let file = file.clone();
                    self.server
                        .accept_get(file.len() as u64)
                        .expect("accept a download");
                    self.store.sending = Some((file, offset as usize, self.store.next_chunk));
                }
                _ => self.refuse(ErrorCode::NotFound, "no such file"),
            },
            ServerEvent::ListRequested { prefix } => {
                for (name, file) in self.store.files.range(prefix.clone()..) {
                    if !name.starts_with(&prefix) {
                        break;
                    }
                    self.server
                        .send_list_entry(name, file.len() as u64, 0)
                        .expect("send an entry");
                }
                self.server.finish_list().expect("finish a listing");
            }
            ServerEvent::RemoveRequested { name } => {
                if self.store.files.remove(&name).is_some() {
                    self.server.confirm().expect("confirm a removal");
                } else {
                    self.refuse(ErrorCode::NotFound, "no such file");
                }
            }
            ServerEvent::QueryRequested { name, tag } => {
                let stored = self.store.files.get(&name).map(|f| f.len() as u64);
                let digest = self.store.files.get(&name).map(|f| Digest::of(f));
                let partial = self
                    .store
                    .partials
                    .get(&name)
                    .filter(|p| p.tag == tag)
                    .map(|p| p.checkpoint().offset());
                self.server
                    .reply_query(stored, digest, partial)
                    .expect("answer a query");
            }
            ServerEvent::RequestRefused { code, message } => {
                panic!("the server refused a request the client checked: {code} {message}")
            }
        }
    }
}
