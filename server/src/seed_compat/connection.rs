//! One original client: read its header, decide, say `go ahead`, receive exactly the declared
//! bytes while hashing them, and commit once it closes. Any failure discards the staged data:
//! the original protocol has no resume.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_protocol::{Digest, FileHasher, NameError, PutRequest, SourceTag, validate_name};
use ferry_transport::is_timeout;

use crate::server::Shared;
use crate::store::Upload;
use crate::store::error::StorageError;
use crate::transfer_log::{Ending, Transfer};

use super::config::SeedCompatConfig;
use super::header::{Header, HeaderError, HeaderParser};

/// The server's answer that lets an original client send its data.
pub(crate) const GO_AHEAD: &[u8; 8] = b"go ahead";

/// Bytes read from the socket at once.
const INPUT_BUFFER: usize = 64 * 1024;

/// Longest a read waits before the loop looks at the shutdown flag and its deadlines again.
const TICK: Duration = Duration::from_millis(250);

/// Why an original client's upload was refused or abandoned. The client is never told (the
/// protocol has no way to), so this is what the log says.
#[derive(Debug, thiserror::Error)]
enum SeedError {
    /// The header was malformed.
    #[error("{0}")]
    Header(#[from] HeaderError),
    /// The name breaks the name rules.
    #[error("bad name {name:?}: {source}")]
    BadName {
        /// The name sent.
        name: String,
        /// The rule it breaks.
        source: NameError,
    },
    /// Storage refused the upload or failed while receiving it.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The client took longer than the handshake timeout to send its header.
    #[error("the header took longer than {0:?}")]
    SlowHeader(Duration),
    /// The client closed the connection before it was told `go ahead`.
    #[error("the client closed the connection before `go ahead`")]
    ClosedBeforeGoAhead,
    /// The client closed before sending every declared byte.
    #[error("the client closed after {got} of {size} bytes")]
    ClosedEarly {
        /// Bytes received.
        got: u64,
        /// Bytes declared.
        size: u64,
    },
    /// The client sent more bytes than it declared.
    #[error("the client sent more than the {size} bytes it declared")]
    TooManyBytes {
        /// Bytes declared.
        size: u64,
    },
    /// The client went silent for the idle timeout (mid-data, or after its data without closing).
    #[error("the client was silent for {0:?}")]
    Silent(Duration),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
}

/// Serves one original client until its upload is stored or abandoned, then closes.
pub(crate) fn serve(shared: &Shared, seed: &SeedCompatConfig, stream: TcpStream, peer: SocketAddr) {
    let span = tracing::info_span!("seed_compat", %peer);
    let _entered = span.enter();
    let mut client = Client {
        shared,
        seed,
        stream,
        peer,
        input: vec![0u8; INPUT_BUFFER],
    };
    let header = match client.read_header() {
        Ok(header) => header,
        Err(error) => {
            tracing::warn!("refused (closed without `go ahead`): {error}");
            return;
        }
    };
    let started = Instant::now();
    let mut upload = match client.begin(&header) {
        Ok(upload) => upload,
        Err(error) => {
            tracing::warn!(
                name = header.name,
                size = header.size,
                "refused (closed without `go ahead`): {error}"
            );
            return;
        }
    };
    let received = client.receive(&mut upload, header.size);
    // Logged from the connection's start: the header and `go ahead` count too.
    let transfer = Transfer {
        started,
        ..upload.transfer()
    };
    // These uploads cannot be resumed (the original protocol has no way to): whatever fails,
    // nothing stays.
    let (outcome, ending) = match received {
        Ok(digest) => match upload.commit_or_discard(&digest) {
            Ok(()) => ("ok".to_owned(), Ending::Ok),
            Err(error) => (
                format!("commit failed, nothing kept: {error}"),
                Ending::Failed(error.code()),
            ),
        },
        Err(error) => {
            upload.discard();
            (
                format!("abandoned, nothing kept: {error}"),
                Ending::Interrupted,
            )
        }
    };
    transfer.finished(&shared.metrics, peer, &outcome, ending);
}

struct Client<'a> {
    shared: &'a Shared,
    seed: &'a SeedCompatConfig,
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
}

impl Client<'_> {
    /// Reads the size and the name; the name ends once the client has been quiet for the pause.
    fn read_header(&mut self) -> Result<Header, SeedError> {
        let pause = self.seed.name_pause;
        let limit = self.shared.config.handshake_timeout;
        let deadline = Instant::now() + limit;
        let mut parser = HeaderParser::default();
        let mut last_byte = Instant::now();
        loop {
            if self.shared.shutdown.is_stopping() {
                return Err(SeedError::ShuttingDown);
            }
            let now = Instant::now();
            let quiet_end = last_byte + pause;
            if parser.has_size() && now >= quiet_end {
                return Ok(parser.finish()?);
            }
            if now >= deadline {
                return Err(SeedError::SlowHeader(limit));
            }
            let until = if parser.has_size() {
                quiet_end.min(deadline)
            } else {
                deadline
            };
            let wait = (until - now).clamp(Duration::from_millis(1), TICK);
            match self.read(wait)? {
                Some(0) => return Err(SeedError::ClosedBeforeGoAhead),
                Some(n) => {
                    parser.handle_input(&self.input[..n])?;
                    last_byte = Instant::now();
                }
                None => {}
            }
        }
    }

    /// Checks the header against the name rules and the storage's limits and starts the upload;
    /// then tells the client `go ahead`.
    fn begin(&mut self, header: &Header) -> Result<Upload, SeedError> {
        validate_name(&header.name).map_err(|source| SeedError::BadName {
            name: header.name.clone(),
            source,
        })?;
        if self.shared.shutdown.is_stopping() {
            return Err(SeedError::ShuttingDown);
        }
        let request = PutRequest {
            name: header.name.clone(),
            size: header.size,
            overwrite: self.seed.overwrite,
            resume: false,
            tag: connection_tag(),
            eager: false,
            streamed: false,
        };
        let (upload, _) = self
            .shared
            .store
            .begin_upload(&self.shared.config, &request)?;
        let _ = self
            .stream
            .set_write_timeout(Some(self.shared.config.idle_timeout));
        if let Err(error) = self.stream.write_all(GO_AHEAD) {
            upload.discard();
            return Err(error.into());
        }
        tracing::debug!(
            name = header.name,
            size = header.size,
            "upload accepted (`go ahead`)"
        );
        Ok(upload)
    }

    /// Receives exactly `size` bytes into the upload, hashing them, then waits for the client
    /// to close. The caller discards the upload on failure.
    fn receive(&mut self, upload: &mut Upload, size: u64) -> Result<Digest, SeedError> {
        let idle = self.shared.config.idle_timeout;
        let mut hasher = FileHasher::new();
        let mut remaining = size;
        let mut last_byte = Instant::now();
        loop {
            if self.shared.shutdown.is_past_grace() {
                return Err(SeedError::ShuttingDown);
            }
            let Some(left) = idle.checked_sub(last_byte.elapsed()) else {
                return Err(SeedError::Silent(idle));
            };
            let wait = left.clamp(Duration::from_millis(1), TICK);
            match self.read(wait)? {
                None => {}
                Some(0) if remaining == 0 => return Ok(hasher.finalize()),
                Some(0) => {
                    return Err(SeedError::ClosedEarly {
                        got: size - remaining,
                        size,
                    });
                }
                Some(n) => {
                    let chunk = &self.input[..n];
                    if n as u64 > remaining {
                        return Err(SeedError::TooManyBytes { size });
                    }
                    hasher.update(chunk);
                    upload.write(chunk)?;
                    // The store cuts parts (or syncs) at hash checkpoints, as for native uploads.
                    upload.note_progress(hasher.checkpoint());
                    if upload.wants_checkpoint(self.shared.config.checkpoint_interval) {
                        upload.start_checkpoint()?;
                    }
                    remaining -= n as u64;
                    last_byte = Instant::now();
                }
            }
        }
    }

    /// One read waiting at most `wait`: `None` when nothing arrived in that time.
    fn read(&mut self, wait: Duration) -> Result<Option<usize>, SeedError> {
        let _ = self.stream.set_read_timeout(Some(wait));
        match self.stream.read(&mut self.input) {
            Ok(n) => Ok(Some(n)),
            Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {
                Ok(None)
            }
            Err(error) => {
                tracing::debug!(peer = %self.peer, "read failed: {error}");
                Err(error.into())
            }
        }
    }
}

/// A source tag no other upload has: original clients cannot resume, so two of them uploading
/// the same name must never be taken for one client reconnecting (the second is refused with
/// "in progress" instead), and their staged data never shares a file.
fn connection_tag() -> SourceTag {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut tag = [0u8; 16];
    tag[..8].copy_from_slice(&count.to_be_bytes());
    tag[8..].copy_from_slice(&nanos.to_be_bytes());
    SourceTag(tag)
}
