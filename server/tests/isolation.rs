//! One client cannot hold up the others: a slow reader, a silent peer, a peer that sends its
//! handshake a byte at a time, two thousand half-open connections and a store call that blocks
//! for seconds each leave a concurrent client's transfer within a bound. The bound matters
//! for the events engine, whose few loop threads serve every connection (CI runs this suite
//! against each engine); and the per-address cap keeps one host from taking every slot.

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferry_protocol::limits::{MAGIC, PROTOCOL_VERSION};
use ferry_protocol::{
    ClientEvent, ErrorCode, Frame, HashCheckpoint, ProtocolError, PutRequest, SourceTag,
};
use ferry_server::memory::{ManualClock, MemoryLimits, MemoryStore};
use ferry_server::{Entry, Held, OpenedFile, Server, ServerConfig, StorageError, Store, Upload};

use crate::support::{self, Client, RawClient, Reply, TestServer, data, tag};

/// Longest a concurrent client's 1 MiB put and get may take while another client misbehaves
/// (tens of milliseconds unhindered, in a debug build on a loaded machine a few hundred).
const BOUND: Duration = Duration::from_millis(2000);

/// How long the blocking store's slow calls block: well past the bound, so a stalled server
/// cannot pass.
const STORE_BLOCK: Duration = Duration::from_secs(5);

/// A second client puts and gets 1 MiB; asserts it took less than the bound.
fn assert_served_within_bound(addr: std::net::SocketAddr, what: &str) {
    let body = data(1 << 20, 99);
    let started = Instant::now();
    let mut client = Client::connect(addr);
    let (_, outcome) = client.put("bystander", &body, true, true, tag(99));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(client.get("bystander").unwrap(), body);
    let took = started.elapsed();
    eprintln!("{what}: a concurrent 1 MiB put and get took {took:?}");
    assert!(
        took < BOUND,
        "{what}: a concurrent client took {took:?} (bound {BOUND:?})"
    );
}

#[test]
fn a_client_that_stops_reading_a_download_delays_no_other_client() {
    let server = TestServer::start(|_| {});
    let large = data(24 << 20, 1); // more than the socket buffers hold
    server.client().put_new("large", &large);
    let mut stuck = server.client();
    assert!(matches!(
        stuck.get_request("large"),
        ClientEvent::GetReady { .. }
    ));
    thread::sleep(Duration::from_millis(200)); // the server fills the socket and waits
    assert_served_within_bound(server.addr, "slow reader");
    drop(stuck);
}

#[test]
fn silent_peers_delay_no_other_client() {
    let server = TestServer::start(|_| {});
    let _silent = RawClient::connect_silent(server.addr);
    let _handshaken_and_silent = RawClient::connect(server.addr);
    assert_served_within_bound(server.addr, "silent peers");
}

#[test]
fn a_handshake_sent_one_byte_at_a_time_is_served_and_delays_no_other_client() {
    let server = TestServer::start(|_| {});
    let mut hello = MAGIC.to_vec();
    Frame::Hello {
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        token: b"",
    }
    .encode(&mut hello);
    let mut trickler = RawClient::connect_silent(server.addr);
    trickler.stream.set_nodelay(true).unwrap();
    let mut stream = trickler.stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        for byte in hello {
            stream.write_all(&[byte]).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
    });
    thread::sleep(Duration::from_millis(100)); // a few bytes in
    assert_served_within_bound(server.addr, "one byte at a time");
    sender.join().unwrap();
    assert_eq!(trickler.recv(), Reply::Other("WELCOME"));
}

#[test]
fn two_thousand_half_open_connections_delay_no_other_client() {
    let server = TestServer::start(|config| config.max_connections = 2100);
    // Each sent half the magic and went silent, as a peer that vanished mid-handshake.
    let half_open: Vec<TcpStream> = (0..2000)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream.write_all(&MAGIC[..MAGIC.len() / 2]).unwrap();
            stream
        })
        .collect();
    assert_served_within_bound(server.addr, "2000 half-open connections");
    drop(half_open);
}

#[test]
fn a_store_call_blocking_for_seconds_delays_no_other_client() {
    let store = Arc::new(BlockingStore(MemoryStore::new(
        MemoryLimits::default(),
        ManualClock::default().clock(),
    )));
    store.0.insert("slow/file", b"worth the wait");
    let server =
        Server::start_with_store(support::config("target/unused-by-the-memory-store"), store)
            .unwrap();
    let addr = server.local_addr();
    let waiter = thread::spawn(move || {
        let started = Instant::now();
        let got = Client::connect(addr).get("slow/file").unwrap();
        (got, started.elapsed())
    });
    thread::sleep(Duration::from_millis(300)); // its store call is under way
    assert_served_within_bound(addr, "a store call blocking for 5 s");
    let (got, took) = waiter.join().unwrap();
    assert_eq!(got, b"worth the wait");
    assert!(took >= STORE_BLOCK, "the slow call did not block: {took:?}");
    server.shutdown();
}

#[test]
fn one_address_past_its_cap_is_refused_while_others_are_served() {
    let server = TestServer::start(|config| {
        config.max_connections_per_ip = std::num::NonZeroUsize::new(2);
    });
    let from = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let _first = Client::try_connect_from(server.addr, from(7), b"").unwrap();
    let second = Client::try_connect_from(server.addr, from(7), b"").unwrap();
    match Client::try_connect_from(server.addr, from(7), b"") {
        Err(ProtocolError::Peer { code, message }) => {
            assert_eq!(code, ErrorCode::Busy);
            assert!(message.contains("your address"), "{message}");
        }
        Err(other) => panic!("expected Busy, got {other}"),
        Ok(_) => panic!("a third connection from one address was served past its cap of two"),
    }
    // Another address is served; and a seat freed by the first address serves it again.
    Client::try_connect_from(server.addr, from(8), b"").unwrap();
    drop(second);
    support::wait_until("the address's seat to free up", || {
        Client::try_connect_from(server.addr, from(7), b"").is_ok()
    });
}

/// A memory store whose downloads of names under `slow/` block for [`STORE_BLOCK`], as an
/// object store that stops answering for a while.
struct BlockingStore(MemoryStore);

impl fmt::Debug for BlockingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockingStore")
    }
}

impl Store for BlockingStore {
    fn describe(&self) -> String {
        "a memory store that blocks".to_owned()
    }

    fn open_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        self.0.open_upload(config, request)
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        if name.starts_with("slow/") {
            thread::sleep(STORE_BLOCK);
        }
        self.0.open_for_download(name)
    }

    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        self.0.remove(name)
    }

    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError> {
        self.0.rename(from, to, overwrite)
    }

    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        self.0.query(name, tag)
    }

    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        self.0.list(prefix, page)
    }

    fn sweep_staging(&self, max_age: Duration) {
        self.0.sweep_staging(max_age);
    }

    fn commits_in_parallel(&self) -> bool {
        self.0.commits_in_parallel()
    }
}
