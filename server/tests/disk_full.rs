//! A real full disk: a 50 MiB tmpfs as the storage root and four 20 MB uploads at once. Each
//! upload is stored whole or ends with `DiskFull`, and what the client is told is true: an
//! upload said to be resumable from byte N is (the server reports that partial), one said to
//! have kept nothing holds no space, and no half-written checkpoint stays behind.
//!
//! Mounting needs root; elsewhere the test says so and does nothing.

use std::thread;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, ProtocolError};

use crate::support::{Client, TestServer, data, tag};

const SIZE: usize = 20_000_000;

/// One upload's end: stored, or the server's error code and message (the code `Refused` is
/// kept apart: a refusal before any data, which holds nothing).
fn upload(addr: std::net::SocketAddr, n: u8) -> Result<(), (ErrorCode, String)> {
    let body = data(SIZE, u64::from(n));
    let mut client = Client::connect(addr);
    match client.put_request(&format!("big{n}"), SIZE as u64, false, true, tag(n)) {
        ClientEvent::PutReady { offset: 0 } => {}
        ClientEvent::Refused { code, message } => {
            return Err((code, format!("refused before any data: {message}")));
        }
        other => panic!("big{n}: {other:?}"),
    }
    client.send_data_lenient(&body);
    client.conn.finish_upload(Digest::of(&body)).ok();
    client.flush();
    match client.next_event() {
        Ok(ClientEvent::PutStored) => Ok(()),
        Ok(ClientEvent::Refused { code, message }) | Err(ProtocolError::Peer { code, message }) => {
            Err((code, message))
        }
        other => panic!("big{n}: {other:?}"),
    }
}

#[test]
fn uploads_into_a_full_disk_are_told_the_truth_and_unresumable_space_is_freed() {
    let Some(server) = TestServer::start_on_small_disk("50m", |_| {}) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let addr = server.addr;
    let running: Vec<_> = (1..=4u8)
        .map(|n| thread::spawn(move || (n, upload(addr, n))))
        .collect();
    let ends: Vec<_> = running.into_iter().map(|h| h.join().unwrap()).collect();

    let mut full = 0;
    let mut kept_bytes = 0;
    for (n, end) in &ends {
        let name = format!("big{n}");
        let (stored, partial) = server.client().query(&name, tag(*n));
        match end {
            Ok(()) => {
                assert_eq!(stored, Some(SIZE as u64), "{name}");
                assert!(
                    std::fs::read(server.root().join(&name)).unwrap() == data(SIZE, u64::from(*n))
                );
            }
            Err((ErrorCode::DiskFull, message)) => {
                full += 1;
                assert_eq!(stored, None, "{name}");
                if message.starts_with("refused before any data") {
                    assert_eq!(partial, None, "{name}");
                } else if let Some(told) = message.split("resumable from byte ").nth(1) {
                    let told: u64 = told.parse().unwrap();
                    assert_eq!(partial, Some(told), "{name}: told {message:?}");
                    kept_bytes += told;
                } else {
                    assert!(
                        message.contains("nothing of the upload was kept"),
                        "{name}: {message}"
                    );
                    assert_eq!(partial, None, "{name}: told {message:?}");
                }
            }
            Err(other) => panic!("{name}: {other:?}"),
        }
    }
    eprintln!("ends: {ends:?}");
    assert!(full > 0, "the disk never filled: {ends:?}");

    // Only the resumable partials hold staging space, trimmed to what they can resume from,
    // and no checkpoint is left half written.
    let mut staged_bytes = 0;
    for path in server.staged_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "a half-written checkpoint stayed: {name}"
        );
        if name.ends_with(".part") {
            staged_bytes += std::fs::metadata(&path).unwrap().len();
        }
    }
    assert_eq!(staged_bytes, kept_bytes, "{ends:?}");
}
