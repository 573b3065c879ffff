//! The client side of a connection (PROTOCOL.md §5, "Client states").

use std::collections::VecDeque;

use crate::core::{Config, Core, Received};
use crate::digest::{Digest, HashCheckpoint};
use crate::error::{CommandError, ErrorCode, ProtocolError};
use crate::frame::{Frame, SourceTag, decode_frame};
use crate::limits::{
    MAX_TOKEN_LEN, MIN_PROTOCOL_VERSION, MOVE_VERSION, PROTOCOL_VERSION, STREAMED_SINCE,
};
use crate::name::{validate_name, validate_prefix};
use crate::time::Timestamp;
use crate::transfer::{Finished, Inbound, Outbound};

/// One file in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// What the client's driver learns from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The handshake is complete; requests may be sent.
    Connected {
        /// Version agreed on.
        version: u16,
    },
    /// The server said "go ahead from `offset`": send the file from there with
    /// [`ClientConnection::send_file_data`], then [`ClientConnection::finish_upload`].
    PutReady {
        /// First byte the server wants.
        offset: u64,
    },
    /// The upload is durable on the server under its name.
    PutStored,
    /// The download starts: `size - offset` bytes follow as `file_data`.
    GetReady {
        /// Total size of the file.
        size: u64,
        /// First byte that will arrive.
        offset: u64,
    },
    /// The download is complete and its bytes match the server's digest.
    GetVerified {
        /// The file's digest.
        digest: Digest,
    },
    /// One entry of a listing.
    ListEntry(ListEntry),
    /// The listing is complete.
    ListEnd,
    /// The file was removed.
    Removed,
    /// The file (or folder) has its new name.
    Moved,
    /// Answer to a query.
    QueryReply {
        /// Size of the stored file, if any.
        stored_size: Option<u64>,
        /// Digest of the stored file, if the server knows it without rehashing.
        stored_digest: Option<Digest>,
        /// Resumable bytes of a partial upload with the same tag, if any.
        partial_offset: Option<u64>,
    },
    /// The server refused the current request; the connection stays usable.
    Refused {
        /// Machine-readable reason.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// Answer to [`ClientConnection::ping`].
    Pong {
        /// The ping's value.
        nonce: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Open,
    Closed,
}

/// A reply the client waits for, in the order the requests were sent.
#[derive(Debug, Clone)]
enum Request {
    /// A streamed upload's `PUT` has `size` 0 and must be answered from offset 0.
    PutReady {
        size: u64,
        streamed: bool,
    },
    PutStored,
    GetReady {
        checkpoint: HashCheckpoint,
    },
    List,
    Remove,
    Move,
    Query,
}

impl Request {
    fn describe(&self) -> &'static str {
        match self {
            Request::PutReady { .. } => "awaiting the answer to PUT",
            Request::PutStored => "awaiting confirmation that the upload is stored",
            Request::GetReady { .. } => "awaiting the answer to GET",
            Request::List => "receiving a listing",
            Request::Remove => "awaiting the answer to REMOVE",
            Request::Move => "awaiting the answer to MOVE",
            Request::Query => "awaiting the answer to QUERY",
        }
    }
}

/// The upload whose data this side is sending.
#[derive(Debug)]
struct Sending {
    outbound: Outbound,
    /// Sent without waiting for `PUT_READY` (version 2): its answer is the last one awaited
    /// until the server refuses it or its `DONE` is sent.
    eager: bool,
    /// The server refused this eager upload: the rest of its data is dropped by the server.
    refused: bool,
}

/// Codes after which the server always closes the connection (PROTOCOL.md §11, "fatal? yes").
fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Timeout
            | ErrorCode::UnexpectedFrame
            | ErrorCode::MalformedFrame
            | ErrorCode::NotFerry
    )
}

/// The client side of one connection: commands in, bytes to send and events out.
///
/// Under version 1, one request at a time: a command is accepted only when
/// [`is_idle`](Self::is_idle). Under version 2 requests may be pipelined while
/// [`can_pipeline`](Self::can_pipeline): the server answers them in order, and events come
/// out in that order (PROTOCOL.md §5, "Pipelining").
#[derive(Debug)]
pub struct ClientConnection {
    core: Core<ClientEvent>,
    state: State,
    /// Version agreed on, once connected.
    version: u16,
    /// Replies still to come, oldest first.
    awaiting: VecDeque<Request>,
    /// The upload being sent, if any.
    sending: Option<Sending>,
    /// The download being received, if any (its `GET` is answered; later replies wait).
    receiving: Option<Inbound>,
    /// Hash state of a download that ended without completing.
    interrupted_download: Option<HashCheckpoint>,
}

impl ClientConnection {
    /// A connection opened at `now`, presenting `token` (empty for none). The magic and
    /// `HELLO` are queued for transmission at once.
    pub fn new(config: Config, now: Timestamp, token: &[u8]) -> Result<Self, CommandError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(CommandError::TooLong {
                field: "token",
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let mut core = Core::new(config, now);
        core.send(&Frame::Hello {
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            token,
        });
        Ok(ClientConnection {
            core,
            state: State::Handshake,
            version: MIN_PROTOCOL_VERSION,
            awaiting: VecDeque::new(),
            sending: None,
            receiving: None,
            interrupted_download: None,
        })
    }

    /// What the connection is doing, for error messages.
    fn describe(&self) -> &'static str {
        match self.state {
            State::Handshake => "awaiting the server's WELCOME",
            State::Closed => "closed",
            State::Open if self.receiving.is_some() => "receiving a download",
            State::Open if self.sending.is_some() => "sending an upload",
            State::Open => self.awaiting.front().map_or("idle", Request::describe),
        }
    }

    /// Bytes from the server; see [`Received`]. Returns early after any event.
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
        while self.core.events_len() == events_before && self.state != State::Closed {
            let rest = &input[pos..];
            if let Some(inbound) = self.receiving.as_mut().filter(|inbound| inbound.in_chunk()) {
                if rest.is_empty() {
                    break;
                }
                let data = inbound.take(rest);
                return Ok(Received {
                    consumed: pos + data.len(),
                    file_data: data,
                });
            }
            let (frame, used) = match decode_frame(rest) {
                Ok(Some(decoded)) => decoded,
                Ok(None) => break,
                Err(error) => return Err(self.fail(error.into())),
            };
            pos += used;
            if let Err(error) = self.on_frame(frame) {
                return Err(self.fail(error));
            }
        }
        Ok(Received::frames(pos))
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.close_state();
        self.core.fail(error)
    }

    /// Ends every exchange, keeping the hash state of a download that ends unfinished.
    fn close_state(&mut self) {
        self.state = State::Closed;
        self.awaiting.clear();
        self.sending = None;
        if let Some(inbound) = self.receiving.take() {
            self.interrupted_download = Some(inbound.checkpoint());
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), ProtocolError> {
        let unexpected = ProtocolError::UnexpectedFrame {
            frame: frame.name(),
            state: self.describe(),
        };
        if let Some(inbound) = self.receiving.as_mut() {
            return match frame {
                Frame::Ping { nonce } => {
                    self.core.send(&Frame::Pong { nonce });
                    Ok(())
                }
                Frame::Pong { nonce } => {
                    self.core.push_event(ClientEvent::Pong { nonce });
                    Ok(())
                }
                Frame::Data { len } => inbound.start_chunk(len),
                Frame::Done { digest } => match inbound.finish(digest)? {
                    Finished::Verified(digest) => {
                        self.receiving = None;
                        self.core.push_event(ClientEvent::GetVerified { digest });
                        Ok(())
                    }
                    Finished::DigestMismatch(error) => Err(error),
                },
                Frame::Error { code, message } => Err(ProtocolError::Peer {
                    code,
                    message: message.to_owned(),
                }),
                _ => Err(unexpected),
            };
        }
        match (self.state, self.awaiting.front(), frame) {
            (_, _, Frame::Ping { nonce }) => self.core.send(&Frame::Pong { nonce }),
            (_, _, Frame::Pong { nonce }) => self.core.push_event(ClientEvent::Pong { nonce }),
            // PROTOCOL.md §11: these codes are fatal, so the server has closed the connection.
            // One can cross a request on the wire (the server's idle timeout fires as the client
            // asks): it ends the connection, it does not refuse the request.
            (State::Open, Some(_), Frame::Error { code, message }) if !is_fatal(code) => {
                self.awaiting.pop_front();
                if self.awaiting.is_empty()
                    && let Some(sending) = self.sending.as_mut().filter(|s| s.eager && !s.refused)
                {
                    sending.refused = true;
                }
                self.core.push_event(ClientEvent::Refused {
                    code,
                    message: message.to_owned(),
                });
            }
            (_, _, Frame::Error { code, message }) => {
                return Err(ProtocolError::Peer {
                    code,
                    message: message.to_owned(),
                });
            }
            (State::Handshake, _, Frame::Welcome { version }) => {
                if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
                    return Err(ProtocolError::UnsupportedVersion {
                        ours_min: MIN_PROTOCOL_VERSION,
                        ours_max: PROTOCOL_VERSION,
                        theirs_min: version,
                        theirs_max: version,
                    });
                }
                self.version = version;
                self.state = State::Open;
                self.core.push_event(ClientEvent::Connected { version });
            }
            (
                State::Open,
                Some(&Request::PutReady { size, streamed }),
                Frame::PutReady { offset },
            ) => {
                // PROTOCOL.md §7: a streamed upload cannot resume, so it starts at byte 0.
                if offset > size {
                    return Err(unexpected);
                }
                self.awaiting.pop_front();
                self.sending = Some(Sending {
                    outbound: if streamed {
                        Outbound::streamed()
                    } else {
                        Outbound::new(size, offset)
                    },
                    eager: false,
                    refused: false,
                });
                self.core.push_event(ClientEvent::PutReady { offset });
            }
            (State::Open, Some(Request::PutStored), Frame::Ack) => {
                // The eager upload being sent cannot be stored before its DONE.
                if self.awaiting.len() == 1
                    && self.sending.as_ref().is_some_and(|s| s.eager && !s.refused)
                {
                    return Err(unexpected);
                }
                self.awaiting.pop_front();
                self.core.push_event(ClientEvent::PutStored);
            }
            (
                State::Open,
                Some(Request::GetReady { checkpoint }),
                Frame::GetReady { size, offset },
            ) => {
                if offset != checkpoint.offset() || offset > size {
                    return Err(unexpected);
                }
                self.receiving = Some(Inbound::new(size, checkpoint));
                self.awaiting.pop_front();
                self.interrupted_download = None;
                self.core.push_event(ClientEvent::GetReady { size, offset });
            }
            (
                State::Open,
                Some(Request::List),
                Frame::Entry {
                    name,
                    size,
                    modified_ms,
                },
            ) => {
                self.core.push_event(ClientEvent::ListEntry(ListEntry {
                    name: name.to_owned(),
                    size,
                    modified_ms,
                }));
            }
            (State::Open, Some(Request::List), Frame::ListEnd) => {
                self.awaiting.pop_front();
                self.core.push_event(ClientEvent::ListEnd);
            }
            (State::Open, Some(Request::Remove), Frame::Ack) => {
                self.awaiting.pop_front();
                self.core.push_event(ClientEvent::Removed);
            }
            (State::Open, Some(Request::Move), Frame::Ack) => {
                self.awaiting.pop_front();
                self.core.push_event(ClientEvent::Moved);
            }
            (
                State::Open,
                Some(Request::Query),
                Frame::QueryReply {
                    stored_size,
                    partial_offset,
                    stored_digest,
                },
            ) => {
                self.awaiting.pop_front();
                self.core.push_event(ClientEvent::QueryReply {
                    stored_size,
                    stored_digest,
                    partial_offset,
                });
            }
            _ => return Err(unexpected),
        }
        Ok(())
    }

    /// The server closed its side: an error unless nothing was under way.
    pub fn handle_eof(&mut self, _now: Timestamp) -> Result<(), ProtocolError> {
        self.core.check()?;
        let idle = self.state == State::Closed || (self.state == State::Open && self.is_idle());
        let during = self.describe();
        self.close_state();
        self.core.close();
        if idle {
            Ok(())
        } else {
            Err(self.fail(ProtocolError::UnexpectedEof { during }))
        }
    }

    /// Whether the server owes this side something (a reply, or download data).
    fn waiting_for_server(&self) -> bool {
        !self.awaiting.is_empty() || self.receiving.is_some()
    }

    /// Tells the connection the time; fails it if the server has been silent past its timeout
    /// while this side waits for it.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), ProtocolError> {
        self.core.check()?;
        let config = self.core.config;
        let (what, due) = match self.state {
            State::Handshake => (
                "handshake",
                self.core
                    .handshake_deadline(config.handshake_timeout)
                    .is_some_and(|deadline| now >= deadline),
            ),
            State::Open if self.receiving.is_some() => (
                "download data",
                self.core.timed_out(now, config.idle_timeout),
            ),
            State::Open if self.waiting_for_server() => {
                ("reply", self.core.timed_out(now, config.idle_timeout))
            }
            State::Open | State::Closed => return Ok(()),
        };
        if due {
            Err(self.fail(ProtocolError::Timeout { what }))
        } else {
            Ok(())
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called. No deadline runs while
    /// the server owes nothing (idle, or sending an upload it has not been asked to answer).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::Handshake => self
                .core
                .handshake_deadline(self.core.config.handshake_timeout),
            State::Open if self.waiting_for_server() => {
                self.core.deadline(self.core.config.idle_timeout)
            }
            State::Open | State::Closed => None,
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
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.core.poll_event()
    }

    /// Whether nothing is under way: a request may be sent under any version.
    pub fn is_idle(&self) -> bool {
        self.state == State::Open
            && self.awaiting.is_empty()
            && self.sending.is_none()
            && self.receiving.is_none()
    }

    /// The version agreed on with the server (meaningful once connected).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Whether another request may be sent now without waiting for the answers to earlier
    /// ones: when idle, or under version 2 when no upload's data is being sent and no `PUT`
    /// waits for its go-ahead.
    pub fn can_pipeline(&self) -> bool {
        self.is_idle()
            || (self.state == State::Open
                && self.version >= 2
                && self.sending.is_none()
                && !self
                    .awaiting
                    .iter()
                    .any(|request| matches!(request, Request::PutReady { .. })))
    }

    /// Requests sent whose answer has not begun to arrive.
    pub fn in_flight(&self) -> usize {
        self.awaiting.len()
    }

    /// Whether the server refused the eager upload whose data is being sent: send the rest
    /// and `DONE` (the server drops them), or close the connection.
    pub fn upload_refused(&self) -> bool {
        self.sending.as_ref().is_some_and(|sending| sending.refused)
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The fatal error that closed the connection, if one did.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.core.error()
    }

    /// File bytes of the current upload still to be sent, if one is under way (for a streamed
    /// upload, as many as can still be counted: its size is not known).
    pub fn upload_remaining(&self) -> Option<u64> {
        self.sending
            .as_ref()
            .map(|sending| sending.outbound.remaining())
    }

    /// Hash state of the download being received (or of the last one, if it ended unfinished),
    /// for a local checkpoint beside the partial file.
    pub fn download_checkpoint(&self) -> Option<HashCheckpoint> {
        match &self.receiving {
            Some(inbound) => Some(inbound.checkpoint()),
            None => self.interrupted_download.clone(),
        }
    }

    fn wrong(&self, command: &'static str) -> CommandError {
        match self.state {
            State::Closed => CommandError::Closed,
            _ => CommandError::WrongState {
                command,
                state: self.describe(),
            },
        }
    }

    fn request(
        &mut self,
        command: &'static str,
        frame: &Frame<'_>,
        next: Request,
    ) -> Result<(), CommandError> {
        if !self.can_pipeline() {
            return Err(self.wrong(command));
        }
        self.core.send(frame);
        self.awaiting.push_back(next);
        Ok(())
    }

    /// Asks to upload `size` bytes as `name`. With `resume`, the server may answer with an
    /// offset past 0 if it holds a partial upload with the same `tag`. Nothing more may be
    /// pipelined until the answer ([`ClientEvent::PutReady`]) has come and the data is sent.
    pub fn put(
        &mut self,
        name: &str,
        size: u64,
        overwrite: bool,
        resume: bool,
        tag: SourceTag,
    ) -> Result<(), CommandError> {
        validate_name(name)?;
        let frame = Frame::Put {
            name,
            size,
            overwrite,
            resume,
            eager: false,
            streamed: false,
            tag,
        };
        self.request(
            "upload",
            &frame,
            Request::PutReady {
                size,
                streamed: false,
            },
        )
    }

    /// Version 3: asks to upload as `name` a file whose size is not known yet (read from a
    /// pipe, say). After [`ClientEvent::PutReady`] (always from offset 0) send any number of
    /// bytes with [`send_file_data`](Self::send_file_data), then
    /// [`finish_upload`](Self::finish_upload), which tells the server the size counted here
    /// (`DONE_SIZED`, PROTOCOL.md §7). A streamed upload cannot be resumed: the server keeps
    /// nothing of one that does not finish.
    pub fn put_streamed(&mut self, name: &str, overwrite: bool) -> Result<(), CommandError> {
        validate_name(name)?;
        if self.state == State::Open && self.version < STREAMED_SINCE {
            return Err(CommandError::WrongState {
                command: "send a streamed upload",
                state: "connected with a version older than 3, which has no streamed uploads",
            });
        }
        let frame = Frame::Put {
            name,
            size: 0,
            overwrite,
            resume: false,
            eager: false,
            streamed: true,
            tag: SourceTag::default(),
        };
        self.request(
            "upload",
            &frame,
            Request::PutReady {
                size: 0,
                streamed: true,
            },
        )
    }

    /// Version 2: uploads `size` bytes as `name` from byte 0 without waiting for the server's
    /// go-ahead: send the data at once with [`send_file_data`](Self::send_file_data), then
    /// [`finish_upload`](Self::finish_upload). The one answer, in order with the others, is
    /// [`ClientEvent::PutStored`] or [`ClientEvent::Refused`]; after a refusal the server drops
    /// the rest of the data ([`upload_refused`](Self::upload_refused) tells). An eager upload
    /// cannot be cancelled: finish it, or close the connection.
    pub fn put_eager(
        &mut self,
        name: &str,
        size: u64,
        overwrite: bool,
        tag: SourceTag,
    ) -> Result<(), CommandError> {
        validate_name(name)?;
        if self.version < 2 {
            return Err(CommandError::WrongState {
                command: "send an eager upload",
                state: "connected with version 1",
            });
        }
        let frame = Frame::Put {
            name,
            size,
            overwrite,
            resume: false,
            eager: true,
            streamed: false,
            tag,
        };
        self.request("upload", &frame, Request::PutStored)?;
        self.sending = Some(Sending {
            outbound: Outbound::new(size, 0),
            eager: true,
            refused: false,
        });
        Ok(())
    }

    /// Frames the next `data.len()` bytes of the upload. Queues only the `DATA` header: send
    /// what [`poll_transmit`](Self::poll_transmit) gives, then `data` itself, in that order.
    pub fn send_file_data(&mut self, data: &[u8]) -> Result<(), CommandError> {
        let Some(sending) = self.sending.as_mut() else {
            return Err(self.wrong("send file data"));
        };
        let len = sending.outbound.take(data.len())?;
        self.core.send(&Frame::Data { len });
        Ok(())
    }

    /// Ends the upload with the digest of the whole file, once every byte was sent. A
    /// streamed upload ends here whenever the caller says, with `DONE_SIZED` carrying the
    /// bytes sent.
    pub fn finish_upload(&mut self, digest: Digest) -> Result<(), CommandError> {
        match &self.sending {
            Some(sending) if sending.outbound.is_streamed() => {
                let size = sending.outbound.sent();
                self.core.send(&Frame::DoneSized { size, digest });
                self.awaiting.push_back(Request::PutStored);
                self.sending = None;
                Ok(())
            }
            Some(sending) if sending.outbound.remaining() == 0 => {
                self.core.send(&Frame::Done { digest });
                if !sending.eager {
                    self.awaiting.push_back(Request::PutStored);
                }
                self.sending = None;
                Ok(())
            }
            Some(_) => Err(CommandError::WrongState {
                command: "finish the upload",
                state: "file bytes remain to be sent",
            }),
            None => Err(self.wrong("finish the upload")),
        }
    }

    /// Abandons the upload under way; the server keeps what it has, to resume later. Not for
    /// an eager upload (see [`put_eager`](Self::put_eager)).
    pub fn cancel_upload(&mut self) -> Result<(), CommandError> {
        match &self.sending {
            Some(sending) if !sending.eager => {
                self.core.send(&Frame::Cancel);
                self.sending = None;
                Ok(())
            }
            Some(_) => Err(CommandError::WrongState {
                command: "cancel the upload",
                state: "sending an eager upload, which is finished or dropped with the connection",
            }),
            None => Err(self.wrong("cancel the upload")),
        }
    }

    /// Asks to download `name`, resuming after what `checkpoint` covers
    /// ([`HashCheckpoint::start`] for the whole file).
    pub fn get(&mut self, name: &str, checkpoint: HashCheckpoint) -> Result<(), CommandError> {
        validate_name(name)?;
        let frame = Frame::Get {
            name,
            offset: checkpoint.offset(),
        };
        self.request("download", &frame, Request::GetReady { checkpoint })
    }

    /// Asks for the files whose names start with `prefix`.
    pub fn list(&mut self, prefix: &str) -> Result<(), CommandError> {
        validate_prefix(prefix)?;
        self.request("list", &Frame::List { prefix }, Request::List)
    }

    /// Asks to remove `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), CommandError> {
        validate_name(name)?;
        self.request("remove", &Frame::Remove { name }, Request::Remove)
    }

    /// Version 3: asks to give the file (or folder) `from` the name `to`, atomically; with
    /// `overwrite`, a file stored under `to` is replaced (a folder never is). The answer is
    /// [`ClientEvent::Moved`] or [`ClientEvent::Refused`]. Refused here, with nothing sent, if
    /// the server agreed on an older version ([`CommandError::ServerTooOld`]).
    pub fn move_file(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), CommandError> {
        validate_name(from)?;
        validate_name(to)?;
        if self.state == State::Open && self.version < MOVE_VERSION {
            return Err(CommandError::ServerTooOld {
                operation: "MOVE (renaming files)",
                version: self.version,
            });
        }
        let frame = Frame::Move {
            from,
            to,
            overwrite,
        };
        self.request("move", &frame, Request::Move)
    }

    /// Asks what the server holds under `name`: a stored file, a partial upload for `tag`.
    pub fn query(&mut self, name: &str, tag: SourceTag) -> Result<(), CommandError> {
        validate_name(name)?;
        self.request("query", &Frame::Query { name, tag }, Request::Query)
    }

    /// Sends a `PING`; the server's `PONG` arrives as [`ClientEvent::Pong`]. Allowed in any
    /// state but closed.
    pub fn ping(&mut self, nonce: u64) -> Result<(), CommandError> {
        if self.core.is_closed() {
            return Err(CommandError::Closed);
        }
        self.core.send(&Frame::Ping { nonce });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
