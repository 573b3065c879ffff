//! A crash at each step of a commit: `ferryd` aborts there (its test-only crash points, read in
//! builds with debug assertions only), restarts on the same root, and then:
//!
//! - the name holds the old file (or nothing) before the new one was placed, and the whole new
//!   file after: never a part, never a mixture;
//! - the visible file has one name only: no staged file shares its data;
//! - a later overwrite of the same client file (same tag, so it asks to resume) never changes
//!   the visible file before its own commit, even when its connection is cut midway;
//! - that overwrite then completes and is what the name holds.
#![cfg(debug_assertions)]

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use ferry_protocol::{ClientEvent, Digest};

use crate::support::ferryd::Ferryd;
use crate::support::{Client, data, tag};

const NAME: &str = "victim.bin";
const INTERVAL: [&str; 2] = ["--checkpoint-interval", "256KiB"];
const SIGABRT: i32 = 6;

/// The steps of a commit by rename, and whether the new file is in place after each.
const RENAME_STEPS: [(&str, bool); 4] = [
    ("after-digest", false),
    ("after-fsync", false),
    ("after-rename", true),
    ("after-folder-sync", true),
];

/// The steps of a commit by hard link (file systems without `RENAME_NOREPLACE`).
const LINK_STEPS: [(&str, bool); 5] = [
    ("after-digest", false),
    ("after-fsync", false),
    ("after-link", true),
    ("after-unlink", true),
    ("after-folder-sync", true),
];

/// What a run crashes: a new name or an overwrite, by rename or by link.
struct Case {
    step: &'static str,
    placed: bool,
    overwrite: bool,
    by_link: bool,
}

fn run(case: &Case) {
    let label = format!(
        "crash {} ({}, {})",
        case.step,
        if case.overwrite {
            "overwrite"
        } else {
            "new name"
        },
        if case.by_link { "by link" } else { "by rename" }
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let old = data(300_000, 1);
    if case.overwrite {
        let server = Ferryd::start(&root, &INTERVAL);
        let (_, outcome) = Client::connect(server.addr).put(NAME, &old, false, true, tag(9));
        assert_eq!(outcome, ClientEvent::PutStored, "{label}");
    }

    // The upload whose commit crashes.
    let new = data((1 << 20) + 123, 2);
    let mut env = vec![("FERRYD_CRASH_AT", case.step)];
    if case.by_link {
        env.push(("FERRYD_COMMIT_BY_LINK", "1"));
    }
    let server = Ferryd::start_with(&root, &INTERVAL, &env);
    let mut client = Client::connect(server.addr);
    assert_eq!(
        client.put_request(NAME, new.len() as u64, case.overwrite, true, tag(1)),
        ClientEvent::PutReady { offset: 0 },
        "{label}"
    );
    client.send_data(&new);
    client.conn.finish_upload(Digest::of(&new)).unwrap();
    client.flush();
    assert!(
        !matches!(client.next_event(), Ok(ClientEvent::PutStored)),
        "{label}: no ACK may come from a server that crashed before answering"
    );
    let status = server.wait_for_exit();
    assert_eq!(status.signal(), Some(SIGABRT), "{label}: {status}");

    let server = Ferryd::start(&root, &INTERVAL);
    let expected: Option<&[u8]> = match (case.placed, case.overwrite) {
        (true, _) => Some(&new),
        (false, true) => Some(&old),
        (false, false) => None,
    };
    check_visible(&root, expected, &label);

    // The same client file again, overwriting and asking to resume; cut midway. Once the new
    // file was placed, nothing staged is left to resume, and a changed content under the same
    // tag must start over; before, resuming the staged data is right.
    let again = if case.placed {
        data(new.len(), 3)
    } else {
        new.clone()
    };
    let mut client = Client::connect(server.addr);
    let ClientEvent::PutReady { offset } =
        client.put_request(NAME, again.len() as u64, true, true, tag(1))
    else {
        panic!("{label}: the overwrite was refused");
    };
    if case.placed {
        assert_eq!(offset, 0, "{label}: a visible file was offered for resume");
    }
    let offset = offset as usize;
    client.send_data(&again[offset..(offset + 300_000).min(again.len() - 1)]);
    client.sync();
    check_visible(&root, expected, &label);
    drop(client);
    check_visible(&root, expected, &label);

    // It completes, and then the name holds it.
    let (_, outcome) = Client::connect(server.addr).put(NAME, &again, true, true, tag(1));
    assert_eq!(outcome, ClientEvent::PutStored, "{label}");
    check_visible(&root, Some(&again), &label);
    assert!(
        Client::connect(server.addr).get(NAME).unwrap() == again,
        "{label}: the download is not the stored version"
    );
}

/// The name holds exactly `expected` (or nothing), with one name only.
fn check_visible(root: &Path, expected: Option<&[u8]>, label: &str) {
    let path = root.join(NAME);
    let Some(expected) = expected else {
        assert!(!path.exists(), "{label}: nothing may be visible");
        return;
    };
    assert!(
        std::fs::read(&path).unwrap() == expected,
        "{label}: the visible file is not the whole expected version"
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(
        meta.nlink(),
        1,
        "{label}: the visible file has another name"
    );
    for entry in std::fs::read_dir(root.join(".ferry-staging")).unwrap() {
        let staged = match entry.and_then(|entry| entry.metadata()) {
            Ok(staged) => staged,
            // Gone between the listing and the look: the server tidies the staging of an
            // upload whose client just left, while this runs.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => panic!("{label}: {error}"),
        };
        assert_ne!(
            (staged.dev(), staged.ino()),
            (meta.dev(), meta.ino()),
            "{label}: a staged file is the visible one"
        );
    }
}

#[test]
fn a_crash_at_each_step_of_a_commit_by_rename_keeps_every_visible_file_whole() {
    for overwrite in [false, true] {
        for (step, placed) in RENAME_STEPS {
            run(&Case {
                step,
                placed,
                overwrite,
                by_link: false,
            });
        }
    }
}

#[test]
fn a_crash_at_each_step_of_a_commit_by_link_keeps_every_visible_file_whole() {
    for (step, placed) in LINK_STEPS {
        run(&Case {
            step,
            placed,
            overwrite: false,
            by_link: true,
        });
    }
}
