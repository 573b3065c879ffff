//! Example-based pair tests: whole exchanges between the client machine and ferryd's real
//! session over its in-memory store; then the server machine alone, fed raw frames (the
//! refusal and violation paths, each showing the error the peer receives).

use std::time::Duration;

use ferry_protocol::limits::{MAGIC, PROTOCOL_VERSION};
use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, Frame, HASH_UNIT_LEN, HashCheckpoint,
    ProtocolError, ServerConnection, ServerEvent, SourceTag, Timestamp, decode_frame,
};

use crate::pair::{Outcome, Pair, Split, checkpoint_of, content, default_config};
use crate::raw::feed_accepting as feed;

fn random_split(seed: u64) -> Split {
    Split::Random { seed, max: 70_000 }
}

#[test]
fn files_of_boundary_sizes_upload_and_download_byte_for_byte() {
    let unit = HASH_UNIT_LEN as usize;
    let sizes = [
        0,
        1,
        1023,
        1024,
        1025,
        unit - 1,
        unit,
        unit + 1,
        256 * 1024,
        256 * 1024 + 1,
        3 * 1024 * 1024 + 5,
    ];
    let mut pair = Pair::new(random_split(1));
    for (i, &size) in sizes.iter().enumerate() {
        let name = format!("dir/file-{i}");
        let data = content(size, i as u64);
        assert_eq!(
            pair.put(&name, &data, false, true),
            Outcome::Stored { offset: 0 },
            "size {size}"
        );
        assert_eq!(
            pair.server.stored(&name).as_deref(),
            Some(&data[..]),
            "stored bytes, size {size}"
        );
        match pair.get(&name, HashCheckpoint::start()) {
            Outcome::Downloaded {
                data: got,
                offset,
                digest,
            } => {
                assert_eq!(offset, 0);
                assert_eq!(got, data, "downloaded bytes, size {size}");
                assert_eq!(digest, Digest::of(&data));
            }
            other => panic!("download of size {size} ended with {other:?}"),
        }
    }
}

#[test]
fn cancelled_upload_resumes_sending_only_the_missing_bytes() {
    let data = content(1_000_000, 9);
    let mut pair = Pair::new(random_split(2));
    let cancelled = pair.put_with("big.bin", &data, false, true, false, Some(300_000));
    assert!(matches!(cancelled, Outcome::Cancelled { sent } if sent >= 300_000));
    assert!(
        pair.server.stored("big.bin").is_none(),
        "a cancelled upload is not visible"
    );

    let Outcome::Queried {
        stored_size: None,
        stored_digest: None,
        partial_offset: Some(held),
    } = pair.query("big.bin", &data)
    else {
        panic!("query did not report the partial upload");
    };
    assert!(
        held >= 256 * 1024 && held % HASH_UNIT_LEN == 0,
        "held {held}"
    );

    let sent_before = pair.data_bytes_sent;
    assert_eq!(
        pair.put("big.bin", &data, false, true),
        Outcome::Stored { offset: held }
    );
    assert_eq!(pair.data_bytes_sent - sent_before, data.len() as u64 - held);
    assert_eq!(pair.server.stored("big.bin").as_deref(), Some(&data[..]));
    assert_eq!(
        pair.query("big.bin", &data),
        Outcome::Queried {
            stored_size: Some(data.len() as u64),
            stored_digest: Some(Digest::of(&data)),
            partial_offset: None,
        },
        "a stored file's query carries its digest"
    );
}

#[test]
fn upload_without_resume_starts_over() {
    let data = content(500_000, 4);
    let mut pair = Pair::new(random_split(3));
    pair.put_with("x", &data, false, true, false, Some(200_000));
    assert_eq!(
        pair.put("x", &data, false, false),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(pair.server.stored("x").as_deref(), Some(&data[..]));
}

#[test]
fn partial_upload_of_another_file_is_not_resumed() {
    let first = content(400_000, 1);
    let second = content(400_001, 2);
    let mut pair = Pair::new(random_split(4));
    pair.put_with("same-name", &first, false, true, false, Some(200_000));
    assert_eq!(
        pair.put("same-name", &second, false, true),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(
        pair.server.stored("same-name").as_deref(),
        Some(&second[..])
    );
}

#[test]
fn download_resumes_from_a_local_partial_and_verifies_the_whole_file() {
    let data = content(2_000_000, 5);
    let mut pair = Pair::new(random_split(5));
    pair.put("f", &data, false, true);
    for have in [0, 1, 65_535, 65_536, 700_001, 2_000_000] {
        let checkpoint = checkpoint_of(&data[..have]);
        match pair.get("f", checkpoint.clone()) {
            Outcome::Downloaded {
                data: tail,
                offset,
                digest,
            } => {
                assert_eq!(offset, checkpoint.offset());
                assert_eq!(tail, data[offset as usize..], "tail from {offset}");
                assert_eq!(digest, Digest::of(&data));
            }
            other => panic!("resume from {have} ended with {other:?}"),
        }
    }
}

#[test]
fn list_and_remove() {
    let mut pair = Pair::new(random_split(6));
    for (name, len) in [("a/1", 10), ("a/2", 0), ("b/3", 7)] {
        pair.put(name, &content(len, 1), false, true);
    }
    let Outcome::Listed(entries) = pair.list("a/") else {
        panic!("list failed")
    };
    let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.size)).collect();
    assert_eq!(names, [("a/1", 10), ("a/2", 0)]);
    assert_eq!(pair.remove("a/1"), Outcome::Removed);
    assert_eq!(pair.remove("a/1"), Outcome::Refused(ErrorCode::NotFound));
    let Outcome::Listed(entries) = pair.list("") else {
        panic!("list failed")
    };
    assert_eq!(entries.len(), 2);
}

#[test]
fn existing_name_is_refused_unless_overwrite() {
    let mut pair = Pair::new(random_split(7));
    pair.put("n", b"one", false, true);
    assert_eq!(
        pair.put("n", b"two", false, true),
        Outcome::Refused(ErrorCode::AlreadyExists)
    );
    assert_eq!(pair.server.stored("n").as_deref(), Some(&b"one"[..]));
    assert_eq!(
        pair.put("n", b"two", true, true),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(pair.server.stored("n").as_deref(), Some(&b"two"[..]));
}

#[test]
fn too_large_is_refused_before_any_data_moves() {
    let mut config = default_config();
    config.max_file_size = 1000;
    let mut pair = Pair::with_config(random_split(8), config);
    assert_eq!(
        pair.put("big", &content(1001, 1), false, true),
        Outcome::Refused(ErrorCode::TooLarge)
    );
    assert_eq!(pair.data_bytes_sent, 0);
    assert_eq!(pair.server.store.bytes_held(), 0, "nothing was staged");
}

#[test]
fn wrong_digest_is_refused_and_leaves_no_file() {
    let mut pair = Pair::new(random_split(9));
    let data = content(100_000, 3);
    assert_eq!(
        pair.put_with("bad", &data, false, true, true, None),
        Outcome::Refused(ErrorCode::DigestMismatch)
    );
    assert_eq!(pair.server.stored("bad"), None);
    assert_eq!(
        pair.server.store.bytes_held(),
        0,
        "rejected data is discarded"
    );
    assert_eq!(
        pair.put("bad", &data, false, true),
        Outcome::Stored { offset: 0 },
        "connection still usable"
    );
}

// ----- one machine fed raw frames -----

fn frame_bytes(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame.encode(&mut out);
    }
    out
}

fn hello() -> Frame<'static> {
    Frame::Hello {
        min_version: 1,
        max_version: 1,
        token: b"",
    }
}

/// The frames the server sent, after its magic.
fn sent_frames(conn: &mut ServerConnection) -> Vec<(ErrorCode, String)> {
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    let mut rest = out
        .strip_prefix(&MAGIC)
        .expect("server starts with its magic");
    let mut errors = Vec::new();
    while let Ok(Some((frame, used))) = decode_frame(rest) {
        if let Frame::Error { code, message } = frame {
            errors.push((code, message.to_owned()));
        }
        rest = &rest[used..];
    }
    errors
}

fn connected_server() -> ServerConnection {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let mut input = MAGIC.to_vec();
    input.extend(frame_bytes(&[hello()]));
    let (events, error) = feed(&mut conn, &input);
    assert!(matches!(
        events[..],
        [ServerEvent::ClientHello { version: 1, .. }]
    ));
    assert_eq!(error, None);
    conn
}

fn put(name: &str, size: u64) -> Frame<'_> {
    Frame::Put {
        name,
        size,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: SourceTag::default(),
    }
}

#[test]
fn hostile_names_get_bad_name_and_the_connection_stays_usable() {
    for name in [
        "../etc/passwd",
        "/abs",
        "a\0b",
        "a\u{1}b",
        "C:/x",
        "a\\b",
        ".ferry-staging/x",
        &"n".repeat(1025),
    ] {
        let mut conn = connected_server();
        let (events, error) = feed(&mut conn, &frame_bytes(&[put(name, 1)]));
        assert_eq!(error, None, "{name:?}");
        assert!(
            matches!(
                events[..],
                [ServerEvent::RequestRefused {
                    code: ErrorCode::BadName,
                    ..
                }]
            ),
            "{name:?}: {events:?}"
        );
        let errors = sent_frames(&mut conn);
        assert_eq!(
            errors.last().map(|e| e.0),
            Some(ErrorCode::BadName),
            "{name:?}"
        );
        let (events, _) = feed(&mut conn, &frame_bytes(&[put("fine", 0)]));
        assert!(
            matches!(events[..], [ServerEvent::PutRequested(_)]),
            "usable after {name:?}"
        );
    }
}

#[test]
fn more_bytes_than_declared_is_a_size_mismatch() {
    let mut conn = connected_server();
    let mut input = frame_bytes(&[put("f", 10), Frame::Data { len: 11 }]);
    input.extend([0u8; 11]);
    let (_, error) = feed(&mut conn, &input);
    assert!(
        matches!(
            error,
            Some(ProtocolError::SizeMismatch {
                declared: 10,
                sent: 11
            })
        ),
        "{error:?}"
    );
    assert_eq!(
        sent_frames(&mut conn).last().map(|e| e.0),
        Some(ErrorCode::SizeMismatch)
    );
}

#[test]
fn done_before_every_byte_is_a_size_mismatch() {
    let mut conn = connected_server();
    let mut input = frame_bytes(&[put("f", 10), Frame::Data { len: 5 }]);
    input.extend([0u8; 5]);
    input.extend(frame_bytes(&[Frame::Done {
        digest: Digest::of(&[0; 5]),
    }]));
    let (events, error) = feed(&mut conn, &input);
    assert!(
        matches!(
            error,
            Some(ProtocolError::SizeMismatch {
                declared: 10,
                sent: 5
            })
        ),
        "{error:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ServerEvent::UploadVerified { .. }))
    );
    assert_eq!(
        conn.upload_checkpoint(),
        Some(HashCheckpoint::start()),
        "partial kept resumable"
    );
}

#[test]
fn data_before_go_ahead_is_an_unexpected_frame() {
    let mut conn = connected_server();
    let (_, error) = feed(&mut conn, &frame_bytes(&[Frame::Data { len: 3 }]));
    assert!(
        matches!(
            error,
            Some(ProtocolError::UnexpectedFrame { frame: "DATA", .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        sent_frames(&mut conn).last().map(|e| e.0),
        Some(ErrorCode::UnexpectedFrame)
    );
}

#[test]
fn second_request_mid_transfer_is_an_unexpected_frame() {
    let mut conn = connected_server();
    let (_, error) = feed(
        &mut conn,
        &frame_bytes(&[put("f", 10), Frame::List { prefix: "" }]),
    );
    assert!(
        matches!(
            error,
            Some(ProtocolError::UnexpectedFrame { frame: "LIST", .. })
        ),
        "{error:?}"
    );
}

#[test]
fn errors_are_sticky() {
    let mut conn = connected_server();
    let (_, first) = feed(&mut conn, &[0xee]);
    let first = first.expect("unknown frame type fails");
    assert_eq!(
        conn.handle_input(Timestamp::ZERO, &frame_bytes(&[put("ok", 0)])),
        Err(first.clone())
    );
    assert_eq!(conn.handle_eof(Timestamp::ZERO), Err(first.clone()));
    assert_eq!(conn.error(), Some(&first));
    assert!(conn.is_closed());
}

#[test]
fn a_peer_that_is_not_ferry_is_told_and_closed() {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let (_, error) = feed(&mut conn, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(error, Some(ProtocolError::NotFerry));
    assert_eq!(
        sent_frames(&mut conn).last().map(|e| e.0),
        Some(ErrorCode::NotFerry)
    );
}

#[test]
fn unsupported_version_is_refused_with_its_code() {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let mut input = MAGIC.to_vec();
    input.extend(frame_bytes(&[Frame::Hello {
        min_version: PROTOCOL_VERSION + 1,
        max_version: 9,
        token: b"",
    }]));
    let (_, error) = feed(&mut conn, &input);
    assert!(
        matches!(
            error,
            Some(ProtocolError::UnsupportedVersion { theirs_min, .. }) if theirs_min == PROTOCOL_VERSION + 1
        ),
        "{error:?}"
    );
    assert_eq!(
        sent_frames(&mut conn).last().map(|e| e.0),
        Some(ErrorCode::UnsupportedVersion)
    );
}

#[test]
fn silent_client_times_out_at_its_deadline() {
    let config = Config::default();
    let mut conn = ServerConnection::new(config, Timestamp::ZERO);
    let deadline = conn.poll_timeout().expect("handshake deadline");
    assert_eq!(deadline, Timestamp::ZERO + config.handshake_timeout);
    assert_eq!(
        conn.handle_timeout(Timestamp::from_micros(deadline.as_micros() - 1)),
        Ok(())
    );
    assert!(matches!(
        conn.handle_timeout(deadline),
        Err(ProtocolError::Timeout { what: "handshake" })
    ));
    assert_eq!(
        sent_frames(&mut conn).last().map(|e| e.0),
        Some(ErrorCode::Timeout)
    );
}

#[test]
fn stalled_upload_times_out_and_stays_resumable() {
    let mut conn = connected_server();
    let mut input = frame_bytes(&[put("f", 200_000), Frame::Data { len: 100_000 }]);
    input.extend(vec![7u8; 100_000]);
    let (_, error) = feed(&mut conn, &input);
    assert_eq!(error, None);
    let deadline = conn.poll_timeout().expect("idle deadline while receiving");
    assert!(matches!(
        conn.handle_timeout(deadline + Duration::from_secs(1)),
        Err(ProtocolError::Timeout { .. })
    ));
    assert_eq!(
        conn.upload_checkpoint().map(|c| c.offset()),
        Some(HASH_UNIT_LEN)
    );
}

#[test]
fn busy_server_refusal_reaches_the_client() {
    let mut server = ServerConnection::new(Config::default(), Timestamp::ZERO);
    server
        .refuse_connection(ErrorCode::Busy, "at the connection limit; try again later")
        .unwrap();
    assert!(server.is_closed());
    let mut bytes = Vec::new();
    server.poll_transmit(&mut bytes);
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let error = client
        .handle_input(Timestamp::ZERO, &bytes)
        .expect_err("busy is fatal");
    assert!(
        matches!(
            error,
            ProtocolError::Peer {
                code: ErrorCode::Busy,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(client.poll_event().is_none());
}

#[test]
fn client_rejects_a_download_whose_digest_does_not_match() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    input.extend(frame_bytes(&[Frame::Welcome { version: 1 }]));
    client.get("f", HashCheckpoint::start()).unwrap_err(); // not connected yet: refused locally
    let received = client.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, input.len());
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Connected { version: 1 })
    );
    client.get("f", HashCheckpoint::start()).unwrap();
    let mut reply = frame_bytes(&[
        Frame::GetReady { size: 3, offset: 0 },
        Frame::Data { len: 3 },
    ]);
    reply.extend(b"abc");
    reply.extend(frame_bytes(&[Frame::Done {
        digest: Digest::of(b"abd"),
    }]));
    let mut pos = 0;
    let mut error = None;
    for _ in 0..10 {
        match client.handle_input(Timestamp::ZERO, &reply[pos..]) {
            Ok(received) => pos += received.consumed,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        while client.poll_event().is_some() {}
    }
    assert!(
        matches!(error, Some(ProtocolError::DigestMismatch { .. })),
        "{error:?}"
    );
}

#[test]
fn server_abort_mid_upload_tells_the_client_and_keeps_the_checkpoint() {
    let mut conn = connected_server();
    let mut input = frame_bytes(&[put("f", 300_000), Frame::Data { len: 200_000 }]);
    input.extend(vec![1u8; 200_000]);
    let (_, error) = feed(&mut conn, &input);
    assert_eq!(error, None);
    conn.abort(ErrorCode::DiskFull, "disk full");
    assert!(conn.is_closed());
    assert_eq!(
        conn.upload_checkpoint().map(|c| c.offset()),
        Some(3 * HASH_UNIT_LEN)
    );
    assert_eq!(
        sent_frames(&mut conn).last().map(|e| e.0),
        Some(ErrorCode::DiskFull)
    );
}

fn secs(s: u64) -> Timestamp {
    Timestamp::from_micros(s * 1_000_000)
}

#[test]
fn idle_time_counts_from_the_servers_last_frame_not_the_clients_last_byte() {
    let mut conn = connected_server();
    let (events, _) = feed(
        &mut conn,
        &frame_bytes(&[Frame::Get {
            name: "f",
            offset: 0,
        }]),
    );
    assert!(matches!(events[..], [ServerEvent::GetRequested { .. }]));
    conn.accept_get(1).unwrap();
    assert_eq!(
        conn.poll_timeout(),
        None,
        "no deadline while the server sends"
    );
    // a download that took 100 s, with no byte from the client meanwhile
    conn.send_file_data(b"x").unwrap();
    conn.finish_download(Digest::of(b"x")).unwrap();
    assert_eq!(
        conn.handle_timeout(secs(100)),
        Ok(()),
        "the wait starts now"
    );
    let deadline = conn.poll_timeout().expect("idle deadline");
    assert_eq!(deadline, secs(100) + Config::default().idle_timeout);
    assert_eq!(conn.handle_timeout(secs(159)), Ok(()));
    assert!(matches!(
        conn.handle_timeout(secs(160)),
        Err(ProtocolError::Timeout {
            what: "next request"
        })
    ));
}

#[test]
fn client_waits_for_the_ack_a_full_idle_timeout_after_its_last_byte() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    input.extend(frame_bytes(&[
        Frame::Welcome { version: 1 },
        Frame::PutReady { offset: 0 },
    ]));
    client
        .put("f", 1, false, false, SourceTag::default())
        .unwrap_err(); // not connected yet
    let received = client
        .handle_input(Timestamp::ZERO, &input[..input.len() - 13])
        .unwrap();
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Connected { version: 1 })
    );
    client
        .put("f", 1, false, false, SourceTag::default())
        .unwrap();
    let rest = &input[received.consumed..];
    let _ = client.handle_input(Timestamp::ZERO, rest).unwrap();
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::PutReady { offset: 0 })
    );
    // the upload's data took 200 s to send; the server said nothing meanwhile
    client.send_file_data(b"x").unwrap();
    client.finish_upload(Digest::of(b"x")).unwrap();
    assert_eq!(client.handle_timeout(secs(200)), Ok(()));
    assert_eq!(
        client.poll_timeout(),
        Some(secs(200) + Config::default().idle_timeout)
    );
}

#[test]
fn a_handshake_trickled_byte_by_byte_still_times_out() {
    let config = Config::default();
    let mut conn = ServerConnection::new(config, Timestamp::ZERO);
    let mut input = MAGIC.to_vec();
    input.extend(frame_bytes(&[hello()]));
    // one byte a second, never finishing in time
    for (i, byte) in input.iter().take(9).enumerate() {
        let now = secs(i as u64);
        let _ = conn.handle_input(now, std::slice::from_ref(byte)).unwrap();
        assert_eq!(conn.handle_timeout(now), Ok(()));
    }
    assert_eq!(
        conn.poll_timeout(),
        Some(Timestamp::ZERO + config.handshake_timeout)
    );
    assert!(matches!(
        conn.handle_timeout(Timestamp::ZERO + config.handshake_timeout),
        Err(ProtocolError::Timeout { what: "handshake" })
    ));
}
