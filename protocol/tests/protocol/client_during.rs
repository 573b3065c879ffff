//! The client machine in the middle of a transfer: the frames that may come between a
//! download's data, an eager upload's answer before its data is all sent, and which silences
//! the client times out on and how it names them.

use ferry_protocol::limits::PROTOCOL_VERSION;
use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, Frame, HashCheckpoint, ProtocolError,
    SourceTag, Timestamp,
};

use crate::raw::{
    connected_client, connected_client_at, content, data_then_done, feed_client, frames, frames_in,
    secs, sent_by_client,
};

/// A connected client whose download of `file` the server has started (`GET_READY` read).
fn downloading(file: &[u8]) -> ClientConnection {
    let mut conn = connected_client();
    conn.get("f", HashCheckpoint::start()).unwrap();
    sent_by_client(&mut conn);
    let size = file.len() as u64;
    let fed = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::GetReady { size, offset: 0 }]),
    )
    .unwrap();
    assert_eq!(fed.events, [ClientEvent::GetReady { size, offset: 0 }]);
    conn
}

/// A client at the newest version that has sent the `PUT` of an eager upload of 100 bytes and
/// none of its data.
fn sending_eager() -> ClientConnection {
    let mut conn = connected_client_at(PROTOCOL_VERSION);
    conn.put_eager("f", 100, false, SourceTag::default())
        .unwrap();
    sent_by_client(&mut conn);
    conn
}

#[test]
fn a_ping_between_a_downloads_data_is_answered_and_the_download_goes_on() {
    let file = content(300);
    let mut conn = downloading(&file);
    let mut input = frames(&[Frame::Ping { nonce: 7 }]);
    input.extend(data_then_done(&file));
    let fed = feed_client(&mut conn, Timestamp::ZERO, &input).unwrap();
    assert_eq!(fed.file_data, file);
    assert_eq!(
        fed.events,
        [ClientEvent::GetVerified {
            digest: Digest::of(&file)
        }]
    );
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [Frame::Pong { nonce: 7 }]
    );
}

#[test]
fn a_pong_between_a_downloads_data_reaches_the_driver() {
    let file = content(300);
    let mut conn = downloading(&file);
    let mut input = frames(&[Frame::Pong { nonce: 9 }]);
    input.extend(data_then_done(&file));
    let fed = feed_client(&mut conn, Timestamp::ZERO, &input).unwrap();
    assert_eq!(
        fed.events,
        [
            ClientEvent::Pong { nonce: 9 },
            ClientEvent::GetVerified {
                digest: Digest::of(&file)
            }
        ]
    );
}

#[test]
fn an_error_in_the_middle_of_a_download_ends_it_with_the_servers_code_and_message() {
    let file = content(300);
    let mut conn = downloading(&file);
    let input = frames(&[Frame::Error {
        code: ErrorCode::StorageError,
        message: "disk gone",
    }]);
    let error = feed_client(&mut conn, Timestamp::ZERO, &input).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::Peer {
            code: ErrorCode::StorageError,
            message: "disk gone".into()
        }
    );
}

#[test]
fn an_unexpected_frame_while_an_upload_is_sent_names_that_state() {
    let mut conn = crate::raw::connected_client();
    conn.put("f", 10, false, false, SourceTag::default())
        .unwrap();
    feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::PutReady { offset: 0 }]),
    )
    .unwrap();
    let error = feed_client(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnexpectedFrame {
            frame: "ACK",
            state: "sending an upload"
        }
    );
}

#[test]
fn an_eager_upload_refused_before_its_data_is_sent_is_marked_refused() {
    let mut conn = sending_eager();
    assert!(!conn.upload_refused());
    let fed = feed_client(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::Error {
            code: ErrorCode::AlreadyExists,
            message: "exists",
        }]),
    )
    .unwrap();
    assert_eq!(
        fed.events,
        [ClientEvent::Refused {
            code: ErrorCode::AlreadyExists,
            message: "exists".into()
        }]
    );
    // The rest of its data still goes (the server drops it), and no ACK is owed for it.
    assert!(conn.upload_refused());
    conn.send_file_data(&[0; 100]).unwrap();
    conn.finish_upload(Digest::of(&[0; 100])).unwrap();
    assert!(conn.is_idle());
}

#[test]
fn an_ack_before_an_eager_uploads_data_is_all_sent_is_a_violation() {
    let mut conn = sending_eager();
    let error = feed_client(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap_err();
    assert!(
        matches!(error, ProtocolError::UnexpectedFrame { frame: "ACK", .. }),
        "{error:?}"
    );
}

#[test]
fn an_ack_for_the_eager_upload_before_the_one_being_sent_is_taken() {
    let mut conn = connected_client_at(PROTOCOL_VERSION);
    conn.put_eager("a", 3, false, SourceTag::default()).unwrap();
    conn.send_file_data(b"abc").unwrap();
    conn.finish_upload(Digest::of(b"abc")).unwrap();
    conn.put_eager("b", 100, false, SourceTag::default())
        .unwrap();
    sent_by_client(&mut conn);
    let fed = feed_client(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap();
    assert_eq!(fed.events, [ClientEvent::PutStored]);
    assert!(!conn.upload_refused());
}

#[test]
fn an_idle_client_never_times_out_on_its_own() {
    let mut conn = connected_client();
    let far = secs(100 * Config::default().idle_timeout.as_secs());
    assert_eq!(conn.handle_timeout(far), Ok(()));
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn a_silent_download_times_out_as_download_data() {
    let file = content(300);
    let mut conn = downloading(&file);
    let idle = Config::default().idle_timeout;
    assert_eq!(
        conn.handle_timeout(Timestamp::ZERO + idle),
        Err(ProtocolError::Timeout {
            what: "download data"
        })
    );
}

#[test]
fn an_eager_upload_needs_version_2_and_no_more() {
    let mut conn = connected_client_at(2);
    conn.put_eager("f", 1, false, SourceTag::default()).unwrap();
    let mut conn = connected_client_at(1);
    assert!(matches!(
        conn.put_eager("f", 1, false, SourceTag::default()),
        Err(ferry_protocol::CommandError::WrongState { .. })
    ));
}
