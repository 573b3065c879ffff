//! What can go wrong for a client, in words a person can act on, and the exit code each maps to.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use ferry_protocol::{CommandError, ErrorCode, NameError, ProtocolError};
use ferry_transport::Fingerprint;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: an error not covered by the others (local files, internal errors).
pub const EXIT_OTHER: i32 = 1;
/// Exit code: the command line or a name was not valid.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the server could not be reached, or the connection was lost and retries ran out.
pub const EXIT_CONNECTION: i32 = 3;
/// Exit code: the server refused the request.
pub const EXIT_REFUSED: i32 = 4;
/// Exit code: data did not match its digest.
pub const EXIT_INTEGRITY: i32 = 5;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No connection could be opened to the server.
    #[error(
        "cannot connect to {addr}: {source}; is ferryd running there? (set --server or FERRY_SERVER)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The server refused the request; the connection stays usable.
    #[error("server refused {request}: {}{}{}", code.describe(), hint(request, *code), detail(request, *code, message))]
    Refused {
        /// What was asked ("upload", "download", ...).
        request: &'static str,
        /// The server's reason.
        code: ErrorCode,
        /// The server's own message.
        message: String,
    },
    /// An upload that may not overwrite was refused because the name exists, and the stored
    /// file has the upload's size but the server keeps no digest for it, so it cannot be
    /// confirmed identical. Nothing was sent; the connection stays usable.
    #[error(
        "server refused upload: name already exists, and a file of the same size ({size} bytes) \
         is stored; its digest is unknown to the server, so it cannot be confirmed identical; \
         use --overwrite to replace it"
    )]
    ExistsUnconfirmed {
        /// The upload's name.
        name: String,
        /// The size of both the stored and the local file.
        size: u64,
    },
    /// Data did not match its digest: nothing was stored or kept under the final name.
    #[error("integrity check failed for {name:?}: {reason}")]
    Integrity {
        /// The file concerned.
        name: String,
        /// What did not match.
        reason: String,
    },
    /// The server broke the protocol, reported a fatal error, or the connection ended early.
    #[error("connection to the server failed: {0}")]
    Protocol(#[from] ProtocolError),
    /// The connection failed while sending or receiving.
    #[error("connection to the server lost while {during}: {source}")]
    Network {
        /// What was under way.
        during: &'static str,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Nothing moved for longer than the configured I/O timeout.
    #[error("no progress for {}s while {what}; the server or the network stalled", after.as_secs_f32())]
    TimedOut {
        /// What was under way.
        what: &'static str,
        /// The stall timeout that passed.
        after: Duration,
    },
    /// A local file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Local {
        /// "cannot read", "cannot write", ...
        action: &'static str,
        /// The local path.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The local source did not hold the bytes it was said to hold.
    #[error("the source of {name:?} changed while it was read: {reason}; upload it again")]
    SourceChanged {
        /// The upload's name.
        name: String,
        /// What was found.
        reason: String,
    },
    /// An upload from a stream (standard input) lost its connection after bytes were read:
    /// they cannot be read again, so the upload cannot go on, and the server kept nothing.
    #[error(
        "the upload of {name:?} from a stream was interrupted ({reason}); a stream such as \
         standard input cannot be re-read, so the upload was not stored; run it again"
    )]
    StreamInterrupted {
        /// The upload's name.
        name: String,
        /// What happened to the connection.
        reason: String,
    },
    /// The name cannot be used on the server.
    #[error("invalid name {name:?}: {source}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is not valid.
        #[source]
        source: NameError,
    },
    /// The TLS handshake failed (no common parameters, a certificate not valid for the name,
    /// a broken record).
    #[error("TLS with {server} failed: {reason}")]
    Tls {
        /// The server (`HOST:PORT`).
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The server's certificate is not the one recorded in the known-servers file: someone may
    /// be intercepting the connection. The file is left as it is.
    #[error(
        "WARNING: the TLS certificate of {server} has CHANGED (recorded {known}, now {seen}). \
         Someone may be intercepting the connection, or the server got a new certificate. \
         Nothing was sent. If the change is expected, check the new fingerprint with the \
         server's operator, then remove the line for {server} from {} or pass --fingerprint {seen}",
        file.display()
    )]
    CertificateChanged {
        /// The server (`HOST:PORT`).
        server: String,
        /// The fingerprint recorded earlier.
        known: Fingerprint,
        /// The fingerprint the server showed now.
        seen: Fingerprint,
        /// The known-servers file.
        file: PathBuf,
    },
    /// The server's certificate is not the pinned one.
    #[error(
        "the TLS certificate of {server} is {seen}, not the pinned {pinned}; nothing was sent (check --fingerprint)"
    )]
    NotPinned {
        /// The server (`HOST:PORT`).
        server: String,
        /// The fingerprint asked for.
        pinned: Fingerprint,
        /// The fingerprint the server showed.
        seen: Fingerprint,
    },
    /// The server answered in plaintext: it runs `--insecure`.
    #[error(
        "{server} does not speak TLS (it runs with --insecure); pass --insecure to connect in plaintext, only on a network you trust"
    )]
    ServerInsecure {
        /// The server (`HOST:PORT`).
        server: String,
    },
    /// The client used plaintext but the server requires TLS.
    #[error("{server} requires TLS; drop --insecure")]
    TlsRequired {
        /// The server (`HOST:PORT`).
        server: String,
    },
    /// The server speaks an older protocol version that lacks the operation; nothing was sent.
    #[error(
        "the server is too old for {operation}: it speaks protocol version {version}, and \
         {operation} needs version {needs}; upgrade ferryd"
    )]
    ServerTooOld {
        /// The command (`mv`).
        operation: &'static str,
        /// The version the server agreed on.
        version: u16,
        /// The oldest version with the operation.
        needs: u16,
    },
    /// A command the connection did not allow at that moment: a bug in this client.
    #[error("internal error (please report): {0}")]
    Internal(#[from] CommandError),
}

/// A hint after a refusal of `request`, saying what the user can do.
fn hint(request: &str, code: ErrorCode) -> &'static str {
    match code {
        // The server's message says whether --overwrite would help (never for a folder).
        ErrorCode::AlreadyExists if request == "move" => "",
        ErrorCode::AlreadyExists => "; use --overwrite",
        ErrorCode::NotFound => "; check the name with `ferry ls`",
        ErrorCode::NotAuthorised => "; check the access token",
        ErrorCode::InProgress => "; wait for the other upload to finish, then try again",
        ErrorCode::Busy | ErrorCode::ShuttingDown => "; try again later",
        ErrorCode::DiskFull | ErrorCode::OverQuota => "; free space on the server",
        _ => "",
    }
}

/// The server's own message, unless it only repeats what the code and the hint say.
fn detail(request: &str, code: ErrorCode, message: &str) -> String {
    let said = message.trim().to_lowercase();
    let repeated = [
        code.describe().to_owned(),
        format!("{}{}", code.describe(), hint(request, code)),
    ];
    if said.is_empty() || repeated.contains(&said) {
        String::new()
    } else {
        format!(" (server said: {message})")
    }
}

impl ClientError {
    /// The process exit code for this error (see the `EXIT_*` constants).
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Connect { .. }
            | ClientError::Network { .. }
            | ClientError::TimedOut { .. }
            | ClientError::Tls { .. }
            | ClientError::CertificateChanged { .. }
            | ClientError::NotPinned { .. }
            | ClientError::ServerInsecure { .. }
            | ClientError::TlsRequired { .. } => EXIT_CONNECTION,
            ClientError::Protocol(ProtocolError::DigestMismatch { .. }) => EXIT_INTEGRITY,
            ClientError::Protocol(ProtocolError::Peer { code, .. }) => match code {
                ErrorCode::DigestMismatch => EXIT_INTEGRITY,
                code if refusal_code(*code) => EXIT_REFUSED,
                _ => EXIT_CONNECTION,
            },
            ClientError::Protocol(_) => EXIT_CONNECTION,
            ClientError::Refused { .. }
            | ClientError::ExistsUnconfirmed { .. }
            | ClientError::ServerTooOld { .. } => EXIT_REFUSED,
            ClientError::StreamInterrupted { .. } => EXIT_CONNECTION,
            ClientError::Integrity { .. } => EXIT_INTEGRITY,
            ClientError::InvalidName { .. } => EXIT_USAGE,
            ClientError::Local { .. }
            | ClientError::SourceChanged { .. }
            | ClientError::Internal(_) => EXIT_OTHER,
        }
    }

    /// Whether the connection stays usable after this error: the server answered and waits
    /// for the next request.
    pub(crate) fn leaves_connection_usable(&self) -> bool {
        matches!(
            self,
            ClientError::Refused { .. }
                | ClientError::ExistsUnconfirmed { .. }
                | ClientError::ServerTooOld { .. }
        )
    }

    /// Whether a refusal with `code` may pass if the request is made again later.
    pub(crate) fn refusal_is_transient(code: ErrorCode) -> bool {
        transient_code(code)
    }

    /// Whether a new connection might succeed where this one failed: the connection was lost,
    /// stalled or the server was briefly unable to serve.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Network { .. }
            | ClientError::TimedOut { .. } => true,
            ClientError::Refused { code, .. } => transient_code(*code),
            ClientError::Protocol(error) => match error {
                ProtocolError::Timeout { .. } | ProtocolError::UnexpectedEof { .. } => true,
                ProtocolError::Peer { code, .. } => {
                    transient_code(*code) || *code == ErrorCode::Timeout
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Codes by which a server ending the connection refuses what was asked, rather than failing.
fn refusal_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadName
            | ErrorCode::AlreadyExists
            | ErrorCode::TooLarge
            | ErrorCode::OverQuota
            | ErrorCode::DiskFull
            | ErrorCode::NotAuthorised
            | ErrorCode::NotFound
            | ErrorCode::Forbidden
            | ErrorCode::Unsupported
    )
}

/// Refusals that may go away by themselves: a busy or restarting server, or the server still
/// holding the upload of a connection that was just lost.
/// Codes worth retrying on a new connection. `Timeout` included: a server that timed out a
/// handshake we sent late (a stalled network) will take a fresh one.
fn transient_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Busy | ErrorCode::ShuttingDown | ErrorCode::InProgress | ErrorCode::Timeout
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_handshake_is_retried() {
        let error = ClientError::Refused {
            request: "the connection",
            code: ErrorCode::Timeout,
            message: "the peer was silent too long (handshake)".into(),
        };
        assert!(error.is_transient());
    }

    #[test]
    fn already_exists_refusal_tells_the_user_to_overwrite() {
        let error = ClientError::Refused {
            request: "upload",
            code: ErrorCode::AlreadyExists,
            message: String::new(),
        };
        assert_eq!(
            error.to_string(),
            "server refused upload: name already exists; use --overwrite"
        );
        assert_eq!(error.exit_code(), EXIT_REFUSED);
        assert!(!error.is_transient());
    }

    #[test]
    fn an_unconfirmed_existing_file_is_a_refusal_that_says_why() {
        let error = ClientError::ExistsUnconfirmed {
            name: "f".into(),
            size: 5,
        };
        let message = error.to_string();
        assert!(
            message.contains("a file of the same size (5 bytes) is stored"),
            "{message}"
        );
        assert!(
            message.contains("its digest is unknown to the server"),
            "{message}"
        );
        assert!(
            message.ends_with("use --overwrite to replace it"),
            "{message}"
        );
        assert_eq!(error.exit_code(), EXIT_REFUSED);
        assert!(!error.is_transient());
    }

    #[test]
    fn lost_connection_is_transient_and_maps_to_connection_exit_code() {
        let error = ClientError::Protocol(ProtocolError::UnexpectedEof {
            during: "receiving a download",
        });
        assert!(error.is_transient());
        assert_eq!(error.exit_code(), EXIT_CONNECTION);
    }

    #[test]
    fn a_stream_cut_midway_is_final_and_says_why_nothing_was_stored() {
        let error = ClientError::StreamInterrupted {
            name: "db.sql".into(),
            reason: "connection reset".into(),
        };
        let message = error.to_string();
        assert!(
            message.contains("standard input cannot be re-read"),
            "{message}"
        );
        assert!(message.contains("the upload was not stored"), "{message}");
        assert!(!error.is_transient());
        assert_eq!(error.exit_code(), EXIT_CONNECTION);
        let old = ClientError::ServerTooOld {
            operation: "put -",
            version: 2,
            needs: 3,
        };
        assert!(old.to_string().contains("needs version 3"), "{old}");
        assert_eq!(old.exit_code(), EXIT_REFUSED);
    }
}
