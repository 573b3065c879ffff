//! Interrupted uploads: resumable from their durable checkpoint, costing only the missing
//! bytes, never rereading what is staged; and removed once too old.

use std::io::Write;
use std::time::Duration;

use ferry_protocol::limits::DEFAULT_DATA_CHUNK;
use ferry_protocol::{ClientEvent, Digest, HASH_UNIT_LEN};

use crate::support::{Client, TestServer, data, tag, wait_until};

/// Starts an upload of `body` and cuts the connection after `wire_bytes` bytes of the data
/// stream (possibly inside a frame). Returns how many file bytes the server was sent.
fn upload_cut_after(client: &mut Client, name: &str, body: &[u8], wire_bytes: usize) -> u64 {
    assert_eq!(
        client.put_request(name, body.len() as u64, false, true, tag(7)),
        ClientEvent::PutReady { offset: 0 }
    );
    let mut wire = Vec::new();
    let mut file_bytes = 0u64;
    for chunk in body.chunks(DEFAULT_DATA_CHUNK) {
        client.conn.send_file_data(chunk).unwrap();
        client.conn.poll_transmit(&mut wire);
        let header_end = wire.len();
        wire.extend_from_slice(chunk);
        if wire.len() >= wire_bytes {
            file_bytes += wire_bytes.saturating_sub(header_end) as u64;
            wire.truncate(wire_bytes);
            break;
        }
        file_bytes += chunk.len() as u64;
    }
    client.stream.write_all(&wire).unwrap();
    client.stream.shutdown(std::net::Shutdown::Both).unwrap();
    file_bytes
}

/// Where the server's saved hash state ends after receiving `bytes`: the last whole hash unit
/// the protocol's hasher has folded (a unit ending exactly at `bytes` is folded only when the
/// next byte arrives).
fn unit_floor(bytes: u64) -> u64 {
    bytes.saturating_sub(1) / HASH_UNIT_LEN * HASH_UNIT_LEN
}

/// Waits until the server has filed the interrupted upload and reports its resumable offset.
fn wait_for_partial(server: &TestServer, name: &str, expected: Option<u64>) {
    let mut client = server.client();
    wait_until("the interrupted upload to be checkpointed", || {
        client.query(name, tag(7)).1 == expected
    });
}

#[test]
fn connection_dropped_at_random_points_then_resume_sends_only_the_missing_bytes() {
    let server = TestServer::start(|config| config.checkpoint_interval = 128 * 1024);
    let chunk_wire = DEFAULT_DATA_CHUNK + 5;
    // Edge points (no data, inside the first header, one unit exactly, inside a later header,
    // all but the last byte), then pseudo-random ones.
    let fixed = [0, 3, 5 + HASH_UNIT_LEN as usize, chunk_wire + 2];
    for seed in 1..=12u64 {
        let body = data(1_500_000 + seed as usize * 7919, seed);
        let wire_len = body.len() + body.len().div_ceil(DEFAULT_DATA_CHUNK) * 5;
        let cut = match seed {
            1..=4 => fixed[seed as usize - 1],
            5 => wire_len - 1,
            _ => (crate::support::data(8, seed * 31)[0] as usize * wire_len) / 256,
        };
        let name = format!("cut/{seed}");
        let sent = upload_cut_after(&mut server.client(), &name, &body, cut);
        let expected = unit_floor(sent);
        println!(
            "seed {seed}: cut at wire byte {cut}, {sent} file bytes sent, resumable at {expected}"
        );
        wait_for_partial(&server, &name, (expected > 0).then_some(expected));

        let mut client = server.client();
        let (offset, outcome) = client.put_retrying(&name, &body, false, true, tag(7));
        assert_eq!(
            offset, expected,
            "seed {seed}: resumed where the checkpoint ended"
        );
        assert_eq!(outcome, ClientEvent::PutStored, "seed {seed}");
        assert_eq!(client.get(&name).unwrap(), body, "seed {seed}");
    }
    assert!(
        server.staged_files().is_empty(),
        "{:?}",
        server.staged_files()
    );
}

#[test]
fn resume_uses_the_saved_hash_state_and_never_rereads_staged_bytes() {
    let server = TestServer::start(|_| {});
    let body = data(1 << 20, 11);
    let sent = upload_cut_after(&mut server.client(), "big", &body, 600_000);
    let expected = unit_floor(sent);
    assert!(expected > 0);
    wait_for_partial(&server, "big", Some(expected));

    // Flip the first staged byte behind the server's back. A server that rehashed the staged
    // prefix would now compute a different digest and refuse the upload; one that resumes
    // from its saved hash state accepts it (and stores the flipped byte it never reread).
    let part = server
        .staged_files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "part"))
        .unwrap();
    let mut staged = std::fs::read(&part).unwrap();
    staged[0] ^= 0xff;
    std::fs::write(&part, &staged).unwrap();

    let mut client = server.client();
    let (offset, outcome) = client.put_retrying("big", &body, false, true, tag(7));
    assert_eq!(offset, expected, "PUT_READY resumed at the checkpoint");
    assert_eq!(outcome, ClientEvent::PutStored);
    let stored = std::fs::read(server.root().join("big")).unwrap();
    assert_eq!(
        stored[0],
        body[0] ^ 0xff,
        "the staged prefix was not read again"
    );
    assert_eq!(stored[1..], body[1..]);
}

#[test]
fn resume_false_or_a_different_size_starts_over() {
    let server = TestServer::start(|_| {});
    let body = data(500_000, 12);
    let sent = upload_cut_after(&mut server.client(), "again", &body, 300_000);
    wait_for_partial(&server, "again", Some(unit_floor(sent)));

    let mut client = server.client();
    let longer = data(600_000, 12);
    let (offset, outcome) = client.put_retrying("again", &longer, false, true, tag(7));
    assert_eq!(
        (offset, outcome),
        (0, ClientEvent::PutStored),
        "another size is another file"
    );

    let sent = upload_cut_after(&mut server.client(), "fresh", &body, 300_000);
    wait_for_partial(&server, "fresh", Some(unit_floor(sent)));
    let (offset, outcome) = client.put_retrying("fresh", &body, false, false, tag(7));
    assert_eq!(
        (offset, outcome),
        (0, ClientEvent::PutStored),
        "resume=false starts over"
    );
    assert_eq!(client.get("fresh").unwrap(), body);
}

#[test]
fn cancelled_upload_stays_resumable() {
    let server = TestServer::start(|_| {});
    let body = data(400_000, 13);
    let mut client = server.client();
    assert_eq!(
        client.put_request("cancel", body.len() as u64, false, true, tag(7)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..200_000]);
    client.conn.cancel_upload().unwrap();
    client.flush();
    let expected = unit_floor(200_000);
    wait_until("the cancelled upload's checkpoint", || {
        client.query("cancel", tag(7)) == (None, Some(expected))
    });
    let (offset, outcome) = client.put_retrying("cancel", &body, false, true, tag(7));
    assert_eq!((offset, outcome), (expected, ClientEvent::PutStored));
    assert_eq!(client.get("cancel").unwrap(), body);
}

#[test]
fn partial_uploads_older_than_the_age_limit_are_removed() {
    let server = TestServer::start(|_| {});
    let body = data(400_000, 14);
    let sent = upload_cut_after(&mut server.client(), "stale", &body, 300_000);
    wait_for_partial(&server, "stale", Some(unit_floor(sent)));

    // A restart within the age limit keeps it.
    let server = server.restart(|_| {});
    assert_eq!(
        server.client().query("stale", tag(7)),
        (None, Some(unit_floor(sent)))
    );
    assert!(!server.staged_files().is_empty());

    // A restart with an age limit it has passed removes it.
    std::thread::sleep(Duration::from_millis(20));
    let server = server.restart(|config| config.staging_max_age = Duration::from_millis(10));
    assert_eq!(server.client().query("stale", tag(7)), (None, None));
    assert!(
        server.staged_files().is_empty(),
        "{:?}",
        server.staged_files()
    );
    // Nothing of it ever became visible.
    assert!(server.client().names().is_empty());
    let _ = Digest::of(&body);
}

#[test]
fn a_torn_checkpoint_is_never_believed_and_the_upload_starts_over() {
    let server = TestServer::start(|_| {});
    let body = data(500_000, 15);
    let sent = upload_cut_after(&mut server.client(), "torn", &body, 400_000);
    wait_for_partial(&server, "torn", Some(unit_floor(sent)));
    let checkpoint = server
        .staged_files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .unwrap();
    let mut bytes = std::fs::read(&checkpoint).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&checkpoint, &bytes).unwrap();

    let server = server.restart(|_| {});
    let mut client = server.client();
    assert_eq!(client.query("torn", tag(7)), (None, None));
    let (offset, outcome) = client.put("torn", &body, false, true, tag(7));
    assert_eq!((offset, outcome), (0, ClientEvent::PutStored));
    assert_eq!(client.get("torn").unwrap(), body);
}
