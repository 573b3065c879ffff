//! The transport over real loopback sockets: plaintext and TLS round trips, timeouts, and the
//! handshake's failures. One test binary (see STYLE.md).
#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing

mod plain;
mod support;
mod tls;
