//! The two halves of a file transfer, shared by both machines: the receiving half counts and
//! hashes data and checks `DONE` (PROTOCOL.md §7); the sending half frames data and counts it.

use crate::digest::{Digest, FileHasher, HashCheckpoint};
use crate::error::{CommandError, ProtocolError};
use crate::limits::MAX_DATA_CHUNK;

/// Receiving half: the next `chunk_left` input bytes are file data.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// The declared size; `u64::MAX` for a streamed upload, whose size comes at the end.
    size: u64,
    /// A streamed upload (version 3): it ends with `DONE_SIZED`, not `DONE`.
    streamed: bool,
    start: u64,
    chunk_left: u32,
    /// Boxed: BLAKE3 state is about 2 KiB, which would bloat every connection state.
    hasher: Box<FileHasher>,
}

/// How a transfer's `DONE` checked out.
pub(crate) enum Finished {
    /// Every byte arrived and the digest matched.
    Verified(Digest),
    /// Every byte arrived but the digest is wrong.
    DigestMismatch(ProtocolError),
}

impl Inbound {
    /// Receives `size` bytes in all, resuming after what `checkpoint` covers.
    pub(crate) fn new(size: u64, checkpoint: &HashCheckpoint) -> Self {
        Inbound {
            size,
            streamed: false,
            start: checkpoint.offset(),
            chunk_left: 0,
            hasher: Box::new(FileHasher::resume(checkpoint)),
        }
    }

    /// Receives a streamed upload from byte 0: its size is told by `DONE_SIZED`
    /// ([`finish_sized`](Self::finish_sized)).
    pub(crate) fn streamed() -> Self {
        Inbound {
            streamed: true,
            ..Inbound::new(u64::MAX, &HashCheckpoint::start())
        }
    }

    pub(crate) fn is_streamed(&self) -> bool {
        self.streamed
    }

    pub(crate) fn received(&self) -> u64 {
        self.hasher.hashed_len()
    }

    pub(crate) fn in_chunk(&self) -> bool {
        self.chunk_left > 0
    }

    pub(crate) fn checkpoint(&self) -> HashCheckpoint {
        self.hasher.checkpoint()
    }

    /// A `DATA` header: PROTOCOL.md §7 "a sender MUST NOT send more bytes than it declared".
    pub(crate) fn start_chunk(&mut self, len: u32) -> Result<(), ProtocolError> {
        if u64::from(len) > self.size - self.received() {
            return Err(ProtocolError::SizeMismatch {
                declared: self.size - self.start,
                sent: self.received() - self.start + u64::from(len),
            });
        }
        self.chunk_left = len;
        Ok(())
    }

    /// Takes the file bytes at the front of `input` that belong to the current chunk.
    pub(crate) fn take<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let n = input.len().min(self.chunk_left as usize);
        let data = &input[..n];
        self.hasher.update(data);
        self.chunk_left -= n as u32;
        data
    }

    /// The sender's `DONE`: every declared byte must have arrived, then the digest must match.
    pub(crate) fn finish(&self, sent_digest: Digest) -> Result<Finished, ProtocolError> {
        if self.received() != self.size {
            return Err(ProtocolError::SizeMismatch {
                declared: self.size - self.start,
                sent: self.received() - self.start,
            });
        }
        Ok(self.check_digest(sent_digest))
    }

    /// A streamed upload's `DONE_SIZED`: PROTOCOL.md §7 "the size it declares MUST be the
    /// number of bytes sent", then the digest must match.
    pub(crate) fn finish_sized(
        &self,
        size: u64,
        sent_digest: Digest,
    ) -> Result<Finished, ProtocolError> {
        if self.received() != size {
            return Err(ProtocolError::SizeMismatch {
                declared: size,
                sent: self.received(),
            });
        }
        Ok(self.check_digest(sent_digest))
    }

    fn check_digest(&self, sent_digest: Digest) -> Finished {
        let actual = self.hasher.finalize();
        if actual == sent_digest {
            Finished::Verified(actual)
        } else {
            Finished::DigestMismatch(ProtocolError::DigestMismatch {
                expected: sent_digest,
                actual,
            })
        }
    }
}

/// The rest of a refused eager upload (version 2): counted like an accepted one, so a sender
/// that lies about its size is still caught, but neither hashed nor kept.
#[derive(Debug)]
pub(crate) struct Discard {
    left: u64,
    declared: u64,
    chunk_left: u32,
}

impl Discard {
    pub(crate) fn new(size: u64) -> Self {
        Discard {
            left: size,
            declared: size,
            chunk_left: 0,
        }
    }

    pub(crate) fn in_chunk(&self) -> bool {
        self.chunk_left > 0
    }

    /// A `DATA` header: no more than was declared.
    pub(crate) fn start_chunk(&mut self, len: u32) -> Result<(), ProtocolError> {
        if u64::from(len) > self.left {
            return Err(ProtocolError::SizeMismatch {
                declared: self.declared,
                sent: self.declared - self.left + u64::from(len),
            });
        }
        self.left -= u64::from(len);
        self.chunk_left = len;
        Ok(())
    }

    /// Drops up to `available` bytes of the current chunk; returns how many.
    pub(crate) fn skip(&mut self, available: usize) -> usize {
        let n = available.min(self.chunk_left as usize);
        self.chunk_left -= n as u32;
        n
    }

    /// The sender's `DONE`: every declared byte must have arrived (the digest is not checked:
    /// the data is dropped anyway).
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.left == 0 {
            Ok(())
        } else {
            Err(ProtocolError::SizeMismatch {
                declared: self.declared,
                sent: self.declared - self.left,
            })
        }
    }
}

/// Sending half: `remaining` bytes are still to be framed.
#[derive(Debug)]
pub(crate) struct Outbound {
    remaining: u64,
    /// Bytes framed so far.
    sent: u64,
    /// A streamed upload (version 3): no size was declared, so any amount may follow and the
    /// size is told at the end.
    streamed: bool,
}

impl Outbound {
    pub(crate) fn new(size: u64, offset: u64) -> Self {
        Outbound {
            remaining: size - offset,
            sent: 0,
            streamed: false,
        }
    }

    /// Sends a streamed upload from byte 0.
    pub(crate) fn streamed() -> Self {
        Outbound {
            streamed: true,
            ..Outbound::new(u64::MAX, 0)
        }
    }

    pub(crate) fn is_streamed(&self) -> bool {
        self.streamed
    }

    /// Bytes still to send; for a streamed upload, what `u64` can still count.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Bytes framed so far (the size a streamed upload declares at its end).
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// Accounts for `len` more bytes, refusing more than is left or than a chunk may hold.
    pub(crate) fn take(&mut self, len: usize) -> Result<u32, CommandError> {
        let allowed = self.remaining.min(MAX_DATA_CHUNK as u64);
        if len == 0 || len as u64 > allowed {
            return Err(CommandError::TooMuchData {
                given: len as u64,
                allowed,
            });
        }
        self.remaining -= len as u64;
        self.sent += len as u64;
        Ok(len as u32)
    }
}
