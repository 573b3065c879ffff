//! The server side of a connection (PROTOCOL.md §5, "Server states").

mod events;

pub use events::{PutRequest, ServerEvent};

use crate::core::{Config, Core, Received};
use crate::digest::{Digest, HashCheckpoint};
use crate::error::{CommandError, ErrorCode, ProtocolError};
use crate::frame::{Frame, decode_frame};
use crate::limits::{
    MAX_NAME_LEN, MIN_PROTOCOL_VERSION, MOVE_VERSION, PROTOCOL_VERSION, STREAMED_SINCE,
};
use crate::name::{validate_name, validate_prefix};
use crate::time::Timestamp;
use crate::transfer::{Discard, Finished, Inbound, Outbound};

#[derive(Debug)]
enum State {
    AwaitingHello,
    Deciding(Decision),
    Idle,
    Receiving(Inbound),
    /// The rest of a refused eager upload: read and dropped up to its `DONE` or `CANCEL`.
    Discarding(Discard),
    Sending(Outbound),
    Closed,
}

#[derive(Debug, Clone, Copy)]
enum Decision {
    Hello,
    Put {
        size: u64,
        eager: bool,
        streamed: bool,
    },
    Get {
        offset: u64,
    },
    List,
    Remove,
    Move,
    Query,
    Commit,
}

impl State {
    fn describe(&self) -> &'static str {
        match self {
            State::AwaitingHello => "awaiting HELLO",
            State::Deciding(_) => "a request awaits the server's decision",
            State::Idle => "idle",
            State::Receiving(_) => "receiving an upload",
            State::Discarding(_) => "dropping the data of a refused upload",
            State::Sending(_) => "sending a download",
            State::Closed => "closed",
        }
    }
}

/// The server side of one connection: bytes from the client in, events and bytes to send out.
///
/// Inputs are `handle_*`, outputs `poll_*`; after every input, drain [`poll_event`] and
/// [`poll_transmit`] before the next (see the crate docs for the loop).
///
/// [`poll_event`]: ServerConnection::poll_event
/// [`poll_transmit`]: ServerConnection::poll_transmit
#[derive(Debug)]
pub struct ServerConnection {
    core: Core<ServerEvent>,
    state: State,
    /// Version agreed on in the handshake (the highest both speak).
    version: u16,
    /// Version 2: verified uploads whose commit has not been answered yet, oldest first.
    pending_commits: u32,
    /// The upload being received was sent eagerly: it has no `CANCEL`.
    receiving_eager: bool,
    /// Hash state of an upload that ended without completing (cancel, EOF, error, timeout).
    interrupted_upload: Option<HashCheckpoint>,
}

impl ServerConnection {
    /// A connection that has just been accepted at `now`. Its magic is already queued.
    pub fn new(config: Config, now: Timestamp) -> Self {
        ServerConnection {
            core: Core::new(config, now),
            state: State::AwaitingHello,
            version: MIN_PROTOCOL_VERSION,
            pending_commits: 0,
            receiving_eager: false,
            interrupted_upload: None,
        }
    }

    /// Bytes from the client. See [`Received`]: drop `consumed` bytes from the input, write
    /// `file_data` to the upload, drain events and transmit, and call again with what is left.
    /// Returns early after any event, so events are seen in order with the data.
    pub fn handle_input<'a>(
        &mut self,
        now: Timestamp,
        input: &'a [u8],
    ) -> Result<Received<'a>, ProtocolError> {
        self.core.check()?;
        if !input.is_empty() {
            self.core.note_input(now);
        }
        let mut pos = match self.core.read_magic(input) {
            Ok(used) => used,
            Err(error) => return Err(self.fail(error)),
        };
        if !self.core.magic_done() {
            return Ok(Received::frames(pos));
        }
        let events_before = self.core.events_len();
        while self.core.events_len() == events_before {
            let rest = &input[pos..];
            match &mut self.state {
                State::Receiving(inbound) if inbound.in_chunk() => {
                    if rest.is_empty() {
                        break;
                    }
                    let data = inbound.take(rest);
                    return Ok(Received {
                        consumed: pos + data.len(),
                        file_data: data,
                    });
                }
                State::Discarding(discard) if discard.in_chunk() => {
                    if rest.is_empty() {
                        break;
                    }
                    pos += discard.skip(rest.len());
                    continue;
                }
                // Version 2: a pipelined request waits in the input until the download ends.
                State::Deciding(_) | State::Closed => break,
                State::Sending(_) if self.version >= 2 => break,
                _ => {}
            }
            let (frame, used) = match decode_frame(rest) {
                Ok(Some(decoded)) => decoded,
                Ok(None) => break,
                Err(error) => return Err(self.fail(error.into())),
            };
            if self.pending_commits > 0 && answers_before_commits(&frame) {
                break;
            }
            pos += used;
            if let Err(error) = self.on_frame(frame) {
                return Err(self.fail(error));
            }
        }
        Ok(Received::frames(pos))
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.pending_commits = 0;
        self.leave_state(State::Closed);
        self.core.fail(error)
    }

    /// Changes state, keeping the hash state of an upload that ends unfinished.
    fn leave_state(&mut self, next: State) {
        if let State::Receiving(inbound) = std::mem::replace(&mut self.state, next) {
            self.interrupted_upload = Some(inbound.checkpoint());
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), ProtocolError> {
        let unexpected = |state: &State| ProtocolError::UnexpectedFrame {
            frame: frame.name(),
            state: state.describe(),
        };
        match (&mut self.state, &frame) {
            (_, Frame::Ping { nonce }) => self.core.send(&Frame::Pong { nonce: *nonce }),
            (_, Frame::Error { code, message }) => {
                return Err(ProtocolError::Peer {
                    code: *code,
                    message: (*message).to_owned(),
                });
            }
            (
                State::AwaitingHello,
                Frame::Hello {
                    min_version,
                    max_version,
                    token,
                },
            ) => {
                let version = PROTOCOL_VERSION.min(*max_version);
                self.version = version;
                if version < *min_version || version < MIN_PROTOCOL_VERSION {
                    return Err(ProtocolError::UnsupportedVersion {
                        ours_min: MIN_PROTOCOL_VERSION,
                        ours_max: PROTOCOL_VERSION,
                        theirs_min: *min_version,
                        theirs_max: *max_version,
                    });
                }
                self.core.push_event(ServerEvent::ClientHello {
                    version,
                    token: token.to_vec(),
                });
                self.state = State::Deciding(Decision::Hello);
            }
            (
                State::Idle,
                Frame::Put {
                    name,
                    size,
                    overwrite,
                    resume,
                    eager,
                    streamed,
                    tag,
                },
            ) => {
                if *eager && self.version < 2 {
                    return Err(ProtocolError::UnexpectedFrame {
                        frame: "PUT (eager)",
                        state: "version 1, which has no eager uploads",
                    });
                }
                if *streamed && self.version < STREAMED_SINCE {
                    return Err(ProtocolError::UnexpectedFrame {
                        frame: "PUT (streamed)",
                        state: "a version older than 3, which has no streamed uploads",
                    });
                }
                // A refused eager upload's data is still on its way: it is dropped, not
                // mistaken for frames.
                if self.name_ok(name) {
                    self.core.push_event(ServerEvent::PutRequested(PutRequest {
                        name: (*name).to_owned(),
                        size: *size,
                        overwrite: *overwrite,
                        resume: *resume,
                        tag: *tag,
                        eager: *eager,
                        streamed: *streamed,
                    }));
                    self.state = State::Deciding(Decision::Put {
                        size: *size,
                        eager: *eager,
                        streamed: *streamed,
                    });
                } else if *eager {
                    self.receiving_eager = true;
                    self.state = State::Discarding(Discard::new(*size));
                }
            }
            (State::Idle, Frame::Get { name, offset }) => {
                if self.name_ok(name) {
                    self.core.push_event(ServerEvent::GetRequested {
                        name: (*name).to_owned(),
                        offset: *offset,
                    });
                    self.state = State::Deciding(Decision::Get { offset: *offset });
                }
            }
            (State::Idle, Frame::List { prefix }) => match validate_prefix(prefix) {
                Ok(()) => {
                    self.core.push_event(ServerEvent::ListRequested {
                        prefix: (*prefix).to_owned(),
                    });
                    self.state = State::Deciding(Decision::List);
                }
                Err(error) => {
                    self.refuse_by_itself(ErrorCode::BadName, &format!("bad prefix: {error}"))
                }
            },
            (State::Idle, Frame::Remove { name }) => {
                if self.name_ok(name) {
                    self.core.push_event(ServerEvent::RemoveRequested {
                        name: (*name).to_owned(),
                    });
                    self.state = State::Deciding(Decision::Remove);
                }
            }
            (
                State::Idle,
                Frame::Move {
                    from,
                    to,
                    overwrite,
                },
            ) => {
                if self.version < MOVE_VERSION {
                    return Err(ProtocolError::UnexpectedFrame {
                        frame: "MOVE",
                        state: "connected with a protocol version before 3, which has no MOVE",
                    });
                }
                // One refusal for a request with two bad names: the first one's.
                if self.name_ok(from) && self.name_ok(to) {
                    self.core.push_event(ServerEvent::MoveRequested {
                        from: (*from).to_owned(),
                        to: (*to).to_owned(),
                        overwrite: *overwrite,
                    });
                    self.state = State::Deciding(Decision::Move);
                }
            }
            (State::Idle, Frame::Query { name, tag }) => {
                if self.name_ok(name) {
                    self.core.push_event(ServerEvent::QueryRequested {
                        name: (*name).to_owned(),
                        tag: *tag,
                    });
                    self.state = State::Deciding(Decision::Query);
                }
            }
            (State::Receiving(inbound), Frame::Data { len }) => inbound.start_chunk(*len)?,
            // PROTOCOL.md §7: a streamed upload ends with DONE_SIZED, any other with DONE.
            (State::Receiving(inbound), Frame::Done { .. }) if inbound.is_streamed() => {
                return Err(ProtocolError::UnexpectedFrame {
                    frame: "DONE",
                    state: "receiving a streamed upload, which ends with DONE_SIZED",
                });
            }
            (State::Receiving(inbound), Frame::DoneSized { .. }) if !inbound.is_streamed() => {
                return Err(ProtocolError::UnexpectedFrame {
                    frame: "DONE_SIZED",
                    state: "receiving an upload of a declared size, which ends with DONE",
                });
            }
            (
                State::Receiving(inbound),
                Frame::Done { digest } | Frame::DoneSized { digest, .. },
            ) => {
                let size = inbound.received();
                let finished = match frame {
                    Frame::DoneSized { size: declared, .. } => {
                        inbound.finish_sized(declared, *digest)?
                    }
                    _ => inbound.finish(*digest)?,
                };
                match finished {
                    Finished::Verified(digest) => {
                        self.core
                            .push_event(ServerEvent::UploadVerified { digest, size });
                        if self.version >= 2 {
                            self.pending_commits += 1;
                            self.state = State::Idle;
                        } else {
                            self.state = State::Deciding(Decision::Commit);
                        }
                    }
                    Finished::DigestMismatch(error) => {
                        self.core.send_error(error.code(), &error.to_string());
                        self.core.push_event(ServerEvent::UploadRejected { error });
                        self.state = State::Idle;
                    }
                }
            }
            (State::Receiving(_) | State::Discarding(_), Frame::Cancel) if self.receiving_eager => {
                return Err(ProtocolError::UnexpectedFrame {
                    frame: "CANCEL",
                    state: "receiving an eager upload, which is finished or dropped with the connection",
                });
            }
            (State::Receiving(inbound), Frame::Cancel) => {
                let received = inbound.received();
                let checkpoint = inbound.checkpoint();
                self.core.push_event(ServerEvent::UploadCancelled {
                    received,
                    checkpoint,
                });
                self.leave_state(State::Idle);
            }
            (State::Discarding(discard), Frame::Data { len }) => discard.start_chunk(*len)?,
            (State::Discarding(discard), Frame::Done { .. }) => {
                discard.finish()?;
                self.state = State::Idle;
            }
            (state, _) => return Err(unexpected(state)),
        }
        Ok(())
    }

    /// Version 2: verified uploads still to be answered with [`confirm`](Self::confirm) (or
    /// [`refuse`](Self::refuse)), oldest first. While there are any, the connection reads on
    /// through eager uploads but stops before any request whose answer would overtake theirs.
    pub fn pending_commits(&self) -> u32 {
        self.pending_commits
    }

    /// Validates a requested name; a bad one is refused here and the connection stays usable.
    fn name_ok(&mut self, name: &str) -> bool {
        match validate_name(name) {
            Ok(()) => true,
            Err(error) => {
                let shown: String = name.chars().take(MAX_NAME_LEN / 8).collect();
                self.refuse_by_itself(ErrorCode::BadName, &format!("bad name {shown:?}: {error}"));
                false
            }
        }
    }

    fn refuse_by_itself(&mut self, code: ErrorCode, message: &str) {
        self.core.send_error(code, message);
        self.core.push_event(ServerEvent::RequestRefused {
            code,
            message: message.to_owned(),
        });
    }

    /// The client closed its side. Fine between requests; an error if a transfer or request was
    /// under way (the upload, if any, stays resumable).
    pub fn handle_eof(&mut self, _now: Timestamp) -> Result<(), ProtocolError> {
        self.core.check()?;
        let during = match self.state {
            State::Idle | State::Closed => None,
            State::AwaitingHello => Some("before its HELLO"),
            State::Receiving(_) | State::Discarding(_) => Some("in the middle of an upload"),
            State::Sending(_) => Some("in the middle of a download"),
            State::Deciding(_) => Some("while its request was being answered"),
        };
        self.leave_state(State::Closed);
        self.core.close();
        match during {
            Some(during) => Err(self.fail(ProtocolError::UnexpectedEof { during })),
            None => Ok(()),
        }
    }

    /// Tells the connection the time; fails it if the client has been silent past its timeout.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), ProtocolError> {
        self.core.check()?;
        if self.pending_commits > 0 {
            return Ok(());
        }
        let config = self.core.config;
        let (what, due) = match self.state {
            State::AwaitingHello => (
                "handshake",
                self.core
                    .handshake_deadline(config.handshake_timeout)
                    .is_some_and(|deadline| now >= deadline),
            ),
            State::Receiving(_) | State::Discarding(_) => {
                ("upload data", self.core.timed_out(now, config.idle_timeout))
            }
            State::Idle => (
                "next request",
                self.core.timed_out(now, config.idle_timeout),
            ),
            State::Deciding(_) | State::Sending(_) | State::Closed => return Ok(()),
        };
        if due {
            Err(self.fail(ProtocolError::Timeout { what }))
        } else {
            Ok(())
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if at all. No deadline
    /// runs while the server itself has the next move (deciding, or sending a download); the
    /// idle deadline counts from the client's last byte or the server's last frame, whichever
    /// is later (a time already past means "call `handle_timeout` now to start the wait").
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.pending_commits > 0 {
            return None;
        }
        match self.state {
            State::AwaitingHello => self
                .core
                .handshake_deadline(self.core.config.handshake_timeout),
            State::Idle | State::Receiving(_) | State::Discarding(_) => {
                self.core.deadline(self.core.config.idle_timeout)
            }
            State::Deciding(_) | State::Sending(_) | State::Closed => None,
        }
    }

    /// Moves the bytes to send into `out` (appending); returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.core.poll_transmit(out)
    }

    /// Whether there are bytes to send.
    pub fn wants_transmit(&self) -> bool {
        self.core.has_transmit()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.core.poll_event()
    }

    /// Whether the connection is over: flush [`poll_transmit`](Self::poll_transmit), then close.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The fatal error that closed the connection, if one did.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.core.error()
    }

    /// Hash state of the upload being received (or of the last one, if it ended unfinished by
    /// cancel, EOF, timeout or error), for a checkpoint beside the staged data. Its offset is
    /// never past the bytes already handed out as `file_data`.
    pub fn upload_checkpoint(&self) -> Option<HashCheckpoint> {
        match &self.state {
            State::Receiving(inbound) => Some(inbound.checkpoint()),
            _ => self.interrupted_upload.clone(),
        }
    }

    /// File bytes of the current download still to be sent, if one is under way.
    pub fn download_remaining(&self) -> Option<u64> {
        match &self.state {
            State::Sending(outbound) => Some(outbound.remaining()),
            _ => None,
        }
    }

    fn decision(&self, command: &'static str) -> Result<Decision, CommandError> {
        if self.pending_commits > 0 {
            return Err(CommandError::WrongState {
                command,
                state: "earlier uploads await the answer to their commit",
            });
        }
        match self.state {
            State::Deciding(decision) => Ok(decision),
            State::Closed => Err(CommandError::Closed),
            ref other => Err(CommandError::WrongState {
                command,
                state: other.describe(),
            }),
        }
    }

    fn wrong(&self, command: &'static str) -> CommandError {
        match self.state {
            State::Closed => CommandError::Closed,
            ref other => CommandError::WrongState {
                command,
                state: other.describe(),
            },
        }
    }

    /// Accepts the client after its `HELLO` (its token checked by the driver).
    pub fn accept_client(&mut self) -> Result<(), CommandError> {
        match self.decision("accept a client")? {
            Decision::Hello => {
                self.core.send(&Frame::Welcome {
                    version: self.version,
                });
                self.state = State::Idle;
                Ok(())
            }
            _ => Err(self.wrong("accept a client")),
        }
    }

    /// Refuses the whole connection (busy, not authorised, shutting down): queues the `ERROR`
    /// and closes. Allowed before or after the client's `HELLO`, and between requests.
    pub fn refuse_connection(
        &mut self,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), CommandError> {
        match self.state {
            _ if self.pending_commits > 0 => Err(self.wrong("refuse the connection")),
            State::AwaitingHello | State::Deciding(Decision::Hello) | State::Idle => {
                self.core.send_error(code, message);
                self.core.close();
                self.state = State::Closed;
                Ok(())
            }
            _ => Err(self.wrong("refuse the connection")),
        }
    }

    /// Ends the connection from the server's side in any state, e.g. when the disk fills up
    /// mid-upload or the shutdown grace period is over: queues `ERROR(code, message)` and
    /// closes. An upload under way stays resumable from [`upload_checkpoint`](Self::upload_checkpoint).
    pub fn abort(&mut self, code: ErrorCode, message: &str) {
        if self.core.is_closed() {
            return;
        }
        self.core.send_error(code, message);
        self.pending_commits = 0;
        self.leave_state(State::Closed);
        self.core.close();
    }

    /// Refuses the pending request with a code and a message; the connection stays open.
    /// For an upload awaiting commit (the oldest, under version 2), this reports that storing
    /// it failed. A refused eager upload's data that follows is dropped.
    pub fn refuse(&mut self, code: ErrorCode, message: &str) -> Result<(), CommandError> {
        if self.pending_commits > 0 && !self.core.is_closed() {
            self.pending_commits -= 1;
            self.core.send_error(code, message);
            return Ok(());
        }
        match self.decision("refuse a request")? {
            Decision::Hello => Err(self.wrong("refuse a request")),
            Decision::Put {
                size, eager: true, ..
            } => {
                self.core.send_error(code, message);
                self.receiving_eager = true;
                self.state = State::Discarding(Discard::new(size));
                Ok(())
            }
            _ => {
                self.core.send_error(code, message);
                self.state = State::Idle;
                Ok(())
            }
        }
    }

    /// Accepts the pending upload, going ahead from `checkpoint.offset()` (0 for a new upload,
    /// or where a partial upload's saved hash state ends). An eager upload (version 2) starts
    /// at 0, is told nothing, and may be accepted while earlier commits are pending. A streamed
    /// upload (version 3) starts at 0 too; its size is learnt from its `DONE_SIZED`.
    pub fn accept_put(&mut self, checkpoint: &HashCheckpoint) -> Result<(), CommandError> {
        if let State::Deciding(Decision::Put {
            size, eager: true, ..
        }) = self.state
        {
            if checkpoint.offset() != 0 {
                return Err(CommandError::TooMuchData {
                    given: checkpoint.offset(),
                    allowed: 0,
                });
            }
            self.state = State::Receiving(Inbound::new(size, checkpoint));
            self.receiving_eager = true;
            self.interrupted_upload = None;
            return Ok(());
        }
        match self.decision("accept an upload")? {
            // PROTOCOL.md §7: a streamed upload is never resumed, it starts at byte 0.
            Decision::Put { streamed: true, .. } if checkpoint.offset() == 0 => {
                self.core.send(&Frame::PutReady { offset: 0 });
                self.receiving_eager = false;
                self.state = State::Receiving(Inbound::streamed());
                self.interrupted_upload = None;
                Ok(())
            }
            Decision::Put { streamed: true, .. } => Err(CommandError::TooMuchData {
                given: checkpoint.offset(),
                allowed: 0,
            }),
            Decision::Put { size, .. } if checkpoint.offset() <= size => {
                self.core.send(&Frame::PutReady {
                    offset: checkpoint.offset(),
                });
                self.receiving_eager = false;
                self.state = State::Receiving(Inbound::new(size, checkpoint));
                self.interrupted_upload = None;
                Ok(())
            }
            Decision::Put { size, .. } => Err(CommandError::TooMuchData {
                given: checkpoint.offset(),
                allowed: size,
            }),
            _ => Err(self.wrong("accept an upload")),
        }
    }

    /// Accepts the pending download of a file of `size` bytes. Fails (nothing sent) if the
    /// requested offset is past the end: refuse the request then.
    pub fn accept_get(&mut self, size: u64) -> Result<(), CommandError> {
        match self.decision("accept a download")? {
            Decision::Get { offset } if offset <= size => {
                self.core.send(&Frame::GetReady { size, offset });
                self.state = State::Sending(Outbound::new(size, offset));
                Ok(())
            }
            Decision::Get { offset } => Err(CommandError::TooMuchData {
                given: offset,
                allowed: size,
            }),
            _ => Err(self.wrong("accept a download")),
        }
    }

    /// Frames the next `data.len()` bytes of the download. Queues only the `DATA` header: send
    /// what [`poll_transmit`](Self::poll_transmit) gives, then `data` itself, in that order.
    pub fn send_file_data(&mut self, data: &[u8]) -> Result<(), CommandError> {
        match &mut self.state {
            State::Sending(outbound) => {
                let len = outbound.take(data.len())?;
                self.core.send(&Frame::Data { len });
                Ok(())
            }
            _ => Err(self.wrong("send file data")),
        }
    }

    /// Ends the download with the file's digest, once every byte was sent.
    pub fn finish_download(&mut self, digest: Digest) -> Result<(), CommandError> {
        match &self.state {
            State::Sending(outbound) if outbound.remaining() == 0 => {
                self.core.send(&Frame::Done { digest });
                self.state = State::Idle;
                Ok(())
            }
            State::Sending(outbound) => Err(CommandError::WrongState {
                command: "finish the download",
                state: if outbound.remaining() > 0 {
                    "file bytes remain to be sent"
                } else {
                    "sending"
                },
            }),
            _ => Err(self.wrong("finish the download")),
        }
    }

    /// Sends one listing entry.
    pub fn send_list_entry(
        &mut self,
        name: &str,
        size: u64,
        modified_ms: u64,
    ) -> Result<(), CommandError> {
        match self.decision("send a listing entry")? {
            Decision::List => {
                if name.len() > MAX_NAME_LEN {
                    return Err(CommandError::TooLong {
                        field: "name",
                        len: name.len(),
                        max: MAX_NAME_LEN,
                    });
                }
                self.core.send(&Frame::Entry {
                    name,
                    size,
                    modified_ms,
                });
                Ok(())
            }
            _ => Err(self.wrong("send a listing entry")),
        }
    }

    /// Ends the listing.
    pub fn finish_list(&mut self) -> Result<(), CommandError> {
        match self.decision("finish a listing")? {
            Decision::List => {
                self.core.send(&Frame::ListEnd);
                self.state = State::Idle;
                Ok(())
            }
            _ => Err(self.wrong("finish a listing")),
        }
    }

    /// Answers a query: the stored file's size and digest (if known without rehashing), and the
    /// partial upload's resumable offset.
    pub fn reply_query(
        &mut self,
        stored_size: Option<u64>,
        stored_digest: Option<Digest>,
        partial_offset: Option<u64>,
    ) -> Result<(), CommandError> {
        match self.decision("answer a query")? {
            Decision::Query => {
                self.core.send(&Frame::QueryReply {
                    stored_size,
                    partial_offset,
                    stored_digest: stored_size.and(stored_digest),
                });
                self.state = State::Idle;
                Ok(())
            }
            _ => Err(self.wrong("answer a query")),
        }
    }

    /// Confirms a removal, a move, or an upload that is now durable and visible under its name (the
    /// oldest pending one, under version 2).
    pub fn confirm(&mut self) -> Result<(), CommandError> {
        if self.pending_commits > 0 && !self.core.is_closed() {
            self.pending_commits -= 1;
            self.core.send(&Frame::Ack);
            return Ok(());
        }
        match self.decision("confirm")? {
            Decision::Remove | Decision::Move | Decision::Commit => {
                self.core.send(&Frame::Ack);
                self.state = State::Idle;
                Ok(())
            }
            _ => Err(self.wrong("confirm")),
        }
    }
}

/// Version 2, with commits pending: whether `frame` would be answered before them. Such a
/// request waits in the input until they are answered; an eager upload with a valid name is
/// read on (its data joins the next group of commits), and so is anything that is no request.
fn answers_before_commits(frame: &Frame<'_>) -> bool {
    match frame {
        Frame::Put {
            eager: true, name, ..
        } => validate_name(name).is_err(),
        Frame::Put { .. }
        | Frame::Get { .. }
        | Frame::List { .. }
        | Frame::Remove { .. }
        | Frame::Move { .. }
        | Frame::Query { .. } => true,
        _ => false,
    }
}
