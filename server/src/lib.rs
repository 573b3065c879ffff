//! # ferry-server
//!
//! `ferryd`, the ferry file-transfer server, as a library: tests, the simulator and the
//! benchmark start it in-process on port 0; the `ferryd` binary is a thin command line over it.
//!
//! ```no_run
//! use ferry_server::{Server, ServerConfig};
//!
//! let server = Server::start(ServerConfig::new("./ferry-data"))?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Design
//!
//! ```text
//!  accept thread ──► over the limit? ── yes ─► BUSY + close (never waits on the client)
//!        │ no
//!        ▼
//!  driver, bytes and time in and out, nothing else (ServerConfig::engine):
//!    events/      (default) a few mio event loops for every connection; every session call
//!                 runs on a bounded pool, never on a loop thread
//!    connection/  one thread per connection, blocking on its socket
//!        │ handle_input / handle_timeout / handle_eof / poll_transmit / poll_timeout
//!        ▼
//!  session/: every rule of the server, sans-IO — the protocol machine, the token's grant,
//!        │    the upload or download under way
//!        ▼
//!  store/: the Store interface, with its errors and locks
//!        ├── folder/   storage root/  visible files, by name (subfolders allowed)
//!        │                  .ferry-staging/  partial uploads: <key>.part + <key>.ckpt hash state
//!        │                  .ferry-meta/     digest records, where files cannot hold their
//!        │                                   own (`user.ferry.digest`)
//!        └── s3/       a bucket shared by several nodes
//! ```
//!
//! - **Names** resolve strictly inside the root: the protocol's `validate_name` runs first,
//!   then every file and folder is reached through the root's folder handle with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`, so the kernel refuses a
//!   symbolic link or a way out at the moment of each call, whatever a local user swaps
//!   meanwhile. The server's own folders are made 0700 and refused at start if they are a
//!   symbolic link or another user's.
//! - **Uploads** go to staging, are fsynced, checked against the client's digest, and renamed
//!   into place atomically (with `RENAME_NOREPLACE` when the client did not ask to overwrite,
//!   so an existing name is never replaced by a race). Only then does the client get its `ACK`.
//!   A crash at any step of a commit leaves the old file or the whole new one, and a visible
//!   file never shares its data with a staged one that a later upload could write to.
//! - **One upload per name at a time**: a second client uploading the same name while one is
//!   under way is refused with `InProgress` and may retry later. The exception is the same
//!   client file (same name and source tag) arriving on a new connection, which is a client
//!   reconnecting after a cut the server has not noticed: the old connection stands down
//!   (leaving its upload resumable) and the new one resumes it. A name that exists is refused
//!   with `AlreadyExists` unless the client asked to overwrite.
//! - **Resume** costs only the missing bytes: every `checkpoint_interval` bytes, and whenever an
//!   upload is interrupted, the data is `fdatasync`ed and then the BLAKE3 state is saved beside
//!   it. A resumed upload truncates the data to the checkpoint and continues hashing from the
//!   saved state, never rereading what is stored. Partial uploads older than
//!   `staging_max_age` are removed.
//! - **Downloads** stream from an open handle with a bounded buffer, so a replacement of the
//!   file during a download leaves the reader with the old version whole.
//! - **Bounds**: per-connection memory is bounded (256 KiB in, a batch out) and paid only
//!   while data flows: an idle connection holds no buffer, on either engine. At most
//!   `max_connections` are served, and `max_connections_per_ip` from one address. Sizes above the file
//!   limit, the quota or the free space are refused before any data moves; a disk that fills
//!   during an upload ends it with `DiskFull`, leaving it resumable.
//! - **Slow and silent peers**: the handshake must end within `handshake_timeout` of the
//!   accept (however slowly its bytes trickle); `idle_timeout` of silence from a client the
//!   server waits for ends the connection (an upload stays resumable), counted from the
//!   server's own last move so a long download or commit never counts against the client; a
//!   client that stops reading a download is dropped after `idle_timeout` without progress.
//! - **Original clients**: with [`ServerConfig::seed_compat`] set, a second, plaintext listener
//!   takes uploads from the clients of the original protocol (size, name, `go ahead`, data)
//!   through the same upload code; they cannot resume and are refused by a silent close.
//! - **TLS and tokens** (PROTOCOL.md §10): with [`ServerConfig::tls`] set, each connection
//!   is TLS 1.3 (rustls, `ring`, through `ferry_transport`, the client's transport too), driven
//!   in the same loop as the protocol machine; the first byte tells a TLS client from a
//!   plaintext one, which is answered in plaintext that TLS is required.
//!   [`TlsIdentity::load_or_create`] makes and keeps a self-signed certificate. With
//!   [`ServerConfig::tokens`], the `HELLO`'s token must match a hashed entry (constant-time);
//!   its rights and folder then bound every request; wrong tokens are logged, and capped per
//!   address and overall before any token is looked at.
//!   [`ServerConfig::new`] leaves both off; the `ferryd` binary turns TLS on by default.
//! - **Storage** is behind the [`Store`] interface: the folder above, an S3-compatible bucket
//!   ([`ServerConfig::object_store`]), or any store handed to [`Server::start_with_store`]. With
//!   the `memory-store` feature, `memory::MemoryStore` keeps the same promises in memory, on a
//!   clock it is given, and can be told to fill up, answer slowly, be lost, or lose power
//!   (keeping only what was durable): the simulator and tests run the real server over it.
//! - **Scrub**: [`scrub()`] (`ferryd scrub`) re-reads every stored file beside or without a
//!   running server, changing nothing, and reports each one whose bytes no longer match the
//!   digest recorded when it was stored, or that has none.
//! - **Metrics**: with [`ServerConfig::metrics`] set, `GET /metrics` on that address answers
//!   the OpenMetrics text page (`prometheus-client`): connections open, accepted and refused by
//!   reason, bytes in and out, finished transfers by operation and outcome with their duration
//!   and size, staging bytes, every store call's latency and failures (timed by one wrapper
//!   around whichever store serves), and failed TLS handshakes; labels never carry a name.
//! - **Rate limits**: [`ServerConfig::limit_rate`] caps all connections together and
//!   [`ServerConfig::limit_rate_per_connection`] each one, both directions counted. The
//!   connection threads pace their own socket (`ferry_transport::Paced`: downloads wait before
//!   each slice written, uploads after each slice read, so TCP slows the client); the overall
//!   bucket serves connections in turn, in slices of at most 64 KiB, so each gets an even share.
//!   The sessions never wait and never know.
//! - **Shutdown** stops accepting, refuses new requests, gives transfers a grace period and then
//!   ends them; uploads stay resumable, and after a `kill -9` no partial file is ever visible.
#![forbid(unsafe_code, unused_must_use)]
#![deny(missing_docs)]

mod auth;
mod config;
mod confined;
mod connection;
mod events;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod metrics;
mod scrub;
mod seed_compat;
mod server;
pub mod session;
mod store;
mod tls;
mod transfer_log;

pub use crate::auth::{
    MIN_TOKEN_BITS, Rights, Tokens, TokensError, WeakToken, check_token_strength, generate_token,
    token_line,
};
pub use crate::config::{
    DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_FILE_SIZE, DEFAULT_S3_PART_SIZE, Engine,
    ServerConfig,
};
pub use crate::confined::StateFolderError;
pub use crate::scrub::{
    Finding, FindingKind, Progress, ScrubError, ScrubOptions, ScrubReport, scrub,
};
pub use crate::seed_compat::{DEFAULT_SEED_NAME_PAUSE, SeedCompatConfig};
pub use crate::server::{Server, ServerHandle};
pub use crate::session::{Context, Session};
pub use crate::store::error::StorageError;
pub use crate::store::locks::Waker;
#[cfg(feature = "memory-store")]
pub use crate::store::memory;
pub use crate::store::s3::{S3Config, S3Error, S3UrlError};
pub use crate::store::{Entry, FileContent, Held, Left, OpenedFile, StagedUpload, Store, Upload};
pub use crate::tls::{CERT_FILE, DEFAULT_STATE_DIR, KEY_FILE, TlsError, TlsIdentity};
pub use ferry_transport::Fingerprint;
