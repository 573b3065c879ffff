//! Regressions the fuzzers found in the machines, and one short run of every target.

use crate::{
    ClientConnection, CommandError, Config, Digest, ErrorCode, Frame, HASH_UNIT_LEN, ProtocolError,
    ServerConnection, ServerEvent, SourceTag, Timestamp,
};

use super::checks::{StreamChecker, checkpoint_of};
use super::corpus::{client_handshake, encode_all};
use super::{decode_frames, names, server_after_handshake, server_from_first_byte};

/// Found by `server_after_handshake`: an upload resumed at its very end (checkpoint offset
/// equal to the size) panicked in `FileHasher::finalize` when `DONE` came, inside blake3
/// ("empty subtrees are never valid"). A peer could crash the other side with it.
#[test]
fn a_transfer_resumed_at_its_very_end_is_checked_without_panicking() {
    let unit = HASH_UNIT_LEN as usize;
    // Three units (subtrees of 2 and 1): the digest can be computed from the checkpoint.
    // One unit: it cannot, and the upload is rejected instead of accepted unverified.
    for (units, verified) in [(3, true), (1, false)] {
        let zeros = vec![0; units * unit];
        let checkpoint = checkpoint_of(&[&zeros[..], &[0]].concat());
        assert_eq!(checkpoint.offset(), zeros.len() as u64);
        let mut server = ServerConnection::new(Config::default(), Timestamp::ZERO);
        let mut input = client_handshake(b"");
        let _ = server.handle_input(Timestamp::ZERO, &input).unwrap();
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::ClientHello { .. })
        ));
        server.accept_client().unwrap();
        input = encode_all(&[Frame::Put {
            name: "f",
            size: zeros.len() as u64,
            overwrite: false,
            resume: true,
            eager: false,
            streamed: false,
            tag: SourceTag::default(),
        }]);
        let _ = server.handle_input(Timestamp::ZERO, &input).unwrap();
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::PutRequested(_))
        ));
        server.accept_put(&checkpoint).unwrap();
        input = encode_all(&[Frame::Done {
            digest: Digest::of(&zeros),
        }]);
        let _ = server.handle_input(Timestamp::ZERO, &input).unwrap();
        match server.poll_event() {
            Some(ServerEvent::UploadVerified { digest, .. }) => {
                assert!(verified, "{units} units");
                assert_eq!(digest, Digest::of(&zeros));
            }
            Some(ServerEvent::UploadRejected { .. }) => assert!(!verified, "{units} units"),
            other => panic!("{units} units: {other:?}"),
        }
    }
}

/// Found by `client_from_server_bytes`: a peer whose first bytes were not the magic failed
/// the connection in its core only, so the machine's own state stayed open (commands said
/// "wrong state" instead of "closed", and the server could queue a second ERROR).
#[test]
fn a_peer_that_is_not_ferry_closes_the_whole_machine() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let error = client
        .handle_input(Timestamp::ZERO, b"HTTP/1.1 200 OK")
        .unwrap_err();
    assert_eq!(error, ProtocolError::NotFerry);
    assert_eq!(client.list(""), Err(CommandError::Closed));
    assert!(client.is_closed() && !client.is_idle());

    let mut server = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let error = server
        .handle_input(Timestamp::ZERO, b"GET / HTTP/1.1")
        .unwrap_err();
    assert_eq!(error, ProtocolError::NotFerry);
    let mut sent = Vec::new();
    let _ = server.poll_transmit(&mut sent);
    assert!(server.refuse_connection(ErrorCode::Busy, "busy").is_err());
    assert!(
        !server.wants_transmit(),
        "a second ERROR was queued after the failure"
    );
    let mut checker = StreamChecker::default();
    checker.feed(&sent);
    assert_eq!(checker.last_error, Some(ErrorCode::NotFerry));
    assert_eq!(checker.frames, 1);
}

fn hello_put(name: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    Frame::Put {
        name,
        size: data.len() as u64,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: SourceTag::default(),
    }
    .encode(&mut bytes);
    Frame::Data {
        len: data.len() as u32,
    }
    .encode(&mut bytes);
    bytes.extend_from_slice(data);
    Frame::Done {
        digest: Digest::of(data),
    }
    .encode(&mut bytes);
    bytes
}

#[test]
fn valid_upload_after_handshake_passes_the_server_checks() {
    server_after_handshake(&hello_put("a/b.txt", b"hello"));
}

#[test]
fn garbage_from_the_first_byte_fails_the_server_cleanly() {
    server_from_first_byte(b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn every_frame_of_a_valid_stream_decodes_and_re_encodes() {
    decode_frames(&hello_put("x", b"data"));
}

#[test]
fn hostile_names_are_checked_against_the_spec() {
    for name in [
        "../a", "a/./b", "/abs", "C:x", "ok/name", ".ferry/x", "a\\b", "a\u{85}b",
    ] {
        names(name.as_bytes());
    }
}
