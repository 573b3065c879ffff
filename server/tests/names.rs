//! Hostile names: every way out of the storage root, and every name that would display as
//! something else (PROTOCOL.md §6), is refused with `BadName` before a byte is written, and the
//! connection stays usable.

use ferry_protocol::limits::{MAX_NAME_COMPONENT_LEN, MAX_NAME_LEN};
use ferry_protocol::{ErrorCode, Frame};

use crate::support::{RawClient, Reply, TestServer, snapshot, tag};

fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "..",
        "../escape",
        "a/../../escape",
        "./a",
        "/etc/passwd",
        "/tmp/ferry-escape",
        "a\0b",
        "nul\0",
        "line\nfeed",
        "bell\u{7}",
        "del\u{7f}",
        "C:\\Windows\\evil",
        "C:/Windows/evil",
        "c:evil",
        "\\\\server\\share\\x",
        "a\\..\\..\\b",
        "a//b",
        "trailing/",
        ".ferry-staging/x",
        ".ferry-meta/x",
        ".Ferry-tls/key.pem",
        ".FERRY-STAGING/x",
        "cafe\u{301}",
        "a\u{202E}gpj.exe",
        "zero\u{200B}width",
        "bom\u{FEFF}",
        "line\u{2028}separator",
        "a:b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("x".repeat(MAX_NAME_LEN + 1));
    names.push("y".repeat(4000));
    names.push(format!("a/{}", "z".repeat(MAX_NAME_COMPONENT_LEN + 1)));
    names.push(vec!["d"; 40].join("/"));
    names
}

#[test]
fn traversal_names_are_refused_and_nothing_is_written() {
    let server = TestServer::start(|_| {});
    let outside = server.dir.path().to_path_buf();
    let before = snapshot(&outside);
    let mut raw = RawClient::connect(server.addr);
    for name in hostile_names() {
        raw.send(&Frame::Put {
            name: &name,
            size: 10,
            overwrite: true,
            resume: false,
            eager: false,
            streamed: false,
            tag: tag(1),
        });
        match raw.recv() {
            Reply::Error(ErrorCode::BadName, message) => {
                assert!(message.contains("bad name"), "{message}")
            }
            other => panic!("PUT {name:?}: expected BadName, got {other:?}"),
        }
    }
    // Still usable after all those refusals.
    raw.send(&Frame::List { prefix: "" });
    assert_eq!(raw.recv(), Reply::Other("LIST_END"));
    assert_eq!(
        snapshot(&outside),
        before,
        "nothing was written in or around the root"
    );
}

/// Sends a `PUT` of `name` by hand and returns the `BadName` message the server answers with.
fn bad_name_message(raw: &mut RawClient, name: &str) -> String {
    raw.send(&Frame::Put {
        name,
        size: 4,
        overwrite: true,
        resume: false,
        eager: false,
        streamed: false,
        tag: tag(1),
    });
    match raw.recv() {
        Reply::Error(ErrorCode::BadName, message) => message,
        other => panic!("PUT {name:?}: expected BadName, got {other:?}"),
    }
}

#[test]
fn nfd_bidi_and_invisible_names_get_an_error_frame_saying_why_and_nothing_is_stored() {
    let server = TestServer::start(|_| {});
    let before = snapshot(server.dir.path());
    let mut raw = RawClient::connect(server.addr);
    for (name, reason) in [
        ("cafe\u{301}.txt", "not in Unicode NFC form"),
        ("cafe\u{301}.txt", "send it as \"caf\u{e9}.txt\""),
        (
            "a\u{202E}gpj.exe",
            "U+202E (a right-to-left override), which would make the name display as something else",
        ),
        ("report\u{2067}.pdf", "U+2067 (a right-to-left isolate)"),
        ("zero\u{200B}width", "U+200B (a zero-width space)"),
        ("two\u{2028}lines", "U+2028 (a line separator)"),
        (".Ferry-tls/key.pem", "reserved for the server"),
        ("a:b", "looks like a Windows drive path"),
    ] {
        let message = bad_name_message(&mut raw, name);
        assert!(message.contains(reason), "PUT {name:?}: {message}");
    }
    // Downloads and removals of such names are refused the same way.
    for name in ["cafe\u{301}.txt", "a\u{202E}gpj.exe"] {
        raw.send(&Frame::Get { name, offset: 0 });
        assert!(
            matches!(raw.recv(), Reply::Error(ErrorCode::BadName, _)),
            "GET {name:?} must be a bad name"
        );
    }
    raw.send(&Frame::List { prefix: "" });
    assert_eq!(
        raw.recv(),
        Reply::Other("LIST_END"),
        "still usable, still empty"
    );
    assert_eq!(
        snapshot(server.dir.path()),
        before,
        "nothing was stored or staged for a refused name"
    );

    // The same name in NFC, and a colon that is not a drive, are ordinary names.
    let mut client = server.client();
    for name in ["caf\u{e9}.txt", "notes:v2.txt"] {
        let (_, outcome) = client.put(name, b"data", false, false, tag(2));
        assert_eq!(outcome, ferry_protocol::ClientEvent::PutStored, "{name}");
    }
    assert_eq!(client.names(), ["caf\u{e9}.txt", "notes:v2.txt"]);
}

#[test]
fn traversal_names_cannot_read_or_remove_outside_the_root() {
    let server = TestServer::start(|_| {});
    let secret = server.dir.path().join("secret");
    std::fs::write(&secret, b"do not leak").unwrap();
    let mut raw = RawClient::connect(server.addr);
    for name in [
        "../secret",
        "/etc/passwd",
        "a/../../secret",
        "..\\secret",
        "C:secret",
        "se\0cret",
    ] {
        raw.send(&Frame::Get { name, offset: 0 });
        assert!(
            matches!(raw.recv(), Reply::Error(ErrorCode::BadName, _)),
            "GET {name:?} must be a bad name"
        );
        raw.send(&Frame::Remove { name });
        assert!(
            matches!(raw.recv(), Reply::Error(ErrorCode::BadName, _)),
            "REMOVE {name:?} must be a bad name"
        );
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"do not leak");
}

#[test]
fn symbolic_links_inside_the_root_are_not_followed() {
    let server = TestServer::start(|_| {});
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), server.root().join("link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        server.root().join("file-link"),
    )
    .unwrap();
    let before = snapshot(outside.path());

    let mut client = server.client();
    let (_, outcome) = client.put("link/planted", b"evil", true, false, tag(1));
    assert!(
        matches!(
            outcome,
            ferry_protocol::ClientEvent::Refused {
                code: ErrorCode::BadName,
                ..
            }
        ),
        "{outcome:?}"
    );
    let (_, outcome) = client.put("file-link", b"evil", true, false, tag(1));
    assert!(
        matches!(
            outcome,
            ferry_protocol::ClientEvent::Refused {
                code: ErrorCode::BadName,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(matches!(
        client.get("link/secret"),
        Err((ErrorCode::BadName, _))
    ));
    assert!(matches!(
        client.get("file-link"),
        Err((ErrorCode::BadName, _))
    ));
    assert!(matches!(
        client.remove("file-link"),
        ferry_protocol::ClientEvent::Refused {
            code: ErrorCode::BadName,
            ..
        }
    ));
    assert!(client.names().is_empty(), "links are not listed as files");
    assert_eq!(
        snapshot(outside.path()),
        before,
        "nothing changed outside the root"
    );
}
