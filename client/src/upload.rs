//! One upload over one connection, and what carries over between attempts of the same upload.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, FileHasher, HashCheckpoint, SourceTag};

use crate::error::ClientError;
use crate::link::{Link, no_data, unexpected};
use crate::options::Progress;

/// Hash checkpoints kept from the bytes already sent, so that a resumed attempt can usually
/// continue hashing at the server's offset without reading the prefix again.
const KEPT_CHECKPOINTS: usize = 64;

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
                ..
            } = link.next_event("asking whether the upload was stored", &mut no_data)?
                && stored == self.size
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

    /// A hasher positioned at `offset`: from a kept checkpoint if one matches, else by hashing
    /// the local prefix again.
    fn hasher_at<R: Read + Seek>(
        &mut self,
        source: &mut R,
        offset: u64,
    ) -> Result<FileHasher, ClientError> {
        if offset == 0 {
            return Ok(FileHasher::new());
        }
        if let Some(checkpoint) = self.recent.iter().find(|c| c.offset() == offset) {
            return Ok(FileHasher::resume(checkpoint));
        }
        let mut hasher = FileHasher::new();
        source
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.read_error(e))?;
        let mut left = offset;
        while left > 0 {
            let want =
                usize::try_from(left).map_or(self.buf.len(), |left| left.min(self.buf.len()));
            let chunk = &mut self.buf[..want];
            source
                .read_exact(chunk)
                .map_err(|e| read_error(self.name, e))?;
            hasher.update(chunk);
            left -= want as u64;
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
