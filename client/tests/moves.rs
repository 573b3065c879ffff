//! `ferry mv OLD NEW` against a real ferryd over a folder: a file, a folder, a taken name with
//! and without `--overwrite`, a missing or bad name, a server too old for it, and the promise
//! that matters most: a download running while the name is swapped gets one whole version.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_client::{Client, ClientOptions, Digest, PutOptions, Security, Trust};
use ferry_protocol::Frame;
use ferry_protocol::limits::MAGIC;

use crate::support::cli::{TestServer, ferry, ferry_with, fingerprint};
use crate::support::pattern;

fn put(server: &TestServer, dir: &std::path::Path, local: &str, bytes: &[u8], name: &str) {
    std::fs::write(dir.join(local), bytes).unwrap();
    ferry(
        server.addr(),
        dir,
        &["put", local, "--as", name, "--overwrite"],
    )
    .ok();
}

#[test]
fn mv_renames_a_file_and_a_folder_with_everything_under_it() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    put(&server, work.path(), "a", b"alpha", "a.txt");
    put(&server, work.path(), "b", b"beta", "photos/2024/b.jpg");
    put(&server, work.path(), "c", b"gamma", "photos/c.jpg");

    let run = ferry(server.addr(), work.path(), &["mv", "a.txt", "docs/a.txt"]).ok();
    assert_eq!(run.stdout.trim(), "moved a.txt -> docs/a.txt");
    assert_eq!(server.stored("docs/a.txt"), b"alpha");
    assert!(!server.root.path().join("a.txt").exists());

    let json = ferry(
        server.addr(),
        work.path(),
        &["--json", "mv", "photos", "archive/photos"],
    )
    .ok()
    .json();
    assert_eq!(json["command"], "mv");
    assert_eq!(json["ok"], true);
    assert_eq!(json["from"], "photos");
    assert_eq!(json["to"], "archive/photos");
    let listing = ferry(server.addr(), work.path(), &["ls", "--json"])
        .ok()
        .json();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "archive/photos/2024/b.jpg",
            "archive/photos/c.jpg",
            "docs/a.txt"
        ]
    );
    // The digest moved with the file: stat knows it without the file being read again.
    let stat = ferry(
        server.addr(),
        work.path(),
        &["--json", "stat", "archive/photos/c.jpg"],
    )
    .ok()
    .json();
    assert_eq!(stat["digest"], Digest::of(b"gamma").to_hex());
}

#[test]
fn mv_over_an_existing_name_is_refused_unless_overwrite_which_replaces_the_content() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    put(&server, work.path(), "n", b"new content", "new");
    put(&server, work.path(), "o", b"old", "old");
    put(&server, work.path(), "x", b"x", "folder/x");

    let refused = ferry(server.addr(), work.path(), &["mv", "new", "old"]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("already exists; use --overwrite"),
        "{}",
        refused.stderr
    );
    assert_eq!(server.stored("old"), b"old");
    assert_eq!(server.stored("new"), b"new content");

    let folder = ferry(
        server.addr(),
        work.path(),
        &["mv", "new", "folder", "--overwrite"],
    );
    assert_eq!(folder.code, 4);
    assert!(
        folder
            .stderr
            .contains("is a folder, which a move never replaces"),
        "{}",
        folder.stderr
    );
    assert!(
        !folder.stderr.contains("use --overwrite\n"),
        "{}",
        folder.stderr
    );

    ferry(
        server.addr(),
        work.path(),
        &["mv", "new", "old", "--overwrite"],
    )
    .ok();
    assert_eq!(server.stored("old"), b"new content");
    assert!(!server.root.path().join("new").exists());
}

#[test]
fn mv_of_a_missing_or_bad_name_says_why_with_its_exit_code() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    put(&server, work.path(), "f", b"f", "f");

    let missing = ferry(server.addr(), work.path(), &["mv", "nothing", "x"]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no file named \"nothing\""),
        "{}",
        missing.stderr
    );
    let json = ferry(
        server.addr(),
        work.path(),
        &["--json", "mv", "nothing", "x"],
    )
    .json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["exit_code"], 4);

    for (from, to) in [
        ("../f", "g"),
        ("f", "/etc/g"),
        ("f", ".ferry-meta/g"),
        ("f", "a\u{202e}b"),
    ] {
        let bad = ferry(server.addr(), work.path(), &["mv", from, to]);
        assert_eq!(bad.code, 2, "{from} -> {to}: {}", bad.stderr);
        assert!(bad.stderr.contains("invalid name"), "{}", bad.stderr);
    }
    let inside = ferry(server.addr(), work.path(), &["mv", "f", "f"]);
    assert_eq!(inside.code, 4);
    assert!(
        inside.stderr.contains("the new name is the old name"),
        "{}",
        inside.stderr
    );
    assert_eq!(server.stored("f"), b"f");
}

#[test]
fn mv_against_a_version_2_server_sends_nothing_and_says_to_upgrade() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got_move = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&got_move);
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut answer = MAGIC.to_vec();
        Frame::Welcome { version: 2 }.encode(&mut answer);
        let mut buf = [0u8; 4096];
        let mut received = Vec::new();
        let mut welcomed = false;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
            if !welcomed {
                stream.write_all(&answer).unwrap();
                welcomed = true;
            }
            // A MOVE frame starts with its type byte, 0x15, after the magic and HELLO.
            if received
                .get(8..)
                .is_some_and(|rest| rest.contains(&0x15) && rest.len() > 30)
            {
                seen.store(true, Ordering::SeqCst);
            }
        }
    });
    let work = tempfile::tempdir().unwrap();
    let run = ferry_with(addr, work.path(), &["--insecure"], &["mv", "a", "b"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("the server is too old for mv"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("upgrade ferryd"), "{}", run.stderr);
    assert!(
        !got_move.load(Ordering::SeqCst),
        "a MOVE reached the old server"
    );
}

/// The name `cur` is swapped between two versions of distinct content by `ferry mv
/// --overwrite` while a reader downloads it in a loop: each download is exactly one whole
/// version, its digest checked, never a mixture, a short file or a failure.
#[test]
fn a_download_during_mv_overwrite_gets_the_old_or_the_new_file_whole() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let versions = [pattern(3 << 20, 1), pattern((3 << 20) + 4321, 2)];
    put(&server, work.path(), "v0", &versions[0], "cur");
    let pinned = Security::Tls(Trust::Pinned(fingerprint().parse().unwrap()));
    let options = ClientOptions {
        security: pinned,
        ..ClientOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, versions, options) = (Arc::clone(&stop), versions.clone(), options.clone());
        let addr = server.addr();
        std::thread::spawn(move || {
            let mut client = Client::connect(addr, options).unwrap();
            let mut seen = [0usize; 2];
            while !stop.load(Ordering::SeqCst) || seen.iter().sum::<usize>() < 4 {
                let mut bytes = Vec::new();
                let report = client.get_to("cur", &mut bytes, &mut |_| {}).unwrap();
                let which = versions
                    .iter()
                    .position(|v| *v == bytes)
                    .expect("a download that is neither version whole");
                assert_eq!(report.digest, Digest::of(&versions[which]));
                seen[which] += 1;
            }
            seen
        })
    };
    let mut writer = Client::connect(server.addr(), options).unwrap();
    for round in 1..=12 {
        let next = &versions[round % 2];
        writer
            .put_from(
                &mut std::io::Cursor::new(next),
                next.len() as u64,
                "incoming",
                &PutOptions::default(),
                &mut |_| {},
            )
            .unwrap();
        ferry(
            server.addr(),
            work.path(),
            &["mv", "incoming", "cur", "--overwrite"],
        )
        .ok();
    }
    stop.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    assert!(
        seen.iter().all(|n| *n > 0),
        "the reader saw both versions: {seen:?}"
    );
    assert_eq!(
        server.stored("cur"),
        versions[0],
        "12 swaps end on version 0"
    );
}
