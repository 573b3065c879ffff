//! Symbolic links a local user plants or swaps in under the root: nothing outside the root is
//! ever read or written, whatever the timing; ferryd's own folders are refused at start when
//! they are links or another user's, and made again when removed while it runs.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, SourceTag};
use ferry_server::{Server, ServerConfig, StateFolderError, TlsError, TlsIdentity};
use rustix::fs::{CWD, RenameFlags};

use crate::support::{self, Client, TestServer, data, snapshot, tag};

/// The staged data file of `name` uploaded from a client file tagged `tag` (the server's
/// naming: the first 32 hex digits of BLAKE3(name, 0, tag)).
fn staged_name(name: &str, tag: SourceTag) -> String {
    let mut input = name.as_bytes().to_vec();
    input.push(0);
    input.extend_from_slice(&tag.0);
    format!("{}.part", &Digest::of(&input).to_hex()[..32])
}

fn assert_empty(folder: &Path) {
    let left: Vec<_> = std::fs::read_dir(folder).unwrap().flatten().collect();
    assert!(left.is_empty(), "written outside the root: {left:?}");
}

#[test]
fn planted_links_at_ferryds_own_folders_stop_it_from_starting_with_the_path_named() {
    for own in [".ferry-staging", ".ferry-meta"] {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink(outside.path(), root.join(own)).unwrap();
        let error = Server::start(ServerConfig::new(&root)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("{own} is a symbolic link")),
            "{own}: {message}"
        );
        assert_empty(outside.path());
    }
}

#[test]
fn a_planted_link_at_the_tls_folder_is_refused_and_no_key_is_written_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry-tls");
    symlink(outside.path(), &state).unwrap();
    let error = TlsIdentity::load_or_create(&state).unwrap_err();
    assert!(
        matches!(
            error,
            TlsError::StateFolder(StateFolderError::Symlink { .. })
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains(".ferry-tls is a symbolic link"),
        "{error}"
    );
    assert_empty(outside.path());
}

#[test]
fn a_planted_link_at_the_key_file_is_replaced_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry-tls");
    std::fs::create_dir(&state).unwrap();
    let target = outside.path().join("stolen.pem");
    std::fs::write(&target, b"outside").unwrap();
    symlink(&target, state.join("key.pem")).unwrap();
    TlsIdentity::load_or_create(&state).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"outside");
    let key = std::fs::symlink_metadata(state.join("key.pem")).unwrap();
    assert!(key.is_file(), "the key is a file of its own");
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

#[test]
fn ferryds_own_folders_are_private_even_when_they_existed_wider() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join(".ferry-staging")).unwrap();
    std::fs::set_permissions(
        root.join(".ferry-staging"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let server = Server::start(support::config(&root)).unwrap();
    for own in [".ferry-staging", ".ferry-meta"] {
        let mode = std::fs::metadata(root.join(own))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{own}");
    }
    server.shutdown();
}

#[test]
fn an_own_folder_of_another_user_stops_ferryd_from_starting() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: giving a folder to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join(".ferry-meta")).unwrap();
    std::os::unix::fs::chown(root.join(".ferry-meta"), Some(65534), Some(65534)).unwrap();
    let error = Server::start(ServerConfig::new(&root)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(".ferry-meta is owned by user 65534"),
        "{error}"
    );
}

#[test]
fn a_planted_link_at_a_staged_file_is_removed_and_the_outside_file_untouched() {
    let server = TestServer::start(|_| {});
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("precious");
    std::fs::write(&target, b"outside data").unwrap();
    let staging = server.root().join(".ferry-staging");
    symlink(&target, staging.join(staged_name("up.bin", tag(4)))).unwrap();
    let state = staged_name("up.bin", tag(4)).replace(".part", ".ckpt");
    symlink(&target, staging.join(state)).unwrap();

    let body = data(200_000, 4);
    let (_, outcome) = server.client().put("up.bin", &body, false, true, tag(4));
    assert_eq!(outcome, ClientEvent::PutStored);
    assert!(
        std::fs::read(&target).unwrap() == b"outside data",
        "the upload was written through the planted link"
    );
    assert!(std::fs::read(server.root().join("up.bin")).unwrap() == body);
}

/// A file's record is on the file itself where the file system allows (as here), so the
/// upload writes no record file at all; `store::folder::digests`' unit tests show a record file
/// replacing such a link where one is written.
#[test]
fn a_planted_link_at_a_digest_record_is_replaced_not_written_through() {
    let server = TestServer::start(|_| {});
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("precious");
    std::fs::write(&target, b"outside data").unwrap();
    let record = Digest::of(b"rec.bin").to_hex();
    symlink(&target, server.root().join(".ferry-meta").join(record)).unwrap();
    let body = data(10_000, 5);
    server.client().put_new("rec.bin", &body);
    assert!(
        std::fs::read(&target).unwrap() == b"outside data",
        "the digest record was written through the planted link"
    );
    assert!(server.client().get("rec.bin").unwrap() == body);
}

#[test]
fn own_folders_removed_while_ferryd_runs_are_made_again() {
    let server = TestServer::start(|_| {});
    server.client().put_new("before", b"one");
    std::fs::remove_dir_all(server.root().join(".ferry-staging")).unwrap();
    std::fs::remove_dir_all(server.root().join(".ferry-meta")).unwrap();
    let body = data(100_000, 6);
    server.client().put_new("after", &body);
    assert_eq!(server.client().get("after").unwrap(), body);
    // The staging folder by the upload; the digest folder when a record file is next needed
    // (a file's record is on the file itself where the file system allows: here, a removal
    // looks for the removed file's record file).
    assert_eq!(server.client().remove("before"), ClientEvent::Removed);
    for own in [".ferry-staging", ".ferry-meta"] {
        let meta = std::fs::metadata(server.root().join(own)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{own}");
    }
}

#[test]
fn a_folder_swapped_for_a_link_while_uploads_run_never_gets_a_file_outside_the_root() {
    let server = TestServer::start(|_| {});
    let outside = tempfile::tempdir().unwrap();
    let root = server.root();
    std::fs::create_dir(root.join("swap")).unwrap();
    symlink(outside.path(), root.join("swap-link")).unwrap();
    let before = snapshot(outside.path());

    // A local user exchanging the folder and a link to the outside, atomically and over and
    // over, so that `swap` is always one or the other.
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, root) = (Arc::clone(&stop), root.clone());
        thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    CWD,
                    root.join("swap"),
                    CWD,
                    root.join("swap-link"),
                    RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps += 1;
                thread::sleep(std::time::Duration::from_micros(50));
            }
            swaps
        })
    };
    let uploads: Vec<_> = (0..4u8)
        .map(|worker| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut results = Vec::new();
                for i in 0..750 {
                    let name = format!("swap/f{worker}-{i}");
                    let body = data(1_000 + i, u64::from(worker) * 1000 + i as u64);
                    let (_, outcome) = client.put(&name, &body, false, false, tag(worker));
                    results.push((name, body, outcome));
                }
                results
            })
        })
        .collect();
    let results: Vec<_> = uploads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    // Leave `swap` the real folder again.
    if std::fs::symlink_metadata(root.join("swap"))
        .unwrap()
        .is_symlink()
    {
        rustix::fs::renameat_with(
            CWD,
            root.join("swap"),
            CWD,
            root.join("swap-link"),
            RenameFlags::EXCHANGE,
        )
        .unwrap();
    }

    assert_eq!(
        snapshot(outside.path()),
        before,
        "the outside folder changed"
    );
    let mut stored = 0;
    let mut refused = 0;
    for (name, body, outcome) in &results {
        match outcome {
            ClientEvent::PutStored => {
                stored += 1;
                assert!(
                    std::fs::read(root.join(name)).unwrap() == *body,
                    "{name} was acknowledged but is not in the root whole"
                );
            }
            ClientEvent::Refused {
                code: ErrorCode::BadName,
                message,
            } => {
                refused += 1;
                assert!(message.contains("symbolic link"), "{name}: {message}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    eprintln!("{swaps} swaps, {stored} uploads stored, {refused} refused");
    assert!(swaps > 100, "the folder was swapped only {swaps} times");
    assert!(
        stored > 0 && refused > 0,
        "the race was not exercised: {stored} stored, {refused} refused"
    );
}
