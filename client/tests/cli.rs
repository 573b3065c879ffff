//! The `ferry` binary end to end against an in-process `ferry_server`.

use std::process::Command;
use std::sync::atomic::Ordering;

use ferry_client::Digest;

use crate::support::cli::{TestServer, ferry, fingerprint, read_tree, write_tree};
use crate::support::pattern;
use crate::support::relay::{Direction, Relay};

#[test]
fn put_then_get_round_trips_a_single_file() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(300_000, 1);
    std::fs::write(work.path().join("hello.bin"), &data).unwrap();

    let put = ferry(server.addr(), work.path(), &["put", "hello.bin"]).ok();
    assert!(put.stdout.contains("stored hello.bin"), "{}", put.stdout);
    assert!(
        put.stdout.contains(&Digest::of(&data).to_hex()),
        "{}",
        put.stdout
    );
    assert_eq!(server.stored("hello.bin"), data);

    ferry(
        server.addr(),
        work.path(),
        &["get", "hello.bin", "-o", "out"],
    )
    .ok();
    assert_eq!(
        std::fs::read(work.path().join("out/hello.bin")).unwrap(),
        data
    );
}

#[test]
fn put_as_renames_and_empty_files_round_trip() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("empty"), b"").unwrap();
    ferry(
        server.addr(),
        work.path(),
        &["put", "empty", "--as", "dir/nothing"],
    )
    .ok();
    assert_eq!(server.stored("dir/nothing"), b"");
    ferry(
        server.addr(),
        work.path(),
        &["put", "empty", "--as", "into/"],
    )
    .ok();
    assert_eq!(server.stored("into/empty"), b"");
    ferry(server.addr(), work.path(), &["get", "dir/nothing"]).ok();
    assert_eq!(std::fs::read(work.path().join("nothing")).unwrap(), b"");
}

#[test]
fn a_folder_tree_round_trips_with_relative_names() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let tree: Vec<(String, Vec<u8>)> = vec![
        ("a.txt".into(), b"top".to_vec()),
        ("sub/b.bin".into(), pattern(70_000, 2)),
        ("sub/deeper/c".into(), b"".to_vec()),
        ("sub/deeper/d.bin".into(), pattern(1_000, 3)),
    ];
    write_tree(&work.path().join("tree"), &tree);

    let usage = ferry(server.addr(), work.path(), &["put", "tree"]);
    assert_eq!(usage.code, 2, "a folder without -r must be a usage error");
    assert!(usage.stderr.contains("use -r"), "{}", usage.stderr);

    ferry(server.addr(), work.path(), &["put", "-r", "tree"]).ok();
    let listing = ferry(server.addr(), work.path(), &["ls", "tree/", "--json"])
        .ok()
        .json();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = tree.iter().map(|(p, _)| format!("tree/{p}")).collect();
    expected.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, expected);

    ferry(
        server.addr(),
        work.path(),
        &["get", "-r", "tree", "-o", "back"],
    )
    .ok();
    assert_eq!(
        read_tree(&work.path().join("back/tree")),
        read_tree(&work.path().join("tree"))
    );
}

#[test]
fn many_small_files_in_parallel() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let tree: Vec<(String, Vec<u8>)> = (0..150)
        .map(|i| {
            (
                format!("f{:03}/file{i}.dat", i % 7),
                pattern(i * 37, i as u64),
            )
        })
        .collect();
    write_tree(&work.path().join("many"), &tree);
    let run = ferry(
        server.addr(),
        work.path(),
        &["--json", "put", "-r", "-j", "4", "many"],
    )
    .ok();
    let json = run.json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["results"].as_array().unwrap().len(), tree.len());
    ferry(
        server.addr(),
        work.path(),
        &["-q", "get", "-r", "-j", "3", "many", "-o", "back"],
    )
    .ok();
    assert_eq!(
        read_tree(&work.path().join("back/many")),
        read_tree(&work.path().join("many"))
    );
}

#[test]
fn a_file_larger_than_any_buffer_round_trips() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(20 * 1024 * 1024 + 3, 4);
    std::fs::write(work.path().join("big"), &data).unwrap();
    let put = ferry(server.addr(), work.path(), &["--json", "put", "big"])
        .ok()
        .json();
    assert_eq!(put["results"][0]["digest"], Digest::of(&data).to_hex());
    let get = ferry(
        server.addr(),
        work.path(),
        &["--json", "get", "big", "-o", "out"],
    )
    .ok()
    .json();
    assert_eq!(get["results"][0]["size"], data.len() as u64);
    assert!(std::fs::read(work.path().join("out/big")).unwrap() == data);
}

#[test]
fn an_upload_cut_mid_transfer_resumes_from_the_servers_offset() {
    let server = TestServer::start();
    let relay = Relay::start(server.addr(), Direction::Upstream, 2 * 1024 * 1024 + 11);
    let work = tempfile::tempdir().unwrap();
    let data = pattern(6 * 1024 * 1024, 5);
    std::fs::write(work.path().join("cut"), &data).unwrap();
    let run = ferry(relay.addr, work.path(), &["--json", "put", "cut"])
        .ok()
        .json();
    assert!(relay.cut.load(Ordering::SeqCst));
    let result = &run["results"][0];
    // 2, or more if the server still held the cut upload when the client came back.
    assert!(result["attempts"].as_u64().unwrap() >= 2, "{run}");
    assert!(
        result["resumed_from"].as_u64().unwrap() > 0,
        "second attempt started at 0: {run}"
    );
    assert_eq!(server.stored("cut"), data);
}

#[test]
fn a_download_cut_mid_transfer_resumes_from_the_local_partial() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(6 * 1024 * 1024 + 9, 6);
    std::fs::write(work.path().join("src"), &data).unwrap();
    ferry(server.addr(), work.path(), &["put", "src", "--as", "down"]).ok();
    let relay = Relay::start(server.addr(), Direction::Downstream, 2 * 1024 * 1024 + 7);
    let run = ferry(
        relay.addr,
        work.path(),
        &["--json", "get", "down", "-o", "out"],
    )
    .ok()
    .json();
    assert!(relay.cut.load(Ordering::SeqCst));
    let result = &run["results"][0];
    // 2, or more if the server still held the cut upload when the client came back.
    assert!(result["attempts"].as_u64().unwrap() >= 2, "{run}");
    assert!(
        result["resumed_from"].as_u64().unwrap() > 0,
        "second attempt started at 0: {run}"
    );
    assert_eq!(std::fs::read(work.path().join("out/down")).unwrap(), data);
    assert_eq!(
        std::fs::read_dir(work.path().join("out")).unwrap().count(),
        1,
        "partial file left behind"
    );
}

#[test]
fn an_existing_name_is_refused_with_exit_code_4_and_a_hint() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"first").unwrap();
    ferry(server.addr(), work.path(), &["put", "f"]).ok();
    std::fs::write(work.path().join("f"), b"second").unwrap();
    let refused = ferry(server.addr(), work.path(), &["put", "f"]);
    assert_eq!(refused.code, 4);
    assert!(
        refused
            .stderr
            .contains("server refused upload: name already exists; use --overwrite"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("Refused {"),
        "debug dump in {}",
        refused.stderr
    );
    assert_eq!(server.stored("f"), b"first");
    ferry(server.addr(), work.path(), &["put", "f", "--overwrite"]).ok();
    assert_eq!(server.stored("f"), b"second");
}

#[test]
fn a_folder_with_one_refused_file_keeps_the_others_and_reports_the_failure() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let tree: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("n{i}"), vec![i as u8; 10]))
        .collect();
    write_tree(&work.path().join("d"), &tree);
    std::fs::write(work.path().join("clash"), b"already here").unwrap();
    ferry(
        server.addr(),
        work.path(),
        &["put", "clash", "--as", "d/n2"],
    )
    .ok();
    let run = ferry(server.addr(), work.path(), &["--json", "put", "-r", "d"]);
    assert_eq!(run.code, 4);
    let json = run.json();
    assert_eq!(json["ok"], false);
    let results = json["results"].as_array().unwrap();
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r["ok"] == false)
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(failed, vec![serde_json::json!("d/n2")]);
    assert_eq!(results[2]["exit_code"], 4);
    for i in [0, 1, 3, 4] {
        assert_eq!(server.stored(&format!("d/n{i}")), vec![i as u8; 10]);
    }
    assert_eq!(server.stored("d/n2"), b"already here");
}

#[test]
fn a_disk_filling_up_mid_upload_is_reported_as_refused_with_the_reason() {
    let server = TestServer::start_with(|config| config.fault_disk_full_after = Some(1024 * 1024));
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), pattern(8 * 1024 * 1024, 9)).unwrap();
    let run = ferry(server.addr(), work.path(), &["put", "f"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("disk full"), "{}", run.stderr);
    assert!(!server.root.path().join("f").exists());
}

#[test]
fn an_unreachable_server_exits_with_code_3() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"x").unwrap();
    // Bind and drop a listener to get a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = ferry(addr, work.path(), &["put", "f"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    let listing = ferry(addr, work.path(), &["ls", "--json"]);
    assert_eq!(listing.code, 3);
    let json = listing.json();
    assert_eq!(
        (json["ok"].clone(), json["exit_code"].clone()),
        (false.into(), 3.into())
    );
    let unresolvable = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--server", "no-such-host.invalid:7070", "ls"])
        .output()
        .unwrap();
    assert_eq!(unresolvable.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unresolvable.stderr).contains("no-such-host.invalid"));
}

#[test]
fn a_missing_file_is_refused_with_code_4_and_leaves_nothing_locally() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let run = ferry(server.addr(), work.path(), &["get", "nope"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("no such file"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn usage_errors_exit_with_code_2() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("a"), b"a").unwrap();
    std::fs::write(work.path().join("b"), b"b").unwrap();
    assert_eq!(
        ferry(server.addr(), work.path(), &["put", "a", "b", "--as", "x"]).code,
        2
    );
    assert_eq!(
        ferry(server.addr(), work.path(), &["put", "a", "--as", "../x"]).code,
        2
    );
    assert_eq!(ferry(server.addr(), work.path(), &["frobnicate"]).code, 2);
    assert_eq!(ferry(server.addr(), work.path(), &["get"]).code, 2);
    let clash = ferry(server.addr(), work.path(), &["get", "x/a", "y/a"]);
    assert_eq!(clash.code, 2);
    assert!(clash.stderr.contains("same local path"), "{}", clash.stderr);
}

#[test]
fn rm_and_ls_json_report_what_the_server_holds() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("a"), b"12345").unwrap();
    ferry(server.addr(), work.path(), &["put", "a", "--as", "x/a"]).ok();
    ferry(server.addr(), work.path(), &["put", "a", "--as", "x/b"]).ok();
    let listing = ferry(server.addr(), work.path(), &["--json", "ls"])
        .ok()
        .json();
    let entries = listing.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e["size"] == 5 && e["modified_ms"].as_u64().unwrap() > 0)
    );
    let removed = ferry(server.addr(), work.path(), &["--json", "rm", "x/a"])
        .ok()
        .json();
    assert_eq!(removed["results"][0]["ok"], true);
    let plain = ferry(server.addr(), work.path(), &["ls", "x/"]).ok();
    assert!(
        plain.stdout.contains("x/b") && !plain.stdout.contains("x/a"),
        "{}",
        plain.stdout
    );
    let again = ferry(server.addr(), work.path(), &["rm", "x/a"]);
    assert_eq!(again.code, 4);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("a"), b"x").unwrap();
    let run = ferry(server.addr(), work.path(), &["-q", "put", "a"]).ok();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
}

#[test]
fn help_documents_the_exit_codes() {
    let work = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:9".parse().unwrap();
    let run = ferry(addr, work.path(), &["--help"]).ok();
    for line in [
        "0  success (put: also a name that already holds the same bytes, reported as already stored)",
        "3  connection error",
        "4  refused by the server",
        "5  integrity failure",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in {}",
            run.stdout
        );
    }
}

#[test]
fn a_stalled_upload_counts_as_lost_and_resumes() {
    let server = TestServer::start();
    let relay = Relay::stalling(server.addr(), Direction::Upstream, 2 * 1024 * 1024 + 5);
    let work = tempfile::tempdir().unwrap();
    let data = pattern(5 * 1024 * 1024, 11);
    std::fs::write(work.path().join("s"), &data).unwrap();
    let run = ferry(
        relay.addr,
        work.path(),
        &["--json", "--stall-timeout", "1", "put", "s"],
    )
    .ok()
    .json();
    assert!(relay.cut.load(Ordering::SeqCst), "the relay never stalled");
    let result = &run["results"][0];
    assert!(result["attempts"].as_u64().unwrap() >= 2, "{run}");
    assert!(result["resumed_from"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(server.stored("s"), data);
}

#[test]
fn an_interrupted_upload_continues_when_the_command_is_run_again() {
    let server = TestServer::start();
    let relay = Relay::start(server.addr(), Direction::Upstream, 3 * 1024 * 1024);
    let work = tempfile::tempdir().unwrap();
    let data = pattern(5 * 1024 * 1024, 12);
    std::fs::write(work.path().join("again"), &data).unwrap();
    let failed = ferry(relay.addr, work.path(), &["--retries", "0", "put", "again"]);
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(!server.root.path().join("again").exists());
    let run = ferry(server.addr(), work.path(), &["--json", "put", "again"])
        .ok()
        .json();
    assert!(
        run["results"][0]["resumed_from"].as_u64().unwrap() > 0,
        "{run}"
    );
    assert_eq!(server.stored("again"), data);
}

#[test]
fn an_interrupted_download_continues_when_the_command_is_run_again() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(5 * 1024 * 1024, 13);
    std::fs::write(work.path().join("src"), &data).unwrap();
    ferry(server.addr(), work.path(), &["put", "src", "--as", "again"]).ok();
    let relay = Relay::start(server.addr(), Direction::Downstream, 3 * 1024 * 1024);
    let failed = ferry(
        relay.addr,
        work.path(),
        &["--retries", "0", "get", "again", "-o", "out"],
    );
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(
        !work.path().join("out/again").exists(),
        "a half file under the final name"
    );
    assert!(work.path().join("out/.again.ferry-partial").exists());
    let run = ferry(
        server.addr(),
        work.path(),
        &["--json", "get", "again", "-o", "out"],
    )
    .ok()
    .json();
    assert!(
        run["results"][0]["resumed_from"].as_u64().unwrap() > 0,
        "{run}"
    );
    assert_eq!(std::fs::read(work.path().join("out/again")).unwrap(), data);
}

#[test]
fn no_resume_starts_an_interrupted_download_over() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(1024 * 1024, 14);
    std::fs::write(work.path().join("src"), &data).unwrap();
    ferry(server.addr(), work.path(), &["put", "src", "--as", "over"]).ok();
    std::fs::create_dir(work.path().join("out")).unwrap();
    std::fs::write(
        work.path().join("out/.over.ferry-partial"),
        &data[..600_000],
    )
    .unwrap();
    let run = ferry(
        server.addr(),
        work.path(),
        &["--json", "get", "over", "-o", "out", "--no-resume"],
    )
    .ok()
    .json();
    assert_eq!(run["results"][0]["resumed_from"], 0, "{run}");
    assert_eq!(std::fs::read(work.path().join("out/over")).unwrap(), data);
}

#[test]
fn a_busy_server_is_retried_then_reported_as_refused() {
    let server = TestServer::start_with(|config| config.max_connections = 1);
    let options = ferry_client::ClientOptions {
        security: ferry_client::Security::Tls(ferry_client::Trust::Pinned(
            fingerprint().parse().unwrap(),
        )),
        ..ferry_client::ClientOptions::default()
    };
    let holder = ferry_client::Client::connect(server.addr(), options).unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"x").unwrap();
    let busy = ferry(server.addr(), work.path(), &["--retries", "2", "put", "f"]);
    assert_eq!(busy.code, 4, "{}", busy.stderr);
    assert!(
        busy.stderr.contains("server busy; try again later"),
        "{}",
        busy.stderr
    );
    drop(holder);
    // The server notices the closed connection on its own schedule: retry until it has.
    ferry(server.addr(), work.path(), &["--retries", "8", "put", "f"]).ok();
    assert_eq!(server.stored("f"), b"x");
}
