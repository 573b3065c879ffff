//! Pipelined uploads (protocol version 2) against a real `ferryd` on a folder: a window of
//! eager uploads committed in groups, then `kill -9` (or a crash at a commit step) inside the
//! window. After a restart, every file the client was told is stored is there and whole, and
//! every visible file is whole: an upload in flight is absent, or whole if its commit got as
//! far as its rename, never partial.
#![cfg(debug_assertions)]

use std::path::Path;

use ferry_protocol::{ClientEvent, Digest};

use crate::support::ferryd::Ferryd;
use crate::support::{Client, data, tag};

const FILES: usize = 300;

fn name(i: usize) -> String {
    format!("w/f{i:03}")
}

fn content(i: usize) -> Vec<u8> {
    data(4096 + i, i as u64)
}

/// Writes the whole window of eager uploads without reading any answer.
fn send_window(client: &mut Client) {
    for i in 0..FILES {
        let bytes = content(i);
        if client
            .conn
            .put_eager(&name(i), bytes.len() as u64, false, tag(i as u8))
            .is_err()
        {
            return;
        }
        client.send_data_lenient(&bytes);
        if client.conn.finish_upload(Digest::of(&bytes)).is_err() {
            return;
        }
        client.flush();
    }
}

/// The files whose `ACK`s came before the connection ended, in order from the first.
fn read_acks(client: &mut Client, stop_after: usize, server: &mut Option<Ferryd>) -> usize {
    let mut acked = 0;
    while let Ok(event) = client.next_event() {
        assert_eq!(event, ClientEvent::PutStored, "file {acked}");
        acked += 1;
        if acked == stop_after
            && let Some(server) = server.take()
        {
            server.kill_9();
        }
    }
    acked
}

/// Every file up to `acked` is whole; every other visible one is whole too.
fn check(root: &Path, acked: usize, label: &str) {
    for i in 0..FILES {
        match std::fs::read(root.join(name(i))) {
            Ok(bytes) => assert_eq!(bytes, content(i), "{label}: file {i} is not whole"),
            Err(_) => assert!(i >= acked, "{label}: file {i} was ACKed and is gone"),
        }
    }
}

#[test]
fn kill_9_inside_a_window_keeps_every_acked_file_and_no_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let server = Ferryd::start(&root, &[]);
    let mut client = Client::connect(server.addr);
    assert!(client.conn.version() >= 2, "pipelining needs version 2");
    let mut server = Some(server);
    send_window(&mut client);
    let acked = read_acks(&mut client, 40, &mut server);
    assert!(acked >= 40, "only {acked} ACKs before the kill");
    let _restarted = Ferryd::start(&root, &[]);
    check(&root, acked, "kill -9");
}

#[test]
fn a_crash_at_a_commit_step_inside_a_window_keeps_every_visible_file_whole() {
    for step in ["after-fsync", "after-rename", "after-folder-sync"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let server = Ferryd::start_with(&root, &[], &[("FERRYD_CRASH_AT", step)]);
        let mut client = Client::connect(server.addr);
        send_window(&mut client);
        let acked = read_acks(&mut client, usize::MAX, &mut None);
        assert_eq!(
            acked, 0,
            "{step}: an ACK came from a server that crashed in its first commit"
        );
        drop(server);
        let _restarted = Ferryd::start(&root, &[]);
        check(&root, acked, step);
    }
}
