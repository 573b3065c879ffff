//! One TCP connection driving a [`ClientConnection`]: the socket half of the sans-IO machine,
//! over plaintext or TLS (see [`Transport`]).
//!
//! A `Link` writes what the machine queues, reads until the machine has an event, hands file
//! data of a download to a callback, and turns silence into errors: a read waits at most until
//! the machine's own deadline ([`ClientConnection::poll_timeout`]) or the stall timeout, and a
//! write that makes no progress for the stall timeout fails.
//!
//! Under a rate limit ([`ClientOptions::limit_rate`]) the stream is [`Paced`]: each slice
//! written waits its turn first, each slice read waits after, so the data moves at the rate in
//! both directions (a paced read makes TCP slow the server's sending down).

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferry_protocol::{ClientConnection, ClientEvent, Config, ProtocolError, Timestamp};
use ferry_transport::{Paced, RateLimit, Transport, is_timeout};

use crate::error::ClientError;
use crate::options::ClientOptions;
use crate::security::Security;

/// Size of the receive buffer: several default data chunks, far above the largest control frame.
const RECV_BUF_LEN: usize = 512 * 1024;

/// How long to look for the server's last words after a write failed.
const SALVAGE_WAIT: Duration = Duration::from_millis(200);

/// Shortest socket read timeout; zero would mean "block forever".
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Where file data of a download goes, in order.
pub(crate) type DataSink<'a> = dyn FnMut(&[u8]) -> Result<(), ClientError> + 'a;

/// An open, handshaken connection to the server.
pub(crate) struct Link {
    stream: Paced<Transport>,
    pub(crate) conn: ClientConnection,
    epoch: Instant,
    io_timeout: Duration,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    last_progress: Instant,
}

impl Link {
    /// Connects to the first address that answers and completes the handshake; the data then
    /// moves under `rate_limit`, if any.
    pub(crate) fn open(
        addrs: &[SocketAddr],
        options: &ClientOptions,
        epoch: Instant,
        rate_limit: Option<&RateLimit>,
    ) -> Result<Link, ClientError> {
        let stream = connect_any(addrs, options.connect_timeout)?;
        let during = "setting up the connection";
        stream
            .set_nodelay(true)
            .map_err(|source| ClientError::Network { during, source })?;
        stream
            .set_write_timeout(Some(options.io_timeout.max(MIN_WAIT)))
            .map_err(|source| ClientError::Network { during, source })?;
        let (host, server) = server_names(&stream, options);
        let stream = match &options.security {
            Security::Insecure => Transport::plain(stream),
            Security::Tls(trust) => {
                crate::tls::connect(stream, &host, &server, trust, options.connect_timeout)?
            }
        };
        let config = Config {
            handshake_timeout: options.connect_timeout,
            idle_timeout: options.io_timeout,
        };
        let now = timestamp(epoch);
        let conn = ClientConnection::new(config, now, &options.token)?;
        let mut link = Link {
            stream: Paced::new(stream, rate_limit.into_iter().cloned().collect()),
            conn,
            epoch,
            io_timeout: options.io_timeout.max(MIN_WAIT),
            buf: vec![0; RECV_BUF_LEN],
            start: 0,
            end: 0,
            out: Vec::with_capacity(1024),
            last_progress: Instant::now(),
        };
        link.flush("sending the handshake")?;
        match link.next_event("waiting for the server's welcome", &mut no_data) {
            Ok(ClientEvent::Connected { .. }) => Ok(link),
            Ok(other) => Err(ClientError::Protocol(unexpected(&other, "the handshake"))),
            Err(ClientError::Protocol(ProtocolError::Peer { code, message }))
                if options.security == Security::Insecure
                    && code == ferry_protocol::ErrorCode::NotAuthorised
                    && message.contains("requires TLS") =>
            {
                Err(ClientError::TlsRequired { server })
            }
            Err(ClientError::Protocol(ProtocolError::Peer { code, message })) => {
                Err(ClientError::Refused {
                    request: "the connection",
                    code,
                    message,
                })
            }
            Err(error) => Err(error),
        }
    }

    fn now(&self) -> Timestamp {
        timestamp(self.epoch)
    }

    /// Writes everything the machine has queued.
    pub(crate) fn flush(&mut self, during: &'static str) -> Result<(), ClientError> {
        self.out.clear();
        self.conn.poll_transmit(&mut self.out);
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self
            .stream
            .write_all(&self.out)
            .and_then(|()| self.stream.flush());
        self.out.clear();
        self.after_write(result, during)
    }

    /// Writes `bytes` the caller framed with the machine (a window of eager uploads).
    pub(crate) fn send_bytes(
        &mut self,
        bytes: &[u8],
        during: &'static str,
    ) -> Result<(), ClientError> {
        let result = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        self.after_write(result, during)
    }

    /// Sends one chunk of upload data: the machine's `DATA` header, then the chunk itself, in
    /// one vectored write and without copying the chunk.
    pub(crate) fn send_data(&mut self, chunk: &[u8]) -> Result<(), ClientError> {
        self.conn.send_file_data(chunk)?;
        self.out.clear();
        self.conn.poll_transmit(&mut self.out);
        let mut slices = [IoSlice::new(&self.out), IoSlice::new(chunk)];
        let result =
            write_all_vectored(&mut self.stream, &mut slices).and_then(|()| self.stream.flush());
        self.out.clear();
        self.after_write(result, "sending upload data")
    }

    fn after_write(
        &mut self,
        result: io::Result<()>,
        during: &'static str,
    ) -> Result<(), ClientError> {
        match result {
            Ok(()) => {
                self.last_progress = Instant::now();
                Ok(())
            }
            Err(error) if is_timeout(&error) => Err(ClientError::TimedOut {
                what: during,
                after: self.io_timeout,
            }),
            Err(source) => Err(self
                .salvage_peer_error()
                .unwrap_or(ClientError::Network { during, source })),
        }
    }

    /// After a failed write: the server may have said why before it closed (a full disk, a
    /// shutdown). Reads what already arrived, briefly, and returns the server's `ERROR` if any.
    fn salvage_peer_error(&mut self) -> Option<ClientError> {
        self.stream
            .get_mut()
            .set_read_timeout(Some(SALVAGE_WAIT))
            .ok()?;
        loop {
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) if n > 0 => self.end += n,
                _ => return None,
            }
            loop {
                let now = self.now();
                match self.conn.handle_input(now, &self.buf[self.start..self.end]) {
                    Err(error @ ProtocolError::Peer { .. }) => {
                        return Some(ClientError::Protocol(error));
                    }
                    Err(_) => return None,
                    Ok(received) if received.consumed == 0 => break,
                    Ok(received) => self.start += received.consumed,
                }
                while self.conn.poll_event().is_some() {}
            }
        }
    }

    /// Reads until the machine has an event and returns it, passing the file data of a download
    /// to `on_data` on the way, in order.
    pub(crate) fn next_event(
        &mut self,
        during: &'static str,
        on_data: &mut DataSink<'_>,
    ) -> Result<ClientEvent, ClientError> {
        self.last_progress = Instant::now();
        loop {
            if let Some(event) = self.conn.poll_event() {
                self.flush(during)?;
                return Ok(event);
            }
            if self.start < self.end {
                let now = self.now();
                let received = match self.conn.handle_input(now, &self.buf[self.start..self.end]) {
                    Ok(received) => received,
                    Err(error) => return Err(self.fail(error)),
                };
                let consumed = received.consumed;
                if !received.file_data.is_empty() {
                    on_data(received.file_data)?;
                }
                self.start += consumed;
                if consumed > 0 {
                    continue;
                }
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            self.flush(during)?;
            self.read_more(during)?;
        }
    }

    /// Reads what the socket has, waiting no longer than the next deadline.
    fn read_more(&mut self, during: &'static str) -> Result<(), ClientError> {
        if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Unreachable with the protocol's limits (no frame needs this much buffered), but
            // a read into no room would look like the end of the stream.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            let now = Instant::now();
            let stall_at = self.last_progress + self.io_timeout;
            let deadline = match self.conn.poll_timeout() {
                Some(ts) => stall_at.min(self.epoch + Duration::from_micros(ts.as_micros())),
                None => stall_at,
            };
            if now >= deadline {
                if let Err(error) = self.conn.handle_timeout(self.now()) {
                    return Err(self.fail(error));
                }
                if now >= stall_at {
                    return Err(ClientError::TimedOut {
                        what: during,
                        after: self.io_timeout,
                    });
                }
            }
            let wait = deadline.saturating_duration_since(now).max(MIN_WAIT);
            self.stream
                .get_mut()
                .set_read_timeout(Some(wait))
                .map_err(|source| ClientError::Network { during, source })?;
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    let result = self.conn.handle_eof(self.now());
                    return Err(match result {
                        Err(error) => ClientError::Protocol(error),
                        Ok(()) => ClientError::Protocol(ProtocolError::UnexpectedEof { during }),
                    });
                }
                Ok(n) => {
                    self.end += n;
                    self.last_progress = Instant::now();
                    return Ok(());
                }
                Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(ClientError::Network { during, source }),
            }
        }
    }

    /// The machine failed: tell the server why (best effort) and report the error.
    fn fail(&mut self, error: ProtocolError) -> ClientError {
        let _ = self.flush("reporting an error to the server");
        ClientError::Protocol(error)
    }
}

/// A data sink for exchanges that carry no file data.
pub(crate) fn no_data(_: &[u8]) -> Result<(), ClientError> {
    Ok(())
}

/// An event that does not fit the exchange under way: the machine prevents this, so it marks
/// a bug; reported as a protocol failure rather than a panic.
pub(crate) fn unexpected(event: &ClientEvent, during: &'static str) -> ProtocolError {
    tracing::warn!(?event, during, "unexpected event");
    ProtocolError::UnexpectedFrame {
        frame: "an unexpected reply",
        state: during,
    }
}

fn timestamp(epoch: Instant) -> Timestamp {
    Timestamp::from_micros(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// The server's host (for the certificate's name) and its `HOST:PORT` (its key in the
/// known-servers file).
fn server_names(stream: &TcpStream, options: &ClientOptions) -> (String, String) {
    let peer = stream.peer_addr().ok();
    let host = options
        .server_name
        .clone()
        .or_else(|| peer.map(|p| p.ip().to_string()))
        .unwrap_or_default();
    let port = peer.map_or(0, |p| p.port());
    let server = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    (host, server)
}

fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout.max(MIN_WAIT)) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(ClientError::Connect {
        addr: addrs
            .first()
            .map_or_else(|| "(no address)".to_owned(), ToString::to_string),
        source: last,
    })
}

/// `write_all` for several buffers (the standard one is not stable yet).
fn write_all_vectored(
    stream: &mut Paced<Transport>,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
