//! The client library against the mini server: transfers, resumption, refusals, integrity.

use std::io::Cursor;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_client::{
    Client, ClientError, ClientOptions, Digest, ErrorCode, GetOptions, PutOptions, name_tag,
    partial_path,
};

use crate::support::mini_server::{MiniServer, checkpoint_of};
use crate::support::pattern;
use crate::support::relay::{Direction, Relay};

fn fast_options() -> ClientOptions {
    ClientOptions {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        // The mini server speaks plaintext.
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

#[test]
fn put_from_then_get_to_round_trips_bytes_and_digest() {
    let server = MiniServer::start();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
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
    assert_eq!(server.state.files.lock().unwrap()["a/b.bin"], data);

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
    let server = MiniServer::start();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let report = put(&mut client, b"", "empty").unwrap();
    assert_eq!(report.digest, Digest::of(b""));
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
    let server = MiniServer::start();
    let data = pattern(1024 * 1024, 2);
    let partial = checkpoint_of(&data, 300 * 1024);
    let offset = partial.1.offset();
    assert!(offset > 0);
    server.state.partials.lock().unwrap().insert(
        ("big".to_owned(), name_tag("big", data.len() as u64)),
        partial,
    );
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let report = put(&mut client, &data, "big").unwrap();
    assert_eq!(report.resumed_from, offset);
    assert_eq!(report.bytes_sent, data.len() as u64 - offset);
    assert_eq!(server.state.files.lock().unwrap()["big"], data);
}

#[test]
fn upload_cut_mid_transfer_resumes_on_a_new_connection() {
    let server = MiniServer::start();
    let relay = Relay::start(server.addr, Direction::Upstream, 1024 * 1024 + 100);
    let data = pattern(4 * 1024 * 1024, 3);
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let report = put(&mut client, &data, "cut.bin").unwrap();
    assert!(relay.cut.load(Ordering::SeqCst));
    assert_eq!(relay.connections.load(Ordering::SeqCst), 2);
    assert!(report.attempts >= 2);
    assert!(report.resumed_from > 0, "second attempt started at 0");
    assert!(report.bytes_sent < 2 * data.len() as u64);
    assert_eq!(
        *server.state.put_offsets.lock().unwrap().last().unwrap(),
        report.resumed_from
    );
    assert_eq!(server.state.files.lock().unwrap()["cut.bin"], data);
}

#[test]
fn download_cut_mid_transfer_resumes_and_matches() {
    let server = MiniServer::start();
    let data = pattern(4 * 1024 * 1024 + 5, 4);
    server
        .state
        .files
        .lock()
        .unwrap()
        .insert("down.bin".into(), data.clone());
    let relay = Relay::start(server.addr, Direction::Downstream, 1024 * 1024 + 3);
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
fn wrong_digest_from_server_is_an_integrity_error_and_leaves_no_file() {
    let server = MiniServer::start();
    server
        .state
        .files
        .lock()
        .unwrap()
        .insert("x".into(), pattern(200_000, 5));
    server.state.lie_about_digest.store(true, Ordering::SeqCst);
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x");
    let error = client
        .get_file("x", &target, &GetOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(error, ClientError::Integrity { .. }), "{error}");
    assert_eq!(error.exit_code(), 5);
    assert!(!target.exists());
    assert!(!partial_path(&target).exists());
}

#[test]
fn get_file_continues_a_local_partial_file() {
    let server = MiniServer::start();
    let data = pattern(1024 * 1024, 6);
    server
        .state
        .files
        .lock()
        .unwrap()
        .insert("p".into(), data.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p");
    std::fs::write(partial_path(&target), &data[..500_000]).unwrap();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
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
    let server = MiniServer::start();
    let data = pattern(1024 * 1024, 7);
    server
        .state
        .files
        .lock()
        .unwrap()
        .insert("q".into(), data.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("q");
    std::fs::write(partial_path(&target), pattern(500_000, 99)).unwrap();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let report = client
        .get_file("q", &target, &GetOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), data);
}

#[test]
fn existing_name_is_refused_with_an_actionable_message_unless_overwriting() {
    let server = MiniServer::start();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
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
    let overwrite = PutOptions {
        overwrite: true,
        ..PutOptions::default()
    };
    client
        .put_from(&mut Cursor::new(b"two"), 3, "same", &overwrite, &mut |_| {})
        .unwrap();
    assert_eq!(server.state.files.lock().unwrap()["same"], b"two");
}

#[test]
fn list_query_and_remove_work_on_one_connection() {
    let server = MiniServer::start();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
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
    let server = MiniServer::start();
    server.state.stall_uploads.store(true, Ordering::SeqCst);
    let options = ClientOptions {
        io_timeout: Duration::from_millis(300),
        retries: 1,
        ..fast_options()
    };
    let mut client = Client::connect(server.addr, options).unwrap();
    // Large enough that the writes fill the socket buffers of the silent server.
    let data = pattern(16 * 1024 * 1024, 8);
    let error = put(&mut client, &data, "stall").unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.exit_code(), 3);
    assert_eq!(
        server.state.put_offsets.lock().unwrap().len(),
        2,
        "the stall was not retried once"
    );
}

#[test]
fn a_bad_name_is_a_usage_error_and_nothing_is_sent() {
    let server = MiniServer::start();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let error = put(&mut client, b"x", "../escape").unwrap_err();
    assert!(matches!(error, ClientError::InvalidName { .. }));
    assert_eq!(error.exit_code(), 2);
    assert!(server.state.put_offsets.lock().unwrap().is_empty());
}

#[test]
fn a_stalled_download_counts_as_lost_and_resumes_on_a_new_connection() {
    let server = MiniServer::start();
    let data = pattern(3 * 1024 * 1024, 10);
    server
        .state
        .files
        .lock()
        .unwrap()
        .insert("s".into(), data.clone());
    let relay = Relay::stalling(server.addr, Direction::Downstream, 1024 * 1024 + 1);
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
    let server = MiniServer::start();
    let data = pattern(64 * 1024 * 1024 + 100, 15);
    let partial = checkpoint_of(&data, 40 * 1024 * 1024 + 7);
    let offset = partial.1.offset();
    let tag = name_tag("large", data.len() as u64);
    server
        .state
        .partials
        .lock()
        .unwrap()
        .insert(("large".to_owned(), tag), partial);
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let report = put(&mut client, &data, "large").unwrap();
    assert_eq!(*server.state.requests.lock().unwrap(), vec!["query", "put"]);
    assert_eq!(report.resumed_from, offset);
    assert_eq!(report.bytes_sent, data.len() as u64 - offset);
    assert!(server.state.files.lock().unwrap()["large"] == data);
}

#[test]
fn get_file_starts_over_when_the_local_partial_is_longer_than_the_servers_file() {
    let server = MiniServer::start();
    let data = pattern(100_000, 16);
    server
        .state
        .files
        .lock()
        .unwrap()
        .insert("short".into(), data.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("short");
    std::fs::write(partial_path(&target), pattern(700_000, 17)).unwrap();
    let mut client = Client::connect(server.addr, fast_options()).unwrap();
    let report = client
        .get_file("short", &target, &GetOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), data);
}
