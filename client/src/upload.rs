//! One upload over one connection, and what carries over between attempts of the same upload.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, FileHasher, HashCheckpoint, SourceTag};

use crate::error::ClientError;
use crate::existing::{self, Existing, StoredFile};
use crate::link::{Link, no_data, unexpected};
use crate::options::{Progress, PutOutcome};

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

/// How an upload ended well: the digest of the stored file, and whether this upload stored it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finished {
    /// The stored file's digest, equal to the local file's.
    pub(crate) digest: Digest,
    /// Whether this upload's bytes were stored or an identical file was there already.
    pub(crate) outcome: PutOutcome,
}

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
    /// The source's whole-file digest, once computed to compare with a stored file.
    local_digest: Option<Digest>,
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
            local_digest: None,
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
    ) -> Result<Finished, ClientError> {
        let resume = if attempt == 1 {
            self.resume_first
        } else {
            self.resume_retries
        };
        if resume
            && attempt == 1
            && self.size >= PREHASH_MIN
            && let Some(finished) = self.prepare(link, source)?
        {
            return Ok(finished);
        }
        link.conn
            .put(self.name, self.size, self.overwrite, resume, self.tag)?;
        link.flush("sending an upload request")?;
        let offset =
            match link.next_event("waiting for the server to accept the upload", &mut no_data)? {
                ClientEvent::PutReady { offset } => offset,
                ClientEvent::Refused { code, message } => {
                    return self.refused(link, source, code, message);
                }
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
            source
                .read_exact(chunk)
                .map_err(|e| source_error(self.name, self.size, e))?;
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
            ClientEvent::PutStored => Ok(Finished {
                digest,
                outcome: PutOutcome::Uploaded,
            }),
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
            ClientEvent::Refused { code, message } => self.refused(link, source, code, message),
            other => Err(unexpected(&other, "waiting for the upload's ACK").into()),
        }
    }

    /// A refusal. One kind is not a failure: the name exists and holds exactly the bytes of
    /// this upload (same size and digest). That happens when an earlier attempt or run sent
    /// `DONE` and lost the connection before the `ACK`: the file is stored. The server is asked
    /// what it holds (one `QUERY`, only after such a refusal), and the local file is hashed
    /// only if the sizes match and the server knows its digest.
    fn refused<R: Read + Seek>(
        &mut self,
        link: &mut Link,
        source: &mut R,
        code: ErrorCode,
        message: String,
    ) -> Result<Finished, ClientError> {
        let refusal = ClientError::Refused {
            request: "upload",
            code,
            message,
        };
        if code != ErrorCode::AlreadyExists || self.overwrite {
            return Err(refusal);
        }
        let Some((stored, _)) = self.query(link, "asking what is stored under the name")? else {
            return Err(refusal);
        };
        match self.compare(source, stored)? {
            Existing::Identical(digest) => Ok(self.already_stored(digest)),
            Existing::Unconfirmed => Err(ClientError::ExistsUnconfirmed {
                name: self.name.to_owned(),
                size: self.size,
            }),
            Existing::Different => Err(refusal),
        }
    }

    /// Asks the server for its resumable offset and hashes the local prefix up to there, before
    /// `PUT` starts the server's idle clock. The same answer says whether a file is stored
    /// under the name: if it holds this upload's bytes, the upload is done without a `PUT`.
    fn prepare<R: Read + Seek>(
        &mut self,
        link: &mut Link,
        source: &mut R,
    ) -> Result<Option<Finished>, ClientError> {
        let Some((stored, partial)) = self.query(link, "asking for a resumable offset")? else {
            return Ok(None);
        };
        if let Some(offset) = partial
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
        if !self.overwrite
            && stored.size.is_some()
            && let Existing::Identical(digest) = self.compare(source, stored)?
        {
            return Ok(Some(self.already_stored(digest)));
        }
        Ok(None)
    }

    /// What the server holds under the name: the stored file, and the resumable offset of a
    /// partial upload with this upload's tag. `None` if the server refuses to say.
    fn query(
        &self,
        link: &mut Link,
        during: &'static str,
    ) -> Result<Option<(StoredFile, Option<u64>)>, ClientError> {
        link.conn.query(self.name, self.tag)?;
        link.flush(during)?;
        match link.next_event(during, &mut no_data)? {
            ClientEvent::QueryReply {
                stored_size,
                stored_digest,
                partial_offset,
            } => Ok(Some((
                StoredFile {
                    size: stored_size,
                    digest: stored_digest,
                },
                partial_offset,
            ))),
            ClientEvent::Refused { .. } => Ok(None),
            other => Err(unexpected(&other, during).into()),
        }
    }

    /// Compares the stored file with the source, hashing the source only if needed.
    fn compare<R: Read + Seek>(
        &mut self,
        source: &mut R,
        stored: StoredFile,
    ) -> Result<Existing, ClientError> {
        let size = self.size;
        existing::judge(stored, size, || self.whole_digest(source))
    }

    /// The end of an upload whose bytes are stored: by this upload if it sent `DONE` with this
    /// digest (and lost the `ACK`), else by someone before it.
    fn already_stored(&self, digest: Digest) -> Finished {
        let outcome = if self.done_sent == Some(digest) {
            tracing::info!(
                name = self.name,
                "upload was stored before the connection was lost"
            );
            PutOutcome::Uploaded
        } else {
            tracing::info!(name = self.name, %digest, "an identical file is already stored");
            PutOutcome::AlreadyStored
        };
        Finished { digest, outcome }
    }

    /// The source's whole-file digest: the one sent in `DONE` if an attempt got that far, else
    /// computed once per upload by reading the source (from the nearest checkpoint or prepared
    /// prefix, else from its start).
    fn whole_digest<R: Read + Seek>(&mut self, source: &mut R) -> Result<Digest, ClientError> {
        if let Some(digest) = self.done_sent.or(self.local_digest) {
            return Ok(digest);
        }
        // `hasher_at` takes the prepared hasher; a later `PUT` may still resume from it.
        let prepared = self.prepared.clone();
        let digest = self.hasher_at(source, self.size)?.finalize();
        self.prepared = prepared;
        self.local_digest = Some(digest);
        Ok(digest)
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
                .map_err(|e| source_error(self.name, self.size, e))?;
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

/// A failed read of the source: one that ended early means the source shrank.
fn source_error(name: &str, size: u64, error: io::Error) -> ClientError {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        ClientError::SourceChanged {
            name: name.to_owned(),
            reason: format!("it ended before its declared size of {size} bytes"),
        }
    } else {
        read_error(name, error)
    }
}

fn read_error(name: &str, source: io::Error) -> ClientError {
    ClientError::Local {
        action: "cannot read the source of",
        path: PathBuf::from(name),
        source,
    }
}
