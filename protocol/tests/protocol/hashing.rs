//! Digests and hash checkpoints through the public API: the text forms a user compares with
//! `b3sum`, resumes at unit boundaries, and the checks on a checkpoint read back from disk.

use ferry_protocol::{
    CheckpointError, DIGEST_LEN, Digest, FileHasher, HASH_UNIT_LEN, HashCheckpoint,
};

use crate::raw::{checkpoint_after, content};

const UNIT: usize = HASH_UNIT_LEN as usize;

/// What `b3sum` prints for an empty file.
const EMPTY_B3SUM: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

#[test]
fn a_digest_shows_as_the_hex_b3sum_prints() {
    let digest = Digest::of(b"");
    assert_eq!(digest.to_hex(), EMPTY_B3SUM);
    assert_eq!(digest.to_string(), EMPTY_B3SUM);
    assert_eq!(format!("{digest:?}"), format!("Digest({EMPTY_B3SUM})"));
    assert_eq!(Digest::from_hex(EMPTY_B3SUM), Some(digest));
}

#[test]
fn from_hex_takes_exactly_64_hex_digits() {
    let hex = Digest::of(b"ferry").to_hex();
    assert_eq!(hex.len(), 2 * DIGEST_LEN);
    assert_eq!(Digest::from_hex(&format!("{hex}00")), None, "too long");
    assert_eq!(Digest::from_hex(&hex[..62]), None, "too short");
    assert_eq!(Digest::from_hex(&hex[..63]), None, "odd length");
    assert_eq!(
        Digest::from_hex(&format!("{}zz", &hex[..62])),
        None,
        "not hex"
    );
    assert_eq!(Digest::from_hex(&"+f".repeat(DIGEST_LEN)), None, "signs");
    let non_ascii = format!("{}é", &hex[..62]);
    assert_eq!(non_ascii.len(), 64);
    assert_eq!(Digest::from_hex(&non_ascii), None, "not ASCII");
}

#[test]
fn a_hashers_debug_output_shows_how_far_it_hashed() {
    let mut hasher = FileHasher::new();
    hasher.update(&[7; 1000]);
    assert_eq!(format!("{hasher:?}"), "FileHasher { hashed_len: 1000 }");
}

#[test]
fn a_resumed_hasher_counts_every_byte_of_the_file() {
    let file = content(UNIT + 10);
    let held = checkpoint_after(&file[..UNIT + 1]);
    assert_eq!(held.offset(), HASH_UNIT_LEN);
    let mut resumed = FileHasher::resume(&held);
    assert_eq!(resumed.hashed_len(), HASH_UNIT_LEN);
    resumed.update(&file[UNIT..]);
    assert_eq!(resumed.hashed_len(), file.len() as u64);
    assert_eq!(resumed.finalize(), Digest::of(&file));
}

#[test]
fn a_hasher_resumed_at_the_end_of_a_file_gives_the_files_digest() {
    // 3 units: not a power of two, so the digest can be computed without more input
    let file = content(3 * UNIT);
    let held = checkpoint_after(&[&file[..], &[0]].concat());
    assert_eq!(held.offset(), file.len() as u64);
    let resumed = FileHasher::resume(&held);
    assert_eq!(resumed.finalize(), Digest::of(&file));
}

#[test]
fn a_hasher_resumed_at_the_end_of_a_power_of_two_file_fails_the_check_instead_of_panicking() {
    for units in [1, 2, 4] {
        let file = content(units * UNIT);
        let held = checkpoint_after(&[&file[..], &[0]].concat());
        assert_eq!(held.offset(), file.len() as u64);
        let resumed = FileHasher::resume(&held);
        assert_ne!(resumed.finalize(), Digest::of(&file), "{units} units");
    }
}

/// A checkpoint's bytes with `units` units done and `cvs` chaining values, whatever they say.
fn checkpoint_bytes(units: u64, cvs: usize) -> Vec<u8> {
    let mut bytes = HashCheckpoint::start().to_bytes();
    bytes[8..16].copy_from_slice(&units.to_be_bytes());
    bytes.extend(std::iter::repeat_n(0x5a, 32 * cvs));
    bytes
}

#[test]
fn a_saved_checkpoint_reads_back_only_when_whole_and_consistent() {
    assert_eq!(
        HashCheckpoint::from_bytes(&checkpoint_bytes(3, 2)).map(|c| c.offset()),
        Ok(3 * HASH_UNIT_LEN)
    );
    let mut cut = checkpoint_bytes(3, 2);
    cut.pop();
    assert_eq!(
        HashCheckpoint::from_bytes(&cut),
        Err(CheckpointError::Malformed),
        "a chaining value cut short"
    );
    let mut longer = checkpoint_bytes(3, 2);
    longer.push(0);
    assert_eq!(
        HashCheckpoint::from_bytes(&longer),
        Err(CheckpointError::Malformed),
        "a stray byte after the last chaining value"
    );
    assert_eq!(
        HashCheckpoint::from_bytes(&checkpoint_bytes(1, 64)),
        Err(CheckpointError::Inconsistent),
        "64 chaining values fit a checkpoint's length, but not one unit"
    );
    assert_eq!(
        HashCheckpoint::from_bytes(&checkpoint_bytes(1, 65)),
        Err(CheckpointError::Malformed),
        "no offset has 65 chaining values"
    );
    assert_eq!(
        HashCheckpoint::from_bytes(&checkpoint_bytes(u64::MAX, 64)),
        Err(CheckpointError::Inconsistent),
        "an offset past the largest file"
    );
}
