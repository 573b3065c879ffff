//! The client library against ferryd over the in-memory store: transfers, resumption,
//! refusals, integrity. Faults of the network come from a relay in between, which also logs
//! the requests and go-aheads that cross it.

use std::io::Cursor;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_client::{
    Client, ClientError, ClientOptions, Digest, ErrorCode, GetOptions, PutOptions, name_tag,
    partial_path,
};

use crate::support::memory_server::MemoryServer;
use crate::support::pattern;
use crate::support::relay::{Direction, Relay};

fn fast_options() -> ClientOptions {
    ClientOptions {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        // The in-memory server speaks plaintext, so that a relay can read what crosses.
        security: ferry_client::Security::Insecure,
        ..ClientOptions::default()
    }
}

fn put(
    client: &mut Client,
    data: &[u8],
    name: &str,
) -> Result<ferry_client::PutReport, ClientError> {
    client.put_from(
        &mut Cursor::new(data),
        data.len() as u64,
        name,
        &PutOptions::default(),
        &mut |_| {},
    )
}

/// Uploads `data` as `name` on a connection cut after `cut_after` bytes, with no retry, so
/// that the server keeps a partial upload; returns the offset the server then reports for it.
fn leave_partial(server: &MemoryServer, name: &str, data: &[u8], cut_after: usize) -> u64 {
    let relay = Relay::start(server.addr(), Direction::Upstream, cut_after);
    let once = ClientOptions {
        retries: 0,
        ..fast_options()
    };
    let mut client = Client::connect(relay.addr, once).unwrap();
    let error = put(&mut client, data, name).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(relay.cut.load(Ordering::SeqCst), "the relay never cut");
    server.wait_for_no_upload();
    let (stored, partial) = client
        .query(name, name_tag(name, data.len() as u64))
        .unwrap();
    assert_eq!(stored, None);
    let offset = partial.expect("the server kept the partial upload");
    assert!(offset > 0 && offset < cut_after as u64, "{offset}");
    offset
}

#[test]
fn put_from_then_get_to_round_trips_bytes_and_digest() {
    let server = MemoryServer::start();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    let data = pattern(3 * 1024 * 1024 + 17, 1);
    let mut seen = Vec::new();
    let report = client
        .put_from(
            &mut Cursor::new(&data),
            data.len() as u64,
            "a/b.bin",
            &PutOptions::default(),
            &mut |p| seen.push(p.done),
        )
        .unwrap();
    assert_eq!(report.digest, Digest::of(&data));
    assert_eq!(
        (report.resumed_from, report.attempts, report.bytes_sent),
        (0, 1, data.len() as u64)
    );
    assert_eq!(seen.last(), Some(&(data.len() as u64)));
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {seen:?}"
    );
    assert_eq!(server.stored("a/b.bin").unwrap(), data);

    let mut back = Vec::new();
    let got = client.get_to("a/b.bin", &mut back, &mut |_| {}).unwrap();
    assert_eq!(back, data);
    assert_eq!(
        (got.size, got.digest),
        (data.len() as u64, Digest::of(&data))
    );
}

#[test]
fn empty_file_round_trips() {
    let server = MemoryServer::start();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    let report = put(&mut client, b"", "empty").unwrap();
    assert_eq!(report.digest, Digest::of(b""));
    assert_eq!(server.stored("empty").unwrap(), b"");
    let mut back = vec![1u8];
    back.clear();
    assert_eq!(
        client.get_to("empty", &mut back, &mut |_| {}).unwrap().size,
        0
    );
    assert!(back.is_empty());
}

#[test]
fn upload_continues_from_the_servers_partial_and_sends_only_the_rest() {
    let server = MemoryServer::start();
    let data = pattern(1024 * 1024, 2);
    let offset = leave_partial(&server, "big", &data, 300 * 1024);
    let relay = Relay::passing(server.addr());
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let report = put(&mut client, &data, "big").unwrap();
    assert_eq!(relay.log.put_offsets(), [offset]);
    assert_eq!(report.resumed_from, offset);
    assert_eq!(report.bytes_sent, data.len() as u64 - offset);
    assert_eq!(server.stored("big").unwrap(), data);
}

#[test]
fn upload_cut_mid_transfer_resumes_on_a_new_connection() {
    let server = MemoryServer::start();
    let relay = Relay::start(server.addr(), Direction::Upstream, 1024 * 1024 + 100);
    let data = pattern(4 * 1024 * 1024, 3);
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let report = put(&mut client, &data, "cut.bin").unwrap();
    assert!(relay.cut.load(Ordering::SeqCst));
    assert_eq!(relay.connections.load(Ordering::SeqCst), 2);
    assert!(report.attempts >= 2);
    assert!(report.resumed_from > 0, "second attempt started at 0");
    assert!(report.bytes_sent < 2 * data.len() as u64);
    assert_eq!(relay.log.put_offsets().last(), Some(&report.resumed_from));
    assert_eq!(server.stored("cut.bin").unwrap(), data);
}

#[test]
fn download_cut_mid_transfer_resumes_and_matches() {
    let server = MemoryServer::start();
    let data = pattern(4 * 1024 * 1024 + 5, 4);
    server.store.insert("down.bin", &data);
    let relay = Relay::start(server.addr(), Direction::Downstream, 1024 * 1024 + 3);
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let mut back = Vec::new();
    let report = client.get_to("down.bin", &mut back, &mut |_| {}).unwrap();
    assert!(relay.cut.load(Ordering::SeqCst));
    assert_eq!(relay.connections.load(Ordering::SeqCst), 2);
    assert!(report.attempts >= 2);
    assert!(report.resumed_from > 0);
    assert_eq!(back, data);
}

#[test]
fn a_download_whose_bytes_miss_the_servers_digest_is_an_integrity_error_and_leaves_no_file() {
    let server = MemoryServer::start();
    server.store.insert("x", &pattern(200_000, 5));
    // One bit of the file data flipped on the way: the server's digest no longer matches.
    let relay = Relay::corrupting(server.addr(), Direction::Downstream, 100_000);
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x");
    let error = client
        .get_file("x", &target, &GetOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(relay.cut.load(Ordering::SeqCst), "nothing was corrupted");
    assert!(matches!(error, ClientError::Integrity { .. }), "{error}");
    assert_eq!(error.exit_code(), 5);
    assert!(!target.exists());
    assert!(!partial_path(&target).exists());
}

#[test]
fn get_file_continues_a_local_partial_file() {
    let server = MemoryServer::start();
    let data = pattern(1024 * 1024, 6);
    server.store.insert("p", &data);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p");
    std::fs::write(partial_path(&target), &data[..500_000]).unwrap();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    let report = client
        .get_file("p", &target, &GetOptions::default(), &mut |_| {})
        .unwrap();
    assert!(report.resumed_from > 0);
    assert!(report.bytes_received < data.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), data);
    assert!(!partial_path(&target).exists());
}

#[test]
fn get_file_starts_over_when_the_local_partial_belongs_to_another_file() {
    let server = MemoryServer::start();
    let data = pattern(1024 * 1024, 7);
    server.store.insert("q", &data);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("q");
    std::fs::write(partial_path(&target), pattern(500_000, 99)).unwrap();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    let report = client
        .get_file("q", &target, &GetOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), data);
}

#[test]
fn existing_name_is_refused_with_an_actionable_message_unless_overwriting() {
    let server = MemoryServer::start();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    put(&mut client, b"one", "same").unwrap();
    let error = put(&mut client, b"two", "same").unwrap_err();
    assert!(matches!(
        error,
        ClientError::Refused {
            code: ErrorCode::AlreadyExists,
            ..
        }
    ));
    assert!(error.to_string().contains("use --overwrite"), "{error}");
    assert_eq!(error.exit_code(), 4);
    assert_eq!(server.stored("same").unwrap(), b"one");
    let overwrite = PutOptions {
        overwrite: true,
        ..PutOptions::default()
    };
    client
        .put_from(&mut Cursor::new(b"two"), 3, "same", &overwrite, &mut |_| {})
        .unwrap();
    assert_eq!(server.stored("same").unwrap(), b"two");
}

#[test]
fn list_query_and_remove_work_on_one_connection() {
    let server = MemoryServer::start();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    put(&mut client, b"12345", "d/one").unwrap();
    put(&mut client, b"1", "d/two").unwrap();
    put(&mut client, b"1", "other").unwrap();
    let names: Vec<_> = client
        .list("d/")
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.size))
        .collect();
    assert_eq!(
        names,
        vec![("d/one".to_owned(), 5), ("d/two".to_owned(), 1)]
    );
    assert_eq!(
        client.query("d/one", name_tag("d/one", 5)).unwrap(),
        (Some(5), None)
    );
    client.remove("d/one").unwrap();
    assert_eq!(server.stored("d/one"), None);
    let error = client.remove("d/one").unwrap_err();
    assert!(matches!(
        error,
        ClientError::Refused {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    assert_eq!(client.list("").unwrap().len(), 2);
}

#[test]
fn a_stalled_server_is_reported_as_timed_out_not_left_hanging() {
    let server = MemoryServer::start();
    // Every connection falls silent once 1 MiB of the upload went through.
    let relay = Relay::stalling_every(server.addr(), Direction::Upstream, 1024 * 1024);
    let options = ClientOptions {
        io_timeout: Duration::from_millis(300),
        retries: 1,
        ..fast_options()
    };
    let mut client = Client::connect(relay.addr, options).unwrap();
    // Large enough that the writes fill the socket buffers of the silent link.
    let data = pattern(16 * 1024 * 1024, 8);
    let error = put(&mut client, &data, "stall").unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.exit_code(), 3);
    assert_eq!(relay.connections.load(Ordering::SeqCst), 2);
    assert_eq!(
        relay.log.put_offsets().len(),
        2,
        "the stall was not retried once"
    );
    assert_eq!(server.stored("stall"), None);
}

#[test]
fn a_bad_name_is_a_usage_error_and_nothing_is_sent() {
    let server = MemoryServer::start();
    let relay = Relay::passing(server.addr());
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let error = put(&mut client, b"x", "../escape").unwrap_err();
    assert!(matches!(error, ClientError::InvalidName { .. }));
    assert_eq!(error.exit_code(), 2);
    // A request after it goes through, so the log is known to be read by now.
    client.list("").unwrap();
    assert_eq!(relay.log.requests(), ["list"]);
}

#[test]
fn a_stalled_download_counts_as_lost_and_resumes_on_a_new_connection() {
    let server = MemoryServer::start();
    let data = pattern(3 * 1024 * 1024, 10);
    server.store.insert("s", &data);
    let relay = Relay::stalling(server.addr(), Direction::Downstream, 1024 * 1024 + 1);
    let options = ClientOptions {
        io_timeout: Duration::from_millis(300),
        ..fast_options()
    };
    let mut client = Client::connect(relay.addr, options).unwrap();
    let mut back = Vec::new();
    let report = client.get_to("s", &mut back, &mut |_| {}).unwrap();
    assert!(relay.cut.load(Ordering::SeqCst), "the relay never stalled");
    assert!(report.attempts >= 2);
    assert!(report.resumed_from > 0);
    assert_eq!(back, data);
}

#[test]
fn a_large_resumable_upload_hashes_the_local_prefix_before_it_asks_to_put() {
    let server = MemoryServer::start();
    let data = pattern(64 * 1024 * 1024 + 100, 15);
    let offset = leave_partial(&server, "large", &data, 40 * 1024 * 1024 + 7);
    let relay = Relay::passing(server.addr());
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let report = put(&mut client, &data, "large").unwrap();
    assert_eq!(relay.log.requests(), ["query", "put"]);
    assert_eq!(relay.log.put_offsets(), [offset]);
    assert_eq!(report.resumed_from, offset);
    assert_eq!(report.bytes_sent, data.len() as u64 - offset);
    assert!(server.stored("large").unwrap() == data);
}

#[test]
fn get_file_starts_over_when_the_local_partial_is_longer_than_the_servers_file() {
    let server = MemoryServer::start();
    let data = pattern(100_000, 16);
    server.store.insert("short", &data);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("short");
    std::fs::write(partial_path(&target), pattern(700_000, 17)).unwrap();
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    let report = client
        .get_file("short", &target, &GetOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), data);
}
