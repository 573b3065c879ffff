//! Bodies of the cargo-fuzz targets that need ferryd itself (feature `fuzzing`): the files in
//! `fuzz/fuzz_targets/` only call them, and `tests/fuzz_corpus.rs` replays every committed
//! corpus file through them, so this code builds and runs in ordinary `cargo test`.
//!
//! - [`pair`]: a client machine and ferryd's real [`crate::Session`] over the in-memory store,
//!   wired in memory, run random operations; the store ends up holding exactly what the client
//!   was told it stored, every downloaded byte and digest equals it, listings and answers agree
//!   with it, and nothing stalls or times out.
//!
//! The targets that fuzz one protocol machine alone stay in `ferry_protocol::fuzzing`: they
//! need no server rules. This one lives here because it runs the server's rules, and the
//! protocol crate cannot depend on the server.

mod pair;

pub use pair::{PairInput, PairOp, pair, pair_bytes};

/// The fuzz targets whose bodies live here, by the names of their files in
/// `fuzz/fuzz_targets/` and their corpus folders in `fuzz/corpus/`.
pub const TARGETS: [&str; 1] = ["pair"];

/// Runs one corpus file through the target named `target` (one of [`TARGETS`]), exactly as
/// its `fuzz_target!` does.
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "pair" => pair_bytes(data),
        other => panic!("no fuzz target named {other:?} in ferry_server::fuzzing"),
    }
}

/// One file of a seed corpus: inputs the fuzzers start from.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The target whose corpus it belongs to.
    pub target: &'static str,
    /// File name in the corpus folder.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Seed files for every target here: byte strings that decode to runs of several kinds of
/// operation. `tests/fuzz_corpus.rs` writes them into `fuzz/corpus/`.
pub fn seed_corpus() -> Vec<Seed> {
    pair::seeds()
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| Seed {
            target: "pair",
            name: format!("seed-{i}"),
            bytes,
        })
        .collect()
}
