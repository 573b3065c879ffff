//! Bodies of the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, also built for tests).
//!
//! Each public function is one target: the files in `fuzz/fuzz_targets/` only call it, and
//! `tests/fuzz_corpus.rs` replays every committed corpus file through it, so this code builds
//! and runs in ordinary `cargo test`. The functions assert invariants and panic when one
//! breaks; "no panic" alone is not the point:
//!
//! - [`decode_frames()`]: the codec is incremental (a prefix of a frame is "need more bytes" or
//!   the same error) and decode→encode gives back exactly the bytes consumed.
//! - [`server_from_first_byte`], [`server_after_handshake`], [`client_from_server_bytes`]: one
//!   machine fed hostile bytes at arbitrary split points. Consumed never exceeds the input;
//!   file data is the tail of the consumed bytes and never more than the declared size;
//!   verified digests match an independent BLAKE3 of the bytes handed out; events come only in
//!   states that allow them; everything the machine transmits decodes; errors are sticky.
//! - [`names()`]: the name checks accept exactly the names an independent specification accepts,
//!   and an accepted name joined to a root stays under it.
//!
//! The `pair` target, a client against ferryd's real session, runs the server's rules and so
//! lives with them, in `ferry_server::fuzzing` (the protocol crate cannot depend on the server).
//!
//! Each target has a file of its own; `checks` holds the invariant checks the targets share,
//! `rng` the deterministic randomness they draw from their input, and `corpus` the seed corpora
//! ([`seed_corpus()`]).

mod checks;
mod client;
mod corpus;
mod decode_frames;
mod names;
mod rng;
mod server;
#[cfg(test)]
mod tests;

pub use self::client::client_from_server_bytes;
pub use self::corpus::{Seed, seed_corpus};
pub use self::decode_frames::decode_frames;
pub use self::names::names;
pub use self::server::{server_after_handshake, server_from_first_byte};

/// The fuzz targets, by the names of their files in `fuzz/fuzz_targets/` and their corpus
/// folders in `fuzz/corpus/`.
pub const TARGETS: [&str; 5] = [
    "decode_frames",
    "server_from_first_byte",
    "server_after_handshake",
    "client_from_server_bytes",
    "names",
];

/// Runs one corpus file through the target named `target` (one of [`TARGETS`]), exactly as
/// its `fuzz_target!` does.
#[cfg(feature = "fuzzing")]
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "decode_frames" => decode_frames(data),
        "server_from_first_byte" => server_from_first_byte(data),
        "server_after_handshake" => server_after_handshake(data),
        "client_from_server_bytes" => client_from_server_bytes(data),
        "names" => names(data),
        other => panic!("no fuzz target named {other:?}"),
    }
}
