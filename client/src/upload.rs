//! One upload over one connection, and what carries over between attempts of the same upload.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use ferry_protocol::{
    ClientConnection, ClientEvent, Digest, ErrorCode, FileHasher, HashCheckpoint, SourceTag,
};

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
pub struct Finished {
    /// The stored file's digest, equal to the local file's.
    pub digest: Digest,
    /// Whether this upload's bytes were stored or an identical file was there already.
    pub outcome: PutOutcome,
}

/// An upload in progress, across attempts: what a retry resumes from (hash checkpoints of
/// what was sent, the digest sent in `DONE`, the local digest once computed).
pub struct Upload {
    /// Name on the server.
    pub name: String,
    /// Size of the source.
    pub size: u64,
    /// Identity of the source, under which a partial upload resumes.
    pub tag: SourceTag,
    /// Replace a file stored under the name.
    pub overwrite: bool,
    /// Whether the first attempt may resume a partial upload left by an earlier run.
    pub resume_first: bool,
    /// Whether later attempts resume what earlier ones sent.
    pub resume_retries: bool,
    /// File bytes sent in all attempts.
    pub bytes_sent: u64,
    /// The offset the last attempt started from.
    pub resumed_from: u64,
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

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("bytes_sent", &self.bytes_sent)
            .field("resumed_from", &self.resumed_from)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// An upload of `size` bytes as `name`, sent in pieces of at most `chunk_size` bytes;
    /// it asks to resume on every attempt unless told otherwise.
    pub fn new(name: &str, size: u64, tag: SourceTag, overwrite: bool, chunk_size: usize) -> Self {
        let chunk = chunk_size.clamp(1, ferry_protocol::limits::MAX_DATA_CHUNK);
        let chunk = usize::try_from(size).map_or(chunk, |size| chunk.min(size.max(1)));
        Upload {
            name: name.to_owned(),
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

    /// One attempt over a blocking link: ask, send from the offset the server answers, finish,
    /// await storage. Every decision is [`UploadAttempt`]'s; this only moves bytes.
    pub(crate) fn attempt<R: Read + Seek>(
        &mut self,
        link: &mut Link,
        source: &mut R,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Finished, ClientError> {
        let mut run = UploadAttempt::begin(self, &mut link.conn, attempt)?;
        loop {
            while let Some(chunk) = run.next_chunk(self, &mut link.conn, source)? {
                link.send_data(chunk)?;
                progress(run.progress(self));
            }
            link.flush("sending an upload")?;
            let during = run.during();
            let event = link.next_event(during, &mut no_data)?;
            if let Some(finished) = run.on_event(self, &mut link.conn, event, source)? {
                return Ok(finished);
            }
            if matches!(run.stage, Stage::Sending { .. }) {
                progress(run.progress(self));
            }
        }
    }

    /// Whether the attempt numbered `attempt` asks to resume.
    fn resumes(&self, attempt: u32) -> bool {
        if attempt == 1 {
            self.resume_first
        } else {
            self.resume_retries
        }
    }

    /// Queues this upload's `PUT`.
    fn request(&self, conn: &mut ClientConnection, resume: bool) -> Result<(), ClientError> {
        conn.put(&self.name, self.size, self.overwrite, resume, self.tag)?;
        Ok(())
    }

    /// A refusal. One kind is not a failure: the name exists and holds exactly the bytes of
    /// this upload (same size and digest). That happens when an earlier attempt or run sent
    /// `DONE` and lost the connection before the `ACK`: the file is stored. The server is asked
    /// what it holds (one `QUERY`, only after such a refusal; `Some` is that question's
    /// stage), and the local file is hashed only if the sizes match and the server knows its
    /// digest.
    fn refused(
        &self,
        conn: &mut ClientConnection,
        code: ErrorCode,
        message: String,
    ) -> Result<Stage, ClientError> {
        let refusal = ClientError::Refused {
            request: "upload",
            code,
            message,
        };
        if code != ErrorCode::AlreadyExists || self.overwrite {
            return Err(refusal);
        }
        conn.query(&self.name, self.tag)?;
        Ok(Stage::Querying(Query::AfterRefusal(refusal)))
    }

    /// What a refused upload makes of the server's answer to its `QUERY`.
    fn after_refusal<R: Read + Seek>(
        &mut self,
        source: &mut R,
        refusal: ClientError,
        stored: Option<StoredFile>,
    ) -> Result<Finished, ClientError> {
        let Some(stored) = stored else {
            return Err(refusal);
        };
        match self.compare(source, stored)? {
            Existing::Identical(digest) => Ok(self.already_stored(digest)),
            Existing::Unconfirmed => Err(ClientError::ExistsUnconfirmed {
                name: self.name.clone(),
                size: self.size,
            }),
            Existing::Different => Err(refusal),
        }
    }

    /// With the answer to the `QUERY` asked before `PUT`: hashes the local prefix up to the
    /// resumable offset (before `PUT` starts the server's idle clock). The same answer says
    /// whether a file is stored under the name: if it holds this upload's bytes, the upload is
    /// done without a `PUT`.
    fn prepared<R: Read + Seek>(
        &mut self,
        source: &mut R,
        answer: Option<(StoredFile, Option<u64>)>,
    ) -> Result<Option<Finished>, ClientError> {
        let Some((stored, partial)) = answer else {
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
                .map_err(|e| source_error(&self.name, self.size, e))?;
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
        read_error(&self.name, source)
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

/// The question a `QUERY` of an upload asks.
#[derive(Debug)]
enum Query {
    /// Before `PUT`: the resumable offset, and whether the bytes are stored already.
    Prepare {
        /// Whether the `PUT` that follows asks to resume.
        resume: bool,
    },
    /// After `PUT` was refused because the name exists: are these bytes what it holds?
    AfterRefusal(ClientError),
}

/// Where one attempt stands.
#[derive(Debug)]
enum Stage {
    /// A `QUERY` is out.
    Querying(Query),
    /// `PUT` is out, awaiting its go-ahead.
    Requested,
    /// Sending the file from `position`, hashing as it goes.
    Sending {
        position: u64,
        hasher: Box<FileHasher>,
    },
    /// `DONE` with this digest is out, awaiting the `ACK`.
    Finishing(Digest),
}

/// One attempt of an upload on one connection, without sockets: it queues requests on the
/// protocol machine, reads the source for the data to send, and decides on each event. The
/// blocking library ([`Upload::attempt`]) and the deterministic simulator drive it the same
/// way: send what [`next_chunk`](Self::next_chunk) gives until `None`, flush, read the next
/// event, hand it to [`on_event`](Self::on_event), until that returns the outcome. A failed
/// connection ends the attempt; the [`Upload`] keeps what the next one resumes from.
#[derive(Debug)]
pub struct UploadAttempt {
    stage: Stage,
    attempt: u32,
}

impl UploadAttempt {
    /// Starts attempt number `attempt` on a connected machine: a `QUERY` first for a large
    /// upload's first attempt (to hash the local prefix before `PUT`), else the `PUT`.
    pub fn begin(
        upload: &mut Upload,
        conn: &mut ClientConnection,
        attempt: u32,
    ) -> Result<UploadAttempt, ClientError> {
        let resume = upload.resumes(attempt);
        let stage = if resume && attempt == 1 && upload.size >= PREHASH_MIN {
            conn.query(&upload.name, upload.tag)?;
            Stage::Querying(Query::Prepare { resume })
        } else {
            upload.request(conn, resume)?;
            Stage::Requested
        };
        Ok(UploadAttempt { stage, attempt })
    }

    /// What the attempt waits for, for error messages.
    pub fn during(&self) -> &'static str {
        match self.stage {
            Stage::Querying(Query::Prepare { .. }) => "asking for a resumable offset",
            Stage::Querying(Query::AfterRefusal(_)) => "asking what is stored under the name",
            Stage::Requested => "waiting for the server to accept the upload",
            Stage::Sending { .. } => "sending upload data",
            Stage::Finishing(_) => "waiting for the server to store the upload",
        }
    }

    /// Whether `DONE` is out and the answer awaited.
    pub fn is_finishing(&self) -> bool {
        matches!(self.stage, Stage::Finishing(_))
    }

    /// How far the upload is.
    pub fn progress(&self, upload: &Upload) -> Progress {
        let done = match &self.stage {
            Stage::Sending { position, .. } => *position,
            Stage::Finishing(_) => upload.size,
            _ => 0,
        };
        Progress {
            done,
            total: upload.size,
            attempt: self.attempt,
        }
    }

    /// The next piece of the file to send, read from `source` and hashed: frame it with
    /// [`ClientConnection::send_file_data`] and send the header, then the piece. After the last
    /// piece it queues `DONE` and returns `None`; `None` too when the attempt is not sending.
    pub fn next_chunk<'u, R: Read + Seek>(
        &mut self,
        upload: &'u mut Upload,
        conn: &mut ClientConnection,
        source: &mut R,
    ) -> Result<Option<&'u [u8]>, ClientError> {
        let Stage::Sending { position, hasher } = &mut self.stage else {
            return Ok(None);
        };
        if *position == upload.size {
            let digest = hasher.finalize();
            conn.finish_upload(digest)?;
            upload.done_sent = Some(digest);
            self.stage = Stage::Finishing(digest);
            return Ok(None);
        }
        let want = usize::try_from(upload.size - *position)
            .map_or(upload.buf.len(), |left| left.min(upload.buf.len()));
        source
            .seek(SeekFrom::Start(*position))
            .map_err(|e| upload.read_error(e))?;
        let chunk = &mut upload.buf[..want];
        source
            .read_exact(chunk)
            .map_err(|e| source_error(&upload.name, upload.size, e))?;
        hasher.update(chunk);
        *position += want as u64;
        upload.bytes_sent += want as u64;
        let checkpoint = hasher.checkpoint();
        upload.remember(checkpoint);
        Ok(Some(&upload.buf[..want]))
    }

    /// An event of the machine: `Some` with the outcome once the upload is stored.
    pub fn on_event<R: Read + Seek>(
        &mut self,
        upload: &mut Upload,
        conn: &mut ClientConnection,
        event: ClientEvent,
        source: &mut R,
    ) -> Result<Option<Finished>, ClientError> {
        let during = self.during();
        let stage = std::mem::replace(&mut self.stage, Stage::Requested);
        match (stage, event) {
            (Stage::Querying(query), event) => {
                let answer = match event {
                    ClientEvent::QueryReply {
                        stored_size,
                        stored_digest,
                        partial_offset,
                    } => Some((
                        StoredFile {
                            size: stored_size,
                            digest: stored_digest,
                        },
                        partial_offset,
                    )),
                    // The server would not say: go on as if nothing were known.
                    ClientEvent::Refused { .. } => None,
                    other => return Err(unexpected(&other, during).into()),
                };
                match query {
                    Query::Prepare { resume } => {
                        if let Some(finished) = upload.prepared(source, answer)? {
                            return Ok(Some(finished));
                        }
                        upload.request(conn, resume)?;
                        self.stage = Stage::Requested;
                        Ok(None)
                    }
                    Query::AfterRefusal(refusal) => upload
                        .after_refusal(source, refusal, answer.map(|(stored, _)| stored))
                        .map(Some),
                }
            }
            (Stage::Requested, ClientEvent::PutReady { offset }) => {
                upload.resumed_from = offset;
                tracing::debug!(
                    name = upload.name,
                    offset,
                    attempt = self.attempt,
                    "upload accepted"
                );
                let hasher = upload.hasher_at(source, offset)?;
                self.stage = Stage::Sending {
                    position: offset,
                    hasher: Box::new(hasher),
                };
                Ok(None)
            }
            (Stage::Finishing(digest), ClientEvent::PutStored) => Ok(Some(Finished {
                digest,
                outcome: PutOutcome::Uploaded,
            })),
            (
                Stage::Finishing(_),
                ClientEvent::Refused {
                    code: ErrorCode::DigestMismatch,
                    message,
                },
            ) => Err(ClientError::Integrity {
                name: upload.name.clone(),
                reason: format!(
                    "the server found that the uploaded bytes do not match their digest ({message}); \
                     the source may have changed while it was read, so nothing was stored"
                ),
            }),
            (Stage::Requested | Stage::Finishing(_), ClientEvent::Refused { code, message }) => {
                self.stage = upload.refused(conn, code, message)?;
                Ok(None)
            }
            (_, other) => Err(unexpected(&other, during).into()),
        }
    }
}
