//! Helpers shared by the tests: servers (ferryd on a folder or over the in-memory store, and a
//! scripted hostile one), a relay that cuts, stalls, corrupts and logs, test data.

pub mod cli;
pub mod hostile_server;
pub mod memory_server;
pub mod metrics;
pub mod relay;
pub mod wire_log;

/// `len` bytes of reproducible, incompressible-looking data (xorshift), different per `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
