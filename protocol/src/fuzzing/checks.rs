//! Invariant checks the targets share: what a machine transmits decodes and ends on a frame
//! boundary, errors are sticky, file data is the tail of the consumed input, and a checkpoint
//! resumes to the right digest.

use std::sync::OnceLock;

use crate::limits::MAGIC;
use crate::{
    Digest, ErrorCode, FileHasher, Frame, HASH_UNIT_LEN, HashCheckpoint, ProtocolError, Timestamp,
    decode_frame,
};

/// The checkpoint after one unit of zero bytes: a resumed transfer whose first unit is zeros.
pub(super) fn zero_unit_checkpoint() -> &'static HashCheckpoint {
    static CHECKPOINT: OnceLock<HashCheckpoint> = OnceLock::new();
    CHECKPOINT.get_or_init(|| {
        // One byte past the unit, so that the hasher folds it into its checkpoint.
        let checkpoint = checkpoint_of(&vec![0; HASH_UNIT_LEN as usize + 1]);
        assert_eq!(checkpoint.offset(), HASH_UNIT_LEN);
        checkpoint
    })
}

/// The checkpoint a receiver holding `bytes` (from offset 0) resumes from.
pub(super) fn checkpoint_of(bytes: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(bytes);
    hasher.checkpoint()
}

/// A receiver holding `bytes` (from offset 0) can resume hashing from `checkpoint`: it is at
/// a unit boundary within the bytes, and hashing the rest from there gives BLAKE3 of them all.
pub(super) fn assert_resumes(checkpoint: &HashCheckpoint, bytes: &[u8]) {
    let offset = checkpoint.offset();
    assert!(
        offset <= bytes.len() as u64 && offset.is_multiple_of(HASH_UNIT_LEN),
        "checkpoint at {offset} for {} bytes",
        bytes.len()
    );
    if offset == bytes.len() as u64 && offset > 0 {
        // Resumed at the very end: see `FileHasher::finalize` (not always computable).
        return;
    }
    let mut hasher = FileHasher::resume(checkpoint);
    hasher.update(&bytes[offset as usize..]);
    assert_eq!(
        hasher.finalize(),
        Digest::of(bytes),
        "resuming from the checkpoint gives another digest"
    );
}

pub(super) fn ts(micros: u64) -> Timestamp {
    Timestamp::from_micros(micros)
}

/// `part` is exactly the `part.len()` bytes of `whole` that end at `whole[end]`.
pub(super) fn assert_tail_of(part: &[u8], whole: &[u8], end: usize) {
    if part.is_empty() {
        return;
    }
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    assert!(
        start <= whole.len() && start + part.len() == end,
        "file data is not the tail of the consumed input (starts at {start}, {} bytes, consumed {end})",
        part.len()
    );
}

/// The ERROR frame `error` queues for the peer, if it queues one.
pub(super) fn expects_error_frame(error: &ProtocolError) -> bool {
    !matches!(
        error,
        ProtocolError::Peer { .. } | ProtocolError::UnexpectedEof { .. }
    )
}

/// Follows everything one machine transmits (its magic, frames, and the file data its driver
/// writes after `DATA` headers) and fails on anything that does not decode.
#[derive(Default)]
pub(super) struct StreamChecker {
    pub(super) buf: Vec<u8>,
    pub(super) magic_seen: usize,
    pub(super) data_left: usize,
    pub(super) last_error: Option<ErrorCode>,
    pub(super) frames: usize,
}

impl StreamChecker {
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        if self.magic_seen < MAGIC.len() {
            let n = (MAGIC.len() - self.magic_seen).min(bytes.len());
            assert_eq!(
                bytes[..n],
                MAGIC[self.magic_seen..self.magic_seen + n],
                "stream does not start with the magic"
            );
            self.magic_seen += n;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            if self.data_left > 0 {
                let n = self.data_left.min(self.buf.len() - pos);
                if n == 0 {
                    break;
                }
                self.data_left -= n;
                pos += n;
                continue;
            }
            match decode_frame(&self.buf[pos..]) {
                Ok(Some((frame, used))) => {
                    self.frames += 1;
                    self.last_error = match frame {
                        Frame::Error { code, .. } => Some(code),
                        _ => None,
                    };
                    if let Frame::Data { len } = frame {
                        self.data_left = len as usize;
                    }
                    pos += used;
                }
                Ok(None) => break,
                Err(error) => panic!("the machine transmitted a malformed frame: {error}"),
            }
        }
        self.buf.drain(..pos);
    }

    /// Everything sent so far ends on a frame boundary.
    pub(super) fn assert_complete(&self) {
        assert!(
            self.buf.is_empty() && self.data_left == 0,
            "transmitted stream ends inside a frame"
        );
    }
}

/// Checks the sticky-error contract on any machine: the same error from every later call, and
/// the ERROR frame that tells the peer why as the last thing transmitted.
pub(super) fn assert_sticky<T>(error: &ProtocolError, again: Result<T, ProtocolError>, what: &str) {
    match again {
        Err(e) => assert_eq!(
            &e, error,
            "{what} after an error returned a different error"
        ),
        Ok(_) => panic!("{what} after the error {error:?} succeeded"),
    }
}
