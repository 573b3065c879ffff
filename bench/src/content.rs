//! Benchmark content: incompressible bytes from a seed, generated on the fly.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ferry_protocol::{Digest, FileHasher};

/// SplitMix64 stream of bytes: cheap, incompressible, reproducible.
pub fn fill(buf: &mut [u8], seed: u64, offset: u64) {
    let mut state = seed ^ offset.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for word in buf.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        word.copy_from_slice(&z.to_le_bytes()[..word.len()]);
    }
}

/// `size` bytes of content for `seed`.
pub fn bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; size];
    fill(&mut out, seed, 0);
    out
}

/// Writes a file of `size` content bytes and returns its digest.
pub fn write_file(path: &Path, size: u64, seed: u64) -> anyhow::Result<Digest> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < size {
        let n = buf.len().min((size - written) as usize);
        fill(&mut buf[..n], seed, written);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        written += n as u64;
    }
    out.flush()?;
    Ok(hasher.finalize())
}
