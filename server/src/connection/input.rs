//! The thread driver's input buffer: bytes read and not yet taken by the session.

use std::io::{self, Read};

use super::{INPUT_BUFFER, release};
use crate::session::Session;

/// Bytes read and not yet taken by the session. The buffer exists only while bytes flow: a
/// connection with no transfer under way and nothing kept waits on a small buffer of its
/// stack, giving the big one back.
#[derive(Default)]
pub(super) struct Input {
    buffer: Vec<u8>,
    filled: usize,
}

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
        if self.filled == 0 && !busy {
            // Waiting with nothing kept: a first read into a stack buffer, so that an idle
            // connection holds no big buffer.
            release(&mut self.buffer);
            let mut first = [0u8; IDLE_READ];
            let n = stream.read(&mut first)?;
            if n > 0 {
                self.buffer.resize(INPUT_BUFFER, 0);
                self.buffer[..n].copy_from_slice(&first[..n]);
                self.filled = n;
            }
            return Ok(n);
        }
        self.buffer.resize(INPUT_BUFFER, 0);
        let n = stream.read(&mut self.buffer[self.filled..])?;
        self.filled += n;
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
