//! `MOVE` against a real ferryd over a folder: files and folders move with their digests,
//! taken names and bad names are refused with their reasons, a symbolic link under the root is
//! never followed, an upload under way holds both of its names, and a crash at each step of a
//! move leaves every file whole under exactly one of its names.

use std::os::unix::fs::symlink;

use std::net::{IpAddr, Ipv4Addr};

use ferry_protocol::{ClientEvent, Digest, ErrorCode};
use ferry_server::{Rights, Tokens, token_line};

use crate::support::{Client, TestServer, data, tag};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn refused(event: &ClientEvent, expected: ErrorCode, says: &str) {
    match event {
        ClientEvent::Refused { code, message } => {
            assert_eq!(*code, expected, "{message}");
            assert!(message.contains(says), "{message:?} does not say {says:?}");
        }
        other => panic!("expected a {expected:?} refusal, got {other:?}"),
    }
}

#[test]
fn a_file_and_a_folder_move_with_their_digests_and_the_old_names_are_gone() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    let (a, b, c) = (data(300_000, 1), data(10, 2), data(0, 3));
    client.put_new("a.bin", &a);
    client.put_new("photos/b.jpg", &b);
    client.put_new("photos/2024/c", &c);

    assert_eq!(
        client.move_file("a.bin", "docs/a.bin", false),
        ClientEvent::Moved
    );
    assert_eq!(client.get("docs/a.bin").unwrap(), a);
    assert_eq!(client.stored_digest("docs/a.bin"), Some(Digest::of(&a)));
    assert!(!server.root().join("a.bin").exists());

    assert_eq!(
        client.move_file("photos", "archive/photos", false),
        ClientEvent::Moved
    );
    assert_eq!(
        client.names(),
        [
            "archive/photos/2024/c",
            "archive/photos/b.jpg",
            "docs/a.bin"
        ]
    );
    assert_eq!(client.get("archive/photos/b.jpg").unwrap(), b);
    assert_eq!(
        client.stored_digest("archive/photos/2024/c"),
        Some(Digest::of(&c))
    );
    assert!(
        !server.root().join("photos").exists(),
        "the folder itself moved"
    );
}

#[test]
fn a_taken_name_is_refused_with_its_reason_and_overwrite_replaces_only_a_file() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.put_new("a", b"new bytes");
    client.put_new("b", b"old");
    client.put_new("d/x", b"x");

    refused(
        &client.move_file("a", "b", false),
        ErrorCode::AlreadyExists,
        "use --overwrite",
    );
    refused(
        &client.move_file("a", "d", true),
        ErrorCode::AlreadyExists,
        "is a folder",
    );
    refused(
        &client.move_file("d", "b", true),
        ErrorCode::AlreadyExists,
        "folder moves only to a name that is free",
    );
    refused(
        &client.move_file("missing", "m", false),
        ErrorCode::NotFound,
        "missing",
    );
    refused(
        &client.move_file("d", "d/inner", false),
        ErrorCode::BadName,
        "into itself",
    );
    refused(
        &client.move_file("a", "a", true),
        ErrorCode::BadName,
        "is the old name",
    );
    refused(
        &client.move_file("d/x", "a/x", false),
        ErrorCode::BadName,
        "is a file",
    );
    assert_eq!(client.get("b").unwrap(), b"old");

    assert_eq!(client.move_file("a", "b", true), ClientEvent::Moved);
    assert_eq!(client.get("b").unwrap(), b"new bytes");
    assert_eq!(client.stored_digest("b"), Some(Digest::of(b"new bytes")));
    assert_eq!(client.names(), ["b", "d/x"]);
}

#[test]
fn a_symbolic_link_under_the_root_is_neither_moved_nor_followed() {
    let server = TestServer::start(|_| {});
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside").unwrap();
    let root = server.root();
    symlink(outside.path(), root.join("escape")).unwrap();
    symlink(outside.path().join("secret"), root.join("linked")).unwrap();
    let mut client = server.client();
    client.put_new("mine", b"mine");

    refused(
        &client.move_file("linked", "taken", false),
        ErrorCode::BadName,
        "symbolic link",
    );
    refused(
        &client.move_file("escape", "taken", false),
        ErrorCode::BadName,
        "symbolic link",
    );
    refused(
        &client.move_file("escape/secret", "stolen", false),
        ErrorCode::BadName,
        "symbolic link",
    );
    refused(
        &client.move_file("mine", "escape/planted", false),
        ErrorCode::BadName,
        "symbolic link",
    );
    refused(
        &client.move_file("mine", "escape/sub/planted", false),
        ErrorCode::BadName,
        "symbolic link",
    );
    refused(
        &client.move_file("mine", "linked", true),
        ErrorCode::BadName,
        "",
    );
    let left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["secret"], "written outside the root");
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"outside"
    );
    assert!(
        std::fs::symlink_metadata(root.join("linked"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(client.get("mine").unwrap(), b"mine");
}

#[test]
fn an_upload_under_way_holds_its_name_and_its_folders_against_a_move() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.put_new("f", b"file");
    client.put_new("d/x", b"x");
    let body = data(200_000, 4);
    let mut uploader = server.client();
    assert_eq!(
        uploader.put_request("d/new", body.len() as u64, false, true, tag(4)),
        ClientEvent::PutReady { offset: 0 }
    );
    uploader.send_data(&body[..1000]);
    uploader.sync();

    refused(
        &client.move_file("d", "e", false),
        ErrorCode::InProgress,
        "in progress",
    );
    refused(
        &client.move_file("f", "d/new", true),
        ErrorCode::InProgress,
        "in progress",
    );
    uploader.send_data(&body[1000..]);
    assert_eq!(
        uploader.finish_upload(Digest::of(&body)).unwrap(),
        ClientEvent::PutStored
    );

    assert_eq!(client.move_file("d", "e", false), ClientEvent::Moved);
    assert_eq!(client.get("e/new").unwrap(), body);
}

#[test]
fn a_confined_token_moves_inside_its_folder_and_a_read_only_one_not_at_all() {
    const ALICE: &str = "b7e2c94d0a6f1853e9d4a27c6b0f3e18";
    const READER: &str = "3f9a0c7e51b2d86e4a1f0b9c7d2e5a83";
    let server = TestServer::start(|config| {
        let lines = [
            token_line(ALICE, Rights::ReadWrite, Some("home/alice")).unwrap(),
            token_line(READER, Rights::ReadOnly, None).unwrap(),
        ];
        config.tokens = Some(Tokens::parse(&lines.join("\n")).unwrap());
    });
    let mut alice = Client::try_connect_from(server.addr, LOCALHOST, ALICE.as_bytes()).unwrap();
    alice.put_new("a", b"alice's");
    assert_eq!(alice.move_file("a", "sub/b", false), ClientEvent::Moved);
    assert_eq!(
        std::fs::read(server.root().join("home/alice/sub/b")).unwrap(),
        b"alice's"
    );
    refused(
        &alice.move_file("missing", "c", false),
        ErrorCode::NotFound,
        "\"missing\"",
    );
    let ClientEvent::Refused { message, .. } = alice.move_file("missing", "c", false) else {
        panic!("not refused");
    };
    assert!(!message.contains("home/alice"), "{message}");

    let mut reader = Client::try_connect_from(server.addr, LOCALHOST, READER.as_bytes()).unwrap();
    refused(
        &reader.move_file("home/alice/sub/b", "stolen", false),
        ErrorCode::Forbidden,
        "read-only",
    );
    assert!(server.root().join("home/alice/sub/b").exists());
}

#[cfg(debug_assertions)]
mod crashes {
    //! `ferryd` aborted at each step of a move (its test-only crash points), then restarted.

    use std::os::unix::process::ExitStatusExt;

    use ferry_protocol::{ClientEvent, Digest};

    use crate::support::ferryd::Ferryd;
    use crate::support::{Client, data};

    const SIGABRT: i32 = 6;

    /// The steps of a move, and whether the file is under its new name after each.
    const STEPS: [(&str, bool); 3] = [
        ("move-after-digest", false),
        ("move-after-rename", true),
        ("move-after-sync", true),
    ];

    #[test]
    fn a_crash_at_each_step_of_a_move_leaves_the_file_whole_under_one_name_with_its_digest() {
        for folder in [false, true] {
            for (step, moved) in STEPS {
                let label = format!("crash {step} ({})", if folder { "folder" } else { "file" });
                let dir = tempfile::tempdir().unwrap();
                let root = dir.path().join("root");
                let body = data(300_000, 7);
                let (from, to, file_from, file_to) = if folder {
                    ("d", "e/f", "d/x.bin", "e/f/x.bin")
                } else {
                    ("x.bin", "y/x.bin", "x.bin", "y/x.bin")
                };
                let server = Ferryd::start(&root, &[]);
                Client::connect(server.addr).put_new(file_from, &body);
                drop(server);

                let server = Ferryd::start_with(&root, &[], &[("FERRYD_CRASH_AT", step)]);
                let mut client = Client::connect(server.addr);
                client.conn.move_file(from, to, false).unwrap();
                client.flush();
                assert!(
                    !matches!(client.next_event(), Ok(ClientEvent::Moved)),
                    "{label}: no ACK may come from a server that crashed before answering"
                );
                let status = server.wait_for_exit();
                assert_eq!(status.signal(), Some(SIGABRT), "{label}: {status}");

                let server = Ferryd::start(&root, &[]);
                let mut client = Client::connect(server.addr);
                let (here, gone) = if moved {
                    (file_to, file_from)
                } else {
                    (file_from, file_to)
                };
                assert!(
                    client.get(here).unwrap() == body,
                    "{label}: {here} is not whole"
                );
                assert!(client.get(gone).is_err(), "{label}: {gone} is still there");
                assert_eq!(
                    client.stored_digest(here),
                    Some(Digest::of(&body)),
                    "{label}: the visible file lost its digest record"
                );
                // The move can be made (again) and finishes the job.
                if !moved {
                    assert_eq!(
                        client.move_file(from, to, false),
                        ClientEvent::Moved,
                        "{label}"
                    );
                }
                assert!(client.get(file_to).unwrap() == body, "{label}");
            }
        }
    }
}
