//! Integration tests of ferryd against a real server on loopback, all in one test binary.
#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing

mod support;

mod basics;
mod integrity;
mod names;
mod resume;
