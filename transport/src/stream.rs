//! [`Transport`]: the byte stream under the protocol, the TCP socket itself or TLS 1.3 over it.
//!
//! rustls is sans-IO like the ferry machines; a `Transport` drives it over the blocking socket
//! so that the caller reads and writes plaintext either way and the socket's timeouts keep
//! working: a read returns a timeout error ([`is_timeout`](crate::is_timeout)) when the socket
//! had nothing within its read timeout, or when the TLS records that came held no plaintext
//! yet; a write first pushes out what an earlier write encrypted and fails with a timeout if
//! the peer takes nothing, leaving nothing of its own buffers taken; [`Write::flush`] pushes
//! out the rest.

use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

/// Bytes read from the socket at once under TLS (rustls takes 4 KiB at a time from it).
const TLS_READ_BUFFER: usize = 64 * 1024;

/// Encrypted bytes rustls may hold before a write pushes them out: a whole data chunk.
const TLS_SEND_LIMIT: usize = 512 * 1024;

/// A connection's byte stream, plaintext or TLS, for either end. See the
/// [crate docs](crate) for how reads, writes and timeouts behave under TLS.
pub struct Transport {
    inner: Inner,
}

enum Inner {
    /// Plaintext TCP (`--insecure`).
    Plain(TcpStream),
    /// TLS 1.3 over TCP.
    Tls(Box<Tls>),
}

/// A rustls connection, client or server, over a socket.
pub(crate) struct Tls {
    pub(crate) conn: rustls::Connection,
    pub(crate) socket: BufReader<TcpStream>,
    /// The peer ended TLS (`close_notify`) or the socket reached its end.
    eof: bool,
}

impl Transport {
    /// Plaintext over `socket`.
    pub fn plain(socket: TcpStream) -> Transport {
        Transport {
            inner: Inner::Plain(socket),
        }
    }

    /// The server's end of TLS over `socket`. The handshake is driven by the first reads, or
    /// at once by [`Transport::handshake`].
    ///
    /// # Errors
    ///
    /// rustls cannot start a connection with `config`.
    pub fn tls_server(
        socket: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<Transport, rustls::Error> {
        let conn = rustls::ServerConnection::new(config)?;
        Ok(Transport::tls(conn.into(), socket))
    }

    /// The client's end of TLS over `socket` to the server called `name` (the name its
    /// certificate must carry, if the verifier checks names). The handshake is driven by
    /// [`Transport::handshake`], or by the first writes and reads.
    ///
    /// # Errors
    ///
    /// rustls cannot start a connection with `config`.
    pub fn tls_client(
        socket: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Transport, rustls::Error> {
        let conn = rustls::ClientConnection::new(config, name)?;
        Ok(Transport::tls(conn.into(), socket))
    }

    fn tls(mut conn: rustls::Connection, socket: TcpStream) -> Transport {
        conn.set_buffer_limit(Some(TLS_SEND_LIMIT));
        Transport {
            inner: Inner::Tls(Box::new(Tls {
                conn,
                socket: BufReader::with_capacity(TLS_READ_BUFFER, socket),
                eof: false,
            })),
        }
    }

    /// The rustls connection and its socket, under TLS.
    pub(crate) fn tls_mut(&mut self) -> Option<&mut Tls> {
        match &mut self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(tls) => Some(tls),
        }
    }

    /// Whether a TLS handshake is still under way (never for plaintext): a connection that
    /// ends in this state failed its handshake.
    pub fn is_handshaking(&self) -> bool {
        match &self.inner {
            Inner::Plain(_) => false,
            Inner::Tls(tls) => tls.conn.is_handshaking(),
        }
    }

    /// The socket, to read its addresses or set its options.
    pub fn socket(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(socket) => socket,
            Inner::Tls(tls) => tls.socket.get_ref(),
        }
    }

    /// Sets the socket's read timeout: how long a read waits for the peer (`None`: for ever).
    ///
    /// # Errors
    ///
    /// The operating system refuses it, or `timeout` is zero.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }

    /// Sets the socket's write timeout: how long a write waits for the peer to take bytes
    /// (`None`: for ever).
    ///
    /// # Errors
    ///
    /// The operating system refuses it, or `timeout` is zero.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_write_timeout(timeout)
    }

    /// Ends TLS politely (a `close_notify`, best effort, within the socket's write timeout)
    /// and returns the socket, to half-close and linger on. Plaintext has nothing to end.
    pub fn finish(&mut self) -> &mut TcpStream {
        match &mut self.inner {
            Inner::Plain(socket) => socket,
            Inner::Tls(tls) => {
                tls.conn.send_close_notify();
                let _ = tls.push();
                tls.socket.get_mut()
            }
        }
    }
}

impl Tls {
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

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = match &mut self.inner {
            Inner::Plain(socket) => return socket.read(buf),
            Inner::Tls(tls) => tls,
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
                let _ = tls.push(); // the alert telling the peer why
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
        match &mut self.inner {
            Inner::Plain(socket) => socket.write_vectored(bufs),
            Inner::Tls(tls) => {
                tls.push()?; // earlier bytes first; on a timeout nothing of `bufs` is taken
                let n = tls.conn.writer().write_vectored(bufs)?;
                // Taken: a timeout now only leaves bytes for the next write or flush.
                let _ = tls.push();
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(socket) => socket.flush(),
            Inner::Tls(tls) => tls.push(),
        }
    }
}
