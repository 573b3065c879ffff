//! Seed compatibility: the original Python clients upload to ferryd unchanged.
//!
//! ferry grew from a classroom protocol whose clients are still around. With
//! [`ServerConfig::seed_compat`](crate::ServerConfig::seed_compat) set, the server opens a second,
//! plaintext listener on its own address that speaks exactly that protocol:
//!
//! ```text
//!  client                                   ferryd (seed-compat listener)
//!  size: u64 big-endian, name: UTF-8 ─────► header; the name ends when the client goes quiet
//!                                           (name_pause) — checks: name rules, size limit,
//!                                           quota, free space, name lock, existing name
//!        ◄───────────────────────────────── "go ahead"  (or a close: the only way to refuse)
//!  exactly `size` bytes, then close ───────► staged, hashed (BLAKE3) as it arrives; on the
//!                                           close: fsync, digest record, atomic rename
//! ```
//!
//! Why a separate address rather than recognising the old protocol on the main port by its
//! first bytes: the main port's policy (TLS, tokens) stays strict with no exception to get
//! wrong, and an 8-byte size is arbitrary bytes that only a guess could tell from anything else.
//!
//! Uploads go through a real server [`Session`](crate::session::Session), the one native
//! connections run: a bridge (`bridge`) turns the header into `HELLO` and `PUT`, the data into
//! `DATA` frames and the close into `DONE`, so the same name rules, size limit, quota, one upload
//! per name, staging, fsync and atomic rename apply, and the digest is recorded so a later
//! `ferry get` verifies the file. They differ where the old protocol gives no choice (the
//! session's `Origin::Original`): no token is asked for, there is no resume (a connection that
//! ends before `size` bytes leaves nothing, staged data included), more bytes than declared is
//! refused, the file appears only once the client closes after exactly `size` bytes, and every
//! refusal is a silent close that only the log explains. Connections count against the same
//! `max_connections`, each has its own thread, and the same handshake and idle timeouts apply
//! (the idle one kept by the session's machine).

mod bridge;
#[cfg(test)]
mod bridge_tests;
mod config;
mod connection;
mod header;
mod listener;

pub use config::{DEFAULT_SEED_NAME_PAUSE, SeedCompatConfig};
pub(crate) use listener::{SeedListener, bind};
