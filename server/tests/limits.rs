//! Resource bounds and slow peers: sizes refused before any data moves, a disk that fills
//! during an upload, the connection limit, and timeouts.

use std::net::TcpStream;
use std::time::Duration;

use ferry_protocol::{ClientEvent, ErrorCode, HASH_UNIT_LEN, ProtocolError};

use crate::support::{Client, RawClient, Reply, TestServer, data, tag, wait_until};

fn refused_code(event: ClientEvent) -> ErrorCode {
    match event {
        ClientEvent::Refused { code, .. } => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn peer_code(result: Result<ClientEvent, ProtocolError>) -> ErrorCode {
    peer_error(result).0
}

fn peer_error(result: Result<ClientEvent, ProtocolError>) -> (ErrorCode, String) {
    match result {
        Err(ProtocolError::Peer { code, message }) => (code, message),
        other => panic!("expected the server to end the connection with an error, got {other:?}"),
    }
}

#[test]
fn declared_size_above_the_file_limit_is_refused_before_any_data() {
    let server = TestServer::start(|config| config.max_file_size = 1000);
    let mut client = server.client();
    assert_eq!(
        refused_code(client.put_request("big", 1001, false, true, tag(1))),
        ErrorCode::TooLarge
    );
    assert!(server.staged_files().is_empty());
    client.put_new("fits", &data(1000, 1));
}

#[test]
fn declared_size_beyond_the_quota_is_refused_before_any_data() {
    let server = TestServer::start(|config| config.quota = Some(1_000_000));
    let mut client = server.client();
    client.put_new("first", &data(600_000, 2));
    assert_eq!(
        refused_code(client.put_request("second", 600_000, false, true, tag(2))),
        ErrorCode::OverQuota
    );
    assert!(server.staged_files().is_empty());
    assert_eq!(client.remove("first"), ClientEvent::Removed);
    client.put_new("second", &data(600_000, 3));
}

#[test]
fn declared_size_beyond_the_free_space_is_refused_as_disk_full() {
    let server = TestServer::start(|config| config.max_file_size = u64::MAX);
    let mut client = server.client();
    let code = refused_code(client.put_request("huge", 1 << 62, false, true, tag(3)));
    assert_eq!(code, ErrorCode::DiskFull);
    assert!(server.staged_files().is_empty());
}

#[test]
fn disk_filling_during_an_upload_ends_it_with_disk_full_and_keeps_it_resumable() {
    let server = TestServer::start(|config| config.fault_disk_full_after = Some(300_000));
    let body = data(1 << 20, 4);
    let mut client = server.client();
    assert_eq!(
        client.put_request("full", body.len() as u64, false, true, tag(4)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data_lenient(&body);
    let (code, message) = peer_error(client.next_event());
    assert_eq!(code, ErrorCode::DiskFull);
    let told = message
        .split("resumable from byte ")
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("the message does not say what was kept: {message}"));

    // Nothing visible, and the server still serves.
    let mut other = server.client();
    assert!(other.names().is_empty());
    assert!(!server.root().join("full").exists());
    other.put_new("small", &data(1000, 5));
    assert_eq!(other.get("small").unwrap(), data(1000, 5));
    drop(other);

    // Once there is room again, the upload resumes from what was durably staged.
    let server = server.restart(|_| {});
    let mut client = server.client();
    let (stored, partial) = client.query("full", tag(4));
    assert_eq!(stored, None);
    let resumable = partial.expect("the staged part was kept");
    assert!(
        resumable > 0 && resumable <= 300_000 && resumable % HASH_UNIT_LEN == 0,
        "{resumable}"
    );
    assert_eq!(resumable, told, "the client was told another offset");
    let (offset, outcome) = client.put("full", &body, false, true, tag(4));
    assert_eq!((offset, outcome), (resumable, ClientEvent::PutStored));
    assert_eq!(client.get("full").unwrap(), body);
}

#[test]
fn disk_filling_before_anything_durable_says_nothing_was_kept_and_frees_the_space() {
    let server = TestServer::start(|config| config.fault_disk_full_after = Some(1000));
    let body = data(200_000, 6);
    let mut client = server.client();
    assert_eq!(
        client.put_request("full", body.len() as u64, false, true, tag(6)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data_lenient(&body);
    let (code, message) = peer_error(client.next_event());
    assert_eq!(code, ErrorCode::DiskFull);
    assert!(
        message.contains("nothing of the upload was kept"),
        "{message}"
    );
    assert!(
        server.staged_files().is_empty(),
        "space nobody can resume is still held: {:?}",
        server.staged_files()
    );
    assert_eq!(server.client().query("full", tag(6)), (None, None));
}

#[test]
fn over_the_connection_limit_a_client_is_refused_as_busy_at_once() {
    let server = TestServer::start(|config| config.max_connections = 2);
    let first = server.client();
    let _second = server.client();
    match Client::try_connect(server.addr) {
        Err(ProtocolError::Peer { code, .. }) => assert_eq!(code, ErrorCode::Busy),
        Err(other) => panic!("expected Busy, got {other}"),
        Ok(_) => panic!("a third client was served past the limit of two"),
    }
    drop(first);
    // The freed seat serves the next client.
    wait_until("a seat to free up", || {
        Client::try_connect(server.addr).is_ok()
    });
}

#[test]
fn idle_client_is_closed_after_the_idle_timeout() {
    let server = TestServer::start(|config| config.idle_timeout = Duration::from_millis(200));
    let mut client = server.client();
    assert_eq!(peer_code(client.next_event()), ErrorCode::Timeout);
}

#[test]
fn silent_connection_is_closed_after_the_handshake_timeout() {
    let server = TestServer::start(|config| config.handshake_timeout = Duration::from_millis(200));
    let mut raw = RawClient::connect_silent(server.addr);
    assert!(matches!(raw.recv(), Reply::Error(ErrorCode::Timeout, _)));
    assert_eq!(raw.recv(), Reply::Closed);
}

#[test]
fn stalled_upload_is_ended_after_the_idle_timeout_and_left_resumable() {
    let server = TestServer::start(|config| config.idle_timeout = Duration::from_secs(1));
    let body = data(500_000, 6);
    let mut client = server.client();
    assert_eq!(
        client.put_request("stalled", body.len() as u64, false, true, tag(6)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..200_000]);
    // The client now stops sending (frozen at 40 %): the server must not wait forever.
    assert_eq!(peer_code(client.next_event()), ErrorCode::Timeout);
    let mut other = server.client();
    let resumable = 3 * HASH_UNIT_LEN;
    wait_until("the stalled upload's checkpoint", || {
        other.query("stalled", tag(6)) == (None, Some(resumable))
    });
    let (offset, outcome) = other.put_retrying("stalled", &body, false, true, tag(6));
    assert_eq!((offset, outcome), (resumable, ClientEvent::PutStored));
}

#[test]
fn a_thousand_silent_connections_do_not_stop_a_new_client() {
    let server = TestServer::start(|config| config.max_connections = 1100);
    let silent: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let mut client = server.client();
    client.put_new("served", b"despite the crowd");
    assert_eq!(client.get("served").unwrap(), b"despite the crowd");
    drop(silent);
}

#[test]
fn a_client_that_stops_reading_a_download_is_dropped_after_the_idle_timeout() {
    let server = TestServer::start(|config| {
        config.idle_timeout = Duration::from_secs(1);
        config.max_connections = 2;
    });
    let large = data(24 << 20, 7); // more than the socket buffers hold
    let mut uploader = server.client(); // connected after the slow part: its idle timeout is short
    uploader.put_new("large", &large);
    drop(uploader);
    let mut stuck = server.client();
    assert!(matches!(
        stuck.get_request("large"),
        ClientEvent::GetReady { .. }
    ));
    // `stuck` reads nothing more. The server gives up on it and frees its seat: with the
    // limit at two, two new clients can then be served at once.
    wait_until("the stuck download to be dropped", || {
        let first = Client::try_connect(server.addr);
        let second = Client::try_connect(server.addr);
        first.is_ok() && second.is_ok()
    });
    drop(stuck);
}

#[test]
fn replacing_a_file_counts_only_the_difference_against_the_quota() {
    let server = TestServer::start(|config| config.quota = Some(1_000_000));
    let mut client = server.client();
    client.put_new("big", &data(700_000, 8));
    let (_, outcome) = client.put("big", &data(800_000, 9), true, true, tag(9));
    assert_eq!(outcome, ClientEvent::PutStored);
    let (_, outcome) = client.put("other", &data(300_000, 10), false, true, tag(10));
    assert_eq!(
        refused_code(outcome),
        ErrorCode::OverQuota,
        "the quota still holds"
    );
}

#[test]
fn a_handshake_trickled_byte_by_byte_still_times_out() {
    use std::io::Write;
    let server = TestServer::start(|config| config.handshake_timeout = Duration::from_millis(500));
    let mut raw = RawClient::connect_silent(server.addr);
    let mut hello = ferry_protocol::limits::MAGIC.to_vec();
    ferry_protocol::Frame::Hello {
        min_version: 1,
        max_version: 1,
        token: b"",
    }
    .encode(&mut hello);
    // Each byte resets a silence timer, but the handshake as a whole takes ~2 s.
    for byte in &hello {
        if raw.stream.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(matches!(raw.recv(), Reply::Error(ErrorCode::Timeout, _)));
}

#[test]
fn a_download_longer_than_the_idle_timeout_leaves_the_connection_usable() {
    let large = data(24 << 20, 11); // more than the socket buffers hold
    let server = TestServer::start(|config| config.idle_timeout = Duration::from_secs(1));
    let mut client = server.client();
    client.put_new("slow", &large);
    assert!(matches!(
        client.get_request("slow"),
        ClientEvent::GetReady { .. }
    ));
    // A slow but steady reader: the server spends longer than the idle timeout sending, but
    // the client never stops taking bytes for that long.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(300));
        client.read_once().unwrap();
    }
    assert_eq!(client.finish_get().unwrap(), large);
    // The server's own time sending does not count as the client's silence.
    assert_eq!(client.names(), ["slow"]);
}

#[test]
fn partial_uploads_count_against_the_quota() {
    let server = TestServer::start(|config| config.quota = Some(1_000_000));
    let body = data(800_000, 12);
    let mut client = server.client();
    assert_eq!(
        client.put_request("partial", body.len() as u64, false, true, tag(12)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..500_000]);
    client.sync();
    client.conn.cancel_upload().unwrap();
    client.flush();
    let staged = (500_000 - 1) / HASH_UNIT_LEN * HASH_UNIT_LEN;
    wait_until("the cancelled upload's checkpoint", || {
        client.query("partial", tag(12)) == (None, Some(staged))
    });
    // 458 752 bytes (the checkpoint) stay staged: 600 000 more would pass the quota, 540 000
    // do not.
    let (_, outcome) = client.put("other", &data(600_000, 13), false, true, tag(13));
    assert_eq!(refused_code(outcome), ErrorCode::OverQuota);
    client.put_new("fits", &data(540_000, 14));
}
