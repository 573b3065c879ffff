//! What the server sends at its own pace: a download's data, a chunk per
//! [`Session::poll_transmit`], and a listing's entries, a batch per call.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::time::Instant;

use ferry_protocol::limits::DEFAULT_DATA_CHUNK;
use ferry_protocol::{Digest, FileHasher, ServerConnection};

use super::Session;
use crate::auth::Grant;
use crate::store::error::StorageError;
use crate::store::{Entry, FileContent, Store};
use crate::transfer_log::{Ending, Op, Transfer};

/// Listing entries queued for the client per [`Session::poll_transmit`].
const LIST_BATCH: usize = 256;

/// A download or a listing being sent.
#[derive(Debug)]
pub(super) enum Outgoing {
    Download(Box<Download>),
    Listing(Listing),
}

/// A file being sent from one open version of it: a replacement of the name meanwhile does
/// not change what this client receives.
pub(super) struct Download {
    name: String,
    size: u64,
    offset: u64,
    remaining: u64,
    content: Box<dyn FileContent>,
    reader: Box<dyn Read + Send>,
    /// The digest of exactly this version, when known before sending.
    digest: Option<Digest>,
    /// Hashes what is sent when the digest is not known and the download starts at 0.
    hasher: Option<FileHasher>,
    /// One chunk of file data, allocated while the download runs.
    chunk: Vec<u8>,
    started: Instant,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("name", &self.name)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// Opens `name` for sending from `offset`, with the digest of exactly this version:
    /// recorded, hashed while sending (from 0), or computed now (from elsewhere). `started`
    /// is when the request came, for the transfer log.
    pub(super) fn open(
        store: &dyn Store,
        name: &str,
        offset: u64,
        started: Instant,
    ) -> Result<Download, StorageError> {
        let mut opened = store.open_for_download(name)?;
        let size = opened.size;
        if offset > size {
            return Err(StorageError::OffsetPastEnd { offset, size });
        }
        let mut digest = opened.digest;
        let mut hasher = None;
        if digest.is_none() {
            if offset == 0 {
                hasher = Some(FileHasher::new());
            } else {
                let computed = opened
                    .content
                    .read_from(0)
                    .and_then(hash_all)
                    .map_err(StorageError::io("reading a file to hash it"))?;
                opened.content.remember_digest(&computed);
                digest = Some(computed);
            }
        }
        let reader = opened
            .content
            .read_from(offset)
            .map_err(StorageError::io("opening a file to send"))?;
        Ok(Download {
            name: name.to_owned(),
            size,
            offset,
            remaining: size - offset,
            content: opened.content,
            reader,
            digest,
            hasher,
            chunk: Vec::new(),
            started,
        })
    }

    /// The whole file's size.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    fn sent(&self) -> u64 {
        self.size - self.offset - self.remaining
    }

    /// Queues the next chunk (its `DATA` header, then its bytes) into `out`, or the `DONE`
    /// once every byte is sent. Returns whether more is to come.
    fn send(&mut self, conn: &mut ServerConnection, out: &mut Vec<u8>) -> io::Result<bool> {
        if self.remaining == 0 {
            let digest = match (self.digest, self.hasher.take()) {
                (Some(digest), _) => digest,
                (None, Some(hasher)) => {
                    let computed = hasher.finalize();
                    self.content.remember_digest(&computed);
                    computed
                }
                (None, None) => return Err(io::Error::other("no digest for the download")),
            };
            conn.finish_download(digest).map_err(io::Error::other)?;
            conn.poll_transmit(out);
            return Ok(false);
        }
        if self.chunk.is_empty() {
            self.chunk = vec![0u8; DEFAULT_DATA_CHUNK];
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.chunk.len());
        let n = read_some(&mut self.reader, &mut self.chunk[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being sent",
            ));
        }
        let data = &self.chunk[..n];
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(data);
        }
        conn.send_file_data(data).map_err(io::Error::other)?;
        conn.poll_transmit(out);
        out.extend_from_slice(data);
        self.remaining -= n as u64;
        Ok(true)
    }
}

/// A listing being sent, its entries already named as the client knows them.
#[derive(Debug)]
pub(super) struct Listing {
    entries: VecDeque<Entry>,
}

impl Listing {
    /// Every entry under `prefix` (a stored name) that the grant shows, in name order.
    pub(super) fn collect(
        store: &dyn Store,
        grant: &Grant,
        prefix: &str,
    ) -> Result<Listing, StorageError> {
        let mut entries = VecDeque::new();
        store.list(prefix, &mut |page| {
            for entry in page {
                // Outside the token's folder: cannot happen with a folder prefix.
                if let Some(name) = grant.client_name(&entry.name) {
                    entries.push_back(Entry {
                        name: name.to_owned(),
                        ..entry.clone()
                    });
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(Listing { entries })
    }

    /// Queues the next batch of entries, or the end of the listing. Returns whether more is
    /// to come.
    fn send(&mut self, conn: &mut ServerConnection, out: &mut Vec<u8>) -> bool {
        for entry in self.entries.drain(..LIST_BATCH.min(self.entries.len())) {
            if let Err(error) = conn.send_list_entry(&entry.name, entry.size, entry.modified_ms) {
                tracing::debug!(name = entry.name, "skipped a listing entry: {error}");
            }
        }
        let more = !self.entries.is_empty();
        if !more && let Err(error) = conn.finish_list() {
            tracing::error!("connection state error (a server bug): {error}");
        }
        conn.poll_transmit(out);
        more
    }
}

impl Session {
    /// Queues the next piece of the download or listing under way, if any.
    pub(super) fn send_outgoing(&mut self, out: &mut Vec<u8>) {
        match self.outgoing.take() {
            None => {}
            Some(Outgoing::Listing(mut listing)) => {
                self.outgoing = listing
                    .send(&mut self.conn, out)
                    .then_some(Outgoing::Listing(listing));
            }
            Some(Outgoing::Download(mut download)) => match download.send(&mut self.conn, out) {
                Ok(true) => self.outgoing = Some(Outgoing::Download(download)),
                Ok(false) => {
                    self.log_download(&download, "ok", Ending::Ok);
                }
                Err(error) => {
                    let error = StorageError::io("reading a file to send")(error);
                    tracing::error!(peer = %self.peer, name = download.name, "download failed: {error}");
                    self.log_download(&download, &error.to_string(), Ending::Failed(error.code()));
                    self.abort(error.code(), &error.to_string());
                }
            },
        }
    }

    /// Logs a download that ends now (also one cut short), with the bytes sent in this session.
    fn log_download(&self, download: &Download, outcome: &str, ending: Ending) {
        let transfer = Transfer {
            op: Op::Get,
            name: download.name.clone(),
            bytes: download.sent(),
            started: download.started,
        };
        transfer.finished(&self.context.metrics, self.peer, outcome, ending);
    }

    /// Logs a download cut short by the connection's end.
    pub(super) fn end_outgoing(&mut self, outcome: &str) {
        if let Some(Outgoing::Download(download)) = self.outgoing.take() {
            self.log_download(&download, outcome, Ending::Interrupted);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_some(file: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The digest of everything `reader` yields.
fn hash_all(mut reader: Box<dyn Read + Send>) -> io::Result<Digest> {
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; DEFAULT_DATA_CHUNK];
    loop {
        let n = read_some(&mut reader, &mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}
