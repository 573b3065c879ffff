//! What only the in-memory store does: its durability model under a crash, its faults, its
//! clock. The promises it shares with the folder store are checked against both in
//! `store::promises`.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ferry_protocol::{ErrorCode, FileHasher, HASH_UNIT_LEN, Timestamp};

use super::{Faults, ManualClock, MemoryLimits, MemoryStore};
use crate::config::ServerConfig;
use crate::store::error::StorageError;
use crate::store::promises::{bytes, feed, put};
use crate::store::{Left, Store, Upload};

const UNIT: usize = HASH_UNIT_LEN as usize;

/// A store on a manual clock, with `limits`.
fn store_with(limits: MemoryLimits) -> (MemoryStore, ManualClock, ServerConfig) {
    let clock = ManualClock::default();
    let store = MemoryStore::new(limits, clock.clock());
    let mut config = ServerConfig::new("unused-by-the-memory-store");
    config.checkpoint_interval = HASH_UNIT_LEN;
    (store, clock, config)
}

fn store() -> (MemoryStore, ManualClock, ServerConfig) {
    store_with(MemoryLimits::default())
}

/// An upload of `data` as `name` with its first `checkpointed` bytes durable (a checkpoint
/// made there) and the next `volatile` bytes written after it, never synced.
fn upload_with_volatile_tail(
    store: &MemoryStore,
    config: &ServerConfig,
    name: &str,
    data: &[u8],
    checkpointed: usize,
    volatile: usize,
) -> Upload {
    let (mut upload, _) = store
        .begin_upload(config, &put(name, data.len(), 1))
        .unwrap();
    let mut hasher = FileHasher::new();
    // One unit more than the checkpoint, since a hasher's state trails by one unit.
    upload.write(&data[..checkpointed + UNIT]).unwrap();
    hasher.update(&data[..checkpointed + UNIT]);
    upload.note_progress(hasher.checkpoint());
    assert_eq!(hasher.checkpoint().offset(), checkpointed as u64);
    upload.start_checkpoint().unwrap();
    let tail = &data[checkpointed + UNIT..checkpointed + UNIT + volatile];
    upload.write(tail).unwrap();
    hasher.update(tail);
    upload.note_progress(hasher.checkpoint());
    upload
}

#[test]
fn bytes_written_after_the_last_checkpoint_are_lost_in_a_crash() {
    let (store, _, config) = store();
    let data = bytes(6 * UNIT, 1);
    let _upload = upload_with_volatile_tail(&store, &config, "f", &data, 2 * UNIT, 2 * UNIT);
    assert_eq!(store.bytes_held(), 5 * UNIT as u64);

    store.crash();
    // The checkpoint synced everything written by then (2 units it covers, 1 it does not).
    assert_eq!(store.bytes_held(), 3 * UNIT as u64);
    let tag = put("f", 0, 1).tag;
    assert_eq!(
        store.query("f", &tag).unwrap().partial_offset,
        Some(2 * HASH_UNIT_LEN)
    );
    assert_eq!(
        store.uploads_under_way(),
        0,
        "locks do not survive a power cut"
    );
}

#[test]
fn an_upload_resumes_from_its_durable_checkpoint_after_a_crash() {
    let (store, _, config) = store();
    let data = bytes(6 * UNIT + 10, 2);
    let mut old = upload_with_volatile_tail(&store, &config, "f", &data, 2 * UNIT, UNIT);
    store.crash();

    // The upload of the dead machine fails, and its name is free for the resume at once.
    let error = old.write(b"more").unwrap_err();
    assert!(error.to_string().contains("restarted"), "{error}");
    let (mut upload, checkpoint) = store
        .begin_upload(&config, &put("f", data.len(), 1))
        .unwrap();
    assert_eq!(checkpoint.offset(), 2 * HASH_UNIT_LEN);
    assert_eq!(old.suspend(), Left::Resumable(2 * HASH_UNIT_LEN));
    let mut hasher = FileHasher::resume(&checkpoint);
    feed(&mut upload, &mut hasher, &data[2 * UNIT..], HASH_UNIT_LEN);
    upload.commit(&hasher.finalize()).unwrap();
    assert_eq!(*store.file("f").unwrap().bytes, data);
}

#[test]
fn an_upload_never_checkpointed_leaves_nothing_after_a_crash() {
    let (store, _, config) = store();
    let (mut upload, _) = store.begin_upload(&config, &put("f", 100, 1)).unwrap();
    upload.write(&[7; 60]).unwrap();
    store.crash();
    assert_eq!(store.bytes_held(), 0);
    assert_eq!(
        store
            .query("f", &put("f", 0, 1).tag)
            .unwrap()
            .partial_offset,
        None
    );
}

#[test]
fn committed_files_survive_a_crash_whole_with_their_digest() {
    let (store, _, config) = store();
    let data = bytes(2 * UNIT + 5, 3);
    let (mut upload, _) = store
        .begin_upload(&config, &put("kept", data.len(), 3))
        .unwrap();
    let mut hasher = FileHasher::new();
    feed(&mut upload, &mut hasher, &data, u64::MAX);
    upload.commit(&hasher.finalize()).unwrap();
    store.crash();
    let file = store.file("kept").unwrap();
    assert_eq!(*file.bytes, data);
    assert_eq!(file.digest, Some(hasher.finalize()));
}

#[test]
fn a_full_disk_mid_upload_fails_with_the_full_error_and_stays_resumable() {
    let (store, _, config) = store();
    let data = bytes(4 * UNIT, 4);
    let request = put("big", data.len(), 4);
    let (mut upload, _) = store.begin_upload(&config, &request).unwrap();
    store.set_faults(Faults {
        full_after: Some(2 * HASH_UNIT_LEN + 100),
        ..Faults::default()
    });
    let mut hasher = FileHasher::new();
    let mut failure = None;
    for chunk in data.chunks(UNIT) {
        // As the connection does: progress is noted only after a write that succeeded.
        if let Err(error) = upload.write(chunk) {
            failure = Some(error);
            break;
        }
        hasher.update(chunk);
        upload.note_progress(hasher.checkpoint());
    }
    let failure = failure.unwrap();
    assert!(matches!(failure, StorageError::NoSpace { .. }), "{failure}");
    assert_eq!(failure.code(), ErrorCode::DiskFull);
    assert_eq!(store.faults().full_after, Some(0));

    // The interrupted upload keeps its latest hash state (1 unit: it trails by one).
    assert_eq!(upload.suspend(), Left::Resumable(HASH_UNIT_LEN));
    store.crash();
    store.set_faults(Faults::default());
    let (mut upload, checkpoint) = store.begin_upload(&config, &request).unwrap();
    assert_eq!(
        checkpoint.offset(),
        HASH_UNIT_LEN,
        "durable before the crash"
    );
    let mut hasher = FileHasher::resume(&checkpoint);
    feed(&mut upload, &mut hasher, &data[UNIT..], HASH_UNIT_LEN);
    upload.commit(&hasher.finalize()).unwrap();
    assert_eq!(*store.file("big").unwrap().bytes, data);
}

#[test]
fn an_upload_larger_than_the_free_space_is_refused_before_any_data_moves() {
    let (store, _, config) = store_with(MemoryLimits {
        capacity: Some(1000),
        ..MemoryLimits::default()
    });
    store.insert("there", &[0; 400]);
    let refused = store.begin_upload(&config, &put("f", 700, 1));
    assert!(
        matches!(
            refused,
            Err(StorageError::DiskFull {
                need: 700,
                free: 600
            })
        ),
        "{:?}",
        refused.map(|_| ())
    );
    assert!(store.begin_upload(&config, &put("f", 600, 1)).is_ok());
}

#[test]
fn the_quota_counts_the_bytes_uploads_under_way_will_bring() {
    let (store, _, config) = store_with(MemoryLimits {
        quota: Some(1000),
        ..MemoryLimits::default()
    });
    let _first = store.begin_upload(&config, &put("a", 600, 1)).unwrap();
    let refused = store.begin_upload(&config, &put("b", 600, 2));
    assert!(
        matches!(refused, Err(StorageError::OverQuota { need: 600, .. })),
        "{:?}",
        refused.map(|_| ())
    );
}

#[test]
fn a_lost_store_fails_every_call_with_a_clear_error_and_changes_nothing() {
    let (store, _, config) = store();
    store.insert("kept", b"content");
    let mut download = store.open_for_download("kept").unwrap();
    let (mut upload, _) = store.begin_upload(&config, &put("up", 10, 1)).unwrap();
    store.set_faults(Faults {
        lost: true,
        ..Faults::default()
    });

    let unreachable = |error: StorageError| {
        assert_eq!(error.code(), ErrorCode::StorageError);
        assert!(error.to_string().contains("unreachable"), "{error}");
    };
    unreachable(upload.write(b"x").unwrap_err());
    unreachable(
        store
            .begin_upload(&config, &put("b", 1, 2))
            .map(|_| ())
            .unwrap_err(),
    );
    unreachable(store.open_for_download("kept").map(|_| ()).unwrap_err());
    unreachable(store.query("kept", &put("", 0, 0).tag).unwrap_err());
    unreachable(store.remove("kept").unwrap_err());
    unreachable(
        store
            .list("", &mut |_| ControlFlow::Continue(()))
            .unwrap_err(),
    );
    let read = download.content.read_from(0).map(|_| ()).unwrap_err();
    assert!(read.to_string().contains("unreachable"), "{read}");

    store.set_faults(Faults::default());
    assert_eq!(*store.file("kept").unwrap().bytes, b"content");
    upload.write(&[1; 10]).unwrap();
}

#[test]
fn a_slow_store_reports_its_latency_and_never_sleeps() {
    let (store, _, config) = store();
    store.set_faults(Faults {
        latency: Duration::from_secs(10),
        latency_per_mib: Duration::from_secs(60),
        ..Faults::default()
    });
    let started = Instant::now();
    let (mut upload, _) = store
        .begin_upload(&config, &put("slow", 512 * 1024, 1))
        .unwrap();
    upload.write(&[0; 512 * 1024]).unwrap();
    // begin: two calls (the name, then the staging); write: one call and half a MiB.
    // 3 × 10 s + 60 s / 2
    assert_eq!(store.poll_delay(), Duration::from_secs(60));
    assert_eq!(
        store.poll_delay(),
        Duration::ZERO,
        "each delay is reported once"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no real time spent"
    );
}

#[test]
fn a_sweep_ages_partials_on_the_stores_clock() {
    let (store, clock, config) = store();
    let data = bytes(3 * UNIT, 5);
    let request = put("p", data.len(), 5);
    let (mut upload, _) = store.begin_upload(&config, &request).unwrap();
    feed(
        &mut upload,
        &mut FileHasher::new(),
        &data[..2 * UNIT + 1],
        HASH_UNIT_LEN,
    );
    assert!(matches!(upload.suspend(), Left::Resumable(_)));

    clock.advance(Duration::from_secs(3600));
    store.sweep_staging(Duration::from_secs(3600));
    assert!(
        store
            .query("p", &request.tag)
            .unwrap()
            .partial_offset
            .is_some()
    );
    clock.advance(Duration::from_micros(1));
    store.sweep_staging(Duration::from_secs(3600));
    assert_eq!(store.query("p", &request.tag).unwrap().partial_offset, None);
    assert_eq!(store.bytes_held(), 0);
}

#[test]
fn with_no_takeover_wait_the_same_client_file_stands_the_holder_down_and_retries() {
    let (store, _, config) = store();
    let data = bytes(3 * UNIT, 6);
    let request = put("t", data.len(), 6);
    let (mut holder, _) = store.begin_upload(&config, &request).unwrap();
    feed(
        &mut holder,
        &mut FileHasher::new(),
        &data[..2 * UNIT + 1],
        HASH_UNIT_LEN,
    );
    assert!(matches!(
        store.begin_upload(&config, &request),
        Err(StorageError::InProgress)
    ));
    assert!(holder.is_superseded(), "asked to stand down");
    let Left::Resumable(left_at) = holder.suspend() else {
        panic!("resumable");
    };
    let (_, checkpoint) = store.begin_upload(&config, &request).unwrap();
    assert_eq!(checkpoint.offset(), left_at);
}

#[test]
fn listing_dates_come_from_the_stores_clock() {
    let (store, clock, _) = store();
    clock.set(Timestamp::from_micros(1_700_000_000_123_456));
    store.insert("dated", b"x");
    let mut modified = Vec::new();
    store
        .list("", &mut |page| {
            modified.extend(page.iter().map(|entry| entry.modified_ms));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(modified, [1_700_000_000_123]);
}

#[test]
fn a_listing_stops_when_its_reader_says_so() {
    let (store, _, _) = store();
    for i in 0..2500 {
        store.insert(&format!("n{i:05}"), b"");
    }
    let mut pages = Vec::new();
    store
        .list("", &mut |page| {
            pages.push(page.len());
            if pages.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(pages, [1000, 1000]);
}

/// Everything a test can observe of a store, for comparing two runs.
fn observe(store: &MemoryStore) -> Vec<String> {
    let tag = put("", 0, 1).tag;
    store
        .names()
        .into_iter()
        .chain(["f".to_owned(), "g".to_owned()])
        .map(|name| {
            let file = store.file(&name);
            let held = store.query(&name, &tag).ok();
            format!("{name}: {file:?} {held:?}")
        })
        .chain([format!("{} {:?}", store.bytes_held(), store.faults())])
        .collect()
}

/// A run of uploads, faults, a crash and a sweep.
fn script(store: &MemoryStore, clock: &ManualClock, config: &ServerConfig) -> Duration {
    store.set_faults(Faults {
        latency: Duration::from_millis(3),
        latency_per_mib: Duration::from_millis(7),
        full_after: Some(5 * HASH_UNIT_LEN + 17),
        ..Faults::default()
    });
    let data = bytes(4 * UNIT + 3, 9);
    let mut hasher = FileHasher::new();
    let (mut upload, _) = store
        .begin_upload(config, &put("f", data.len(), 1))
        .unwrap();
    feed(&mut upload, &mut hasher, &data, HASH_UNIT_LEN);
    upload.commit(&hasher.finalize()).unwrap();
    clock.advance(Duration::from_secs(2));
    let (mut upload, _) = store
        .begin_upload(config, &put("g", data.len(), 1))
        .unwrap();
    let _ = upload.write(&data[..3 * UNIT]);
    store.crash();
    clock.advance(Duration::from_secs(2));
    store.sweep_staging(Duration::from_secs(1));
    store.poll_delay()
}

#[test]
fn the_same_calls_leave_the_same_store() {
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (store, clock, config) = store();
            let delay = script(&store, &clock, &config);
            (observe(&store), delay)
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn a_download_reads_a_version_from_any_offset_and_refuses_past_its_end() {
    let (store, _, _) = store();
    store.insert("f", b"0123456789");
    let mut opened = store.open_for_download("f").unwrap();
    let mut tail = String::new();
    opened
        .content
        .read_from(4)
        .unwrap()
        .read_to_string(&mut tail)
        .unwrap();
    assert_eq!(tail, "456789");
    assert!(opened.content.read_from(11).is_err());
}

/// Commits `data` as `name` (overwriting), the whole upload in one go.
fn commit(store: &MemoryStore, config: &ServerConfig, name: &str, data: &[u8]) {
    let mut request = put(name, data.len(), 1);
    request.overwrite = true;
    let (mut upload, _) = store.begin_upload(config, &request).unwrap();
    let mut hasher = FileHasher::new();
    feed(&mut upload, &mut hasher, data, HASH_UNIT_LEN);
    upload.commit(&hasher.finalize()).unwrap();
}

#[test]
fn the_volatile_commit_sabotage_loses_acknowledged_files_in_a_crash_and_nothing_else() {
    let (store, _, config) = store();
    commit(&store, &config, "kept", &bytes(10, 1));
    commit(&store, &config, "replaced", &bytes(10, 2));
    store.set_faults(Faults {
        volatile_commits: true,
        ..Faults::default()
    });
    commit(&store, &config, "lost", &bytes(10, 3));
    commit(&store, &config, "replaced", &bytes(20, 4));
    assert_eq!(store.names(), ["kept", "lost", "replaced"]);

    store.crash();
    assert_eq!(store.names(), ["kept", "replaced"]);
    assert_eq!(*store.file("replaced").unwrap().bytes, bytes(10, 2));
}

#[test]
fn the_corrupting_commit_sabotage_flips_a_byte_the_digest_check_already_passed() {
    let (store, _, config) = store();
    store.set_faults(Faults {
        corrupt_commits: true,
        ..Faults::default()
    });
    let data = bytes(2 * UNIT, 5);
    commit(&store, &config, "f", &data);
    let stored = store.file("f").unwrap();
    let differing: Vec<usize> = (0..data.len())
        .filter(|&i| stored.bytes[i] != data[i])
        .collect();
    assert_eq!(differing, [super::CORRUPTED_BYTE as usize]);
}
