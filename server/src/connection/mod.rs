//! One connection's thread: drives a [`ServerConnection`] over a blocking `TcpStream` and
//! carries out its decisions on the storage.
//!
//! The loop follows the protocol crate's drain contract: read, feed `handle_input` until it
//! consumes nothing, write each `file_data` slice to the staged upload, act on every event,
//! flush `poll_transmit`. Reads wait at most until the next deadline (or a short tick, to
//! notice shutdown); writes wait a tick at a time and give up once the client has taken no
//! bytes for the idle timeout (see `writer`), which ends a download to a client that stopped
//! reading.
//!
//! Under TLS the loop reads and writes plaintext through a [`Transport`] that drives rustls;
//! the first byte tells a TLS client from a plaintext ferry client, which is answered in
//! plaintext that the server requires TLS. The `HELLO`'s token decides what the connection
//! may do (see [`crate::auth`]).

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ferry_protocol::{
    Digest, ErrorCode, ProtocolError, PutRequest, ServerConnection, ServerEvent, SourceTag,
    Timestamp,
};

use crate::auth::{Grant, Refusal};
use crate::server::{Shared, is_timeout, linger};
use crate::store::error::StorageError;
use crate::store::{Left, Upload};

mod download;
mod opening;
mod transport;
mod writer;

use opening::open_transport;
pub(crate) use opening::refuse_early;
use transport::Transport;
use writer::WriteFrom;

/// Bytes read from the socket at once. Control frames are at most 16 KiB, so a frame always fits.
const INPUT_BUFFER: usize = 256 * 1024;

/// Longest a read waits before the loop looks at the shutdown flag again.
const TICK: Duration = Duration::from_millis(250);

/// How long a closing connection lets the client read our last frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Listing entries sent between flushes, so a huge listing never piles up in memory twice.
const LIST_BATCH: usize = 256;

/// Whether the connection goes on.
#[must_use]
enum Flow {
    Continue,
    Stop,
}

/// Serves one client until it leaves, fails, times out or the server shuts down.
pub(crate) fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    // Writes wait a tick at a time (see `writer`), reads as long as `run` says.
    let _ = stream.set_write_timeout(Some(TICK));
    let opened = Instant::now();
    let Some(stream) = open_transport(shared, stream, peer, opened) else {
        return;
    };
    let mut connection = Connection {
        conn: ServerConnection::new(shared.config.protocol(), shared.now()),
        shared,
        stream,
        grant: Grant::full(),
        peer,
        input: vec![0u8; INPUT_BUFFER],
        filled: 0,
        out: Vec::new(),
        upload: None,
        file_buf: Vec::new(),
        peer_closed: false,
        opened,
        welcomed: false,
        moved_at: shared.now(),
    };
    tracing::debug!(%peer, "connection opened");
    connection.run();
    connection.close();
    tracing::debug!(%peer, "connection closed");
}

struct Connection<'a> {
    shared: &'a Shared,
    stream: Transport,
    /// What the client's token allows (everything when the server has no tokens).
    grant: Grant,
    peer: SocketAddr,
    conn: ServerConnection,
    input: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    upload: Option<Upload>,
    file_buf: Vec<u8>,
    peer_closed: bool,
    /// When the connection was accepted: the handshake must end within the handshake timeout
    /// of this, however slowly its bytes trickle in.
    opened: Instant,
    welcomed: bool,
    /// When the server last finished acting on an event (see [`Connection::deadline`]).
    moved_at: Timestamp,
}

impl Connection<'_> {
    fn run(&mut self) {
        loop {
            if self.flush().is_err() {
                self.interrupt_upload("connection lost");
                return;
            }
            if self.conn.is_closed() {
                self.interrupt_upload("connection closed");
                return;
            }
            if self.upload.as_ref().is_some_and(Upload::is_superseded) {
                tracing::info!(peer = %self.peer, "a newer connection took this upload over");
                self.abort(
                    ErrorCode::InProgress,
                    "a newer connection resumed this upload; this one is closed",
                );
                return;
            }
            if self.shared.shutdown.is_stopping() {
                if self.upload.is_none() {
                    let _ = self
                        .conn
                        .refuse_connection(ErrorCode::ShuttingDown, "the server is shutting down");
                    let _ = self.flush();
                    return;
                }
                if self.shared.shutdown.is_past_grace() {
                    self.abort(ErrorCode::ShuttingDown, "the server is shutting down");
                    return;
                }
            }
            if !self.welcomed && self.opened.elapsed() >= self.shared.config.handshake_timeout {
                tracing::warn!(peer = %self.peer, "closing a connection whose handshake took too long");
                self.conn
                    .abort(ErrorCode::Timeout, "the handshake took too long");
                let _ = self.flush();
                return;
            }
            let now = self.shared.now();
            let deadline = self.deadline();
            let wait = deadline
                .map_or(TICK, |deadline| deadline.saturating_since(now))
                .clamp(Duration::from_millis(1), TICK);
            if self.filled == self.input.len() {
                // Unreachable: every frame but DATA fits in a fraction of the buffer and DATA
                // streams through. A read into no room would look like the end of the stream.
                tracing::error!(peer = %self.peer, "input buffer full without progress (a server bug)");
                self.abort(
                    ErrorCode::StorageError,
                    "internal error: input not consumed",
                );
                return;
            }
            let _ = self.stream.socket().set_read_timeout(Some(wait));
            match self.stream.read(&mut self.input[self.filled..]) {
                Ok(0) => {
                    self.peer_closed = true;
                    if let Err(error) = self.conn.handle_eof(self.shared.now()) {
                        tracing::debug!(peer = %self.peer, "client left: {error}");
                    }
                    self.interrupt_upload("client closed the connection");
                    return;
                }
                Ok(n) => {
                    self.filled += n;
                    if let Flow::Stop = self.process() {
                        let _ = self.flush();
                        return;
                    }
                }
                Err(error) if is_timeout(&error) => {
                    let now = self.shared.now();
                    let due = deadline.is_some_and(|deadline| now >= deadline);
                    if let Err(error) = if due {
                        self.conn.handle_timeout(now)
                    } else {
                        Ok(())
                    } {
                        tracing::warn!(peer = %self.peer, "closing a silent connection: {error}");
                        self.interrupt_upload("client went silent");
                        let _ = self.flush();
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::debug!(peer = %self.peer, "read failed: {error}");
                    self.peer_closed = true;
                    self.interrupt_upload("connection lost");
                    return;
                }
            }
        }
    }

    /// When the client's silence ends the connection. The machine counts silence from the
    /// client's last byte, which would also count the time the server itself spent on a long
    /// download or commit; so once the handshake is done the idle timeout runs at the earliest
    /// from the end of the server's last move.
    fn deadline(&self) -> Option<Timestamp> {
        let machine = self.conn.poll_timeout()?;
        if self.welcomed {
            Some(machine.max(self.moved_at + self.shared.config.idle_timeout))
        } else {
            Some(machine)
        }
    }

    /// Feeds the buffered input to the machine until it takes no more.
    fn process(&mut self) -> Flow {
        let mut start = 0;
        let flow = loop {
            let now = self.shared.now();
            let received = match self.conn.handle_input(now, &self.input[start..self.filled]) {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(peer = %self.peer, "closing the connection: {error}");
                    self.interrupt_upload(&error.to_string());
                    break Flow::Stop;
                }
            };
            let consumed = received.consumed;
            let wrote = match (received.file_data.is_empty(), self.upload.as_mut()) {
                (true, _) => None,
                (false, Some(upload)) => Some(upload.write(received.file_data)),
                (false, None) => Some(Err(StorageError::io("receiving file data")(
                    io::Error::other("file data arrived with no upload under way"),
                ))),
            };
            start += consumed;
            if let Some(result) = wrote
                && let Flow::Stop = self.after_write(result)
            {
                break Flow::Stop;
            }
            let mut any_event = false;
            while let Some(event) = self.conn.poll_event() {
                any_event = true;
                if let Flow::Stop = self.on_event(event) {
                    return Flow::Stop;
                }
                self.moved_at = self.shared.now();
            }
            if self.flush().is_err() {
                self.interrupt_upload("connection lost");
                break Flow::Stop;
            }
            if (consumed == 0 && !any_event) || self.conn.is_closed() {
                break Flow::Continue;
            }
        };
        self.input.copy_within(start..self.filled, 0);
        self.filled -= start;
        flow
    }

    /// Notes the upload's progress and checkpoints it when due; a failed write ends it. After
    /// a failed write the progress noted before it stands: that hash state covers only bytes
    /// that are in the staged file.
    fn after_write(&mut self, result: Result<(), StorageError>) -> Flow {
        let Some(upload) = self.upload.as_mut() else {
            return match result {
                Ok(()) => Flow::Continue,
                Err(error) => {
                    let message = self.grant.message(&error);
                    self.abort(error.code(), &message);
                    Flow::Stop
                }
            };
        };
        let result = result.and_then(|()| {
            if let Some(checkpoint) = self.conn.upload_checkpoint() {
                upload.note_progress(checkpoint);
            }
            if upload.wants_checkpoint(self.shared.config.checkpoint_interval) {
                upload.start_checkpoint()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => Flow::Continue,
            Err(error) => {
                tracing::error!(peer = %self.peer, name = upload.name(), "upload storage failed: {error}");
                let message = self.grant.message(&error);
                self.abort(error.code(), &message);
                Flow::Stop
            }
        }
    }

    fn on_event(&mut self, event: ServerEvent) -> Flow {
        let result = match event {
            ServerEvent::ClientHello { token, .. } => {
                if self.shared.shutdown.is_stopping() {
                    self.conn
                        .refuse_connection(ErrorCode::ShuttingDown, "the server is shutting down")
                } else {
                    match self.authorise(&token) {
                        Ok(grant) => {
                            self.grant = grant;
                            self.welcomed = true;
                            self.conn.accept_client()
                        }
                        Err(refusal) => self
                            .conn
                            .refuse_connection(refusal.code(), &refusal.to_string()),
                    }
                }
            }
            ServerEvent::PutRequested(mut request) => {
                if !self.grant.may_write() {
                    return self.forbid(&request.name, "upload");
                }
                request.name = self.grant.name(&request.name);
                self.on_put(&request)
            }
            ServerEvent::GetRequested { name, offset } => {
                let name = self.grant.name(&name);
                return self.on_get(&name, offset);
            }
            ServerEvent::ListRequested { prefix } => {
                let prefix = self.grant.name(&prefix);
                return self.on_list(&prefix);
            }
            ServerEvent::RemoveRequested { name } => {
                if !self.grant.may_write() {
                    return self.forbid(&name, "removal");
                }
                let name = self.grant.name(&name);
                match self.shared.store.remove(&name) {
                    Ok(size) => {
                        tracing::info!(peer = %self.peer, name, size, "removed");
                        self.conn.confirm()
                    }
                    Err(error) => self.refuse(&name, &error),
                }
            }
            ServerEvent::QueryRequested { name, tag } => {
                let name = self.grant.name(&name);
                self.on_query(&name, &tag)
            }
            ServerEvent::UploadVerified { digest, .. } => self.on_verified(&digest),
            ServerEvent::UploadRejected { error } => {
                self.on_rejected(&error);
                Ok(())
            }
            ServerEvent::UploadCancelled { .. } => {
                self.interrupt_upload("cancelled by the client");
                Ok(())
            }
            ServerEvent::RequestRefused { code, message } => {
                tracing::warn!(peer = %self.peer, %code, "refused a request: {message}");
                Ok(())
            }
            other => {
                tracing::debug!(peer = %self.peer, ?other, "ignored an event");
                Ok(())
            }
        };
        match result {
            Ok(()) => Flow::Continue,
            Err(error) => {
                tracing::error!(peer = %self.peer, "connection state error (a server bug): {error}");
                Flow::Stop
            }
        }
    }

    /// The grant for `token`, or why it is refused (logged): a wrong token, or too many
    /// attempts, in which case the token was not looked at.
    fn authorise(&self, token: &[u8]) -> Result<Grant, Refusal> {
        let Some(tokens) = self.shared.config.tokens.as_ref() else {
            return Ok(Grant::full());
        };
        let refusal = match tokens.check(self.peer.ip(), token, Instant::now()) {
            Ok(grant) => return Ok(grant),
            Err(refusal) => refusal,
        };
        match &refusal {
            Refusal::WrongToken { guesses_left } => tracing::warn!(
                peer = %self.peer, guesses_left, token_given = !token.is_empty(),
                "refused a connection: wrong or missing access token"
            ),
            // Not a warning: these are as many as an attacker sends, while the wrong tokens
            // above (which are warned of) are bounded by the caps.
            Refusal::TooManyGuesses(cap) => {
                tracing::debug!(peer = %self.peer, "refused a connection unchecked: {cap}")
            }
        }
        Err(refusal)
    }

    /// Refuses a write with a read-only token.
    fn forbid(&mut self, name: &str, what: &str) -> Flow {
        tracing::warn!(peer = %self.peer, name, "refused a {what}: the token is read-only");
        let message = format!("this token is read-only; {what}s are not allowed");
        self.command(|c| c.refuse(ErrorCode::Forbidden, &message))
    }

    fn refuse(
        &mut self,
        name: &str,
        error: &StorageError,
    ) -> Result<(), ferry_protocol::CommandError> {
        tracing::warn!(peer = %self.peer, name, code = %error.code(), "refused: {error}");
        self.conn.refuse(error.code(), &self.grant.message(error))
    }

    /// Refuses the request with `error`. Its message reaches the client through
    /// [`Grant::message`], like every storage error's, so names in it are the client's own.
    fn refuse_storage(&mut self, error: &StorageError) -> Flow {
        let message = self.grant.message(error);
        self.command(|c| c.refuse(error.code(), &message))
    }

    fn on_put(&mut self, request: &PutRequest) -> Result<(), ferry_protocol::CommandError> {
        if self.shared.shutdown.is_stopping() {
            return self.refuse(&request.name, &StorageError::ShuttingDown);
        }
        match self.shared.store.begin_upload(&self.shared.config, request) {
            Ok((upload, checkpoint)) => {
                tracing::debug!(
                    peer = %self.peer, name = request.name, size = request.size,
                    offset = checkpoint.offset(), "upload accepted"
                );
                self.upload = Some(upload);
                self.conn.accept_put(&checkpoint)
            }
            Err(error) => self.refuse(&request.name, &error),
        }
    }

    fn on_verified(&mut self, digest: &Digest) -> Result<(), ferry_protocol::CommandError> {
        let Some(upload) = self.upload.take() else {
            return self
                .conn
                .refuse(ErrorCode::StorageError, "no upload under way");
        };
        let transfer = upload.transfer();
        match upload.commit(digest) {
            Ok(()) => {
                transfer.finished(self.peer, "ok");
                self.conn.confirm()
            }
            Err(error) => {
                transfer.finished(self.peer, &format!("commit failed: {error}"));
                self.conn.refuse(error.code(), &self.grant.message(&error))
            }
        }
    }

    fn on_rejected(&mut self, error: &ProtocolError) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let transfer = upload.transfer();
        if self.shared.config.skips_digest_check()
            && let ProtocolError::DigestMismatch { actual, .. } = error
        {
            tracing::error!(
                name = transfer.name,
                "FAULT INJECTED: storing an upload whose digest did not match"
            );
            let _ = upload.commit(actual);
        } else {
            upload.discard();
        }
        transfer.finished(self.peer, &format!("rejected: {error}"));
    }

    fn on_query(
        &mut self,
        name: &str,
        tag: &SourceTag,
    ) -> Result<(), ferry_protocol::CommandError> {
        match self.shared.store.query(name, tag) {
            Ok(held) => {
                self.conn
                    .reply_query(held.stored_size, held.stored_digest, held.partial_offset)
            }
            Err(error) => self.refuse(name, &error),
        }
    }

    fn on_list(&mut self, prefix: &str) -> Flow {
        let mut sent = 0usize;
        let mut lost = false;
        let listed = self.shared.store.list(prefix, &mut |entries| {
            for entry in entries {
                let Some(name) = self.grant.client_name(&entry.name) else {
                    continue; // outside the token's folder: cannot happen with a folder prefix
                };
                if let Err(error) = self
                    .conn
                    .send_list_entry(name, entry.size, entry.modified_ms)
                {
                    tracing::debug!(name = entry.name, "skipped a listing entry: {error}");
                }
                sent += 1;
                if sent.is_multiple_of(LIST_BATCH) && self.flush().is_err() {
                    lost = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if lost {
            return Flow::Stop;
        }
        match listed {
            Ok(()) => self.command(|c| c.finish_list()),
            // Nothing sent yet: the request can still be refused.
            Err(error) if sent == 0 => self.refuse_storage(&error),
            Err(error) => {
                tracing::error!(peer = %self.peer, prefix, "listing failed part way: {error}");
                let message = self.grant.message(&error);
                self.abort(
                    error.code(),
                    &format!("the listing failed part way: {message}"),
                );
                Flow::Stop
            }
        }
    }

    fn command(
        &mut self,
        f: impl FnOnce(&mut ServerConnection) -> Result<(), ferry_protocol::CommandError>,
    ) -> Flow {
        match f(&mut self.conn) {
            Ok(()) => Flow::Continue,
            Err(error) => {
                tracing::error!(peer = %self.peer, "connection state error (a server bug): {error}");
                Flow::Stop
            }
        }
    }

    /// Ends the connection with an `ERROR` (also in the middle of a transfer, where a request
    /// can no longer be refused). An upload under way is suspended first, and the message
    /// tells the client what of it was kept.
    fn abort(&mut self, code: ErrorCode, reason: &str) {
        let message = match self.interrupt_upload(reason) {
            Some(Left::Resumable(offset)) => {
                format!("{reason}; the upload stays resumable from byte {offset}")
            }
            Some(Left::Removed) => {
                format!("{reason}; nothing of the upload was kept, a retry starts over")
            }
            None => reason.to_owned(),
        };
        self.conn.abort(code, &message);
        let _ = self.flush();
    }

    /// Leaves an upload under way resumable (or removes it if nothing durable was staged);
    /// returns which, if there was one.
    fn interrupt_upload(&mut self, reason: &str) -> Option<Left> {
        let upload = self.upload.take()?;
        let transfer = upload.transfer();
        let from = upload.start_offset();
        let left = upload.suspend();
        let outcome = match left {
            Left::Resumable(offset) => {
                format!("interrupted ({reason}); resumable from byte {offset}")
            }
            Left::Removed => format!("interrupted ({reason}); nothing kept"),
        };
        tracing::debug!(name = transfer.name, from, "upload interrupted");
        transfer.finished(self.peer, &outcome);
        Some(left)
    }

    /// Writes what the machine has queued.
    fn flush(&mut self) -> io::Result<()> {
        self.out.clear();
        if self.conn.poll_transmit(&mut self.out) > 0 {
            self.write(WriteFrom::Out)?;
        }
        Ok(())
    }

    fn close(&mut self) {
        self.interrupt_upload("connection closed");
        let _ = self.flush();
        if !self.peer_closed {
            linger(self.stream.finish(), CLOSE_LINGER);
        }
    }
}
