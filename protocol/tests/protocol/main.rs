//! Cross-module tests of the protocol crate, in one test binary.
#![allow(clippy::unwrap_used)]

mod client_during;
mod client_machine;
mod codec_limits;
mod codec_props;
mod hashing;
mod moves;
mod names_and_values;
mod pair;
mod pair_props;
mod pair_tests;
mod pipelining;
mod raw;
mod server_during;
mod server_machine;
mod streamed;
