//! ferryd's session (`ferry_server::Session`) driven directly, without sockets or threads: a
//! client machine and the session wired back to back in memory over the in-memory store, on a
//! clock of integers. These tests state the session's own promises — what it does when the
//! client leaves, when the transport breaks, when time passes, when the server stops — at the
//! moment it does them, which a test through a real server can only see once its thread has
//! dropped the session.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, FileHasher, HashCheckpoint,
    ProtocolError, PutRequest, SourceTag, Timestamp,
};
use ferry_server::memory::{ManualClock, MemoryLimits, MemoryStore};
use ferry_server::{
    Context, Entry, FileContent, Held, OpenedFile, Rights, ServerConfig, Session, StorageError,
    Store, Tokens, Upload, token_line,
};

use crate::support::data;

/// The address the session believes its client has (TEST-NET-1, never reached).
const PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 1),
    40_000,
));

/// A root the configuration names but the session never touches: the files live in the store.
const UNUSED_ROOT: &str = "target/unused-by-the-memory-store";

/// The token of [`with_token`]'s configuration.
const TOKEN: &str = "correct horse battery staple";

const MIB: usize = 1024 * 1024;

fn memory_store() -> MemoryStore {
    MemoryStore::new(MemoryLimits::default(), ManualClock::default().clock())
}

fn at(micros: u64) -> Timestamp {
    Timestamp::from_micros(micros)
}

/// A session over a memory store and the client machine talking to it, wired in memory.
struct Pair {
    session: Session,
    client: ClientConnection,
    store: MemoryStore,
    /// What the client sent that the session has not taken yet.
    inbox: Vec<u8>,
    /// The client's events not looked at yet.
    events: Vec<ClientEvent>,
    /// File data the client received.
    downloaded: Vec<u8>,
    /// The client machine's failure, if it failed.
    client_error: Option<ProtocolError>,
    now: Timestamp,
}

impl Pair {
    /// A connected pair over an empty memory store with the default configuration.
    fn connected() -> Pair {
        Pair::connected_with(|_| {}, b"")
    }

    /// A connected pair over `store` with the default configuration.
    fn connected_on(store: &MemoryStore) -> Pair {
        Pair::connected_over(|_| {}, b"", store.clone())
    }

    /// A connected pair whose configuration `configure` changed, presenting `token`.
    fn connected_with(configure: impl FnOnce(&mut ServerConfig), token: &[u8]) -> Pair {
        Pair::connected_over(configure, token, memory_store())
    }

    fn connected_over(
        configure: impl FnOnce(&mut ServerConfig),
        token: &[u8],
        store: MemoryStore,
    ) -> Pair {
        let mut pair = Pair::opened(configure, token, store, Instant::now());
        pair.drive();
        assert!(
            matches!(pair.events.as_slice(), [ClientEvent::Connected { .. }]),
            "{:?} {:?}",
            pair.events,
            pair.client_error
        );
        pair.events.clear();
        pair
    }

    /// A pair whose client has sent its `HELLO`, nothing delivered yet.
    fn opened(
        configure: impl FnOnce(&mut ServerConfig),
        token: &[u8],
        store: MemoryStore,
        epoch: Instant,
    ) -> Pair {
        let mut config = ServerConfig::new(UNUSED_ROOT);
        config.checkpoint_interval = MIB as u64;
        configure(&mut config);
        let context = Context::new(config, Arc::new(store.clone()), epoch);
        Pair {
            session: Session::new(context, PEER, Timestamp::ZERO),
            client: ClientConnection::new(Config::default(), Timestamp::ZERO, token).unwrap(),
            store,
            inbox: Vec::new(),
            events: Vec::new(),
            downloaded: Vec::new(),
            client_error: None,
            now: Timestamp::ZERO,
        }
    }

    /// Moves bytes both ways until neither side has anything more to say.
    fn drive(&mut self) {
        for _ in 0..100_000 {
            let mut moved = self.client.poll_transmit(&mut self.inbox) > 0;
            let consumed = self.session.handle_input(self.now, &self.inbox);
            self.inbox.drain(..consumed);
            moved |= consumed > 0;
            let mut out = Vec::new();
            while self.session.poll_transmit(&mut out) > 0 {}
            moved |= !out.is_empty();
            self.deliver_to_client(&out);
            if !moved {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    fn deliver_to_client(&mut self, mut bytes: &[u8]) {
        if self.client_error.is_some() {
            return;
        }
        loop {
            match self.client.handle_input(self.now, bytes) {
                Ok(received) => {
                    self.downloaded.extend_from_slice(received.file_data);
                    bytes = &bytes[received.consumed..];
                    let mut any = false;
                    while let Some(event) = self.client.poll_event() {
                        self.events.push(event);
                        any = true;
                    }
                    if received.consumed == 0 && !any {
                        return;
                    }
                }
                Err(error) => {
                    self.client_error = Some(error);
                    return;
                }
            }
        }
    }

    /// The client's next event, after driving the pair.
    fn next_event(&mut self) -> ClientEvent {
        self.drive();
        assert!(
            !self.events.is_empty(),
            "no event; the client failed with {:?}",
            self.client_error
        );
        self.events.remove(0)
    }

    /// Sends `PUT name` (resumable, tagged `tag`) and returns the server's answer.
    fn put(&mut self, name: &str, size: u64, tag: u8) -> ClientEvent {
        self.client
            .put(name, size, false, true, SourceTag([tag; 16]))
            .unwrap();
        self.next_event()
    }

    /// Sends `bytes` of the upload under way, in chunks the machine accepts.
    fn send(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(64 * 1024) {
            self.client.send_file_data(chunk).unwrap();
            self.client.poll_transmit(&mut self.inbox);
            self.inbox.extend_from_slice(chunk);
            self.drive();
        }
    }

    /// The resumable offset of `name`'s partial upload tagged `tag`, asked on a new session.
    fn partial_offset(&self, name: &str, tag: u8) -> Option<u64> {
        let mut other = Pair::connected_on(&self.store);
        other.client.query(name, SourceTag([tag; 16])).unwrap();
        match other.next_event() {
            ClientEvent::QueryReply { partial_offset, .. } => partial_offset,
            other => panic!("{other:?}"),
        }
    }
}

/// A pair mid-upload: `sent` bytes of a `size`-byte upload of `name` (tag 7) sent, and a
/// checkpoint durable at `MIB` if `sent` reached past it.
fn mid_upload(name: &str, size: usize, sent: usize) -> (Pair, Vec<u8>) {
    let mut pair = Pair::connected();
    let body = data(size, 7);
    assert_eq!(
        pair.put(name, size as u64, 7),
        ClientEvent::PutReady { offset: 0 }
    );
    pair.send(&body[..sent]);
    (pair, body)
}

#[test]
fn a_client_that_closes_mid_upload_leaves_it_resumable_at_once() {
    let (mut pair, _) = mid_upload("big.bin", 3 * MIB, 2 * MIB + 5);
    assert!(pair.session.is_busy());
    assert_eq!(pair.store.uploads_under_way(), 1);

    pair.session.handle_eof(pair.now);

    // Before the session is dropped: the name's lock is free and the upload resumable.
    assert_eq!(pair.store.uploads_under_way(), 0);
    assert!(!pair.session.is_busy());
    assert!(pair.session.is_closed());
    let offset = pair.partial_offset("big.bin", 7).unwrap();
    assert!(
        offset >= MIB as u64 && offset <= 2 * MIB as u64 + 5,
        "{offset}"
    );
}

#[test]
fn a_broken_transport_mid_upload_leaves_it_resumable_at_once() {
    let (mut pair, _) = mid_upload("big.bin", 3 * MIB, 2 * MIB + 5);

    pair.session.handle_lost("connection reset by peer");

    assert_eq!(pair.store.uploads_under_way(), 0);
    assert!(!pair.session.is_busy());
    let offset = pair.partial_offset("big.bin", 7).unwrap();
    assert!(
        offset >= MIB as u64 && offset <= 2 * MIB as u64 + 5,
        "{offset}"
    );
}

#[test]
fn a_broken_transport_mid_download_ends_the_download() {
    let mut pair = Pair::connected();
    pair.store.insert("big.bin", &data(3 * MIB, 1));
    pair.client.get("big.bin", HashCheckpoint::start()).unwrap();
    // Only the answer and the first chunk: the session sends at its own pace.
    pair.client.poll_transmit(&mut pair.inbox);
    let consumed = pair.session.handle_input(pair.now, &pair.inbox);
    pair.inbox.drain(..consumed);
    let mut out = Vec::new();
    assert!(pair.session.poll_transmit(&mut out) > 0);
    assert!(pair.session.is_busy());
    assert_eq!(
        pair.session.poll_timeout(),
        None,
        "the server has the next move"
    );

    pair.session.handle_lost("broken pipe");

    assert!(!pair.session.is_busy());
    let mut out = Vec::new();
    assert_eq!(
        pair.session.poll_transmit(&mut out),
        0,
        "nothing more is sent"
    );
}

#[test]
fn a_silent_client_is_closed_once_its_idle_deadline_passes_and_its_upload_stays_resumable() {
    let (mut pair, _) = mid_upload("big.bin", 3 * MIB, 2 * MIB + 5);
    let due = pair
        .session
        .poll_timeout()
        .expect("a deadline while waiting for data");
    assert!(due > pair.now);

    pair.session.handle_timeout(at(due.as_micros() - 1));
    assert!(!pair.session.is_closed(), "not before its deadline");
    assert!(pair.session.is_busy());

    pair.session.handle_timeout(due);
    assert!(!pair.session.is_busy());
    assert_eq!(pair.store.uploads_under_way(), 0);
    let mut out = Vec::new();
    while pair.session.poll_transmit(&mut out) > 0 {}
    assert!(pair.session.is_closed());
    assert!(pair.partial_offset("big.bin", 7).unwrap() >= MIB as u64);
}

#[test]
fn token_guesses_come_back_as_the_sessions_clock_advances() {
    let store = memory_store();
    let epoch = Instant::now();
    let tokens = Tokens::parse(&token_line(TOKEN, Rights::ReadWrite, None).unwrap()).unwrap();
    let configure = |config: &mut ServerConfig| config.tokens = Some(tokens.clone());
    let connect = |token: &[u8], now: Timestamp| {
        let mut pair = Pair::opened(configure, token, store.clone(), epoch);
        pair.now = now;
        pair.drive();
        pair.events
            .first()
            .cloned()
            .map_or_else(|| Err(pair.client_error.clone().unwrap()), Ok)
    };
    // Every guess from one address is spent at time 0; the next, even a correct one, waits.
    let mut guesses = 0;
    loop {
        guesses += 1;
        match connect(b"wrong", Timestamp::ZERO) {
            Err(ProtocolError::Peer {
                code: ErrorCode::Busy,
                message,
            }) => {
                assert!(message.contains("too many"), "{message}");
                break;
            }
            Err(ProtocolError::Peer { code, .. }) => {
                assert_eq!(code, ErrorCode::NotAuthorised);
                assert!(guesses < 100, "the guesses never ran out");
            }
            other => panic!("a wrong token: {other:?}"),
        }
    }
    assert!(connect(TOKEN.as_bytes(), Timestamp::ZERO).is_err());
    // A minute on the session's clock (counted from the context's epoch) brings them back.
    let later = Timestamp::from_micros(Duration::from_secs(60).as_micros() as u64);
    assert!(matches!(
        connect(TOKEN.as_bytes(), later),
        Ok(ClientEvent::Connected { .. })
    ));
}

#[test]
fn a_newer_connection_resuming_the_upload_wakes_the_older_one_which_then_closes() {
    let store = memory_store();
    let mut old = Pair::connected_on(&store);
    let woken = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&woken);
    old.session.set_waker(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let body = data(3 * MIB, 7);
    assert_eq!(
        old.put("big.bin", body.len() as u64, 7),
        ClientEvent::PutReady { offset: 0 }
    );
    old.send(&body[..2 * MIB + 5]);

    // The memory store does not wait for the holder: the first ask is refused, and asks the
    // holder to stand down, waking its driver.
    let mut new = Pair::connected_on(&store);
    match new.put("big.bin", body.len() as u64, 7) {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::InProgress),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        woken.load(Ordering::SeqCst),
        1,
        "the older driver was woken"
    );

    // Woken, the older session tells its client why it ends, and closes.
    old.drive();
    match &old.client_error {
        Some(ProtocolError::Peer { code, message }) => {
            assert_eq!(*code, ErrorCode::InProgress, "{message}");
            assert!(message.contains("newer connection"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(old.session.is_closed());
    assert!(!old.session.is_busy());

    let ClientEvent::PutReady { offset } = new.put("big.bin", body.len() as u64, 7) else {
        panic!("the newer connection was not let resume");
    };
    assert!(offset >= MIB as u64, "{offset}");
    new.send(&body[offset as usize..]);
    new.client.finish_upload(Digest::of(&body)).unwrap();
    assert_eq!(new.next_event(), ClientEvent::PutStored);
    assert_eq!(*store.file("big.bin").unwrap().bytes, body);
}

#[test]
fn a_dropped_session_leaves_its_upload_resumable() {
    let (pair, _) = mid_upload("big.bin", 3 * MIB, 2 * MIB + 5);
    let store = pair.store.clone();
    drop(pair);
    assert_eq!(store.uploads_under_way(), 0);
    let mut other = Pair::connected_on(&store);
    let ClientEvent::PutReady { offset } = other.put("big.bin", 3 * MIB as u64, 7) else {
        panic!("not resumable");
    };
    assert!(offset >= MIB as u64, "{offset}");
}

#[test]
fn a_session_printed_for_debugging_names_its_peer_and_transfer() {
    let (pair, _) = mid_upload("big.bin", 3 * MIB, 5);
    let printed = format!("{:?}", pair.session);
    assert!(printed.starts_with("Session"), "{printed}");
    assert!(printed.contains("192.0.2.1:40000"), "{printed}");
    assert!(printed.contains("big.bin"), "{printed}");
}

/// The `ERROR` the pair's client was sent, once the pair went quiet.
fn told(pair: &mut Pair) -> (ErrorCode, String) {
    pair.drive();
    match pair.client_error.clone() {
        Some(ProtocolError::Peer { code, message }) => (code, message),
        other => panic!("the client was told nothing: {other:?} {:?}", pair.events),
    }
}

#[test]
fn a_shutdown_closes_an_idle_connection_telling_the_client_why() {
    let mut pair = Pair::connected();
    pair.session.handle_shutdown(pair.now, false);
    let (code, message) = told(&mut pair);
    assert_eq!(code, ErrorCode::ShuttingDown, "{message}");
    assert!(pair.session.is_closed());
}

#[test]
fn during_the_grace_an_upload_under_way_finishes_then_new_requests_are_refused() {
    let (mut pair, body) = mid_upload("big.bin", 3 * MIB, MIB);
    pair.session.handle_shutdown(pair.now, false);
    pair.drive();
    assert!(pair.client_error.is_none(), "{:?}", pair.client_error);
    assert!(!pair.session.is_closed());

    pair.send(&body[MIB..]);
    pair.client.finish_upload(Digest::of(&body)).unwrap();
    assert_eq!(pair.next_event(), ClientEvent::PutStored);
    assert_eq!(*pair.store.file("big.bin").unwrap().bytes, body);

    // A request that would start a transfer is refused while the server stops.
    pair.client.get("big.bin", HashCheckpoint::start()).unwrap();
    match pair.next_event() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::ShuttingDown),
        other => panic!("{other:?}"),
    }
    pair.client
        .put("other", 10, false, true, SourceTag([1; 16]))
        .unwrap();
    match pair.next_event() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::ShuttingDown),
        other => panic!("{other:?}"),
    }
    // Called again once the transfer ended, the shutdown closes the idle connection.
    pair.session.handle_shutdown(pair.now, false);
    let (code, _) = told(&mut pair);
    assert_eq!(code, ErrorCode::ShuttingDown);
    assert!(pair.session.is_closed());
}

#[test]
fn past_the_grace_an_upload_under_way_ends_and_stays_resumable() {
    let (mut pair, _) = mid_upload("big.bin", 3 * MIB, 2 * MIB + 5);
    pair.session.handle_shutdown(pair.now, true);
    let (code, message) = told(&mut pair);
    assert_eq!(code, ErrorCode::ShuttingDown, "{message}");
    assert!(message.contains("resumable from byte"), "{message}");
    assert!(pair.session.is_closed());
    assert_eq!(pair.store.uploads_under_way(), 0);
    assert!(pair.partial_offset("big.bin", 7).unwrap() >= MIB as u64);
}

#[test]
fn past_the_grace_a_download_under_way_ends_saying_to_resume_it_later() {
    let mut pair = Pair::connected();
    pair.store.insert("big.bin", &data(3 * MIB, 1));
    pair.client.get("big.bin", HashCheckpoint::start()).unwrap();
    pair.client.poll_transmit(&mut pair.inbox);
    let consumed = pair.session.handle_input(pair.now, &pair.inbox);
    pair.inbox.drain(..consumed);
    assert!(pair.session.is_busy());

    pair.session.handle_shutdown(pair.now, true);
    let (code, message) = told(&mut pair);
    assert_eq!(code, ErrorCode::ShuttingDown, "{message}");
    assert!(message.contains("resume the download later"), "{message}");
    assert!(
        pair.downloaded.len() < 3 * MIB,
        "the download did not go on"
    );
}

#[test]
fn a_grace_that_ends_later_still_ends_the_transfers() {
    let (mut pair, _) = mid_upload("big.bin", 3 * MIB, 2 * MIB + 5);
    pair.session.handle_shutdown(pair.now, true);
    // A late call without `past_grace` does not bring the grace back.
    pair.session.handle_shutdown(pair.now, false);
    let (code, message) = told(&mut pair);
    assert_eq!(code, ErrorCode::ShuttingDown, "{message}");
    assert!(message.contains("resumable from byte"), "{message}");
}

#[test]
fn a_client_connecting_while_the_server_stops_is_refused() {
    let mut pair = Pair::opened(|_| {}, b"", memory_store(), Instant::now());
    pair.session.handle_shutdown(pair.now, false);
    let (code, _) = told(&mut pair);
    assert_eq!(code, ErrorCode::ShuttingDown);
}

/// The checkpoint a client holding `local` resumes from: the whole hash units of it, but the
/// last unit only once a byte follows it (a checkpoint never ends a hash).
fn checkpoint_of(local: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(local);
    hasher.checkpoint()
}

/// Downloads `name` on `pair` from the checkpoint of its first `from` bytes of `body` (one
/// more byte, when `from` is the whole body); returns the answer's offset and the bytes
/// received, after checking the verified digest.
fn download_from(pair: &mut Pair, name: &str, body: &[u8], from: usize) -> (u64, Vec<u8>) {
    let mut local = body[..from].to_vec();
    if from == body.len() {
        local.push(0);
    }
    pair.client.get(name, checkpoint_of(&local)).unwrap();
    let offset = match pair.next_event() {
        ClientEvent::GetReady { size, offset } => {
            assert_eq!(size, body.len() as u64);
            offset
        }
        other => panic!("{other:?}"),
    };
    match pair.next_event() {
        ClientEvent::GetVerified { digest } => assert_eq!(digest, Digest::of(body)),
        other => panic!("{other:?} {:?}", pair.client_error),
    }
    (offset, std::mem::take(&mut pair.downloaded))
}

#[test]
fn a_download_of_a_file_with_no_recorded_digest_resumes_from_the_middle_and_verifies() {
    let mut pair = Pair::connected();
    let body = data(MIB + 12_345, 3);
    pair.store.insert("plain.bin", &body);
    let from = 3 * 64 * 1024;
    let (offset, got) = download_from(&mut pair, "plain.bin", &body, from);
    assert!(offset as usize <= from);
    assert_eq!(got, body[offset as usize..]);
}

#[test]
fn a_download_of_a_file_with_no_recorded_digest_from_the_start_verifies_and_remembers_it() {
    let mut pair = Pair::connected();
    let body = data(MIB + 12_345, 4);
    pair.store.insert("plain.bin", &body);
    let (offset, got) = download_from(&mut pair, "plain.bin", &body, 0);
    assert_eq!(offset, 0);
    assert_eq!(got, body);
    assert_eq!(
        pair.store.file("plain.bin").unwrap().digest,
        Some(Digest::of(&body))
    );
}

#[test]
fn a_download_resumed_at_exactly_the_end_of_the_file_sends_no_bytes_and_verifies() {
    let mut pair = Pair::connected();
    let body = data(3 * 64 * 1024, 5);
    pair.store.insert("whole.bin", &body);
    let (offset, got) = download_from(&mut pair, "whole.bin", &body, body.len());
    assert_eq!(offset, body.len() as u64);
    assert!(got.is_empty());
}

#[test]
fn a_download_resumed_past_the_end_of_the_file_is_refused() {
    let mut pair = Pair::connected();
    let body = data(3 * 64 * 1024, 5);
    pair.store.insert("short.bin", &body[..64 * 1024]);
    let checkpoint = checkpoint_of(&body[..2 * 64 * 1024 + 1]);
    assert_eq!(checkpoint.offset(), 2 * 64 * 1024);
    pair.client.get("short.bin", checkpoint).unwrap();
    assert!(matches!(pair.next_event(), ClientEvent::Refused { .. }));
}

#[test]
fn a_listing_longer_than_one_batch_arrives_whole_and_in_order() {
    let mut pair = Pair::connected();
    let names: Vec<String> = (0..600).map(|i| format!("dir/{i:04}")).collect();
    for name in &names {
        pair.store.insert(name, name.as_bytes());
    }
    pair.client.list("dir/").unwrap();
    pair.drive();
    let mut listed = Vec::new();
    for event in pair.events.drain(..) {
        match event {
            ClientEvent::ListEntry(entry) => {
                assert_eq!(entry.size, entry.name.len() as u64);
                listed.push(entry.name);
            }
            ClientEvent::ListEnd => listed.push("<end>".to_owned()),
            other => panic!("{other:?}"),
        }
    }
    let mut expected = names.clone();
    expected.push("<end>".to_owned());
    assert_eq!(listed, expected);
}

#[test]
fn a_listing_is_sent_a_batch_at_a_time() {
    let mut pair = Pair::connected();
    for i in 0..600 {
        pair.store.insert(&format!("{i:04}"), b"x");
    }
    pair.client.list("").unwrap();
    pair.client.poll_transmit(&mut pair.inbox);
    let consumed = pair.session.handle_input(pair.now, &pair.inbox);
    pair.inbox.drain(..consumed);
    let mut pieces = 0;
    let mut out = Vec::new();
    while pair.session.poll_transmit(&mut out) > 0 {
        pieces += 1;
    }
    assert_eq!(pieces, 3, "600 entries in batches of 256");
    pair.deliver_to_client(&out.clone());
    assert_eq!(pair.events.len(), 601);
}

#[test]
fn a_token_confined_to_a_folder_stores_lists_and_removes_inside_it_by_the_clients_names() {
    let line = token_line(TOKEN, Rights::ReadWrite, Some("alice")).unwrap();
    let tokens = Tokens::parse(&line).unwrap();
    let mut pair = Pair::connected_with(|c| c.tokens = Some(tokens), TOKEN.as_bytes());
    pair.store.insert("bob/secret", b"bob's");
    let body = data(1000, 9);
    assert_eq!(
        pair.put("notes.txt", body.len() as u64, 9),
        ClientEvent::PutReady { offset: 0 }
    );
    pair.send(&body);
    pair.client.finish_upload(Digest::of(&body)).unwrap();
    assert_eq!(pair.next_event(), ClientEvent::PutStored);
    assert_eq!(*pair.store.file("alice/notes.txt").unwrap().bytes, body);

    pair.client.list("").unwrap();
    pair.drive();
    let names: Vec<_> = pair
        .events
        .drain(..)
        .filter_map(|e| match e {
            ClientEvent::ListEntry(entry) => Some(entry.name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["notes.txt"]);

    pair.client.remove("notes.txt").unwrap();
    assert_eq!(pair.next_event(), ClientEvent::Removed);
    assert_eq!(pair.store.names(), ["bob/secret"]);
}

#[test]
fn a_read_only_token_may_download_but_not_upload_or_remove() {
    let line = token_line(TOKEN, Rights::ReadOnly, None).unwrap();
    let tokens = Tokens::parse(&line).unwrap();
    let mut pair = Pair::connected_with(|c| c.tokens = Some(tokens), TOKEN.as_bytes());
    pair.store.insert("kept", b"kept");
    match pair.put("new", 3, 1) {
        ClientEvent::Refused { code, message } => {
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(message.contains("uploads are not allowed"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    pair.client.remove("kept").unwrap();
    match pair.next_event() {
        ClientEvent::Refused { code, message } => {
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(message.contains("removals are not allowed"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let (_, got) = download_from(&mut pair, "kept", b"kept", 0);
    assert_eq!(got, b"kept");
    assert_eq!(pair.store.names(), ["kept"]);
}

/// What the session logs while `f` runs on this thread (`DEBUG` and above, no colours).
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// The `transfer finished` lines of a log.
fn transfers(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("transfer finished"))
        .collect()
}

#[test]
fn a_session_dropped_mid_upload_logs_the_upload_as_interrupted() {
    let (pair, _) = mid_upload("big.bin", 3 * MIB, MIB + 5);
    let log = logged(|| drop(pair));
    let lines = transfers(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("interrupted (connection closed)"),
        "{log}"
    );
    assert!(lines[0].contains("big.bin"), "{log}");
}

#[test]
fn a_session_closed_mid_download_logs_the_bytes_it_sent_of_a_resumed_download() {
    let mut pair = Pair::connected();
    let body = data(3 * MIB, 1);
    pair.store.insert("big.bin", &body);
    let checkpoint = checkpoint_of(&body[..MIB + 1]);
    assert_eq!(checkpoint.offset(), MIB as u64);
    pair.client.get("big.bin", checkpoint).unwrap();
    pair.client.poll_transmit(&mut pair.inbox);
    let consumed = pair.session.handle_input(pair.now, &pair.inbox);
    pair.inbox.drain(..consumed);
    // The answer, then exactly one chunk of data.
    let mut out = Vec::new();
    assert!(pair.session.poll_transmit(&mut out) > 0);
    let mut chunk = Vec::new();
    assert!(pair.session.poll_transmit(&mut chunk) > 0);
    pair.deliver_to_client(&out);
    pair.deliver_to_client(&chunk);
    let sent = pair.downloaded.len();
    assert!(sent > 0 && sent < 2 * MIB, "{sent}");

    let log = logged(|| pair.session.close());
    let lines = transfers(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("connection closed"), "{log}");
    assert!(lines[0].contains(&format!("bytes={sent} ")), "{log}");
    // Once only: the session's drop does not log it again.
    assert!(transfers(&logged(|| drop(pair))).is_empty());
}

#[test]
fn a_finished_resumed_download_logs_the_bytes_of_this_session() {
    let mut pair = Pair::connected();
    let body = data(3 * MIB, 2);
    pair.store.insert("big.bin", &body);
    let log = logged(|| {
        let (offset, got) = download_from(&mut pair, "big.bin", &body, MIB + 10);
        assert_eq!(offset, MIB as u64);
        assert_eq!(got.len(), 2 * MIB);
    });
    let lines = transfers(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("outcome=\"ok\""), "{log}");
    assert!(lines[0].contains(&format!("bytes={} ", 2 * MIB)), "{log}");
}

#[test]
fn a_client_leaving_mid_download_is_logged_as_gone() {
    let mut pair = Pair::connected();
    pair.store.insert("big.bin", &data(3 * MIB, 3));
    pair.client.get("big.bin", HashCheckpoint::start()).unwrap();
    pair.client.poll_transmit(&mut pair.inbox);
    let consumed = pair.session.handle_input(pair.now, &pair.inbox);
    pair.inbox.drain(..consumed);
    let mut out = Vec::new();
    assert!(pair.session.poll_transmit(&mut out) > 0);
    let now = pair.now;
    let log = logged(|| pair.session.handle_eof(now));
    let lines = transfers(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("client gone before the end"), "{log}");
}

#[test]
fn a_session_printed_mid_download_names_the_file_and_what_remains() {
    let mut pair = Pair::connected();
    pair.store.insert("big.bin", &data(3 * MIB, 4));
    pair.client.get("big.bin", HashCheckpoint::start()).unwrap();
    pair.client.poll_transmit(&mut pair.inbox);
    let consumed = pair.session.handle_input(pair.now, &pair.inbox);
    pair.inbox.drain(..consumed);
    let printed = format!("{:?}", pair.session);
    assert!(printed.contains("Download"), "{printed}");
    assert!(printed.contains("big.bin"), "{printed}");
    assert!(
        printed.contains(&format!("remaining: {}", 3 * MIB)),
        "{printed}"
    );
}

/// A memory store whose file reads are short and interrupted: every read gives at most
/// `SHORT_READ` bytes and every other one fails with `Interrupted`, as a slow device or a
/// signal may make a real read do; with `fail_after`, a read past that many bytes of one
/// reader fails for good, as a dying disk's does. Everything else is the memory store's.
#[derive(Debug)]
struct Flaky {
    store: MemoryStore,
    fail_after: Option<usize>,
}

const SHORT_READ: usize = 1000;

struct FlakyContent {
    content: Box<dyn FileContent>,
    fail_after: Option<usize>,
}

struct FlakyReader {
    inner: Box<dyn std::io::Read + Send>,
    interrupt: bool,
    read: usize,
    fail_after: Option<usize>,
}

impl std::io::Read for FlakyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.fail_after.is_some_and(|limit| self.read >= limit) {
            return Err(std::io::Error::other("the disk is gone"));
        }
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(SHORT_READ);
        let n = self.inner.read(&mut buf[..n])?;
        self.read += n;
        Ok(n)
    }
}

impl FileContent for FlakyContent {
    fn read_from(&mut self, offset: u64) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(FlakyReader {
            inner: self.content.read_from(offset)?,
            interrupt: false,
            read: 0,
            fail_after: self.fail_after,
        }))
    }

    fn remember_digest(&self, digest: &Digest) {
        self.content.remember_digest(digest);
    }
}

impl Store for Flaky {
    fn describe(&self) -> String {
        self.store.describe()
    }
    fn open_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        self.store.open_upload(config, request)
    }
    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        let opened = self.store.open_for_download(name)?;
        Ok(OpenedFile {
            content: Box::new(FlakyContent {
                content: opened.content,
                fail_after: self.fail_after,
            }),
            ..opened
        })
    }
    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        self.store.remove(name)
    }
    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError> {
        self.store.rename(from, to, overwrite)
    }
    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        self.store.query(name, tag)
    }
    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> std::ops::ControlFlow<()>,
    ) -> Result<(), StorageError> {
        self.store.list(prefix, page)
    }
    fn sweep_staging(&self, max_age: Duration) {
        self.store.sweep_staging(max_age);
    }
    fn commits_in_parallel(&self) -> bool {
        self.store.commits_in_parallel()
    }
}

/// A pair whose session serves from `store` through [`Flaky`].
fn flaky_pair(store: &MemoryStore, fail_after: Option<usize>) -> Pair {
    let mut pair = Pair::connected_on(store);
    let flaky = Flaky {
        store: store.clone(),
        fail_after,
    };
    let context = Context::new(
        ServerConfig::new(UNUSED_ROOT),
        Arc::new(flaky),
        Instant::now(),
    );
    pair.session = Session::new(context, PEER, Timestamp::ZERO);
    pair.client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    pair.drive();
    assert!(matches!(
        pair.events.remove(0),
        ClientEvent::Connected { .. }
    ));
    pair
}

#[test]
fn a_download_from_a_store_whose_reads_are_short_and_interrupted_arrives_whole() {
    let store = memory_store();
    let body = data(MIB + 12_345, 6);
    store.insert("flaky.bin", &body);
    // From the start (hashed while sent), and from the middle (hashed whole first).
    for from in [0, 3 * 64 * 1024] {
        let mut pair = flaky_pair(&store, None);
        let (offset, got) = download_from(&mut pair, "flaky.bin", &body, from);
        assert!(got == body[offset as usize..], "from {from}");
    }
}

#[test]
fn a_read_that_fails_mid_download_ends_the_connection_with_a_storage_error() {
    let store = memory_store();
    store.insert("big.bin", &data(3 * MIB, 7));
    let mut pair = flaky_pair(&store, Some(MIB));
    pair.client.get("big.bin", HashCheckpoint::start()).unwrap();
    let (code, message) = told(&mut pair);
    assert_eq!(code, ErrorCode::StorageError, "{message}");
    assert!(message.contains("the disk is gone"), "{message}");
    assert!(pair.downloaded.len() <= MIB, "{}", pair.downloaded.len());
    assert!(pair.session.is_closed());
    assert!(!pair.session.is_busy());
}

#[test]
fn an_upload_whose_digest_does_not_match_is_discarded_and_a_retry_starts_over() {
    let (mut pair, body) = mid_upload("bad.bin", 2 * MIB, 2 * MIB);
    pair.client
        .finish_upload(Digest::of(b"other bytes"))
        .unwrap();
    match pair.next_event() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::DigestMismatch),
        other => panic!("{other:?}"),
    }
    assert!(!pair.session.is_busy());
    assert_eq!(pair.store.uploads_under_way(), 0);
    assert!(pair.store.file("bad.bin").is_none());
    assert_eq!(
        pair.partial_offset("bad.bin", 7),
        None,
        "nothing kept to resume"
    );
    assert_eq!(
        pair.put("bad.bin", body.len() as u64, 7),
        ClientEvent::PutReady { offset: 0 }
    );
}
