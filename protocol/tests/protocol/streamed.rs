//! Streamed uploads (version 3): a `PUT` without a size, data until the client stops, and
//! `DONE_SIZED` with the size and digest it counted. PROTOCOL.md §7 "Streamed uploads".

use ferry_protocol::limits::{MAGIC, PROTOCOL_VERSION, STREAMED_SINCE};
use ferry_protocol::{
    ClientConnection, ClientEvent, CommandError, Config, Digest, ErrorCode, Frame, HASH_UNIT_LEN,
    ProtocolError, ServerConnection, ServerEvent, SourceTag, Timestamp, decode_frame,
};

use ferry_server::memory::MemoryLimits;

use crate::pair::server::Server;
use crate::pair::{Outcome, Pair, Split, checkpoint_of, content, default_config};
use crate::raw::{feed_accepting as feed, frames};

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

/// A server machine after a `HELLO` offering up to `version`, accepting every upload.
fn server_at(version: u16) -> ServerConnection {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let mut input = MAGIC.to_vec();
    input.extend(frames(&[Frame::Hello {
        min_version: 1,
        max_version: version,
        token: b"",
    }]));
    let (_, error) = feed(&mut conn, &input);
    assert_eq!(error, None);
    let _ = sent(&mut conn);
    conn
}

/// Every frame the machine queued, by name, and the codes of its `ERROR`s.
fn sent(conn: &mut ServerConnection) -> (Vec<&'static str>, Vec<ErrorCode>) {
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    let mut rest = out.strip_prefix(&MAGIC[..]).unwrap_or(&out[..]);
    let (mut names, mut codes) = (Vec::new(), Vec::new());
    while let Ok(Some((frame, used))) = decode_frame(rest) {
        names.push(frame.name());
        if let Frame::Error { code, .. } = frame {
            codes.push(code);
        }
        rest = &rest[used..];
    }
    (names, codes)
}

fn data(bytes: &[u8]) -> Vec<u8> {
    let mut out = frames(&[Frame::Data {
        len: bytes.len() as u32,
    }]);
    out.extend_from_slice(bytes);
    out
}

/// The code of the server's `ERROR` that ended an upload: the server ends the connection
/// mid-stream, which the client reads as a refusal if it had sent its `DONE_SIZED` already.
fn ended_with(outcome: &Outcome) -> Option<ErrorCode> {
    match outcome {
        Outcome::Failed(ProtocolError::Peer { code, .. }) | Outcome::Refused(code) => Some(*code),
        _ => None,
    }
}

#[test]
fn streamed_uploads_of_boundary_sizes_are_stored_byte_for_byte() {
    let unit = HASH_UNIT_LEN as usize;
    let mut pair = Pair::new(Split::Random {
        seed: 3,
        max: 70_000,
    });
    for (i, size) in [0, 1, unit - 1, unit, unit + 1, 3 * 1024 * 1024 + 5]
        .into_iter()
        .enumerate()
    {
        let name = format!("streamed/{i}");
        let bytes = content(size, 100 + i as u64);
        assert_eq!(
            pair.put_streamed(&name, &bytes, false),
            Outcome::Stored { offset: 0 },
            "size {size}"
        );
        assert_eq!(pair.server.stored(&name), Some(bytes), "size {size}");
    }
    assert_eq!(pair.server.store.uploads_under_way(), 0);
}

#[test]
fn a_streamed_upload_over_an_existing_name_needs_overwrite() {
    let mut pair = Pair::new(Split::Whole);
    let old = content(10, 1);
    let new = content(20, 2);
    assert_eq!(
        pair.put("x", &old, false, false),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(
        pair.put_streamed("x", &new, false),
        Outcome::Refused(ErrorCode::AlreadyExists)
    );
    assert_eq!(pair.server.stored("x"), Some(old));
    assert_eq!(
        pair.put_streamed("x", &new, true),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(pair.server.stored("x"), Some(new));
}

#[test]
fn a_stream_past_the_file_limit_is_ended_and_nothing_is_kept() {
    let mut config = default_config();
    config.max_file_size = 100_000;
    let mut pair = Pair::with_config(Split::Whole, config);
    let outcome = pair.put_streamed("big", &content(300_000, 4), false);
    assert_eq!(
        ended_with(&outcome),
        Some(ErrorCode::TooLarge),
        "{outcome:?}"
    );
    assert_eq!(pair.server.stored("big"), None);
    assert_eq!(pair.server.store.bytes_held(), 0, "staged bytes left");
    assert_eq!(pair.server.store.uploads_under_way(), 0);
}

#[test]
fn a_stream_exactly_at_the_file_limit_is_stored() {
    let mut config = default_config();
    config.max_file_size = 100_000;
    let mut pair = Pair::with_config(Split::Whole, config);
    let bytes = content(100_000, 5);
    assert_eq!(
        pair.put_streamed("edge", &bytes, false),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(pair.server.stored("edge"), Some(bytes));
}

/// A pair whose store holds at most `limits`' bytes.
fn pair_with(limits: MemoryLimits) -> Pair {
    let server = Server::with_limits(default_config(), limits, Timestamp::ZERO);
    Pair::with_server(Split::Whole, server)
}

#[test]
fn a_stream_past_the_quota_or_the_disk_is_ended_and_nothing_is_kept() {
    let quota = MemoryLimits {
        quota: Some(150_000),
        ..MemoryLimits::default()
    };
    let disk = MemoryLimits {
        capacity: Some(150_000),
        ..MemoryLimits::default()
    };
    for (limits, code) in [(quota, ErrorCode::OverQuota), (disk, ErrorCode::DiskFull)] {
        let mut pair = pair_with(limits);
        assert_eq!(
            pair.put_streamed("a", &content(100_000, 6), false),
            Outcome::Stored { offset: 0 }
        );
        let outcome = pair.put_streamed("b", &content(100_000, 7), false);
        assert_eq!(ended_with(&outcome), Some(code), "{outcome:?}");
        assert_eq!(pair.server.stored("b"), None);
        assert_eq!(pair.server.store.bytes_held(), 100_000, "only a's bytes");
        assert_eq!(pair.server.store.uploads_under_way(), 0);
    }
}

#[test]
fn a_stream_that_replaces_a_file_is_credited_its_bytes_against_the_quota() {
    let mut pair = pair_with(MemoryLimits {
        quota: Some(150_000),
        ..MemoryLimits::default()
    });
    assert_eq!(
        pair.put_streamed("a", &content(100_000, 6), false),
        Outcome::Stored { offset: 0 }
    );
    let new = content(120_000, 7);
    assert_eq!(
        pair.put_streamed("a", &new, true),
        Outcome::Stored { offset: 0 }
    );
    assert_eq!(pair.server.stored("a"), Some(new));
}

#[test]
fn a_cancelled_stream_leaves_nothing_to_resume() {
    let mut pair = Pair::new(Split::Whole);
    let bytes = content(3 * HASH_UNIT_LEN as usize, 8);
    let outcome = pair.put_streamed_with("c", &bytes, false, Some(2 * HASH_UNIT_LEN as usize));
    assert!(matches!(outcome, Outcome::Cancelled { .. }), "{outcome:?}");
    assert_eq!(pair.server.store.bytes_held(), 0);
    assert_eq!(pair.server.store.uploads_under_way(), 0);
    // The connection goes on.
    assert_eq!(
        pair.put_streamed("c", &bytes, false),
        Outcome::Stored { offset: 0 }
    );
}

#[test]
fn the_client_declares_the_size_it_counted_in_done_sized() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    input.extend(frames(&[Frame::Welcome {
        version: PROTOCOL_VERSION,
    }]));
    let received = client.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, input.len());
    client.poll_event();
    client.put_streamed("s", true).unwrap();
    assert!(!client.can_pipeline(), "nothing goes before PUT_READY");
    let ready = frames(&[Frame::PutReady { offset: 0 }]);
    let received = client.handle_input(Timestamp::ZERO, &ready).unwrap();
    assert_eq!(received.consumed, ready.len());
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::PutReady { offset: 0 })
    );
    client.send_file_data(&[1; 1000]).unwrap();
    client.send_file_data(&[2; 234]).unwrap();
    let digest = Digest([5; 32]);
    client.finish_upload(digest).unwrap();
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    let mut rest = &out[MAGIC.len()..];
    let mut seen = Vec::new();
    while let Ok(Some((frame, used))) = decode_frame(rest) {
        seen.push(format!("{frame:?}"));
        rest = &rest[used..];
    }
    assert!(seen[1].contains("streamed: true") && seen[1].contains("size: 0"));
    assert_eq!(
        seen.last().unwrap(),
        &format!("{:?}", Frame::DoneSized { size: 1234, digest })
    );
}

#[test]
fn a_put_ready_past_byte_0_for_a_stream_is_a_violation() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    input.extend(frames(&[
        Frame::Welcome {
            version: PROTOCOL_VERSION,
        },
        Frame::PutReady { offset: 5 },
    ]));
    let received = client.handle_input(Timestamp::ZERO, &input).unwrap();
    client.poll_event();
    client.put_streamed("s", false).unwrap();
    let error = client.handle_input(Timestamp::ZERO, &input[received.consumed..]);
    assert!(
        matches!(error, Err(ProtocolError::UnexpectedFrame { .. })),
        "{error:?}"
    );
}

#[test]
fn a_client_connected_with_an_older_version_cannot_stream() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    input.extend(frames(&[Frame::Welcome {
        version: STREAMED_SINCE - 1,
    }]));
    let _ = client.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Connected {
            version: STREAMED_SINCE - 1
        })
    );
    assert!(matches!(
        client.put_streamed("s", false),
        Err(CommandError::WrongState { .. })
    ));
    assert!(client.is_idle(), "nothing was sent");
}

#[test]
fn a_streamed_put_under_an_older_version_is_a_violation() {
    let mut conn = server_at(STREAMED_SINCE - 1);
    let (_, error) = feed(&mut conn, &frames(&[streamed_put("s")]));
    assert!(
        matches!(error, Some(ProtocolError::UnexpectedFrame { .. })),
        "{error:?}"
    );
    assert_eq!(sent(&mut conn).1, vec![ErrorCode::UnexpectedFrame]);
}

#[test]
fn done_sized_with_another_size_than_the_bytes_sent_is_a_size_mismatch() {
    for declared in [0, 9, 11, u64::MAX] {
        let mut conn = server_at(PROTOCOL_VERSION);
        let mut input = frames(&[streamed_put("s")]);
        input.extend(data(&[3; 10]));
        input.extend(frames(&[Frame::DoneSized {
            size: declared,
            digest: Digest::of(&[3; 10]),
        }]));
        let (events, error) = feed(&mut conn, &input);
        assert_eq!(
            error,
            Some(ProtocolError::SizeMismatch { declared, sent: 10 }),
            "declared {declared}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ServerEvent::UploadVerified { .. })),
            "{events:?}"
        );
        assert_eq!(sent(&mut conn).1, vec![ErrorCode::SizeMismatch]);
    }
}

#[test]
fn done_sized_with_the_right_size_verifies_the_upload() {
    let mut conn = server_at(PROTOCOL_VERSION);
    let mut input = frames(&[streamed_put("s")]);
    input.extend(data(&[3; 10]));
    input.extend(data(&[4; 5]));
    let file = [[3; 10].as_slice(), &[4; 5]].concat();
    input.extend(frames(&[Frame::DoneSized {
        size: 15,
        digest: Digest::of(&file),
    }]));
    let (events, error) = feed(&mut conn, &input);
    assert_eq!(error, None);
    assert!(matches!(
        &events[..],
        [
            ServerEvent::PutRequested(request),
            ServerEvent::UploadVerified { size: 15, .. }
        ] if request.streamed && request.size == 0
    ));
    assert_eq!(sent(&mut conn).0, vec!["PUT_READY"]);
}

#[test]
fn a_stream_ends_only_with_done_sized_and_a_sized_upload_only_with_done() {
    let mut conn = server_at(PROTOCOL_VERSION);
    let mut input = frames(&[streamed_put("s")]);
    input.extend(data(&[3; 10]));
    input.extend(frames(&[Frame::Done {
        digest: Digest::of(&[3; 10]),
    }]));
    let (_, error) = feed(&mut conn, &input);
    assert!(
        matches!(
            error,
            Some(ProtocolError::UnexpectedFrame { frame: "DONE", .. })
        ),
        "{error:?}"
    );

    let mut conn = server_at(PROTOCOL_VERSION);
    let mut input = frames(&[Frame::Put {
        name: "s",
        size: 10,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: SourceTag::default(),
    }]);
    input.extend(data(&[3; 10]));
    input.extend(frames(&[Frame::DoneSized {
        size: 10,
        digest: Digest::of(&[3; 10]),
    }]));
    let (_, error) = feed(&mut conn, &input);
    assert!(
        matches!(
            error,
            Some(ProtocolError::UnexpectedFrame {
                frame: "DONE_SIZED",
                ..
            })
        ),
        "{error:?}"
    );
}

#[test]
fn a_streamed_upload_cannot_be_accepted_past_byte_0() {
    let mut conn = server_at(PROTOCOL_VERSION);
    let input = frames(&[streamed_put("s")]);
    let received = conn.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, input.len());
    assert!(matches!(
        conn.poll_event(),
        Some(ServerEvent::PutRequested(_))
    ));
    let past_0 = checkpoint_of(&content(HASH_UNIT_LEN as usize + 1, 9));
    assert_eq!(past_0.offset(), HASH_UNIT_LEN);
    let accepted = conn.accept_put(&past_0);
    assert!(
        matches!(accepted, Err(CommandError::TooMuchData { allowed: 0, .. })),
        "{accepted:?}"
    );
}
