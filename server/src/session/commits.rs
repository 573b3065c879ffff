//! Group commit: uploads verified in the same burst of input are made durable together and
//! answered in order.
//!
//! Under protocol version 2 a client pipelines uploads, so one read often holds several whole
//! files. Each is verified as it ends, but its commit waits until the burst is read: then all
//! of them commit at the same time on a bounded pool (each still fsyncs its data, records its
//! digest, renames into place and fsyncs its folder — the same steps, in the same order, as a
//! single commit), which lets the file system's journal join their flushes into a few. Only
//! then is each answered, oldest first: an `ACK` is never sent before its own file is durable
//! and visible. A request whose answer would overtake theirs waits (the machine stops before
//! it, and a refusal of an eager upload commits the group first).

use std::sync::OnceLock;

use ferry_protocol::Digest;

use super::Session;
use crate::store::Left;
use crate::store::Upload;
use crate::store::error::StorageError;
use crate::transfer_log::Ending;

/// Threads that commit a group's uploads at the same time, shared by every connection: enough
/// for the journal to join many fsyncs, few enough to bound what one server asks of the disk.
const COMMIT_THREADS: usize = 16;

/// An upload whose every byte arrived and matched its digest, waiting for its group's commit.
#[derive(Debug)]
pub(super) struct Verified {
    upload: Upload,
    digest: Digest,
}

impl Verified {
    pub(super) fn new(upload: Upload, digest: Digest) -> Self {
        Verified { upload, digest }
    }
}

/// The pool, shared by every connection of the process and made the first time a group of
/// more than one upload commits on a store that gains from it (never in the simulator, whose
/// in-memory store commits one at a time).
fn commit_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(COMMIT_THREADS)
            .thread_name(|i| format!("ferryd-commit-{i}"))
            .build()
            .inspect_err(|error| {
                tracing::warn!("no commit pool, committing one at a time: {error}")
            })
            .ok()
    })
    .as_ref()
}

type Outcome = Result<(), (StorageError, Left)>;

fn commit(verified: Verified) -> Outcome {
    verified.upload.commit_or_keep(&verified.digest)
}

impl Session {
    /// Commits every verified upload and answers each, oldest first.
    pub(super) fn flush_commits(&mut self) {
        if self.verified.is_empty() {
            return;
        }
        let group = std::mem::take(&mut self.verified);
        let transfers: Vec<_> = group.iter().map(|v| v.upload.transfer()).collect();
        let parallel = group.len() > 1 && self.context.store.commits_in_parallel();
        tracing::debug!(peer = %self.peer, uploads = group.len(), parallel, "group commit");
        let outcomes: Vec<Outcome> = match parallel.then(commit_pool).flatten() {
            Some(pool) => pool.install(|| {
                use rayon::prelude::*;
                group.into_par_iter().map(commit).collect()
            }),
            None => group.into_iter().map(commit).collect(),
        };
        for (transfer, outcome) in transfers.into_iter().zip(outcomes) {
            let answered = match outcome {
                Ok(()) => {
                    transfer.finished(&self.context.metrics, self.peer, "ok", Ending::Ok);
                    self.conn.confirm()
                }
                Err((error, left)) => {
                    let kept = super::kept(left);
                    transfer.finished(
                        &self.context.metrics,
                        self.peer,
                        &format!("commit failed: {error}; {kept}"),
                        Ending::Failed(error.code()),
                    );
                    let message = format!("{}; {kept}", self.grant.message(&error));
                    self.conn.refuse(error.code(), &message)
                }
            };
            // A connection that failed meanwhile cannot be answered; the files stand.
            if let Err(error) = answered
                && !self.conn.is_closed()
            {
                tracing::error!(peer = %self.peer, "answering a commit failed (a server bug): {error}");
            }
        }
    }
}
