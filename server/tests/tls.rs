//! TLS under the protocol, seen from raw sockets: what the first byte decides and how a TLS
//! handshake that never ends is cut off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ferry_server::TlsIdentity;

use crate::support::{Client, TestServer};

fn tls_server(handshake_timeout: Duration) -> TestServer {
    let state = tempfile::tempdir().unwrap();
    let identity = TlsIdentity::load_or_create(&state.path().join("tls")).unwrap();
    TestServer::start(|config| {
        config.tls = Some(identity);
        config.handshake_timeout = handshake_timeout;
    })
}

#[test]
fn a_tls_handshake_that_never_completes_is_closed_after_the_handshake_timeout() {
    let server = tls_server(Duration::from_millis(300));
    let mut raw = TcpStream::connect(server.addr).unwrap();
    // The start of a TLS record header, then silence.
    raw.write_all(&[0x16, 0x03, 0x01]).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut received = Vec::new();
    let ended = loop {
        let mut buf = [0u8; 1024];
        match raw.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(ended, "the server kept a stalled TLS handshake open");
    // Nothing in plaintext: at most a TLS alert record.
    assert!(received.is_empty() || received[0] == 0x15, "{received:?}");
}

#[test]
fn a_plaintext_client_of_a_tls_server_is_refused_in_plaintext() {
    let server = tls_server(Duration::from_secs(10));
    match Client::try_connect(server.addr).err() {
        Some(ferry_protocol::ProtocolError::Peer { code, message }) => {
            assert_eq!(code, ferry_protocol::ErrorCode::NotAuthorised);
            assert!(message.contains("requires TLS"), "{message}");
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
}
