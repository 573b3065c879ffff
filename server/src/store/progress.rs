//! Where a staged upload stands, kept the same way by every backend that checkpoints (the
//! folder and in-memory stores): the bytes written, the hash state the protocol handed out
//! after them, and the checkpoints made durable or under way, with the rules for when the next
//! one is due.

use ferry_protocol::HashCheckpoint;

/// A staged upload's bytes and checkpoints.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Bytes in the staged data (all from offset 0).
    pub(crate) written: u64,
    /// Offset of the last checkpoint made durable.
    pub(crate) saved: u64,
    /// Offset of the last checkpoint started: `saved`, or one being made durable.
    pub(crate) requested: u64,
    /// Hash state after the latest data the protocol handed out (and the backend wrote).
    latest: HashCheckpoint,
    /// Whether checkpoints are made at all: not for an upload nobody can resume (a stream).
    checkpoints: bool,
}

impl Progress {
    /// An upload (re)started at `checkpoint`; `checkpoints` is false for one never resumed.
    pub(crate) fn new(checkpoint: &HashCheckpoint, checkpoints: bool) -> Progress {
        let offset = checkpoint.offset();
        Progress {
            written: offset,
            saved: offset,
            requested: offset,
            latest: checkpoint.clone(),
            checkpoints,
        }
    }

    /// Records the protocol's hash state after the data written so far.
    pub(crate) fn note(&mut self, checkpoint: HashCheckpoint) {
        self.latest = checkpoint;
    }

    /// The latest hash state.
    pub(crate) fn latest(&self) -> &HashCheckpoint {
        &self.latest
    }

    /// Whether at least `interval` bytes arrived since the last checkpoint started.
    pub(crate) fn wants_checkpoint(&self, interval: u64) -> bool {
        self.checkpoints && self.latest.offset().saturating_sub(self.requested) >= interval.max(1)
    }

    /// The offset of the latest hash state if a checkpoint of it is worth making: past
    /// `since` (the last one saved, or started) and covering only bytes written.
    pub(crate) fn due_after(&self, since: u64) -> Option<u64> {
        let offset = self.latest.offset();
        (offset > since && offset <= self.written).then_some(offset)
    }

    /// A checkpoint at `offset` is durable.
    pub(crate) fn saved_at(&mut self, offset: u64) {
        self.saved = self.saved.max(offset);
        self.requested = self.requested.max(self.saved);
    }

    /// A commit failed: the suspension that follows keeps the last durable checkpoint, not
    /// one of the latest state.
    pub(crate) fn forget_latest(&mut self) {
        self.latest = HashCheckpoint::start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::FileHasher;

    fn after(bytes: usize) -> HashCheckpoint {
        let mut hasher = FileHasher::new();
        hasher.update(&vec![1u8; bytes]);
        hasher.checkpoint()
    }

    #[test]
    fn a_checkpoint_is_due_after_an_interval_and_only_over_written_bytes() {
        let unit = ferry_protocol::HASH_UNIT_LEN as usize;
        let mut progress = Progress::new(&HashCheckpoint::start(), true);
        progress.written = 2 * unit as u64;
        // A hash state covers whole units, the last one only once a byte follows it.
        progress.note(after(unit + 1));
        assert_eq!(progress.latest().offset(), unit as u64);
        assert!(progress.wants_checkpoint(unit as u64));
        assert!(!progress.wants_checkpoint(unit as u64 + 1));
        assert_eq!(progress.due_after(0), Some(unit as u64));
        assert_eq!(
            progress.due_after(unit as u64),
            None,
            "not past the last one"
        );
        progress.written = unit as u64 - 1;
        assert_eq!(progress.due_after(0), None, "covers bytes not written");
        progress.saved_at(unit as u64);
        assert_eq!(
            (progress.saved, progress.requested),
            (unit as u64, unit as u64)
        );
        assert!(!progress.wants_checkpoint(1), "nothing since the last one");
        progress.forget_latest();
        assert_eq!(progress.latest().offset(), 0);
    }

    #[test]
    fn an_upload_never_resumed_never_wants_a_checkpoint() {
        let mut progress = Progress::new(&HashCheckpoint::start(), false);
        progress.written = 1 << 30;
        progress.note(after(2 * ferry_protocol::HASH_UNIT_LEN as usize));
        assert!(!progress.wants_checkpoint(1));
    }
}
