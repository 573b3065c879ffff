//! `MOVE` (version 3) at each machine, fed raw frames: the request, its answers, and the names
//! checked before the driver sees anything (PROTOCOL.md §5, "Move").

use ferry_protocol::limits::{MAGIC, PROTOCOL_VERSION};
use ferry_protocol::{
    ClientConnection, ClientEvent, CommandError, Config, ErrorCode, Frame, ServerConnection,
    ServerEvent, Timestamp,
};

use crate::raw::{
    feed_client, feed_server, frames, frames_in, magic_then, sent_by_client, sent_by_server,
};

/// A server that agreed on the newest version with its client.
fn connected_server() -> ServerConnection {
    let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
    let hello = Frame::Hello {
        min_version: 1,
        max_version: PROTOCOL_VERSION,
        token: b"",
    };
    feed_server(&mut conn, Timestamp::ZERO, &magic_then(&[hello])).unwrap();
    conn.accept_client().unwrap();
    sent_by_server(&mut conn);
    conn
}

/// A client the server welcomed with the newest version.
fn connected_client() -> ClientConnection {
    let mut conn = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let welcome = Frame::Welcome {
        version: PROTOCOL_VERSION,
    };
    feed_client(&mut conn, Timestamp::ZERO, &magic_then(&[welcome])).unwrap();
    sent_by_client(&mut conn);
    conn
}

fn move_frame<'a>(from: &'a str, to: &'a str, overwrite: bool) -> Frame<'a> {
    Frame::Move {
        from,
        to,
        overwrite,
    }
}

#[test]
fn a_move_is_a_decision_answered_by_ack_or_a_refusal() {
    let mut conn = connected_server();
    let fed = feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[move_frame("a", "b/c", true)]),
    )
    .unwrap();
    assert_eq!(
        fed.events,
        [ServerEvent::MoveRequested {
            from: "a".into(),
            to: "b/c".into(),
            overwrite: true
        }]
    );
    assert!(matches!(
        conn.reply_query(None, None, None),
        Err(CommandError::WrongState { .. })
    ));
    conn.confirm().unwrap();
    assert_eq!(frames_in(&sent_by_server(&mut conn)), [Frame::Ack]);

    feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[move_frame("a", "b", false)]),
    )
    .unwrap();
    conn.refuse(ErrorCode::NotFound, "no file named \"a\"")
        .unwrap();
    assert!(matches!(
        frames_in(&sent_by_server(&mut conn))[..],
        [Frame::Error {
            code: ErrorCode::NotFound,
            ..
        }]
    ));
}

#[test]
fn a_bad_name_on_either_side_is_refused_once_by_the_machine_and_the_connection_goes_on() {
    let mut conn = connected_server();
    for (from, to) in [("../a", "b"), ("a", "/etc/passwd"), ("..", ".ferry-meta/x")] {
        let fed = feed_server(
            &mut conn,
            Timestamp::ZERO,
            &frames(&[move_frame(from, to, false)]),
        )
        .unwrap();
        assert!(
            matches!(
                fed.events[..],
                [ServerEvent::RequestRefused {
                    code: ErrorCode::BadName,
                    ..
                }]
            ),
            "{from} -> {to}: {:?}",
            fed.events
        );
        let sent = sent_by_server(&mut conn);
        assert_eq!(frames_in(&sent).len(), 1, "one refusal for {from} -> {to}");
    }
    let fed = feed_server(
        &mut conn,
        Timestamp::ZERO,
        &frames(&[Frame::List { prefix: "" }]),
    )
    .unwrap();
    assert!(matches!(
        fed.events[..],
        [ServerEvent::ListRequested { .. }]
    ));
}

#[test]
fn the_client_hears_moved_or_refused_and_checks_both_names_before_sending() {
    let mut conn = connected_client();
    assert!(matches!(
        conn.move_file("a", "../b", false),
        Err(CommandError::BadName(_))
    ));
    assert!(matches!(
        conn.move_file("a\u{202e}", "b", false),
        Err(CommandError::BadName(_))
    ));
    assert!(!conn.wants_transmit());
    conn.move_file("a", "b", true).unwrap();
    assert_eq!(
        frames_in(&sent_by_client(&mut conn)),
        [move_frame("a", "b", true)]
    );
    let fed = feed_client(&mut conn, Timestamp::ZERO, &frames(&[Frame::Ack])).unwrap();
    assert_eq!(fed.events, [ClientEvent::Moved]);
    assert!(conn.is_idle());

    conn.move_file("a", "b", false).unwrap();
    let refusal = Frame::Error {
        code: ErrorCode::AlreadyExists,
        message: "\"b\" already exists",
    };
    let fed = feed_client(&mut conn, Timestamp::ZERO, &frames(&[refusal])).unwrap();
    assert!(matches!(
        fed.events[..],
        [ClientEvent::Refused {
            code: ErrorCode::AlreadyExists,
            ..
        }]
    ));
    assert!(conn.is_idle());
}

#[test]
fn a_version_3_server_still_welcomes_older_clients_with_their_version() {
    for (max, expected) in [(1, 1), (2, 2), (3, 3), (9, PROTOCOL_VERSION)] {
        let mut conn = ServerConnection::new(Config::default(), Timestamp::ZERO);
        let hello = Frame::Hello {
            min_version: 1,
            max_version: max,
            token: b"",
        };
        let fed = feed_server(&mut conn, Timestamp::ZERO, &magic_then(&[hello])).unwrap();
        assert!(
            matches!(fed.events[..], [ServerEvent::ClientHello { version, .. }] if version == expected),
            "{max}: {:?}",
            fed.events
        );
        conn.accept_client().unwrap();
        let sent = sent_by_server(&mut conn);
        let frames = frames_in(sent.strip_prefix(&MAGIC).unwrap());
        assert_eq!(frames, [Frame::Welcome { version: expected }]);
    }
}
