//! # ferry-transport
//!
//! The byte stream under the ferry protocol, the same for `ferryd` and the client: the TCP
//! socket itself (`--insecure`) or TLS 1.3 over it (PROTOCOL.md §10), with blocking reads and
//! writes of plaintext that keep the socket's timeouts.
//!
//! ```text
//!   protocol machine ⇄ plaintext bytes
//!                         │
//!                     Transport ── plain: the TcpStream itself
//!                         │     └─ TLS:   rustls::Connection (sans-IO) driven over the socket
//!                         ▼
//!                     TcpStream (read and write timeouts; `is_timeout` tells them apart)
//! ```
//!
//! - [`Transport`]: [`Read`](std::io::Read) and [`Write`](std::io::Write) in plaintext either
//!   way; under TLS a read that finds records but no plaintext yet, or nothing within the read
//!   timeout, fails with an error [`is_timeout`] recognises, so the caller can look at its
//!   clock; a write first pushes out what earlier writes encrypted and takes nothing when the
//!   peer takes nothing. [`Transport::handshake`] completes TLS by a deadline and
//!   [`Transport::finish`] ends it with a `close_notify`.
//! - [`Fingerprint`]: a certificate's SHA-256, shown and read as `SHA256:<hex>`.
//! - [`sniff`] and [`FirstByte`]: a TLS server tells a TLS client from a plaintext ferry
//!   client by the first byte, without taking it.
//! - [`TokenBucket`], [`RateLimit`], [`Paced`] and [`Pace`]: rate limits as pure logic told
//!   the time, a bucket several streams share, a stream that sleeps for what its limits say,
//!   and the same limits for an event loop, which waits on a timer instead.
//! - [`server_config`], [`client_config`]: the settings both ends share (TLS 1.3 only, the
//!   `ring` provider); whom a client trusts is its own verifier.
//!
//! ## Example
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::{Duration, Instant};
//! use ferry_transport::{Transport, is_timeout};
//!
//! # fn main() -> std::io::Result<()> {
//! let socket = TcpStream::connect("127.0.0.1:7070")?;
//! // Plaintext here; `Transport::tls_client(socket, config, name)` for TLS.
//! let mut stream = Transport::plain(socket);
//! stream.handshake(Instant::now() + Duration::from_secs(10)).map_err(std::io::Error::other)?;
//! stream.set_read_timeout(Some(Duration::from_secs(1)))?;
//! stream.write_all(&ferry_protocol::limits::MAGIC)?;
//! stream.flush()?;
//! let mut buf = [0u8; 1024];
//! match stream.read(&mut buf) {
//!     Ok(n) => println!("{n} bytes"),
//!     Err(error) if is_timeout(&error) => println!("nothing yet"),
//!     Err(error) => return Err(error),
//! }
//! stream.finish();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code, unused_must_use)]
#![deny(missing_docs)]

mod config;
mod fingerprint;
mod handshake;
mod paced;
mod rate;
mod sniff;
mod stream;
mod timeout;

pub use crate::config::{client_config, provider, server_config};
pub use crate::fingerprint::{Fingerprint, FingerprintError};
pub use crate::handshake::HandshakeError;
pub use crate::paced::{MAX_SLICE, Pace, Paced, RateLimit, SLICE_TIME};
pub use crate::rate::TokenBucket;
pub use crate::sniff::{FirstByte, sniff};
pub use crate::stream::Transport;
pub use crate::timeout::is_timeout;
