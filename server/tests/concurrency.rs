//! Many clients at once: same-name uploads, downloads during a replacement, parallel traffic.

use std::thread;

use ferry_protocol::{ClientEvent, ErrorCode, FileHasher, HASH_UNIT_LEN};

use crate::support::{TestServer, data, tag};

#[test]
fn second_upload_to_the_same_name_is_refused_while_the_first_runs() {
    let server = TestServer::start(|_| {});
    let first_body = data(800_000, 1);
    let second_body = data(300_000, 2);
    let mut first = server.client();
    let mut second = server.client();
    assert_eq!(
        first.put_request("same", first_body.len() as u64, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    );
    first.send_data(&first_body[..400_000]);
    let (_, outcome) = second.put("same", &second_body, true, true, tag(2));
    match outcome {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::InProgress),
        other => panic!("expected InProgress, got {other:?}"),
    }
    first.send_data(&first_body[400_000..]);
    assert_eq!(
        first
            .finish_upload(ferry_protocol::Digest::of(&first_body))
            .unwrap(),
        ClientEvent::PutStored
    );
    assert_eq!(
        second.get("same").unwrap(),
        first_body,
        "the first upload won whole"
    );
    // Once the first is done, the second may replace it.
    let (_, outcome) = second.put("same", &second_body, true, true, tag(2));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(first.get("same").unwrap(), second_body);
}

#[test]
fn download_during_replacement_returns_the_old_version_whole() {
    let server = TestServer::start(|_| {});
    let old = data(24 << 20, 3); // more than the socket buffers hold
    let new = data(3 << 20, 4);
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
    // The download is under way (the server is blocked on the reader's full socket) while the
    // file is replaced.
    let (_, outcome) = writer.put("doc", &new, true, true, tag(5));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(
        reader.finish_get().unwrap(),
        old,
        "the reader got the old version, whole and verified"
    );
    assert_eq!(
        reader.get("doc").unwrap(),
        new,
        "later readers get the new version"
    );
}

#[test]
fn files_placed_in_the_root_by_hand_download_with_a_computed_digest() {
    let server = TestServer::start(|_| {});
    let body = data(700_000, 6);
    std::fs::create_dir_all(server.root().join("by/hand")).unwrap();
    std::fs::write(server.root().join("by/hand/file"), &body).unwrap();
    let mut client = server.client();
    assert_eq!(client.get("by/hand/file").unwrap(), body);

    // A download resumed at an offset: the protocol checks the whole file's digest.
    std::fs::write(server.root().join("by/hand/other"), &body).unwrap();
    let mut hasher = FileHasher::new();
    hasher.update(&body[..2 * HASH_UNIT_LEN as usize + 5]);
    client.downloaded.clear();
    client
        .conn
        .get("by/hand/other", hasher.checkpoint())
        .unwrap();
    assert_eq!(
        client.next_event().unwrap(),
        ClientEvent::GetReady {
            size: body.len() as u64,
            offset: 2 * HASH_UNIT_LEN
        }
    );
    assert_eq!(
        client.finish_get().unwrap(),
        body[2 * HASH_UNIT_LEN as usize..]
    );
}

#[test]
fn many_clients_upload_and_download_at_once() {
    let server = TestServer::start(|_| {});
    let shared = data(2 << 20, 7);
    server.client().put_new("shared", &shared);
    let addr = server.addr;
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let shared = shared.clone();
            thread::spawn(move || {
                let mut client = crate::support::Client::connect(addr);
                for file in 0..3u64 {
                    let body = data(
                        100_000 + (worker * 3 + file) as usize * 10_000,
                        worker * 10 + file,
                    );
                    let name = format!("w{worker}/f{file}");
                    client.put_new(&name, &body);
                    assert_eq!(client.get(&name).unwrap(), body);
                    assert_eq!(client.get("shared").unwrap(), shared);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(server.client().list("").len(), 1 + 8 * 3);
}

#[test]
fn a_download_dropped_midway_leaves_the_server_and_the_file_intact() {
    let server = TestServer::start(|_| {});
    let body = data(16 << 20, 8);
    server.client().put_new("file", &body);
    for _ in 0..3 {
        let mut quitter = server.client();
        assert!(matches!(
            quitter.get_request("file"),
            ClientEvent::GetReady { .. }
        ));
        drop(quitter);
    }
    assert_eq!(server.client().get("file").unwrap(), body);
}

#[test]
fn a_reconnecting_client_takes_over_its_own_upload_from_a_dead_connection() {
    // The old connection stays open and silent, as after a network cut the server cannot
    // see; the idle timeout (60 s) has not passed.
    let server = TestServer::start(|_| {});
    let body = data(700_000, 9);
    let mut old = server.client();
    assert_eq!(
        old.put_request("resumed", body.len() as u64, false, true, tag(9)),
        ClientEvent::PutReady { offset: 0 }
    );
    old.send_data(&body[..300_000]);
    old.sync();

    let mut new = server.client();
    let (offset, outcome) = new.put("resumed", &body, false, true, tag(9));
    let checkpointed = (300_000 - 1) / HASH_UNIT_LEN * HASH_UNIT_LEN;
    assert_eq!(
        offset, checkpointed,
        "resumed from what the old connection had staged"
    );
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(new.get("resumed").unwrap(), body);
    match old.next_event() {
        Err(ferry_protocol::ProtocolError::Peer { code, .. }) => {
            assert_eq!(code, ErrorCode::InProgress)
        }
        other => panic!("the old connection should have been closed, got {other:?}"),
    }
}
