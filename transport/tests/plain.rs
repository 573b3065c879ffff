//! Plaintext: the socket itself, sniffed as ferry.

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use ferry_protocol::limits::MAGIC;
use ferry_transport::{FirstByte, Transport, is_timeout, sniff};

use crate::support::{PATIENCE, read_exact_patiently, read_to_end_patiently, socket_pair};

#[test]
fn a_plain_round_trip_carries_bytes_both_ways_and_ends() {
    let (client, server) = socket_pair();
    thread::scope(|scope| {
        scope.spawn(move || {
            let until = Instant::now() + PATIENCE;
            let first = sniff(&server, until, Duration::from_millis(50), || false);
            assert_eq!(first, Some(FirstByte::PlainFerry));
            let mut server = Transport::plain(server);
            server.handshake(until).expect("plaintext has no handshake");
            server.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut hello = [0u8; 13];
            read_exact_patiently(&mut server, &mut hello);
            assert_eq!(&hello[..8], &MAGIC);
            assert_eq!(&hello[8..], b"hello");
            server.write_all(b"welcome").unwrap();
            server.flush().unwrap();
            let _ = server.finish().shutdown(Shutdown::Write);
        });
        let mut client = Transport::plain(client);
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        client.write_all(&MAGIC).unwrap();
        client.write_all(b"hello").unwrap();
        client.flush().unwrap();
        assert_eq!(read_to_end_patiently(&mut client).unwrap(), b"welcome");
    });
}

#[test]
fn a_plain_read_with_nothing_to_read_is_a_timeout() {
    let (client, _server) = socket_pair();
    let mut client = Transport::plain(client);
    client
        .set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let error = std::io::Read::read(&mut client, &mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(&error), "{error}");
}
