//! The walk: every listed file opened as a download would open it, read to its end through the
//! rate limit, hashed, and compared with its recorded digest.

use std::io::{self, Read};
use std::num::NonZeroU64;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ferry_protocol::{Digest, FileHasher, Timestamp};
use ferry_transport::TokenBucket;

use crate::scrub::report::{Finding, FindingKind, Progress, ScrubReport};
use crate::store::error::StorageError;
use crate::store::s3::S3Error;
use crate::store::{Entry, FileContent, Store};

/// Bytes read at a time: the memory a scrub holds whatever the file's size.
const READ_BUFFER: usize = 256 * 1024;

/// Most idle time the rate limit saves up: after a pause (a slow listing, a small file's open),
/// reading may go this much ahead of the rate, and no further.
const BURST: Duration = Duration::from_millis(250);

/// A scrub under way over one store.
pub(super) struct Walk<'a, P> {
    store: &'a dyn Store,
    limiter: Option<TokenBucket>,
    /// The limiter's clock starts here.
    started: Instant,
    progress: Progress,
    on_progress: P,
    report: ScrubReport,
    buffer: Vec<u8>,
}

/// How reading one version of a file ended.
enum Hashed {
    /// Every byte was read; their digest.
    Whole(Digest),
    /// The version disappeared while it was read (object store: replaced or removed).
    Gone,
}

impl<'a, P: FnMut(&Progress)> Walk<'a, P> {
    /// A walk over `store`, reading at most `limit_rate` bytes per second, telling
    /// `on_progress`.
    pub(super) fn new(
        store: &'a dyn Store,
        limit_rate: Option<NonZeroU64>,
        on_progress: P,
    ) -> Self {
        Walk {
            store,
            limiter: limit_rate.map(|rate| TokenBucket::new(rate, BURST, Timestamp::ZERO)),
            started: Instant::now(),
            progress: Progress::default(),
            on_progress,
            report: ScrubReport {
                store: store.describe(),
                files: 0,
                bytes: 0,
                matched: 0,
                findings: Vec::new(),
                elapsed_ms: 0,
            },
            buffer: vec![0; READ_BUFFER],
        }
    }

    /// Lists the store once to learn the totals, then checks every file listed a second time
    /// (files added meanwhile are checked too; the totals are then passed).
    pub(super) fn run(mut self) -> Result<ScrubReport, StorageError> {
        let store = self.store;
        store.list("", &mut |page| {
            self.progress.files_total += page.len() as u64;
            self.progress.bytes_total += page.iter().map(|e| e.size).sum::<u64>();
            ControlFlow::Continue(())
        })?;
        (self.on_progress)(&self.progress);
        store.list("", &mut |page| {
            for entry in page {
                self.check(entry);
            }
            ControlFlow::Continue(())
        })?;
        self.report.elapsed_ms =
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(self.report)
    }

    /// Checks one listed file and notes what was found.
    fn check(&mut self, entry: &Entry) {
        let kind = self.classify(entry);
        self.report.files += 1;
        self.progress.files_done += 1;
        match kind {
            None => self.report.matched += 1,
            Some(kind) => self.report.findings.push(Finding {
                name: entry.name.clone(),
                size: entry.size,
                kind,
            }),
        }
        (self.on_progress)(&self.progress);
    }

    /// `None` when the file matched its recorded digest, else what was found.
    fn classify(&mut self, entry: &Entry) -> Option<FindingKind> {
        let opened = match self.store.open_for_download(&entry.name) {
            Ok(opened) => opened,
            Err(StorageError::NotFound(_)) => return Some(FindingKind::Vanished),
            Err(error) => {
                return Some(FindingKind::Unreadable {
                    error: error.to_string(),
                });
            }
        };
        let mut content = opened.content;
        let computed = match self.hash(content.as_mut(), opened.size) {
            Ok(Hashed::Whole(digest)) => digest,
            Ok(Hashed::Gone) => return Some(FindingKind::Vanished),
            Err(error) => {
                return Some(FindingKind::Unreadable {
                    error: error.to_string(),
                });
            }
        };
        match opened.digest {
            Some(recorded) if recorded == computed => None,
            Some(recorded) => Some(FindingKind::Mismatch { recorded, computed }),
            None => Some(FindingKind::NoDigest { computed }),
        }
    }

    /// Reads the `size` bytes of a version through the rate limit and hashes them.
    fn hash(&mut self, content: &mut dyn FileContent, size: u64) -> io::Result<Hashed> {
        let mut reader = match content.read_from(0) {
            Ok(reader) => reader.take(size),
            Err(error) if is_gone(&error) => return Ok(Hashed::Gone),
            Err(error) => return Err(error),
        };
        let mut hasher = FileHasher::new();
        loop {
            let read = match reader.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_gone(&error) => return Ok(Hashed::Gone),
                Err(error) => return Err(error),
            };
            hasher.update(&self.buffer[..read]);
            self.note_read(read as u64);
        }
        let hashed = hasher.hashed_len();
        if hashed < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "it ended after {hashed} of its {size} bytes (truncated outside ferryd \
                     while being read?)"
                ),
            ));
        }
        Ok(Hashed::Whole(hasher.finalize()))
    }

    /// Counts `bytes` just read, tells the progress, and waits as the rate limit says.
    fn note_read(&mut self, bytes: u64) {
        self.report.bytes += bytes;
        self.progress.bytes_done += bytes;
        (self.on_progress)(&self.progress);
        if let Some(limiter) = &mut self.limiter {
            let wait = limiter.take(timestamp(self.started), bytes);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }
}

/// The limiter's clock: microseconds since the walk started.
fn timestamp(started: Instant) -> Timestamp {
    Timestamp::from_micros(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Whether a read error means the version read is no more: an object replaced or removed
/// between its listing and its reading (reads are pinned to the listed ETag).
fn is_gone(error: &io::Error) -> bool {
    let s3 = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<S3Error>());
    matches!(s3, Some(S3Error::PreconditionFailed | S3Error::NotFound))
}

#[cfg(test)]
mod tests;
