//! # ferry-sim
//!
//! The proof that ferry holds under load and trouble: many clients, injected network faults
//! and hostile peers, and every byte checked afterwards.
//!
//! - [`det`]: the deterministic mode. ferryd's real session (`ferry_server::Session`) over the
//!   real in-memory store, and the protocol's client machine, wired together through
//!   simulated links on a virtual clock, with server crashes that keep only what was durable;
//!   no sockets, no threads; one seed, one run.
//! - [`sockets`]: the socket mode. Real `ferryd` nodes (one, or several over one object store
//!   behind a round-robin balancer) and hundreds of real `ferry_client` clients on a rayon
//!   pool, each behind a fault-injecting TCP relay, hostile raw-socket clients mixed in, and
//!   every byte checked after the run.
//! - [`crash`]: the crash mode. A real server process killed with `SIGKILL` at random
//!   moments under a mixed load of real clients, restarted on the same root, every visible
//!   file checked against what the clients sent and were told, every interrupted upload run
//!   again at the end.
//! - [`store`]: where the nodes keep files (`--store`): a folder, an S3 bucket, or a private
//!   SeaweedFS started for the run.
//! - [`content`]: file content generated from the seed, so nothing is kept twice.
//! - [`plan`]: what each client does, drawn from the seed.
//! - [`report`]: breaches and the summary table.
//!
//! ## Running it
//!
//! ```text
//! cargo run --release -p ferry-sim -- --clients 500 --seed 1     # sockets, in-process ferryd
//! cargo run --release -p ferry-sim -- --server 127.0.0.1:7070    # a ferryd running elsewhere
//! cargo run --release -p ferry-sim -- --deterministic --seeds 10000 --seed 0
//! cargo run --release -p ferry-sim -- --clients 200 --small --json
//! cargo run --release -p ferry-sim -- crash --kills 120 --seed 1
//! cargo run --release -p ferry-sim -- --clients 60 --nodes 3 --store seaweedfs
//! AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… cargo run --release -p ferry-sim -- \
//!     --nodes 3 --store s3://BUCKET/PREFIX --s3-endpoint http://127.0.0.1:8333
//! ```
//!
//! `--store` says where the in-process servers keep files: a fresh temporary folder (the
//! default), a folder, `s3://BUCKET/PREFIX` (a running S3 service at `--s3-endpoint`, region
//! `--s3-region`, default `us-east-1`, keys from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`), or `seaweedfs` (a private SeaweedFS started for the run under a
//! fresh prefix and stopped after it; `weed` from `FERRY_WEED` or `PATH`). `--nodes N` starts N
//! servers over that one store behind a round-robin balancer (N > 1 needs an object store), so
//! a client whose connection is cut resumes on another node; the report gives the connections
//! each node was given and how many uploads resumed mid-file on another node.
//!
//! Every run prints its seed; any breach prints the seed, the client, the step and (for data)
//! the first differing byte, and the process exits non-zero. The same seed gives the same
//! plans and the same fault draws; in the deterministic mode it gives the very same run.
//!
//! ## What is checked
//!
//! - every upload that was acknowledged is on the server byte for byte (downloaded through the
//!   nodes in turn: nothing reads the store directly, so a bucket is checked like a folder);
//! - every node lists the same files (one namespace over the shared store);
//! - every download equals its source;
//! - no failed, cancelled or lying upload is visible under its name;
//! - every hostile client gets the one error its misbehaviour deserves;
//! - every injected fault (stall, cut) is followed by a resume or an expected error;
//! - the server still answers a fresh client afterwards, and the run ends (a livelock is a
//!   breach).
#![forbid(unsafe_code, unused_must_use)]
#![deny(missing_docs)]

pub mod content;
pub mod crash;
pub mod det;
pub mod plan;
pub mod report;
pub mod sockets;
pub mod store;
