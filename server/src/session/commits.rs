//! Group commit: uploads verified in the same burst of input are made durable together and
//! answered in order.
//!
//! Under protocol version 2 a client pipelines uploads, so one read often holds several whole
//! files. Each is verified as it ends, but its commit waits until the burst is read: then all
//! of them commit at the same time on a bounded pool (each still fsyncs its data, records its
//! digest and renames into place — the same steps, in the same order, as a single commit),
//! which lets the file system's journal join their flushes into a few; then each folder they
//! went into is synced once for the group (the last step of every one of its commits). Only
//! then is each answered, oldest first: an `ACK` is never sent before its own file is durable
//! and visible. A request whose answer would overtake theirs waits (the machine stops before
//! it, and a refusal of an eager upload commits the group first).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ferry_protocol::Digest;

use super::Session;
use crate::store::error::StorageError;
use crate::store::{Left, OwedSync, Upload};
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

/// A commit done but for the sync of its folder, which it may share with others of its group.
type Placed = Result<Option<Box<dyn OwedSync>>, (StorageError, Left)>;

fn place(verified: Verified) -> Placed {
    verified.upload.commit_owing_sync(&verified.digest)
}

/// Makes each distinct folder sync the group owes once (on `pool` if there is one), and gives
/// each upload its outcome: a failed folder sync fails every commit into that folder (their
/// files are in place, but not known to be durable).
fn settle(placed: Vec<Placed>, pool: Option<&rayon::ThreadPool>) -> Vec<Outcome> {
    let mut owed: BTreeMap<(u64, u64), &dyn OwedSync> = BTreeMap::new();
    for sync in placed.iter().flatten().flatten() {
        owed.entry(sync.folder()).or_insert(sync.as_ref());
    }
    let sync_one = |(folder, sync): (&(u64, u64), &&dyn OwedSync)| {
        (*folder, sync.sync().map_err(|error| error.to_string()))
    };
    let synced: BTreeMap<(u64, u64), Result<(), String>> = match pool {
        Some(pool) if owed.len() > 1 => pool.install(|| {
            use rayon::prelude::*;
            owed.par_iter().map(sync_one).collect()
        }),
        _ => owed.iter().map(sync_one).collect(),
    };
    placed
        .into_iter()
        .map(|placed| {
            let Some(owed) = placed? else {
                return Ok(());
            };
            match synced.get(&owed.folder()) {
                Some(Ok(())) => Ok(()),
                Some(Err(message)) => Err((folder_sync_failed(message), Left::Removed)),
                None => Err((folder_sync_failed("not synced"), Left::Removed)),
            }
        })
        .collect()
}

/// The error of a commit whose folder sync failed (the file is under its name).
fn folder_sync_failed(message: &str) -> StorageError {
    StorageError::io("syncing the folder")(std::io::Error::other(message.to_owned()))
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
        let pool = parallel.then(commit_pool).flatten();
        let placed: Vec<Placed> = match pool {
            Some(pool) => pool.install(|| {
                use rayon::prelude::*;
                group.into_par_iter().map(place).collect()
            }),
            None => group.into_iter().map(place).collect(),
        };
        let outcomes = settle(placed, pool);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A folder sync that counts how often it ran and fails if told to.
    #[derive(Debug)]
    struct Counted {
        folder: (u64, u64),
        runs: Arc<AtomicUsize>,
        fails: bool,
    }

    impl OwedSync for Counted {
        fn folder(&self) -> (u64, u64) {
            self.folder
        }

        fn sync(&self) -> Result<(), StorageError> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.fails {
                return Err(StorageError::io("syncing")(std::io::Error::other("EIO")));
            }
            Ok(())
        }
    }

    #[test]
    fn each_folder_of_a_group_is_synced_once_and_its_failure_fails_only_its_commits() {
        let runs = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
        let owed = |folder: usize| -> Placed {
            Ok(Some(Box::new(Counted {
                folder: (1, folder as u64),
                runs: Arc::clone(&runs[folder]),
                fails: folder == 1,
            })))
        };
        let refused: Placed = Err((StorageError::AlreadyExists, Left::Removed));
        let placed = vec![owed(0), owed(1), Ok(None), owed(0), refused, owed(1)];
        let outcomes = settle(placed, commit_pool());
        let ok: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true, true, false, false]);
        assert_eq!(
            runs[0].load(Ordering::SeqCst),
            1,
            "one sync for the folder's two files"
        );
        assert_eq!(runs[1].load(Ordering::SeqCst), 1);
        assert!(matches!(outcomes[4], Err((StorageError::AlreadyExists, _))));
        assert!(
            matches!(outcomes[5], Err((_, Left::Removed))),
            "in place, not durable"
        );
    }
}
