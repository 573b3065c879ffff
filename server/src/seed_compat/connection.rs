//! One original client's connection: read its header, let a [`Bridge`] ask a real session for
//! the upload, say `go ahead`, pass the data on as it arrives, and finish once the client
//! closes. Every decision is the session's; this loop reads the socket and tells the time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_protocol::SourceTag;
use ferry_transport::is_timeout;

use crate::server::Shared;

use super::bridge::{Bridge, BridgeError};
use super::config::SeedCompatConfig;
use super::header::{Header, HeaderError, HeaderParser};

/// The server's answer that lets an original client send its data.
pub(crate) const GO_AHEAD: &[u8; 8] = b"go ahead";

/// Bytes read from the socket at once.
const INPUT_BUFFER: usize = 64 * 1024;

/// Longest a read waits before the loop looks at the shutdown flag again.
const TICK: Duration = Duration::from_millis(250);

/// Why an original client's upload was refused or abandoned. The client is never told (the
/// protocol has no way to), so this is what the log says.
#[derive(Debug, thiserror::Error)]
enum SeedError {
    /// The header was malformed.
    #[error("{0}")]
    Header(#[from] HeaderError),
    /// The session refused the upload or ended it.
    #[error("{0}")]
    Session(#[from] BridgeError),
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
    let opened = shared.now();
    let mut client = Client {
        shared,
        stream,
        peer,
        input: vec![0u8; INPUT_BUFFER],
    };
    let header = match client.read_header(seed.name_pause) {
        Ok(header) => header,
        Err(error) => {
            tracing::warn!("refused (closed without `go ahead`): {error}");
            return;
        }
    };
    let request = (
        header.name.as_str(),
        header.size,
        seed.overwrite,
        connection_tag(),
    );
    let started = Bridge::start(shared.context(), peer, opened, shared.now(), request)
        .map_err(SeedError::from)
        .and_then(|bridge| {
            let _ = client
                .stream
                .set_write_timeout(Some(shared.config.idle_timeout));
            match client.stream.write_all(GO_AHEAD) {
                Ok(()) => Ok(bridge),
                Err(error) => {
                    bridge.abandon("writing `go ahead` failed");
                    Err(error.into())
                }
            }
        });
    let mut bridge = match started {
        Ok(bridge) => bridge,
        Err(error) => {
            tracing::warn!(
                name = header.name,
                size = header.size,
                "refused (closed without `go ahead`): {error}"
            );
            return;
        }
    };
    tracing::debug!(
        name = header.name,
        size = header.size,
        "upload accepted (`go ahead`)"
    );
    // These uploads cannot be resumed (the original protocol has no way to): whatever fails,
    // the session keeps nothing.
    let ended = match client.receive(&mut bridge, header.size) {
        Ok(()) => bridge.finish(shared.now()).map_err(SeedError::from),
        Err(error) => {
            bridge.abandon(&error.to_string());
            Err(error)
        }
    };
    match ended {
        Ok(digest) => tracing::info!(name = header.name, %digest, "stored (original client)"),
        Err(error) => tracing::warn!(name = header.name, "abandoned, nothing kept: {error}"),
    }
}

struct Client<'a> {
    shared: &'a Shared,
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
}

impl Client<'_> {
    /// Reads the size and the name; the name ends once the client has been quiet for `pause`.
    fn read_header(&mut self, pause: Duration) -> Result<Header, SeedError> {
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
            match self.read(until - now)? {
                Some(0) => return Err(SeedError::ClosedBeforeGoAhead),
                Some(n) => {
                    parser.handle_input(&self.input[..n])?;
                    last_byte = Instant::now();
                }
                None => {}
            }
        }
    }

    /// Passes exactly `size` bytes on to the session, then waits for the client to close;
    /// the session's own deadline ends a silent client.
    fn receive(&mut self, bridge: &mut Bridge, size: u64) -> Result<(), SeedError> {
        let shared = self.shared;
        let mut remaining = size;
        loop {
            if shared.shutdown.is_stopping() {
                bridge.handle_shutdown(shared.now(), shared.shutdown.is_past_grace())?;
            }
            let now = shared.now();
            let wait = match bridge.poll_timeout() {
                Some(deadline) if deadline <= now => {
                    bridge.handle_timeout(now)?;
                    continue;
                }
                Some(deadline) => deadline.saturating_since(now),
                None => TICK,
            };
            match self.read(wait)? {
                None => {}
                Some(0) if remaining == 0 => return Ok(()),
                Some(0) => {
                    return Err(SeedError::ClosedEarly {
                        got: size - remaining,
                        size,
                    });
                }
                Some(n) if n as u64 > remaining => return Err(SeedError::TooManyBytes { size }),
                Some(n) => {
                    bridge.receive(shared.now(), &self.input[..n])?;
                    remaining -= n as u64;
                }
            }
        }
    }

    /// One read waiting at most `wait` (and at most a tick, to see a shutdown): `None` when
    /// nothing arrived in that time.
    fn read(&mut self, wait: Duration) -> Result<Option<usize>, SeedError> {
        let wait = wait.clamp(Duration::from_millis(1), TICK);
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
