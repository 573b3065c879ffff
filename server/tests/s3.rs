//! ferryd over an S3-compatible object store: a real SeaweedFS (`weed mini`, started once for
//! this test binary), one or several nodes over one bucket prefix. Each test uses a prefix of
//! its own. Without `weed` installed the tests print that they were skipped, unless
//! `FERRY_REQUIRE_SEAWEEDFS=1` (CI) makes that a failure.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferry_protocol::{ClientEvent, Digest, ErrorCode, Frame, ProtocolError};
use ferry_server::{S3Config, Server, ServerConfig};
use ferry_testkit::SeaweedFs;

use crate::support::{Client, RawClient, Reply, TestServer, data, tag, wait_until};

const MIB: usize = 1024 * 1024;

/// A bucket prefix no other test uses.
fn fresh_store(weed: &SeaweedFs, test: &str) -> S3Config {
    weed.config(&SeaweedFs::unique_prefix(test))
}

/// A node serving `store`, with 5 MiB parts (the smallest S3 takes) so that multipart uploads
/// happen with small files.
fn node(store: &S3Config) -> TestServer {
    let store = store.clone();
    TestServer::start(move |config| {
        config.object_store = Some(store);
        config.s3_part_size = 5 * MIB as u64;
    })
}

/// Sends the first `len` bytes of an upload of `body` and cuts the connection.
fn send_then_cut(client: &mut Client, body: &[u8], len: usize) {
    client.send_data(&body[..len]);
    client.sync();
    client.stream.shutdown(std::net::Shutdown::Both).unwrap();
}

fn refused_with(event: &ClientEvent, expected: ErrorCode) {
    match event {
        ClientEvent::Refused { code, .. } => assert_eq!(*code, expected, "{event:?}"),
        other => panic!("expected a {expected:?} refusal, got {other:?}"),
    }
}

#[test]
fn files_of_every_size_round_trip_and_list_in_name_order() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "round-trip");
    let server = node(&store);
    let mut client = server.client();
    // Empty, tiny, exactly one part, one part and a byte, several parts and a tail.
    let files = [
        ("empty", 0),
        ("folder/tiny b+c%.txt", 1),
        ("folder/one-part", 5 * MIB),
        ("folder/part-and-a-byte", 5 * MIB + 1),
        ("zeta/ünïcode several parts", 17 * MIB + 12_345),
    ];
    for (i, (name, size)) in files.iter().enumerate() {
        client.put_new(name, &data(*size, i as u64));
    }
    for (i, (name, size)) in files.iter().enumerate() {
        assert_eq!(client.get(name).unwrap(), data(*size, i as u64), "{name}");
    }
    let listed: Vec<(String, u64)> = client
        .list("")
        .into_iter()
        .map(|e| (e.name, e.size))
        .collect();
    let mut expected: Vec<(String, u64)> = files
        .iter()
        .map(|(name, size)| (name.to_string(), *size as u64))
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "every file, in name order, no records");
    assert_eq!(client.list("folder/").len(), 3);
    assert_eq!(client.remove("folder/tiny b+c%.txt"), ClientEvent::Removed);
    refused_with(&client.remove("folder/tiny b+c%.txt"), ErrorCode::NotFound);
    assert!(client.get("folder/tiny b+c%.txt").is_err());
}

#[test]
fn nothing_is_visible_before_the_digest_matched_and_a_mismatch_leaves_nothing() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "visible");
    let server = node(&store);
    let body = data(12 * MIB, 1);
    let mut uploader = server.client();
    let mut observer = server.client();
    assert_eq!(
        uploader.put_request("big", body.len() as u64, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    );
    uploader.send_data(&body);
    uploader.sync();
    // Every byte arrived, two parts are in the bucket, but no digest yet: nothing visible.
    assert!(observer.names().is_empty());
    refused_with(&observer.get_request("big"), ErrorCode::NotFound);
    let wrong = Digest::of(b"something else");
    refused_with(
        &uploader.finish_upload(wrong).unwrap(),
        ErrorCode::DigestMismatch,
    );
    assert!(observer.names().is_empty());
    assert_eq!(
        observer.query("big", tag(1)),
        (None, None),
        "no partial kept"
    );
}

#[test]
fn an_upload_cut_on_one_node_resumes_on_another_sending_only_the_rest() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "resume");
    let first = node(&store);
    let second = node(&store);
    let body = data(16 * MIB + 777, 2);

    let mut client = first.client();
    assert_eq!(
        client.put_request("moved", body.len() as u64, false, true, tag(7)),
        ClientEvent::PutReady { offset: 0 }
    );
    send_then_cut(&mut client, &body, 11 * MIB);

    // The other node sees the interrupted upload: resumable from the end of its last part
    // (the 11 MiB sent make two 5 MiB parts).
    let mut other = second.client();
    let mut offset = None;
    wait_until("both parts to be recorded", || {
        offset = other.query("moved", tag(7)).1;
        offset.is_some_and(|o| o >= 10 * MIB as u64)
    });
    let offset = offset.unwrap();
    assert!(offset < 11 * MIB as u64);
    let (resumed_at, outcome) = other.put_retrying("moved", &body, false, true, tag(7));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(
        resumed_at, offset,
        "only the bytes after the last part were sent again"
    );
    assert_eq!(first.client().get("moved").unwrap(), body);
}

#[test]
fn two_nodes_follow_the_one_node_rule_for_the_same_name() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "same-name");
    let a = node(&store);
    let b = node(&store);
    let body = data(3 * MIB, 3);
    let other_body = data(MIB, 4);

    let mut first = a.client();
    assert_eq!(
        first.put_request("contested", body.len() as u64, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    );
    first.send_data(&body[..MIB]);
    first.sync();
    // Another client file on the other node: refused while the first runs.
    let (_, outcome) = b
        .client()
        .put("contested", &other_body, false, true, tag(2));
    refused_with(&outcome, ErrorCode::InProgress);
    // The first finishes and wins whole.
    first.send_data(&body[MIB..]);
    assert_eq!(
        first.finish_upload(Digest::of(&body)).unwrap(),
        ClientEvent::PutStored
    );
    // Now the name exists: not replaced without overwrite, on either node.
    let (_, outcome) = b
        .client()
        .put("contested", &other_body, false, true, tag(2));
    refused_with(&outcome, ErrorCode::AlreadyExists);
    assert_eq!(b.client().get("contested").unwrap(), body);
    let (_, outcome) = b.client().put("contested", &other_body, true, true, tag(2));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(a.client().get("contested").unwrap(), other_body);
}

#[test]
fn the_same_client_file_reconnecting_to_another_node_takes_its_upload_over() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "takeover");
    let a = node(&store);
    let b = node(&store);
    let body = data(12 * MIB, 5);

    // The first connection stays open but silent, as after a cut its node has not noticed.
    let mut stale = a.client();
    assert_eq!(
        stale.put_request("retaken", body.len() as u64, false, true, tag(9)),
        ClientEvent::PutReady { offset: 0 }
    );
    stale.send_data(&body[..7 * MIB]);
    stale.sync();
    let mut fresh = b.client();
    wait_until("the first part to be recorded", || {
        fresh.query("retaken", tag(9)).1 >= Some(5 * MIB as u64)
    });
    let (resumed_at, outcome) = fresh.put("retaken", &body, false, true, tag(9));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert!(resumed_at >= 5 * MIB as u64, "resumed from the first part");
    assert_eq!(a.client().get("retaken").unwrap(), body);
    // The old connection learns it lost the upload on its next write.
    stale.send_data_lenient(&body[7 * MIB..]);
    let after = stale.conn.finish_upload(Digest::of(&body));
    if after.is_ok() {
        stale.flush();
        assert!(
            !matches!(stale.next_event(), Ok(ClientEvent::PutStored)),
            "the superseded connection must not also store the file"
        );
    }
}

#[test]
fn downloads_resume_from_an_offset() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "ranged");
    let server = node(&store);
    let body = data(9 * MIB + 3, 6);
    let mut client = server.client();
    client.put_new("ranged", &body);
    // The protocol's resumed download: the server sends from the offset, and the client
    // checks the whole file's digest.
    let offset = 6 * MIB as u64 + 17;
    let checkpoint = {
        let mut hasher = ferry_protocol::FileHasher::new();
        hasher.update(&body[..offset as usize]);
        hasher.checkpoint()
    };
    let resume_at = checkpoint.offset();
    client.downloaded.clear();
    client.conn.get("ranged", checkpoint).unwrap();
    assert_eq!(
        client.next_event().unwrap(),
        ClientEvent::GetReady {
            size: body.len() as u64,
            offset: resume_at
        }
    );
    assert_eq!(client.finish_get().unwrap(), body[resume_at as usize..]);
}

#[test]
fn wrong_keys_stop_the_server_at_start_with_a_clear_error() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let mut store = fresh_store(weed, "keys");
    store.secret_key = "not-the-secret".into();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path());
    config.object_store = Some(store);
    let error = Server::start(config).unwrap_err().to_string();
    assert!(error.contains("access key"), "{error}");
}

#[test]
fn more_bytes_than_declared_is_a_size_mismatch_and_nothing_appears() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "lying");
    let server = node(&store);
    let mut raw = RawClient::connect(server.addr);
    raw.send(&Frame::Put {
        name: "liar",
        size: 100,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: tag(9),
    });
    assert_eq!(raw.recv(), Reply::PutReady(0));
    raw.send(&Frame::Data { len: 60 });
    raw.send_bytes(&data(60, 1));
    raw.send(&Frame::Data { len: 60 });
    raw.send_bytes(&data(60, 2));
    assert!(matches!(
        raw.recv(),
        Reply::Error(ErrorCode::SizeMismatch, _)
    ));
    assert!(server.client().names().is_empty());
    assert_eq!(server.client().query("liar", tag(9)), (None, None));
}

#[test]
fn a_download_during_a_replacement_gets_one_version_whole() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "replace");
    let server = node(&store);
    let old = data(24 * MIB, 3); // more than the socket buffers hold
    let new = data(3 * MIB, 4);
    let mut writer = server.client();
    writer.put_new("doc", &old);
    let mut reader = server.client();
    assert_eq!(
        reader.get_request("doc"),
        ClientEvent::GetReady {
            size: old.len() as u64,
            offset: 0
        }
    );
    let (_, outcome) = writer.put("doc", &new, true, true, tag(5));
    assert_eq!(outcome, ClientEvent::PutStored);
    // The ranged GET under way keeps streaming the version it started on; the protocol's
    // digest check would refuse a mix.
    assert_eq!(reader.finish_get().unwrap(), old);
    assert_eq!(reader.get("doc").unwrap(), new);
}

#[test]
fn a_name_cannot_be_both_a_file_and_a_folder() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "tree");
    let server = node(&store);
    let mut client = server.client();
    client.put_new("docs/report", b"a file in a folder");
    client.put_new("notes", b"a file");
    // As on a disk: a folder cannot become a file, nor a file a folder.
    let (_, outcome) = client.put("docs", b"x", true, true, tag(1));
    refused_with(&outcome, ErrorCode::BadName);
    let (_, outcome) = client.put("notes/inside", b"x", true, true, tag(1));
    refused_with(&outcome, ErrorCode::BadName);
    assert_eq!(
        client.names(),
        ["docs/report".to_owned(), "notes".to_owned()]
    );
}

/// A TCP forwarder to the object store that can be cut off and restored: every connection it
/// carries is closed when cut, and new ones are refused until restored.
struct Outage {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Outage {
    fn in_front_of(endpoint: &str) -> Outage {
        let target: std::net::SocketAddr = endpoint.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let outage = Outage {
            addr: listener.local_addr().unwrap(),
            open: Arc::new(AtomicBool::new(true)),
            live: Arc::default(),
        };
        let (open, live) = (Arc::clone(&outage.open), Arc::clone(&outage.live));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !open.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut live = live.lock().unwrap();
                live.push(client.try_clone().unwrap());
                live.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        outage
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[test]
fn an_object_store_lost_mid_upload_is_a_clear_error_and_the_upload_resumes_after() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let outage = Outage::in_front_of(weed.endpoint());
    let mut store = fresh_store(weed, "outage");
    store.endpoint = outage.endpoint();
    let server = node(&store);
    let body = data(22 * MIB, 8);
    let mut client = server.client();
    assert_eq!(
        client.put_request("through-outage", body.len() as u64, false, true, tag(4)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..11 * MIB]);
    client.sync();
    let mut observer = server.client();
    let mut recorded = 0;
    wait_until("two parts in the bucket", || {
        recorded = observer.query("through-outage", tag(4)).1.unwrap_or(0);
        recorded >= 10 * MIB as u64
    });

    outage.cut();
    // The next parts cannot be stored: the client is told why (at the latest when it ends the
    // upload, since parts are sent in the background).
    client.send_data_lenient(&body[11 * MIB..]);
    if client.conn.finish_upload(Digest::of(&body)).is_ok() {
        client.flush();
    }
    let (code, message) = match client.next_event() {
        Ok(ClientEvent::Refused { code, message }) | Err(ProtocolError::Peer { code, message }) => {
            (code, message)
        }
        other => panic!("expected the server's error, got {other:?}"),
    };
    assert_eq!(code, ErrorCode::StorageError, "{message}");
    assert!(
        message.contains("object store") && message.contains("cannot be reached"),
        "{message}"
    );
    assert!(
        !message.contains("127.0.0.1"),
        "no internal address leaks to clients: {message}"
    );

    outage.restore();
    let mut again = server.client();
    assert!(again.names().is_empty(), "nothing visible");
    let (resumed_at, outcome) = again.put_retrying("through-outage", &body, false, true, tag(4));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(
        resumed_at, recorded,
        "resumed from the parts stored before the outage"
    );
    assert_eq!(again.get("through-outage").unwrap(), body);
}

/// S3 has no rename: a file is copied, its digest record follows, then the old object is
/// deleted; a taken name is refused unless overwriting, and a folder does not move.
#[test]
fn a_move_copies_then_deletes_keeps_the_digest_and_refuses_folders_and_taken_names() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = fresh_store(weed, "move");
    let server = node(&store);
    let mut client = server.client();
    let (a, b) = (data(6 * MIB + 5, 1), data(100, 2));
    client.put_new("a odd name%.bin", &a);
    client.put_new("b", &b);
    client.put_new("folder/x", &b);

    assert_eq!(
        client.move_file("a odd name%.bin", "moved/a ü.bin", false),
        ClientEvent::Moved
    );
    assert!(client.get("moved/a ü.bin").unwrap() == a);
    assert_eq!(client.stored_digest("moved/a ü.bin"), Some(Digest::of(&a)));
    assert!(
        client.get("a odd name%.bin").is_err(),
        "the old name is gone"
    );

    refused_with(
        &client.move_file("b", "moved/a ü.bin", false),
        ErrorCode::AlreadyExists,
    );
    refused_with(
        &client.move_file("missing", "m", false),
        ErrorCode::NotFound,
    );
    let folder = client.move_file("folder", "elsewhere", false);
    refused_with(&folder, ErrorCode::Unsupported);
    assert!(
        format!("{folder:?}").contains("move the files one at a time"),
        "{folder:?}"
    );

    assert_eq!(
        client.move_file("b", "moved/a ü.bin", true),
        ClientEvent::Moved
    );
    assert_eq!(client.get("moved/a ü.bin").unwrap(), b);
    assert_eq!(client.stored_digest("moved/a ü.bin"), Some(Digest::of(&b)));
    assert_eq!(client.names(), ["folder/x", "moved/a ü.bin"]);
}
