//! Hostile clients on raw sockets: each misbehaves in one way and reports the error code the
//! server answered with.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferry_protocol::{
    ClientConnection, ClientEvent, Config, ErrorCode, Frame, ProtocolError, Timestamp,
    limits::DEFAULT_DATA_CHUNK,
};
use rand::RngExt;

use crate::content::ContentId;
use crate::plan::{HostileKind, SimRng};

/// A raw connection driving a protocol machine by hand.
struct Raw {
    stream: TcpStream,
    conn: ClientConnection,
    epoch: Instant,
    inbox: Vec<u8>,
}

/// What ended a hostile exchange.
enum End {
    Event(ClientEvent),
    Error(ErrorCode),
}

impl Raw {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn send_queued(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        self.write(&out)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Reads until the machine has an event or fails; a fatal error from the server gives its
    /// code.
    fn next(&mut self) -> Result<End, String> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let now = self.now();
            let mut start = 0;
            loop {
                match self.conn.handle_input(now, &self.inbox[start..]) {
                    Ok(received) => {
                        start += received.consumed;
                        if let Some(event) = self.conn.poll_event() {
                            self.inbox.drain(..start);
                            return Ok(End::Event(event));
                        }
                        if received.consumed == 0 {
                            break;
                        }
                    }
                    Err(ProtocolError::Peer { code, .. }) => return Ok(End::Error(code)),
                    Err(other) => {
                        return Err(format!("the server's answer broke the protocol: {other}"));
                    }
                }
            }
            self.inbox.drain(..start);
            let n = self
                .stream
                .read(&mut buf)
                .map_err(|e| format!("no answer from the server: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection without an error frame".into());
            }
            self.inbox.extend_from_slice(&buf[..n]);
        }
    }
}

/// Misbehaves as `kind` against the server at `addr`, waiting at most `wait` for its answer;
/// returns the error code the server answered with.
pub(crate) fn misbehave(
    addr: SocketAddr,
    kind: HostileKind,
    name: &str,
    content: ContentId,
    wait: Duration,
    rng: &mut SimRng,
) -> Result<ErrorCode, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(wait))
        .and_then(|()| stream.set_write_timeout(Some(wait)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("socket setup: {e}"))?;
    let config = Config {
        handshake_timeout: wait,
        idle_timeout: wait,
    };
    let epoch = Instant::now();
    let conn = ClientConnection::new(config, Timestamp::ZERO, b"")
        .map_err(|e| format!("client machine: {e}"))?;
    let mut raw = Raw {
        stream,
        conn,
        epoch,
        inbox: Vec::new(),
    };
    match kind {
        HostileKind::GarbageMagic => {
            let len = rng.random_range(1..=64);
            let mut garbage: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
            garbage[0] = rng.random_range(0..0x89u8);
            raw.write(&garbage)?;
            return expect_error(&mut raw);
        }
        HostileKind::SilentHandshake => return expect_error(&mut raw),
        _ => {}
    }
    raw.send_queued()?;
    match raw.next()? {
        End::Event(ClientEvent::Connected { .. }) => {}
        End::Event(other) => return Err(format!("handshake answered with {other:?}")),
        End::Error(code) => return Err(format!("handshake refused: {code}")),
    }
    match kind {
        HostileKind::SilentIdle => expect_error(&mut raw),
        HostileKind::GarbageFrame => {
            let mut garbage = vec![0x50 + rng.random_range(0..0x20u8)];
            let len = rng.random_range(0..64);
            garbage.extend((0..len).map(|_| rng.random::<u8>()));
            raw.write(&garbage)?;
            expect_error(&mut raw)
        }
        _ => lie_in_upload(&mut raw, kind, name, content),
    }
}

fn expect_error(raw: &mut Raw) -> Result<ErrorCode, String> {
    match raw.next()? {
        End::Error(code) => Ok(code),
        End::Event(event) => Err(format!("expected an error, got {event:?}")),
    }
}

/// Uploads with a lie: more bytes than declared, fewer, or a wrong digest.
fn lie_in_upload(
    raw: &mut Raw,
    kind: HostileKind,
    name: &str,
    content: ContentId,
) -> Result<ErrorCode, String> {
    let size = content.size;
    raw.conn
        .put(name, size, false, false, content.tag())
        .map_err(|e| format!("client machine refused the upload: {e}"))?;
    raw.send_queued()?;
    match raw.next()? {
        End::Event(ClientEvent::PutReady { offset: 0 }) => {}
        End::Event(ClientEvent::Refused { code, .. }) | End::Error(code) => {
            return Err(format!("upload refused up front: {code}"));
        }
        End::Event(other) => return Err(format!("upload answered with {other:?}")),
    }
    let honest_end = if kind == HostileKind::SizeLieUnder {
        size - 1
    } else {
        size
    };
    let mut buf = vec![0u8; DEFAULT_DATA_CHUNK];
    let mut pos = 0u64;
    while pos < honest_end {
        let want = usize::try_from(honest_end - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = content.fill(pos, &mut buf[..want]);
        raw.conn
            .send_file_data(&buf[..n])
            .map_err(|e| format!("client machine refused data: {e}"))?;
        raw.send_queued()?;
        raw.write(&buf[..n])?;
        pos += n as u64;
    }
    let mut lie = Vec::new();
    match kind {
        HostileKind::SizeLieOver => {
            Frame::Data { len: 2 }.encode(&mut lie);
            lie.extend_from_slice(b"!!");
        }
        HostileKind::SizeLieUnder => Frame::Done {
            digest: content.digest(),
        }
        .encode(&mut lie),
        _ => {
            let mut digest = content.digest();
            digest.0[0] ^= 0x80;
            raw.conn
                .finish_upload(digest)
                .map_err(|e| format!("client machine refused to finish: {e}"))?;
            raw.conn.poll_transmit(&mut lie);
        }
    }
    raw.write(&lie)?;
    match raw.next()? {
        End::Event(ClientEvent::Refused { code, .. }) | End::Error(code) => Ok(code),
        End::Event(other) => Err(format!("the lie was answered with {other:?}")),
    }
}
