//! The server's side of one connection, without sockets or clocks: every rule of ferryd lives
//! here, once.
//!
//! A [`Session`] owns the protocol machine ([`ServerConnection`]), what the client's token
//! allows, the upload or download under way and a handle on the store. A driver (a thread per
//! connection today) only moves bytes and time in and out, with the protocol crate's grammar:
//!
//! ```text
//!  bytes read ──► handle_input(now, bytes) ─► bytes consumed
//!  end of stream ──► handle_eof(now)           transport broken ──► handle_lost(reason)
//!  deadline passed ──► handle_timeout(now)     shutdown ──► handle_shutdown(now, past_grace)
//!  poll_transmit(&mut out) ──► bytes to write (frames, download data, listing entries)
//!  poll_timeout() ──► when to call handle_timeout        is_closed() ──► flush, then close
//! ```
//!
//! After every input, drain [`Session::poll_transmit`] until it gives nothing, then look at
//! [`Session::is_closed`] and [`Session::poll_timeout`]. Downloads and listings are pulled:
//! each `poll_transmit` adds at most one chunk of file data or one batch of entries, so memory
//! stays bounded however large the file or the listing. The machine alone keeps the handshake
//! and idle deadlines; the idle wait starts when the server has answered, so time the server
//! spends on a commit or a download never counts against the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ferry_protocol::{Digest, ErrorCode, ServerConnection, SourceTag, Timestamp};

use crate::auth::Grant;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::store::error::StorageError;
use crate::store::locks::Waker;
use crate::store::{Left, Store, Upload};
use crate::transfer_log::Ending;

mod commits;
mod outgoing;
mod requests;

use commits::Verified;
use outgoing::Outgoing;

/// What every session of one server shares: its settings, where its files live, and the
/// instant its timestamps count from (a value, not a clock: the session never reads the time).
#[derive(Debug, Clone)]
pub struct Context {
    /// The server's settings.
    pub(crate) config: Arc<ServerConfig>,
    /// Where the files live.
    pub(crate) store: Arc<dyn Store>,
    /// The instant `Timestamp::ZERO` stands for (the token guess caps count in `Instant`s).
    pub(crate) epoch: Instant,
    /// What the server counts.
    pub(crate) metrics: Arc<Metrics>,
}

impl Context {
    /// What the sessions of a server with `config`, over `store`, share; `epoch` is the
    /// instant `Timestamp::ZERO` stands for.
    pub fn new(config: ServerConfig, store: Arc<dyn Store>, epoch: Instant) -> Context {
        Context {
            config: Arc::new(config),
            store,
            epoch,
            metrics: Arc::default(),
        }
    }

    fn instant(&self, now: Timestamp) -> Instant {
        self.epoch + std::time::Duration::from_micros(now.as_micros())
    }
}

/// Whether the server is shutting down, as the driver last said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// No new requests; transfers under way go on.
    Stopping,
    /// Transfers under way end now.
    PastGrace,
}

/// Which protocol the client speaks: the session's rules differ only where the original
/// protocol gives no choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A ferry client.
    Native,
    /// An original client, through the seed-compat listener (see `crate::seed_compat`): it has
    /// no token to show (the listener is open by configuration) and no way to resume, so an
    /// upload it leaves unfinished is deleted rather than kept.
    Original,
}

/// The server's side of one connection.
pub struct Session {
    context: Context,
    conn: ServerConnection,
    peer: SocketAddr,
    origin: Origin,
    /// What the client's token allows (everything when the server has no tokens).
    grant: Grant,
    upload: Option<Upload>,
    /// Uploads verified in the current burst of input, oldest first, waiting to commit.
    verified: Vec<Verified>,
    /// A download or listing being sent.
    outgoing: Option<Outgoing>,
    phase: Phase,
    /// How the driver is woken when a newer connection takes this one's upload over.
    waker: Option<Waker>,
    /// When the connection was accepted, and how many streamed uploads it began: together
    /// with the peer's address they make each streamed upload's tag.
    opened: Timestamp,
    streams: u64,
}

impl Session {
    /// A session for a connection from `peer`, accepted at `opened` (the handshake deadline
    /// counts from there, however slowly the client's bytes trickle in).
    pub fn new(context: Context, peer: SocketAddr, opened: Timestamp) -> Session {
        Session::with_origin(context, peer, opened, Origin::Native)
    }

    /// A session for an original client's upload carried by the seed-compat listener: no
    /// token is asked for, and its upload is never kept unfinished.
    pub(crate) fn for_original_client(
        context: Context,
        peer: SocketAddr,
        opened: Timestamp,
    ) -> Session {
        Session::with_origin(context, peer, opened, Origin::Original)
    }

    fn with_origin(
        context: Context,
        peer: SocketAddr,
        opened: Timestamp,
        origin: Origin,
    ) -> Session {
        Session {
            conn: ServerConnection::new(context.config.protocol(), opened),
            context,
            peer,
            origin,
            grant: Grant::full(),
            upload: None,
            verified: Vec::new(),
            outgoing: None,
            phase: Phase::Serving,
            waker: None,
            opened,
            streams: 0,
        }
    }

    /// A tag for the next streamed upload of this connection, unlike any other upload's. A
    /// streamed upload never resumes (PROTOCOL.md §7), so its tag is the server's, not the
    /// client's: another upload to the same name is then refused as in progress instead of
    /// taking this one over as a reconnecting client's resume would.
    fn stream_tag(&mut self) -> SourceTag {
        self.streams += 1;
        let seed = format!(
            "streamed upload {} {} {}",
            self.peer,
            self.opened.as_micros(),
            self.streams
        );
        let mut tag = [0; 16];
        tag.copy_from_slice(&Digest::of(seed.as_bytes()).0[..16]);
        SourceTag(tag)
    }

    /// Gives the session a way to wake its driver when a newer connection of the same client
    /// takes its upload over (the driver may be waiting for input that will never come).
    pub fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }

    /// Feeds bytes read from the client; returns how many were taken (keep the rest and offer
    /// it again with more, or alone once the output has drained: a pipelined request waits
    /// while a download is sent). File data goes to the upload under way; requests are decided
    /// on the store; uploads verified in these bytes commit together before this returns.
    pub fn handle_input(&mut self, now: Timestamp, bytes: &[u8]) -> usize {
        let mut start = 0;
        while !self.conn.is_closed() {
            let received = match self.conn.handle_input(now, &bytes[start..]) {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(peer = %self.peer, "closing the connection: {error}");
                    self.interrupt_upload(&error.to_string());
                    break;
                }
            };
            start += received.consumed;
            if !received.file_data.is_empty() {
                self.receive_file_data(received.file_data);
            }
            let mut any_event = false;
            while let Some(event) = self.conn.poll_event() {
                any_event = true;
                self.handle_event(now, event);
            }
            if received.consumed == 0 && !any_event {
                // The machine may stop before a request that must wait for the group's answers.
                if self.verified.is_empty() {
                    break;
                }
                self.flush_commits();
            }
        }
        self.flush_commits();
        start
    }

    /// The client closed its side of the connection (or the driver was woken for a takeover).
    pub fn handle_eof(&mut self, now: Timestamp) {
        self.check_superseded();
        if let Err(error) = self.conn.handle_eof(now) {
            tracing::debug!(peer = %self.peer, "client left: {error}");
        }
        self.interrupt_upload("client closed the connection");
        self.end_outgoing("client gone before the end");
    }

    /// The transport broke (a read or write failed): nothing more can be sent, and the driver
    /// closes the connection.
    pub fn handle_lost(&mut self, reason: &str) {
        tracing::debug!(peer = %self.peer, "connection lost: {reason}");
        self.interrupt_upload(reason);
        self.end_outgoing(&format!("client gone: {reason}"));
    }

    /// Tells the session the time: a client silent past its deadline is closed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let Err(error) = self.conn.handle_timeout(now) {
            tracing::warn!(peer = %self.peer, "closing a silent connection: {error}");
            self.interrupt_upload("client went silent");
        }
    }

    /// The server is shutting down: no new requests (an idle connection is told so and
    /// closed); with `past_grace`, transfers under way end too (an upload stays resumable).
    /// Call it again as long as the server stops: a transfer that ends is followed by the close.
    pub fn handle_shutdown(&mut self, _now: Timestamp, past_grace: bool) {
        if self.conn.is_closed() {
            return;
        }
        self.phase = self.phase.max(if past_grace {
            Phase::PastGrace
        } else {
            Phase::Stopping
        });
        if !self.is_busy() {
            let _ = self
                .conn
                .refuse_connection(ErrorCode::ShuttingDown, "the server is shutting down");
        } else if self.phase == Phase::PastGrace {
            let reason = match self.outgoing {
                Some(_) => "the server is shutting down; resume the download later",
                None => "the server is shutting down",
            };
            self.end_outgoing("ended by shutdown");
            self.abort(ErrorCode::ShuttingDown, reason);
        }
    }

    /// Appends what to send to `out`: the machine's frames, then at most one chunk of a
    /// download or one batch of a listing. Returns how many bytes it added; call again until
    /// it adds none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        self.check_superseded();
        self.conn.poll_transmit(out);
        if out.len() == before {
            self.send_outgoing(out);
        }
        out.len() - before
    }

    /// When to call [`Session::handle_timeout`] next (a time already past means now); `None`
    /// while the server itself has the next move or the connection is over.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.outgoing.is_some() {
            return None;
        }
        self.conn.poll_timeout()
    }

    /// Whether the connection is over: write what [`Session::poll_transmit`] gives, then close.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed() && !self.conn.wants_transmit()
    }

    /// Whether a transfer is under way (an upload, a download or a listing being sent).
    pub fn is_busy(&self) -> bool {
        self.upload.is_some() || self.outgoing.is_some()
    }

    /// Ends the session for good, leaving an upload under way resumable.
    pub fn close(&mut self) {
        self.interrupt_upload("connection closed");
        self.end_outgoing("connection closed");
    }

    /// Ends the connection when a newer connection of the same client took the upload over.
    fn check_superseded(&mut self) {
        if self.upload.as_ref().is_some_and(Upload::is_superseded) {
            tracing::info!(peer = %self.peer, "a newer connection took this upload over");
            self.abort(
                ErrorCode::InProgress,
                "a newer connection resumed this upload; this one is closed",
            );
        }
    }

    /// Writes file data to the upload under way, checkpointing it when due; a failed write
    /// ends the connection, telling the client what was kept.
    fn receive_file_data(&mut self, data: &[u8]) {
        let Some(upload) = self.upload.as_mut() else {
            let error = StorageError::io("receiving file data")(std::io::Error::other(
                "file data arrived with no upload under way",
            ));
            self.abort(error.code(), &error.to_string());
            return;
        };
        let interval = self.context.config.checkpoint_interval;
        // After a failed write the progress noted before it stands: that hash state covers
        // only bytes that are in the staged file.
        let written = upload.write(data).and_then(|()| {
            if let Some(checkpoint) = self.conn.upload_checkpoint() {
                upload.note_progress(checkpoint);
            }
            if upload.wants_checkpoint(interval) {
                upload.start_checkpoint()
            } else {
                Ok(())
            }
        });
        if let Err(error) = written {
            tracing::error!(peer = %self.peer, name = upload.name(), "upload storage failed: {error}");
            let message = self.grant.message(&error);
            self.abort(error.code(), &message);
        }
    }

    /// Ends the connection with an `ERROR` (also in the middle of a transfer, where a request
    /// can no longer be refused). An upload under way is suspended first, and the message
    /// tells the client what of it was kept.
    fn abort(&mut self, code: ErrorCode, reason: &str) {
        let message = match self.interrupt_upload(reason) {
            Some(left) => format!("{reason}; {}", kept(left)),
            None => reason.to_owned(),
        };
        self.end_outgoing(reason);
        self.conn.abort(code, &message);
    }

    /// Leaves an upload under way resumable (or removes it if nothing durable was staged, or
    /// its client cannot resume it); returns which, if there was one.
    fn interrupt_upload(&mut self, reason: &str) -> Option<Left> {
        let upload = self.upload.take()?;
        let transfer = upload.transfer();
        let from = upload.start_offset();
        let left = upload.leave();
        let outcome = match left {
            Left::Resumable(offset) => {
                format!("interrupted ({reason}); resumable from byte {offset}")
            }
            Left::Removed => format!("interrupted ({reason}); nothing kept"),
        };
        tracing::debug!(name = transfer.name, from, "upload interrupted");
        transfer.finished(
            &self.context.metrics,
            self.peer,
            &outcome,
            Ending::Interrupted,
        );
        Some(left)
    }
}

/// What the client is told was kept of an upload that did not commit.
fn kept(left: Left) -> String {
    match left {
        Left::Resumable(offset) => format!("the upload stays resumable from byte {offset}"),
        Left::Removed => "nothing of the upload was kept, a retry starts over".to_owned(),
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("upload", &self.upload)
            .field("outgoing", &self.outgoing)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
