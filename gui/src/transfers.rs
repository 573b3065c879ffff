//! One row of the transfers panel: what moves where, how far it got, how fast, and its state.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_client::Progress;

/// Identifies a transfer for the lifetime of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

/// What a transfer moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A local file to the server.
    Upload {
        /// The local file.
        local: PathBuf,
        /// Its name on the server.
        name: String,
        /// Replace a file stored under the name.
        overwrite: bool,
    },
    /// A file of the server to a local file.
    Download {
        /// Its name on the server.
        name: String,
        /// The local file to write.
        target: PathBuf,
    },
}

/// Where a transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferState {
    /// Waiting for a free slot.
    Queued,
    /// Moving bytes on its first connection.
    Running,
    /// Moving bytes again after a lost connection (`attempt` 2 or more), from where it stopped.
    Resuming {
        /// Which connection this is.
        attempt: u32,
    },
    /// Finished and verified.
    Done,
    /// Stopped by the user. Shown at once; the worker stops at its next read or write, and
    /// its later reports are ignored.
    Cancelled,
    /// Gave up, with the reason in words.
    Failed(String),
}

impl TransferState {
    /// Whether the transfer will not change any more by itself.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            TransferState::Done | TransferState::Cancelled | TransferState::Failed(_)
        )
    }

    /// Whether a worker is moving it.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            TransferState::Running | TransferState::Resuming { .. }
        )
    }

    /// The state in words, as the transfers panel shows it.
    pub fn describe(&self) -> String {
        match self {
            TransferState::Queued => "queued".to_owned(),
            TransferState::Running => "running".to_owned(),
            TransferState::Resuming { attempt } => format!("resuming (connection {attempt})"),
            TransferState::Done => "done".to_owned(),
            TransferState::Cancelled => "cancelled".to_owned(),
            TransferState::Failed(reason) => format!("failed: {reason}"),
        }
    }
}

/// One transfer.
#[derive(Debug)]
pub struct Transfer {
    /// Its identity.
    pub id: TransferId,
    /// What moves where.
    pub direction: Direction,
    /// Where it stands.
    pub state: TransferState,
    /// Bytes at the destination or on their way.
    pub done: u64,
    /// Size of the file (0 until known).
    pub total: u64,
    /// Set to ask the worker to stop.
    pub cancel: Arc<AtomicBool>,
    /// Which run this is (1 for the first, more after retries): reports of an older run, whose
    /// worker may still be winding down after a cancel, are ignored.
    pub run: u32,
    /// When the current run started, and `done` then (for the rate).
    since: Option<(Instant, u64)>,
    /// When it last finished.
    finished: Option<Instant>,
}

impl Transfer {
    /// A queued transfer.
    pub fn new(id: TransferId, direction: Direction) -> Transfer {
        Transfer {
            id,
            direction,
            state: TransferState::Queued,
            done: 0,
            total: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            run: 0,
            since: None,
            finished: None,
        }
    }

    /// The server-side name.
    pub fn name(&self) -> &str {
        match &self.direction {
            Direction::Upload { name, .. } | Direction::Download { name, .. } => name,
        }
    }

    /// Marks it started by a worker at `now`, as a new run with a fresh cancel flag.
    pub fn handle_start(&mut self, now: Instant) {
        self.run += 1;
        self.state = TransferState::Running;
        self.cancel = Arc::new(AtomicBool::new(false));
        self.done = 0;
        self.since = Some((now, 0));
        self.finished = None;
    }

    /// Takes in the progress report of the worker of `run`.
    pub fn handle_progress(&mut self, run: u32, progress: Progress, now: Instant) {
        if run != self.run || !self.state.is_active() {
            return;
        }
        if progress.done < self.done {
            // A new connection restarted below what was counted: rate from here.
            self.since = Some((now, progress.done));
        }
        self.done = progress.done;
        self.total = progress.total;
        self.state = if progress.attempt > 1 {
            TransferState::Resuming {
                attempt: progress.attempt,
            }
        } else {
            TransferState::Running
        };
    }

    /// Takes in the final word of the worker of `run`. A cancelled run stays cancelled,
    /// unless it had in fact completed.
    pub fn handle_finish(&mut self, run: u32, outcome: Result<u64, String>, now: Instant) {
        if run != self.run {
            return;
        }
        match outcome {
            Ok(size) => {
                self.total = size;
                self.done = size;
                self.state = TransferState::Done;
            }
            Err(_) if self.state == TransferState::Cancelled => {}
            Err(reason) => self.state = TransferState::Failed(reason),
        }
        if self.finished.is_none() {
            self.finished = Some(now);
        }
    }

    /// Cancels it at `now`: a running one's worker is asked to stop.
    pub fn cancel(&mut self, now: Instant) {
        if self.state == TransferState::Queued || self.state.is_active() {
            self.cancel.store(true, Ordering::Relaxed);
            self.state = TransferState::Cancelled;
            self.finished = Some(now);
        }
    }

    /// Average bytes per second of the current run, at `now`.
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let (start, from) = self.since?;
        let end = self.finished.unwrap_or(now);
        let secs = end.saturating_duration_since(start).as_secs_f64();
        (secs > 0.0).then(|| self.done.saturating_sub(from) as f64 / secs)
    }

    /// Time left at the current rate, while it runs.
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        if !self.state.is_active() {
            return None;
        }
        let rate = self.rate(now).filter(|r| *r > 0.0)?;
        let left = self.total.saturating_sub(self.done) as f64 / rate;
        Some(Duration::from_secs_f64(left.min(1e9)))
    }

    /// Fraction done, 0 to 1.
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            if self.state == TransferState::Done {
                1.0
            } else {
                0.0
            }
        } else {
            (self.done as f64 / self.total as f64).min(1.0) as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> Transfer {
        Transfer::new(
            TransferId(1),
            Direction::Upload {
                local: PathBuf::from("a"),
                name: "a".into(),
                overwrite: false,
            },
        )
    }

    fn progress(done: u64, attempt: u32) -> Progress {
        Progress {
            done,
            total: 1000,
            attempt,
        }
    }

    #[test]
    fn a_second_connection_shows_resuming_then_done() {
        let t0 = Instant::now();
        let mut t = upload();
        t.handle_start(t0);
        t.handle_progress(1, progress(400, 1), t0 + Duration::from_secs(1));
        assert_eq!(t.state, TransferState::Running);
        t.handle_progress(1, progress(600, 2), t0 + Duration::from_secs(2));
        assert_eq!(t.state, TransferState::Resuming { attempt: 2 });
        t.handle_finish(1, Ok(1000), t0 + Duration::from_secs(3));
        assert_eq!(t.state, TransferState::Done);
        assert_eq!(t.fraction(), 1.0);
    }

    #[test]
    fn rate_and_time_left_follow_the_bytes() {
        let t0 = Instant::now();
        let mut t = upload();
        t.handle_start(t0);
        t.handle_progress(1, progress(250, 1), t0 + Duration::from_secs(1));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(t.rate(now), Some(125.0));
        assert_eq!(t.time_left(now), Some(Duration::from_secs(6)));
    }

    #[test]
    fn a_cancel_shows_at_once_and_the_old_runs_reports_are_ignored() {
        let t0 = Instant::now();
        let mut t = upload();
        t.handle_start(t0);
        t.cancel(t0);
        assert_eq!(t.state, TransferState::Cancelled);
        assert!(t.cancel.load(Ordering::Relaxed));
        t.handle_progress(1, progress(500, 1), t0);
        t.handle_finish(1, Err("cannot read a: cancelled".into()), t0);
        assert_eq!(t.state, TransferState::Cancelled);

        // Retried: run 2 counts, the late words of run 1 do not.
        t.handle_start(t0);
        assert!(!t.cancel.load(Ordering::Relaxed));
        t.handle_finish(1, Err("late".into()), t0);
        assert_eq!(t.state, TransferState::Running);
        t.handle_finish(2, Ok(1000), t0);
        assert_eq!(t.state, TransferState::Done);

        let mut queued = upload();
        queued.cancel(t0);
        assert_eq!(queued.state, TransferState::Cancelled);
    }

    #[test]
    fn a_failure_keeps_its_reason() {
        let mut t = upload();
        t.handle_start(Instant::now());
        t.handle_finish(1, Err("server refused upload".into()), Instant::now());
        assert_eq!(t.state.describe(), "failed: server refused upload");
    }
}
