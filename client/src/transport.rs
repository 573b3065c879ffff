//! The byte stream under the protocol: the TCP socket itself, or TLS 1.3 over it.
//!
//! rustls is sans-IO like the ferry machine; [`Transport`] drives it over the blocking socket
//! so that [`Link`](crate::link::Link) reads and writes plaintext as before and the socket's
//! timeouts keep working: a read returns a timeout error when nothing came within the socket's
//! read timeout (or the records that came held no plaintext yet); a write first pushes out what
//! an earlier write encrypted, failing with a timeout if the server takes nothing; `flush`
//! pushes out the rest.

use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::TcpStream;

/// Bytes read from the socket at once under TLS (rustls takes 4 KiB at a time from it).
const TLS_READ_BUFFER: usize = 64 * 1024;

/// Encrypted bytes rustls may hold before a write pushes them out: a whole data chunk.
const TLS_SEND_LIMIT: usize = 512 * 1024;

/// The connection's byte stream.
pub(crate) enum Transport {
    /// Plaintext TCP (`--insecure`).
    Plain(TcpStream),
    /// TLS 1.3 over TCP, handshake done.
    Tls(Box<Tls>),
}

/// A rustls client connection over a socket.
pub(crate) struct Tls {
    pub(crate) conn: rustls::ClientConnection,
    pub(crate) socket: BufReader<TcpStream>,
    eof: bool,
}

impl Tls {
    pub(crate) fn new(mut conn: rustls::ClientConnection, socket: TcpStream) -> Tls {
        conn.set_buffer_limit(Some(TLS_SEND_LIMIT));
        Tls {
            conn,
            socket: BufReader::with_capacity(TLS_READ_BUFFER, socket),
            eof: false,
        }
    }

    /// Writes every encrypted byte rustls holds; a timeout leaves the rest for the next call.
    pub(crate) fn push(&mut self) -> io::Result<()> {
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

impl Transport {
    /// The socket, to set its timeouts.
    pub(crate) fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(tls) => tls.socket.get_ref(),
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
            tls.push()?;
            waited |= !buffered;
            match tls.conn.read_tls(&mut tls.socket) {
                Ok(0) => tls.eof = true,
                Ok(_) => {}
                Err(_) if filled > 0 => return Ok(filled),
                Err(error) => return Err(error),
            }
            if let Err(error) = tls.conn.process_new_packets() {
                let _ = tls.push(); // the alert telling the server why
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

/// Whether a socket error only means its read or write timeout passed (the two kinds
/// platforms report for it).
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
