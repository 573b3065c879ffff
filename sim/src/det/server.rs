//! The simulated server: ferryd's real sessions over the real in-memory store, sharing one
//! [`Context`], on the simulator's virtual clock; crashed and restarted at seeded moments.
//!
//! Nothing here decides anything the server decides: the rules are `ferry_server::Session`'s
//! and the store's. This file only builds them ([`ServerConfig`] from the run's settings, a
//! [`MemoryStore`] that never waits), tells the store the time, plants the sabotage a test
//! asks for, and cuts the power.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{Config, HASH_UNIT_LEN, Timestamp};
use ferry_server::memory::{Faults, ManualClock, MemoryLimits, MemoryStore};
use ferry_server::{Context, ServerConfig, Store};

use super::driver::ServerEnd;

/// Bytes between durable checkpoints of an upload: one hash unit, so that the simulator's
/// files (mostly a few hash units or less) have checkpoints a crash can keep or lose.
pub(crate) const CHECKPOINT_INTERVAL: u64 = HASH_UNIT_LEN;

/// Bugs planted in the real server on purpose, to show that the simulator catches them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sabotage {
    /// The session stores an upload whose digest did not match
    /// (`ServerConfig::fault_skip_digest_check`; the client is still told `DigestMismatch`).
    pub skip_digest_check: bool,
    /// The store flips a bit of every committed file longer than a hash unit, after the digest
    /// check (`Faults::corrupt_commits`).
    pub corrupt_commits: bool,
    /// The store acknowledges commits before they are durable, so a crash loses them
    /// (`Faults::volatile_commits`).
    pub volatile_commits: bool,
}

/// One ferryd: the context its sessions share, its store, and the store's clock.
#[derive(Debug)]
pub(crate) struct SimServer {
    context: Context,
    store: MemoryStore,
    clock: ManualClock,
    /// How long a write waits for a client that stopped reading, µs (ferryd's write timeout).
    write_timeout: u64,
}

impl SimServer {
    /// A server with the protocol timeouts of `protocol`, over an empty store, broken as
    /// `sabotage` says.
    pub(crate) fn new(protocol: Config, sabotage: Sabotage) -> Self {
        let clock = ManualClock::new(Timestamp::ZERO);
        let limits = MemoryLimits {
            takeover_wait: Duration::ZERO,
            ..MemoryLimits::default()
        };
        let store = MemoryStore::new(limits, clock.clock());
        store.set_faults(Faults {
            corrupt_commits: sabotage.corrupt_commits,
            volatile_commits: sabotage.volatile_commits,
            ..Faults::default()
        });
        // The memory store never touches the root; it is only a required field.
        let mut config = ServerConfig::new(PathBuf::from("/nonexistent/ferry-det"));
        config.handshake_timeout = protocol.handshake_timeout;
        config.idle_timeout = protocol.idle_timeout;
        config.checkpoint_interval = CHECKPOINT_INTERVAL;
        config.fault_skip_digest_check = sabotage.skip_digest_check;
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        // The epoch is only read by the token guess caps, and this server has no tokens.
        let context = Context::new(config, shared, Instant::now());
        SimServer {
            context,
            store,
            clock,
            write_timeout: protocol.idle_timeout.as_micros() as u64,
        }
    }

    /// Tells the store the time; call it before anything happens at `now`.
    pub(crate) fn set_time(&self, now: u64) {
        self.clock.set(Timestamp::from_micros(now));
    }

    /// Accepts connection `id` at `now`.
    pub(crate) fn accept(&self, id: usize, now: u64) -> ServerEnd {
        ServerEnd::accept(&self.context, id, now, self.write_timeout)
    }

    /// The store, for the judge to read what is really held.
    pub(crate) fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// A power cut and a restart of the store: it keeps only what was durable. The caller then
    /// drops every session ([`ServerEnd::crash`]): afterwards, so that nothing a dropped
    /// session does on its way out reaches the store (its upload belongs to a boot that is
    /// over).
    pub(crate) fn crash(&self) {
        self.store.crash();
    }
}
