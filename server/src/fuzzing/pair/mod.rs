//! The `pair` fuzz target: a client machine and ferryd's real session over the in-memory store,
//! wired back to back in memory on a virtual clock, the bytes of each direction delivered in
//! pieces the input chooses. The operations and what each must show are in `ops.rs`; this file
//! holds the input, the wiring and the end-of-run checks.
//!
//! The checks compare the server with what the client did and was told, never with a second
//! copy of the server's rules: the client is the store's only writer, so the store must hold
//! exactly the files the client was told it stored.

mod ops;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arbitrary::Arbitrary;
use ferry_protocol::limits::PROTOCOL_VERSION;
use ferry_protocol::{ClientConnection, ClientEvent, Config, Digest, SourceTag, Timestamp};

use crate::memory::{ManualClock, MemoryLimits, MemoryStore};
use crate::{Context, ServerConfig, Session};

/// Names the operations draw from, so that they collide. The last one is invalid.
const PAIR_NAMES: [&str; 6] = [
    "a",
    "b/c.txt",
    "docs/report.pdf",
    "docs/x y",
    "ünï/файл",
    "../escape",
];

/// Most operations one [`pair`] run executes.
const PAIR_MAX_OPS: usize = 24;

/// Most pieces one delivery is cut into; the rest goes in one piece.
const PAIR_MAX_PIECES: usize = 256;

/// Steps after which a run is declared stalled: a livelock fails instead of hanging.
const PAIR_MAX_STEPS: u64 = 100_000;

/// A root the configuration names but the session never touches: the files live in the store.
const UNUSED_ROOT: &str = "unused-by-the-memory-store";

/// The address the session believes its client has (TEST-NET-1, never reached).
const PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 1),
    40_000,
));

/// One operation of the client in [`pair`].
#[derive(Debug, Clone, Arbitrary)]
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
        /// Unused: ferryd's session picks its own chunk size. Kept so that the committed
        /// corpora decode as they did.
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
#[derive(Debug, Clone, Arbitrary)]
pub struct PairInput {
    /// The client's operations, run one after another.
    pub ops: Vec<PairOp>,
    /// Sizes of the pieces the client→server stream is delivered in (cycled; 0 means 1).
    pub client_splits: Vec<u16>,
    /// Sizes of the pieces of the server→client stream.
    pub server_splits: Vec<u16>,
}

/// Decodes `data` the way `fuzz_target!(|input: PairInput| ..)` does, then runs [`pair`].
pub fn pair_bytes(data: &[u8]) {
    if data.len() < PairInput::size_hint(0).0 {
        return;
    }
    if let Ok(input) = PairInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) {
        pair(input);
    }
}

/// Runs a client and ferryd's session against each other in memory and checks that they
/// agree with each other and with what the store holds.
pub fn pair(input: PairInput) {
    let mut pair = Pair::new(&input);
    for op in input.ops.iter().take(PAIR_MAX_OPS) {
        pair.run(op);
    }
    pair.finish();
}

/// Byte strings that decode to runs of several kinds of operation: the seed corpus.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    // splitmix64, so that the seeds are the same on every machine.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut found = Vec::new();
    for _ in 0..100_000 {
        let len = 64 + (next() % 512) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let Ok(input) = PairInput::arbitrary_take_rest(arbitrary::Unstructured::new(&bytes)) else {
            continue;
        };
        let kinds: std::collections::HashSet<_> =
            input.ops.iter().map(std::mem::discriminant).collect();
        if input.ops.len() >= 5 && kinds.len() >= 4 {
            found.push(bytes);
            if found.len() == 6 {
                break;
            }
        }
    }
    found
}

/// The client machine, ferryd's session and its store, the links between them, and what the
/// client was told.
struct Pair {
    client: ClientConnection,
    session: Session,
    /// A handle on the store the session runs over.
    store: MemoryStore,
    /// The store's clock, kept at the pair's time.
    clock: ManualClock,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Bytes delivered to the session that it has not taken yet.
    server_inbox: Vec<u8>,
    client_splits: Vec<usize>,
    server_splits: Vec<usize>,
    split_at: (usize, usize),
    now: u64,
    steps: u64,
    /// The client's events not yet taken by the operation waiting for them.
    client_events: Vec<ClientEvent>,
    /// File bytes the client received for the download under way.
    downloaded: Vec<u8>,
    /// The files the client was told are stored (it is the only writer): name → bytes.
    told: BTreeMap<String, Vec<u8>>,
    /// Bytes of each file (by name and tag) that reached the server in a cancelled upload: a
    /// resume can start no later.
    sent_before: HashMap<(String, SourceTag), u64>,
}

impl Pair {
    fn new(input: &PairInput) -> Self {
        let splits = |s: &[u16]| -> Vec<usize> {
            let v: Vec<usize> = s.iter().take(64).map(|&n| usize::from(n).max(1)).collect();
            if v.is_empty() { vec![usize::MAX] } else { v }
        };
        let clock = ManualClock::default();
        let store = MemoryStore::new(MemoryLimits::default(), clock.clock());
        let context = Context::new(
            ServerConfig::new(UNUSED_ROOT),
            Arc::new(store.clone()),
            Instant::now(),
        );
        let mut pair = Pair {
            client: ClientConnection::new(Config::default(), Timestamp::ZERO, b"")
                .expect("empty token"),
            session: Session::new(context, PEER, Timestamp::ZERO),
            store,
            clock,
            to_server: Vec::new(),
            to_client: Vec::new(),
            server_inbox: Vec::new(),
            client_splits: splits(&input.client_splits),
            server_splits: splits(&input.server_splits),
            split_at: (0, 0),
            now: 0,
            steps: 0,
            client_events: Vec::new(),
            downloaded: Vec::new(),
            told: BTreeMap::new(),
            sent_before: HashMap::new(),
        };
        let connected = pair.wait_for(|e| matches!(e, ClientEvent::Connected { .. }));
        assert_eq!(
            connected,
            ClientEvent::Connected {
                version: PROTOCOL_VERSION
            }
        );
        pair
    }

    /// One round: a millisecond passes, both sides transmit, both links deliver their bytes
    /// in pieces. No deadline may pass in a healthy pair.
    fn step(&mut self) {
        self.steps += 1;
        assert!(self.steps < PAIR_MAX_STEPS, "the pair stalled");
        self.now += 1_000;
        let now = Timestamp::from_micros(self.now);
        self.clock.set(now);
        let _ = self.client.poll_transmit(&mut self.to_server);
        while self.session.poll_transmit(&mut self.to_client) > 0 {}
        self.deliver_to_server();
        self.deliver_to_client();
        if self.session.poll_timeout().is_some_and(|due| due <= now) {
            self.session.handle_timeout(now);
        }
        assert!(
            !self.session.is_closed(),
            "the server closed a healthy connection"
        );
        assert_eq!(
            self.client.handle_timeout(now),
            Ok(()),
            "client timed out in a healthy pair"
        );
    }

    /// Runs steps until the client emits an event matching `want`, and returns it. Other
    /// events (a PONG, say) stay queued.
    fn wait_for(&mut self, want: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        for _ in 0..10_000 {
            if let Some(i) = self.client_events.iter().position(&want) {
                return self.client_events.remove(i);
            }
            self.step();
        }
        panic!(
            "the pair stalled; client events so far: {:?}",
            self.client_events
        );
    }

    /// The lengths of the pieces `len` bytes are delivered in.
    fn pieces(splits: &[usize], at: &mut usize, len: usize) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut done = 0;
        while done < len {
            let n = if cuts.len() + 1 >= PAIR_MAX_PIECES {
                len - done
            } else {
                *at = (*at + 1) % splits.len();
                splits[*at].min(len - done)
            };
            cuts.push(n);
            done += n;
        }
        cuts
    }

    fn deliver_to_server(&mut self) {
        let bytes = std::mem::take(&mut self.to_server);
        let cuts = Self::pieces(&self.client_splits, &mut self.split_at.0, bytes.len());
        let now = Timestamp::from_micros(self.now);
        let mut fed = 0;
        for n in cuts {
            self.server_inbox.extend_from_slice(&bytes[fed..fed + n]);
            fed += n;
            let consumed = self.session.handle_input(now, &self.server_inbox);
            assert!(
                consumed <= self.server_inbox.len(),
                "consumed more than given"
            );
            self.server_inbox.drain(..consumed);
        }
        assert!(
            self.server_inbox.is_empty(),
            "the server left {} bytes of a healthy client unread",
            self.server_inbox.len()
        );
    }

    fn deliver_to_client(&mut self) {
        let bytes = std::mem::take(&mut self.to_client);
        let cuts = Self::pieces(&self.server_splits, &mut self.split_at.1, bytes.len());
        let now = Timestamp::from_micros(self.now);
        let mut buf = Vec::new();
        let mut fed = 0;
        for n in cuts {
            buf.extend_from_slice(&bytes[fed..fed + n]);
            fed += n;
            let mut start = 0;
            loop {
                let received = self
                    .client
                    .handle_input(now, &buf[start..])
                    .expect("client fails on a healthy server");
                assert!(received.consumed <= buf.len() - start);
                // File data is the tail of the bytes consumed.
                assert!(
                    buf[start..start + received.consumed].ends_with(received.file_data),
                    "file data is not the tail of the consumed bytes"
                );
                self.downloaded.extend_from_slice(received.file_data);
                start += received.consumed;
                let mut events = 0;
                while let Some(event) = self.client.poll_event() {
                    events += 1;
                    self.client_events.push(event);
                }
                if received.consumed == 0 && events == 0 {
                    break;
                }
            }
            buf.drain(..start);
        }
        assert!(
            buf.is_empty(),
            "the client left {} bytes of a healthy server unread",
            buf.len()
        );
    }

    /// The store holds exactly the files the client was told it stored, each with the digest
    /// of its bytes, and no upload is under way between operations.
    fn assert_store_agrees(&self) {
        assert_eq!(
            self.store.names(),
            self.told.keys().cloned().collect::<Vec<_>>(),
            "the store's files are not the ones the client was told it stored"
        );
        for (name, bytes) in &self.told {
            let file = self.store.file(name).expect("listed above");
            assert!(*file.bytes == *bytes, "the store's {name:?} differs");
            assert_eq!(file.digest, Some(Digest::of(bytes)), "digest of {name:?}");
        }
        assert_eq!(self.store.uploads_under_way(), 0, "an upload is left open");
    }

    /// Everything still in flight arrives, both sides end idle, and nothing is left over.
    fn finish(&mut self) {
        for _ in 0..4 {
            self.step();
        }
        assert!(self.to_server.is_empty() && self.to_client.is_empty());
        assert!(!self.session.is_busy(), "a transfer is still open");
        assert!(
            self.client_events
                .iter()
                .all(|e| matches!(e, ClientEvent::Pong { .. })),
            "unclaimed events {:?}",
            self.client_events
        );
        self.assert_store_agrees();
        let now = Timestamp::from_micros(self.now);
        assert_eq!(self.client.handle_eof(now), Ok(()));
        self.session.handle_eof(now);
        assert_eq!(self.store.uploads_under_way(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::HASH_UNIT_LEN;

    #[test]
    fn a_pair_uploads_resumes_and_downloads() {
        pair(PairInput {
            ops: vec![
                PairOp::Put {
                    name: 1,
                    size: 2 * HASH_UNIT_LEN as u32 + 5,
                    seed: 3,
                    overwrite: false,
                    resume: true,
                    cancel_at: Some(HASH_UNIT_LEN as u32 + 10),
                    chunk: 4000,
                },
                PairOp::Query { name: 1, seed: 3 },
                PairOp::Put {
                    name: 1,
                    size: 2 * HASH_UNIT_LEN as u32 + 5,
                    seed: 3,
                    overwrite: false,
                    resume: true,
                    cancel_at: None,
                    chunk: 9000,
                },
                PairOp::Get {
                    name: 1,
                    resume_units: 1,
                    chunk: 777,
                },
                PairOp::List { prefix: 0 },
                PairOp::Remove { name: 1 },
                PairOp::Get {
                    name: 1,
                    resume_units: 0,
                    chunk: 1,
                },
                PairOp::Put {
                    name: 5,
                    size: 1,
                    seed: 0,
                    overwrite: false,
                    resume: false,
                    cancel_at: None,
                    chunk: 1,
                },
                PairOp::Ping(42),
            ],
            client_splits: vec![1, 7, 300],
            server_splits: vec![3, 0, 65535],
        });
    }
}
