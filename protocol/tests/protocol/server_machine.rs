//! The server machine alone, fed raw frames: the edges of its rules (limits met exactly, guards
//! on every command, what it reads and when), each shown by what the client would receive.

use ferry_protocol::limits::{
    MAGIC, MAX_MESSAGE_LEN, MAX_NAME_LEN, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use ferry_protocol::{
    CommandError, Config, Digest, ErrorCode, Frame, HASH_UNIT_LEN, HashCheckpoint, ProtocolError,
    ServerConnection, ServerEvent, Timestamp,
};

use crate::raw::{
    checkpoint_after, connected_server, content, feed_server, frames, frames_in, magic_then, put,
    secs, sent_by_server,
};

const UNIT: usize = HASH_UNIT_LEN as usize;

/// A connected server that has accepted an upload of `size` bytes from offset 0.
fn receiving(size: u64) -> ServerConnection {
    let mut conn = connected_server();
    let fed = feed_server(&mut conn, Timestamp::ZERO, &frames(&[put("f", size)])).unwrap();
    assert!(matches!(fed.events[..], [ServerEvent::PutRequested(_)]));
    conn.accept_put(&HashCheckpoint::start()).unwrap();
    sent_by_server(&mut conn);
    conn
}

/// `len` bytes of file data in one `DATA` frame.
fn data(bytes: &[u8]) -> Vec<u8> {
    let mut out = frames(&[Frame::Data {
        len: bytes.len() as u32,
    }]);
    out.extend_from_slice(bytes);
    out
}

#[test]
fn an_unexpected_frame_is_reported_with_the_state_the_server_was_in() {
    let mut conn = connected_server();
    let error = feed_server(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnexpectedFrame {
            frame: "ACK",
            state: "idle"
        }
    );
    let sent = sent_by_server(&mut conn);
    assert!(matches!(
        frames_in(&sent)[..],
        [Frame::Error {
            code: ErrorCode::UnexpectedFrame,
            ..
        }]
    ));
}

#[test]
fn a_client_that_speaks_only_version_0_is_refused() {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let input = magic_then(&[Frame::Hello {
        min_version: 0,
        max_version: 0,
        token: b"",
    }]);
    let error = feed_server(&mut conn, Timestamp::ZERO, &input).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnsupportedVersion {
            ours_min: MIN_PROTOCOL_VERSION,
            ours_max: PROTOCOL_VERSION,
            theirs_min: 0,
            theirs_max: 0,
        }
    );
    assert!(conn.is_closed());
}

#[test]
fn the_idle_deadline_counts_from_the_clients_last_byte_and_an_empty_read_is_no_byte() {
    let idle = Config::default().idle_timeout;
    let mut conn = connected_server();
    // the first three bytes of a PING arrive at 30 s: the client is alive
    let ping = frames(&[Frame::Ping { nonce: 1 }]);
    let fed = feed_server(&mut conn, secs(30), &ping[..3]).unwrap();
    assert_eq!(fed.consumed, 0, "an incomplete frame waits for more");
    assert_eq!(conn.poll_timeout(), Some(secs(30) + idle));
    // a read that brought nothing at 50 s is not a sign of life
    let fed = feed_server(&mut conn, secs(50), &[]).unwrap();
    assert_eq!(fed.consumed, 0);
    assert_eq!(conn.poll_timeout(), Some(secs(30) + idle));
    assert_eq!(conn.handle_timeout(secs(89)), Ok(()));
    assert_eq!(
        conn.handle_timeout(secs(90)),
        Err(ProtocolError::Timeout {
            what: "next request"
        })
    );
}

#[test]
fn a_refused_name_is_quoted_by_its_first_128_characters_only() {
    let name = "n".repeat(MAX_NAME_LEN + 1);
    let mut conn = connected_server();
    let fed = feed_server(&mut conn, Timestamp::ZERO, &frames(&[put(&name, 1)])).unwrap();
    let [
        ServerEvent::RequestRefused {
            code: ErrorCode::BadName,
            message,
        },
    ] = &fed.events[..]
    else {
        panic!("{:?}", fed.events);
    };
    let shown = format!("{:?}", "n".repeat(MAX_NAME_LEN / 8));
    assert!(message.contains(&shown), "{message}");
    assert!(
        !message.contains(&"n".repeat(MAX_NAME_LEN / 8 + 1)),
        "{message}"
    );
}

/// PROTOCOL.md §6: "Name fields up to 4096 bytes decode, so that an over-long name is refused
/// as a bad name and the connection stays usable".
#[test]
fn a_name_field_of_4096_bytes_is_refused_as_a_bad_name_not_a_malformed_frame() {
    let name = "n".repeat(4096);
    let mut conn = connected_server();
    let fed = feed_server(&mut conn, Timestamp::ZERO, &frames(&[put(&name, 1)])).unwrap();
    assert!(
        matches!(
            fed.events[..],
            [ServerEvent::RequestRefused {
                code: ErrorCode::BadName,
                ..
            }]
        ),
        "{:?}",
        fed.events
    );
    assert!(!conn.is_closed());
}

#[test]
fn handle_input_returns_after_each_event_so_the_driver_sees_them_in_stream_order() {
    let mut conn = connected_server();
    let refused = frames(&[put("../x", 1)]);
    let mut input = refused.clone();
    input.extend(frames(&[Frame::Ping { nonce: 5 }]));
    let received = conn.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, refused.len(), "stops after the refusal");
    assert!(matches!(
        conn.poll_event(),
        Some(ServerEvent::RequestRefused { .. })
    ));
    assert_eq!(conn.poll_event(), None);
    let sent = sent_by_server(&mut conn);
    assert!(
        !frames_in(&sent)
            .iter()
            .any(|frame| matches!(frame, Frame::Pong { .. })),
        "the PING after it is not read yet"
    );
}

#[test]
fn while_a_request_awaits_its_decision_no_further_input_is_read() {
    let mut conn = connected_server();
    let request = frames(&[put("f", 3)]);
    let mut input = request.clone();
    input.extend(frames(&[Frame::Ping { nonce: 7 }]));
    let fed = feed_server(&mut conn, Timestamp::ZERO, &input).unwrap();
    assert_eq!(fed.consumed, request.len());
    let rest = &input[fed.consumed..];
    let received = conn.handle_input(Timestamp::ZERO, rest).unwrap();
    assert_eq!(received.consumed, 0, "nothing read before the decision");
    assert!(!conn.wants_transmit(), "the PING is not answered yet");

    conn.accept_put(&HashCheckpoint::start()).unwrap();
    let fed = feed_server(&mut conn, Timestamp::ZERO, rest).unwrap();
    assert_eq!(fed.consumed, rest.len());
    let sent = sent_by_server(&mut conn);
    assert_eq!(
        frames_in(&sent),
        [Frame::PutReady { offset: 0 }, Frame::Pong { nonce: 7 }]
    );
}

#[test]
fn once_the_client_has_closed_its_side_the_server_reads_no_more() {
    let mut conn = connected_server();
    assert!(!conn.is_closed());
    assert_eq!(conn.handle_eof(Timestamp::ZERO), Ok(()));
    assert!(conn.is_closed());
    assert_eq!(conn.error(), None, "a close between requests is no error");
    assert!(!conn.wants_transmit(), "nothing to tell a client that left");
    let ping = frames(&[Frame::Ping { nonce: 1 }]);
    let received = conn.handle_input(Timestamp::ZERO, &ping).unwrap();
    assert_eq!(received.consumed, 0);
    assert!(!conn.wants_transmit());
    assert_eq!(conn.accept_client(), Err(CommandError::Closed));
}

#[test]
fn eof_in_the_middle_of_an_upload_fails_quietly_and_keeps_the_upload_resumable() {
    let mut conn = receiving(200_000);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &data(&content(100_000))).unwrap();
    assert_eq!(fed.file_data, content(100_000));
    assert_eq!(
        conn.handle_eof(Timestamp::ZERO),
        Err(ProtocolError::UnexpectedEof {
            during: "in the middle of an upload"
        })
    );
    assert!(conn.is_closed());
    assert!(
        !conn.wants_transmit(),
        "no ERROR is sent to a client that has gone"
    );
    assert_eq!(
        conn.upload_checkpoint().map(|c| c.offset()),
        Some(HASH_UNIT_LEN)
    );
}

#[test]
fn the_upload_checkpoint_follows_the_whole_units_received_so_far() {
    let mut conn = receiving(300_000);
    assert_eq!(conn.upload_checkpoint(), Some(HashCheckpoint::start()));
    let bytes = content(2 * UNIT + 100);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &data(&bytes)).unwrap();
    assert_eq!(fed.file_data, bytes);
    assert_eq!(conn.upload_checkpoint(), Some(checkpoint_after(&bytes)));
    assert_eq!(
        conn.upload_checkpoint().map(|c| c.offset()),
        Some(2 * HASH_UNIT_LEN)
    );
}

#[test]
fn a_peers_error_frame_is_not_answered_with_one() {
    let mut conn = connected_server();
    let error = feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Error {
            code: ErrorCode::ShuttingDown,
            message: "bye",
        }]),
    )
    .unwrap_err();
    assert_eq!(
        error,
        ProtocolError::Peer {
            code: ErrorCode::ShuttingDown,
            message: "bye".into()
        }
    );
    assert!(conn.is_closed());
    assert!(!conn.wants_transmit());
}

#[test]
fn poll_transmit_hands_over_every_queued_byte_and_says_how_many() {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    assert!(conn.wants_transmit(), "the magic is queued at once");
    let mut out = vec![0xaa];
    assert_eq!(conn.poll_transmit(&mut out), MAGIC.len());
    assert_eq!(out[0], 0xaa, "appended, not overwritten");
    assert_eq!(out[1..], MAGIC);
    assert!(!conn.wants_transmit());
    assert_eq!(conn.poll_transmit(&mut out), 0);
    assert_eq!(out.len(), 1 + MAGIC.len());
}

#[test]
fn a_connections_debug_output_counts_its_queues_instead_of_dumping_them() {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let shown = format!("{conn:?}");
    assert!(shown.contains("closed: false"), "{shown}");
    assert!(shown.contains("queued_events: 0"), "{shown}");
    assert!(
        shown.contains(&format!("queued_bytes: {}", MAGIC.len())),
        "{shown}"
    );
    let input = magic_then(&[crate::raw::hello()]);
    let _ = conn.handle_input(Timestamp::ZERO, &input).unwrap();
    let shown = format!("{conn:?}");
    assert!(shown.contains("queued_events: 1"), "{shown}");
    conn.refuse_connection(ErrorCode::Busy, "").unwrap();
    assert!(format!("{conn:?}").contains("closed: true"));
}

#[test]
fn download_remaining_counts_down_as_data_is_framed() {
    let mut conn = connected_server();
    assert_eq!(conn.download_remaining(), None);
    let get = frames(&[Frame::Get {
        name: "f",
        offset: 0,
    }]);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    assert!(matches!(
        fed.events[..],
        [ServerEvent::GetRequested { offset: 0, .. }]
    ));
    conn.accept_get(10).unwrap();
    assert_eq!(conn.download_remaining(), Some(10));
    conn.send_file_data(b"abcd").unwrap();
    assert_eq!(conn.download_remaining(), Some(6));
    conn.send_file_data(b"efghij").unwrap();
    assert_eq!(conn.download_remaining(), Some(0));
    let digest = Digest::of(b"abcdefghij");
    conn.finish_download(digest).unwrap();
    assert_eq!(conn.download_remaining(), None);
    let sent = sent_by_server(&mut conn);
    assert_eq!(
        frames_in(&sent),
        [
            Frame::GetReady {
                size: 10,
                offset: 0
            },
            Frame::Data { len: 4 },
            Frame::Data { len: 6 },
            Frame::Done { digest },
        ]
    );
}

#[test]
fn a_download_cannot_finish_before_every_byte_was_framed() {
    let mut conn = connected_server();
    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Get {
            name: "f",
            offset: 0,
        }]),
    )
    .unwrap();
    conn.accept_get(10).unwrap();
    conn.send_file_data(b"abcd").unwrap();
    sent_by_server(&mut conn);
    assert_eq!(
        conn.finish_download(Digest::of(b"abcd")),
        Err(CommandError::WrongState {
            command: "finish the download",
            state: "file bytes remain to be sent"
        })
    );
    assert!(!conn.wants_transmit(), "no DONE was sent");
    assert_eq!(conn.download_remaining(), Some(6));
}

#[test]
fn a_sender_cannot_frame_an_empty_chunk_or_more_than_is_left() {
    let mut conn = connected_server();
    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Get {
            name: "f",
            offset: 0,
        }]),
    )
    .unwrap();
    conn.accept_get(10).unwrap();
    sent_by_server(&mut conn);
    assert_eq!(
        conn.send_file_data(b""),
        Err(CommandError::TooMuchData {
            given: 0,
            allowed: 10
        })
    );
    assert_eq!(
        conn.send_file_data(&[0; 11]),
        Err(CommandError::TooMuchData {
            given: 11,
            allowed: 10
        })
    );
    assert!(!conn.wants_transmit());
    assert_eq!(conn.send_file_data(&[0; 10]), Ok(()));
}

#[test]
fn an_upload_cannot_resume_past_the_end_of_its_file() {
    let mut conn = connected_server();
    feed_server(&mut conn, Timestamp::ZERO, &frames(&[put("f", 1000)])).unwrap();
    let past_the_end = checkpoint_after(&content(UNIT + 1));
    assert_eq!(past_the_end.offset(), HASH_UNIT_LEN);
    assert_eq!(
        conn.accept_put(&past_the_end),
        Err(CommandError::TooMuchData {
            given: HASH_UNIT_LEN,
            allowed: 1000
        })
    );
    assert!(!conn.wants_transmit(), "no PUT_READY was sent");
    assert_eq!(conn.upload_checkpoint(), None);
    conn.refuse(ErrorCode::StorageError, "the partial upload is damaged")
        .expect("the request still awaits its decision");
}

#[test]
fn an_upload_may_resume_at_exactly_the_end_of_its_file() {
    let file = content(3 * UNIT);
    let mut conn = connected_server();
    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[put("f", file.len() as u64)]),
    )
    .unwrap();
    let held = checkpoint_after(&[&file[..], &[0]].concat());
    assert_eq!(held.offset(), file.len() as u64);
    conn.accept_put(&held).unwrap();
    let fed = feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Done {
            digest: Digest::of(&file),
        }]),
    )
    .unwrap();
    assert_eq!(
        fed.events,
        [ServerEvent::UploadVerified {
            digest: Digest::of(&file),
            size: file.len() as u64
        }]
    );
    let sent = sent_by_server(&mut conn);
    assert_eq!(
        frames_in(&sent),
        [Frame::PutReady {
            offset: file.len() as u64
        }]
    );
}

#[test]
fn a_resumed_upload_counts_a_size_mismatch_from_where_it_resumed() {
    let size = UNIT as u64 + 1000;
    let held = checkpoint_after(&content(UNIT + 1));

    // too much: 1001 bytes where 1000 are left
    let mut conn = connected_server();
    feed_server(&mut conn, Timestamp::ZERO, &frames(&[put("f", size)])).unwrap();
    conn.accept_put(&held).unwrap();
    let error = feed_server(&mut conn, Timestamp::ZERO, &data(&[1; 1001])).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::SizeMismatch {
            declared: 1000,
            sent: 1001
        }
    );

    // too little: DONE after 600 of the 1000 bytes left
    let mut conn = connected_server();
    feed_server(&mut conn, Timestamp::ZERO, &frames(&[put("f", size)])).unwrap();
    conn.accept_put(&held).unwrap();
    let mut input = data(&[1; 600]);
    input.extend(frames(&[Frame::Done {
        digest: Digest::of(b""),
    }]));
    let error = feed_server(&mut conn, Timestamp::ZERO, &input).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::SizeMismatch {
            declared: 1000,
            sent: 600
        }
    );
}

#[test]
fn a_download_cannot_start_past_the_end_of_its_file() {
    let mut conn = connected_server();
    let get = frames(&[Frame::Get {
        name: "f",
        offset: HASH_UNIT_LEN,
    }]);
    feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    assert_eq!(
        conn.accept_get(100),
        Err(CommandError::TooMuchData {
            given: HASH_UNIT_LEN,
            allowed: 100
        })
    );
    assert!(!conn.wants_transmit(), "no GET_READY was sent");
    conn.refuse(ErrorCode::NotFound, "changed since")
        .expect("the request still awaits its decision");
}

#[test]
fn a_download_may_start_at_exactly_the_end_of_its_file() {
    let mut conn = connected_server();
    let get = frames(&[Frame::Get {
        name: "f",
        offset: HASH_UNIT_LEN,
    }]);
    feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    conn.accept_get(HASH_UNIT_LEN).unwrap();
    assert_eq!(conn.download_remaining(), Some(0));
    let digest = Digest::of(&content(UNIT));
    conn.finish_download(digest).unwrap();
    let sent = sent_by_server(&mut conn);
    assert_eq!(
        frames_in(&sent),
        [
            Frame::GetReady {
                size: HASH_UNIT_LEN,
                offset: HASH_UNIT_LEN
            },
            Frame::Done { digest }
        ]
    );
}

#[test]
fn a_listing_entry_name_may_be_as_long_as_a_name_and_no_longer() {
    let mut conn = connected_server();
    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::List { prefix: "" }]),
    )
    .unwrap();
    let longest = "n".repeat(MAX_NAME_LEN);
    conn.send_list_entry(&longest, 1, 2).unwrap();
    let too_long = "n".repeat(MAX_NAME_LEN + 1);
    assert_eq!(
        conn.send_list_entry(&too_long, 1, 2),
        Err(CommandError::TooLong {
            field: "name",
            len: MAX_NAME_LEN + 1,
            max: MAX_NAME_LEN
        })
    );
    conn.finish_list().unwrap();
    let sent = sent_by_server(&mut conn);
    assert_eq!(
        frames_in(&sent),
        [
            Frame::Entry {
                name: &longest,
                size: 1,
                modified_ms: 2
            },
            Frame::ListEnd
        ]
    );
}

#[test]
fn commands_that_do_not_fit_the_state_are_refused_and_send_nothing() {
    let mut conn = connected_server();
    let wrong = |result: Result<(), CommandError>| {
        assert!(
            matches!(result, Err(CommandError::WrongState { state: "idle", .. })),
            "{result:?}"
        );
    };
    wrong(conn.accept_client());
    wrong(conn.accept_put(&HashCheckpoint::start()));
    wrong(conn.accept_get(0));
    wrong(conn.send_file_data(b"x"));
    wrong(conn.finish_download(Digest::of(b"")));
    wrong(conn.send_list_entry("a", 1, 2));
    wrong(conn.finish_list());
    wrong(conn.reply_query(None, None, None));
    wrong(conn.confirm());
    wrong(conn.refuse(ErrorCode::NotFound, "no"));
    assert!(!conn.wants_transmit());
    assert!(!conn.is_closed());
}

#[test]
fn each_decision_is_taken_only_by_its_own_commands() {
    // a HELLO awaits accept_client or refuse_connection
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &magic_then(&[crate::raw::hello()]),
    )
    .unwrap();
    sent_by_server(&mut conn);
    for result in [
        conn.refuse(ErrorCode::Busy, "no"),
        conn.accept_put(&HashCheckpoint::start()),
        conn.accept_get(0),
        conn.finish_list(),
        conn.reply_query(None, None, None),
        conn.confirm(),
    ] {
        assert!(
            matches!(result, Err(CommandError::WrongState { .. })),
            "{result:?}"
        );
    }
    assert!(!conn.wants_transmit());
    conn.accept_client().unwrap();

    // a listing awaits entries and its end, not another request's answer
    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::List { prefix: "" }]),
    )
    .unwrap();
    sent_by_server(&mut conn);
    for result in [
        conn.accept_client(),
        conn.accept_put(&HashCheckpoint::start()),
        conn.accept_get(0),
        conn.reply_query(None, None, None),
        conn.confirm(),
    ] {
        assert!(
            matches!(result, Err(CommandError::WrongState { .. })),
            "{result:?}"
        );
    }
    assert!(!conn.wants_transmit());
    conn.finish_list().unwrap();

    // a query awaits its answer, not a listing's
    let query = frames(&[Frame::Query {
        name: "f",
        tag: Default::default(),
    }]);
    feed_server(&mut conn, Timestamp::ZERO, &query).unwrap();
    sent_by_server(&mut conn);
    for result in [conn.send_list_entry("a", 1, 2), conn.finish_list()] {
        assert!(
            matches!(result, Err(CommandError::WrongState { .. })),
            "{result:?}"
        );
    }
    assert!(!conn.wants_transmit());
}

#[test]
fn the_whole_connection_cannot_be_refused_mid_upload_but_can_be_aborted() {
    let mut conn = receiving(10);
    assert_eq!(
        conn.refuse_connection(ErrorCode::Busy, "busy"),
        Err(CommandError::WrongState {
            command: "refuse the connection",
            state: "receiving an upload"
        })
    );
    assert!(!conn.is_closed());
    assert!(!conn.wants_transmit());
    conn.abort(ErrorCode::ShuttingDown, "shutting down");
    assert!(conn.is_closed());
}

#[test]
fn an_over_long_error_message_is_cut_at_a_character_boundary_within_its_limit() {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    // 'é' is two bytes: the limit falls in the middle of one
    let message = format!("a{}", "é".repeat(MAX_MESSAGE_LEN));
    conn.refuse_connection(ErrorCode::Busy, &message).unwrap();
    let sent = sent_by_server(&mut conn);
    let [Frame::Error { code, message: cut }] = frames_in(&sent)[..] else {
        panic!("not one ERROR frame");
    };
    assert_eq!(code, ErrorCode::Busy);
    assert_eq!(cut.len(), MAX_MESSAGE_LEN - 1);
    assert!(message.starts_with(cut));
}
