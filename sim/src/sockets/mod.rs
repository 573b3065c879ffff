//! The socket mode: real `ferryd`s (one or more in-process nodes over one store — a folder, or
//! an S3 bucket shared by every node — or one server running elsewhere), many real
//! `ferry_client` clients on a rayon pool, each through its own fault-injecting relay, hostile
//! raw-socket clients mixed in, and every byte checked at the end.
//!
//! ```text
//!  rayon pool (one thread per client)
//!    client i ── ferry_client::Client ──► Relay i (latency, bandwidth, tiny segments,
//!        │                                        stall, cut at a byte)
//!        │                                   │ each new connection: the balancer's next node
//!        │                                   ▼ (round robin)
//!        │                              node 0, node 1, … ──► one store (folder or bucket)
//!        └─ hostile steps: raw sockets to the balancer's next node (size lies, wrong digests,
//!                                                        garbage, silence)
//!  afterwards: a fresh client on every node lists the run's files (the same on each) and the
//!  nodes in turn download everything, compared with the plans byte for byte
//! ```
//!
//! A cut connection that the client library retries goes to the next node the balancer
//! picks, so with several nodes an interrupted upload resumes on another node than the one it
//! began on.

mod balancer;
mod cluster;
mod hostile;
mod relay;
mod sink;
mod verify;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_client::ClientOptions;
use ferry_protocol::HASH_UNIT_LEN;
use rayon::prelude::*;

pub use self::balancer::Balancer;
use self::cluster::Cluster;
pub use self::relay::RelayConfig;
pub use self::sink::CompareSink;
use self::worker::{RunCtx, run_client};
use crate::plan::{HostileKind, PlanConfig, draw_plan};
use crate::report::Summary;
use crate::store::{StoreError, StoreSpec};

/// Why a socket run could not even start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The store could not be opened (its temporary folder, or its SeaweedFS).
    #[error(transparent)]
    Store(StoreError),
    /// More than one node over a folder.
    #[error(
        "{nodes} nodes need an object store to share (--store seaweedfs or --store \
         s3://BUCKET/PREFIX): nodes over a folder would each see only their own files"
    )]
    NodesNeedObjectStore {
        /// Nodes asked for.
        nodes: u32,
    },
    /// No nodes at all.
    #[error("a run needs at least one node")]
    NoNodes,
    /// A server running elsewhere with a store or nodes of the run's own.
    #[error(
        "a server running elsewhere (--server) keeps its own store and nodes: drop --store \
         and --nodes"
    )]
    ServerWithStore,
    /// An in-process server did not start.
    #[error("cannot start the in-process server: {0}")]
    Server(#[source] std::io::Error),
    /// The thread pool could not be built.
    #[error("cannot build a pool of {threads} threads: {message}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// What rayon said.
        message: String,
    },
}

/// The shape of a socket run.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Clients in all, hostile ones included.
    pub clients: u32,
    /// Every this many clients, one is hostile (0: none).
    pub hostile_every: u32,
    /// Seed of every choice.
    pub seed: u64,
    /// A server running elsewhere; `None` starts `nodes` in-process over `store`.
    pub server: Option<SocketAddr>,
    /// Where the in-process nodes keep files (default: a fresh temporary folder).
    pub store: StoreSpec,
    /// In-process nodes over the store, behind a round-robin balancer; more than one needs an
    /// object store.
    pub nodes: u32,
    /// Bytes per part of the nodes' uploads to an object store (`None`: the server's default).
    pub s3_part_size: Option<u64>,
    /// Plans.
    pub plan: PlanConfig,
    /// Inject stalls and cuts.
    pub faults: bool,
    /// The slowest bandwidth limit the relays draw, in bytes per second (default 256 KiB/s;
    /// raise it for runs with large files).
    pub slowest_link: u64,
    /// The clients' stall timeout (a stall fault lasts longer than this).
    pub io_timeout: Duration,
    /// In-process server's handshake timeout (how long a silent client lasts).
    pub server_handshake_timeout: Duration,
    /// In-process server's idle timeout.
    pub server_idle_timeout: Duration,
    /// The in-process server and the clients speak TLS (the clients pin the server's
    /// self-signed certificate). Hostile clients speak raw plaintext, so set `hostile_every`
    /// to 0 with it.
    pub tls: bool,
    /// **Test only**: start the in-process server with its digest check skipped, to show that
    /// the simulator catches a server that loses integrity.
    pub sabotage_skip_digest_check: bool,
    /// How the in-process nodes drive their connections.
    pub engine: ferry_server::Engine,
}

impl SocketConfig {
    /// A run of `clients` clients with faults, multi-MiB files and one hostile client in ten.
    pub fn new(clients: u32, seed: u64) -> Self {
        SocketConfig {
            clients,
            hostile_every: 10,
            seed,
            server: None,
            store: StoreSpec::TempFolder,
            nodes: 1,
            s3_part_size: None,
            plan: PlanConfig {
                min_steps: 3,
                max_steps: 8,
                max_size: 6 * 1024 * 1024,
                small_max: 3 * HASH_UNIT_LEN,
                large_chance: 0.04,
                shared_names: 3,
                hostile_kinds: HostileKind::ALL.to_vec(),
                many_chance: 0.1,
                many_max: 8,
            },
            faults: true,
            slowest_link: 256 * 1024,
            // Loaded 2-core machines take seconds to answer at times (fsync under a few
            // hundred uploads): a shorter stall timeout would see stalls that were not injected.
            io_timeout: Duration::from_secs(5),
            // Longer than the longest injected stall, so a stalled handshake completes (the
            // client library does not retry a handshake the server ended with `Timeout`).
            server_handshake_timeout: Duration::from_secs(8),
            server_idle_timeout: Duration::from_secs(6),
            tls: false,
            sabotage_skip_digest_check: false,
            engine: ferry_server::Engine::default(),
        }
    }

    /// A CI-sized run: small files, so that a debug build finishes well within a minute.
    pub fn ci(clients: u32, seed: u64) -> Self {
        let mut config = SocketConfig::new(clients, seed);
        config.plan.max_size = 512 * 1024;
        config.plan.small_max = HASH_UNIT_LEN + HASH_UNIT_LEN / 2;
        config.plan.max_steps = 6;
        config.plan.large_chance = 0.02;
        config
    }
}

/// Runs the simulation over sockets; the summary lists every breach found.
pub fn run(config: &SocketConfig) -> Result<Summary, SetupError> {
    let started = Instant::now();
    let cluster = Cluster::start(config)?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros());
    let options = ClientOptions {
        io_timeout: config.io_timeout,
        connect_timeout: Duration::from_secs(10),
        retries: 10,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(1),
        // Plaintext (ServerConfig::new's default, and what `--server` needs), or pinned TLS.
        security: cluster.security.clone(),
        ..ClientOptions::default()
    };
    let hostile_wait = if config.server.is_some() {
        Duration::from_secs(90)
    } else {
        config
            .server_idle_timeout
            .max(config.server_handshake_timeout)
            + Duration::from_secs(10)
    };
    let ctx = RunCtx {
        seed: config.seed,
        balancer: Arc::clone(&cluster.balancer),
        prefix: format!("sim-{}-{nonce}", config.seed),
        relay: RelayConfig {
            faults: config.faults,
            fault_chance: 0.3,
            max_faulty: 3,
            stall_min: config.io_timeout,
            slowest_link: config.slowest_link,
        },
        options,
        hostile_wait,
    };
    let threads = config.clients.max(1) as usize;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(512 * 1024)
        .thread_name(|i| format!("sim-client-{i}"))
        .build()
        .map_err(|error| SetupError::Pool {
            threads,
            message: error.to_string(),
        })?;
    let hostile =
        |id: u32| config.hostile_every > 0 && id % config.hostile_every == config.hostile_every - 1;
    let runs: Vec<_> = pool.install(|| {
        (0..config.clients)
            .into_par_iter()
            .map(|id| {
                let plan = draw_plan(config.seed, id, hostile(id), &config.plan);
                run_client(&ctx, id, hostile(id), plan)
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut summary = Summary {
        mode: "sockets".into(),
        seed: config.seed,
        seeds: 1,
        store: cluster.label.clone(),
        nodes: cluster.balancer.nodes().len() as u64,
        node_connections: cluster.balancer.connections(),
        ..Summary::default()
    };
    for run in &runs {
        summary.absorb(run.summary.clone());
    }
    verify::verify(&ctx, &runs, &mut summary);
    summary.elapsed_secs = elapsed.as_secs_f64();
    summary.finish();
    cluster.shutdown();
    Ok(summary)
}
