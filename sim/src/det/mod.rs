//! The deterministic mode: no sockets, no threads, no clock.
//!
//! ```text
//!  SimClient ──ClientConnection──► Link (latency, bandwidth, segments, stall, cut) ──► ServerSide
//!      ▲                                                                                │
//!      └─────────────────────────── Link ◄──────────── ServerConnection ◄── Store ◄─────┘
//! ```
//!
//! One simulated server (a `ServerConnection` per connection over one in-memory store with
//! ferryd's rules) and a few clients, each running a plan drawn from the seed, talk through
//! simulated links. A world advances a virtual clock by always processing the earliest
//! pending event, so one seed always gives the same run: [`DetRun::trace`] is a hash of every
//! event, in order, and two runs of a seed give the same one.

mod client;
mod judge;
mod link;
mod server;
mod store;
mod world;

use std::time::Duration;

use ferry_protocol::Config;

pub use self::store::Sabotage;
use crate::plan::{PlanConfig, draw_plan};
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
}

impl Default for DetConfig {
    fn default() -> Self {
        DetConfig {
            clients: 3,
            hostile_clients: 1,
            plan: PlanConfig::deterministic(),
            sabotage: Sabotage::default(),
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
    let store = store::Store::new(config.sabotage);
    let mut world = world::World::new(seed, protocol, store, clients);
    world.run();
    let mut summary = world.summary;
    summary.finish();
    DetRun {
        summary,
        trace: world.trace,
    }
}

/// Runs seeds `first..first + count` and adds their summaries up.
pub fn run_seeds(first: u64, count: u64, config: &DetConfig) -> Summary {
    let mut total = Summary {
        mode: "deterministic".into(),
        seed: first,
        ..Summary::default()
    };
    for seed in first..first + count {
        total.absorb(run_seed(seed, config).summary);
    }
    total.finish();
    total
}
