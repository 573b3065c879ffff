//! The server machine where protocol versions differ: what it reads while it sends a download,
//! which version first takes an eager upload, how verified uploads wait for their commits'
//! answers, and what it asks of a refused eager upload's data that it drops.

use ferry_protocol::{
    CommandError, Digest, ErrorCode, Frame, HashCheckpoint, ProtocolError, ServerConnection,
    ServerEvent, SourceTag, Timestamp,
};

use crate::raw::{
    connected_server_at, data_then_done, feed_server, frames, frames_in, secs, sent_by_server,
};

#[test]
fn a_version_1_server_reads_a_ping_while_it_sends_a_download() {
    let mut conn = connected_server_at(1);
    let get = frames(&[Frame::Get {
        name: "f",
        offset: 0,
    }]);
    feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    conn.accept_get(10).unwrap();
    sent_by_server(&mut conn);
    // Version 1 has no pipelined requests to hold back: a frame is read at once.
    let ping = frames(&[Frame::Ping { nonce: 3 }]);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &ping).unwrap();
    assert_eq!(fed.consumed, ping.len());
    assert_eq!(
        frames_in(&sent_by_server(&mut conn)),
        [Frame::Pong { nonce: 3 }]
    );
}

#[test]
fn a_version_2_server_holds_a_request_back_while_it_sends_a_download() {
    let mut conn = connected_server_at(2);
    let get = frames(&[Frame::Get {
        name: "f",
        offset: 0,
    }]);
    feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    conn.accept_get(10).unwrap();
    let fed = feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    assert_eq!(
        fed.consumed, 0,
        "the next request waits for the download's end"
    );
}

#[test]
fn a_version_2_server_takes_an_eager_upload() {
    let mut conn = connected_server_at(2);
    let put = put_frame("f", 3, true);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &put).unwrap();
    assert!(
        matches!(fed.events[..], [ServerEvent::PutRequested { .. }]),
        "{:?}",
        fed.events
    );
}

/// A `PUT` (eager or not) of `size` bytes as `name`.
fn put_frame(name: &str, size: u64, eager: bool) -> Vec<u8> {
    frames(&[Frame::Put {
        name,
        size,
        overwrite: false,
        resume: false,
        eager,
        streamed: false,
        tag: SourceTag::default(),
    }])
}

/// A version-2 server that verified an eager upload of "abc" and has not answered it yet.
fn with_a_pending_commit() -> ServerConnection {
    let data = b"abc";
    let mut conn = connected_server_at(2);
    feed_server(&mut conn, Timestamp::ZERO, &put_frame("f", 3, true)).unwrap();
    conn.accept_put(&HashCheckpoint::start()).unwrap();
    let fed = feed_server(&mut conn, Timestamp::ZERO, &data_then_done(data)).unwrap();
    assert!(
        matches!(
            fed.events[..],
            [ServerEvent::UploadVerified { size: 3, .. }]
        ),
        "{:?}",
        fed.events
    );
    conn
}

#[test]
fn from_version_2_a_verified_upload_waits_as_a_pending_commit_and_in_version_1_as_a_decision() {
    let data = b"abc";
    let mut conn = with_a_pending_commit();
    assert_eq!(conn.pending_commits(), 1);
    conn.confirm().unwrap();
    assert_eq!(conn.pending_commits(), 0);
    assert_eq!(frames_in(&sent_by_server(&mut conn)), [Frame::Ack]);

    let mut conn = connected_server_at(1);
    feed_server(&mut conn, Timestamp::ZERO, &put_frame("f", 3, false)).unwrap();
    conn.accept_put(&HashCheckpoint::start()).unwrap();
    sent_by_server(&mut conn);
    feed_server(&mut conn, Timestamp::ZERO, &data_then_done(data)).unwrap();
    assert_eq!(conn.pending_commits(), 0);
    conn.confirm().unwrap();
    assert_eq!(frames_in(&sent_by_server(&mut conn)), [Frame::Ack]);
}

#[test]
fn while_a_commit_is_pending_no_deadline_runs_and_nothing_else_is_decided() {
    let mut conn = with_a_pending_commit();
    // The server owes the answer: the client's silence is no fault.
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(conn.handle_timeout(secs(1_000_000)), Ok(()));
    assert!(
        matches!(
            conn.accept_get(1),
            Err(CommandError::WrongState {
                state: "earlier uploads await the answer to their commit",
                ..
            })
        ),
        "a decision while a commit is pending"
    );
    assert!(matches!(
        conn.refuse_connection(ErrorCode::Busy, "busy"),
        Err(CommandError::WrongState { .. })
    ));
    assert_eq!(conn.pending_commits(), 1);
}

#[test]
fn refusing_a_pending_commit_answers_it_with_the_error_and_leaves_none() {
    let mut conn = with_a_pending_commit();
    sent_by_server(&mut conn);
    conn.refuse(ErrorCode::DiskFull, "full").unwrap();
    assert_eq!(conn.pending_commits(), 0);
    assert_eq!(
        frames_in(&sent_by_server(&mut conn)),
        [Frame::Error {
            code: ErrorCode::DiskFull,
            message: "full"
        }]
    );
    // With nothing pending the idle deadline runs again.
    assert!(conn.poll_timeout().is_some());
}

#[test]
fn while_a_commit_is_pending_eager_uploads_are_read_on_and_requests_wait() {
    let mut conn = with_a_pending_commit();
    let next = put_frame("g", 2, true);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &next).unwrap();
    assert_eq!(
        fed.consumed,
        next.len(),
        "an eager upload joins the next group"
    );
    assert!(
        matches!(fed.events[..], [ServerEvent::PutRequested { .. }]),
        "{:?}",
        fed.events
    );
    conn.accept_put(&HashCheckpoint::start()).unwrap();
    feed_server(&mut conn, Timestamp::ZERO, &data_then_done(b"de")).unwrap();
    assert_eq!(conn.pending_commits(), 2);
    // A download would be answered before the two commits: it waits in the input.
    let get = frames(&[Frame::Get {
        name: "g",
        offset: 0,
    }]);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &get).unwrap();
    assert_eq!((fed.consumed, fed.events.len()), (0, 0));
    // So does an eager upload with a bad name: its refusal would overtake them too.
    let bad = put_frame("../x", 1, true);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &bad).unwrap();
    assert_eq!(fed.consumed, 0);
}

/// A version-2 server that refused an eager upload of 10 bytes (a bad name) and drops its data.
fn dropping_a_refused_eager_upload() -> ServerConnection {
    let mut conn = connected_server_at(2);
    let put = put_frame("../x", 10, true);
    let fed = feed_server(&mut conn, Timestamp::ZERO, &put).unwrap();
    assert_eq!(fed.consumed, put.len());
    conn
}

#[test]
fn a_refused_eager_upload_must_still_send_exactly_its_declared_bytes() {
    let mut whole = frames(&[Frame::Data { len: 10 }]);
    whole.extend_from_slice(&[0; 10]);
    whole.extend(frames(&[Frame::Done {
        digest: Digest::of(b"anything"),
    }]));
    let mut conn = dropping_a_refused_eager_upload();
    let fed = feed_server(&mut conn, Timestamp::ZERO, &whole).unwrap();
    assert_eq!(fed.consumed, whole.len());
    assert!(fed.file_data.is_empty(), "the data is dropped");

    let mut short = frames(&[Frame::Data { len: 4 }]);
    short.extend_from_slice(&[0; 4]);
    short.extend(frames(&[Frame::Done {
        digest: Digest::of(b"anything"),
    }]));
    let mut conn = dropping_a_refused_eager_upload();
    assert_eq!(
        feed_server(&mut conn, Timestamp::ZERO, &short).unwrap_err(),
        ProtocolError::SizeMismatch {
            declared: 10,
            sent: 4
        }
    );

    let mut conn = dropping_a_refused_eager_upload();
    let first = frames(&[Frame::Data { len: 3 }]);
    let mut long = first.clone();
    long.extend_from_slice(&[0; 3]);
    long.extend(frames(&[Frame::Data { len: 12 }]));
    assert_eq!(
        feed_server(&mut conn, Timestamp::ZERO, &long).unwrap_err(),
        ProtocolError::SizeMismatch {
            declared: 10,
            sent: 15
        }
    );
}
