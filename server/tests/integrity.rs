//! Lies about sizes and digests: the peer gets the error, and nothing becomes visible.

use ferry_protocol::{ClientEvent, Digest, ErrorCode, Frame};

use crate::support::{RawClient, Reply, TestServer, data, tag};

fn put_frame(name: &str, size: u64) -> Frame<'_> {
    Frame::Put {
        name,
        size,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: tag(9),
    }
}

fn assert_not_visible(server: &TestServer, name: &str) {
    assert!(!server.root().join(name).exists(), "{name} must not exist");
    assert!(server.client().names().is_empty(), "nothing is listed");
}

#[test]
fn more_bytes_than_declared_is_a_size_mismatch_and_nothing_is_visible() {
    let server = TestServer::start(|_| {});
    let mut raw = RawClient::connect(server.addr);
    raw.send(&put_frame("liar", 100));
    assert_eq!(raw.recv(), Reply::PutReady(0));
    raw.send(&Frame::Data { len: 60 });
    raw.send_bytes(&data(60, 1));
    raw.send(&Frame::Data { len: 60 });
    raw.send_bytes(&data(60, 2));
    assert!(matches!(
        raw.recv(),
        Reply::Error(ErrorCode::SizeMismatch, _)
    ));
    assert_eq!(raw.recv(), Reply::Closed);
    assert_not_visible(&server, "liar");
}

#[test]
fn fewer_bytes_than_declared_is_a_size_mismatch_and_nothing_is_visible() {
    let server = TestServer::start(|_| {});
    let mut raw = RawClient::connect(server.addr);
    raw.send(&put_frame("short", 100));
    assert_eq!(raw.recv(), Reply::PutReady(0));
    let body = data(50, 3);
    raw.send(&Frame::Data { len: 50 });
    raw.send_bytes(&body);
    raw.send(&Frame::Done {
        digest: Digest::of(&body),
    });
    assert!(matches!(
        raw.recv(),
        Reply::Error(ErrorCode::SizeMismatch, _)
    ));
    assert_eq!(raw.recv(), Reply::Closed);
    assert_not_visible(&server, "short");
}

#[test]
fn wrong_digest_is_refused_and_the_staged_data_is_discarded() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    let body = data(700_000, 4);
    assert_eq!(
        client.put_request("tampered", body.len() as u64, false, true, tag(4)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body);
    match client.finish_upload(Digest::of(b"something else")).unwrap() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::DigestMismatch),
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    // The connection is still usable, nothing is visible and nothing stays staged.
    assert!(client.names().is_empty());
    assert!(!server.root().join("tampered").exists());
    assert!(
        server.staged_files().is_empty(),
        "{:?}",
        server.staged_files()
    );
    assert_eq!(client.query("tampered", tag(4)), (None, None));
}

#[test]
fn data_before_the_go_ahead_is_an_unexpected_frame() {
    let server = TestServer::start(|_| {});
    let mut raw = RawClient::connect(server.addr);
    raw.send(&Frame::Data { len: 4 });
    raw.send_bytes(b"evil");
    assert!(matches!(
        raw.recv(),
        Reply::Error(ErrorCode::UnexpectedFrame, _)
    ));
    assert_eq!(raw.recv(), Reply::Closed);
    assert!(server.staged_files().is_empty());
}

#[test]
fn a_peer_that_does_not_speak_ferry_is_told_and_closed() {
    let server = TestServer::start(|_| {});
    let mut raw = RawClient::connect_silent(server.addr);
    raw.send_bytes(b"GET / HTTP/1.1\r\n\r\n");
    assert!(matches!(raw.recv(), Reply::Error(ErrorCode::NotFerry, _)));
    assert_eq!(raw.recv(), Reply::Closed);
}

#[test]
fn the_test_only_fault_switch_stores_data_that_failed_its_digest() {
    // The simulator relies on this deliberately broken mode to prove it catches corruption.
    let server = TestServer::start(|config| config.fault_skip_digest_check = true);
    let mut client = server.client();
    let body = data(100_000, 5);
    assert_eq!(
        client.put_request("broken", body.len() as u64, false, true, tag(5)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body);
    match client.finish_upload(Digest::of(b"not this")).unwrap() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::DigestMismatch),
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(server.root().join("broken")).unwrap(),
        body,
        "stored anyway"
    );
}
