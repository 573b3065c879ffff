//! The client machine alone, fed raw frames as a server would send them: the edges of its
//! rules, each shown by what the driver sees and what goes back on the wire.

use ferry_protocol::limits::{
    DEFAULT_DATA_CHUNK, MAGIC, MAX_DATA_CHUNK, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use ferry_protocol::{
    ClientConnection, ClientEvent, CommandError, Config, Digest, ErrorCode, Frame, HASH_UNIT_LEN,
    HashCheckpoint, ListEntry, ProtocolError, SourceTag, Timestamp,
};

use crate::raw::{
    checkpoint_after, connected_client, content, feed_client, frames, frames_in, secs,
    sent_by_client,
};

const UNIT: usize = HASH_UNIT_LEN as usize;

/// A connected client whose upload of `size` bytes the server accepted from `offset`.
fn uploading(size: u64, offset: u64) -> ClientConnection {
    let mut conn = connected_client();
    conn.put("f", size, false, true, SourceTag::default())
        .unwrap();
    let fed = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::PutReady { offset }]),
    )
    .unwrap();
    assert_eq!(fed.events, [ClientEvent::PutReady { offset }]);
    sent_by_client(&mut conn);
    conn
}

/// `bytes` as one `DATA` frame.
fn data(bytes: &[u8]) -> Vec<u8> {
    let mut out = frames(&[Frame::Data {
        len: bytes.len() as u32,
    }]);
    out.extend_from_slice(bytes);
    out
}

#[test]
fn a_new_client_queues_its_magic_and_hello_and_waits_for_the_welcome() {
    let mut conn = ClientConnection::new(Config::default(), Timestamp::ZERO, b"token").unwrap();
    assert!(conn.wants_transmit());
    assert!(!conn.is_idle(), "no request before the WELCOME");
    assert!(!conn.is_closed());
    let mut out = vec![0xaa];
    let n = conn.poll_transmit(&mut out);
    assert_eq!(n, out.len() - 1);
    assert_eq!(out[0], 0xaa, "appended, not overwritten");
    assert!(out[1..].starts_with(&MAGIC));
    assert_eq!(
        frames_in(&out[1..]),
        [Frame::Hello {
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            token: b"token"
        }]
    );
    assert!(!conn.wants_transmit());
    assert_eq!(conn.poll_transmit(&mut out), 0);
}

#[test]
fn a_silent_server_times_the_handshake_out_at_its_deadline_and_not_before() {
    let config = Config::default();
    let mut conn = ClientConnection::new(config, Timestamp::ZERO, b"").unwrap();
    let deadline = Timestamp::ZERO + config.handshake_timeout;
    assert_eq!(conn.poll_timeout(), Some(deadline));
    let just_before = Timestamp::from_micros(deadline.as_micros() - 1);
    assert_eq!(conn.handle_timeout(just_before), Ok(()));
    assert_eq!(
        conn.handle_timeout(deadline),
        Err(ProtocolError::Timeout { what: "handshake" })
    );
    assert!(conn.is_closed());
}

#[test]
fn an_unexpected_frame_is_reported_with_the_state_the_client_was_in() {
    let mut conn = connected_client();
    let error = feed_client(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnexpectedFrame {
            frame: "ACK",
            state: "idle"
        }
    );
}

#[test]
fn the_client_answers_a_servers_ping_with_the_same_nonce() {
    let mut conn = connected_client();
    let fed = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Ping { nonce: 42 }]),
    )
    .unwrap();
    assert_eq!(fed.events, []);
    let sent = sent_by_client(&mut conn);
    assert_eq!(frames_in(&sent), [Frame::Pong { nonce: 42 }]);
    assert!(conn.is_idle());
}

#[test]
fn the_servers_pong_reaches_the_driver_as_an_event() {
    let mut conn = connected_client();
    conn.ping(9).unwrap();
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [Frame::Ping { nonce: 9 }]
    );
    let fed = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Pong { nonce: 9 }]),
    )
    .unwrap();
    assert_eq!(fed.events, [ClientEvent::Pong { nonce: 9 }]);
}

#[test]
fn the_reply_deadline_counts_from_the_servers_last_byte_and_an_empty_read_is_no_byte() {
    let idle = Config::default().idle_timeout;
    let mut conn = connected_client();
    conn.remove("f").unwrap();
    let ack = frames(&[Frame::Ack]);
    let fed = feed_client(&mut conn, secs(30), &ack[..2]).unwrap();
    assert_eq!(fed.consumed, 0, "an incomplete frame waits for more");
    assert_eq!(conn.poll_timeout(), Some(secs(30) + idle));
    let fed = feed_client(&mut conn, secs(50), &[]).unwrap();
    assert_eq!(fed.consumed, 0);
    assert_eq!(conn.poll_timeout(), Some(secs(30) + idle));
    assert_eq!(conn.handle_timeout(secs(89)), Ok(()));
    assert_eq!(
        conn.handle_timeout(secs(90)),
        Err(ProtocolError::Timeout { what: "reply" })
    );
}

#[test]
fn handle_input_returns_after_each_event_so_the_driver_sees_them_in_stream_order() {
    let mut conn = connected_client();
    conn.list("").unwrap();
    let first = frames(&[Frame::Entry {
        name: "a",
        size: 1,
        modified_ms: 2,
    }]);
    let mut input = first.clone();
    input.extend(frames(&[
        Frame::Entry {
            name: "b",
            size: 3,
            modified_ms: 4,
        },
        Frame::ListEnd,
    ]));
    let received = conn.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, first.len());
    assert_eq!(
        conn.poll_event(),
        Some(ClientEvent::ListEntry(ListEntry {
            name: "a".into(),
            size: 1,
            modified_ms: 2
        }))
    );
    assert_eq!(conn.poll_event(), None);
    let fed = feed_client(&mut conn, Timestamp::ZERO, &input[first.len()..]).unwrap();
    assert_eq!(fed.events.len(), 2);
    assert_eq!(fed.events[1], ClientEvent::ListEnd);
    assert!(conn.is_idle());
}

#[test]
fn once_the_server_has_closed_its_side_the_client_reads_no_more() {
    let mut conn = connected_client();
    assert_eq!(conn.handle_eof(Timestamp::ZERO), Ok(()));
    assert!(conn.is_closed());
    assert!(!conn.is_idle());
    assert_eq!(conn.error(), None, "a close between requests is no error");
    let ping = frames(&[Frame::Ping { nonce: 1 }]);
    let received = conn.handle_input(Timestamp::ZERO, &ping).unwrap();
    assert_eq!(received.consumed, 0);
    assert!(!conn.wants_transmit(), "the PING is not answered");
    assert_eq!(conn.ping(2), Err(CommandError::Closed));
    assert_eq!(conn.list(""), Err(CommandError::Closed));
}

#[test]
fn eof_while_awaiting_a_reply_is_an_error() {
    let mut conn = connected_client();
    conn.remove("f").unwrap();
    assert_eq!(
        conn.handle_eof(Timestamp::ZERO),
        Err(ProtocolError::UnexpectedEof {
            during: "awaiting the answer to REMOVE"
        })
    );
    assert!(conn.is_closed());
}

#[test]
fn a_fatal_error_is_sticky_and_every_command_then_reports_the_closed_connection() {
    let mut conn = connected_client();
    let error = feed_client(&mut conn, Timestamp::ZERO, &[0xee]).unwrap_err();
    assert_eq!(conn.error(), Some(&error));
    assert!(conn.is_closed());
    let sent = sent_by_client(&mut conn);
    assert!(matches!(
        frames_in(&sent)[..],
        [Frame::Error {
            code: ErrorCode::MalformedFrame,
            ..
        }]
    ));
    assert_eq!(
        conn.handle_input(Timestamp::ZERO, &frames(&[Frame::Ack])),
        Err(error.clone())
    );
    assert_eq!(conn.handle_eof(Timestamp::ZERO), Err(error.clone()));
    assert_eq!(conn.handle_timeout(secs(1000)), Err(error));
    assert_eq!(conn.ping(1), Err(CommandError::Closed));
    assert_eq!(
        conn.put("f", 1, false, false, SourceTag::default()),
        Err(CommandError::Closed)
    );
    assert_eq!(conn.send_file_data(b"x"), Err(CommandError::Closed));
    assert_eq!(
        conn.finish_upload(Digest::of(b"")),
        Err(CommandError::Closed)
    );
    assert_eq!(conn.cancel_upload(), Err(CommandError::Closed));
    assert!(!conn.wants_transmit());
}

#[test]
fn an_upload_may_be_asked_to_resume_at_exactly_its_end_and_not_past_it() {
    let size = 3 * HASH_UNIT_LEN;
    let mut conn = uploading(size, size);
    assert_eq!(conn.upload_remaining(), Some(0));
    let digest = Digest::of(&content(size as usize));
    conn.finish_upload(digest).unwrap();
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [Frame::Done { digest }]
    );

    let mut conn = connected_client();
    conn.put("f", 100, false, true, SourceTag::default())
        .unwrap();
    let error = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::PutReady { offset: 101 }]),
    )
    .unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnexpectedFrame {
            frame: "PUT_READY",
            state: "awaiting the answer to PUT"
        }
    );
}

#[test]
fn upload_remaining_counts_down_and_the_upload_finishes_only_when_it_is_zero() {
    assert_eq!(connected_client().upload_remaining(), None);
    let mut conn = uploading(10, 0);
    assert_eq!(conn.upload_remaining(), Some(10));
    conn.send_file_data(b"abcd").unwrap();
    assert_eq!(conn.upload_remaining(), Some(6));
    assert_eq!(
        conn.finish_upload(Digest::of(b"abcd")),
        Err(CommandError::WrongState {
            command: "finish the upload",
            state: "file bytes remain to be sent"
        })
    );
    assert_eq!(
        conn.send_file_data(b""),
        Err(CommandError::TooMuchData {
            given: 0,
            allowed: 6
        })
    );
    assert_eq!(
        conn.send_file_data(b"efghijk"),
        Err(CommandError::TooMuchData {
            given: 7,
            allowed: 6
        })
    );
    conn.send_file_data(b"efghij").unwrap();
    assert_eq!(conn.upload_remaining(), Some(0));
    let digest = Digest::of(b"abcdefghij");
    conn.finish_upload(digest).unwrap();
    assert_eq!(conn.upload_remaining(), None);
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [
            Frame::Data { len: 4 },
            Frame::Data { len: 6 },
            Frame::Done { digest }
        ]
    );
    let fed = feed_client(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap();
    assert_eq!(fed.events, [ClientEvent::PutStored]);
    assert!(conn.is_idle());
}

#[test]
fn one_data_frame_carries_at_most_the_chunk_limit() {
    let mut conn = uploading(2 * MAX_DATA_CHUNK as u64, 0);
    let chunk = vec![0u8; MAX_DATA_CHUNK + 1];
    assert_eq!(
        conn.send_file_data(&chunk),
        Err(CommandError::TooMuchData {
            given: MAX_DATA_CHUNK as u64 + 1,
            allowed: MAX_DATA_CHUNK as u64
        })
    );
    conn.send_file_data(&chunk[..MAX_DATA_CHUNK]).unwrap();
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [Frame::Data {
            len: MAX_DATA_CHUNK as u32
        }]
    );
}

#[test]
fn a_default_chunk_goes_in_one_data_frame_whose_header_is_under_a_thousandth_of_it() {
    let mut conn = uploading(2 * DEFAULT_DATA_CHUNK as u64, 0);
    let chunk = vec![0u8; DEFAULT_DATA_CHUNK];
    conn.send_file_data(&chunk).unwrap();
    let header = sent_by_client(&mut conn);
    assert_eq!(
        frames_in(&header),
        [Frame::Data {
            len: chunk.len() as u32
        }]
    );
    assert!(
        header.len() * 1000 <= chunk.len(),
        "{} header bytes",
        header.len()
    );
}

#[test]
fn a_cancelled_upload_sends_cancel_and_leaves_the_client_idle() {
    let mut conn = uploading(10, 0);
    conn.send_file_data(b"abc").unwrap();
    conn.cancel_upload().unwrap();
    assert!(conn.is_idle());
    assert_eq!(conn.upload_remaining(), None);
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [Frame::Data { len: 3 }, Frame::Cancel]
    );
}

#[test]
fn a_download_must_start_where_the_client_asked_and_not_past_the_end() {
    // asked from the start, offered from the second unit
    let mut conn = connected_client();
    conn.get("f", HashCheckpoint::start()).unwrap();
    let error = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::GetReady {
            size: 100_000,
            offset: HASH_UNIT_LEN,
        }]),
    )
    .unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnexpectedFrame {
            frame: "GET_READY",
            state: "awaiting the answer to GET"
        }
    );

    // asked from the second unit of a file that is now shorter than that
    let mut conn = connected_client();
    let held = checkpoint_after(&content(UNIT + 1));
    conn.get("f", held).unwrap();
    let error = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::GetReady {
            size: 100,
            offset: HASH_UNIT_LEN,
        }]),
    )
    .unwrap_err();
    assert!(
        matches!(error, ProtocolError::UnexpectedFrame { .. }),
        "{error:?}"
    );
}

#[test]
fn a_download_resumed_at_exactly_the_end_of_the_file_verifies_the_whole_file() {
    let file = content(3 * UNIT);
    let held = checkpoint_after(&[&file[..], &[0]].concat());
    assert_eq!(held.offset(), file.len() as u64);
    let mut conn = connected_client();
    conn.get("f", held).unwrap();
    let size = file.len() as u64;
    let input = frames(&[
        Frame::GetReady { size, offset: size },
        Frame::Done {
            digest: Digest::of(&file),
        },
    ]);
    let fed = feed_client(&mut conn, Timestamp::ZERO, &input).unwrap();
    assert_eq!(
        fed.events,
        [
            ClientEvent::GetReady { size, offset: size },
            ClientEvent::GetVerified {
                digest: Digest::of(&file)
            }
        ]
    );
}

#[test]
fn the_download_checkpoint_follows_the_data_and_survives_a_cut() {
    let mut conn = connected_client();
    assert_eq!(conn.download_checkpoint(), None);
    conn.get("f", HashCheckpoint::start()).unwrap();
    let bytes = content(2 * UNIT + 100);
    let mut input = frames(&[Frame::GetReady {
        size: 300_000,
        offset: 0,
    }]);
    input.extend(data(&bytes));
    let fed = feed_client(&mut conn, Timestamp::ZERO, &input).unwrap();
    assert_eq!(fed.file_data, bytes);
    let expected = checkpoint_after(&bytes);
    assert_eq!(expected.offset(), 2 * HASH_UNIT_LEN);
    assert_eq!(conn.download_checkpoint(), Some(expected.clone()));
    assert_eq!(
        conn.handle_eof(Timestamp::ZERO),
        Err(ProtocolError::UnexpectedEof {
            during: "receiving a download"
        })
    );
    assert_eq!(conn.download_checkpoint(), Some(expected));
}

#[test]
fn requests_wait_for_the_answer_to_the_one_before() {
    let mut conn = connected_client();
    conn.list("").unwrap();
    sent_by_client(&mut conn);
    assert!(!conn.is_idle());
    let busy = |result: Result<(), CommandError>| {
        assert!(
            matches!(
                result,
                Err(CommandError::WrongState {
                    state: "receiving a listing",
                    ..
                })
            ),
            "{result:?}"
        );
    };
    busy(conn.put("f", 1, false, false, SourceTag::default()));
    busy(conn.get("f", HashCheckpoint::start()));
    busy(conn.list(""));
    busy(conn.remove("f"));
    busy(conn.query("f", SourceTag::default()));
    busy(conn.send_file_data(b"x"));
    busy(conn.finish_upload(Digest::of(b"")));
    busy(conn.cancel_upload());
    assert!(!conn.wants_transmit());
}

#[test]
fn a_bad_name_is_refused_before_anything_is_sent() {
    let mut conn = connected_client();
    let bad = |result: Result<(), CommandError>| {
        assert!(
            matches!(result, Err(CommandError::BadName(_))),
            "{result:?}"
        );
    };
    bad(conn.put("../x", 1, false, false, SourceTag::default()));
    bad(conn.get("/etc/passwd", HashCheckpoint::start()));
    bad(conn.list("../"));
    bad(conn.remove("a//b"));
    bad(conn.query(".ferry-staging/x", SourceTag::default()));
    assert!(!conn.wants_transmit());
    assert!(conn.is_idle());
}
