//! `ferry stat NAME`: size, modification time and digest, without downloading.

use ferry_client::Digest;

use crate::support::cli::{TestServer, ferry};
use crate::support::pattern;

#[test]
fn stat_shows_size_time_and_the_digest_the_server_recorded() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(123_457, 31);
    std::fs::write(work.path().join("f.bin"), &data).unwrap();
    ferry(
        server.addr(),
        work.path(),
        &["put", "f.bin", "--as", "docs/f.bin"],
    )
    .ok();
    let listing = ferry(server.addr(), work.path(), &["ls", "--json"])
        .ok()
        .json();
    let modified_ms = listing[0]["modified_ms"].as_u64().unwrap();

    let json = ferry(
        server.addr(),
        work.path(),
        &["--json", "stat", "docs/f.bin"],
    )
    .ok()
    .json();
    assert_eq!(json["name"], "docs/f.bin");
    assert_eq!(json["size"], 123_457);
    assert_eq!(json["modified_ms"], modified_ms);
    assert_eq!(json["digest"], Digest::of(&data).to_hex());

    let text = ferry(server.addr(), work.path(), &["stat", "docs/f.bin"]).ok();
    assert!(
        text.stdout.contains("size:     123457 bytes"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("blake3:   {}", Digest::of(&data).to_hex())),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("modified: 20"), "{}", text.stdout);
}

#[test]
fn stat_of_a_missing_name_or_a_folder_is_refused_and_says_which() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"x").unwrap();
    ferry(server.addr(), work.path(), &["put", "f", "--as", "dir/f"]).ok();
    // `dir/f` starts with `dir/f`, and so does `dir/ff`: stat takes the exact name only.
    ferry(server.addr(), work.path(), &["put", "f", "--as", "dir/ff"]).ok();
    let missing = ferry(server.addr(), work.path(), &["stat", "dir/fx"]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no file named"),
        "{}",
        missing.stderr
    );
    let folder = ferry(server.addr(), work.path(), &["stat", "dir"]);
    assert_eq!(folder.code, 4);
    assert!(
        folder.stderr.contains("is a folder (2 files under it)"),
        "{}",
        folder.stderr
    );
    let exact = ferry(server.addr(), work.path(), &["--json", "stat", "dir/f"])
        .ok()
        .json();
    assert_eq!(exact["size"], 1);
}
