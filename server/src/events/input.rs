//! One connection's input on an event loop: bytes read and not yet taken by the session.
//!
//! A connection that sends little (a handshake, a lone command, one of many half-open peers)
//! holds just what it sent: its reads go through the serving thread's read buffer and are
//! appended. Once it holds more than [`SMALL`] bytes — a transfer's data — the buffer grows to
//! its full size once, and reads go straight into it: no copy through the thread's buffer and
//! no growing (a 512 MiB upload had made 2 300 page faults and spent 3 % of the server's time
//! copying, against the thread driver's 90 faults). The link frees it when bytes stop flowing.

use std::io;

/// Most bytes read and not yet taken by the session (as the thread driver's buffer: every
/// frame but DATA fits in a fraction of it, and DATA streams through).
pub(super) const INPUT_LIMIT: usize = 256 * 1024;

/// Bytes a connection may hold before its buffer grows to [`INPUT_LIMIT`]: more than any
/// request but DATA.
const SMALL: usize = 4 * 1024;

/// Bytes read and not yet taken by the session.
#[derive(Debug, Default)]
pub(super) struct Input {
    /// `filled` bytes, then (once grown) room up to [`INPUT_LIMIT`].
    buffer: Vec<u8>,
    filled: usize,
}

impl Input {
    /// The bytes not yet taken.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buffer[..self.filled]
    }

    /// How many bytes wait.
    pub(super) fn len(&self) -> usize {
        self.filled
    }

    /// Whether no bytes wait.
    pub(super) fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Whether the buffer holds memory.
    pub(super) fn holds_memory(&self) -> bool {
        self.buffer.capacity() > 0
    }

    /// The session took the first `taken` bytes.
    pub(super) fn consume(&mut self, taken: usize) {
        let taken = taken.min(self.filled);
        self.buffer.copy_within(taken..self.filled, 0);
        self.filled -= taken;
        if self.buffer.len() < INPUT_LIMIT {
            self.buffer.truncate(self.filled);
        }
    }

    /// Reads once with `read` until the input holds `limit` bytes (at most
    /// [`INPUT_LIMIT`]): straight into the buffer once it is grown, otherwise into `scratch`
    /// (the serving thread's buffer) and appended. Returns how many bytes came.
    pub(super) fn fill(
        &mut self,
        limit: usize,
        scratch: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let end = limit.min(INPUT_LIMIT).max(self.filled);
        if self.buffer.len() == INPUT_LIMIT {
            let n = read(&mut self.buffer[self.filled..end])?;
            self.filled += n;
            return Ok(n);
        }
        let room = (end - self.filled).min(scratch.len());
        let n = read(&mut scratch[..room])?;
        self.buffer.extend_from_slice(&scratch[..n]);
        self.filled += n;
        if self.filled > SMALL {
            // Zeroed by the allocator: its pages cost only once reads fill them.
            let mut grown = vec![0; INPUT_LIMIT];
            grown[..self.filled].copy_from_slice(&self.buffer[..self.filled]);
            self.buffer = grown;
        }
        Ok(n)
    }

    /// Frees the buffer's memory if no bytes wait.
    pub(super) fn release(&mut self) {
        if self.is_empty() {
            *self = Input::default();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feed(input: &mut Input, bytes: &[u8], limit: usize, scratch: &mut [u8]) -> usize {
        input
            .fill(limit, scratch, |room| {
                let n = room.len().min(bytes.len());
                room[..n].copy_from_slice(&bytes[..n]);
                Ok(n)
            })
            .unwrap()
    }

    #[test]
    fn a_small_request_holds_only_its_bytes() {
        let (mut input, mut scratch) = (Input::default(), vec![0; INPUT_LIMIT]);
        assert_eq!(feed(&mut input, b"hello", INPUT_LIMIT, &mut scratch), 5);
        assert_eq!(input.bytes(), b"hello");
        assert!(
            input.buffer.capacity() < SMALL,
            "{}",
            input.buffer.capacity()
        );
        input.consume(2);
        assert_eq!(input.bytes(), b"llo");
        feed(&mut input, b" world", INPUT_LIMIT, &mut scratch);
        assert_eq!(input.bytes(), b"llo world", "appended after what was left");
        assert_eq!(input.buffer.len(), input.len(), "holding nothing more");
        input.consume(9);
        input.release();
        assert!(!input.holds_memory());
    }

    #[test]
    fn a_request_up_to_a_few_kib_does_not_grow_the_buffer_and_more_does() {
        let (mut input, mut scratch) = (Input::default(), vec![0; INPUT_LIMIT]);
        // 4 KiB, written out: a request of that size must not cost a transfer's buffer.
        feed(&mut input, &[1; 4096], INPUT_LIMIT, &mut scratch);
        assert_eq!(input.buffer.len(), 4096, "4 KiB is held as it is");
        feed(&mut input, &[2], INPUT_LIMIT, &mut scratch);
        assert_eq!(input.buffer.len(), INPUT_LIMIT, "one byte more grows it");
        assert_eq!(input.len(), 4097);
    }

    #[test]
    fn data_grows_the_buffer_once_and_later_reads_go_straight_into_it() {
        let (mut input, mut scratch) = (Input::default(), vec![0; INPUT_LIMIT]);
        let data: Vec<u8> = (0..3 * SMALL).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            feed(&mut input, &data, INPUT_LIMIT, &mut scratch),
            data.len()
        );
        assert_eq!(input.buffer.len(), INPUT_LIMIT);
        input.consume(SMALL);
        assert_eq!(input.bytes(), &data[SMALL..]);
        // The next read is offered the buffer's own room, up to the limit, not the scratch.
        let mut offered = 0;
        input
            .fill(INPUT_LIMIT, &mut [], |room| {
                offered = room.len();
                room[..3].copy_from_slice(b"end");
                Ok(3)
            })
            .unwrap();
        assert_eq!(offered, INPUT_LIMIT - 2 * SMALL);
        assert_eq!(&input.bytes()[2 * SMALL..], b"end");
        // A limit below what is held reads nothing.
        assert_eq!(feed(&mut input, &data, 10, &mut scratch), 0);
    }

    #[test]
    fn a_limit_bounds_what_a_small_buffer_reads() {
        let (mut input, mut scratch) = (Input::default(), vec![0; INPUT_LIMIT]);
        assert_eq!(feed(&mut input, &[3; 100], 10, &mut scratch), 10);
        assert_eq!(feed(&mut input, &[4; 100], 15, &mut scratch), 5);
        assert_eq!(input.bytes(), [[3; 10].as_slice(), &[4; 5]].concat());
    }

    #[test]
    fn release_keeps_bytes_that_wait() {
        let (mut input, mut scratch) = (Input::default(), vec![0; 16]);
        feed(&mut input, b"partial frame", INPUT_LIMIT, &mut scratch);
        input.release();
        assert_eq!(input.bytes(), b"partial frame");
    }
}
