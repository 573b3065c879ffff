//! ferryd itself, in-process, over the in-memory store (`Server::start_with_store`): the
//! server's real rules, with files a test can place and inspect without a disk. Plaintext, so
//! a [`super::relay::Relay`] in front can read what crosses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_server::memory::{ManualClock, MemoryLimits, MemoryStore};
use ferry_server::{Server, ServerConfig, ServerHandle};

/// A root the configuration names but the server never touches: the files live in the store.
const UNUSED_ROOT: &str = "unused-by-the-memory-store";

/// How long a test waits for the server to notice that a connection is gone.
const NOTICE: Duration = Duration::from_secs(10);

/// A running ferryd over an in-memory store.
pub struct MemoryServer {
    /// The running server.
    pub handle: ServerHandle,
    /// A handle on its store, to place files and look at them.
    pub store: MemoryStore,
}

impl MemoryServer {
    /// Starts ferryd (plaintext, default settings) on a free loopback port, over an empty
    /// store. An upload of the same client file on a new connection waits for the old one to
    /// stand down, as over the folder store.
    pub fn start() -> MemoryServer {
        let limits = MemoryLimits {
            takeover_wait: Duration::from_secs(5),
            ..MemoryLimits::default()
        };
        let store = MemoryStore::new(limits, ManualClock::default().clock());
        let mut config = ServerConfig::new(UNUSED_ROOT);
        config.shutdown_grace = Duration::from_millis(100);
        let handle = Server::start_with_store(config, Arc::new(store.clone())).unwrap();
        MemoryServer { handle, store }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The bytes of the file `name`, if one is visible.
    pub fn stored(&self, name: &str) -> Option<Vec<u8>> {
        self.store.file(name).map(|file| file.bytes.to_vec())
    }

    /// Waits until no upload is under way: the server has noticed every cut connection and
    /// left its upload resumable.
    pub fn wait_for_no_upload(&self) {
        let deadline = Instant::now() + NOTICE;
        while self.store.uploads_under_way() > 0 {
            assert!(
                Instant::now() < deadline,
                "an upload is still under way after {NOTICE:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
