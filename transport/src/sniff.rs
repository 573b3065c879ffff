//! First-byte sniffing: whether a new connection speaks TLS or plaintext ferry, told apart by
//! its first byte without taking it (PROTOCOL.md §2, §10).

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ferry_protocol::limits::MAGIC;

use crate::timeout::is_timeout;

/// First byte of a TLS record carrying a handshake message (a ClientHello, at the start).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a connection's first byte says its peer speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstByte {
    /// A TLS handshake record (`0x16`): a TLS client's hello.
    Tls,
    /// The first byte of the ferry magic: plaintext ferry (a peer run with `--insecure`).
    PlainFerry,
    /// Neither. A TLS server hands it to TLS anyway, which refuses it with an alert.
    Unknown,
}

impl FirstByte {
    /// What `byte`, the first one a peer sent, says it speaks.
    pub fn of(byte: u8) -> FirstByte {
        match byte {
            TLS_HANDSHAKE_RECORD => FirstByte::Tls,
            byte if byte == MAGIC[0] => FirstByte::PlainFerry,
            _ => FirstByte::Unknown,
        }
    }
}

/// Waits for the first byte on `socket` and tells what it says, leaving it in the socket for
/// TLS or the protocol to read. Waits until `until`, in waits of at most `tick` so that
/// `stopping` is asked between them. `None` when the peer closed, stayed silent past `until`,
/// or `stopping` said so, or the socket failed. Sets the socket's read timeout.
pub fn sniff(
    socket: &TcpStream,
    until: Instant,
    tick: Duration,
    stopping: impl Fn() -> bool,
) -> Option<FirstByte> {
    let mut byte = [0u8; 1];
    loop {
        let now = Instant::now();
        if now >= until || stopping() {
            return None;
        }
        let wait = until
            .duration_since(now)
            .clamp(Duration::from_millis(1), tick.max(Duration::from_millis(1)));
        socket.set_read_timeout(Some(wait)).ok()?;
        match socket.peek(&mut byte) {
            Ok(0) => return None,
            Ok(_) => return Some(FirstByte::of(byte[0])),
            Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_tls_hello_the_ferry_magic_and_garbage_are_told_apart() {
        assert_eq!(FirstByte::of(0x16), FirstByte::Tls);
        assert_eq!(FirstByte::of(MAGIC[0]), FirstByte::PlainFerry);
        assert_eq!(FirstByte::of(0x89), FirstByte::PlainFerry);
        for garbage in [0x00, 0x15, 0x17, b'G', b'F', 0xff] {
            assert_eq!(FirstByte::of(garbage), FirstByte::Unknown, "{garbage:#04x}");
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (near, far)
    }

    #[test]
    fn sniffing_leaves_the_first_byte_to_be_read() {
        let (mut near, mut far) = pair();
        near.write_all(&MAGIC).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        let sniffed = sniff(&far, until, Duration::from_millis(50), || false);
        assert_eq!(sniffed, Some(FirstByte::PlainFerry));
        let mut got = [0u8; 8];
        far.read_exact(&mut got).unwrap();
        assert_eq!(got, MAGIC);
    }

    #[test]
    fn a_silent_peer_is_given_up_at_the_deadline() {
        let (_near, far) = pair();
        let start = Instant::now();
        let until = start + Duration::from_millis(150);
        assert_eq!(
            sniff(&far, until, Duration::from_millis(20), || false),
            None
        );
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn a_closed_peer_or_a_stop_gives_nothing() {
        let (near, far) = pair();
        drop(near);
        let until = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            sniff(&far, until, Duration::from_millis(50), || false),
            None
        );

        let (_near, far) = pair();
        let start = Instant::now();
        assert_eq!(sniff(&far, until, Duration::from_millis(50), || true), None);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
