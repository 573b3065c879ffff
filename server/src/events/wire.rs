//! The byte stream of one connection on an event loop, over a non-blocking socket: plaintext,
//! or TLS driven through rustls (sans-IO, so it runs on the loop: encryption is computation,
//! never a wait). Reads append plaintext to a buffer; writes take plaintext from one; both stop
//! at `WouldBlock` and are tried again at the socket's next readiness.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;

use super::input::Input;

/// Encrypted bytes rustls may hold before they reach the socket: a batch of output.
const TLS_SEND_LIMIT: usize = 512 * 1024;

/// What a connection speaks.
pub(super) enum Wire {
    /// A TLS server waiting for the first byte, which tells TLS from plaintext ferry.
    Sniffing,
    /// Plaintext TCP.
    Plain,
    /// TLS 1.3.
    Tls(Box<rustls::ServerConnection>),
}

/// What a read found.
#[derive(Debug, Default)]
pub(super) struct Received {
    /// Plaintext bytes appended.
    pub(super) bytes: usize,
    /// The peer ended its side (or TLS with `close_notify`).
    pub(super) eof: bool,
}

impl Wire {
    /// TLS with `config`, for a connection whose first byte showed a TLS client.
    pub(super) fn tls(config: Arc<rustls::ServerConfig>) -> Result<Wire, rustls::Error> {
        let mut conn = rustls::ServerConnection::new(config)?;
        conn.set_buffer_limit(Some(TLS_SEND_LIMIT));
        Ok(Wire::Tls(Box::new(conn)))
    }

    /// Whether a TLS handshake is still under way.
    pub(super) fn is_handshaking(&self) -> bool {
        matches!(self, Wire::Tls(tls) if tls.is_handshaking())
    }

    /// Reads what the socket has into `input` until it would block, ends, or `input` holds
    /// `limit` bytes (`scratch`: the serving thread's read buffer, see [`Input::fill`]).
    pub(super) fn read(
        &mut self,
        mut socket: &TcpStream,
        input: &mut Input,
        limit: usize,
        scratch: &mut [u8],
    ) -> io::Result<Received> {
        let mut read = Received::default();
        while input.len() < limit && !read.eof {
            let result = match self {
                Wire::Sniffing => return Ok(read),
                Wire::Plain => input
                    .fill(limit, scratch, |room| socket.read(room))
                    .map(|n| (n, n == 0)),
                Wire::Tls(tls) => read_tls(tls, socket, input, limit, scratch),
            };
            match result {
                Ok((n, eof)) => {
                    read.bytes += n;
                    read.eof = eof;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if read.bytes > 0 => {
                    // Give the bytes first; the error comes back at the next read.
                    let _ = error;
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(read)
    }

    /// Writes `out[*sent..]` until the socket would block; returns whether every byte went
    /// out (under TLS, also those rustls still held).
    pub(super) fn write(
        &mut self,
        mut socket: &TcpStream,
        out: &[u8],
        sent: &mut usize,
    ) -> io::Result<bool> {
        match self {
            // Output before the first byte (a handshake timeout): nothing to say it in.
            Wire::Sniffing => {
                *sent = out.len();
                Ok(true)
            }
            Wire::Plain => {
                while *sent < out.len() {
                    match socket.write(&out[*sent..]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => *sent += n,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(false);
                        }
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => return Err(error),
                    }
                }
                Ok(true)
            }
            Wire::Tls(tls) => loop {
                // rustls takes plaintext up to its limit (then nothing until records go out).
                if *sent < out.len() {
                    *sent += tls.writer().write(&out[*sent..])?;
                }
                if !tls.wants_write() {
                    if *sent == out.len() {
                        return Ok(true);
                    }
                    continue;
                }
                match tls.write_tls(&mut socket) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            },
        }
    }

    /// Whether bytes wait to be written (TLS records rustls holds: a handshake's answer).
    pub(super) fn wants_write(&self) -> bool {
        matches!(self, Wire::Tls(tls) if tls.wants_write())
    }

    /// Starts ending TLS politely (`close_notify`); the next writes send it.
    pub(super) fn close_notify(&mut self) {
        if let Wire::Tls(tls) = self {
            tls.send_close_notify();
        }
    }
}

/// One TLS read: records from the socket, processed, their plaintext appended to `input`.
/// Returns the plaintext bytes and whether the peer ended.
fn read_tls(
    tls: &mut rustls::ServerConnection,
    mut socket: &TcpStream,
    input: &mut Input,
    limit: usize,
    scratch: &mut [u8],
) -> io::Result<(usize, bool)> {
    // Plaintext rustls still holds first: it refuses more records while it holds too much.
    let held = take_plaintext(tls, input, limit, scratch)?;
    if held.0 > 0 || held.1 {
        return Ok(held);
    }
    let ended = tls.read_tls(&mut socket)? == 0;
    let state = match tls.process_new_packets() {
        Ok(state) => state,
        Err(error) => {
            // The alert telling the peer why goes out, best effort.
            let _ = tls.write_tls(&mut socket);
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
    };
    // The handshake's answer goes out at once.
    while tls.wants_write() {
        match tls.write_tls(&mut socket) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    let (taken, closed) = take_plaintext(tls, input, limit, scratch)?;
    Ok((
        taken,
        closed || state.peer_has_closed() || (ended && taken == 0),
    ))
}

/// Moves the plaintext rustls holds into `input` (up to `limit`); returns how many bytes and
/// whether the peer ended TLS.
fn take_plaintext(
    tls: &mut rustls::ServerConnection,
    input: &mut Input,
    limit: usize,
    scratch: &mut [u8],
) -> io::Result<(usize, bool)> {
    let mut taken = 0;
    let mut closed = false;
    while input.len() < limit {
        match input.fill(limit, scratch, |room| tls.reader().read(room)) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => taken += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            // Closed without close_notify: the protocol notices a cut.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                closed = true;
                break;
            }
            Err(error) => return Err(error),
        }
    }
    Ok((taken, closed))
}
