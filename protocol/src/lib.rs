//! # ferry-protocol
//!
//! The ferry wire protocol without I/O: a frame codec and the client and server connection
//! state machines. Nothing here opens a socket or a file, spawns a thread or reads a clock:
//! bytes and commands go in, bytes to send, events and "file data" come out, and the current
//! time is an argument. The full specification is `protocol/PROTOCOL.md`.
//!
//! ```text
//!   driver (server/ or client/)                 this crate
//!   ───────────────────────────                 ──────────
//!   socket bytes ──────────────► handle_input(now, &buf) ──► Received { consumed, file_data }
//!   EOF ───────────────────────► handle_eof(now)                         │
//!   timer fired ───────────────► handle_timeout(now)            file_data ─► write to file
//!   user / storage decision ───► commands (put, accept_put, ...)
//!                                poll_event()     ──► events to act on
//!                                poll_transmit()  ──► bytes for the socket
//!                                poll_timeout()   ──► when to call handle_timeout
//! ```
//!
//! ## The drain contract
//!
//! After every input (`handle_*`) or command, drain [`ServerConnection::poll_event`] (or the
//! client's) until `None` and send what `poll_transmit` gives, then ask `poll_timeout`.
//! `handle_input` stops after any event, and reads nothing while the server owes a decision, so
//! events and file data are always seen in stream order. Errors from the peer are fatal and
//! sticky: every later call returns the same [`ProtocolError`], and the `ERROR` frame telling
//! the peer why is still queued, so flush `poll_transmit` before closing.
//!
//! File data is never copied by the machines: the receiving side returns it as a slice of the
//! caller's input (already counted and hashed); the sending side frames a chunk with
//! `send_file_data`, which queues only the 5-byte header, and the caller writes the chunk itself.
//!
//! ```no_run
//! use ferry_protocol::{Config, ServerConnection, ServerEvent, Timestamp, HashCheckpoint};
//! # fn read_socket(_: &mut [u8]) -> usize { 0 }
//! # fn write_socket(_: &[u8]) {}
//! # fn write_file(_: &[u8]) {}
//! let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
//! let mut input = Vec::new();
//! let mut out = Vec::new();
//! let mut chunk = vec![0u8; 64 * 1024];
//! loop {
//!     let n = read_socket(&mut chunk);
//!     let now = Timestamp::from_micros(0); // from the driver's clock
//!     if n == 0 {
//!         let _ = conn.handle_eof(now);
//!         break;
//!     }
//!     input.extend_from_slice(&chunk[..n]);
//!     let mut start = 0;
//!     loop {
//!         let Ok(received) = conn.handle_input(now, &input[start..]) else { break };
//!         start += received.consumed;
//!         write_file(received.file_data);
//!         while let Some(event) = conn.poll_event() {
//!             match event {
//!                 ServerEvent::ClientHello { .. } => conn.accept_client().unwrap(),
//!                 ServerEvent::PutRequested(_) => conn.accept_put(&HashCheckpoint::start()).unwrap(),
//!                 _ => {}
//!             }
//!         }
//!         if received.consumed == 0 {
//!             break;
//!         }
//!     }
//!     input.drain(..start);
//!     conn.poll_transmit(&mut out);
//!     write_socket(&out);
//!     out.clear();
//!     if conn.is_closed() {
//!         break;
//!     }
//! }
//! ```
#![forbid(unsafe_code, unused_must_use)]
#![deny(missing_docs)]

mod client;
mod core;
mod digest;
mod error;
mod frame;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod limits;
mod name;
mod server;
mod time;
mod transfer;
pub mod units;
mod wire;

pub use crate::client::{ClientConnection, ClientEvent, ListEntry};
pub use crate::core::{Config, Received};
pub use crate::digest::{
    CheckpointError, DIGEST_LEN, Digest, FileHasher, HASH_UNIT_LEN, HashCheckpoint,
};
pub use crate::error::{CommandError, ErrorCode, ProtocolError};
pub use crate::frame::{DecodeError, Frame, SourceTag, decode_frame};
pub use crate::name::{NameError, is_reserved, validate_name, validate_prefix};
pub use crate::server::{PutRequest, ServerConnection, ServerEvent};
pub use crate::time::Timestamp;
