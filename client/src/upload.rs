//! One upload over one connection, and what carries over between attempts of the same upload.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, FileHasher, HashCheckpoint, SourceTag};

use crate::error::ClientError;
use crate::link::{Link, no_data, unexpected};
use crate::options::Progress;

/// Hash checkpoints kept from the last bytes sent, so that a resumed attempt can usually
/// continue hashing at the server's offset without reading the prefix again.
const KEPT_CHECKPOINTS: usize = 64;

/// Spacing of the sparse checkpoints kept over the whole upload: a resumed attempt never
/// re-reads more than this much of the source to reach the server's offset.
const SPARSE_EVERY: u64 = 64 * 1024 * 1024;

/// Uploads at least this large ask the server for its resumable offset before `PUT`, and hash
/// the local prefix up to it first: the server waits for data only up to its idle timeout,
/// while hashing a large prefix can take longer.
const PREHASH_MIN: u64 = 64 * 1024 * 1024;

/// An upload in progress, across attempts.
pub(crate) struct Upload<'a> {
    pub(crate) name: &'a str,
    pub(crate) size: u64,
    pub(crate) tag: SourceTag,
    pub(crate) overwrite: bool,
    /// Whether the first attempt may resume a partial upload left by an earlier run.
    pub(crate) resume_first: bool,
    /// Whether later attempts resume what earlier ones sent.
    pub(crate) resume_retries: bool,
    pub(crate) bytes_sent: u64,
    pub(crate) resumed_from: u64,
    recent: VecDeque<HashCheckpoint>,
    /// Checkpoints about every [`SPARSE_EVERY`] bytes, by offset.
    sparse: BTreeMap<u64, HashCheckpoint>,
    /// A hasher already positioned at the offset the server is expected to answer.
    prepared: Option<FileHasher>,
    /// The digest sent in `DONE`, once an attempt got that far.
    done_sent: Option<Digest>,
    buf: Vec<u8>,
}

impl<'a> Upload<'a> {
    pub(crate) fn new(
        name: &'a str,
        size: u64,
        tag: SourceTag,
        overwrite: bool,
        chunk_size: usize,
    ) -> Self {
        let chunk = chunk_size.clamp(1, ferry_protocol::limits::MAX_DATA_CHUNK);
        let chunk = usize::try_from(size).map_or(chunk, |size| chunk.min(size.max(1)));
        Upload {
            name,
            size,
            tag,
            overwrite,
            resume_first: true,
            resume_retries: true,
            bytes_sent: 0,
            resumed_from: 0,
            recent: VecDeque::new(),
            sparse: BTreeMap::new(),
            prepared: None,
            done_sent: None,
            buf: vec![0; chunk],
        }
    }

    /// One attempt: ask, send from the offset the server answers, finish, await storage.
    pub(crate) fn attempt<R: Read + Seek>(
        &mut self,
        link: &mut Link,
        source: &mut R,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest, ClientError> {
        let resume = if attempt == 1 {
            self.resume_first
        } else {
            self.resume_retries
        };
        if resume && attempt == 1 && self.size >= PREHASH_MIN {
            self.prepare(link, source)?;
        }
        link.conn
            .put(self.name, self.size, self.overwrite, resume, self.tag)?;
        link.flush("sending an upload request")?;
        let offset =
            match link.next_event("waiting for the server to accept the upload", &mut no_data)? {
                ClientEvent::PutReady { offset } => offset,
                ClientEvent::Refused { code, message } => return self.refused(link, code, message),
                other => return Err(unexpected(&other, "waiting for PUT_READY").into()),
            };
        self.resumed_from = offset;
        tracing::debug!(name = self.name, offset, attempt, "upload accepted");
        let mut hasher = self.hasher_at(source, offset)?;
        source
            .seek(SeekFrom::Start(offset))
            .map_err(|e| self.read_error(e))?;
        let mut position = offset;
        progress(Progress {
            done: position,
            total: self.size,
            attempt,
        });
        while position < self.size {
            let want = usize::try_from(self.size - position)
                .map_or(self.buf.len(), |left| left.min(self.buf.len()));
            let chunk = &mut self.buf[..want];
            if let Err(error) = source.read_exact(chunk) {
                return Err(if error.kind() == io::ErrorKind::UnexpectedEof {
                    ClientError::SourceChanged {
                        name: self.name.to_owned(),
                        reason: format!("it ended before its declared size of {} bytes", self.size),
                    }
                } else {
                    read_error(self.name, error)
                });
            }
            hasher.update(chunk);
            link.send_data(chunk)?;
            position += want as u64;
            self.bytes_sent += want as u64;
            self.remember(hasher.checkpoint());
            progress(Progress {
                done: position,
                total: self.size,
                attempt,
            });
        }
        let digest = hasher.finalize();
        link.conn.finish_upload(digest)?;
        link.flush("finishing the upload")?;
        self.done_sent = Some(digest);
        match link.next_event("waiting for the server to store the upload", &mut no_data)? {
            ClientEvent::PutStored => Ok(digest),
            ClientEvent::Refused {
                code: ErrorCode::DigestMismatch,
                message,
            } => Err(ClientError::Integrity {
                name: self.name.to_owned(),
                reason: format!(
                    "the server found that the uploaded bytes do not match their digest ({message}); \
                     the source may have changed while it was read, so nothing was stored"
                ),
            }),
            ClientEvent::Refused { code, message } => self.refused(link, code, message),
            other => Err(unexpected(&other, "waiting for the upload's ACK").into()),
        }
    }

    /// A refusal. One case is not a failure: an earlier attempt sent `DONE` and lost the
    /// connection before the `ACK`, so the file is already stored; the server then refuses the
    /// retry as existing, and a stored file of the same size confirms the earlier commit.
    fn refused(
        &mut self,
        link: &mut Link,
        code: ErrorCode,
        message: String,
    ) -> Result<Digest, ClientError> {
        if let (ErrorCode::AlreadyExists, Some(digest), false) =
            (code, self.done_sent, self.overwrite)
        {
            link.conn.query(self.name, self.tag)?;
            link.flush("asking whether the upload was stored")?;
            if let ClientEvent::QueryReply {
                stored_size: Some(stored),
                stored_digest: Some(stored_digest),
                ..
            } = link.next_event("asking whether the upload was stored", &mut no_data)?
                && stored == self.size
                && stored_digest == digest
            {
                tracing::info!(
                    name = self.name,
                    "upload was stored before the connection was lost"
                );
                return Ok(digest);
            }
        }
        Err(ClientError::Refused {
            request: "upload",
            code,
            message,
        })
    }

    /// Asks the server how much of a partial upload it holds and hashes the local prefix up to
    /// there, before `PUT` starts the server's idle clock.
    fn prepare<R: Read + Seek>(
        &mut self,
        link: &mut Link,
        source: &mut R,
    ) -> Result<(), ClientError> {
        link.conn.query(self.name, self.tag)?;
        link.flush("asking for a resumable offset")?;
        let event = link.next_event("asking for a resumable offset", &mut no_data)?;
        if let ClientEvent::QueryReply {
            partial_offset: Some(offset),
            ..
        } = event
            && offset > 0
            && offset <= self.size
        {
            tracing::debug!(
                name = self.name,
                offset,
                "hashing the local prefix before resuming"
            );
            self.prepared = Some(self.hasher_at(source, offset)?);
        }
        Ok(())
    }

    /// A hasher positioned at `offset`: prepared, or from the nearest kept checkpoint at or
    /// before it, hashing the source from there.
    fn hasher_at<R: Read + Seek>(
        &mut self,
        source: &mut R,
        offset: u64,
    ) -> Result<FileHasher, ClientError> {
        let prepared = self.prepared.take();
        if offset == 0 {
            return Ok(FileHasher::new());
        }
        let nearest = self
            .recent
            .iter()
            .chain(self.sparse.range(..=offset).map(|(_, c)| c))
            .filter(|c| c.offset() <= offset)
            .max_by_key(|c| c.offset());
        let mut hasher = match (prepared, nearest) {
            (Some(p), n)
                if p.hashed_len() <= offset && n.is_none_or(|c| c.offset() <= p.hashed_len()) =>
            {
                p
            }
            (_, Some(checkpoint)) => FileHasher::resume(checkpoint),
            (_, None) => FileHasher::new(),
        };
        let mut position = hasher.hashed_len();
        source
            .seek(SeekFrom::Start(position))
            .map_err(|e| self.read_error(e))?;
        while position < offset {
            let want = usize::try_from(offset - position)
                .map_or(self.buf.len(), |left| left.min(self.buf.len()));
            let chunk = &mut self.buf[..want];
            source
                .read_exact(chunk)
                .map_err(|e| read_error(self.name, e))?;
            hasher.update(chunk);
            position += want as u64;
        }
        Ok(hasher)
    }

    fn remember(&mut self, checkpoint: HashCheckpoint) {
        if self
            .recent
            .back()
            .is_some_and(|last| last.offset() == checkpoint.offset())
        {
            return;
        }
        let next_sparse = self.sparse.last_key_value().map_or(0, |(&o, _)| o) + SPARSE_EVERY;
        if checkpoint.offset() >= next_sparse {
            self.sparse.insert(checkpoint.offset(), checkpoint.clone());
        }
        if self.recent.len() == KEPT_CHECKPOINTS {
            self.recent.pop_front();
        }
        self.recent.push_back(checkpoint);
    }

    fn read_error(&self, source: io::Error) -> ClientError {
        read_error(self.name, source)
    }
}

fn read_error(name: &str, source: io::Error) -> ClientError {
    ClientError::Local {
        action: "cannot read the source of",
        path: PathBuf::from(name),
        source,
    }
}
