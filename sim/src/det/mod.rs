//! The deterministic mode: no sockets, no threads, no clock.
//!
//! ```text
//!  SimClient ──ClientConnection──► Link (latency, bandwidth, segments, stall, cut) ──► ServerEnd
//!      ▲                                                                                 │
//!      │                                                   ferry_server::Session (ferryd's)
//!      │                                                                                 │
//!      └───────────────────────── Link ◄──── poll_transmit ◄── MemoryStore (durable or not)
//!                                                               ▲ crash(): a power cut
//! ```
//!
//! One simulated ferryd — the real `ferry_server::Session` for every connection, all sharing
//! one `Context` over the real in-memory store (`ferry_server::memory::MemoryStore`) — and a
//! few clients, each running a plan drawn from the seed, talk through simulated links. At
//! seeded moments the server crashes: the store keeps only what was durable, every session
//! is dropped without a word, and the clients reconnect to the restarted server and resume.
//! A world advances a virtual clock by always processing the earliest pending event, so one
//! seed always gives the same run: [`DetRun::trace`] is a hash of every event, in order, and
//! two runs of a seed give the same one.
//!
//! The clients move bytes and judge outcomes; what they send and what each answer means is
//! the client library's own sans-IO transfer logic (`ferry_client::transfer`: `UploadAttempt`,
//! `DownloadAttempt`, `EagerWindow` for batches pipelined on one connection, the small
//! requests, `RetryPolicy`), with a retry loop like the library's around it.

mod client;
mod driver;
mod judge;
mod link;
mod server;
mod world;

use std::time::Duration;

use ferry_protocol::Config;
use rand::RngExt;
use rayon::prelude::*;

pub use self::server::Sabotage;
use crate::plan::{PlanConfig, draw_plan, rng_for};
use crate::report::Summary;

/// The shape of a deterministic run.
#[derive(Clone, Debug)]
pub struct DetConfig {
    /// Well-behaved clients.
    pub clients: u32,
    /// Hostile clients (they also run ordinary steps).
    pub hostile_clients: u32,
    /// Plans.
    pub plan: PlanConfig,
    /// Deliberate server bugs, to show that the simulator catches them.
    pub sabotage: Sabotage,
    /// Server crashes: the chance that a run has any, and then how many at most (drawn
    /// uniformly from 1 to this, each at a moment drawn from the first
    /// [`DetConfig::crash_window`] of virtual time).
    pub crash_chance: f64,
    /// Most crashes in a run that has any.
    pub max_crashes: u32,
    /// The stretch of virtual time crash moments are drawn from.
    pub crash_window: Duration,
}

impl Default for DetConfig {
    fn default() -> Self {
        DetConfig {
            clients: 3,
            hostile_clients: 1,
            plan: PlanConfig::deterministic(),
            sabotage: Sabotage::default(),
            crash_chance: 0.3,
            max_crashes: 3,
            crash_window: Duration::from_secs(10),
        }
    }
}

/// The result of one deterministic run.
#[derive(Debug)]
pub struct DetRun {
    /// Counters and breaches.
    pub summary: Summary,
    /// Hash of every event processed, in order.
    pub trace: u64,
}

/// Runs seed `seed`.
pub fn run_seed(seed: u64, config: &DetConfig) -> DetRun {
    let protocol = Config {
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
    };
    let total = config.clients + config.hostile_clients;
    let clients = (0..total)
        .map(|id| {
            let hostile = id >= config.clients;
            let plan = draw_plan(seed, id, hostile, &config.plan);
            client::SimClient::new(seed, id, hostile, plan, protocol)
        })
        .collect();
    let server = server::SimServer::new(protocol, config.sabotage);
    let crashes = draw_crashes(seed, config);
    let mut world = world::World::new(seed, server, crashes, clients);
    world.run();
    let mut summary = world.summary;
    summary.finish();
    DetRun {
        summary,
        trace: world.trace,
    }
}

/// The moments, in virtual µs, at which the server of run `seed` crashes.
fn draw_crashes(seed: u64, config: &DetConfig) -> Vec<u64> {
    // Its own stream of draws, so that the crashes never shift the clients' plans.
    let mut rng = rng_for(seed, u64::MAX, 7);
    if config.max_crashes == 0 || !rng.random_bool(config.crash_chance.clamp(0.0, 1.0)) {
        return Vec::new();
    }
    let window = config.crash_window.as_micros().max(1) as u64;
    let count = rng.random_range(1..=config.max_crashes);
    (0..count).map(|_| rng.random_range(0..window)).collect()
}

/// Runs seeds `first..first + count` and adds their summaries up. Seeds run in parallel
/// (each is a world of its own); their summaries are added in seed order, so the total is the
/// same however the seeds were spread over threads.
pub fn run_seeds(first: u64, count: u64, config: &DetConfig) -> Summary {
    let mut total = Summary {
        mode: "deterministic".into(),
        seed: first,
        ..Summary::default()
    };
    let runs: Vec<Summary> = (first..first + count)
        .into_par_iter()
        .map(|seed| run_seed(seed, config).summary)
        .collect();
    for summary in runs {
        total.absorb(summary);
    }
    total.finish();
    total
}
