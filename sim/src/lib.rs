//! # ferry-sim
//!
//! The proof that ferry holds under load and trouble: many clients, injected network faults
//! and hostile peers, and every byte checked afterwards.
//!
//! - [`det`]: the deterministic mode. The protocol's client and server machines wired together
//!   through simulated links on a virtual clock; no sockets, no threads; one seed, one run.
//! - [`sockets`]: the socket mode. A real `ferryd` and hundreds of real `ferry_client`
//!   clients on a rayon pool, each behind a fault-injecting TCP relay, hostile raw-socket
//!   clients mixed in, and every byte checked after the run.
//! - [`content`]: file content generated from the seed, so nothing is kept twice.
//! - [`plan`]: what each client does, drawn from the seed.
//! - [`report`]: breaches and the summary table.
#![forbid(unsafe_code, unused_must_use)]
#![deny(missing_docs)]

pub mod content;
pub mod det;
pub mod plan;
pub mod report;
pub mod sockets;
