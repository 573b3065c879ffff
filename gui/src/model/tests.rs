#![allow(clippy::unwrap_used)]

use super::*;
use crate::local::files_to_upload;

/// `model.upload(path)`, with the scan a worker would do.
fn upload_now(model: &mut Model, path: &Path) {
    model.upload(path);
    let jobs = model.poll_jobs(Instant::now());
    let [Job::Scan { path, overwrite }] = jobs.as_slice() else {
        panic!("not a scan: {jobs:?}");
    };
    model.handle_event(Event::Scanned {
        path: path.clone(),
        overwrite: *overwrite,
        files: files_to_upload(path).map_err(|e| e.to_string()),
    });
}

pub(crate) fn connected() -> Model {
    let mut model = Model::new(None);
    model.settings.insecure = true;
    model.connect();
    let jobs = model.poll_jobs(Instant::now());
    assert!(matches!(jobs.as_slice(), [Job::Connect { .. }]));
    model.handle_event(Event::Connected {
        session: Session {
            addr: "h:1".into(),
            options: model.settings.options(ferry_client::Trust::WebPki),
        },
        entries: vec![ListEntry {
            name: "a.txt".into(),
            size: 3,
            modified_ms: 0,
        }],
    });
    model
}

#[test]
fn connecting_shows_the_servers_files() {
    let model = connected();
    assert!(model.is_connected());
    assert_eq!(model.listing.visible().len(), 1);
    assert_eq!(model.remembered.len(), 1);
}

#[test]
fn an_unknown_server_waits_for_the_user_to_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new(Some(dir.path().to_path_buf()));
    model.connect();
    let _ = model.poll_jobs(Instant::now());
    let fingerprint = Fingerprint::of(b"cert");
    model.handle_event(Event::TrustNeeded {
        server: "h:1".into(),
        fingerprint,
    });
    assert!(matches!(model.connection, Connection::Trust { .. }));
    model.accept_trust();
    let jobs = model.poll_jobs(Instant::now());
    assert!(matches!(jobs.as_slice(), [Job::Trust { fingerprint: f, .. }] if *f == fingerprint));
    assert_eq!(model.connection, Connection::Connecting);
}

#[test]
fn only_max_running_transfers_start_and_the_next_follows_a_finish() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
    }
    let mut model = connected();
    upload_now(&mut model, dir.path());
    let now = Instant::now();
    let jobs = model.poll_jobs(now);
    assert_eq!(jobs.len(), MAX_RUNNING);
    assert!(model.poll_jobs(now).is_empty());
    let Job::Transfer { id, .. } = &jobs[0] else {
        panic!("not a transfer: {jobs:?}");
    };
    model.handle_event(Event::Finished {
        id: *id,
        run: 1,
        outcome: Ok(1),
        at: now,
    });
    let next = model.poll_jobs(now);
    // A listing after the upload, and the fourth transfer.
    assert!(matches!(
        next.as_slice(),
        [Job::List(_), Job::Transfer { .. }]
    ));
}

#[test]
fn disconnecting_cancels_queued_transfers_but_not_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..=MAX_RUNNING {
        std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
    }
    let mut model = connected();
    upload_now(&mut model, dir.path());
    let now = Instant::now();
    assert_eq!(model.poll_jobs(now).len(), MAX_RUNNING);
    model.disconnect(now);
    let states: Vec<_> = model.transfers.iter().map(|t| t.state.clone()).collect();
    assert_eq!(states[MAX_RUNNING], TransferState::Cancelled);
    assert!(
        states[..MAX_RUNNING]
            .iter()
            .all(|s| *s == TransferState::Running)
    );
    assert!(model.poll_jobs(now).is_empty());
}

#[test]
fn a_folder_syncs_one_at_a_time_and_its_summary_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let mut model = connected();
    model.sync_cache = Some(dir.path().join("cache"));
    model.upload_path = photos.display().to_string();
    model.sync_typed_folder();
    model.sync_typed_folder();
    let jobs = model.poll_jobs(Instant::now());
    let [Job::Sync { request, cache, .. }] = jobs.as_slice() else {
        panic!("not one sync: {jobs:?}");
    };
    assert_eq!(request.direction, SyncDirection::Upload);
    assert_eq!(
        (request.local.as_path(), request.remote.as_str()),
        (photos.as_path(), "photos")
    );
    assert_eq!(cache.as_deref(), Some(dir.path().join("cache").as_path()));
    assert!(model.message.as_deref().unwrap().contains("under way"));
    model.handle_event(Event::Synced(Ok("Synced: 1 sent".into())));
    assert_eq!(model.syncing, None);
    assert_eq!(model.message.as_deref(), Some("Synced: 1 sent"));
    assert!(matches!(
        model.poll_jobs(Instant::now()).as_slice(),
        [Job::List(_)]
    ));
}

#[test]
fn a_file_is_not_a_folder_to_sync() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let mut model = connected();
    model.upload_path = file.display().to_string();
    model.sync_typed_folder();
    assert!(model.poll_jobs(Instant::now()).is_empty());
    assert!(model.message.as_deref().unwrap().contains("not a folder"));
}

#[test]
fn removal_waits_for_confirmation() {
    let mut model = connected();
    model.listing.toggle("a.txt");
    model.ask_remove();
    assert!(model.poll_jobs(Instant::now()).is_empty());
    model.cancel_remove();
    assert!(model.poll_jobs(Instant::now()).is_empty());
    model.ask_remove();
    model.confirm_remove();
    let jobs = model.poll_jobs(Instant::now());
    assert!(matches!(jobs.as_slice(), [Job::Remove { names, .. }] if names == &["a.txt"]));
}

#[test]
fn a_refused_upload_can_be_retried_as_an_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let mut model = connected();
    upload_now(&mut model, &file);
    let now = Instant::now();
    let _ = model.poll_jobs(now);
    let id = model.transfers[0].id;
    model.handle_event(Event::Finished {
        id,
        run: 1,
        outcome: Err("server refused upload: name already exists".into()),
        at: now,
    });
    assert!(matches!(model.transfers[0].state, TransferState::Failed(_)));
    model.overwrite = true;
    model.retry_transfer(id);
    let jobs = model.poll_jobs(now);
    assert!(matches!(
        jobs.as_slice(),
        [Job::Transfer {
            direction: Direction::Upload {
                overwrite: true,
                ..
            },
            ..
        }]
    ));
    assert_eq!(model.transfers[0].state, TransferState::Running);
}
