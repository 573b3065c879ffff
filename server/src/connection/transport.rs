//! The byte stream under the protocol: the TCP socket itself, or TLS 1.3 over it.
//!
//! rustls is sans-IO like the ferry machine; [`Transport`] drives it over the blocking socket
//! so the connection loop reads and writes plaintext as before, and the socket's read and
//! write timeouts keep working: a read returns a timeout error when the socket had nothing
//! within its timeout (or when the TLS records that came in held no plaintext yet), a write
//! first pushes out what an earlier write encrypted and fails with a timeout if the client
//! takes nothing, and [`Transport::flush`] pushes out the rest.

use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::server::is_timeout;

/// Bytes read from the socket at once under TLS (rustls takes 4 KiB at a time from it).
const TLS_READ_BUFFER: usize = 64 * 1024;

/// Encrypted bytes rustls may hold before a write pushes them out: a whole data chunk.
const TLS_SEND_LIMIT: usize = 512 * 1024;

/// First byte of the ferry magic (PROTOCOL.md §2).
pub(crate) const FERRY_MAGIC_FIRST: u8 = 0x89;

/// The connection's byte stream.
pub(crate) enum Transport {
    /// Plaintext TCP (`--insecure`).
    Plain(TcpStream),
    /// TLS 1.3 over TCP.
    Tls(Box<Tls>),
}

/// A rustls server connection over a socket.
pub(crate) struct Tls {
    conn: rustls::ServerConnection,
    socket: BufReader<TcpStream>,
    eof: bool,
}

impl Transport {
    /// TLS over `socket`, the handshake to be driven by the first reads.
    pub(crate) fn tls(
        socket: TcpStream,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> io::Result<Transport> {
        let mut conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(TLS_SEND_LIMIT));
        Ok(Transport::Tls(Box::new(Tls {
            conn,
            socket: BufReader::with_capacity(TLS_READ_BUFFER, socket),
            eof: false,
        })))
    }

    /// The socket, to set its timeouts.
    pub(crate) fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(tls) => tls.socket.get_ref(),
        }
    }

    /// Completes the TLS handshake by `until` (the socket's read timeout bounds each wait).
    pub(crate) fn handshake(&mut self, until: Instant) -> io::Result<()> {
        let Transport::Tls(tls) = self else {
            return Ok(());
        };
        while tls.conn.is_handshaking() {
            if Instant::now() >= until {
                return Err(io::ErrorKind::TimedOut.into());
            }
            tls.push()?;
            if tls.conn.read_tls(&mut tls.socket)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Err(error) = tls.conn.process_new_packets() {
                let _ = tls.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
        tls.push()
    }

    /// Ends TLS politely (a `close_notify`, best effort) and returns the socket, to linger on.
    pub(crate) fn finish(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(tls) => {
                tls.conn.send_close_notify();
                let _ = tls.push();
                tls.socket.get_mut()
            }
        }
    }
}

impl Tls {
    /// Writes every encrypted byte rustls holds; a timeout leaves the rest for the next call.
    fn push(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(self.socket.get_mut())? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Moves decrypted bytes into `buf`; `Ok(0)` when there are none yet.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.conn.reader().read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.eof = true; // close_notify
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                self.eof = true; // closed without close_notify; the protocol notices a cut
                Ok(0)
            }
            Err(error) => Err(error),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = match self {
            Transport::Plain(socket) => return socket.read(buf),
            Transport::Tls(tls) => tls,
        };
        let mut filled = 0;
        let mut waited = false;
        loop {
            filled += tls.take_plaintext(&mut buf[filled..])?;
            if filled == buf.len() || tls.eof {
                return Ok(filled);
            }
            let buffered = !tls.socket.buffer().is_empty();
            if !buffered && (filled > 0 || waited) {
                if filled == 0 {
                    // Records came in but no plaintext yet: let the caller look at its clock.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                return Ok(filled);
            }
            tls.push()?; // handshake messages go out before we wait for the answer
            waited |= !buffered;
            match tls.conn.read_tls(&mut tls.socket) {
                Ok(0) => tls.eof = true,
                Ok(_) => {}
                Err(_) if filled > 0 => return Ok(filled),
                Err(error) => return Err(error),
            }
            if let Err(error) = tls.conn.process_new_packets() {
                let _ = tls.push(); // the alert telling the client why
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write_vectored(bufs),
            Transport::Tls(tls) => {
                tls.push()?; // earlier bytes first; on a timeout nothing of `bufs` is taken
                let n = tls.conn.writer().write_vectored(bufs)?;
                // Taken: a timeout now only leaves bytes for the next write or flush.
                let _ = tls.push();
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(socket) => socket.flush(),
            Transport::Tls(tls) => tls.push(),
        }
    }
}

/// What a new connection's first byte says it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FirstByte {
    /// A TLS record, `0x16` (or anything else: TLS will refuse it).
    Tls,
    /// The ferry magic in plaintext: a client run with `--insecure`.
    PlainFerry,
    /// The client left, went silent past `until`, or the server is stopping.
    Nothing,
}

/// Waits for the first byte without taking it, a tick at a time so that `stopping` is noticed.
pub(crate) fn sniff(
    socket: &TcpStream,
    until: Instant,
    tick: Duration,
    stopping: impl Fn() -> bool,
) -> FirstByte {
    let mut byte = [0u8; 1];
    loop {
        let now = Instant::now();
        if now >= until || stopping() {
            return FirstByte::Nothing;
        }
        let wait = until
            .duration_since(now)
            .clamp(Duration::from_millis(1), tick);
        if socket.set_read_timeout(Some(wait)).is_err() {
            return FirstByte::Nothing;
        }
        match socket.peek(&mut byte) {
            Ok(0) => return FirstByte::Nothing,
            Ok(_) if byte[0] == FERRY_MAGIC_FIRST => return FirstByte::PlainFerry,
            Ok(_) => return FirstByte::Tls,
            Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return FirstByte::Nothing,
        }
    }
}
