//! The server end of the pair harness: ferryd's real session (`ferry_server::Session`) over the
//! in-memory store, driven in memory on the harness's virtual clock. Every decision (refuse,
//! resume, store, serve) is the server's own; this file only moves bytes and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ferry_protocol::Timestamp;
use ferry_server::memory::{ManualClock, MemoryLimits, MemoryStore};
use ferry_server::{Context, ServerConfig, Session};

/// A root the configuration names but the session never touches: the files live in the store.
const UNUSED_ROOT: &str = "unused-by-the-memory-store";

/// The address the session believes its client has (TEST-NET-1, never reached).
const PEER: &str = "192.0.2.1:40000";

/// The server's settings the pair runs with unless a test gives its own: ferryd's defaults.
pub fn default_config() -> ServerConfig {
    ServerConfig::new(UNUSED_ROOT)
}

/// One connection's server side: the session, its store, and the bytes it has yet to read.
pub struct Server {
    session: Session,
    /// A handle on the store the session runs over, for the tests to look into.
    pub store: MemoryStore,
    /// Bytes delivered that the session has not taken yet (an incomplete frame).
    inbox: Vec<u8>,
    /// Every byte the session sent, in order, for comparing runs.
    pub sent: Vec<u8>,
}

impl Server {
    /// A session with `config` over a new, empty in-memory store, accepted at `now`. The
    /// store's clock stands still at zero: listing dates then do not depend on how many steps
    /// a split took, so runs that differ only in their split send the same bytes.
    pub fn new(config: ServerConfig, now: Timestamp) -> Server {
        Server::with_limits(config, MemoryLimits::default(), now)
    }

    /// A session as [`Server::new`] makes, over a store with `limits` (quota, disk size).
    pub fn with_limits(config: ServerConfig, limits: MemoryLimits, now: Timestamp) -> Server {
        let store = MemoryStore::new(limits, ManualClock::default().clock());
        let context = Context::new(config, Arc::new(store.clone()), Instant::now());
        let peer: SocketAddr = PEER.parse().expect("a valid socket address");
        Server {
            session: Session::new(context, peer, now),
            store,
            inbox: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Hands `bytes` to the session, with what it left unread before; returns whether it took
    /// any.
    pub fn receive(&mut self, now: Timestamp, bytes: impl IntoIterator<Item = u8>) -> bool {
        self.inbox.extend(bytes);
        if self.inbox.is_empty() {
            return false;
        }
        let consumed = self.session.handle_input(now, &self.inbox);
        self.inbox.drain(..consumed);
        consumed > 0
    }

    /// Appends to `out` what the session sends next (its frames, or one chunk of a download or
    /// batch of a listing); returns whether it sent anything.
    pub fn transmit(&mut self, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let added = self.session.poll_transmit(out);
        self.sent.extend_from_slice(&out[start..]);
        added > 0
    }

    /// Tells the session the time when its deadline has come.
    pub fn tick(&mut self, now: Timestamp) {
        if self.session.poll_timeout().is_some_and(|due| due <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// Places a file under `name` as someone outside the server would.
    pub fn store_file(&mut self, name: &str, bytes: &[u8]) {
        self.store.insert(name, bytes);
    }

    /// The bytes stored under `name`, if a file is visible there.
    pub fn stored(&self, name: &str) -> Option<Vec<u8>> {
        self.store.file(name).map(|file| file.bytes.to_vec())
    }
}
