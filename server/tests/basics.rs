//! The ordinary operations: upload, download, list, remove, query, overwrite rules.

use ferry_protocol::{ClientEvent, ErrorCode};

use crate::support::{TestServer, data, tag};

#[test]
fn upload_then_download_returns_the_same_bytes() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    let body = data(3 * 1024 * 1024 + 17, 1);
    client.put_new("photos/2026/big.bin", &body);
    assert_eq!(client.get("photos/2026/big.bin").unwrap(), body);
    assert_eq!(
        std::fs::read(server.root().join("photos/2026/big.bin")).unwrap(),
        body
    );
}

#[test]
fn empty_file_round_trips() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.put_new("empty", b"");
    assert_eq!(client.get("empty").unwrap(), b"");
}

#[test]
fn listing_shows_stored_files_by_prefix_and_hides_staging() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    for name in ["a.txt", "docs/one", "docs/two", "docs/sub/three", "other/x"] {
        client.put_new(name, name.as_bytes());
    }
    // An interrupted upload leaves staging data, which must not be listed.
    assert!(matches!(
        client.put_request("partial", 1 << 20, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    ));
    client.send_data(&data(300_000, 2));
    drop(client);
    let mut client = server.client();
    assert_eq!(
        client.names(),
        ["a.txt", "docs/one", "docs/sub/three", "docs/two", "other/x"]
    );
    assert_eq!(
        client
            .list("docs/")
            .into_iter()
            .map(|e| e.name)
            .collect::<Vec<_>>(),
        ["docs/one", "docs/sub/three", "docs/two"]
    );
    assert_eq!(
        client
            .list("docs/t")
            .into_iter()
            .map(|e| (e.name, e.size))
            .collect::<Vec<_>>(),
        [("docs/two".to_owned(), 8)]
    );
    assert!(client.list("nothing/").is_empty());
}

#[test]
fn remove_deletes_the_file_and_a_missing_name_is_not_found() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.put_new("gone", b"bytes");
    assert_eq!(client.remove("gone"), ClientEvent::Removed);
    assert!(!server.root().join("gone").exists());
    assert!(matches!(
        client.remove("gone"),
        ClientEvent::Refused {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    assert!(matches!(client.get("gone"), Err((ErrorCode::NotFound, _))));
}

#[test]
fn existing_name_is_refused_unless_overwrite_was_asked() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.put_new("report", b"first version");
    let (_, outcome) = client.put("report", b"second", false, true, tag(2));
    match outcome {
        ClientEvent::Refused { code, message } => {
            assert_eq!(code, ErrorCode::AlreadyExists);
            assert!(message.contains("--overwrite"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(client.get("report").unwrap(), b"first version");
    let (_, outcome) = client.put("report", b"second", true, true, tag(2));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(client.get("report").unwrap(), b"second");
}

#[test]
fn query_reports_the_stored_size_and_the_resumable_offset() {
    let server = TestServer::start(|config| config.checkpoint_interval = 64 * 1024);
    let mut client = server.client();
    assert_eq!(client.query("q", tag(3)), (None, None));
    client.put_new("q", &data(1000, 3));
    assert_eq!(client.query("q", tag(3)), (Some(1000), None));
    assert!(matches!(
        client.put_request("q2", 1 << 20, false, true, tag(3)),
        ClientEvent::PutReady { offset: 0 }
    ));
    client.send_data(&data(200_000, 4));
    client.conn.cancel_upload().unwrap();
    client.flush();
    let mut other = server.client();
    crate::support::wait_until("the cancelled upload's checkpoint", || {
        other.query("q2", tag(3)) == (None, Some(3 * 64 * 1024))
    });
    assert_eq!(
        other.query("q2", tag(4)),
        (None, None),
        "another tag has no partial"
    );
}

#[test]
fn a_listing_longer_than_one_batch_arrives_whole_and_sorted() {
    let server = TestServer::start(|_| {});
    let folder = server.root().join("many");
    std::fs::create_dir_all(&folder).unwrap();
    let mut expected: Vec<String> = (0..700).map(|i| format!("many/file-{i:04}")).collect();
    for name in &expected {
        std::fs::write(server.root().join(name), name.as_bytes()).unwrap();
    }
    expected.sort();
    let entries = server.client().list("many/");
    assert_eq!(
        entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(
        entries
            .iter()
            .all(|e| e.size == e.name.len() as u64 && e.modified_ms > 0)
    );
}
