//! Protocol version 2: pipelined requests against ferryd's real session (over the in-memory
//! store), with the client machine reading the answers. PROTOCOL.md §5 "Pipelining".

use ferry_protocol::limits::{MAGIC, PROTOCOL_VERSION};
use ferry_protocol::{
    ClientConnection, ClientEvent, CommandError, Config, Digest, ErrorCode, Frame, HashCheckpoint,
    ProtocolError, SourceTag, Timestamp, decode_frame,
};

use crate::pair::content;
use crate::pair::server::{Server, default_config};

/// A client machine, ferryd's session, and the bytes on their way from the one to the other.
struct Wire {
    client: ClientConnection,
    server: Server,
    bytes: Vec<u8>,
}

impl Wire {
    /// Connected with the newest version (pipelining came with version 2).
    fn connected() -> Wire {
        let client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
        let server = Server::new(default_config(), Timestamp::ZERO);
        let mut wire = Wire {
            client,
            server,
            bytes: Vec::new(),
        };
        let events = wire.deliver(&[usize::MAX]);
        assert_eq!(
            events,
            vec![ClientEvent::Connected {
                version: PROTOCOL_VERSION
            }]
        );
        wire
    }

    fn take_client_frames(&mut self) {
        self.client.poll_transmit(&mut self.bytes);
    }

    /// An eager upload, its data and `DONE`, all at once.
    fn eager(&mut self, name: &str, data: &[u8]) {
        self.client
            .put_eager(name, data.len() as u64, false, SourceTag([7; 16]))
            .unwrap();
        for piece in data.chunks(1000) {
            self.client.send_file_data(piece).unwrap();
            self.take_client_frames();
            self.bytes.extend_from_slice(piece);
        }
        self.client.finish_upload(Digest::of(data)).unwrap();
        self.take_client_frames();
    }

    fn get(&mut self, name: &str) {
        self.client.get(name, HashCheckpoint::start()).unwrap();
        self.take_client_frames();
    }

    /// Hands the bytes on the wire to the server in pieces of the sizes in `splits` (cycled),
    /// then the server's answers to the client; returns the client's events, in order.
    fn deliver(&mut self, splits: &[usize]) -> Vec<ClientEvent> {
        self.take_client_frames();
        let bytes = std::mem::take(&mut self.bytes);
        let mut pos = 0;
        for size in splits.iter().cycle() {
            if pos >= bytes.len() {
                break;
            }
            let end = bytes.len().min(pos.saturating_add((*size).max(1)));
            self.server
                .receive(Timestamp::ZERO, bytes[pos..end].iter().copied());
            pos = end;
        }
        // What the session left unread (a request behind a download) once the output drained.
        let mut answers = Vec::new();
        loop {
            while self.server.transmit(&mut answers) {}
            if !self.server.receive(Timestamp::ZERO, []) {
                break;
            }
        }
        let mut events = Vec::new();
        let mut at = 0;
        while at < answers.len() {
            let received = self
                .client
                .handle_input(Timestamp::ZERO, &answers[at..])
                .expect("the server's answers are valid");
            at += received.consumed;
            let progressed = received.consumed > 0;
            while let Some(event) = self.client.poll_event() {
                events.push(event);
            }
            if !progressed && self.client.poll_event().is_none() {
                break;
            }
        }
        events
    }
}

fn refused(code: ErrorCode) -> impl Fn(&ClientEvent) -> bool {
    move |event| matches!(event, ClientEvent::Refused { code: c, .. } if *c == code)
}

/// Three eager uploads, the middle one over an existing name, then a download of the first:
/// the answers come in order, the refused one's data is dropped, and the others are stored.
fn window_with_a_refusal(splits: &[usize]) -> (Vec<ClientEvent>, Server) {
    let mut wire = Wire::connected();
    let (a, b, old_b, c) = (
        content(3000, 1),
        content(2500, 2),
        content(100, 3),
        content(4000, 4),
    );
    wire.eager("b", &old_b);
    assert_eq!(wire.deliver(&[usize::MAX]), vec![ClientEvent::PutStored]);
    wire.eager("a", &a);
    assert!(wire.client.can_pipeline());
    wire.eager("b", &b);
    wire.eager("c", &c);
    wire.get("a");
    assert_eq!(wire.client.in_flight(), 4);
    let events = wire.deliver(splits);
    assert_eq!(wire.server.stored("a"), Some(a));
    assert_eq!(
        wire.server.stored("b"),
        Some(old_b),
        "a refused upload changed the file"
    );
    assert_eq!(wire.server.stored("c"), Some(c));
    (events, wire.server)
}

#[test]
fn pipelined_answers_come_in_order_and_a_refused_eager_uploads_data_is_dropped() {
    let (events, _) = window_with_a_refusal(&[usize::MAX]);
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events[0], ClientEvent::PutStored);
    assert!(refused(ErrorCode::AlreadyExists)(&events[1]), "{events:?}");
    assert_eq!(events[2], ClientEvent::PutStored);
    assert!(matches!(
        events[3],
        ClientEvent::GetReady {
            size: 3000,
            offset: 0
        }
    ));
    assert_eq!(
        events[4],
        ClientEvent::GetVerified {
            digest: Digest::of(&content(3000, 1))
        }
    );
}

#[test]
fn a_window_split_anywhere_gives_the_same_answers_as_in_one_piece() {
    let (whole, whole_server) = window_with_a_refusal(&[usize::MAX]);
    for splits in [&[1][..], &[2, 3], &[7], &[1000, 1], &[4096], &[13, 1001, 5]] {
        let (events, server) = window_with_a_refusal(splits);
        assert_eq!(events, whole, "split {splits:?}");
        assert_eq!(server.sent, whole_server.sent, "split {splits:?}");
    }
}

#[test]
fn a_version_1_client_gets_version_1_and_an_eager_upload_from_it_is_a_violation() {
    let mut server = Server::new(default_config(), Timestamp::ZERO);
    let mut input = MAGIC.to_vec();
    Frame::Hello {
        min_version: 1,
        max_version: 1,
        token: b"",
    }
    .encode(&mut input);
    Frame::Put {
        name: "x",
        size: 1,
        overwrite: false,
        resume: false,
        eager: true,
        streamed: false,
        tag: SourceTag::default(),
    }
    .encode(&mut input);
    server.receive(Timestamp::ZERO, input);
    let mut out = Vec::new();
    while server.transmit(&mut out) {}
    let mut rest = out.strip_prefix(&MAGIC).expect("the server's magic");
    let mut frames = Vec::new();
    while let Ok(Some((frame, used))) = decode_frame(rest) {
        frames.push(format!("{frame:?}"));
        rest = &rest[used..];
    }
    assert_eq!(frames[0], "Welcome { version: 1 }");
    assert!(
        frames[1].contains("UnexpectedFrame") && frames[1].contains("eager"),
        "{frames:?}"
    );
    assert_eq!(server.stored("x"), None);
}

#[test]
fn against_a_version_1_server_the_client_sends_one_request_at_a_time() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    Frame::Welcome { version: 1 }.encode(&mut input);
    let received = client.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, input.len());
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Connected { version: 1 })
    );
    assert!(matches!(
        client.put_eager("x", 1, false, SourceTag::default()),
        Err(CommandError::WrongState { .. })
    ));
    client.get("x", HashCheckpoint::start()).unwrap();
    assert!(!client.can_pipeline());
    assert!(matches!(
        client.get("y", HashCheckpoint::start()),
        Err(CommandError::WrongState { .. })
    ));
}

#[test]
fn a_put_that_waits_for_its_go_ahead_stops_the_pipeline_until_it_comes() {
    let mut wire = Wire::connected();
    wire.client
        .put("big", 10, false, true, SourceTag::default())
        .unwrap();
    assert!(!wire.client.can_pipeline());
    assert!(matches!(
        wire.client.get("x", HashCheckpoint::start()),
        Err(CommandError::WrongState { .. })
    ));
    let events = wire.deliver(&[usize::MAX]);
    assert_eq!(events, vec![ClientEvent::PutReady { offset: 0 }]);
}

#[test]
fn an_eager_upload_cannot_be_cancelled_and_a_peer_that_cancels_one_breaks_the_connection() {
    let mut wire = Wire::connected();
    wire.client
        .put_eager("x", 10, false, SourceTag::default())
        .unwrap();
    assert!(matches!(
        wire.client.cancel_upload(),
        Err(CommandError::WrongState { .. })
    ));
    // Written by hand: the machine never sends it.
    let mut bytes = Vec::new();
    wire.client.poll_transmit(&mut bytes);
    Frame::Cancel.encode(&mut bytes);
    wire.server.receive(Timestamp::ZERO, bytes);
    let mut out = Vec::new();
    while wire.server.transmit(&mut out) {}
    let error = wire.client.handle_input(Timestamp::ZERO, &out);
    assert!(
        matches!(
            error,
            Err(ProtocolError::Peer {
                code: ErrorCode::UnexpectedFrame,
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(wire.server.stored("x"), None);
}

/// Version 3: moves pipeline with the other requests and are answered in order, each as it
/// would be alone (PROTOCOL.md §5, "Move").
#[test]
fn moves_in_a_window_are_answered_in_order_between_uploads_and_downloads() {
    let whole = |splits: &[usize]| {
        let mut wire = Wire::connected();
        let (a, b) = (content(3000, 1), content(500, 2));
        wire.eager("a", &a);
        wire.eager("b", &b);
        wire.client.move_file("a", "docs/a", false).unwrap();
        wire.get("docs/a");
        wire.client.move_file("b", "docs/a", false).unwrap();
        wire.client.move_file("b", "docs/a", true).unwrap();
        wire.client.move_file("gone", "x", false).unwrap();
        wire.client.move_file("docs", "papers", false).unwrap();
        assert_eq!(wire.client.in_flight(), 8);
        let events = wire.deliver(splits);
        assert_eq!(wire.server.stored("a"), None);
        assert_eq!(wire.server.stored("b"), None);
        assert_eq!(wire.server.stored("papers/a"), Some(b));
        (events, wire.server.sent)
    };
    let (events, sent) = whole(&[usize::MAX]);
    assert_eq!(events.len(), 9, "{events:?}");
    assert_eq!(
        events[..3],
        [
            ClientEvent::PutStored,
            ClientEvent::PutStored,
            ClientEvent::Moved
        ]
    );
    assert!(matches!(
        events[3],
        ClientEvent::GetReady {
            size: 3000,
            offset: 0
        }
    ));
    assert!(matches!(events[4], ClientEvent::GetVerified { .. }));
    assert!(refused(ErrorCode::AlreadyExists)(&events[5]), "{events:?}");
    assert_eq!(events[6], ClientEvent::Moved);
    assert!(refused(ErrorCode::NotFound)(&events[7]), "{events:?}");
    assert_eq!(events[8], ClientEvent::Moved);
    for splits in [&[1][..], &[7], &[13, 1001, 5]] {
        assert_eq!(
            whole(splits),
            (events.clone(), sent.clone()),
            "split {splits:?}"
        );
    }
}

#[test]
fn a_version_2_server_is_never_sent_a_move() {
    let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
    let mut input = MAGIC.to_vec();
    Frame::Welcome { version: 2 }.encode(&mut input);
    let received = client.handle_input(Timestamp::ZERO, &input).unwrap();
    assert_eq!(received.consumed, input.len());
    let mut before = Vec::new();
    client.poll_transmit(&mut before);
    assert_eq!(
        client.move_file("a", "b", false),
        Err(CommandError::ServerTooOld {
            operation: "MOVE (renaming files)",
            version: 2
        })
    );
    assert!(!client.wants_transmit(), "nothing was sent");
    assert!(client.is_idle());
}

#[test]
fn a_move_from_a_version_2_client_is_a_violation() {
    let mut server = Server::new(default_config(), Timestamp::ZERO);
    server.store_file("a", b"kept");
    let mut input = MAGIC.to_vec();
    Frame::Hello {
        min_version: 1,
        max_version: 2,
        token: b"",
    }
    .encode(&mut input);
    Frame::Move {
        from: "a",
        to: "b",
        overwrite: false,
    }
    .encode(&mut input);
    server.receive(Timestamp::ZERO, input);
    let mut out = Vec::new();
    while server.transmit(&mut out) {}
    let mut rest = out.strip_prefix(&MAGIC).expect("the server's magic");
    let mut frames = Vec::new();
    while let Ok(Some((frame, used))) = decode_frame(rest) {
        frames.push(format!("{frame:?}"));
        rest = &rest[used..];
    }
    assert_eq!(frames[0], "Welcome { version: 2 }");
    assert!(
        frames[1].contains("UnexpectedFrame") && frames[1].contains("MOVE"),
        "{frames:?}"
    );
    assert_eq!(server.stored("a"), Some(b"kept".to_vec()));
    assert_eq!(server.stored("b"), None);
}
