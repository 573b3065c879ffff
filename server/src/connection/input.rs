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

    /// How long the big buffer is still kept only because bytes came lately (`None` if it is
    /// kept for another reason, or not kept): a read that waits longer than this must end
    /// then, so that the buffer goes while the connection waits (a thread blocked in a read
    /// holds the buffer it reads into).
    pub(super) fn keep_left(&self, busy: bool) -> Option<Duration> {
        if self.filled > 0 || busy || self.buffer.len() < INPUT_BUFFER {
            return None;
        }
        let since = self.last_data?.elapsed();
        Some(
            KEEP_BUFFER
                .saturating_sub(since)
                .max(Duration::from_millis(1)),
        )
    }

    /// Reads what the stream has; `Ok(0)` at its end. With `busy` (a transfer under way) the
    /// big buffer is kept for the next data.
    pub(super) fn read(&mut self, stream: &mut impl Read, busy: bool) -> io::Result<usize> {
        let kept = self.buffer.len() == INPUT_BUFFER
            && self.last_data.is_some_and(|at| at.elapsed() < KEEP_BUFFER);
        if self.filled == 0 && !busy && !kept {
            // Waiting with nothing kept: a first read into a stack buffer, so that an idle
            // connection holds no big buffer.
            release(&mut self.buffer);
            let mut first = [0u8; IDLE_READ];
            let n = stream.read(&mut first)?;
            if n > 0 {
                if n == IDLE_READ {
                    // A burst: the big buffer, kept for the next one.
                    self.buffer.resize(INPUT_BUFFER, 0);
                    self.buffer[..n].copy_from_slice(&first[..n]);
                } else {
                    // A request that fit (a handshake, a lone command): no big buffer.
                    self.buffer = first[..n].to_vec();
                }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_fits_the_first_read_takes_no_big_buffer() {
        let mut input = Input::default();
        let hello = [7u8; 100];
        assert_eq!(input.read(&mut &hello[..], false).unwrap(), 100);
        assert!(input.buffer.capacity() < INPUT_BUFFER);
        assert_eq!(input.keep_left(false), None, "nothing big to give back");
    }

    #[test]
    fn a_burst_takes_the_big_buffer_which_a_waiting_read_gives_back_within_a_second() {
        let mut input = Input::default();
        let burst = vec![7u8; 3 * IDLE_READ];
        assert_eq!(input.read(&mut &burst[..], false).unwrap(), IDLE_READ);
        assert_eq!(input.buffer.len(), INPUT_BUFFER);
        assert_eq!(input.keep_left(false), None, "bytes are kept: not empty");
        input.filled = 0; // as if the session took them
        let left = input.keep_left(false).unwrap();
        assert!(left <= KEEP_BUFFER && left > Duration::ZERO, "{left:?}");
        assert_eq!(input.keep_left(true), None, "a transfer under way keeps it");
        // Once the keep is over, the next read gives the big buffer back first.
        input.last_data = Some(Instant::now() - KEEP_BUFFER);
        assert_eq!(input.read(&mut &[1u8; 10][..], false).unwrap(), 10);
        assert!(input.buffer.capacity() < INPUT_BUFFER);
    }
}
