//! The server side's driver in the pair harness: an in-memory store with the same rules as
//! `ferryd` (staged uploads visible only after verification, resume by name and tag, refusals).

use std::collections::BTreeMap;

use ferry_protocol::{
    Digest, ErrorCode, HashCheckpoint, PutRequest, ServerConnection, ServerEvent, SourceTag,
};

/// A partial upload: the bytes staged so far and the tag that may resume it.
#[derive(Clone, Debug)]
pub struct Partial {
    pub size: u64,
    pub tag: SourceTag,
    pub data: Vec<u8>,
    pub checkpoint: HashCheckpoint,
}

#[derive(Clone, Debug, Default)]
pub struct MemStore {
    /// Visible files: name → (content, digest).
    pub files: BTreeMap<String, (Vec<u8>, Digest)>,
    /// Staged partial uploads by name.
    pub partials: BTreeMap<String, Partial>,
    /// Largest accepted file.
    pub max_size: Option<u64>,
    /// The upload being received: its name.
    receiving: Option<String>,
}

impl MemStore {
    pub fn with_max_size(max: u64) -> Self {
        MemStore {
            max_size: Some(max),
            ..MemStore::default()
        }
    }

    pub fn write_upload(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let name = self
            .receiving
            .as_ref()
            .expect("file data only during an upload");
        let partial = self.partials.get_mut(name).expect("staged upload exists");
        partial.data.extend_from_slice(data);
    }

    /// Acts on one server event; returns `(content, offset)` of a download to start.
    pub fn act(
        &mut self,
        conn: &mut ServerConnection,
        event: ServerEvent,
    ) -> Option<(Vec<u8>, usize)> {
        match event {
            ServerEvent::ClientHello { .. } => conn.accept_client().expect("accept hello"),
            ServerEvent::PutRequested(request) => self.on_put(conn, request),
            ServerEvent::UploadVerified { digest, size } => {
                let name = self.receiving.take().expect("verified upload has a name");
                let partial = self.partials.remove(&name).expect("staged upload exists");
                assert_eq!(partial.data.len() as u64, size, "store got every byte");
                assert_eq!(
                    Digest::of(&partial.data),
                    digest,
                    "store's bytes hash to the digest"
                );
                self.files.insert(name, (partial.data, digest));
                conn.confirm().expect("confirm upload");
            }
            ServerEvent::UploadRejected { .. } => {
                let name = self.receiving.take().expect("rejected upload has a name");
                self.partials.remove(&name);
            }
            ServerEvent::UploadCancelled { checkpoint, .. } => {
                let name = self.receiving.take().expect("cancelled upload has a name");
                let partial = self.partials.get_mut(&name).expect("staged upload exists");
                partial.data.truncate(checkpoint.offset() as usize);
                partial.checkpoint = checkpoint;
            }
            ServerEvent::GetRequested { name, offset } => match self.files.get(&name) {
                Some((data, _)) if offset <= data.len() as u64 => {
                    conn.accept_get(data.len() as u64).expect("accept get");
                    return Some((data.clone(), offset as usize));
                }
                Some(_) => conn
                    .refuse(ErrorCode::SizeMismatch, "offset beyond end")
                    .expect("refuse"),
                None => conn
                    .refuse(ErrorCode::NotFound, "no such file")
                    .expect("refuse"),
            },
            ServerEvent::ListRequested { prefix } => {
                for (name, (data, _)) in self.files.range(prefix.clone()..) {
                    if !name.starts_with(&prefix) {
                        break;
                    }
                    conn.send_list_entry(name, data.len() as u64, 0)
                        .expect("entry");
                }
                conn.finish_list().expect("finish list");
            }
            ServerEvent::RemoveRequested { name } => match self.files.remove(&name) {
                Some(_) => conn.confirm().expect("confirm remove"),
                None => conn
                    .refuse(ErrorCode::NotFound, "no such file")
                    .expect("refuse"),
            },
            ServerEvent::QueryRequested { name, tag } => {
                let stored = self.files.get(&name).map(|(data, _)| data.len() as u64);
                let digest = self.files.get(&name).map(|(_, digest)| *digest);
                let partial = self
                    .partials
                    .get(&name)
                    .filter(|p| p.tag == tag)
                    .map(|p| p.checkpoint.offset());
                conn.reply_query(stored, digest, partial)
                    .expect("reply query");
            }
            ServerEvent::RequestRefused { .. } => {}
            other => panic!("unexpected server event {other:?}"),
        }
        None
    }

    fn on_put(&mut self, conn: &mut ServerConnection, request: PutRequest) {
        if self.files.contains_key(&request.name) && !request.overwrite {
            conn.refuse(ErrorCode::AlreadyExists, "name already exists")
                .expect("refuse");
            return;
        }
        if self.max_size.is_some_and(|max| request.size > max) {
            conn.refuse(ErrorCode::TooLarge, "too large")
                .expect("refuse");
            return;
        }
        let resumable = self
            .partials
            .get(&request.name)
            .filter(|p| request.resume && p.tag == request.tag && p.size == request.size);
        let checkpoint = match resumable {
            Some(partial) => partial.checkpoint.clone(),
            None => HashCheckpoint::start(),
        };
        let mut partial = self.partials.remove(&request.name).unwrap_or(Partial {
            size: request.size,
            tag: request.tag,
            data: Vec::new(),
            checkpoint: HashCheckpoint::start(),
        });
        if checkpoint.offset() == 0 {
            partial.data.clear();
        }
        partial.data.truncate(checkpoint.offset() as usize);
        partial.size = request.size;
        partial.tag = request.tag;
        partial.checkpoint = checkpoint.clone();
        self.partials.insert(request.name.clone(), partial);
        self.receiving = Some(request.name);
        conn.accept_put(&checkpoint).expect("accept put");
    }
}
