//! Typed frames and their codec (PROTOCOL.md §3–4).
//!
//! Every frame is `type: u8 | length: u32 BE | payload`. [`decode_frame`] reads one frame from
//! the front of a buffer, borrowing its fields from that buffer, and answers `Ok(None)` when
//! more bytes are needed. A length above the frame type's limit is rejected from the header
//! alone, before the payload arrives, so a peer can never make us wait for (or buffer) more than
//! [`MAX_CONTROL_PAYLOAD`] bytes.
//!
//! `DATA` is special: [`Frame::Data`] is only the header. The `len` payload bytes that follow are
//! raw file data, which the connection hands to its driver by reference.

use crate::digest::{DIGEST_LEN, Digest};
use crate::error::ErrorCode;
use crate::limits::{
    FRAME_HEADER_LEN, MAX_CONTROL_PAYLOAD, MAX_DATA_CHUNK, MAX_MESSAGE_LEN, MAX_TOKEN_LEN,
    MAX_WIRE_NAME_LEN,
};
use crate::wire::{Reader, put_bytes16};

/// An opaque tag the client derives from its local file (size, modification time, ...). A
/// partial upload resumes only under the same name and tag, so bytes of one file are never
/// completed with bytes of another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceTag(pub [u8; 16]);

/// Flag bit in `PUT`: replace an existing file.
const PUT_OVERWRITE: u8 = 0b01;
/// Flag bit in `PUT`: continue a partial upload if the server holds one.
const PUT_RESUME: u8 = 0b10;
/// `PUT` flag bit 2 (version 2): data follows without waiting for `PUT_READY`.
const PUT_EAGER: u8 = 0b100;
/// `PUT` flag bit 3 (version 3): the size is not known in advance; it comes in `DONE_SIZED`.
const PUT_STREAMED: u8 = 0b1000;

/// Flag bit in `MOVE` (version 3): replace an existing file at the new name.
const MOVE_OVERWRITE: u8 = 0b1;

/// Sentinel for "absent" in `QUERY_REPLY` sizes.
const ABSENT: u64 = u64::MAX;

/// One protocol frame, its fields borrowed from the buffer it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// Client → server, first frame: the versions the client speaks and its access token.
    Hello {
        /// Oldest version the client speaks.
        min_version: u16,
        /// Newest version the client speaks.
        max_version: u16,
        /// Access token, empty if none.
        token: &'a [u8],
    },
    /// Server → client: the version chosen for this connection.
    Welcome {
        /// Chosen version.
        version: u16,
    },
    /// Client → server: request to upload a file.
    Put {
        /// Name to store the file under.
        name: &'a str,
        /// Total size of the file in bytes.
        size: u64,
        /// Replace an existing file of that name.
        overwrite: bool,
        /// Continue a partial upload of this name and tag if the server holds one.
        resume: bool,
        /// Version 2: the file's data follows at once from byte 0, without waiting for
        /// `PUT_READY` (PROTOCOL.md §5, "Pipelining"). Never together with `resume`.
        eager: bool,
        /// Version 3: the size is not known in advance (`size` is 0); the upload ends with
        /// `DONE_SIZED`, which carries it (PROTOCOL.md §7, "Streamed uploads"). Never together
        /// with `resume` or `eager`.
        streamed: bool,
        /// Identity of the client's local file, for resume.
        tag: SourceTag,
    },
    /// Client → server: request to download a file from `offset`.
    Get {
        /// Name of the file.
        name: &'a str,
        /// First byte wanted; a multiple of the hash unit (PROTOCOL.md §7).
        offset: u64,
    },
    /// Client → server: list files whose names start with `prefix`.
    List {
        /// Name prefix; empty for everything.
        prefix: &'a str,
    },
    /// Client → server: remove a file.
    Remove {
        /// Name of the file.
        name: &'a str,
    },
    /// Client → server: what does the server hold under this name (stored and partial)?
    Query {
        /// Name of the file.
        name: &'a str,
        /// Tag of the client's file, to match a partial upload.
        tag: SourceTag,
    },
    /// Client → server (version 3): give a stored file, or a folder with everything under
    /// it, a new name, atomically (PROTOCOL.md §5, "Move").
    Move {
        /// The name it has now.
        from: &'a str,
        /// The name it gets.
        to: &'a str,
        /// Replace a file stored under `to` (never a folder).
        overwrite: bool,
    },
    /// Server → client: "go ahead", sending from `offset`.
    PutReady {
        /// First byte the server wants.
        offset: u64,
    },
    /// Server → client: the download starts; `size - offset` bytes of data follow.
    GetReady {
        /// Total size of the file.
        size: u64,
        /// First byte that will be sent.
        offset: u64,
    },
    /// Server → client: one listing entry.
    Entry {
        /// File name.
        name: &'a str,
        /// Size in bytes.
        size: u64,
        /// Last modification, milliseconds since the Unix epoch.
        modified_ms: u64,
    },
    /// Server → client: the listing is complete.
    ListEnd,
    /// Server → client: the upload is stored (durable, under its name) or the file removed.
    Ack,
    /// Server → client: answer to `QUERY`.
    QueryReply {
        /// Size of the stored file, if one exists.
        stored_size: Option<u64>,
        /// Bytes of a resumable partial upload with the same tag, if any.
        partial_offset: Option<u64>,
        /// Digest of the stored file, if the server knows it without rehashing.
        stored_digest: Option<Digest>,
    },
    /// Header of `len` bytes of file data that follow in the stream.
    Data {
        /// Payload length.
        len: u32,
    },
    /// The sender's last frame of a transfer: the digest of the whole file.
    Done {
        /// BLAKE3 of the whole file.
        digest: Digest,
    },
    /// The client's last frame of a streamed upload: the size and digest of the whole file.
    DoneSized {
        /// Bytes in the whole file, counted by the sender.
        size: u64,
        /// BLAKE3 of the whole file.
        digest: Digest,
    },
    /// The sender abandons the transfer; a partial upload stays resumable.
    Cancel,
    /// Liveness check; the peer answers `PONG` with the same nonce.
    Ping {
        /// Echoed value.
        nonce: u64,
    },
    /// Answer to `PING`.
    Pong {
        /// The `PING`'s value.
        nonce: u64,
    },
    /// A refusal or error with a code and a human message.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// What a person should know.
        message: &'a str,
    },
}

/// Wire type bytes, PROTOCOL.md §4.
mod ty {
    pub const HELLO: u8 = 0x01;
    pub const WELCOME: u8 = 0x02;
    pub const PUT: u8 = 0x10;
    pub const GET: u8 = 0x11;
    pub const LIST: u8 = 0x12;
    pub const REMOVE: u8 = 0x13;
    pub const QUERY: u8 = 0x14;
    pub const MOVE: u8 = 0x15;
    pub const PUT_READY: u8 = 0x20;
    pub const GET_READY: u8 = 0x21;
    pub const ENTRY: u8 = 0x22;
    pub const LIST_END: u8 = 0x23;
    pub const ACK: u8 = 0x24;
    pub const QUERY_REPLY: u8 = 0x25;
    pub const DATA: u8 = 0x30;
    pub const DONE: u8 = 0x31;
    pub const CANCEL: u8 = 0x32;
    pub const DONE_SIZED: u8 = 0x33;
    pub const PING: u8 = 0x40;
    pub const PONG: u8 = 0x41;
    pub const ERROR: u8 = 0x7f;
}

/// Why bytes could not be decoded as a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The type byte is not a known frame type.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// The header declares a payload above the frame type's limit.
    #[error("frame type {ty:#04x} declares {len} payload bytes; the limit is {max}")]
    TooLarge {
        /// Frame type.
        ty: u8,
        /// Declared length.
        len: u32,
        /// Limit for that type.
        max: usize,
    },
    /// The payload ends before all fields were read.
    #[error("the payload is shorter than its fields")]
    Truncated,
    /// The payload has bytes after its last field.
    #[error("{extra} unexpected bytes after the last field")]
    TrailingBytes {
        /// Count of extra bytes.
        extra: usize,
    },
    /// A length-prefixed field is above its limit.
    #[error("{field} is {len} bytes; the limit is {max}")]
    FieldTooLong {
        /// Field name.
        field: &'static str,
        /// Declared length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A text field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Field name.
        field: &'static str,
    },
    /// Unknown flag bits are set.
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// A `DATA` frame with no payload, which would let a peer spin us without progress.
    #[error("empty DATA frame")]
    EmptyData,
    /// A streamed `PUT` that declares a size: its size comes at the end (PROTOCOL.md §7).
    #[error("a streamed PUT declares size {0}; its size field must be 0")]
    StreamedSize(u64),
}

impl Frame<'_> {
    /// The frame's name as PROTOCOL.md writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "HELLO",
            Frame::Welcome { .. } => "WELCOME",
            Frame::Put { .. } => "PUT",
            Frame::Get { .. } => "GET",
            Frame::List { .. } => "LIST",
            Frame::Remove { .. } => "REMOVE",
            Frame::Query { .. } => "QUERY",
            Frame::Move { .. } => "MOVE",
            Frame::PutReady { .. } => "PUT_READY",
            Frame::GetReady { .. } => "GET_READY",
            Frame::Entry { .. } => "ENTRY",
            Frame::ListEnd => "LIST_END",
            Frame::Ack => "ACK",
            Frame::QueryReply { .. } => "QUERY_REPLY",
            Frame::Data { .. } => "DATA",
            Frame::Done { .. } => "DONE",
            Frame::DoneSized { .. } => "DONE_SIZED",
            Frame::Cancel => "CANCEL",
            Frame::Ping { .. } => "PING",
            Frame::Pong { .. } => "PONG",
            Frame::Error { .. } => "ERROR",
        }
    }

    /// Appends the frame's bytes to `out`. For [`Frame::Data`] only the header is written; the
    /// caller sends the `len` data bytes after it. Text fields must be within their limits
    /// (the connections check this before building a frame).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        let ty = match *self {
            Frame::Hello {
                min_version,
                max_version,
                token,
            } => {
                out.extend_from_slice(&min_version.to_be_bytes());
                out.extend_from_slice(&max_version.to_be_bytes());
                put_bytes16(out, token);
                ty::HELLO
            }
            Frame::Welcome { version } => {
                out.extend_from_slice(&version.to_be_bytes());
                ty::WELCOME
            }
            Frame::Put {
                name,
                size,
                overwrite,
                resume,
                eager,
                streamed,
                tag,
            } => {
                out.extend_from_slice(&size.to_be_bytes());
                let flags = if overwrite { PUT_OVERWRITE } else { 0 }
                    | if resume { PUT_RESUME } else { 0 }
                    | if eager { PUT_EAGER } else { 0 }
                    | if streamed { PUT_STREAMED } else { 0 };
                out.push(flags);
                out.extend_from_slice(&tag.0);
                put_bytes16(out, name.as_bytes());
                ty::PUT
            }
            Frame::Get { name, offset } => {
                out.extend_from_slice(&offset.to_be_bytes());
                put_bytes16(out, name.as_bytes());
                ty::GET
            }
            Frame::List { prefix } => {
                put_bytes16(out, prefix.as_bytes());
                ty::LIST
            }
            Frame::Remove { name } => {
                put_bytes16(out, name.as_bytes());
                ty::REMOVE
            }
            Frame::Query { name, tag } => {
                out.extend_from_slice(&tag.0);
                put_bytes16(out, name.as_bytes());
                ty::QUERY
            }
            Frame::Move {
                from,
                to,
                overwrite,
            } => {
                out.push(if overwrite { MOVE_OVERWRITE } else { 0 });
                put_bytes16(out, from.as_bytes());
                put_bytes16(out, to.as_bytes());
                ty::MOVE
            }
            Frame::PutReady { offset } => {
                out.extend_from_slice(&offset.to_be_bytes());
                ty::PUT_READY
            }
            Frame::GetReady { size, offset } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                ty::GET_READY
            }
            Frame::Entry {
                name,
                size,
                modified_ms,
            } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&modified_ms.to_be_bytes());
                put_bytes16(out, name.as_bytes());
                ty::ENTRY
            }
            Frame::ListEnd => ty::LIST_END,
            Frame::Ack => ty::ACK,
            Frame::QueryReply {
                stored_size,
                partial_offset,
                stored_digest,
            } => {
                out.extend_from_slice(&stored_size.unwrap_or(ABSENT).to_be_bytes());
                out.extend_from_slice(&partial_offset.unwrap_or(ABSENT).to_be_bytes());
                if let Some(digest) = stored_digest {
                    out.extend_from_slice(&digest.0);
                }
                ty::QUERY_REPLY
            }
            Frame::Data { len } => {
                write_header(out, start, ty::DATA, len);
                return;
            }
            Frame::Done { digest } => {
                out.extend_from_slice(&digest.0);
                ty::DONE
            }
            Frame::DoneSized { size, digest } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&digest.0);
                ty::DONE_SIZED
            }
            Frame::Cancel => ty::CANCEL,
            Frame::Ping { nonce } => {
                out.extend_from_slice(&nonce.to_be_bytes());
                ty::PING
            }
            Frame::Pong { nonce } => {
                out.extend_from_slice(&nonce.to_be_bytes());
                ty::PONG
            }
            Frame::Error { code, message } => {
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                put_bytes16(out, message.as_bytes());
                ty::ERROR
            }
        };
        let len = u32::try_from(out.len() - start - FRAME_HEADER_LEN).unwrap_or(u32::MAX);
        write_header(out, start, ty, len);
    }
}

fn write_header(out: &mut [u8], start: usize, ty: u8, len: u32) {
    if let Some(header) = out.get_mut(start..start + FRAME_HEADER_LEN) {
        header[0] = ty;
        header[1..].copy_from_slice(&len.to_be_bytes());
    }
}

/// The largest payload a frame of type `ty` may declare, or `None` for an unknown type.
fn payload_limit(ty: u8) -> Option<usize> {
    match ty {
        ty::DATA => Some(MAX_DATA_CHUNK),
        ty::HELLO
        | ty::WELCOME
        | ty::PUT
        | ty::GET
        | ty::LIST
        | ty::REMOVE
        | ty::QUERY
        | ty::MOVE
        | ty::PUT_READY
        | ty::GET_READY
        | ty::ENTRY
        | ty::LIST_END
        | ty::ACK
        | ty::QUERY_REPLY
        | ty::DONE
        | ty::DONE_SIZED
        | ty::CANCEL
        | ty::PING
        | ty::PONG
        | ty::ERROR => Some(MAX_CONTROL_PAYLOAD),
        _ => None,
    }
}

/// Decodes one frame from the front of `input`.
///
/// Returns `Ok(Some((frame, consumed)))` for a complete frame, `Ok(None)` when more bytes are
/// needed, and an error for bytes that can never become a valid frame. For `DATA`, `consumed`
/// covers only the header: the payload is the next `len` bytes of the stream.
pub fn decode_frame(input: &[u8]) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let Some((&ty, rest)) = input.split_first() else {
        return Ok(None);
    };
    let max = payload_limit(ty).ok_or(DecodeError::UnknownType(ty))?;
    let Some((len_bytes, rest)) = rest.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*len_bytes);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > max {
        return Err(DecodeError::TooLarge { ty, len, max });
    }
    if ty == ty::DATA {
        if len == 0 {
            return Err(DecodeError::EmptyData);
        }
        return Ok(Some((Frame::Data { len }, FRAME_HEADER_LEN)));
    }
    let Some(payload) = rest.get(..len_usize) else {
        return Ok(None);
    };
    let frame = decode_payload(ty, payload)?;
    Ok(Some((frame, FRAME_HEADER_LEN + len_usize)))
}

fn decode_payload(ty: u8, payload: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let mut r = Reader::new(payload);
    let frame = match ty {
        ty::HELLO => Frame::Hello {
            min_version: r.u16()?,
            max_version: r.u16()?,
            token: r.bytes16("token", MAX_TOKEN_LEN)?,
        },
        ty::WELCOME => Frame::Welcome { version: r.u16()? },
        ty::PUT => {
            let size = r.u64()?;
            let flags = r.u8()?;
            // An eager upload starts at byte 0, so it cannot also ask to resume; a streamed
            // one can neither resume nor go eagerly (PROTOCOL.md §4).
            let one_of = |a: u8, b: u8| flags & (a | b) == a | b;
            if flags & !(PUT_OVERWRITE | PUT_RESUME | PUT_EAGER | PUT_STREAMED) != 0
                || one_of(PUT_RESUME, PUT_EAGER)
                || one_of(PUT_STREAMED, PUT_RESUME)
                || one_of(PUT_STREAMED, PUT_EAGER)
            {
                return Err(DecodeError::UnknownFlags(flags));
            }
            let streamed = flags & PUT_STREAMED != 0;
            // PROTOCOL.md §4: "the size field of a streamed PUT MUST be 0".
            if streamed && size != 0 {
                return Err(DecodeError::StreamedSize(size));
            }
            Frame::Put {
                size,
                overwrite: flags & PUT_OVERWRITE != 0,
                resume: flags & PUT_RESUME != 0,
                eager: flags & PUT_EAGER != 0,
                streamed,
                tag: SourceTag(r.array()?),
                name: r.str16("name", MAX_WIRE_NAME_LEN)?,
            }
        }
        ty::GET => Frame::Get {
            offset: r.u64()?,
            name: r.str16("name", MAX_WIRE_NAME_LEN)?,
        },
        ty::LIST => Frame::List {
            prefix: r.str16("prefix", MAX_WIRE_NAME_LEN)?,
        },
        ty::REMOVE => Frame::Remove {
            name: r.str16("name", MAX_WIRE_NAME_LEN)?,
        },
        ty::QUERY => Frame::Query {
            tag: SourceTag(r.array()?),
            name: r.str16("name", MAX_WIRE_NAME_LEN)?,
        },
        ty::MOVE => {
            let flags = r.u8()?;
            if flags & !MOVE_OVERWRITE != 0 {
                return Err(DecodeError::UnknownFlags(flags));
            }
            Frame::Move {
                overwrite: flags & MOVE_OVERWRITE != 0,
                from: r.str16("name", MAX_WIRE_NAME_LEN)?,
                to: r.str16("new name", MAX_WIRE_NAME_LEN)?,
            }
        }
        ty::PUT_READY => Frame::PutReady { offset: r.u64()? },
        ty::GET_READY => Frame::GetReady {
            size: r.u64()?,
            offset: r.u64()?,
        },
        ty::ENTRY => Frame::Entry {
            size: r.u64()?,
            modified_ms: r.u64()?,
            name: r.str16("name", MAX_WIRE_NAME_LEN)?,
        },
        ty::LIST_END => Frame::ListEnd,
        ty::ACK => Frame::Ack,
        ty::QUERY_REPLY => Frame::QueryReply {
            stored_size: present(r.u64()?),
            partial_offset: present(r.u64()?),
            stored_digest: match r.is_empty() {
                true => None,
                false => Some(Digest(r.array::<DIGEST_LEN>()?)),
            },
        },
        ty::DONE => Frame::Done {
            digest: Digest(r.array::<DIGEST_LEN>()?),
        },
        ty::DONE_SIZED => Frame::DoneSized {
            size: r.u64()?,
            digest: Digest(r.array::<DIGEST_LEN>()?),
        },
        ty::CANCEL => Frame::Cancel,
        ty::PING => Frame::Ping { nonce: r.u64()? },
        ty::PONG => Frame::Pong { nonce: r.u64()? },
        ty::ERROR => Frame::Error {
            code: ErrorCode::from_u16(r.u16()?),
            message: r.str16("message", MAX_MESSAGE_LEN)?,
        },
        other => return Err(DecodeError::UnknownType(other)),
    };
    r.finish()?;
    Ok(frame)
}

fn present(value: u64) -> Option<u64> {
    (value != ABSENT).then_some(value)
}

#[cfg(test)]
mod tests;
