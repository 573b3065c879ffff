//! The client side of a connection (PROTOCOL.md §5, "Client states").

use crate::core::{Config, Core, Received};
use crate::digest::{Digest, HashCheckpoint};
use crate::error::{CommandError, ErrorCode, ProtocolError};
use crate::frame::{Frame, SourceTag, decode_frame};
use crate::limits::{MAX_TOKEN_LEN, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
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

#[derive(Debug)]
enum State {
    Handshake,
    Idle,
    Awaiting(Request),
    Sending(Outbound),
    Receiving(Inbound),
    Closed,
}

#[derive(Debug, Clone)]
enum Request {
    PutReady { size: u64 },
    PutStored,
    GetReady { checkpoint: HashCheckpoint },
    List,
    Remove,
    Query,
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

impl State {
    fn describe(&self) -> &'static str {
        match self {
            State::Handshake => "awaiting the server's WELCOME",
            State::Idle => "idle",
            State::Awaiting(Request::PutReady { .. }) => "awaiting the answer to PUT",
            State::Awaiting(Request::PutStored) => {
                "awaiting confirmation that the upload is stored"
            }
            State::Awaiting(Request::GetReady { .. }) => "awaiting the answer to GET",
            State::Awaiting(Request::List) => "receiving a listing",
            State::Awaiting(Request::Remove) => "awaiting the answer to REMOVE",
            State::Awaiting(Request::Query) => "awaiting the answer to QUERY",
            State::Sending(_) => "sending an upload",
            State::Receiving(_) => "receiving a download",
            State::Closed => "closed",
        }
    }
}

/// The client side of one connection: commands in, bytes to send and events out.
///
/// One request at a time: a command is accepted only when [`is_idle`](Self::is_idle).
#[derive(Debug)]
pub struct ClientConnection {
    core: Core<ClientEvent>,
    state: State,
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
            interrupted_download: None,
        })
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
                State::Closed => break,
                _ => {}
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
        self.leave_state(State::Closed);
        self.core.fail(error)
    }

    /// Changes state, keeping the hash state of a download that ends unfinished.
    fn leave_state(&mut self, next: State) {
        if let State::Receiving(inbound) = std::mem::replace(&mut self.state, next) {
            self.interrupted_download = Some(inbound.checkpoint());
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), ProtocolError> {
        let unexpected = ProtocolError::UnexpectedFrame {
            frame: frame.name(),
            state: self.state.describe(),
        };
        match (&mut self.state, frame) {
            (_, Frame::Ping { nonce }) => self.core.send(&Frame::Pong { nonce }),
            (_, Frame::Pong { nonce }) => self.core.push_event(ClientEvent::Pong { nonce }),
            // PROTOCOL.md §11: these codes are fatal, so the server has closed the connection.
            // One can cross a request on the wire (the server's idle timeout fires as the client
            // asks): it ends the connection, it does not refuse the request.
            (State::Awaiting(_), Frame::Error { code, message }) if !is_fatal(code) => {
                self.core.push_event(ClientEvent::Refused {
                    code,
                    message: message.to_owned(),
                });
                self.state = State::Idle;
            }
            (_, Frame::Error { code, message }) => {
                return Err(ProtocolError::Peer {
                    code,
                    message: message.to_owned(),
                });
            }
            (State::Handshake, Frame::Welcome { version }) => {
                if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
                    return Err(ProtocolError::UnsupportedVersion {
                        ours_min: MIN_PROTOCOL_VERSION,
                        ours_max: PROTOCOL_VERSION,
                        theirs_min: version,
                        theirs_max: version,
                    });
                }
                self.core.push_event(ClientEvent::Connected { version });
                self.state = State::Idle;
            }
            (State::Awaiting(Request::PutReady { size }), Frame::PutReady { offset }) => {
                if offset > *size {
                    return Err(unexpected);
                }
                self.state = State::Sending(Outbound::new(*size, offset));
                self.core.push_event(ClientEvent::PutReady { offset });
            }
            (State::Awaiting(Request::PutStored), Frame::Ack) => {
                self.core.push_event(ClientEvent::PutStored);
                self.state = State::Idle;
            }
            (
                State::Awaiting(Request::GetReady { checkpoint }),
                Frame::GetReady { size, offset },
            ) => {
                if offset != checkpoint.offset() || offset > size {
                    return Err(unexpected);
                }
                let inbound = Inbound::new(size, checkpoint);
                self.state = State::Receiving(inbound);
                self.interrupted_download = None;
                self.core.push_event(ClientEvent::GetReady { size, offset });
            }
            (State::Receiving(inbound), Frame::Data { len }) => inbound.start_chunk(len)?,
            (State::Receiving(inbound), Frame::Done { digest }) => match inbound.finish(digest)? {
                Finished::Verified(digest) => {
                    self.core.push_event(ClientEvent::GetVerified { digest });
                    self.state = State::Idle;
                }
                Finished::DigestMismatch(error) => return Err(error),
            },
            (
                State::Awaiting(Request::List),
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
            (State::Awaiting(Request::List), Frame::ListEnd) => {
                self.core.push_event(ClientEvent::ListEnd);
                self.state = State::Idle;
            }
            (State::Awaiting(Request::Remove), Frame::Ack) => {
                self.core.push_event(ClientEvent::Removed);
                self.state = State::Idle;
            }
            (
                State::Awaiting(Request::Query),
                Frame::QueryReply {
                    stored_size,
                    partial_offset,
                    stored_digest,
                },
            ) => {
                self.core.push_event(ClientEvent::QueryReply {
                    stored_size,
                    stored_digest,
                    partial_offset,
                });
                self.state = State::Idle;
            }
            _ => return Err(unexpected),
        }
        Ok(())
    }

    /// The server closed its side: an error unless the connection was idle.
    pub fn handle_eof(&mut self, _now: Timestamp) -> Result<(), ProtocolError> {
        self.core.check()?;
        let idle = matches!(self.state, State::Idle | State::Closed);
        let during = self.state.describe();
        self.leave_state(State::Closed);
        self.core.close();
        if idle {
            Ok(())
        } else {
            Err(self.fail(ProtocolError::UnexpectedEof { during }))
        }
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
            State::Receiving(_) => (
                "download data",
                self.core.timed_out(now, config.idle_timeout),
            ),
            State::Awaiting(_) => ("reply", self.core.timed_out(now, config.idle_timeout)),
            State::Idle | State::Sending(_) | State::Closed => return Ok(()),
        };
        if due {
            Err(self.fail(ProtocolError::Timeout { what }))
        } else {
            Ok(())
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called. No deadline runs while
    /// the client has the next move (idle, or sending an upload).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::Handshake => self
                .core
                .handshake_deadline(self.core.config.handshake_timeout),
            State::Awaiting(_) | State::Receiving(_) => {
                self.core.deadline(self.core.config.idle_timeout)
            }
            State::Idle | State::Sending(_) | State::Closed => None,
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

    /// Whether a new request may be sent.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The fatal error that closed the connection, if one did.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.core.error()
    }

    /// File bytes of the current upload still to be sent, if one is under way.
    pub fn upload_remaining(&self) -> Option<u64> {
        match &self.state {
            State::Sending(outbound) => Some(outbound.remaining()),
            _ => None,
        }
    }

    /// Hash state of the download being received (or of the last one, if it ended unfinished),
    /// for a local checkpoint beside the partial file.
    pub fn download_checkpoint(&self) -> Option<HashCheckpoint> {
        match &self.state {
            State::Receiving(inbound) => Some(inbound.checkpoint()),
            _ => self.interrupted_download.clone(),
        }
    }

    fn request(
        &mut self,
        command: &'static str,
        frame: &Frame<'_>,
        next: Request,
    ) -> Result<(), CommandError> {
        match self.state {
            State::Idle => {
                self.core.send(frame);
                self.state = State::Awaiting(next);
                Ok(())
            }
            State::Closed => Err(CommandError::Closed),
            ref other => Err(CommandError::WrongState {
                command,
                state: other.describe(),
            }),
        }
    }

    /// Asks to upload `size` bytes as `name`. With `resume`, the server may answer with an
    /// offset past 0 if it holds a partial upload with the same `tag`.
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
            tag,
        };
        self.request("upload", &frame, Request::PutReady { size })
    }

    /// Frames the next `data.len()` bytes of the upload. Queues only the `DATA` header: send
    /// what [`poll_transmit`](Self::poll_transmit) gives, then `data` itself, in that order.
    pub fn send_file_data(&mut self, data: &[u8]) -> Result<(), CommandError> {
        match &mut self.state {
            State::Sending(outbound) => {
                let len = outbound.take(data.len())?;
                self.core.send(&Frame::Data { len });
                Ok(())
            }
            State::Closed => Err(CommandError::Closed),
            other => Err(CommandError::WrongState {
                command: "send file data",
                state: other.describe(),
            }),
        }
    }

    /// Ends the upload with the digest of the whole file, once every byte was sent.
    pub fn finish_upload(&mut self, digest: Digest) -> Result<(), CommandError> {
        match &self.state {
            State::Sending(outbound) if outbound.remaining() == 0 => {
                self.core.send(&Frame::Done { digest });
                self.state = State::Awaiting(Request::PutStored);
                Ok(())
            }
            State::Closed => Err(CommandError::Closed),
            other => Err(CommandError::WrongState {
                command: "finish the upload",
                state: if matches!(other, State::Sending(_)) {
                    "file bytes remain to be sent"
                } else {
                    other.describe()
                },
            }),
        }
    }

    /// Abandons the upload under way; the server keeps what it has, to resume later.
    pub fn cancel_upload(&mut self) -> Result<(), CommandError> {
        match &self.state {
            State::Sending(_) => {
                self.core.send(&Frame::Cancel);
                self.state = State::Idle;
                Ok(())
            }
            State::Closed => Err(CommandError::Closed),
            other => Err(CommandError::WrongState {
                command: "cancel the upload",
                state: other.describe(),
            }),
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
mod tests {
    use super::*;
    use crate::limits::MAGIC;

    fn connected_and_listing() -> ClientConnection {
        let mut conn =
            ClientConnection::new(Config::default(), Timestamp::ZERO, b"").expect("empty token");
        let mut input = MAGIC.to_vec();
        Frame::Welcome { version: 1 }.encode(&mut input);
        let received = conn.handle_input(Timestamp::ZERO, &input).expect("welcome");
        assert_eq!(received.consumed, input.len());
        assert_eq!(
            conn.poll_event(),
            Some(ClientEvent::Connected { version: 1 })
        );
        conn.list("").expect("idle");
        conn
    }

    fn error_frame(code: ErrorCode) -> Vec<u8> {
        let mut input = Vec::new();
        Frame::Error {
            code,
            message: "why",
        }
        .encode(&mut input);
        input
    }

    #[test]
    fn a_fatal_error_crossing_a_request_closes_the_connection() {
        let mut conn = connected_and_listing();
        let input = error_frame(ErrorCode::Timeout);
        let result = conn.handle_input(Timestamp::ZERO, &input);
        assert!(
            matches!(
                result,
                Err(ProtocolError::Peer {
                    code: ErrorCode::Timeout,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(conn.is_closed());
        assert_eq!(conn.poll_event(), None);
    }

    #[test]
    fn a_refusal_of_a_request_keeps_the_connection() {
        let mut conn = connected_and_listing();
        let input = error_frame(ErrorCode::NotFound);
        let received = conn.handle_input(Timestamp::ZERO, &input).expect("refusal");
        assert_eq!(received.consumed, input.len());
        assert!(matches!(
            conn.poll_event(),
            Some(ClientEvent::Refused {
                code: ErrorCode::NotFound,
                ..
            })
        ));
        assert!(conn.is_idle());
    }
}
