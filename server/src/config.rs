//! What a server is told at start: where to store, where to listen, and its limits.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Tokens;
use crate::seed_compat::SeedCompatConfig;
use crate::store::s3::S3Config;
use crate::tls::TlsIdentity;

/// Default listen address of the `ferryd` binary (the library's [`ServerConfig::new`] uses an
/// ephemeral port instead, for tests and embedding).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// Default bound on concurrent connections: each one is a thread with bounded buffers
/// (about 0.5 MiB of buffers and a small stack), so a thousand fit comfortably.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default bound of the `ferryd` binary on concurrent connections from one address: a quarter
/// of the default connection limit, so that one host (or a NAT in front of a few) cannot take
/// every slot. The library's [`ServerConfig::new`] sets no such bound (tests and embedders
/// connect from one address).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// How ferryd drives its connections. Both run the same [`Session`](crate::Session); they
/// differ only in how bytes and time reach it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// A thread per connection, blocking on its socket (`connection/`).
    Threads,
    /// A few event-loop threads with readiness I/O (mio) for all connections, and a bounded
    /// pool that runs the sessions' store calls (`events/`).
    #[default]
    Events,
}

impl Engine {
    /// The engine's name, as `--engine` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Threads => "threads",
            Engine::Events => "events",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> Result<Engine, String> {
        match text {
            "threads" => Ok(Engine::Threads),
            "events" => Ok(Engine::Events),
            other => Err(format!("unknown engine {other:?}: say threads or events")),
        }
    }
}

/// Default largest file accepted: 1 TiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 40;

/// Default bytes between durable checkpoints of an upload: a crash loses at most this much
/// received data, and each checkpoint costs one `fdatasync`.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 64 * 1024 * 1024;

/// Default bytes per part of an upload to an object store: each part is one request, kept in
/// memory until sent (S3 takes parts of 5 MiB to 5 GiB).
pub const DEFAULT_S3_PART_SIZE: u64 = 8 * 1024 * 1024;

/// Configuration of a [`Server`](crate::Server). Build it with [`ServerConfig::new`] and change
/// the fields you need; every field has a working default.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Storage root. Created if missing. Files are stored under their names inside it; the
    /// server's own bookkeeping lives in hidden `.ferry-*` folders inside it. With
    /// [`ServerConfig::object_store`] set, files live in the bucket instead and this folder only
    /// holds the node's own state (its TLS identity).
    pub root: PathBuf,
    /// Files in an S3-compatible bucket instead of `root`, when set. Several servers (nodes)
    /// given the same bucket and prefix serve one namespace: an upload interrupted on one node
    /// resumes on any other.
    pub object_store: Option<S3Config>,
    /// Bytes per part of uploads to the object store (see [`DEFAULT_S3_PART_SIZE`]; at least
    /// 5 MiB).
    pub s3_part_size: u64,
    /// Address to listen on. [`ServerConfig::new`] uses `127.0.0.1:0` (an ephemeral port; ask
    /// [`ServerHandle::local_addr`](crate::ServerHandle::local_addr) which one).
    pub listen: SocketAddr,
    /// Most connections served at once; past it a new client gets a `Busy` refusal at once.
    pub max_connections: usize,
    /// Most connections served at once from one IP address, if bounded; past it a new client
    /// from that address gets a `Busy` refusal at once (see [`DEFAULT_MAX_CONNECTIONS_PER_IP`]).
    pub max_connections_per_ip: Option<NonZeroUsize>,
    /// How connections are driven (see [`Engine`]).
    pub engine: Engine,
    /// Largest file size accepted; larger uploads are refused with `TooLarge` before any data.
    pub max_file_size: u64,
    /// Most bytes stored in all (visible files plus partial uploads), `None` for no limit.
    /// Uploads that would pass it are refused with `OverQuota` before any data.
    pub quota: Option<u64>,
    /// Longest wait for a new client's magic and `HELLO`.
    pub handshake_timeout: Duration,
    /// Longest silence from a client while the server waits for it: a request, or the next
    /// data of an upload. Also bounds how long a download may wait for a client that stops
    /// reading. A stalled upload ends after this and stays resumable.
    pub idle_timeout: Duration,
    /// Partial uploads untouched for longer than this are deleted (at start and periodically).
    pub staging_max_age: Duration,
    /// On shutdown, how long transfers under way may continue before they are ended (uploads
    /// then stay resumable).
    pub shutdown_grace: Duration,
    /// Bytes between durable checkpoints of an upload's data and hash state (see
    /// [`DEFAULT_CHECKPOINT_INTERVAL`]).
    pub checkpoint_interval: u64,
    /// A second, plaintext listener for the original Python clients, off when `None`
    /// (see [`SeedCompatConfig`]).
    pub seed_compat: Option<SeedCompatConfig>,
    /// TLS 1.3 under the protocol when set; plaintext when `None` ([`ServerConfig::new`]'s
    /// default, for tests and embedding; the `ferryd` binary turns TLS on unless told
    /// `--insecure`). A plaintext client is answered with a plaintext `NotAuthorised` error.
    pub tls: Option<TlsIdentity>,
    /// Accepted access tokens; `None` lets every client in with full rights.
    pub tokens: Option<Tokens>,
    /// Serve Prometheus metrics on `GET /metrics` at this address; off when `None`.
    pub metrics: Option<SocketAddr>,
    /// Most bytes per second all connections together move, both directions counted; shared
    /// fairly (each connection takes small turns). No limit when `None`.
    pub limit_rate: Option<NonZeroU64>,
    /// Most bytes per second each connection moves, both directions counted. No limit when
    /// `None`.
    pub limit_rate_per_connection: Option<NonZeroU64>,
    /// **Test only** (feature `faults`). Makes the server deliberately broken: an upload whose
    /// data does not match its digest is stored anyway (the client is still told
    /// `DigestMismatch`). Exists so the simulator can prove it catches a server that loses
    /// integrity. Never set it otherwise.
    #[cfg(feature = "faults")]
    #[doc(hidden)]
    pub fault_skip_digest_check: bool,
    /// **Test only** (feature `faults`). Simulates a full disk: a write that would take an
    /// upload's staged data past this many bytes fails with "no space left on device".
    #[cfg(feature = "faults")]
    #[doc(hidden)]
    pub fault_disk_full_after: Option<u64>,
}

impl ServerConfig {
    /// A configuration storing under `root`, listening on `127.0.0.1:0`, with the defaults:
    /// 1024 connections (none bounded per address), the default [`Engine`], 1 TiB files, no quota, 10 s handshake and 60 s idle timeouts, partial
    /// uploads kept 7 days, 10 s shutdown grace, no rate limits.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ServerConfig {
            root: root.into(),
            object_store: None,
            s3_part_size: DEFAULT_S3_PART_SIZE,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: None,
            engine: Engine::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            quota: None,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            staging_max_age: Duration::from_secs(7 * 24 * 60 * 60),
            shutdown_grace: Duration::from_secs(10),
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            seed_compat: None,
            tls: None,
            tokens: None,
            metrics: None,
            limit_rate: None,
            limit_rate_per_connection: None,
            #[cfg(feature = "faults")]
            fault_skip_digest_check: false,
            #[cfg(feature = "faults")]
            fault_disk_full_after: None,
        }
    }

    /// Whether an upload whose digest did not match is to be stored anyway: the test-only
    /// `fault_skip_digest_check` (feature `faults`).
    #[cfg(feature = "faults")]
    pub(crate) fn skips_digest_check(&self) -> bool {
        self.fault_skip_digest_check
    }

    /// Whether an upload whose digest did not match is to be stored anyway: never, in a build
    /// without the `faults` feature.
    #[cfg(not(feature = "faults"))]
    pub(crate) fn skips_digest_check(&self) -> bool {
        false
    }

    /// The protocol machine's timeouts.
    pub(crate) fn protocol(&self) -> ferry_protocol::Config {
        ferry_protocol::Config {
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}
