//! Why the server could not do what a client asked, and the wire code that tells the client.

use std::io;

use ferry_protocol::ErrorCode;

/// A request the storage could not carry out. Each variant maps to the [`ErrorCode`] sent to
/// the client ([`StorageError::code`]); its message is what the client reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The name is not acceptable or leads somewhere the server will not go (a symbolic link,
    /// through a file, onto a folder).
    #[error("bad name {name:?}: {reason}")]
    BadName {
        /// The name asked for.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No file of that name.
    #[error("no file named {0:?}")]
    NotFound(String),
    /// The name exists and the client did not ask to overwrite it.
    #[error("name already exists; use --overwrite")]
    AlreadyExists,
    /// A move's new name is taken, and the move may not replace what holds it.
    #[error("{name:?} {reason}")]
    NameTaken {
        /// The new name asked for.
        name: String,
        /// What holds it and what to do ("already exists; use --overwrite to replace it").
        reason: &'static str,
    },
    /// The backend cannot do this at all (e.g. move a folder on an object store).
    #[error("{what} is not supported by this server's storage: {reason}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
        /// Why not, and what to do instead.
        reason: &'static str,
    },
    /// Another client is uploading to the same name right now.
    #[error("another upload to this name is in progress; try again when it ends")]
    InProgress,
    /// The declared size is above the per-file limit.
    #[error("file of {size} bytes is larger than this server's limit of {limit} bytes")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A streamed upload (size unknown in advance) grew past the per-file limit.
    #[error("the streamed file grew past this server's limit of {limit} bytes per file")]
    StreamTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Storing the file would exceed the quota.
    #[error(
        "storing {need} more bytes would exceed the server's quota of {quota} bytes ({used} used)"
    )]
    OverQuota {
        /// Bytes still to store.
        need: u64,
        /// Bytes used now.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// Not enough free space on the server's disk.
    #[error("the server's disk is full ({need} bytes needed, {free} free)")]
    DiskFull {
        /// Bytes still to store.
        need: u64,
        /// Bytes free.
        free: u64,
    },
    /// The disk filled up while the server was writing.
    #[error("the server's disk is full (while {during})")]
    NoSpace {
        /// What the server was doing.
        during: &'static str,
    },
    /// A download offset past the end of the file.
    #[error("offset {offset} is past the end of the {size}-byte file")]
    OffsetPastEnd {
        /// Offset asked for.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// The server is shutting down and takes no new transfers.
    #[error("the server is shutting down; try again later")]
    ShuttingDown,
    /// Another connection of the same client took this upload over (it goes on there).
    #[error("this upload was taken over by a newer connection of the same client")]
    TakenOver,
    /// The object store failed a request. The client reads what kind of failure it was; the
    /// details (endpoint, the store's own message) go to the server's log only.
    #[error("the server's object store failed while {during}: {}", source.summary())]
    ObjectStore {
        /// What the server was doing.
        during: &'static str,
        /// The object store's error.
        #[source]
        source: Box<crate::store::s3::S3Error>,
    },
    /// Reading or writing storage failed.
    #[error("server storage error while {during}: {source}")]
    Io {
        /// What the server was doing.
        during: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// Wraps an I/O error with what was being done; "no space" becomes [`StorageError::DiskFull`].
    pub(crate) fn io(during: &'static str) -> impl FnOnce(io::Error) -> StorageError {
        move |source| {
            if is_disk_full(&source) {
                StorageError::NoSpace { during }
            } else {
                StorageError::Io { during, source }
            }
        }
    }

    /// The code the client receives for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::BadName { .. } => ErrorCode::BadName,
            StorageError::NotFound(_) => ErrorCode::NotFound,
            StorageError::AlreadyExists | StorageError::NameTaken { .. } => {
                ErrorCode::AlreadyExists
            }
            StorageError::Unsupported { .. } => ErrorCode::Unsupported,
            StorageError::InProgress => ErrorCode::InProgress,
            StorageError::TooLarge { .. } | StorageError::StreamTooLarge { .. } => {
                ErrorCode::TooLarge
            }
            StorageError::OverQuota { .. } => ErrorCode::OverQuota,
            StorageError::DiskFull { .. } | StorageError::NoSpace { .. } => ErrorCode::DiskFull,
            StorageError::OffsetPastEnd { .. } => ErrorCode::SizeMismatch,
            StorageError::ShuttingDown => ErrorCode::ShuttingDown,
            StorageError::TakenOver => ErrorCode::InProgress,
            StorageError::Io { .. } | StorageError::ObjectStore { .. } => ErrorCode::StorageError,
        }
    }
}

/// Whether an I/O error means the disk (or the user's disk quota) is full.
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}
