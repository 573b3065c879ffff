//! The bridge over the in-memory store: an original client's upload meets the session's rules
//! (stored whole with its digest, refused as a native upload would be, never kept unfinished,
//! ended at the session's own idle deadline).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{ErrorCode, FileHasher, HASH_UNIT_LEN, SourceTag, Timestamp};

use super::bridge::{Bridge, BridgeError};
use crate::auth::{Rights, Tokens, token_line};
use crate::config::ServerConfig;
use crate::session::Context;
use crate::store::Store;
use crate::store::memory::{Faults, ManualClock, MemoryLimits, MemoryStore};

const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);
const TAG: SourceTag = SourceTag([7; 16]);
const IDLE: Duration = Duration::from_secs(5);

fn at(ms: u64) -> Timestamp {
    Timestamp::from_micros(ms * 1000)
}

/// A memory store and the context of a server over it that checkpoints every hash unit.
fn server(adjust: impl FnOnce(&mut ServerConfig)) -> (MemoryStore, Context) {
    let store = MemoryStore::new(MemoryLimits::default(), ManualClock::default().clock());
    let mut config = ServerConfig::new("unused-by-the-memory-store");
    config.checkpoint_interval = HASH_UNIT_LEN;
    config.idle_timeout = IDLE;
    adjust(&mut config);
    let context = Context::new(config, Arc::new(store.clone()), Instant::now());
    (store, context)
}

fn data(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn start(context: &Context, name: &str, size: u64) -> Result<Bridge, BridgeError> {
    Bridge::start(
        context.clone(),
        PEER,
        at(0),
        at(1),
        (name, size, false, TAG),
    )
}

/// Nothing of an upload is left: no partial to resume, nothing staged.
fn assert_nothing_kept(store: &MemoryStore, name: &str) {
    assert!(store.file(name).is_none(), "{name} must not be visible");
    assert_eq!(store.uploads_under_way(), 0);
    assert_eq!(store.query(name, &TAG).unwrap().partial_offset, None);
    assert_eq!(store.bytes_held(), 0, "no staged bytes may stay");
}

#[test]
fn an_original_upload_is_stored_whole_with_the_digest_of_what_arrived() {
    let (store, context) = server(|_| {});
    let bytes = data(3 * HASH_UNIT_LEN + 11);
    let mut bridge = start(&context, "seed/a.bin", bytes.len() as u64).unwrap();
    for piece in bytes.chunks(70_001) {
        bridge.receive(at(2), piece).unwrap();
    }
    let digest = bridge.finish(at(3)).unwrap();
    let mut hasher = FileHasher::new();
    hasher.update(&bytes);
    assert_eq!(digest, hasher.finalize());
    let stored = store.file("seed/a.bin").unwrap();
    assert_eq!(*stored.bytes, bytes);
    assert_eq!(stored.digest, Some(digest));
}

#[test]
fn an_original_upload_over_an_existing_name_is_refused_as_a_native_one_is() {
    let (store, context) = server(|_| {});
    store.insert("taken.txt", b"old");
    let refused = start(&context, "taken.txt", 3).err().unwrap();
    assert!(
        matches!(
            refused,
            BridgeError::Refused {
                code: ErrorCode::AlreadyExists,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(*store.file("taken.txt").unwrap().bytes, b"old");
    let (store, context) = server(|config| config.max_file_size = 10);
    let refused = start(&context, "big.bin", 11).err().unwrap();
    assert!(
        matches!(
            refused,
            BridgeError::Refused {
                code: ErrorCode::TooLarge,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_nothing_kept(&store, "big.bin");
}

#[test]
fn an_original_client_needs_no_token_where_native_clients_do() {
    let line = token_line("s3cret", Rights::ReadOnly, None).unwrap();
    let tokens = Tokens::parse(&line).unwrap();
    let (store, context) = server(|config| config.tokens = Some(tokens));
    let mut bridge = start(&context, "open.txt", 2).unwrap();
    bridge.receive(at(2), b"hi").unwrap();
    bridge.finish(at(3)).unwrap();
    assert_eq!(*store.file("open.txt").unwrap().bytes, b"hi");
}

#[test]
fn an_unfinished_original_upload_is_deleted_not_kept_resumable() {
    let (store, context) = server(|_| {});
    let mut bridge = start(&context, "half.bin", 4 * HASH_UNIT_LEN).unwrap();
    // Past two checkpoints: a native upload would stay resumable from there.
    bridge.receive(at(2), &data(2 * HASH_UNIT_LEN + 5)).unwrap();
    assert_eq!(store.uploads_under_way(), 1);
    bridge.abandon("the client closed early");
    assert_nothing_kept(&store, "half.bin");
}

#[test]
fn a_silent_original_client_is_ended_at_the_sessions_idle_deadline_and_nothing_kept() {
    let (store, context) = server(|_| {});
    let mut bridge = start(&context, "quiet.bin", 2 * HASH_UNIT_LEN).unwrap();
    bridge.receive(at(1_000), &data(HASH_UNIT_LEN + 1)).unwrap();
    let deadline = bridge.poll_timeout().unwrap();
    assert_eq!(
        deadline,
        at(1_000) + IDLE,
        "the idle wait counts from the last byte"
    );
    bridge.handle_timeout(at(5_999)).unwrap();
    let ended = bridge.handle_timeout(at(6_000)).err().unwrap();
    assert!(
        matches!(
            ended,
            BridgeError::Refused {
                code: ErrorCode::Timeout,
                ..
            }
        ),
        "{ended:?}"
    );
    bridge.abandon("silent");
    assert_nothing_kept(&store, "quiet.bin");
}

#[test]
fn a_full_disk_ends_an_original_upload_and_nothing_is_kept() {
    let (store, context) = server(|_| {});
    store.set_faults(Faults {
        full_after: Some(HASH_UNIT_LEN + 10),
        ..Faults::default()
    });
    let mut bridge = start(&context, "full.bin", 3 * HASH_UNIT_LEN).unwrap();
    let bytes = data(3 * HASH_UNIT_LEN);
    let failed = bytes
        .chunks(4096)
        .find_map(|piece| bridge.receive(at(2), piece).err())
        .unwrap();
    assert!(
        matches!(
            failed,
            BridgeError::Refused {
                code: ErrorCode::DiskFull,
                ..
            }
        ),
        "{failed:?}"
    );
    bridge.abandon("the disk is full");
    assert_nothing_kept(&store, "full.bin");
}

#[test]
fn the_end_of_the_grace_period_ends_an_original_upload_and_nothing_is_kept() {
    let (store, context) = server(|_| {});
    let mut bridge = start(&context, "late.bin", 2 * HASH_UNIT_LEN).unwrap();
    bridge.receive(at(2), &data(HASH_UNIT_LEN + 3)).unwrap();
    bridge.handle_shutdown(at(3), false).unwrap();
    let ended = bridge.handle_shutdown(at(4), true).err().unwrap();
    assert!(
        matches!(
            ended,
            BridgeError::Refused {
                code: ErrorCode::ShuttingDown,
                ..
            }
        ),
        "{ended:?}"
    );
    bridge.abandon("shutdown");
    assert_nothing_kept(&store, "late.bin");
}
