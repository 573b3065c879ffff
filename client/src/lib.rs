//! # ferry-client
//!
//! The ferry client library: upload, download, list and remove files on a ferry server, with
//! every transfer verified end to end by its BLAKE3 digest, and lost or stalled connections
//! retried and resumed by themselves. The `ferry` command line is a thin layer over it.
//!
//! ```text
//!   Client ── retrying: reconnect with backoff, resume ──┐
//!     │                                                   │
//!     ├─ Upload   (source → DATA frames, whole-file digest, resume from PUT_READY offset)
//!     ├─ Download (DATA → sink, resume from the local hash checkpoint)
//!     └─ Link     one TcpStream (plain, or TLS 1.3: ferry_transport::Transport) driving a
//!                 ferry_protocol::ClientConnection
//! ```
//!
//! ## Security
//!
//! [`ClientOptions::security`] chooses TLS 1.3 (the default) and whom to trust: certificates
//! from well-known authorities ([`Trust::WebPki`], the default), one pinned certificate
//! ([`Trust::Pinned`], the fingerprint `ferryd` prints), or trust on first use recorded in a
//! known-servers file ([`Trust::KnownServers`], what the `ferry` command does). A changed
//! certificate is refused with [`ClientError::CertificateChanged`]. [`Security::Insecure`]
//! speaks plaintext, to a server run with `--insecure`.
//!
//! ## Example
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use ferry_client::{Client, ClientOptions, GetOptions, PutOptions, Security, Trust, display_name};
//!
//! # fn main() -> Result<(), ferry_client::ClientError> {
//! // A self-signed ferryd: trust it on first use, as the `ferry` command does.
//! let options = ClientOptions {
//!     security: Security::Tls(Trust::KnownServers(PathBuf::from("known_servers"))),
//!     ..ClientOptions::default()
//! };
//! let mut client = Client::connect("127.0.0.1:7070", options)?;
//! let mut show = |p: ferry_client::Progress| eprintln!("{}/{} bytes", p.done, p.total);
//! let put = client.put_file(Path::new("report.pdf"), "docs/report.pdf", &PutOptions::default(), &mut show)?;
//! println!("stored {} ({} bytes, blake3 {})", put.name, put.size, put.digest);
//! for entry in client.list("docs/")? {
//!     // A server may list any name: print it escaped.
//!     println!("{} {}", entry.size, display_name(&entry.name));
//! }
//! client.get_file("docs/report.pdf", Path::new("copy.pdf"), &GetOptions::default(), &mut |_| {})?;
//! client.remove("docs/report.pdf")?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Streams
//!
//! [`Client::put_reader`] uploads a stream of unknown length (standard input), its size told
//! at the end; a stream cannot be re-read, so it never resumes. [`Client::get_to`] downloads
//! into any `Write`.
//!
//! ## Sync and stat
//!
//! [`sync`] makes a server folder match a local one or the other way round, skipping files
//! whose size and digest already match; [`Client::stat`] tells a stored file's size,
//! modification time and digest without downloading it.
//!
//! ## Names
//!
//! A name is a relative path in Unicode NFC with no invisible or bidirectional characters
//! (PROTOCOL.md §6; [`Client`] checks it before sending). [`name_from_local`] turns a local file
//! name into a name component, in NFC; [`display_name`] escapes a name for printing, since a
//! server may list names that break the rules.
//!
//! ## Guarantees
//!
//! - An upload returns `Ok` only when the server has verified its digest and made it durable,
//!   or, without overwrite, when the server already holds a file of the same size and BLAKE3
//!   digest under the name ([`PutOutcome::AlreadyStored`]: a re-run after a lost `ACK`).
//! - A download returns `Ok` only when every byte matched the server's digest;
//!   [`Client::get_file`] writes a partial file beside the target and renames it into place
//!   only then.
//! - A digest mismatch is [`ClientError::Integrity`], never a success.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod display;
mod download;
mod eager_window;
mod error;
mod existing;
mod files;
mod known_servers;
mod link;
mod local_name;
mod options;
mod pipeline;
mod queries;
mod remote_file;
mod requests;
mod retry;
mod security;
mod streamed;
pub mod sync;
mod tag;
mod time;
mod tls;
mod upload;

pub use crate::client::Client;
pub use crate::display::{display_name, display_text};
pub use crate::eager_window::{EAGER_MAX, WINDOW_BYTES, WINDOW_REQUESTS};
pub use crate::error::{
    ClientError, EXIT_CONNECTION, EXIT_INTEGRITY, EXIT_OK, EXIT_OTHER, EXIT_REFUSED, EXIT_USAGE,
};
pub use crate::files::{PARTIAL_SUFFIX, partial_path};
pub use crate::known_servers::{config_dir, record as record_known_server};
pub use crate::local_name::name_from_local;
pub use crate::options::{
    ClientOptions, GetOptions, GetReport, Progress, PutOptions, PutOutcome, PutReport,
};
pub use crate::pipeline::Done;
pub use crate::remote_file::RemoteFile;
pub use crate::retry::RetryPolicy;

/// The client's transfer logic without sockets or clocks, for drivers other than [`Client`]
/// (the deterministic simulator drives the same code the library does).
pub mod transfer {
    pub use crate::download::{Download, DownloadAttempt};
    pub use crate::eager_window::{Answer, EagerWindow};
    pub use crate::requests::{Held, Listing, Move, Query, Removal};
    pub use crate::retry::RetryPolicy;
    pub use crate::upload::{Finished, Upload, UploadAttempt};
}
pub use crate::security::{Security, Trust};
pub use crate::tag::{file_tag, name_tag};
pub use crate::time::utc_time;
pub use ferry_protocol::{Digest, ErrorCode, ListEntry, NameError, SourceTag, validate_name};
pub use ferry_transport::{Fingerprint, FingerprintError};
