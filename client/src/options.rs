//! Settings of a client and of each transfer, and what a transfer reports.

use std::num::NonZeroU64;
use std::time::Duration;

use ferry_protocol::limits::DEFAULT_DATA_CHUNK;
use ferry_protocol::{Digest, SourceTag};

use crate::security::Security;

/// Settings of a [`Client`](crate::Client), shared by all its operations.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Access token presented to the server (empty for none).
    pub token: Vec<u8>,
    /// TLS and whom to trust, or plaintext. The default is TLS accepting only certificates
    /// from well-known authorities; against a self-signed `ferryd`, pin its fingerprint or use
    /// a known-servers file (see [`Trust`](crate::Trust)).
    pub security: Security,
    /// The server's host name, checked against a certificate from an authority and used as
    /// its key (with the port) in a known-servers file. `None` uses its IP address.
    pub server_name: Option<String>,
    /// Longest wait to open a connection and complete the handshake.
    pub connect_timeout: Duration,
    /// Stall detection: longest time without any progress (no byte sent or received, no reply)
    /// before the connection counts as lost and is retried.
    pub io_timeout: Duration,
    /// How many times a lost or stalled operation is retried on a new connection.
    pub retries: u32,
    /// First pause before a retry; it doubles on each further retry up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest pause between retries.
    pub max_backoff: Duration,
    /// Continue interrupted transfers where they stopped (on the server for uploads, from the
    /// local partial file for downloads) instead of starting over.
    pub resume: bool,
    /// Bytes of file data per `DATA` frame (at most [`MAX_DATA_CHUNK`](ferry_protocol::limits::MAX_DATA_CHUNK)).
    pub chunk_size: usize,
    /// Most bytes per second this client moves, sent and received counted together (its
    /// connections one after another share it; each [`Client`](crate::Client) has its own).
    /// No limit when `None`.
    pub limit_rate: Option<NonZeroU64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: Vec::new(),
            security: Security::default(),
            server_name: None,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            retries: 8,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            resume: true,
            chunk_size: DEFAULT_DATA_CHUNK,
            limit_rate: None,
        }
    }
}

/// Settings of one upload. The default is a resumable upload that does not overwrite.
#[derive(Clone, Debug)]
pub struct PutOptions {
    /// Replace a file already stored under the name.
    pub overwrite: bool,
    /// Continue a partial upload the server holds for this source (also requires
    /// [`ClientOptions::resume`]).
    pub resume: bool,
    /// Identity of the source, so that a partial upload is only ever completed with bytes of
    /// the same source. `None` derives one from the name and size ([`put_file`] derives it
    /// from the local file instead).
    ///
    /// [`put_file`]: crate::Client::put_file
    pub tag: Option<SourceTag>,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            overwrite: false,
            resume: true,
            tag: None,
        }
    }
}

/// Settings of one download to a local file.
#[derive(Clone, Debug)]
pub struct GetOptions {
    /// Continue from a partial file left by an earlier, interrupted download (also requires
    /// [`ClientOptions::resume`]).
    pub resume: bool,
}

impl Default for GetOptions {
    fn default() -> Self {
        GetOptions { resume: true }
    }
}

/// Progress of one transfer, passed to the progress callback after every chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the file known to be at the destination or on their way there.
    pub done: u64,
    /// Size of the file (for an upload from a stream, [`Client::put_reader`], whose size is
    /// not known in advance: the bytes read so far).
    ///
    /// [`Client::put_reader`]: crate::Client::put_reader
    pub total: u64,
    /// Which attempt this is: 1 for the first connection, 2 after the first retry, ...
    pub attempt: u32,
}

/// How a successful upload ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// The server stored the bytes this upload sent (in this run, possibly over several
    /// attempts).
    Uploaded,
    /// An upload that may not overwrite found a file with the same size and BLAKE3 digest
    /// already stored under the name (typically one whose `ACK` was lost): nothing was sent
    /// and the stored file was left untouched.
    AlreadyStored,
}

/// What a completed upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutReport {
    /// Name on the server.
    pub name: String,
    /// Size of the file.
    pub size: u64,
    /// BLAKE3 digest of the file, as the server verified it (for
    /// [`PutOutcome::AlreadyStored`]: as the server recorded it, equal to the local file's).
    pub digest: Digest,
    /// Whether this upload stored the file or found it stored already.
    pub outcome: PutOutcome,
    /// Offset the last attempt started from (above 0 when it resumed).
    pub resumed_from: u64,
    /// Attempts made, 1 if no retry was needed.
    pub attempts: u32,
    /// File bytes sent over the network in all attempts.
    pub bytes_sent: u64,
}

/// What a completed download did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetReport {
    /// Name on the server.
    pub name: String,
    /// Size of the file.
    pub size: u64,
    /// BLAKE3 digest of the file, verified against the server's.
    pub digest: Digest,
    /// Offset the last attempt started from (above 0 when it resumed).
    pub resumed_from: u64,
    /// Attempts made, 1 if no retry was needed.
    pub attempts: u32,
    /// File bytes received over the network in all attempts.
    pub bytes_received: u64,
}
