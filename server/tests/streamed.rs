//! Streamed uploads (protocol version 3, PROTOCOL.md §7): the size is told at the end in
//! `DONE_SIZED`, the server's limits are checked as the bytes arrive, and a stream that does
//! not end well leaves nothing behind, neither visible nor staged.

use ferry_protocol::{ClientEvent, Digest, ErrorCode, Frame, ProtocolError, SourceTag};

use crate::support::{Client, RawClient, Reply, TestServer, data, wait_until};

fn streamed_put(name: &str) -> Frame<'_> {
    Frame::Put {
        name,
        size: 0,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: true,
        tag: SourceTag::default(),
    }
}

/// Nothing under `name`, and nothing staged (the discard may finish just after the answer).
fn assert_nothing_left(server: &TestServer, name: &str) {
    assert!(!server.root().join(name).exists(), "{name} must not exist");
    assert!(
        !server.client().names().contains(&name.to_owned()),
        "{name} is listed"
    );
    wait_until("the staged stream is discarded", || {
        server.staged_files().is_empty()
    });
}

/// Streams `body` as `name`, ignoring write errors (the server may end the stream midway);
/// returns the server's answer: stored, or its error code and message.
fn stream(client: &mut Client, name: &str, body: &[u8]) -> Result<(), (ErrorCode, String)> {
    client.conn.put_streamed(name, false).unwrap();
    match client.next_event() {
        Ok(ClientEvent::PutReady { offset: 0 }) => {}
        Ok(ClientEvent::Refused { code, message }) => return Err((code, message)),
        other => panic!("{name}: {other:?}"),
    }
    client.send_data_lenient(body);
    let _ = client.conn.finish_upload(Digest::of(body));
    client.flush();
    match client.next_event() {
        Ok(ClientEvent::PutStored) => Ok(()),
        Ok(ClientEvent::Refused { code, message }) | Err(ProtocolError::Peer { code, message }) => {
            Err((code, message))
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_streamed_upload_is_stored_whole_with_the_size_it_declares_at_the_end() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    for (name, len) in [("empty", 0), ("small", 10), ("large", 5_000_003)] {
        let body = data(len, len as u64);
        assert_eq!(stream(&mut client, name, &body), Ok(()), "{name}");
        assert_eq!(std::fs::read(server.root().join(name)).unwrap(), body);
    }
    assert!(server.staged_files().is_empty());
}

#[test]
fn a_streamed_upload_whose_declared_size_disagrees_is_refused_and_nothing_is_stored() {
    for declared in [100, 119, 121] {
        let server = TestServer::start(|_| {});
        let mut raw = RawClient::connect(server.addr);
        raw.send(&streamed_put("liar"));
        assert_eq!(raw.recv(), Reply::PutReady(0));
        let body = data(120, 5);
        for half in body.chunks(60) {
            raw.send(&Frame::Data { len: 60 });
            raw.send_bytes(half);
        }
        raw.send(&Frame::DoneSized {
            size: declared,
            digest: Digest::of(&body),
        });
        let reply = raw.recv();
        assert!(
            matches!(&reply, Reply::Error(ErrorCode::SizeMismatch, message) if message.contains(&declared.to_string())),
            "declared {declared}: {reply:?}"
        );
        assert_eq!(raw.recv(), Reply::Closed);
        assert_nothing_left(&server, "liar");
    }
}

#[test]
fn a_streamed_upload_with_a_wrong_digest_is_refused_and_discarded() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.conn.put_streamed("tampered", false).unwrap();
    assert_eq!(
        client.next_event().unwrap(),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&data(300_000, 6));
    match client.finish_upload(Digest::of(b"other")).unwrap() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::DigestMismatch),
        other => panic!("{other:?}"),
    }
    assert_nothing_left(&server, "tampered");
}

#[test]
fn a_stream_past_the_file_limit_is_ended_midway_and_nothing_is_kept() {
    let server = TestServer::start(|config| config.max_file_size = 1_000_000);
    let mut client = server.client();
    let ended = stream(&mut client, "big", &data(3_000_000, 7));
    let Err((ErrorCode::TooLarge, message)) = ended else {
        panic!("{ended:?}");
    };
    assert!(
        message.contains("1000000") && message.contains("nothing of the upload was kept"),
        "{message}"
    );
    assert_nothing_left(&server, "big");
    // Exactly at the limit is fine.
    let body = data(1_000_000, 8);
    assert_eq!(stream(&mut server.client(), "edge", &body), Ok(()));
}

#[test]
fn a_stream_past_the_quota_is_ended_midway_and_nothing_is_kept() {
    let server = TestServer::start(|config| config.quota = Some(2_000_000));
    let mut client = server.client();
    client.put_new("first", &data(1_500_000, 9));
    let ended = stream(&mut client, "second", &data(1_000_000, 10));
    assert!(
        matches!(&ended, Err((ErrorCode::OverQuota, _))),
        "{ended:?}"
    );
    assert_nothing_left(&server, "second");
    // The space the stream held is free again.
    assert_eq!(
        stream(&mut server.client(), "third", &data(400_000, 11)),
        Ok(())
    );
}

#[test]
fn a_stream_cut_midway_leaves_nothing_and_another_stream_to_its_name_waits_for_it() {
    let server = TestServer::start(|_| {});
    let mut first = server.client();
    first.conn.put_streamed("x", false).unwrap();
    assert_eq!(
        first.next_event().unwrap(),
        ClientEvent::PutReady { offset: 0 }
    );
    first.send_data(&data(2_000_000, 12));
    first.sync();
    // A second stream to the same name does not take the first one over.
    let mut second = server.client();
    second.conn.put_streamed("x", false).unwrap();
    assert!(matches!(
        second.next_event().unwrap(),
        ClientEvent::Refused {
            code: ErrorCode::InProgress,
            ..
        }
    ));
    drop(first);
    assert_nothing_left(&server, "x");
    // The cut connection's session lets the name go once it has seen the end of its stream
    // (its staged bytes may be gone a moment before): the second stream then goes through.
    wait_until("the cut stream's name is free", || {
        match stream(&mut second, "x", &data(10, 13)) {
            Ok(()) => true,
            Err((ErrorCode::InProgress, _)) => false,
            Err(other) => panic!("the second stream ended {other:?}"),
        }
    });
    assert_eq!(server.client().get("x"), Ok(data(10, 13)));
}

#[test]
fn a_stream_into_a_full_disk_ends_with_disk_full_and_frees_its_space() {
    let Some(server) = TestServer::start_on_small_disk("8m", |_| {}) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let ended = stream(&mut server.client(), "big", &data(12_000_000, 14));
    assert!(matches!(&ended, Err((ErrorCode::DiskFull, _))), "{ended:?}");
    assert_nothing_left(&server, "big");
    assert_eq!(
        stream(&mut server.client(), "fits", &data(1_000_000, 15)),
        Ok(())
    );
}
