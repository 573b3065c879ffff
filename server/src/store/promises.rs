//! The promises every backend keeps, written once and run against each (`promises::folder::*`,
//! `promises::memory::*`): where the tests pass for both, the in-memory store the simulator runs
//! on behaves as the folder store does.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{Digest, FileHasher, HASH_UNIT_LEN, HashCheckpoint, PutRequest, SourceTag};

use crate::config::ServerConfig;
use crate::store::error::StorageError;
use crate::store::folder::Storage;
use crate::store::memory::{ManualClock, MemoryLimits, MemoryStore};
use crate::store::{Entry, Left, Store, Upload};

mod moves;

/// One hash unit, the grain of checkpoints.
const UNIT: usize = HASH_UNIT_LEN as usize;

/// Places a file under a name as a local user or another node would.
type Place = Box<dyn Fn(&str, &[u8])>;

/// A backend under test, with the means to act on it from outside the server.
pub(super) struct Subject {
    /// The store.
    pub(super) store: Arc<dyn Store>,
    /// The configuration its uploads begin with (a checkpoint every hash unit).
    pub(super) config: ServerConfig,
    /// Lets time pass for the store's notion of age.
    pass_time: Box<dyn Fn(Duration)>,
    /// Places a file as a local user or another node would.
    place: Place,
    _root: Option<tempfile::TempDir>,
}

/// The folder store in a fresh temporary folder.
fn folder() -> Subject {
    let root = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(root.path());
    config.checkpoint_interval = HASH_UNIT_LEN;
    let storage = Storage::open(&config).unwrap();
    let path = storage.root().to_path_buf();
    Subject {
        store: storage,
        config,
        pass_time: Box::new(std::thread::sleep),
        place: Box::new(move |name, bytes| {
            let file = path.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, bytes).unwrap();
        }),
        _root: Some(root),
    }
}

/// A fresh in-memory store on a manual clock, waiting for a takeover as the folder store does.
fn memory() -> Subject {
    let clock = ManualClock::default();
    let limits = MemoryLimits {
        takeover_wait: Duration::from_secs(5),
        ..MemoryLimits::default()
    };
    let store = MemoryStore::new(limits, clock.clock());
    let mut config = ServerConfig::new("unused-by-the-memory-store");
    config.checkpoint_interval = HASH_UNIT_LEN;
    let outside = store.clone();
    Subject {
        store: Arc::new(store),
        config,
        pass_time: Box::new(move |by| clock.advance(by)),
        place: Box::new(move |name, bytes| outside.insert(name, bytes)),
        _root: None,
    }
}

/// A request to upload `size` bytes as `name` from the client file tagged `tag`.
pub(super) fn put(name: &str, size: usize, tag: u8) -> PutRequest {
    PutRequest {
        name: name.to_owned(),
        size: size as u64,
        overwrite: false,
        resume: true,
        tag: SourceTag([tag; 16]),
        eager: false,
        streamed: false,
    }
}

/// Distinct bytes for a test file.
pub(super) fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Writes `data` a unit at a time as the connection does: progress noted after each write,
/// a checkpoint started when one is due.
pub(super) fn feed(upload: &mut Upload, hasher: &mut FileHasher, data: &[u8], interval: u64) {
    for chunk in data.chunks(UNIT) {
        upload.write(chunk).unwrap();
        hasher.update(chunk);
        upload.note_progress(hasher.checkpoint());
        if upload.wants_checkpoint(interval) {
            upload.start_checkpoint().unwrap();
        }
    }
}

/// Uploads `data` as `request` in one go and commits it.
fn upload(subject: &Subject, request: &PutRequest, data: &[u8]) -> Result<(), StorageError> {
    let (mut upload, checkpoint) = subject.store.begin_upload(&subject.config, request)?;
    assert_eq!(checkpoint.offset(), 0, "a fresh upload starts at 0");
    let mut hasher = FileHasher::new();
    feed(
        &mut upload,
        &mut hasher,
        data,
        subject.config.checkpoint_interval,
    );
    upload.commit(&hasher.finalize())
}

/// The whole content of `name` as a download reads it, with its size and digest.
fn download(store: &dyn Store, name: &str) -> (Vec<u8>, Option<Digest>) {
    let mut opened = store.open_for_download(name).unwrap();
    let mut content = Vec::new();
    opened
        .content
        .read_from(0)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content.len() as u64, opened.size);
    (content, opened.digest)
}

/// Every entry a listing of `prefix` gives.
fn list(store: &dyn Store, prefix: &str) -> Vec<Entry> {
    let mut all = Vec::new();
    store
        .list(prefix, &mut |page| {
            all.extend_from_slice(page);
            ControlFlow::Continue(())
        })
        .unwrap();
    all
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.name.as_str()).collect()
}

fn a_file_shows_only_once_committed_with_its_digest(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(3 * UNIT + 100, 1);
    let request = put("f", data.len(), 1);
    let (mut upload, _) = store.begin_upload(&subject.config, &request).unwrap();
    let mut hasher = FileHasher::new();
    feed(
        &mut upload,
        &mut hasher,
        &data,
        subject.config.checkpoint_interval,
    );

    let held = store.query("f", &request.tag).unwrap();
    assert_eq!(
        held.stored_size, None,
        "all bytes arrived but nothing committed"
    );
    assert!(list(store, "").is_empty());
    assert!(matches!(
        store.open_for_download("f"),
        Err(StorageError::NotFound(_))
    ));

    let digest = hasher.finalize();
    upload.commit(&digest).unwrap();
    let held = store.query("f", &request.tag).unwrap();
    assert_eq!(held.stored_size, Some(data.len() as u64));
    assert_eq!(
        held.stored_digest,
        Some(digest),
        "digest recorded at commit"
    );
    assert_eq!(held.partial_offset, None, "nothing staged once committed");
    assert_eq!(download(store, "f"), (data, Some(digest)));
}

fn an_upload_whose_digest_failed_leaves_nothing(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(2 * UNIT + 7, 2);
    let request = put("g", data.len(), 2);
    let (mut upload, _) = store.begin_upload(&subject.config, &request).unwrap();
    feed(&mut upload, &mut FileHasher::new(), &data, HASH_UNIT_LEN);
    assert_eq!(upload.discard(), Left::Removed);
    let held = store.query("g", &request.tag).unwrap();
    assert_eq!((held.stored_size, held.partial_offset), (None, None));
}

fn an_interrupted_upload_resumes_from_its_last_checkpoint(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(5 * UNIT + 100, 3);
    let request = put("r", data.len(), 3);
    let (mut upload, _) = store.begin_upload(&subject.config, &request).unwrap();
    let mut hasher = FileHasher::new();
    let cut = 3 * UNIT + UNIT / 2;
    feed(&mut upload, &mut hasher, &data[..cut], HASH_UNIT_LEN);
    let latest = hasher.checkpoint().offset();
    assert_eq!(latest, 3 * HASH_UNIT_LEN);
    assert_eq!(upload.suspend(), Left::Resumable(latest));

    let other_file = SourceTag([9; 16]);
    assert_eq!(store.query("r", &other_file).unwrap().partial_offset, None);
    assert_eq!(
        store.query("r", &request.tag).unwrap().partial_offset,
        Some(latest)
    );

    let (mut upload, checkpoint) = store.begin_upload(&subject.config, &request).unwrap();
    assert_eq!(checkpoint.offset(), latest);
    assert_eq!(upload.start_offset(), latest);
    let mut hasher = FileHasher::resume(&checkpoint);
    feed(
        &mut upload,
        &mut hasher,
        &data[latest as usize..],
        HASH_UNIT_LEN,
    );
    let digest = hasher.finalize();
    assert_eq!(
        digest,
        Digest::of(&data),
        "the saved hash state was the real one"
    );
    upload.commit(&digest).unwrap();
    assert_eq!(download(store, "r").0, data);
}

fn a_resume_of_another_size_starts_over(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(3 * UNIT, 4);
    let request = put("s", data.len(), 4);
    let (mut upload, _) = store.begin_upload(&subject.config, &request).unwrap();
    feed(&mut upload, &mut FileHasher::new(), &data, HASH_UNIT_LEN);
    assert!(matches!(upload.suspend(), Left::Resumable(_)));
    let bigger = put("s", data.len() + 1, 4);
    let (_upload, checkpoint) = store.begin_upload(&subject.config, &bigger).unwrap();
    assert_eq!(checkpoint, HashCheckpoint::start());
}

fn an_existing_name_is_refused_unless_overwritten(subject: &Subject) {
    let store = &*subject.store;
    upload(subject, &put("e", 10, 5), &bytes(10, 5)).unwrap();
    assert!(matches!(
        store.begin_upload(&subject.config, &put("e", 20, 6)),
        Err(StorageError::AlreadyExists)
    ));
    let overwrite = PutRequest {
        overwrite: true,
        ..put("e", 20, 6)
    };
    upload(subject, &overwrite, &bytes(20, 6)).unwrap();
    assert_eq!(download(store, "e").0, bytes(20, 6));
}

fn a_name_taken_during_an_upload_is_refused_at_commit(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(2 * UNIT + 1, 7);
    let (mut upload, _) = store
        .begin_upload(&subject.config, &put("race", data.len(), 7))
        .unwrap();
    let mut hasher = FileHasher::new();
    feed(&mut upload, &mut hasher, &data, HASH_UNIT_LEN);
    (subject.place)("race", b"placed meanwhile");
    assert!(matches!(
        upload.commit(&hasher.finalize()),
        Err(StorageError::AlreadyExists)
    ));
    assert_eq!(download(store, "race").0, b"placed meanwhile");
}

fn a_second_upload_is_in_progress_and_the_same_client_file_takes_over(subject: &Subject) {
    let store = &subject.store;
    let data = bytes(3 * UNIT, 8);
    let request = put("t", data.len(), 8);
    let (mut first, _) = store.begin_upload(&subject.config, &request).unwrap();
    feed(
        &mut first,
        &mut FileHasher::new(),
        &data[..2 * UNIT + 5],
        HASH_UNIT_LEN,
    );
    assert!(matches!(
        store.begin_upload(&subject.config, &put("t", data.len(), 9)),
        Err(StorageError::InProgress)
    ));
    assert!(
        !first.is_superseded(),
        "another client's attempt does not stand it down"
    );

    let (taker_store, config, taker_request) =
        (Arc::clone(store), subject.config.clone(), request.clone());
    let taker = std::thread::spawn(move || {
        taker_store
            .begin_upload(&config, &taker_request)
            .map(|(_, checkpoint)| checkpoint.offset())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !first.is_superseded() {
        assert!(Instant::now() < deadline, "never asked to stand down");
        std::thread::sleep(Duration::from_millis(1));
    }
    let Left::Resumable(left_at) = first.suspend() else {
        panic!("the stood-down upload is resumable");
    };
    assert_eq!(taker.join().unwrap().unwrap(), left_at);
}

fn a_download_reads_the_version_it_opened_even_if_replaced(subject: &Subject) {
    let store = &*subject.store;
    let old = bytes(2 * UNIT + 3, 10);
    let new = bytes(UNIT + 9, 11);
    upload(subject, &put("v", old.len(), 10), &old).unwrap();
    let mut opened = store.open_for_download("v").unwrap();
    let overwrite = PutRequest {
        overwrite: true,
        ..put("v", new.len(), 11)
    };
    upload(subject, &overwrite, &new).unwrap();

    let mut read = Vec::new();
    opened
        .content
        .read_from(0)
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert_eq!(read, old, "the old version whole");
    assert_eq!(opened.digest, Some(Digest::of(&old)));
    let mut tail = Vec::new();
    opened
        .content
        .read_from(UNIT as u64)
        .unwrap()
        .read_to_end(&mut tail)
        .unwrap();
    assert_eq!(tail, old[UNIT..]);
    assert_eq!(download(store, "v"), (new.clone(), Some(Digest::of(&new))));
}

fn a_digest_remembered_by_a_download_is_kept_for_its_version_only(subject: &Subject) {
    let store = &*subject.store;
    (subject.place)("placed", b"from outside");
    let opened = store.open_for_download("placed").unwrap();
    assert_eq!(opened.digest, None, "nobody recorded it");
    let digest = Digest::of(b"from outside");
    opened.content.remember_digest(&digest);
    let tag = SourceTag([0; 16]);
    assert_eq!(
        store.query("placed", &tag).unwrap().stored_digest,
        Some(digest)
    );

    let stale = store.open_for_download("placed").unwrap();
    (subject.place)("placed", b"replaced from outside");
    stale.content.remember_digest(&digest);
    assert_eq!(store.query("placed", &tag).unwrap().stored_digest, None);
}

fn remove_frees_the_name_and_a_missing_name_is_not_found(subject: &Subject) {
    let store = &*subject.store;
    upload(subject, &put("gone", 123, 12), &bytes(123, 12)).unwrap();
    assert_eq!(store.remove("gone").unwrap(), 123);
    assert!(matches!(
        store.remove("gone"),
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        store.open_for_download("gone"),
        Err(StorageError::NotFound(_))
    ));
    upload(subject, &put("gone", 5, 13), &bytes(5, 13)).unwrap();
}

fn a_name_under_a_file_is_a_bad_name(subject: &Subject) {
    let store = &*subject.store;
    upload(subject, &put("f", 3, 14), &bytes(3, 14)).unwrap();
    let refused = store.begin_upload(&subject.config, &put("f/g", 3, 14));
    assert!(
        matches!(&refused, Err(StorageError::BadName { reason, .. }) if reason.contains("is a file")),
        "{:?}",
        refused.map(|_| ())
    );
    assert!(matches!(
        store.query("../up", &SourceTag([0; 16])),
        Err(StorageError::BadName { .. })
    ));
}

fn listing_is_in_name_order_by_prefix_and_hides_reserved_names(subject: &Subject) {
    let store = &*subject.store;
    for (name, len) in [("b", 1), ("a/y", 2), ("ab", 3), ("a/x", 4), ("c", 5)] {
        upload(subject, &put(name, len, len as u8), &bytes(len, 0)).unwrap();
    }
    (subject.place)(".ferry-private", b"hidden");
    let all = list(store, "");
    assert_eq!(names(&all), ["a/x", "a/y", "ab", "b", "c"]);
    assert_eq!(all[0].size, 4);
    assert_eq!(names(&list(store, "a")), ["a/x", "a/y", "ab"]);
    assert_eq!(names(&list(store, "a/")), ["a/x", "a/y"]);
    assert!(list(store, "zz").is_empty());
    assert!(list(store, ".ferry").is_empty());
}

fn sweep_removes_partials_past_their_age_and_spares_uploads_under_way(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(3 * UNIT, 15);
    let (idle, busy) = (put("idle", data.len(), 15), put("busy", data.len(), 16));
    let (mut upload, _) = store.begin_upload(&subject.config, &idle).unwrap();
    feed(
        &mut upload,
        &mut FileHasher::new(),
        &data[..2 * UNIT + 1],
        HASH_UNIT_LEN,
    );
    assert!(matches!(upload.suspend(), Left::Resumable(_)));
    let (mut under_way, _) = store.begin_upload(&subject.config, &busy).unwrap();
    feed(
        &mut under_way,
        &mut FileHasher::new(),
        &data[..2 * UNIT + 1],
        HASH_UNIT_LEN,
    );

    store.sweep_staging(Duration::from_secs(3600));
    assert!(
        store
            .query("idle", &idle.tag)
            .unwrap()
            .partial_offset
            .is_some()
    );

    (subject.pass_time)(Duration::from_millis(60));
    store.sweep_staging(Duration::from_millis(20));
    assert_eq!(store.query("idle", &idle.tag).unwrap().partial_offset, None);
    assert!(matches!(under_way.suspend(), Left::Resumable(_)));
    assert!(
        store
            .query("busy", &busy.tag)
            .unwrap()
            .partial_offset
            .is_some()
    );
}

/// Runs each promise against the folder store and the in-memory store.
macro_rules! promises {
    ($($promise:ident),* $(,)?) => {
        mod folder {
            $(#[test] fn $promise() { super::$promise(&super::folder()) })*
        }
        mod memory {
            $(#[test] fn $promise() { super::$promise(&super::memory()) })*
        }
    };
}

promises!(
    a_file_shows_only_once_committed_with_its_digest,
    an_upload_whose_digest_failed_leaves_nothing,
    an_interrupted_upload_resumes_from_its_last_checkpoint,
    a_resume_of_another_size_starts_over,
    an_existing_name_is_refused_unless_overwritten,
    a_name_taken_during_an_upload_is_refused_at_commit,
    a_second_upload_is_in_progress_and_the_same_client_file_takes_over,
    a_download_reads_the_version_it_opened_even_if_replaced,
    a_digest_remembered_by_a_download_is_kept_for_its_version_only,
    remove_frees_the_name_and_a_missing_name_is_not_found,
    a_name_under_a_file_is_a_bad_name,
    listing_is_in_name_order_by_prefix_and_hides_reserved_names,
    sweep_removes_partials_past_their_age_and_spares_uploads_under_way,
);
