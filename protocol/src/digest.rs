//! The whole-file digest: plain BLAKE3, computed so that its state can be checkpointed.
//!
//! A receiver that has stored the first N bytes of a file must be able to resume hashing at N
//! without reading those bytes again (PROTOCOL.md §7, "Resume"). `blake3::Hasher` cannot be
//! saved, so [`FileHasher`] builds the very same BLAKE3 tree itself from 64 KiB subtrees
//! (via `blake3::hazmat`) and keeps only their chaining values: at most 54 × 32 bytes of state
//! at any file size. The result equals `blake3::hash` of the whole file, so a user can check it
//! with `b3sum`.

use std::fmt;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

/// Length of a [`Digest`] in bytes.
pub const DIGEST_LEN: usize = 32;

/// Size of one hashed subtree: 64 BLAKE3 chunks. A power of two, so every unit is a subtree of
/// the final BLAKE3 tree. Checkpoints fall on multiples of this size.
pub const HASH_UNIT_LEN: u64 = 64 * 1024;

/// Magic prefix of a serialized [`HashCheckpoint`], so that a stray file is not mistaken for one.
const CHECKPOINT_MAGIC: &[u8; 8] = b"FRYHASH1";

/// Most chaining values a checkpoint can hold: one per bit of a 64-bit unit count.
const MAX_STACK: usize = 64;

/// A BLAKE3 digest of a whole file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; DIGEST_LEN]);

impl Digest {
    /// The digest of `data`, in one call.
    pub fn of(data: &[u8]) -> Self {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// The digest as lowercase hex, as `b3sum` prints it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits, as produced by [`Digest::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        // Digits only: `from_str_radix` alone would also take a sign ("+f").
        if text.len() != DIGEST_LEN * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; DIGEST_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Streaming BLAKE3 over a whole file whose progress can be saved ([`FileHasher::checkpoint`])
/// and restored ([`FileHasher::resume`]) at any multiple of [`HASH_UNIT_LEN`].
#[derive(Clone)]
pub struct FileHasher {
    /// Chaining values of completed subtrees, leftmost (largest) first.
    stack: Vec<ChainingValue>,
    /// Full units already folded into `stack`.
    units_done: u64,
    /// Hasher of the unit after those, positioned at its offset in the file.
    current: blake3::Hasher,
    /// Bytes fed to `current` so far, `0..=HASH_UNIT_LEN`.
    current_len: u64,
}

impl fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileHasher")
            .field("hashed_len", &self.hashed_len())
            .finish()
    }
}

impl Default for FileHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl FileHasher {
    /// A hasher at offset 0.
    pub fn new() -> Self {
        FileHasher {
            stack: Vec::new(),
            units_done: 0,
            current: blake3::Hasher::new(),
            current_len: 0,
        }
    }

    /// A hasher that continues from a saved checkpoint: the next byte fed is the byte at
    /// `checkpoint.offset()` of the file.
    pub fn resume(checkpoint: &HashCheckpoint) -> Self {
        let mut current = blake3::Hasher::new();
        current.set_input_offset(checkpoint.offset());
        FileHasher {
            stack: checkpoint.stack.clone(),
            units_done: checkpoint.units_done,
            current,
            current_len: 0,
        }
    }

    /// Number of file bytes hashed so far.
    pub fn hashed_len(&self) -> u64 {
        self.units_done * HASH_UNIT_LEN + self.current_len
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.current_len == HASH_UNIT_LEN {
                // More input follows, so the full unit is not the root: fold it in.
                self.fold_current_unit();
            }
            let room = usize::try_from(HASH_UNIT_LEN - self.current_len).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.current_len += now.len() as u64;
            data = rest;
        }
    }

    /// Folds the full current unit into the stack, merging completed left subtrees the way the
    /// BLAKE3 reference implementation does (one merge per trailing zero bit of the unit count).
    fn fold_current_unit(&mut self) {
        let mut cv = self.current.finalize_non_root();
        self.units_done += 1;
        let mut count = self.units_done;
        while count & 1 == 0 {
            match self.stack.pop() {
                Some(left) => cv = merge_subtrees_non_root(&left, &cv, Mode::Hash),
                None => break, // unreachable: the stack holds one entry per set bit
            }
            count >>= 1;
        }
        self.stack.push(cv);
        self.current = blake3::Hasher::new();
        self.current
            .set_input_offset(self.units_done * HASH_UNIT_LEN);
        self.current_len = 0;
    }

    /// The digest of everything fed so far, as `blake3::hash` of the whole file would give.
    ///
    /// One case cannot be computed: a hasher resumed at a checkpoint of exactly 2^k units that
    /// was fed nothing more (a transfer resumed at its very end). The file is then one whole
    /// subtree whose root was folded as a non-root node, so this returns that chaining value,
    /// which cannot equal the real digest (it is hashed with other flags): the transfer fails
    /// its digest check instead of being accepted unverified.
    pub fn finalize(&self) -> Digest {
        if self.units_done == 0 {
            return Digest(*self.current.finalize().as_bytes());
        }
        let mut lefts = self.stack.iter().rev().peekable();
        let mut right = if self.current_len > 0 {
            self.current.finalize_non_root()
        } else {
            // Nothing after the last full unit: the rightmost subtree is on the stack.
            match lefts.next() {
                Some(last) if lefts.peek().is_some() => *last,
                Some(only) => return Digest(*only),
                None => return Digest(*self.current.finalize().as_bytes()),
            }
        };
        while let Some(left) = lefts.next() {
            if lefts.peek().is_none() {
                return Digest(*merge_subtrees_root(left, &right, Mode::Hash).as_bytes());
            }
            right = merge_subtrees_non_root(left, &right, Mode::Hash);
        }
        // unreachable: units_done > 0 means the stack is not empty
        Digest(*self.current.finalize().as_bytes())
    }

    /// The state at a unit boundary before [`FileHasher::hashed_len`]: the last full unit is
    /// folded in only when more input arrives (until then it might be the whole file's root),
    /// so after exactly N units the checkpoint is at N − 1 and a resume resends one unit.
    /// A receiver that keeps the file's first `checkpoint.offset()` bytes and this value can
    /// resume there. An empty hasher checkpoints at 0.
    pub fn checkpoint(&self) -> HashCheckpoint {
        HashCheckpoint {
            units_done: self.units_done,
            stack: self.stack.clone(),
        }
    }
}

/// Saved progress of a [`FileHasher`] at a multiple of [`HASH_UNIT_LEN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashCheckpoint {
    units_done: u64,
    stack: Vec<ChainingValue>,
}

/// Why bytes could not be read back as a [`HashCheckpoint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The bytes do not start with the checkpoint magic or have the wrong length.
    #[error("not a ferry hash checkpoint (wrong magic or length); discard it and start over")]
    Malformed,
    /// The number of chaining values does not match the offset, so the state is inconsistent.
    #[error("hash checkpoint is inconsistent (stack depth does not match offset); discard it")]
    Inconsistent,
}

impl HashCheckpoint {
    /// The checkpoint of an empty file.
    pub fn start() -> Self {
        HashCheckpoint {
            units_done: 0,
            stack: Vec::new(),
        }
    }

    /// File offset this checkpoint resumes at.
    pub fn offset(&self) -> u64 {
        self.units_done * HASH_UNIT_LEN
    }

    /// Serialized form: magic, unit count (u64 BE), then one 32-byte chaining value per set bit.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 32 * self.stack.len());
        out.extend_from_slice(CHECKPOINT_MAGIC);
        out.extend_from_slice(&self.units_done.to_be_bytes());
        for cv in &self.stack {
            out.extend_from_slice(cv);
        }
        out
    }

    /// Reads back what [`HashCheckpoint::to_bytes`] wrote, checking it is consistent.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let rest = bytes
            .strip_prefix(CHECKPOINT_MAGIC.as_slice())
            .ok_or(CheckpointError::Malformed)?;
        let (count, cvs) = rest
            .split_first_chunk::<8>()
            .ok_or(CheckpointError::Malformed)?;
        let units_done = u64::from_be_bytes(*count);
        if units_done.checked_mul(HASH_UNIT_LEN).is_none() {
            return Err(CheckpointError::Inconsistent);
        }
        let (chunks, tail) = cvs.as_chunks::<32>();
        if !tail.is_empty() || chunks.len() > MAX_STACK {
            return Err(CheckpointError::Malformed);
        }
        if chunks.len() != units_done.count_ones() as usize {
            return Err(CheckpointError::Inconsistent);
        }
        Ok(HashCheckpoint {
            units_done,
            stack: chunks.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn empty_input_matches_blake3() {
        assert_eq!(FileHasher::new().finalize(), Digest::of(b""));
    }

    #[test]
    fn unit_boundary_sizes_match_blake3() {
        let unit = HASH_UNIT_LEN as usize;
        for len in [
            1,
            1023,
            1024,
            1025,
            unit - 1,
            unit,
            unit + 1,
            2 * unit,
            3 * unit + 7,
            8 * unit,
        ] {
            let data = pattern(len, 7);
            let mut hasher = FileHasher::new();
            hasher.update(&data);
            assert_eq!(hasher.finalize(), Digest::of(&data), "len {len}");
        }
    }

    #[test]
    fn resume_from_serialized_checkpoint_matches_blake3() {
        let data = pattern(5 * HASH_UNIT_LEN as usize + 300, 3);
        let mut first = FileHasher::new();
        first.update(&data[..3 * HASH_UNIT_LEN as usize + 10]);
        let saved = first.checkpoint().to_bytes();
        let checkpoint = HashCheckpoint::from_bytes(&saved).expect("own bytes parse");
        assert_eq!(checkpoint.offset(), 3 * HASH_UNIT_LEN);
        let mut second = FileHasher::resume(&checkpoint);
        second.update(&data[checkpoint.offset() as usize..]);
        assert_eq!(second.finalize(), Digest::of(&data));
    }

    #[test]
    fn inconsistent_checkpoint_is_rejected() {
        let mut bytes = HashCheckpoint::start().to_bytes();
        bytes[15] = 1; // one unit done, but no chaining value follows
        assert_eq!(
            HashCheckpoint::from_bytes(&bytes),
            Err(CheckpointError::Inconsistent)
        );
        assert_eq!(
            HashCheckpoint::from_bytes(b"garbage"),
            Err(CheckpointError::Malformed)
        );
    }

    #[test]
    fn hex_round_trips() {
        let digest = Digest::of(b"ferry");
        assert_eq!(Digest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(Digest::from_hex("zz"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_split_and_resume_point_matches_blake3(
            len in 0usize..600_000,
            cut_ratio in 0.0f64..1.0,
            pieces in 1usize..9,
        ) {
            let data = pattern(len, 11);
            let cut = (len as f64 * cut_ratio) as usize;
            let mut hasher = FileHasher::new();
            let step = (cut / pieces).max(1);
            for piece in data[..cut].chunks(step) {
                hasher.update(piece);
            }
            let checkpoint = HashCheckpoint::from_bytes(&hasher.checkpoint().to_bytes()).unwrap();
            prop_assert!(checkpoint.offset() <= cut as u64);
            let mut resumed = FileHasher::resume(&checkpoint);
            resumed.update(&data[checkpoint.offset() as usize..]);
            prop_assert_eq!(resumed.finalize(), Digest::of(&data));
            hasher.update(&data[cut..]);
            prop_assert_eq!(hasher.finalize(), Digest::of(&data));
        }
    }
}
