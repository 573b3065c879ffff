//! The promises of a move (`Store::rename`), run against the folder store and the in-memory
//! store like the others in `promises`.

use std::io::Read;

use ferry_protocol::FileHasher;

use super::{Subject, UNIT, bytes, download, feed, list, names, put, upload};
use crate::store::error::StorageError;

fn a_file_moves_with_its_digest_and_a_folder_with_everything_under_it(subject: &Subject) {
    let store = &*subject.store;
    let data = bytes(2 * UNIT + 9, 1);
    upload(subject, &put("f", data.len(), 1), &data).unwrap();
    let (_, digest) = download(store, "f");
    assert!(digest.is_some());
    store.rename("f", "docs/g", false).unwrap();
    assert_eq!(download(store, "docs/g"), (data.clone(), digest));
    assert!(matches!(
        store.open_for_download("f"),
        Err(StorageError::NotFound(_))
    ));

    upload(subject, &put("docs/h", 5, 2), &bytes(5, 2)).unwrap();
    upload(subject, &put("docs/deep/i", 6, 3), &bytes(6, 3)).unwrap();
    store.rename("docs", "papers/2024", false).unwrap();
    assert_eq!(
        names(&list(store, "")),
        ["papers/2024/deep/i", "papers/2024/g", "papers/2024/h"]
    );
    assert_eq!(download(store, "papers/2024/g"), (data, digest));
    let (deep, deep_digest) = download(store, "papers/2024/deep/i");
    assert_eq!(deep, bytes(6, 3));
    assert!(deep_digest.is_some(), "every moved file keeps its digest");
}

fn a_taken_name_is_refused_unless_a_file_overwrites_a_file(subject: &Subject) {
    let store = &*subject.store;
    for (name, seed) in [("a", 1), ("b", 2), ("d/x", 3), ("e/y", 4)] {
        upload(subject, &put(name, 10, seed), &bytes(10, seed)).unwrap();
    }
    let taken = |result: Result<(), StorageError>| {
        assert!(
            matches!(&result, Err(StorageError::NameTaken { .. })),
            "{result:?}"
        );
    };
    taken(store.rename("a", "b", false));
    taken(store.rename("a", "d", true));
    taken(store.rename("d", "a", true));
    taken(store.rename("d", "e", true));
    assert_eq!(download(store, "b").0, bytes(10, 2), "nothing changed");
    store.rename("a", "b", true).unwrap();
    assert_eq!(download(store, "b").0, bytes(10, 1));
    assert_eq!(names(&list(store, "")), ["b", "d/x", "e/y"]);
}

fn a_missing_name_the_same_name_and_a_folder_into_itself_are_refused(subject: &Subject) {
    let store = &*subject.store;
    upload(subject, &put("d/x", 3, 5), &bytes(3, 5)).unwrap();
    upload(subject, &put("f", 3, 6), &bytes(3, 6)).unwrap();
    assert!(matches!(
        store.rename("missing", "y", false),
        Err(StorageError::NotFound(_))
    ));
    for (from, to) in [("d", "d"), ("d", "d/sub"), ("f", "f/g")] {
        let refused = store.rename(from, to, true);
        assert!(
            matches!(&refused, Err(StorageError::BadName { .. })),
            "{from} -> {to}: {refused:?}"
        );
    }
    let refused = store.rename("d/x", "f/x", false);
    assert!(
        matches!(&refused, Err(StorageError::BadName { reason, .. }) if reason.contains("is a file")),
        "{refused:?}"
    );
    assert_eq!(names(&list(store, "")), ["d/x", "f"]);
}

fn a_move_is_refused_while_an_upload_to_either_name_is_under_way(subject: &Subject) {
    let store = &*subject.store;
    upload(subject, &put("d/x", 3, 7), &bytes(3, 7)).unwrap();
    upload(subject, &put("f", 3, 8), &bytes(3, 8)).unwrap();
    let data = bytes(2 * UNIT, 9);
    let (mut under_way, _) = store
        .begin_upload(&subject.config, &put("d/new", data.len(), 9))
        .unwrap();
    feed(&mut under_way, &mut FileHasher::new(), &data[..UNIT], 1);
    for (from, to) in [("d", "e"), ("f", "d/new"), ("f", "d")] {
        let refused = store.rename(from, to, true);
        assert!(
            matches!(
                &refused,
                Err(StorageError::InProgress | StorageError::NameTaken { .. })
            ),
            "{from} -> {to}: {refused:?}"
        );
    }
    assert!(matches!(
        store.rename("d", "e", false),
        Err(StorageError::InProgress)
    ));
    drop(under_way);
    store.rename("d", "e", false).unwrap();
    assert_eq!(names(&list(store, "")), ["e/x", "f"]);
}

fn a_download_opened_before_a_move_reads_the_version_it_opened(subject: &Subject) {
    let store = &*subject.store;
    let (old, new) = (bytes(3 * UNIT, 10), bytes(2 * UNIT + 1, 11));
    upload(subject, &put("n", old.len(), 10), &old).unwrap();
    upload(subject, &put("m", new.len(), 11), &new).unwrap();
    let mut opened = store.open_for_download("n").unwrap();
    store.rename("m", "n", true).unwrap();
    let mut content = Vec::new();
    opened
        .content
        .read_from(0)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert!(content == old, "the download mixed two versions");
    assert_eq!(download(store, "n").0, new);
}

/// Runs each promise against the folder store and the in-memory store.
macro_rules! move_promises {
    ($($promise:ident),* $(,)?) => {
        mod folder {
            $(#[test] fn $promise() { super::$promise(&super::super::folder()) })*
        }
        mod memory {
            $(#[test] fn $promise() { super::$promise(&super::super::memory()) })*
        }
    };
}

move_promises!(
    a_file_moves_with_its_digest_and_a_folder_with_everything_under_it,
    a_taken_name_is_refused_unless_a_file_overwrites_a_file,
    a_missing_name_the_same_name_and_a_folder_into_itself_are_refused,
    a_move_is_refused_while_an_upload_to_either_name_is_under_way,
    a_download_opened_before_a_move_reads_the_version_it_opened,
);
