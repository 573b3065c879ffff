//! What the server's machine tells its driver: requests to decide, and what became of uploads.

use crate::digest::{Digest, HashCheckpoint};
use crate::error::{ErrorCode, ProtocolError};
use crate::frame::SourceTag;

/// A client's request to upload, as the server receives it. The name is already validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRequest {
    /// Name to store the file under.
    pub name: String,
    /// Total size of the file (0 for a streamed upload, whose size is not known yet).
    pub size: u64,
    /// Replace an existing file.
    pub overwrite: bool,
    /// Continue a partial upload with the same name and tag if one is held.
    pub resume: bool,
    /// Identity of the client's local file.
    pub tag: SourceTag,
    /// Version 2: the data follows at once from byte 0 (no `PUT_READY` is sent). A refusal
    /// answers the request and the data that follows is read and dropped.
    pub eager: bool,
    /// Version 3: the size is not known in advance; the data runs until the client's
    /// `DONE_SIZED` tells it (PROTOCOL.md §7). Limits are checked as the bytes arrive; it never
    /// resumes (`resume` and `eager` are false).
    pub streamed: bool,
}

/// What the server's driver must act on. Events marked *decision* leave the connection waiting
/// (it reads no further input) until the driver calls one of the commands named.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// *Decision*: [`ServerConnection::accept_client`] or [`ServerConnection::refuse_connection`].
    ClientHello {
        /// Version agreed on.
        version: u16,
        /// The client's access token (empty if none).
        token: Vec<u8>,
    },
    /// *Decision*: [`ServerConnection::accept_put`] or [`ServerConnection::refuse`].
    PutRequested(PutRequest),
    /// *Decision*: [`ServerConnection::accept_get`] or [`ServerConnection::refuse`].
    GetRequested {
        /// File name.
        name: String,
        /// First byte wanted.
        offset: u64,
    },
    /// *Decision*: [`ServerConnection::send_list_entry`] for each entry, then
    /// [`ServerConnection::finish_list`]; or [`ServerConnection::refuse`].
    ListRequested {
        /// Name prefix.
        prefix: String,
    },
    /// *Decision*: [`ServerConnection::confirm`] or [`ServerConnection::refuse`].
    RemoveRequested {
        /// File name.
        name: String,
    },
    /// *Decision* (version 3): give `from` the name `to`, then [`ServerConnection::confirm`];
    /// or [`ServerConnection::refuse`]. Both names are already validated.
    MoveRequested {
        /// The name the file or folder has now.
        from: String,
        /// The name it is to get.
        to: String,
        /// Replace a file stored under `to`.
        overwrite: bool,
    },
    /// *Decision*: [`ServerConnection::reply_query`] or [`ServerConnection::refuse`].
    QueryRequested {
        /// File name.
        name: String,
        /// Tag of the client's file.
        tag: SourceTag,
    },
    /// *Decision*: every byte of the upload arrived and matched the digest (for a streamed
    /// upload: as many bytes as its `DONE_SIZED` declared). Make the file
    /// durable and visible, then [`ServerConnection::confirm`] (or
    /// [`ServerConnection::refuse`] if that failed). Under version 2 the connection goes on
    /// reading while commits are pending (see [`ServerConnection::pending_commits`]), so that
    /// several uploads can be made durable together; they are answered oldest first.
    UploadVerified {
        /// The file's digest.
        digest: Digest,
        /// The file's size.
        size: u64,
    },
    /// The upload's data did not match its digest; the client was told. Discard the data.
    UploadRejected {
        /// Why.
        error: ProtocolError,
    },
    /// The client cancelled the upload after `received` bytes; the partial data stays
    /// resumable from `checkpoint` (a streamed upload's is discarded: it never resumes).
    UploadCancelled {
        /// File bytes received in all (from offset 0).
        received: u64,
        /// Hash state to save beside the staged data.
        checkpoint: HashCheckpoint,
    },
    /// The connection refused a request by itself (a bad name); the client was told.
    RequestRefused {
        /// Code sent.
        code: ErrorCode,
        /// Message sent.
        message: String,
    },
}
