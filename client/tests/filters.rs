//! `--exclude` / `--include` in rsync's order (the first matching rule wins) and `--dry-run`,
//! for `put -r` and `get -r`.

use crate::support::cli::{TestServer, ferry, write_tree};

fn tree() -> Vec<(String, Vec<u8>)> {
    [
        "keep.log",
        "drop.log",
        "notes.txt",
        "sub/deep.txt",
        "sub/data.bin",
        "target/out.o",
    ]
    .iter()
    .map(|p| ((*p).to_owned(), p.as_bytes().to_vec()))
    .collect()
}

/// The names stored under `prefix`, sorted.
fn stored_names(server: &TestServer, work: &std::path::Path, prefix: &str) -> Vec<String> {
    let listing = ferry(server.addr(), work, &["--json", "ls", prefix])
        .ok()
        .json();
    let mut names: Vec<String> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn put_r_applies_exclude_and_include_in_the_order_given() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(&work.path().join("t"), &tree());

    // The include comes first: keep.log survives the later exclude of *.log.
    ferry(
        server.addr(),
        work.path(),
        &[
            "put",
            "-r",
            "t",
            "--as",
            "first",
            "--include",
            "keep.log",
            "--exclude",
            "*.log",
            "--exclude",
            "target/",
        ],
    )
    .ok();
    assert_eq!(
        stored_names(&server, work.path(), "first/"),
        [
            "first/keep.log",
            "first/notes.txt",
            "first/sub/data.bin",
            "first/sub/deep.txt"
        ]
    );

    // The same rules the other way round: the exclude matches keep.log first.
    ferry(
        server.addr(),
        work.path(),
        &[
            "put",
            "-r",
            "t",
            "--as",
            "second",
            "--exclude",
            "*.log",
            "--include",
            "keep.log",
            "--exclude",
            "target/",
        ],
    )
    .ok();
    assert_eq!(
        stored_names(&server, work.path(), "second/"),
        [
            "second/notes.txt",
            "second/sub/data.bin",
            "second/sub/deep.txt"
        ]
    );
}

#[test]
fn an_excluded_folder_hides_its_files_and_folders_can_be_let_through_first() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(&work.path().join("t"), &tree());
    ferry(
        server.addr(),
        work.path(),
        &[
            "put",
            "-r",
            "t",
            "--as",
            "top",
            "--include",
            "*.txt",
            "--exclude",
            "*",
        ],
    )
    .ok();
    assert_eq!(
        stored_names(&server, work.path(), "top/"),
        ["top/notes.txt"]
    );
    ferry(
        server.addr(),
        work.path(),
        &[
            "put",
            "-r",
            "t",
            "--as",
            "all",
            "--include",
            "*/",
            "--include",
            "*.txt",
            "--exclude",
            "*",
        ],
    )
    .ok();
    assert_eq!(
        stored_names(&server, work.path(), "all/"),
        ["all/notes.txt", "all/sub/deep.txt"]
    );
}

#[test]
fn get_r_filters_the_servers_listing_relative_to_the_folder() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(&work.path().join("t"), &tree());
    ferry(server.addr(), work.path(), &["put", "-r", "t"]).ok();
    ferry(
        server.addr(),
        work.path(),
        &[
            "get",
            "-r",
            "t",
            "-o",
            "back",
            "--exclude",
            "/target",
            "--include",
            "keep.log",
            "--exclude",
            "*.log",
        ],
    )
    .ok();
    let mut got: Vec<String> = crate::support::cli::read_tree(&work.path().join("back/t"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    got.sort();
    assert_eq!(
        got,
        ["keep.log", "notes.txt", "sub/data.bin", "sub/deep.txt"]
    );
}

#[test]
fn dry_run_prints_the_plan_and_moves_nothing() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(&work.path().join("t"), &tree());
    let put = ferry(
        server.addr(),
        work.path(),
        &["put", "-r", "t", "--dry-run", "--exclude", "target/"],
    )
    .ok();
    assert!(put.stdout.contains("would upload"), "{}", put.stdout);
    assert!(
        put.stdout.contains("as t/sub/deep.txt (12 bytes)"),
        "{}",
        put.stdout
    );
    assert!(!put.stdout.contains("out.o"), "{}", put.stdout);
    assert!(
        put.stdout.contains("5 files would upload"),
        "{}",
        put.stdout
    );
    assert!(stored_names(&server, work.path(), "").is_empty());

    ferry(server.addr(), work.path(), &["put", "-r", "t"]).ok();
    let get = ferry(
        server.addr(),
        work.path(),
        &["--json", "get", "-r", "t", "-o", "back", "-n"],
    )
    .ok()
    .json();
    assert_eq!(get["dry_run"], true);
    assert_eq!(get["planned"].as_array().unwrap().len(), 6, "{get}");
    assert!(
        !work.path().join("back").exists(),
        "a dry run writes nothing"
    );
}

#[test]
fn an_invalid_glob_is_a_usage_error_naming_it() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    write_tree(&work.path().join("t"), &tree());
    let run = ferry(
        server.addr(),
        work.path(),
        &["put", "-r", "t", "--exclude", "a[b"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("\"a[b\""), "{}", run.stderr);
}
