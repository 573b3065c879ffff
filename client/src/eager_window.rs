//! A window of eager uploads on one connection, without sockets (protocol version 2,
//! PROTOCOL.md §5 "Pipelining"): each small file goes right behind its `PUT`, many are in
//! flight at once, and the server's answers, in order, decide each file's fate.
//!
//! [`Client::put_files`](crate::Client::put_files) drives it over a blocking socket and the
//! deterministic simulator over a simulated link, the same way: while
//! [`has_room`](EagerWindow::has_room), [`send`](EagerWindow::send) the next small file and
//! write the bytes it gives; then read the next event and hand it to
//! [`on_event`](EagerWindow::on_event), until the window [`is_empty`](EagerWindow::is_empty).
//! If the connection fails, [`interrupted`](EagerWindow::interrupted) gives the files that
//! were in flight: each may be stored (its answer lost), partial or absent, so each is
//! settled one by one ([`Upload`](crate::transfer::Upload)), as is every file the window
//! answer leaves open.

use std::collections::VecDeque;

use ferry_protocol::{ClientConnection, ClientEvent, Digest, ErrorCode, SourceTag};

use crate::error::ClientError;
use crate::link::unexpected;
use crate::options::{PutOutcome, PutReport};

/// Requests in flight on one connection at most. The server's answers to them (an `ACK` of 5
/// bytes, or a short `ERROR`) must fit in the socket buffers while this side is still writing,
/// which also bounds this side's memory.
pub const WINDOW_REQUESTS: usize = 1024;

/// Upload bytes in flight on one connection at most: above the bandwidth-delay product of
/// most links (64 MiB is 500 MB/s at a 100 ms round trip). The bytes are not kept: this bounds
/// how much a failed connection leaves to be settled one by one.
pub const WINDOW_BYTES: u64 = 64 << 20;

/// Largest file sent eagerly. A larger one waits for the server's go-ahead (one round trip,
/// small beside its transfer), so that a refusal never costs sending it whole for nothing.
pub const EAGER_MAX: u64 = 1 << 20;

/// An upload sent, awaiting its answer.
#[derive(Debug)]
struct Sent {
    index: usize,
    name: String,
    size: u64,
    digest: Digest,
}

/// What the server's answer means for the file it answers (by the caller's index).
#[derive(Debug)]
#[must_use]
pub enum Answer {
    /// Stored whole, digest checked: the file's outcome.
    Stored {
        /// The caller's index of the file.
        index: usize,
        /// What the upload did.
        report: PutReport,
    },
    /// Settle it one by one: the name exists (and may hold these very bytes, an earlier run's),
    /// or the refusal may pass.
    OneByOne {
        /// The caller's index of the file.
        index: usize,
    },
    /// Refused for good: the file's outcome.
    Failed {
        /// The caller's index of the file.
        index: usize,
        /// The server's refusal.
        error: ClientError,
    },
}

/// Eager uploads in flight on one connection, oldest first.
#[derive(Debug)]
pub struct EagerWindow {
    in_flight: VecDeque<Sent>,
    bytes: u64,
    chunk: usize,
    overwrite: bool,
}

impl EagerWindow {
    /// What the driver says while it waits for an answer.
    pub const DURING: &'static str = "waiting for pipelined uploads";

    /// A window on a connected machine, its data sent in pieces of at most `chunk_size` bytes
    /// and each upload replacing a stored file with `overwrite`; `None` if the server speaks
    /// version 1, which cannot pipeline (send every file one by one).
    pub fn begin(
        conn: &ClientConnection,
        chunk_size: usize,
        overwrite: bool,
    ) -> Option<EagerWindow> {
        (conn.version() >= 2).then(|| EagerWindow {
            in_flight: VecDeque::new(),
            bytes: 0,
            chunk: chunk_size.clamp(1, ferry_protocol::limits::MAX_DATA_CHUNK),
            overwrite,
        })
    }

    /// Whether a file of `size` bytes goes eagerly; a larger one goes one by one.
    pub fn is_eager(size: u64) -> bool {
        size <= EAGER_MAX
    }

    /// Whether another upload may be sent now.
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < WINDOW_REQUESTS && self.bytes < WINDOW_BYTES
    }

    /// Uploads sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether every upload sent was answered.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Queues the eager upload of `data` (whole, at most [`EAGER_MAX`] bytes) as `name`, the
    /// caller's file `index`, under `tag`: its `PUT`, `DATA` frames with the bytes and `DONE`
    /// are appended to `out`, to be written in that order. The file is in flight from here
    /// on: if the connection fails, even while `out` is written, it is settled one by one.
    pub fn send(
        &mut self,
        conn: &mut ClientConnection,
        index: usize,
        name: &str,
        data: &[u8],
        tag: SourceTag,
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        let digest = Digest::of(data);
        let size = data.len() as u64;
        self.in_flight.push_back(Sent {
            index,
            name: name.to_owned(),
            size,
            digest,
        });
        self.bytes += size;
        conn.put_eager(name, size, self.overwrite, tag)?;
        for piece in data.chunks(self.chunk) {
            conn.send_file_data(piece)?;
            conn.poll_transmit(out);
            out.extend_from_slice(piece);
        }
        conn.finish_upload(digest)?;
        conn.poll_transmit(out);
        Ok(())
    }

    /// The next answer of the server, which answers the oldest upload in flight. An error is
    /// the connection's (an answer that does not fit: a protocol failure).
    pub fn on_event(&mut self, event: ClientEvent) -> Result<Answer, ClientError> {
        let Some(sent) = self.in_flight.pop_front() else {
            return Err(unexpected(&event, Self::DURING).into());
        };
        self.bytes -= sent.size;
        let index = sent.index;
        match event {
            ClientEvent::PutStored => Ok(Answer::Stored {
                index,
                report: PutReport {
                    name: sent.name,
                    size: sent.size,
                    digest: sent.digest,
                    outcome: PutOutcome::Uploaded,
                    resumed_from: 0,
                    attempts: 1,
                    bytes_sent: sent.size,
                },
            }),
            // The name may hold these very bytes (an earlier run's), or the refusal may pass.
            ClientEvent::Refused { code, .. }
                if code == ErrorCode::AlreadyExists || ClientError::refusal_is_transient(code) =>
            {
                Ok(Answer::OneByOne { index })
            }
            ClientEvent::Refused { code, message } => Ok(Answer::Failed {
                index,
                error: ClientError::Refused {
                    request: "upload",
                    code,
                    message,
                },
            }),
            other => {
                // Unanswered: the caller settles it one by one with the rest in flight.
                self.in_flight.push_front(sent);
                Err(unexpected(&other, Self::DURING).into())
            }
        }
    }

    /// The connection failed: the files in flight (stored, partial or absent, nobody knows),
    /// oldest first, each to be settled one by one. The window is empty afterwards.
    pub fn interrupted(&mut self) -> Vec<usize> {
        self.bytes = 0;
        self.in_flight.drain(..).map(|sent| sent.index).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> EagerWindow {
        EagerWindow {
            in_flight: VecDeque::new(),
            bytes: 0,
            chunk: 4,
            overwrite: false,
        }
    }

    fn sent(window: &mut EagerWindow, index: usize, size: u64) {
        window.in_flight.push_back(Sent {
            index,
            name: format!("f{index}"),
            size,
            digest: Digest([index as u8; 32]),
        });
        window.bytes += size;
    }

    fn refused(code: ErrorCode) -> ClientEvent {
        ClientEvent::Refused {
            code,
            message: "no".into(),
        }
    }

    #[test]
    fn answers_settle_the_oldest_upload_each() {
        let mut window = window();
        for index in 0..4 {
            sent(&mut window, index, 10);
        }
        match window.on_event(ClientEvent::PutStored).unwrap() {
            Answer::Stored { index: 0, report } => {
                assert_eq!((report.size, report.attempts), (10, 1));
                assert_eq!(report.digest, Digest([0; 32]));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            window.on_event(refused(ErrorCode::AlreadyExists)).unwrap(),
            Answer::OneByOne { index: 1 }
        ));
        assert!(matches!(
            window.on_event(refused(ErrorCode::InProgress)).unwrap(),
            Answer::OneByOne { index: 2 }
        ));
        assert!(matches!(
            window.on_event(refused(ErrorCode::OverQuota)).unwrap(),
            Answer::Failed {
                index: 3,
                error: ClientError::Refused {
                    code: ErrorCode::OverQuota,
                    ..
                }
            }
        ));
        assert!(window.is_empty());
        assert_eq!(window.bytes, 0);
    }

    #[test]
    fn an_answer_that_does_not_fit_leaves_the_upload_in_flight() {
        let mut window = window();
        sent(&mut window, 7, 3);
        sent(&mut window, 8, 3);
        assert!(matches!(
            window.on_event(ClientEvent::Removed),
            Err(ClientError::Protocol(_))
        ));
        assert_eq!(window.interrupted(), [7, 8]);
        assert!(window.is_empty() && window.has_room());
        assert!(matches!(
            window.on_event(ClientEvent::PutStored),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn an_answer_gives_back_its_upload_s_place_and_bytes() {
        let mut window = window();
        sent(&mut window, 0, 1);
        sent(&mut window, 1, WINDOW_BYTES - 1);
        assert_eq!(window.in_flight(), 2);
        assert!(!window.has_room());
        // The one-byte upload's answer frees exactly its byte: room again, one upload left.
        assert!(matches!(
            window.on_event(ClientEvent::PutStored).unwrap(),
            Answer::Stored { index: 0, .. }
        ));
        assert_eq!(window.in_flight(), 1);
        assert_eq!(window.bytes, WINDOW_BYTES - 1);
        assert!(window.has_room());
    }

    #[test]
    fn the_window_is_bounded_by_requests_and_bytes() {
        let mut window = window();
        sent(&mut window, 0, WINDOW_BYTES);
        assert!(!window.has_room());
        let mut window = self::window();
        for index in 0..WINDOW_REQUESTS {
            assert!(window.has_room());
            sent(&mut window, index, 0);
        }
        assert!(!window.has_room());
        assert!(EagerWindow::is_eager(EAGER_MAX) && !EagerWindow::is_eager(EAGER_MAX + 1));
    }
}
