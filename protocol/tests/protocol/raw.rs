//! Helpers for driving one machine alone with raw frames, the way a peer would: encode frames,
//! feed bytes until the machine stops, and read back the frames it sent.

use ferry_protocol::limits::MAGIC;
use ferry_protocol::{
    ClientConnection, ClientEvent, Config, FileHasher, Frame, HashCheckpoint, ProtocolError,
    ServerConnection, ServerEvent, Timestamp, decode_frame,
};

/// The bytes of `frames`, one after another.
pub fn frames(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame.encode(&mut out);
    }
    out
}

/// The magic, then `frames`: what a peer sends first.
pub fn magic_then(frames_after: &[Frame<'_>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(frames(frames_after));
    out
}

/// `s` seconds after the epoch.
pub fn secs(s: u64) -> Timestamp {
    Timestamp::from_micros(s * 1_000_000)
}

/// The frames a machine queued in `bytes` (after the magic, if they start with it). A `DATA`
/// frame is only its header here: the driver writes the file data itself. Panics on bytes that
/// are not whole frames: a machine must queue only those.
pub fn frames_in(bytes: &[u8]) -> Vec<Frame<'_>> {
    let mut rest = bytes.strip_prefix(&MAGIC).unwrap_or(bytes);
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (frame, used) = decode_frame(rest)
            .expect("a machine sends only valid frames")
            .expect("a machine sends only whole frames");
        rest = &rest[used..];
        out.push(frame);
    }
    out
}

/// Everything the machine has queued to send.
pub fn sent_by_server(conn: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    let n = conn.poll_transmit(&mut out);
    assert_eq!(n, out.len());
    out
}

/// Everything the machine has queued to send.
pub fn sent_by_client(conn: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    let n = conn.poll_transmit(&mut out);
    assert_eq!(n, out.len());
    out
}

/// What feeding bytes to a machine gave: bytes read, file data handed out, events raised.
#[derive(Debug)]
pub struct Fed<E> {
    pub consumed: usize,
    pub file_data: Vec<u8>,
    pub events: Vec<E>,
}

/// Feeds `input` to the server until it reads no more (it waits for a decision, or needs more
/// bytes), draining events without deciding anything. The first error ends it.
pub fn feed_server(
    conn: &mut ServerConnection,
    now: Timestamp,
    input: &[u8],
) -> Result<Fed<ServerEvent>, ProtocolError> {
    let mut fed = Fed {
        consumed: 0,
        file_data: Vec::new(),
        events: Vec::new(),
    };
    loop {
        let received = conn.handle_input(now, &input[fed.consumed..])?;
        fed.consumed += received.consumed;
        fed.file_data.extend_from_slice(received.file_data);
        let before = fed.events.len();
        while let Some(event) = conn.poll_event() {
            fed.events.push(event);
        }
        if received.consumed == 0 && fed.events.len() == before {
            return Ok(fed);
        }
    }
}

/// The same for the client.
pub fn feed_client(
    conn: &mut ClientConnection,
    now: Timestamp,
    input: &[u8],
) -> Result<Fed<ClientEvent>, ProtocolError> {
    let mut fed = Fed {
        consumed: 0,
        file_data: Vec::new(),
        events: Vec::new(),
    };
    loop {
        let received = conn.handle_input(now, &input[fed.consumed..])?;
        fed.consumed += received.consumed;
        fed.file_data.extend_from_slice(received.file_data);
        let before = fed.events.len();
        while let Some(event) = conn.poll_event() {
            fed.events.push(event);
        }
        if received.consumed == 0 && fed.events.len() == before {
            return Ok(fed);
        }
    }
}

/// Feeds `input` whole to a server, accepting every client and upload that asks (a driver
/// that says yes to everything); returns the events and the error that ended it, if any.
pub fn feed_accepting(
    conn: &mut ServerConnection,
    input: &[u8],
) -> (Vec<ServerEvent>, Option<ProtocolError>) {
    let mut events = Vec::new();
    let mut pos = 0;
    loop {
        match conn.handle_input(Timestamp::ZERO, &input[pos..]) {
            Ok(received) => {
                pos += received.consumed;
                let before = events.len();
                while let Some(event) = conn.poll_event() {
                    match &event {
                        ServerEvent::ClientHello { .. } => conn.accept_client().unwrap(),
                        ServerEvent::PutRequested(_) => {
                            conn.accept_put(&HashCheckpoint::start()).unwrap()
                        }
                        _ => {}
                    }
                    events.push(event);
                }
                if received.consumed == 0 && events.len() == before {
                    return (events, None);
                }
            }
            Err(error) => return (events, Some(error)),
        }
    }
}

/// A client's `HELLO` for version 1.
pub fn hello() -> Frame<'static> {
    Frame::Hello {
        min_version: 1,
        max_version: 1,
        token: b"",
    }
}

/// A server at time zero that has accepted a version-1 client; nothing left to send.
pub fn connected_server() -> ServerConnection {
    connected_server_at(1)
}

/// A server at time zero that has accepted a client speaking up to `version`; nothing left to
/// send.
pub fn connected_server_at(version: u16) -> ServerConnection {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let hello = Frame::Hello {
        min_version: 1,
        max_version: version,
        token: b"",
    };
    let fed = feed_server(&mut conn, Timestamp::ZERO, &magic_then(&[hello])).unwrap();
    assert!(
        matches!(fed.events[..], [ServerEvent::ClientHello { version: v, .. }] if v == version),
        "{:?}",
        fed.events
    );
    conn.accept_client().unwrap();
    sent_by_server(&mut conn);
    conn
}

/// A client at time zero that the server welcomed with version 1; nothing left to send.
pub fn connected_client() -> ClientConnection {
    connected_client_at(1)
}

/// A client at time zero that the server welcomed with `version`; nothing left to send.
pub fn connected_client_at(version: u16) -> ClientConnection {
    let mut conn = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let fed = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &magic_then(&[Frame::Welcome { version }]),
    )
    .unwrap();
    assert_eq!(fed.events, [ClientEvent::Connected { version }]);
    sent_by_client(&mut conn);
    conn
}

/// `bytes` as one `DATA` frame and its data, then the `DONE` with their digest: the rest of an
/// upload or a download, as its sender writes it.
pub fn data_then_done(bytes: &[u8]) -> Vec<u8> {
    let mut out = frames(&[Frame::Data {
        len: bytes.len() as u32,
    }]);
    out.extend_from_slice(bytes);
    out.extend(frames(&[Frame::Done {
        digest: ferry_protocol::Digest::of(bytes),
    }]));
    out
}

/// A `PUT` without overwrite or resume.
pub fn put(name: &str, size: u64) -> Frame<'_> {
    Frame::Put {
        name,
        size,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: Default::default(),
    }
}

/// File content of `len` bytes that differ from one another.
pub fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8)
        .collect()
}

/// The checkpoint a receiver that stored `data` saves.
pub fn checkpoint_after(data: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(data);
    hasher.checkpoint()
}
