//! What the clients did: every upload ever started, with the moments that bound when the server
//! may have committed it.
//!
//! Moments are [`Tick`]s of one run-wide counter, taken with sequentially consistent atomics, so
//! two ticks taken on different threads are ordered as the real events were: an upload's
//! `started` tick is taken before its first request is written, its `Acked` tick after the
//! library returned success. A commit of that upload therefore lies strictly between the two.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::content::ContentId;
use ferry_protocol::ErrorCode;

/// A moment of the run, from a counter every thread shares; a later tick is a later moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(pub u64);

/// Index of an upload in the [`Ledger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId(pub usize);

/// Why an upload was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of the load, drawing a new version.
    Load,
    /// A client of the load sending again a version of its own that was not acknowledged, as a
    /// user re-running `ferry put` would.
    Resend,
    /// The final rerun of an interrupted upload, with the same client file (same tag).
    Rerun,
}

/// How an upload ended, as the client library reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still running.
    Pending,
    /// The library returned success: the server acknowledged the upload as stored.
    Acked {
        /// Taken after the library returned.
        at: Tick,
        /// Offset the last attempt started from (above 0 when it resumed mid-file).
        resumed_from: u64,
        /// Connections the upload needed.
        attempts: u32,
    },
    /// The server refused the upload with an answer that does not change by retrying:
    /// the name exists and the upload did not ask to overwrite.
    Refused {
        /// Taken after the library returned.
        at: Tick,
        /// The server's code.
        code: ErrorCode,
    },
    /// Anything else: connections lost past the retry budget, stalls, another upload of the
    /// name holding it too long. The upload may or may not have been committed.
    Interrupted {
        /// Taken after the library returned.
        at: Tick,
        /// What the library said.
        error: String,
    },
}

/// One upload: which version of which name, and how it went.
#[derive(Clone, Debug)]
pub struct UploadRecord {
    /// Name on the server.
    pub name: String,
    /// The version's bytes (its tag is derived from it too).
    pub content: ContentId,
    /// Whether the upload asked to replace an existing file.
    pub overwrite: bool,
    /// Why it was made.
    pub origin: Origin,
    /// Taken before its first request was sent.
    pub started: Tick,
    /// How it ended.
    pub outcome: Outcome,
}

impl UploadRecord {
    /// The last moment at which the server may have committed this upload, `None` for "at any
    /// time still" (pending or interrupted: the client does not know, and a later upload of the
    /// same client file may still finish it).
    pub fn commit_deadline(&self) -> Option<Tick> {
        match self.outcome {
            Outcome::Acked { at, .. } | Outcome::Refused { at, .. } => Some(at),
            Outcome::Pending | Outcome::Interrupted { .. } => None,
        }
    }

    /// The acknowledgement's moment, if the upload was acknowledged.
    pub fn acked_at(&self) -> Option<Tick> {
        match self.outcome {
            Outcome::Acked { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// Every upload of a run, shared by the client threads and the checker.
#[derive(Debug, Default)]
pub struct Ledger {
    clock: AtomicU64,
    uploads: Mutex<Vec<UploadRecord>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// The current moment.
    pub fn tick(&self) -> Tick {
        Tick(self.clock.fetch_add(1, Ordering::SeqCst))
    }

    /// Records an upload about to start; call it before the first request is sent.
    pub fn begin(
        &self,
        name: &str,
        content: ContentId,
        overwrite: bool,
        origin: Origin,
    ) -> UploadId {
        let mut uploads = self.lock();
        let started = self.tick();
        uploads.push(UploadRecord {
            name: name.to_owned(),
            content,
            overwrite,
            origin,
            started,
            outcome: Outcome::Pending,
        });
        UploadId(uploads.len() - 1)
    }

    /// Records how upload `id` ended; `make` receives the moment to put in the outcome (taken
    /// now, after the library returned).
    pub fn finish(&self, id: UploadId, make: impl FnOnce(Tick) -> Outcome) {
        let at = self.tick();
        let mut uploads = self.lock();
        if let Some(record) = uploads.get_mut(id.0) {
            record.outcome = make(at);
        }
    }

    /// A copy of every record so far.
    pub fn snapshot(&self) -> Vec<UploadRecord> {
        self.lock().clone()
    }

    /// How many uploads are running now.
    pub fn pending(&self) -> usize {
        self.lock()
            .iter()
            .filter(|r| r.outcome == Outcome::Pending)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UploadRecord>> {
        // A client thread that panicked leaves the records as they were: still worth checking.
        self.uploads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
