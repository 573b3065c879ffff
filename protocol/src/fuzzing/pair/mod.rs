//! Target 6, [`pair`]: a client and a server machine wired in memory run random operations
//! against a tiny in-memory store; both sides agree on every byte, digest and answer, and
//! nothing stalls.
//!
//! The input and the harness are here; [`links`] delivers the bytes between the two machines,
//! [`store`] is the server's driver and [`ops`] the client's operations.

use self::store::Store;
use crate::{ClientConnection, ClientEvent, HASH_UNIT_LEN, ServerConnection};

mod links;
mod ops;
mod store;

/// Names the operations draw from, so that they collide. The last one is invalid.
const PAIR_NAMES: [&str; 6] = [
    "a",
    "b/c.txt",
    "docs/report.pdf",
    "docs/x y",
    "ünï/файл",
    "../escape",
];

/// Largest file a [`pair`] operation moves: a few hash units, so resume is exercised.
const PAIR_MAX_FILE: u32 = 3 * HASH_UNIT_LEN as u32 + 1000;

/// One operation of the client in [`pair`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum PairOp {
    /// Upload a file of `size % PAIR_MAX_FILE` bytes made from `seed`; cancel once
    /// `cancel_at` bytes were sent, if given.
    Put {
        /// Index into the name list.
        name: u8,
        /// Size before reduction.
        size: u32,
        /// Content seed; also the source tag, so the same seed resumes.
        seed: u8,
        /// Replace an existing file.
        overwrite: bool,
        /// Resume a partial upload.
        resume: bool,
        /// Cancel after this many bytes of this request were sent.
        cancel_at: Option<u32>,
        /// Largest `DATA` chunk, before reduction.
        chunk: u16,
    },
    /// Download a file, resuming after `resume_units` units of the client's own copy.
    Get {
        /// Index into the name list.
        name: u8,
        /// Units of the local copy to keep (capped by the copy's length).
        resume_units: u8,
        /// Largest `DATA` chunk the server sends, before reduction.
        chunk: u16,
    },
    /// List the files under a prefix: "", a name's first letters, or a folder.
    List {
        /// Which prefix.
        prefix: u8,
    },
    /// Remove a file.
    Remove {
        /// Index into the name list.
        name: u8,
    },
    /// Ask what the server holds under a name for a tag.
    Query {
        /// Index into the name list.
        name: u8,
        /// Tag seed.
        seed: u8,
    },
    /// A `PING` with this nonce.
    Ping(u64),
}

/// Input of the [`pair`] target: operations, and the split points of both directions.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct PairInput {
    /// The client's operations, run one after another.
    pub ops: Vec<PairOp>,
    /// Sizes of the pieces the client→server stream is delivered in (cycled; 0 means 1).
    pub client_splits: Vec<u16>,
    /// Sizes of the pieces of the server→client stream.
    pub server_splits: Vec<u16>,
}

/// Most operations one [`pair`] run executes.
const PAIR_MAX_OPS: usize = 24;

/// Most pieces one delivery is cut into; the rest goes in one piece.
const PAIR_MAX_PIECES: usize = 256;

/// Decodes `data` the way `fuzz_target!(|input: PairInput| ..)` does, then runs [`pair`].
#[cfg(feature = "fuzzing")]
pub fn pair_bytes(data: &[u8]) {
    use arbitrary::Arbitrary;
    if data.len() < PairInput::size_hint(0).0 {
        return;
    }
    if let Ok(input) = PairInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) {
        pair(input);
    }
}

/// Runs a client and a server against each other in memory and checks that they agree.
pub fn pair(input: PairInput) {
    let mut pair = Pair::new(&input);
    for op in input.ops.iter().take(PAIR_MAX_OPS) {
        pair.run(op);
    }
    pair.finish();
}

/// Both machines, their links, and the server's store.
struct Pair {
    client: ClientConnection,
    server: ServerConnection,
    store: Store,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    client_splits: Vec<usize>,
    server_splits: Vec<usize>,
    split_at: (usize, usize),
    now: u64,
    steps: u64,
    /// The client's events not yet taken by the operation waiting for them.
    client_events: Vec<ClientEvent>,
    /// File bytes the client received for the download under way.
    downloaded: Vec<u8>,
}
