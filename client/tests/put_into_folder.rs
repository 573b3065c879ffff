//! `ferry put a b dir --as docs/ -r`: several files and folders into one server folder, with
//! the conflict checks of a single upload.

use crate::support::cli::{TestServer, ferry, write_tree};
use crate::support::pattern;

#[test]
fn several_files_and_a_folder_go_into_one_server_folder_under_their_own_names() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let files = vec![
        ("a.txt".to_owned(), b"alpha".to_vec()),
        ("b.bin".to_owned(), pattern(70_000, 1)),
        ("photos/2024/x.jpg".to_owned(), pattern(3_000, 2)),
        ("photos/y.jpg".to_owned(), b"y".to_vec()),
    ];
    write_tree(work.path(), &files);
    let run = ferry(
        server.addr(),
        work.path(),
        &[
            "--json", "put", "-r", "a.txt", "b.bin", "photos", "--as", "docs/",
        ],
    )
    .ok()
    .json();
    assert_eq!(run["summary"]["stored"], 4, "{run}");
    for (path, data) in &files {
        assert_eq!(&server.stored(&format!("docs/{path}")), data, "{path}");
    }
}

#[test]
fn several_paths_into_a_folder_are_refused_one_by_one_where_names_exist_with_other_bytes() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(
        work.path(),
        &[
            ("a".to_owned(), b"new a".to_vec()),
            ("b".to_owned(), b"b".to_vec()),
            ("c".to_owned(), b"c".to_vec()),
        ],
    );
    std::fs::write(work.path().join("old-a"), b"old a").unwrap();
    ferry(
        server.addr(),
        work.path(),
        &["put", "old-a", "--as", "docs/a"],
    )
    .ok();
    ferry(server.addr(), work.path(), &["put", "b", "--as", "docs/b"]).ok();

    let run = ferry(
        server.addr(),
        work.path(),
        &["--json", "put", "a", "b", "c", "--as", "docs/"],
    );
    assert_eq!(
        run.code, 4,
        "an existing name with other bytes is refused: {}",
        run.stderr
    );
    let json = run.json();
    assert_eq!(json["summary"]["failed"], 1, "{json}");
    assert_eq!(json["summary"]["already_stored"], 1, "{json}");
    assert_eq!(json["summary"]["stored"], 1, "{json}");
    assert_eq!(
        server.stored("docs/a"),
        b"old a",
        "never replaced without --overwrite"
    );
    assert_eq!(server.stored("docs/c"), b"c");

    ferry(
        server.addr(),
        work.path(),
        &["put", "a", "b", "c", "--as", "docs/", "--overwrite"],
    )
    .ok();
    assert_eq!(server.stored("docs/a"), b"new a");
}

#[test]
fn several_paths_clashing_on_one_name_or_without_a_folder_are_usage_errors() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(
        work.path(),
        &[
            ("one/same".to_owned(), b"1".to_vec()),
            ("two/same".to_owned(), b"2".to_vec()),
        ],
    );
    let clash = ferry(
        server.addr(),
        work.path(),
        &["put", "one/same", "two/same", "--as", "docs/"],
    );
    assert_eq!(clash.code, 2, "{}", clash.stderr);
    assert!(
        clash.stderr.contains("same name on the server"),
        "{}",
        clash.stderr
    );
    let no_slash = ferry(
        server.addr(),
        work.path(),
        &["put", "one/same", "two/same", "--as", "docs"],
    );
    assert_eq!(no_slash.code, 2);
    assert!(
        no_slash.stderr.contains("--as docs/"),
        "{}",
        no_slash.stderr
    );
    assert!(
        !server.root.path().join("docs").exists(),
        "nothing is sent when the plan is refused"
    );
}
