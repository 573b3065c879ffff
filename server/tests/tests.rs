//! Integration tests of ferryd against a real server on loopback, all in one test binary.
#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing

mod support;

mod basics;
mod concurrency;
mod config_file;
mod crash_points;
mod disk_full;
mod fuzz_corpus;
mod generated_docs;
mod integrity;
mod isolation;
mod json_logs;
mod limits;
mod memory_store;
mod metrics;
mod moves;
mod names;
mod pipelining;
mod process;
mod rate_limits;
mod resume;
mod s3;
mod scrub;
mod seed_compat;
mod service_syscalls;
mod service_unit;
mod session;
mod shutdown;
mod streamed;
mod symlinks;
mod timeouts;
mod tls;
mod tokens;
