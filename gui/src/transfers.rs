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
    /// Cancel asked; the worker stops at its next read or write.
    Cancelling,
    /// Finished and verified.
    Done,
    /// Stopped by the user.
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
            TransferState::Running | TransferState::Resuming { .. } | TransferState::Cancelling
        )
    }

    /// The state in words, as the transfers panel shows it.
    pub fn describe(&self) -> String {
        match self {
            TransferState::Queued => "queued".to_owned(),
            TransferState::Running => "running".to_owned(),
            TransferState::Resuming { attempt } => format!("resuming (connection {attempt})"),
            TransferState::Cancelling => "cancelling".to_owned(),
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

    /// Marks it started by a worker at `now`, with a fresh cancel flag.
    pub fn handle_start(&mut self, now: Instant) {
        self.state = TransferState::Running;
        self.cancel = Arc::new(AtomicBool::new(false));
        self.done = 0;
        self.since = Some((now, 0));
        self.finished = None;
    }

    /// Takes in the worker's progress report.
    pub fn handle_progress(&mut self, progress: Progress, now: Instant) {
        if self.state.is_finished() {
            return;
        }
        if progress.done < self.done {
            // A new connection restarted below what was counted: rate from here.
            self.since = Some((now, progress.done));
        }
        self.done = progress.done;
        self.total = progress.total;
        if self.state != TransferState::Cancelling {
            self.state = if progress.attempt > 1 {
                TransferState::Resuming {
                    attempt: progress.attempt,
                }
            } else {
                TransferState::Running
            };
        }
    }

    /// Takes in the worker's final word.
    pub fn handle_finish(&mut self, outcome: Result<u64, String>, now: Instant) {
        self.finished = Some(now);
        self.state = match outcome {
            Ok(size) => {
                self.total = size;
                self.done = size;
                TransferState::Done
            }
            Err(_) if self.cancel.load(Ordering::Relaxed) => TransferState::Cancelled,
            Err(reason) => TransferState::Failed(reason),
        };
    }

    /// Asks the worker to stop; a queued transfer stops at once.
    pub fn cancel(&mut self) {
        match self.state {
            TransferState::Queued => self.state = TransferState::Cancelled,
            ref state if state.is_active() => {
                self.cancel.store(true, Ordering::Relaxed);
                self.state = TransferState::Cancelling;
            }
            _ => {}
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
        t.handle_progress(progress(400, 1), t0 + Duration::from_secs(1));
        assert_eq!(t.state, TransferState::Running);
        t.handle_progress(progress(600, 2), t0 + Duration::from_secs(2));
        assert_eq!(t.state, TransferState::Resuming { attempt: 2 });
        t.handle_finish(Ok(1000), t0 + Duration::from_secs(3));
        assert_eq!(t.state, TransferState::Done);
        assert_eq!(t.fraction(), 1.0);
    }

    #[test]
    fn rate_and_time_left_follow_the_bytes() {
        let t0 = Instant::now();
        let mut t = upload();
        t.handle_start(t0);
        t.handle_progress(progress(250, 1), t0 + Duration::from_secs(1));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(t.rate(now), Some(125.0));
        assert_eq!(t.time_left(now), Some(Duration::from_secs(6)));
    }

    #[test]
    fn a_cancelled_run_ends_cancelled_not_failed() {
        let t0 = Instant::now();
        let mut t = upload();
        t.handle_start(t0);
        t.cancel();
        assert_eq!(t.state, TransferState::Cancelling);
        assert!(t.cancel.load(Ordering::Relaxed));
        t.handle_finish(Err("cancelled".into()), t0);
        assert_eq!(t.state, TransferState::Cancelled);
        let mut queued = upload();
        queued.cancel();
        assert_eq!(queued.state, TransferState::Cancelled);
    }

    #[test]
    fn a_failure_keeps_its_reason() {
        let mut t = upload();
        t.handle_start(Instant::now());
        t.handle_finish(Err("server refused upload".into()), Instant::now());
        assert_eq!(t.state.describe(), "failed: server refused upload");
    }
}
