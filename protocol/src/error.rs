//! The three kinds of failure, kept apart (STYLE.md): wire error codes shared with the peer,
//! fatal protocol errors, and recoverable command errors.

use crate::digest::Digest;
use crate::frame::DecodeError;
use crate::name::NameError;

/// Machine-readable reason carried by an `ERROR` frame (PROTOCOL.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The name is not an acceptable relative path.
    BadName,
    /// A file of that name exists and overwrite was not asked for.
    AlreadyExists,
    /// The declared size is above the server's per-file limit.
    TooLarge,
    /// Storing the file would exceed the storage quota.
    OverQuota,
    /// The server's disk has no room for the file.
    DiskFull,
    /// The server is at its connection limit; try again later.
    Busy,
    /// The access token is missing or wrong.
    NotAuthorised,
    /// No protocol version both sides speak.
    UnsupportedVersion,
    /// No file of that name.
    NotFound,
    /// Another upload to the same name is under way.
    InProgress,
    /// The data's digest does not match the sender's digest.
    DigestMismatch,
    /// More or fewer bytes than declared.
    SizeMismatch,
    /// A frame could not be decoded.
    MalformedFrame,
    /// A frame that is not allowed in the current state.
    UnexpectedFrame,
    /// The peer was silent for too long.
    Timeout,
    /// The server could not read or write its storage.
    StorageError,
    /// The server is shutting down.
    ShuttingDown,
    /// The token does not allow this operation.
    Forbidden,
    /// The first bytes were not the ferry magic.
    NotFerry,
    /// The server cannot do this with the storage it uses (e.g. move a folder on an object
    /// store); the message says what it can do instead.
    Unsupported,
    /// A code this version does not know; the message says more.
    Other(u16),
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::BadName => 1,
            ErrorCode::AlreadyExists => 2,
            ErrorCode::TooLarge => 3,
            ErrorCode::OverQuota => 4,
            ErrorCode::DiskFull => 5,
            ErrorCode::Busy => 6,
            ErrorCode::NotAuthorised => 7,
            ErrorCode::UnsupportedVersion => 8,
            ErrorCode::NotFound => 9,
            ErrorCode::InProgress => 10,
            ErrorCode::DigestMismatch => 11,
            ErrorCode::SizeMismatch => 12,
            ErrorCode::MalformedFrame => 13,
            ErrorCode::UnexpectedFrame => 14,
            ErrorCode::Timeout => 15,
            ErrorCode::StorageError => 16,
            ErrorCode::ShuttingDown => 17,
            ErrorCode::Forbidden => 18,
            ErrorCode::NotFerry => 19,
            ErrorCode::Unsupported => 20,
            ErrorCode::Other(n) => n,
        }
    }

    /// The code for a wire number; unknown numbers become [`ErrorCode::Other`].
    pub fn from_u16(n: u16) -> Self {
        match n {
            1 => ErrorCode::BadName,
            2 => ErrorCode::AlreadyExists,
            3 => ErrorCode::TooLarge,
            4 => ErrorCode::OverQuota,
            5 => ErrorCode::DiskFull,
            6 => ErrorCode::Busy,
            7 => ErrorCode::NotAuthorised,
            8 => ErrorCode::UnsupportedVersion,
            9 => ErrorCode::NotFound,
            10 => ErrorCode::InProgress,
            11 => ErrorCode::DigestMismatch,
            12 => ErrorCode::SizeMismatch,
            13 => ErrorCode::MalformedFrame,
            14 => ErrorCode::UnexpectedFrame,
            15 => ErrorCode::Timeout,
            16 => ErrorCode::StorageError,
            17 => ErrorCode::ShuttingDown,
            18 => ErrorCode::Forbidden,
            19 => ErrorCode::NotFerry,
            20 => ErrorCode::Unsupported,
            n => ErrorCode::Other(n),
        }
    }

    /// A short phrase for the code, for messages to people.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorCode::BadName => "bad name",
            ErrorCode::AlreadyExists => "name already exists",
            ErrorCode::TooLarge => "file too large",
            ErrorCode::OverQuota => "over quota",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::Busy => "server busy",
            ErrorCode::NotAuthorised => "not authorised",
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::NotFound => "no such file",
            ErrorCode::InProgress => "another upload to this name is in progress",
            ErrorCode::DigestMismatch => "digest mismatch",
            ErrorCode::SizeMismatch => "size mismatch",
            ErrorCode::MalformedFrame => "malformed frame",
            ErrorCode::UnexpectedFrame => "unexpected frame",
            ErrorCode::Timeout => "timed out",
            ErrorCode::StorageError => "server storage error",
            ErrorCode::ShuttingDown => "server shutting down",
            ErrorCode::Forbidden => "operation not allowed",
            ErrorCode::NotFerry => "not the ferry protocol",
            ErrorCode::Unsupported => "not supported by the server's storage",
            ErrorCode::Other(_) => "unknown error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// A violation by the peer, or a timeout. Fatal and sticky: the connection answers every later
/// call with the same error, and the `ERROR` frame telling the peer why is still queued for
/// transmission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer's first bytes were not the ferry magic.
    #[error("the peer does not speak ferry (its first bytes were not the ferry magic)")]
    NotFerry,
    /// The peer sent bytes that are not a valid frame.
    #[error("the peer sent a malformed frame: {0}")]
    Malformed(#[from] DecodeError),
    /// No common protocol version.
    #[error(
        "no common protocol version: we speak {ours_min}..={ours_max}, the peer {theirs_min}..={theirs_max}"
    )]
    UnsupportedVersion {
        /// Our oldest version.
        ours_min: u16,
        /// Our newest version.
        ours_max: u16,
        /// The peer's oldest version.
        theirs_min: u16,
        /// The peer's newest version.
        theirs_max: u16,
    },
    /// A frame that the current state does not allow.
    #[error("the peer sent {frame} while {state}")]
    UnexpectedFrame {
        /// The frame's name.
        frame: &'static str,
        /// What this side was doing.
        state: &'static str,
    },
    /// The peer sent more or fewer file bytes than it declared.
    #[error("the peer declared {declared} bytes but sent {sent}")]
    SizeMismatch {
        /// Bytes declared for the transfer (from its starting offset).
        declared: u64,
        /// Bytes the peer sent, or tried to send, before it said it was done.
        sent: u64,
    },
    /// The received bytes do not hash to the digest the sender gave.
    #[error(
        "the data does not match its digest (sender said {expected}, received data hashes to {actual})"
    )]
    DigestMismatch {
        /// Digest the sender sent.
        expected: Digest,
        /// Digest of what arrived.
        actual: Digest,
    },
    /// The peer was silent for longer than the configured timeout.
    #[error("the peer was silent too long ({what})")]
    Timeout {
        /// Which wait timed out.
        what: &'static str,
    },
    /// The peer closed the connection in the middle of an exchange.
    #[error("the peer closed the connection {during}")]
    UnexpectedEof {
        /// What was under way.
        during: &'static str,
    },
    /// The peer reported a fatal error and closed.
    #[error("the peer reported an error: {code}: {message}")]
    Peer {
        /// The peer's code.
        code: ErrorCode,
        /// The peer's message.
        message: String,
    },
}

impl ProtocolError {
    /// The code sent to the peer in the `ERROR` frame for this violation.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::NotFerry => ErrorCode::NotFerry,
            ProtocolError::Malformed(_) => ErrorCode::MalformedFrame,
            ProtocolError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ProtocolError::UnexpectedFrame { .. } | ProtocolError::UnexpectedEof { .. } => {
                ErrorCode::UnexpectedFrame
            }
            ProtocolError::SizeMismatch { .. } => ErrorCode::SizeMismatch,
            ProtocolError::DigestMismatch { .. } => ErrorCode::DigestMismatch,
            ProtocolError::Timeout { .. } => ErrorCode::Timeout,
            ProtocolError::Peer { code, .. } => *code,
        }
    }
}

/// Local misuse of a connection: a command that is not allowed now. Recoverable; nothing was
/// sent and the connection's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The connection has failed or closed; see the sticky [`ProtocolError`].
    #[error("the connection is closed")]
    Closed,
    /// The command does not fit the connection's current state.
    #[error("cannot {command} while {state}")]
    WrongState {
        /// The command attempted.
        command: &'static str,
        /// What the connection is doing.
        state: &'static str,
    },
    /// The name is not acceptable; the request was not sent.
    #[error("invalid name: {0}")]
    BadName(#[from] NameError),
    /// The server agreed on a protocol version that lacks the operation.
    #[error(
        "the server speaks protocol version {version}, which has no {operation}; upgrade ferryd"
    )]
    ServerTooOld {
        /// The operation asked for.
        operation: &'static str,
        /// The version agreed on with the server.
        version: u16,
    },
    /// More file bytes than the transfer has left, or a chunk above the limit.
    #[error("{given} bytes given but only {allowed} may be sent now")]
    TooMuchData {
        /// Bytes passed in.
        given: u64,
        /// Bytes that may be sent.
        allowed: u64,
    },
    /// A text field is longer than its limit.
    #[error("{field} is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_and_unknown_ones_are_kept() {
        for n in 0..=40u16 {
            assert_eq!(ErrorCode::from_u16(n).to_u16(), n);
        }
        assert_eq!(ErrorCode::from_u16(999), ErrorCode::Other(999));
    }
}
