//! The `Pair` harness: a client machine and ferryd's real session wired back to back in memory,
//! with a virtual clock, a link that delivers bytes in pieces of seeded random size, and the
//! server's in-memory store behind the session. No sockets, no threads, no real time.

pub mod server;

use std::collections::VecDeque;
use std::time::Duration;

use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, FileHasher, HashCheckpoint,
    ListEntry, ProtocolError, SourceTag, Timestamp,
};
use ferry_server::ServerConfig;

pub use server::{Server, default_config};

/// Steps after which a drive is declared stuck: a livelock fails instead of hanging.
const MAX_STEPS: usize = 1_000_000;

/// SplitMix64: a tiny seeded generator so that every run is reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next_u64() % (high - low + 1) as u64) as usize
    }
}

/// File content generated from a seed.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// How the link cuts the byte stream into deliveries.
#[derive(Clone, Debug)]
pub enum Split {
    /// Everything in flight at once.
    Whole,
    /// Pieces of 1 to `max` bytes, drawn from a seed.
    Random { seed: u64, max: usize },
}

/// What one operation ended with, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored {
        offset: u64,
    },
    Downloaded {
        data: Vec<u8>,
        offset: u64,
        digest: Digest,
    },
    Listed(Vec<ListEntry>),
    Removed,
    Queried {
        stored_size: Option<u64>,
        stored_digest: Option<Digest>,
        partial_offset: Option<u64>,
    },
    Refused(ErrorCode),
    Cancelled {
        sent: u64,
    },
    Failed(ProtocolError),
}

/// An upload the client is sending.
struct Sending {
    data: Vec<u8>,
    pos: usize,
    offset: u64,
    digest: Digest,
    /// Stop and send CANCEL after this many data bytes, if set.
    cancel_after: Option<usize>,
}

/// The client driver's work in progress.
enum ClientOp {
    None,
    AwaitingPut {
        data: Vec<u8>,
        lie_digest: bool,
        cancel_after: Option<usize>,
    },
    Sending(Sending),
    AwaitingStored {
        offset: u64,
    },
    Getting {
        data: Vec<u8>,
        offset: u64,
    },
    Listing(Vec<ListEntry>),
    Waiting,
}

pub struct Pair {
    pub client: ClientConnection,
    /// ferryd's session and its store.
    pub server: Server,
    pub now: Timestamp,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    client_inbox: Vec<u8>,
    split: Split,
    /// Draws delivery sizes: depends on the split's seed.
    rng: Rng,
    /// Draws chunk sizes: the same for every split, so runs differ only in delivery.
    chunk_rng: Rng,
    op: ClientOp,
    outcome: Option<Outcome>,
    /// Every event the client saw, in order, for comparing runs (the server's bytes are in
    /// [`Server::sent`]).
    pub client_log: Vec<ClientEvent>,
    /// Bytes the client sent in file data (to show that resume sends only what is missing).
    pub data_bytes_sent: u64,
}

impl Pair {
    /// A connected pair, the server with ferryd's default settings.
    pub fn new(split: Split) -> Self {
        Self::with_config(split, default_config())
    }

    /// A connected pair, the server with `config`.
    pub fn with_config(split: Split, config: ServerConfig) -> Self {
        Self::with_server(split, Server::new(config, Timestamp::ZERO))
    }

    /// A connected pair with `server` (made at time zero).
    pub fn with_server(split: Split, server: Server) -> Self {
        let now = Timestamp::ZERO;
        let seed = match split {
            Split::Whole => 1,
            Split::Random { seed, .. } => seed,
        };
        let mut pair = Pair {
            client: ClientConnection::new(Config::default(), now, b"token").expect("token fits"),
            server,
            now,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_inbox: Vec::new(),
            split,
            rng: Rng::new(seed ^ 0x5eed),
            chunk_rng: Rng::new(42),
            op: ClientOp::Waiting,
            outcome: None,
            client_log: Vec::new(),
            data_bytes_sent: 0,
        };
        let connected = pair.run();
        assert_eq!(connected, None, "handshake produced an outcome");
        assert!(pair.client.is_idle(), "client not idle after handshake");
        pair
    }

    /// Runs until nothing moves; returns the operation's outcome, if it ended.
    fn run(&mut self) -> Option<Outcome> {
        for _ in 0..MAX_STEPS {
            let moved = self.step();
            if !moved {
                return self.outcome.take();
            }
        }
        panic!("pair did not settle within {MAX_STEPS} steps");
    }

    /// One step: a millisecond passes (deadlines that came are handled), each side transmits
    /// (the server at most one chunk or batch), one piece is delivered each way.
    fn step(&mut self) -> bool {
        self.now = self.now + Duration::from_millis(1);
        self.tick();
        let mut moved = self.client_send_data();
        moved |= self.flush();
        moved |= self.deliver_to_server();
        moved |= self.deliver_to_client();
        moved
    }

    /// Tells each side the time once its deadline has come; a client that times out ends the
    /// operation.
    fn tick(&mut self) {
        self.server.tick(self.now);
        if self
            .client
            .poll_timeout()
            .is_some_and(|due| due <= self.now)
            && let Err(error) = self.client.handle_timeout(self.now)
        {
            self.outcome = Some(Outcome::Failed(error));
            self.op = ClientOp::None;
        }
    }

    fn flush(&mut self) -> bool {
        let mut bytes = Vec::new();
        let mut moved = false;
        if self.client.poll_transmit(&mut bytes) > 0 {
            self.to_server.extend(bytes.drain(..));
            moved = true;
        }
        if self.server.transmit(&mut bytes) {
            self.to_client.extend(bytes.drain(..));
            moved = true;
        }
        moved
    }

    fn piece(&mut self, available: usize) -> usize {
        match self.split {
            Split::Whole => available,
            Split::Random { max, .. } => available.min(self.rng.range(1, max)),
        }
    }

    fn deliver_to_server(&mut self) -> bool {
        let n = self.piece(self.to_server.len());
        let piece: Vec<u8> = self.to_server.drain(..n).collect();
        let taken = self.server.receive(self.now, piece);
        n > 0 || taken
    }

    fn deliver_to_client(&mut self) -> bool {
        let n = self.piece(self.to_client.len());
        if n == 0 && self.client_inbox.is_empty() {
            return false;
        }
        let mut inbox = std::mem::take(&mut self.client_inbox);
        inbox.extend(self.to_client.drain(..n));
        let mut start = 0;
        loop {
            let received = match self.client.handle_input(self.now, &inbox[start..]) {
                Ok(received) => received,
                Err(error) => {
                    self.outcome = Some(Outcome::Failed(error));
                    self.op = ClientOp::None;
                    break;
                }
            };
            start += received.consumed;
            if let ClientOp::Getting { data, .. } = &mut self.op {
                data.extend_from_slice(received.file_data);
            } else {
                assert!(
                    received.file_data.is_empty(),
                    "file data outside a download"
                );
            }
            let had_events = self.client_events();
            if received.consumed == 0 && !had_events {
                break;
            }
        }
        inbox.drain(..start);
        self.client_inbox = inbox;
        n > 0 || start > 0
    }

    fn client_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.client.poll_event() {
            any = true;
            self.client_log.push(event.clone());
            let op = std::mem::replace(&mut self.op, ClientOp::None);
            self.op = match (op, event) {
                (
                    ClientOp::AwaitingPut {
                        data,
                        lie_digest,
                        cancel_after,
                    },
                    ClientEvent::PutReady { offset },
                ) => {
                    let mut digest = Digest::of(&data);
                    if lie_digest {
                        digest.0[0] ^= 1;
                    }
                    ClientOp::Sending(Sending {
                        pos: offset as usize,
                        data,
                        offset,
                        digest,
                        cancel_after,
                    })
                }
                (ClientOp::AwaitingStored { offset }, ClientEvent::PutStored) => {
                    self.outcome = Some(Outcome::Stored { offset });
                    ClientOp::None
                }
                (_, ClientEvent::GetReady { offset, .. }) => ClientOp::Getting {
                    data: Vec::new(),
                    offset,
                },
                (ClientOp::Getting { data, offset }, ClientEvent::GetVerified { digest }) => {
                    self.outcome = Some(Outcome::Downloaded {
                        data,
                        offset,
                        digest,
                    });
                    ClientOp::None
                }
                (ClientOp::Listing(mut entries), ClientEvent::ListEntry(entry)) => {
                    entries.push(entry);
                    ClientOp::Listing(entries)
                }
                (ClientOp::Listing(entries), ClientEvent::ListEnd) => {
                    self.outcome = Some(Outcome::Listed(entries));
                    ClientOp::None
                }
                (_, ClientEvent::Removed) => {
                    self.outcome = Some(Outcome::Removed);
                    ClientOp::None
                }
                (
                    _,
                    ClientEvent::QueryReply {
                        stored_size,
                        stored_digest,
                        partial_offset,
                    },
                ) => {
                    self.outcome = Some(Outcome::Queried {
                        stored_size,
                        stored_digest,
                        partial_offset,
                    });
                    ClientOp::None
                }
                (_, ClientEvent::Refused { code, .. }) => {
                    self.outcome = Some(Outcome::Refused(code));
                    ClientOp::None
                }
                (op, ClientEvent::Connected { .. } | ClientEvent::Pong { .. }) => op,
                (_, other) => panic!("unexpected client event {other:?}"),
            };
        }
        any
    }

    /// The client driver sends one chunk of its upload, or finishes it.
    fn client_send_data(&mut self) -> bool {
        let ClientOp::Sending(sending) = &mut self.op else {
            return false;
        };
        let sent = sending.pos as u64 - sending.offset;
        if sending
            .cancel_after
            .is_some_and(|limit| sent >= limit as u64)
        {
            self.client.cancel_upload().expect("cancel while sending");
            self.outcome = Some(Outcome::Cancelled { sent });
            self.op = ClientOp::None;
            return true;
        }
        if sending.pos == sending.data.len() {
            self.client
                .finish_upload(sending.digest)
                .expect("finish after all bytes");
            self.op = ClientOp::AwaitingStored {
                offset: sending.offset,
            };
            return true;
        }
        let mut max = self.chunk_rng.range(1, 200_000);
        if let Some(limit) = sending.cancel_after {
            max = max.min(limit - sent as usize);
        }
        let end = sending.data.len().min(sending.pos + max);
        let chunk = &sending.data[sending.pos..end];
        self.client
            .send_file_data(chunk)
            .expect("chunk within limits");
        let mut header = Vec::new();
        self.client.poll_transmit(&mut header);
        self.to_server.extend(header);
        self.to_server.extend(chunk.iter().copied());
        self.data_bytes_sent += chunk.len() as u64;
        sending.pos = end;
        true
    }

    // ----- operations -----

    pub fn put(&mut self, name: &str, data: &[u8], overwrite: bool, resume: bool) -> Outcome {
        self.put_with(name, data, overwrite, resume, false, None)
    }

    pub fn put_with(
        &mut self,
        name: &str,
        data: &[u8],
        overwrite: bool,
        resume: bool,
        lie_digest: bool,
        cancel_after: Option<usize>,
    ) -> Outcome {
        self.client
            .put(name, data.len() as u64, overwrite, resume, tag_of(data))
            .expect("client accepts put");
        self.op = ClientOp::AwaitingPut {
            data: data.to_vec(),
            lie_digest,
            cancel_after,
        };
        self.run().expect("put ended")
    }

    /// A streamed upload (version 3): no size up front; the client machine tells it in
    /// `DONE_SIZED` from what it counted.
    pub fn put_streamed(&mut self, name: &str, data: &[u8], overwrite: bool) -> Outcome {
        self.put_streamed_with(name, data, overwrite, None)
    }

    /// A streamed upload, cancelled after `cancel_after` bytes if set.
    pub fn put_streamed_with(
        &mut self,
        name: &str,
        data: &[u8],
        overwrite: bool,
        cancel_after: Option<usize>,
    ) -> Outcome {
        self.client
            .put_streamed(name, overwrite)
            .expect("client accepts a streamed put");
        self.op = ClientOp::AwaitingPut {
            data: data.to_vec(),
            lie_digest: false,
            cancel_after,
        };
        self.run().expect("put ended")
    }

    pub fn get(&mut self, name: &str, checkpoint: HashCheckpoint) -> Outcome {
        self.client
            .get(name, checkpoint)
            .expect("client accepts get");
        self.op = ClientOp::Waiting;
        self.run().expect("get ended")
    }

    pub fn list(&mut self, prefix: &str) -> Outcome {
        self.client.list(prefix).expect("client accepts list");
        self.op = ClientOp::Listing(Vec::new());
        self.run().expect("list ended")
    }

    pub fn remove(&mut self, name: &str) -> Outcome {
        self.client.remove(name).expect("client accepts remove");
        self.op = ClientOp::Waiting;
        self.run().expect("remove ended")
    }

    pub fn query(&mut self, name: &str, data: &[u8]) -> Outcome {
        self.client
            .query(name, tag_of(data))
            .expect("client accepts query");
        self.op = ClientOp::Waiting;
        self.run().expect("query ended")
    }
}

/// The tag a client would derive for `data`: here its length and first bytes.
pub fn tag_of(data: &[u8]) -> SourceTag {
    let digest = Digest::of(
        &[
            &(data.len() as u64).to_le_bytes()[..],
            &data[..data.len().min(64)],
        ]
        .concat(),
    );
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&digest.0[..16]);
    SourceTag(tag)
}

/// The hash state of `data`'s first bytes, rounded down to a unit: what a client holding a
/// partial download would resume with.
pub fn checkpoint_of(data: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(data);
    hasher.checkpoint()
}
