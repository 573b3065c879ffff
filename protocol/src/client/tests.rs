use super::*;
use crate::limits::MAGIC;

fn connected_and_listing() -> ClientConnection {
    let mut conn =
        ClientConnection::new(Config::default(), Timestamp::ZERO, b"").expect("empty token");
    let mut input = MAGIC.to_vec();
    Frame::Welcome { version: 1 }.encode(&mut input);
    let received = conn.handle_input(Timestamp::ZERO, &input).expect("welcome");
    assert_eq!(received.consumed, input.len());
    assert_eq!(
        conn.poll_event(),
        Some(ClientEvent::Connected { version: 1 })
    );
    conn.list("").expect("idle");
    conn
}

fn error_frame(code: ErrorCode) -> Vec<u8> {
    let mut input = Vec::new();
    Frame::Error {
        code,
        message: "why",
    }
    .encode(&mut input);
    input
}

#[test]
fn a_fatal_error_crossing_a_request_closes_the_connection() {
    let mut conn = connected_and_listing();
    let input = error_frame(ErrorCode::Timeout);
    let result = conn.handle_input(Timestamp::ZERO, &input);
    assert!(
        matches!(
            result,
            Err(ProtocolError::Peer {
                code: ErrorCode::Timeout,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(conn.is_closed());
    assert_eq!(conn.poll_event(), None);
}

#[test]
fn a_refusal_of_a_request_keeps_the_connection() {
    let mut conn = connected_and_listing();
    let input = error_frame(ErrorCode::NotFound);
    let received = conn.handle_input(Timestamp::ZERO, &input).expect("refusal");
    assert_eq!(received.consumed, input.len());
    assert!(matches!(
        conn.poll_event(),
        Some(ClientEvent::Refused {
            code: ErrorCode::NotFound,
            ..
        })
    ));
    assert!(conn.is_idle());
}
