//! Test harness: a real server on a loopback port with a temporary root, a small blocking
//! client driving `ferry_protocol::ClientConnection` over a `TcpStream`, and a raw client for
//! hostile frames the real client would never send.

#![allow(dead_code)]

pub mod ferryd;
mod small_disk;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_protocol::limits::{DEFAULT_DATA_CHUNK, MAGIC, PROTOCOL_VERSION};
use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, Frame, HashCheckpoint, ListEntry,
    ProtocolError, SourceTag, Timestamp, decode_frame,
};
use ferry_server::{Engine, Server, ServerConfig, ServerHandle};
use tempfile::TempDir;

pub use small_disk::SmallDisk;

/// Longest any test waits for the server before failing instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The engine the suite runs against: `FERRY_ENGINE` (`threads` or `events`, the variable
/// `ferryd` itself reads, so the tests that run the binary follow it too), else the default.
/// CI runs the whole suite once per engine.
pub fn engine() -> Engine {
    match std::env::var("FERRY_ENGINE") {
        Ok(name) => name
            .parse()
            .unwrap_or_else(|error| panic!("FERRY_ENGINE: {error}")),
        Err(_) => Engine::default(),
    }
}

/// A configuration over `root` for the engine under test.
pub fn config(root: impl Into<PathBuf>) -> ServerConfig {
    let mut config = ServerConfig::new(root);
    config.engine = engine();
    config
}

/// A server on 127.0.0.1:0 over a temporary root, shut down when dropped.
pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    /// The small disk the root is on (`start_on_small_disk`): unmounted after the server
    /// stopped, before the folder goes.
    disk: Option<SmallDisk>,
    pub dir: TempDir,
}

impl TestServer {
    pub fn start(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, configure)
    }

    pub fn start_in(dir: TempDir, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut config = config(dir.path().join("root"));
        configure(&mut config);
        let handle = Server::start(config).unwrap();
        TestServer {
            addr: handle.local_addr(),
            handle: Some(handle),
            disk: None,
            dir,
        }
    }

    /// A server whose root is on a tmpfs of `size` (a disk that fills); `None` where mounting
    /// is not allowed (not root).
    pub fn start_on_small_disk(
        size: &str,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Option<TestServer> {
        let dir = tempfile::tempdir().unwrap();
        let disk = SmallDisk::mount(dir.path(), size)?;
        let mut server = Self::start_in(dir, configure);
        server.disk = Some(disk);
        Some(server)
    }

    /// Shuts the server down and starts a new one on the same root.
    pub fn restart(mut self, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        // The small disk stays mounted under the new server.
        let disk = self.disk.take();
        let mut server = Self::start_in(dir, configure);
        server.disk = disk;
        server
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Every path under the root, staging included, with file sizes: to show nothing changed.
    pub fn snapshot(&self) -> BTreeSet<(String, u64)> {
        snapshot(&self.root())
    }

    /// Files in the staging area.
    pub fn staged_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.root().join(".ferry-staging")) else {
            return Vec::new();
        };
        entries.flatten().map(|e| e.path()).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }
}

pub fn snapshot(root: &Path) -> BTreeSet<(String, u64)> {
    let mut out = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                pending.push(path);
                out.insert((format!("{rel}/"), 0));
            } else {
                out.insert((rel, meta.len()));
            }
        }
    }
    out
}

/// Deterministic pseudo-random bytes (splitmix64), different for each seed.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn tag(n: u8) -> SourceTag {
    SourceTag([n; 16])
}

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < end, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A blocking client over the real protocol machine.
pub struct Client {
    pub stream: TcpStream,
    pub conn: ClientConnection,
    input: Vec<u8>,
    filled: usize,
    events: std::collections::VecDeque<ClientEvent>,
    pub downloaded: Vec<u8>,
    start: Instant,
}

impl Client {
    /// Connects and completes the handshake; panics if the server refuses.
    pub fn connect(addr: SocketAddr) -> Client {
        match Client::try_connect(addr) {
            Ok(client) => client,
            Err(error) => panic!("handshake failed: {error}"),
        }
    }

    /// Connects; the server's refusal comes back as the error.
    pub fn try_connect(addr: SocketAddr) -> Result<Client, ProtocolError> {
        Client::handshake(TcpStream::connect(addr).unwrap(), b"")
    }

    /// Connects from the local address `from` (any of 127.0.0.0/8 reaches a server on
    /// 127.0.0.1, so tests can play several clients) presenting `token`; the server's refusal
    /// comes back as the error.
    pub fn try_connect_from(
        addr: SocketAddr,
        from: IpAddr,
        token: &[u8],
    ) -> Result<Client, ProtocolError> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
        socket.connect(&addr.into()).unwrap();
        Client::handshake(socket.into(), token)
    }

    fn handshake(stream: TcpStream, token: &[u8]) -> Result<Client, ProtocolError> {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        let start = Instant::now();
        let conn = ClientConnection::new(Config::default(), Timestamp::ZERO, token).unwrap();
        let mut client = Client {
            stream,
            conn,
            input: vec![0; 256 * 1024],
            filled: 0,
            events: Default::default(),
            downloaded: Vec::new(),
            start,
        };
        match client.next_event()? {
            ClientEvent::Connected { .. } => Ok(client),
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.start.elapsed().as_micros() as u64)
    }

    pub fn flush(&mut self) {
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        if !out.is_empty() {
            // The server may have closed already; the read side reports why.
            let _ = self.stream.write_all(&out);
        }
    }

    /// Reads until the machine reports an event (file data goes to `downloaded`).
    pub fn next_event(&mut self) -> Result<ClientEvent, ProtocolError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            self.flush();
            if let Some(error) = self.conn.error() {
                return Err(error.clone());
            }
            self.read_once()?;
        }
    }

    /// One read from the socket, fed to the machine (events are queued, file data kept).
    pub fn read_once(&mut self) -> Result<(), ProtocolError> {
        let n = loop {
            match self.stream.read(&mut self.input[self.filled..]) {
                Ok(n) => break n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break 0,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    panic!("no answer from the server within {PATIENCE:?}")
                }
                Err(error) => panic!(
                    "reading from the server failed ({:?}): {error}",
                    error.kind()
                ),
            }
        };
        let now = self.now();
        if n == 0 {
            self.conn.handle_eof(now)?;
            return Err(ProtocolError::UnexpectedEof { during: "idle" });
        }
        self.filled += n;
        let mut start = 0;
        // A fatal error is sticky: events before it are returned first, then the error.
        while let Ok(received) = self.conn.handle_input(now, &self.input[start..self.filled]) {
            start += received.consumed;
            self.downloaded.extend_from_slice(received.file_data);
            let mut any = false;
            while let Some(event) = self.conn.poll_event() {
                any = true;
                self.events.push_back(event);
            }
            if received.consumed == 0 && !any {
                break;
            }
        }
        self.input.copy_within(start..self.filled, 0);
        self.filled -= start;
        Ok(())
    }

    /// Sends `PUT` and returns the server's answer: `PutReady` or `Refused`.
    pub fn put_request(
        &mut self,
        name: &str,
        size: u64,
        overwrite: bool,
        resume: bool,
        tag: SourceTag,
    ) -> ClientEvent {
        self.conn.put(name, size, overwrite, resume, tag).unwrap();
        self.next_event().unwrap()
    }

    /// Sends file bytes of the upload under way, framed in default-size chunks.
    pub fn send_data(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(DEFAULT_DATA_CHUNK) {
            self.conn.send_file_data(chunk).unwrap();
            let mut out = Vec::new();
            self.conn.poll_transmit(&mut out);
            out.extend_from_slice(chunk);
            self.stream.write_all(&out).unwrap();
        }
    }

    /// Like [`Client::send_data`], but ignores write errors: for a server expected to end the
    /// upload midway (its reason arrives as the next event).
    pub fn send_data_lenient(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(DEFAULT_DATA_CHUNK) {
            if self.conn.send_file_data(chunk).is_err() {
                return;
            }
            let mut out = Vec::new();
            self.conn.poll_transmit(&mut out);
            out.extend_from_slice(chunk);
            if self.stream.write_all(&out).is_err() {
                return;
            }
        }
    }

    /// Waits until the server has processed everything sent so far (a `PING` is answered in
    /// stream order, after the data before it).
    pub fn sync(&mut self) {
        self.conn.ping(7).unwrap();
        assert_eq!(self.next_event().unwrap(), ClientEvent::Pong { nonce: 7 });
    }

    /// Ends the upload with `digest`; returns `PutStored` or `Refused`.
    pub fn finish_upload(&mut self, digest: Digest) -> Result<ClientEvent, ProtocolError> {
        self.conn.finish_upload(digest).unwrap();
        self.next_event()
    }

    /// A whole upload; returns the offset the server resumed from and its final answer.
    pub fn put(
        &mut self,
        name: &str,
        bytes: &[u8],
        overwrite: bool,
        resume: bool,
        tag: SourceTag,
    ) -> (u64, ClientEvent) {
        match self.put_request(name, bytes.len() as u64, overwrite, resume, tag) {
            ClientEvent::PutReady { offset } => {
                self.send_data(&bytes[offset as usize..]);
                (offset, self.finish_upload(Digest::of(bytes)).unwrap())
            }
            other => (0, other),
        }
    }

    /// [`Client::put`], retrying while the server still winds up an earlier connection's
    /// upload of the same name (`InProgress`), as a real client would.
    pub fn put_retrying(
        &mut self,
        name: &str,
        bytes: &[u8],
        overwrite: bool,
        resume: bool,
        tag: SourceTag,
    ) -> (u64, ClientEvent) {
        let end = Instant::now() + PATIENCE;
        loop {
            match self.put(name, bytes, overwrite, resume, tag) {
                (
                    _,
                    ClientEvent::Refused {
                        code: ErrorCode::InProgress,
                        ..
                    },
                ) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    /// Uploads `bytes` as a new file and asserts it was stored.
    pub fn put_new(&mut self, name: &str, bytes: &[u8]) {
        let (_, outcome) = self.put(name, bytes, false, true, tag(0));
        assert_eq!(outcome, ClientEvent::PutStored, "upload of {name}");
    }

    /// Sends `GET`; returns `GetReady` or `Refused`.
    pub fn get_request(&mut self, name: &str) -> ClientEvent {
        self.downloaded.clear();
        self.conn.get(name, HashCheckpoint::start()).unwrap();
        self.next_event().unwrap()
    }

    /// Downloads a whole file, digest checked by the protocol; `Err` carries a refusal.
    pub fn get(&mut self, name: &str) -> Result<Vec<u8>, (ErrorCode, String)> {
        match self.get_request(name) {
            ClientEvent::GetReady { .. } => self.finish_get(),
            ClientEvent::Refused { code, message } => Err((code, message)),
            other => panic!("unexpected answer to GET: {other:?}"),
        }
    }

    /// Reads the rest of a download started with [`Client::get_request`].
    pub fn finish_get(&mut self) -> Result<Vec<u8>, (ErrorCode, String)> {
        match self.next_event().unwrap() {
            ClientEvent::GetVerified { .. } => Ok(std::mem::take(&mut self.downloaded)),
            other => panic!("unexpected event during a download: {other:?}"),
        }
    }

    pub fn list(&mut self, prefix: &str) -> Vec<ListEntry> {
        self.conn.list(prefix).unwrap();
        let mut entries = Vec::new();
        loop {
            match self.next_event().unwrap() {
                ClientEvent::ListEntry(entry) => entries.push(entry),
                ClientEvent::ListEnd => return entries,
                other => panic!("unexpected event in a listing: {other:?}"),
            }
        }
    }

    pub fn names(&mut self) -> Vec<String> {
        self.list("").into_iter().map(|e| e.name).collect()
    }

    pub fn remove(&mut self, name: &str) -> ClientEvent {
        self.conn.remove(name).unwrap();
        self.next_event().unwrap()
    }

    /// Asks to move `from` to `to`; the answer (`Moved` or `Refused`).
    pub fn move_file(&mut self, from: &str, to: &str, overwrite: bool) -> ClientEvent {
        self.conn.move_file(from, to, overwrite).unwrap();
        self.next_event().unwrap()
    }

    /// The digest the server knows for the stored file `name`, if any.
    pub fn stored_digest(&mut self, name: &str) -> Option<Digest> {
        self.conn.query(name, SourceTag::default()).unwrap();
        match self.next_event().unwrap() {
            ClientEvent::QueryReply { stored_digest, .. } => stored_digest,
            other => panic!("unexpected answer to QUERY: {other:?}"),
        }
    }

    /// (stored size, resumable offset of a partial upload with `tag`).
    pub fn query(&mut self, name: &str, tag: SourceTag) -> (Option<u64>, Option<u64>) {
        self.conn.query(name, tag).unwrap();
        match self.next_event().unwrap() {
            ClientEvent::QueryReply {
                stored_size,
                partial_offset,
                ..
            } => (stored_size, partial_offset),
            other => panic!("unexpected answer to QUERY: {other:?}"),
        }
    }
}

/// What a raw client reads back: the frames tests look at, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Error(ErrorCode, String),
    PutReady(u64),
    Other(&'static str),
    Closed,
}

/// A client that writes frames by hand, for what the real client refuses to send.
pub struct RawClient {
    pub stream: TcpStream,
    input: Vec<u8>,
    magic_seen: bool,
}

impl RawClient {
    /// Connects and completes the handshake.
    pub fn connect(addr: SocketAddr) -> RawClient {
        let mut client = RawClient::connect_silent(addr);
        let mut hello = MAGIC.to_vec();
        Frame::Hello {
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            token: b"",
        }
        .encode(&mut hello);
        client.stream.write_all(&hello).unwrap();
        assert_eq!(client.recv(), Reply::Other("WELCOME"));
        client
    }

    /// Connects without sending anything.
    pub fn connect_silent(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        RawClient {
            stream,
            input: Vec::new(),
            magic_seen: false,
        }
    }

    pub fn send(&mut self, frame: &Frame<'_>) {
        let mut out = Vec::new();
        frame.encode(&mut out);
        self.stream.write_all(&out).unwrap();
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame from the server (its magic skipped), or `Closed`.
    pub fn recv(&mut self) -> Reply {
        loop {
            if !self.magic_seen && self.input.len() >= MAGIC.len() {
                assert_eq!(
                    self.input[..MAGIC.len()],
                    MAGIC,
                    "the server's first bytes are the magic"
                );
                self.input.drain(..MAGIC.len());
                self.magic_seen = true;
            }
            if self.magic_seen
                && let Some((frame, used)) = decode_frame(&self.input).unwrap()
            {
                let reply = match frame {
                    Frame::Error { code, message } => Reply::Error(code, message.to_owned()),
                    Frame::PutReady { offset } => Reply::PutReady(offset),
                    other => Reply::Other(other.name()),
                };
                self.input.drain(..used);
                return reply;
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return Reply::Closed,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Reply::Closed;
                }
                Err(error) => panic!("no answer from the server within {PATIENCE:?}: {error}"),
            }
        }
    }
}
