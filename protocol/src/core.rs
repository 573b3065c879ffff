//! What both connection machines share: the magic preamble, the transmit buffer, the event
//! queue, the sticky error and the input clock.

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::{ErrorCode, ProtocolError};
use crate::frame::Frame;
use crate::limits::{MAGIC, MAX_MESSAGE_LEN};
use crate::time::Timestamp;

/// Timeouts of a connection (PROTOCOL.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Longest wait for the peer's magic and `HELLO`/`WELCOME`.
    pub handshake_timeout: Duration,
    /// Longest silence from the peer while this side is waiting for it (for a request, a
    /// reply, or the next data of a transfer it receives).
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What [`handle_input`](crate::ServerConnection::handle_input) did with the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "consumed bytes must be dropped from the input buffer and file data written"]
pub struct Received<'a> {
    /// Bytes of the input that were used; the caller drops them and keeps the rest.
    pub consumed: usize,
    /// File bytes of the transfer this side is receiving, already counted and hashed: the
    /// caller writes them to the file, in order. A sub-slice of the input, never a copy.
    pub file_data: &'a [u8],
}

impl Received<'_> {
    pub(crate) fn frames(consumed: usize) -> Self {
        Received {
            consumed,
            file_data: &[],
        }
    }
}

pub(crate) struct Core<E> {
    pub(crate) config: Config,
    transmit: Vec<u8>,
    events: VecDeque<E>,
    failed: Option<ProtocolError>,
    closed: bool,
    magic_matched: usize,
    /// When the connection was opened: the handshake deadline counts from here, so a peer
    /// trickling its handshake byte by byte cannot hold the connection open.
    opened: Timestamp,
    /// Time of the last input from the peer.
    last_input: Timestamp,
    /// Start of the current wait for the peer: the last input, or `None` after this side sent
    /// something (handing the turn to the peer) until the driver next tells the time. Silence
    /// is counted from whichever came later, so time this side spent on its own move (a long
    /// download, a commit) never counts against the peer.
    wait_since: Option<Timestamp>,
}

impl<E> std::fmt::Debug for Core<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("closed", &self.closed)
            .field("failed", &self.failed)
            .field("queued_events", &self.events.len())
            .field("queued_bytes", &self.transmit.len())
            .finish()
    }
}

impl<E> Core<E> {
    pub(crate) fn new(config: Config, now: Timestamp) -> Self {
        let mut transmit = Vec::with_capacity(256);
        transmit.extend_from_slice(&MAGIC);
        Core {
            config,
            transmit,
            events: VecDeque::new(),
            failed: None,
            closed: false,
            magic_matched: 0,
            opened: now,
            last_input: now,
            wait_since: Some(now),
        }
    }

    /// The sticky error, if the connection has failed.
    pub(crate) fn check(&self) -> Result<(), ProtocolError> {
        match &self.failed {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    pub(crate) fn error(&self) -> Option<&ProtocolError> {
        self.failed.as_ref()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Records a fatal error, queues the `ERROR` frame that tells the peer why (unless the peer
    /// itself reported it), closes, and returns the error for the caller to pass up.
    pub(crate) fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        if !matches!(error, ProtocolError::Peer { .. }) && !self.closed {
            self.send_error(error.code(), &error.to_string());
        }
        self.closed = true;
        self.failed = Some(error.clone());
        error
    }

    /// Consumes the peer's magic from the front of `input`; returns the bytes used. On a
    /// mismatch the caller fails the connection (so that its own state closes too).
    pub(crate) fn read_magic(&mut self, input: &[u8]) -> Result<usize, ProtocolError> {
        let want = &MAGIC[self.magic_matched..];
        let n = want.len().min(input.len());
        if input[..n] != want[..n] {
            return Err(ProtocolError::NotFerry);
        }
        self.magic_matched += n;
        Ok(n)
    }

    pub(crate) fn magic_done(&self) -> bool {
        self.magic_matched == MAGIC.len()
    }

    pub(crate) fn send(&mut self, frame: &Frame<'_>) {
        self.wait_since = None;
        frame.encode(&mut self.transmit);
    }

    /// Queues an `ERROR` frame, cutting the message to its limit at a character boundary.
    pub(crate) fn send_error(&mut self, code: ErrorCode, message: &str) {
        let mut end = message.len().min(MAX_MESSAGE_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.send(&Frame::Error {
            code,
            message: &message[..end],
        });
    }

    pub(crate) fn push_event(&mut self, event: E) {
        self.events.push_back(event);
    }

    pub(crate) fn events_len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn poll_event(&mut self) -> Option<E> {
        self.events.pop_front()
    }

    pub(crate) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.transmit.len();
        if out.is_empty() {
            std::mem::swap(out, &mut self.transmit);
        } else {
            out.append(&mut self.transmit);
        }
        n
    }

    pub(crate) fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// Deadline of the handshake: `timeout` after the connection opened.
    pub(crate) fn handshake_deadline(&self, timeout: Duration) -> Option<Timestamp> {
        (!self.closed).then(|| self.opened + timeout)
    }

    /// Input arrived at `now`.
    pub(crate) fn note_input(&mut self, now: Timestamp) {
        self.last_input = now;
        self.wait_since = Some(now);
    }

    /// Deadline `timeout` into the current wait. While the wait's start is not known yet (this
    /// side has just sent), answers the last input's time, which is already past: the driver
    /// then calls `handle_timeout(now)`, which starts the wait at `now`.
    pub(crate) fn deadline(&self, timeout: Duration) -> Option<Timestamp> {
        if self.closed {
            return None;
        }
        Some(match self.wait_since {
            Some(since) => since + timeout,
            None => self.last_input,
        })
    }

    /// Whether the current wait has run for `timeout` at `now`; starts the wait at `now` if
    /// its start was not known.
    pub(crate) fn timed_out(&mut self, now: Timestamp, timeout: Duration) -> bool {
        match self.wait_since {
            Some(since) => now >= since + timeout,
            None => {
                self.wait_since = Some(now);
                false
            }
        }
    }
}
