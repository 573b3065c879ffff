//! The handshake and idle timeouts are what the settings say, within 10 %: before the
//! handshake, between requests (counted from the server's last answer, not doubled), and while
//! the server itself is busy (a commit's or a download's time never counts against the client).

use std::time::{Duration, Instant};

use ferry_protocol::{ErrorCode, ProtocolError};

use crate::support::{RawClient, Reply, TestServer};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Asserts `elapsed` is the timeout, give or take 10 % (never less).
fn assert_about_the_timeout(elapsed: Duration, what: &str) {
    assert!(
        elapsed >= TIMEOUT && elapsed <= TIMEOUT + TIMEOUT / 10,
        "{what}: closed after {elapsed:?}, the timeout is {TIMEOUT:?}"
    );
}

fn expect_timeout(result: Result<ferry_protocol::ClientEvent, ProtocolError>) {
    match result {
        Err(ProtocolError::Peer { code, .. }) => assert_eq!(code, ErrorCode::Timeout),
        other => panic!("expected the server to end the connection with Timeout, got {other:?}"),
    }
}

#[test]
fn a_silent_connection_is_closed_at_the_handshake_timeout() {
    let server = TestServer::start(|config| config.handshake_timeout = TIMEOUT);
    let start = Instant::now();
    let mut raw = RawClient::connect_silent(server.addr);
    assert!(matches!(raw.recv(), Reply::Error(ErrorCode::Timeout, _)));
    assert_about_the_timeout(start.elapsed(), "handshake");
}

#[test]
fn a_client_silent_after_the_handshake_is_closed_at_the_idle_timeout() {
    let server = TestServer::start(|config| config.idle_timeout = TIMEOUT);
    // The server's idle clock starts when it sends its handshake answer, a moment before the
    // client has read it; starting ours before connecting keeps it the longer of the two.
    let start = Instant::now();
    let mut client = server.client();
    expect_timeout(client.next_event());
    assert_about_the_timeout(start.elapsed(), "after the handshake");
}

#[test]
fn a_client_silent_between_requests_is_closed_at_the_idle_timeout_after_the_answer() {
    let server = TestServer::start(|config| config.idle_timeout = TIMEOUT);
    let mut client = server.client();
    client.put_new("one", b"first");
    std::thread::sleep(TIMEOUT / 2);
    // Started before the request, so the server's clock (from its answer) is the shorter one.
    let start = Instant::now();
    assert!(client.names().contains(&"one".to_owned()));
    expect_timeout(client.next_event());
    assert_about_the_timeout(start.elapsed(), "between requests");
}
