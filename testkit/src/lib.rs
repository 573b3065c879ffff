//! # ferry-testkit
//!
//! Test fixtures for ferry that have no place in `ferryd` itself: a private SeaweedFS
//! ([`SeaweedFs`]) that the server's tests, the client's tests, the simulator and the
//! benchmark start to run the object-store backend against a real S3 service; the replay of
//! committed fuzz corpora ([`corpus`]); and the check for tools some tests need ([`tools`]).
//!
//! ```no_run
//! use ferry_testkit::SeaweedFs;
//!
//! // `None` when `weed` is not installed and FERRY_REQUIRE_SEAWEEDFS is not `1`.
//! if let Some(weed) = SeaweedFs::for_tests() {
//!     let mut config = ferry_server::ServerConfig::new("./node-state");
//!     config.object_store = Some(weed.config(&SeaweedFs::unique_prefix("example")));
//! }
//! ```
//!
//! The server's fault switches (a server that stores uploads whose digest failed, a disk
//! that fills) are not here: they are fields of `ferry_server::ServerConfig` that exist only
//! with that crate's `faults` feature, which the tests and the simulator turn on and release
//! builds of `ferryd` leave off.
#![forbid(unsafe_code, unused_must_use)]
#![deny(missing_docs)]

pub mod corpus;
pub mod seaweedfs;
pub mod tools;

pub use crate::seaweedfs::SeaweedFs;
