//! Cross-module tests of the protocol crate, in one test binary.
#![allow(clippy::unwrap_used)]

mod codec_props;
mod pair;
mod pair_props;
mod pair_tests;
mod pipelining;
