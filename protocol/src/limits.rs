//! Every limit of the protocol, in one place, each with its reason (PROTOCOL.md §8).

/// First eight bytes each side sends: identifies ferry before any frame. The high-bit first byte
/// catches 7-bit channels and cannot start a TLS record (0x16) or an HTTP request; `\r\n` catches
/// line-ending translation (the same trick as PNG's signature).
pub const MAGIC: [u8; 8] = *b"\x89FERRY\r\n";

/// Protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 3;

/// Oldest protocol version with `MOVE` (PROTOCOL.md §5, "Move"): a client sends it only to a
/// server that agreed on this version or a newer one, and a server refuses it from an older
/// client as an unexpected frame.
pub const MOVE_VERSION: u16 = 3;

/// First protocol version with streamed uploads (a `PUT` whose size comes at the end, in
/// `DONE_SIZED`; PROTOCOL.md §7). An older server would refuse the flag as malformed, so a
/// client asks for one only from a server that agreed on this version.
pub const STREAMED_SINCE: u16 = 3;

/// Oldest protocol version this crate still speaks.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Bytes in a frame header: one type byte, then the payload length as `u32` big-endian.
pub const FRAME_HEADER_LEN: usize = 5;

/// Largest payload of any frame other than `DATA`. Control frames carry at most a name, a
/// message and a few integers; 16 KiB leaves room and bounds what a peer can make us buffer.
pub const MAX_CONTROL_PAYLOAD: usize = 16 * 1024;

/// Largest `DATA` payload. The payload streams past the codec (it is never buffered whole), so
/// this bounds only how long a single chunk may run before the next frame boundary.
pub const MAX_DATA_CHUNK: usize = 1024 * 1024;

/// Chunk size senders use by default: large enough that the 5-byte header is noise, small
/// enough to keep the receiver's buffers modest.
pub const DEFAULT_DATA_CHUNK: usize = 256 * 1024;

/// Longest file name in bytes (UTF-8).
pub const MAX_NAME_LEN: usize = 1024;

/// Longest name field the decoder accepts. Above [`MAX_NAME_LEN`] so that a name that is merely
/// too long is refused as a bad name (the connection stays usable) rather than as a malformed
/// frame; still bounded, and inside [`MAX_CONTROL_PAYLOAD`].
pub const MAX_WIRE_NAME_LEN: usize = 4 * MAX_NAME_LEN;

/// Longest single path component, the common file-system limit.
pub const MAX_NAME_COMPONENT_LEN: usize = 255;

/// Most path components in a name, so that folder trees stay bounded.
pub const MAX_NAME_DEPTH: usize = 32;

/// Longest human-readable message in an `ERROR` frame.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest access token in a `HELLO` frame.
pub const MAX_TOKEN_LEN: usize = 512;

/// Names whose first component starts with this are the server's own (its staging area).
pub const RESERVED_PREFIX: &str = ".ferry";
