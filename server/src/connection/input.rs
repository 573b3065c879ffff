//! The thread driver's input buffer: bytes read and not yet taken by the session.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::{INPUT_BUFFER, release};
use crate::session::Session;

/// Bytes read and not yet taken by the session. The buffer exists only while bytes flow: a
/// connection with no transfer under way, nothing kept and nothing read for [`KEEP_BUFFER`]
/// waits on a small buffer of its stack, giving the big one back.
#[derive(Default)]
pub(super) struct Input {
    buffer: Vec<u8>,
    filled: usize,
    /// When bytes last came.
    last_data: Option<Instant>,
}

/// How long a connection keeps its big buffer after bytes came. A client pipelining small
/// uploads is "idle" between them; reading its next burst whole (not 4 KiB of it) is what lets
/// the server commit the burst's uploads together.
const KEEP_BUFFER: Duration = Duration::from_secs(1);

impl Input {
    pub(super) fn is_empty(&self) -> bool {
        self.filled == 0
    }

    pub(super) fn is_full(&self) -> bool {
        self.filled == INPUT_BUFFER
    }

    /// Reads what the stream has; `Ok(0)` at its end. With `busy` (a transfer under way) the
    /// big buffer is kept for the next data.
    pub(super) fn read(&mut self, stream: &mut impl Read, busy: bool) -> io::Result<usize> {
        let recent = self.last_data.is_some_and(|at| at.elapsed() < KEEP_BUFFER);
        if self.filled == 0 && !busy && !recent {
            // Waiting with nothing kept: a first read into a stack buffer, so that an idle
            // connection holds no big buffer.
            release(&mut self.buffer);
            let mut first = [0u8; IDLE_READ];
            let n = stream.read(&mut first)?;
            if n > 0 {
                self.buffer.resize(INPUT_BUFFER, 0);
                self.buffer[..n].copy_from_slice(&first[..n]);
                self.filled = n;
                self.last_data = Some(Instant::now());
            }
            return Ok(n);
        }
        self.buffer.resize(INPUT_BUFFER, 0);
        let n = stream.read(&mut self.buffer[self.filled..])?;
        self.filled += n;
        if n > 0 {
            self.last_data = Some(Instant::now());
        }
        Ok(n)
    }

    /// Offers the bytes kept to the session; returns how many it took.
    pub(super) fn offer(&mut self, session: &mut Session, now: ferry_protocol::Timestamp) -> usize {
        let used = session.handle_input(now, &self.buffer[..self.filled]);
        self.buffer.copy_within(used..self.filled, 0);
        self.filled -= used;
        used
    }
}

/// Bytes of the first read of an idle connection: one page of the thread's stack (a request
/// longer than this comes in the next reads, into the big buffer).
pub(super) const IDLE_READ: usize = 4 * 1024;
