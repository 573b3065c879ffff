//! `ferry sync`: only what differs is sent (counted by the server), a second sync of an
//! unchanged tree reads no local file, `--delete` stays inside its folder, `--dry-run`
//! changes nothing.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::support::cli::{TestServer, ferry, read_tree, write_tree};
use crate::support::metrics::{scrape, value};
use crate::support::pattern;

/// Bytes of each file of the big tree.
const FILE_LEN: usize = 4096;

/// How long the server may take to count a transfer it already acknowledged.
const SETTLE: Duration = Duration::from_secs(10);

const PUT_SUM: &str = r#"ferry_transfer_size_bytes_sum{op="put"}"#;
const PUT_COUNT: &str = r#"ferry_transfer_size_bytes_count{op="put"}"#;

fn server_with_metrics() -> (TestServer, SocketAddr) {
    let server = TestServer::start_with(|config| {
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.metrics_addr().unwrap();
    (server, metrics)
}

/// The file bytes and the number of uploads the server has counted, once it has counted
/// `uploads` of them.
fn uploads_counted(metrics: SocketAddr, uploads: u64) -> (u64, u64) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let page = scrape(metrics);
        let count = value(&page, PUT_COUNT) as u64;
        if count >= uploads || Instant::now() > deadline {
            return (value(&page, PUT_SUM) as u64, count);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Rewrites `path` with `data` and gives it the modification time `when`.
fn rewrite(path: &Path, data: &[u8], when: SystemTime) {
    std::fs::write(path, data).unwrap();
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn later(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap() + Duration::from_secs(5)
}

#[test]
fn a_sync_of_a_thousand_files_with_three_changed_sends_only_those_three_and_then_nothing() {
    let (server, metrics) = server_with_metrics();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("tree");
    let tree: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("d{:02}/f{i:04}.dat", i % 17), pattern(FILE_LEN, i)))
        .collect();
    write_tree(&local, &tree);

    let first = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", "tree", ":tree"],
    )
    .ok()
    .json();
    assert_eq!(first["summary"]["sent"], 1000, "{}", first["summary"]);
    assert_eq!(
        uploads_counted(metrics, 1000),
        (1000 * FILE_LEN as u64, 1000)
    );

    // Two files keep their size with new bytes, one grows.
    let changed = [
        (&tree[3].0, pattern(FILE_LEN, 5000)),
        (&tree[500].0, pattern(FILE_LEN, 5001)),
        (&tree[999].0, pattern(FILE_LEN + 10, 5002)),
    ];
    for (path, data) in &changed {
        let path = local.join(path);
        rewrite(&path, data, later(&path));
    }
    let changed_bytes: u64 = changed.iter().map(|(_, d)| d.len() as u64).sum();
    let second = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", "tree", ":tree"],
    )
    .ok()
    .json();
    let summary = &second["summary"];
    assert_eq!(summary["sent"], 3, "{summary}");
    assert_eq!(summary["skipped"], 997, "{summary}");
    assert_eq!(summary["bytes_moved"], changed_bytes, "{summary}");
    // Only the two same-size changed files needed reading; the rest came from the cache.
    assert_eq!(summary["files_hashed"], 2, "{summary}");
    assert_eq!(summary["digests_from_cache"], 997, "{summary}");
    let (bytes, count) = uploads_counted(metrics, 1003);
    assert_eq!(count, 1003, "the server counted other uploads");
    assert_eq!(
        bytes,
        1000 * FILE_LEN as u64 + changed_bytes,
        "the server received more"
    );
    for (path, data) in &changed {
        assert_eq!(&server.stored(&format!("tree/{path}")), data);
    }

    let third = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", "tree", ":tree"],
    )
    .ok()
    .json();
    let summary = &third["summary"];
    assert_eq!(summary["sent"], 0, "{summary}");
    assert_eq!(summary["skipped"], 1000, "{summary}");
    assert_eq!(summary["bytes_moved"], 0, "{summary}");
    assert_eq!(
        summary["files_hashed"], 0,
        "no local file was read: {summary}"
    );
    assert_eq!(summary["digests_from_cache"], 1000, "{summary}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        uploads_counted(metrics, 1004),
        (1000 * FILE_LEN as u64 + changed_bytes, 1003)
    );
}

#[test]
fn an_unchanged_trees_second_sync_trusts_the_cache_and_never_opens_a_file() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("tree");
    write_tree(
        &local,
        &[
            ("a".to_owned(), pattern(1000, 1)),
            ("b".to_owned(), pattern(1000, 2)),
        ],
    );
    ferry(server.addr(), work.path(), &["sync", "tree", ":tree"]).ok();

    // New bytes of the same size, with the old modification time put back: only a sync that
    // read the file could notice. It does not (rsync's quick check does the same).
    let a = local.join("a");
    let old_time = std::fs::metadata(&a).unwrap().modified().unwrap();
    rewrite(&a, &pattern(1000, 99), old_time);
    let quiet = ferry(server.addr(), work.path(), &["sync", "tree", ":tree"]).ok();
    assert!(
        quiet.stdout.contains("0 sent, 2 skipped"),
        "{}",
        quiet.stdout
    );
    assert!(
        quiet.stdout.contains("2 from the cache, 0 files read"),
        "{}",
        quiet.stdout
    );
    assert_eq!(server.stored("tree/a"), pattern(1000, 1));

    // A new modification time is a change: the file is read, found different and sent.
    rewrite(&a, &pattern(1000, 99), later(&a));
    let sent = ferry(server.addr(), work.path(), &["sync", "tree", ":tree"]).ok();
    assert!(sent.stdout.contains("1 sent, 1 skipped"), "{}", sent.stdout);
    assert!(sent.stdout.contains("1 files read"), "{}", sent.stdout);
    assert_eq!(server.stored("tree/a"), pattern(1000, 99));
}

#[test]
fn sync_down_makes_the_local_folder_match_and_skips_what_is_already_there() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let tree = vec![
        ("x.txt".to_owned(), b"x".to_vec()),
        ("sub/y.bin".to_owned(), pattern(50_000, 3)),
        ("sub/z.bin".to_owned(), pattern(10_000, 4)),
    ];
    write_tree(&work.path().join("src"), &tree);
    ferry(server.addr(), work.path(), &["put", "-r", "src"]).ok();
    write_tree(
        &work.path().join("back"),
        &[
            ("x.txt".to_owned(), b"x".to_vec()),
            ("sub/y.bin".to_owned(), pattern(50_000, 77)),
        ],
    );
    let run = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", ":src/", "back"],
    )
    .ok()
    .json();
    let summary = &run["summary"];
    assert_eq!(summary["sent"], 2, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(summary["bytes_moved"], 60_000, "{summary}");
    assert_eq!(read_tree(&work.path().join("back")), {
        let mut t = tree.clone();
        t.sort();
        t
    });
    let again = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", ":src", "back"],
    )
    .ok()
    .json();
    assert_eq!(again["summary"]["sent"], 0, "{}", again["summary"]);
    assert_eq!(again["summary"]["files_hashed"], 0, "{}", again["summary"]);
}

#[test]
fn delete_on_the_server_removes_only_names_inside_the_synced_folder() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(
        &work.path().join("outside"),
        &[
            ("photos/old.jpg".to_owned(), b"old".to_vec()),
            ("photos/kept.tmp".to_owned(), b"excluded".to_vec()),
            ("photosX/sibling".to_owned(), b"s".to_vec()),
            ("photos.txt".to_owned(), b"t".to_vec()),
            ("other/file".to_owned(), b"o".to_vec()),
        ],
    );
    ferry(
        server.addr(),
        &work.path().join("outside"),
        &["put", "-r", "photos", "photosX", "photos.txt", "other"],
    )
    .ok();
    write_tree(
        &work.path().join("photos"),
        &[("new.jpg".to_owned(), b"new".to_vec())],
    );

    let without = ferry(server.addr(), work.path(), &["sync", "photos", ":photos"]).ok();
    assert!(without.stdout.contains("0 deleted"), "{}", without.stdout);
    assert_eq!(
        server.stored("photos/old.jpg"),
        b"old",
        "nothing deleted without --delete"
    );

    ferry(
        server.addr(),
        work.path(),
        &[
            "sync",
            "photos",
            ":photos",
            "--delete",
            "--exclude",
            "*.tmp",
        ],
    )
    .ok();
    let root = server.root.path();
    assert!(!root.join("photos/old.jpg").exists());
    assert_eq!(server.stored("photos/new.jpg"), b"new");
    assert_eq!(
        server.stored("photos/kept.tmp"),
        b"excluded",
        "an excluded file is kept"
    );
    assert_eq!(server.stored("photosX/sibling"), b"s");
    assert_eq!(server.stored("photos.txt"), b"t");
    assert_eq!(server.stored("other/file"), b"o");
}

#[cfg(unix)]
#[test]
fn delete_on_the_local_side_stays_inside_the_folder_and_never_follows_a_link() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(
        &work.path().join("src"),
        &[("keep".to_owned(), b"k".to_vec())],
    );
    ferry(server.addr(), work.path(), &["put", "-r", "src"]).ok();

    let outside = work.path().join("outside");
    write_tree(&outside, &[("precious".to_owned(), b"p".to_vec())]);
    write_tree(
        &work.path().join("back-sibling"),
        &[("extra".to_owned(), b"e".to_vec())],
    );
    let back = work.path().join("back");
    write_tree(
        &back,
        &[
            ("extra".to_owned(), b"e".to_vec()),
            ("deep/extra".to_owned(), b"e".to_vec()),
        ],
    );
    std::os::unix::fs::symlink(&outside, back.join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.join("precious"), back.join("precious-link")).unwrap();

    let run = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", ":src", "back", "--delete"],
    )
    .ok()
    .json();
    assert_eq!(run["summary"]["deleted"], 2, "{run}");
    assert_eq!(std::fs::read(back.join("keep")).unwrap(), b"k");
    assert!(!back.join("extra").exists());
    assert!(
        !back.join("deep").exists(),
        "a folder the deletions emptied goes too"
    );
    assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"p");
    assert!(back.join("linked").is_symlink() && back.join("precious-link").is_symlink());
    assert_eq!(
        std::fs::read(work.path().join("back-sibling/extra")).unwrap(),
        b"e"
    );
}

#[test]
fn dry_run_prints_what_would_be_sent_and_deleted_and_changes_nothing() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(
        &work.path().join("d"),
        &[
            ("same".to_owned(), b"same".to_vec()),
            ("gone".to_owned(), b"gone".to_vec()),
        ],
    );
    ferry(server.addr(), work.path(), &["put", "-r", "d"]).ok();
    std::fs::remove_file(work.path().join("d/gone")).unwrap();
    std::fs::write(work.path().join("d/new"), b"new!").unwrap();

    let run = ferry(
        server.addr(),
        work.path(),
        &["sync", "d", ":d", "--delete", "--dry-run"],
    )
    .ok();
    assert!(
        run.stdout.contains("would send d/new (4 bytes, new)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("would delete d/gone"), "{}", run.stdout);
    assert!(!run.stdout.contains("d/same"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("dry run: would send 1 (4 bytes), skip 1, delete 1"),
        "{}",
        run.stdout
    );
    assert_eq!(server.stored("d/gone"), b"gone");
    assert!(!server.root.path().join("d/new").exists());
}

#[test]
fn sync_needs_exactly_one_server_side() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("a")).unwrap();
    for args in [["sync", "a", "b"], ["sync", ":a", ":b"], ["sync", "a", ":"]] {
        let run = ferry(server.addr(), work.path(), &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}
