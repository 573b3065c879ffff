//! TLS 1.3 between two `Transport`s: round trips, the end of a stream, timeouts, and each way
//! a handshake fails.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ferry_protocol::limits::MAGIC;
use ferry_transport::{Fingerprint, FirstByte, HandshakeError, Transport, is_timeout, sniff};

use crate::support::{
    Identity, PATIENCE, client_config, identity, localhost, read_exact_patiently,
    read_to_end_patiently, socket_pair,
};

/// The server's end as `ferryd` opens it: sniff the first byte, then TLS driven by reads.
fn accept_tls(socket: TcpStream, identity: &Identity) -> Transport {
    let until = Instant::now() + PATIENCE;
    let first = sniff(&socket, until, Duration::from_millis(50), || false);
    assert_eq!(first, Some(FirstByte::Tls));
    let server = Transport::tls_server(socket, identity.config.clone()).unwrap();
    server.set_read_timeout(Some(PATIENCE)).unwrap();
    server.set_write_timeout(Some(PATIENCE)).unwrap();
    server
}

#[test]
fn a_tls_round_trip_carries_bytes_both_ways_and_ends_with_close_notify() {
    let identity = identity();
    let (client, server) = socket_pair();
    thread::scope(|scope| {
        scope.spawn(|| {
            // The server never calls `handshake`: its first reads drive it, as in ferryd.
            let mut server = accept_tls(server, &identity);
            let mut hello = [0u8; 13];
            read_exact_patiently(&mut server, &mut hello);
            assert_eq!(&hello[..8], &MAGIC);
            assert_eq!(&hello[8..], b"hello");
            server.write_all(b"welcome").unwrap();
            server.flush().unwrap();
            // Only a close_notify: the socket stays open until the client has seen the end.
            server.finish();
            assert_eq!(read_to_end_patiently(&mut server).unwrap(), b"");
        });
        let config = client_config(identity.fingerprint);
        let mut client = Transport::tls_client(client, config, localhost()).unwrap();
        client.set_write_timeout(Some(PATIENCE)).unwrap();
        client.handshake(Instant::now() + PATIENCE).unwrap();
        client.write_all(&MAGIC).unwrap();
        client.write_all(b"hello").unwrap();
        client.flush().unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(read_to_end_patiently(&mut client).unwrap(), b"welcome");
        drop(client);
    });
}

#[test]
fn megabytes_cross_tls_in_both_directions_unchanged() {
    const LEN: usize = 3 * 1024 * 1024 + 17; // above rustls's send limit, not a round size
    let data: Vec<u8> = (0..LEN).map(|i| (i * 31 % 251) as u8).collect();
    let identity = identity();
    let (client, server) = socket_pair();
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut server = accept_tls(server, &identity);
            // Here the server completes the handshake first, as ferryd's early refusal does.
            server.handshake(Instant::now() + PATIENCE).unwrap();
            let mut got = vec![0u8; LEN];
            read_exact_patiently(&mut server, &mut got);
            assert!(got == data, "the server received other bytes");
            // Back in uneven vectored pieces.
            for piece in got.chunks(100_003) {
                let (head, tail) = piece.split_at(piece.len() / 3);
                let mut slices = [IoSlice::new(head), IoSlice::new(tail)];
                let mut slices = &mut slices[..];
                while !slices.is_empty() {
                    let n = server.write_vectored(slices).unwrap();
                    IoSlice::advance_slices(&mut slices, n);
                }
            }
            server.flush().unwrap();
            let _ = server.finish().shutdown(Shutdown::Write);
        });
        let config = client_config(identity.fingerprint);
        let mut client = Transport::tls_client(client, config, localhost()).unwrap();
        client.set_write_timeout(Some(PATIENCE)).unwrap();
        client.handshake(Instant::now() + PATIENCE).unwrap();
        client.write_all(&data).unwrap();
        client.flush().unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let back = read_to_end_patiently(&mut client).unwrap();
        assert_eq!(back.len(), LEN);
        assert!(back == data, "the client received other bytes");
    });
}

#[test]
fn a_tls_read_with_nothing_to_read_is_a_timeout() {
    let identity = identity();
    let (client, server) = socket_pair();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let identity = &identity;
    thread::scope(|scope| {
        scope.spawn(move || {
            let mut server = accept_tls(server, identity);
            let mut one = [0u8; 1];
            read_exact_patiently(&mut server, &mut one);
            // Silent, the connection open, until the client has seen its timeout.
            let _ = done_rx.recv_timeout(PATIENCE);
        });
        let config = client_config(identity.fingerprint);
        let mut client = Transport::tls_client(client, config, localhost()).unwrap();
        client.handshake(Instant::now() + PATIENCE).unwrap();
        client.write_all(b"x").unwrap();
        client.flush().unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let error = client.read(&mut [0u8; 16]).unwrap_err();
        assert!(is_timeout(&error), "{error}");
        done_tx.send(()).unwrap();
    });
}

#[test]
fn a_tls_client_of_a_plaintext_ferry_server_learns_it_runs_without_tls() {
    let identity = identity();
    let (client, mut server) = socket_pair();
    thread::scope(|scope| {
        scope.spawn(move || {
            // A plaintext server answers whatever came with its magic and an error.
            let _ = server.write_all(&MAGIC);
            let _ = server.write_all(b"an ERROR frame");
            let _ = server.shutdown(Shutdown::Write);
            let _ = read_to_end_patiently(&mut server);
        });
        let config = client_config(identity.fingerprint);
        let mut client = Transport::tls_client(client, config, localhost()).unwrap();
        let error = client.handshake(Instant::now() + PATIENCE).unwrap_err();
        assert!(matches!(error, HandshakeError::PlaintextPeer), "{error:?}");
    });
}

#[test]
fn a_certificate_the_client_does_not_trust_fails_both_ends() {
    let identity = identity();
    let (client, server) = socket_pair();
    thread::scope(|scope| {
        let server_end = scope.spawn(|| {
            let mut server = accept_tls(server, &identity);
            read_to_end_patiently(&mut server)
        });
        let other = Fingerprint::of(b"another certificate");
        let mut client = Transport::tls_client(client, client_config(other), localhost()).unwrap();
        let error = client.handshake(Instant::now() + PATIENCE).unwrap_err();
        assert!(matches!(error, HandshakeError::Tls(_)), "{error:?}");
        drop(client);
        // The server got the client's alert telling it why.
        let error = server_end.join().unwrap().unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
        assert!(error.to_string().contains("alert"), "{error}");
    });
}

#[test]
fn a_silent_server_times_the_handshake_out_at_its_deadline() {
    let identity = identity();
    let (client, _silent) = socket_pair();
    let config = client_config(identity.fingerprint);
    let mut client = Transport::tls_client(client, config, localhost()).unwrap();
    let start = Instant::now();
    let error = client
        .handshake(start + Duration::from_millis(200))
        .unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(error, HandshakeError::TimedOut), "{error:?}");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_server_that_closes_during_the_handshake_is_reported_closed() {
    let identity = identity();
    let (client, server) = socket_pair();
    drop(server);
    let config = client_config(identity.fingerprint);
    let mut client = Transport::tls_client(client, config, localhost()).unwrap();
    let error = client.handshake(Instant::now() + PATIENCE).unwrap_err();
    // The hello may meet a reset rather than an orderly end, depending on timing.
    assert!(
        matches!(error, HandshakeError::Closed | HandshakeError::Io(_)),
        "{error:?}"
    );
}
