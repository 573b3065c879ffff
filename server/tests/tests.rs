//! Integration tests of ferryd against a real server on loopback, all in one test binary.
#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing

mod support;

mod basics;
mod concurrency;
mod crash_points;
mod disk_full;
mod integrity;
mod limits;
mod memory_store;
mod names;
mod process;
mod resume;
mod s3;
mod scrub;
mod seed_compat;
mod shutdown;
mod symlinks;
mod timeouts;
mod tls;
mod tokens;
