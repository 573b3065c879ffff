//! Names in the `ferry` command: local file names upload in NFC, and every name a server lists
//! is printed escaped, however hostile (PROTOCOL.md §6).

use crate::support::cli::{TestServer, ferry, ferry_with};
use crate::support::hostile_server::HostileServer;

#[test]
fn a_file_named_in_nfd_uploads_under_its_nfc_name() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    // "café.txt" and "résumé/é.txt" as macOS names them: letters plus combining accents.
    std::fs::write(work.path().join("cafe\u{301}.txt"), b"one").unwrap();
    std::fs::create_dir_all(work.path().join("re\u{301}sume\u{301}")).unwrap();
    std::fs::write(
        work.path().join("re\u{301}sume\u{301}/e\u{301}.txt"),
        b"two",
    )
    .unwrap();

    let put = ferry(server.addr(), work.path(), &["put", "cafe\u{301}.txt"]).ok();
    assert!(
        put.stdout.contains("stored caf\u{e9}.txt"),
        "{}",
        put.stdout
    );
    ferry(
        server.addr(),
        work.path(),
        &["put", "-r", "re\u{301}sume\u{301}"],
    )
    .ok();

    assert_eq!(server.stored("caf\u{e9}.txt"), b"one");
    assert_eq!(server.stored("r\u{e9}sum\u{e9}/\u{e9}.txt"), b"two");
    let listing = ferry(server.addr(), work.path(), &["ls", "--json"])
        .ok()
        .json();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["caf\u{e9}.txt", "r\u{e9}sum\u{e9}/\u{e9}.txt"]);
}

#[test]
fn ls_escapes_the_hostile_names_a_server_lists() {
    // A server that does not follow the name policy (ferryd never lists these names).
    let server = HostileServer::listing(&[
        "a\u{202E}gpj.exe",
        r"back\slash",
        "zero\u{200B}width\u{2028}line",
    ]);
    let work = tempfile::tempdir().unwrap();

    let plain = ferry_with(server.addr, work.path(), &["--insecure"], &["ls"]).ok();
    assert!(
        plain.stdout.contains(r"a\u{202e}gpj.exe"),
        "{}",
        plain.stdout
    );
    assert!(
        plain.stdout.contains(r"zero\u{200b}width\u{2028}line"),
        "{}",
        plain.stdout
    );
    assert!(plain.stdout.contains(r"back\\slash"), "{}", plain.stdout);
    for hidden in ['\u{202E}', '\u{200B}', '\u{2028}'] {
        assert!(!plain.stdout.contains(hidden), "{:?}", plain.stdout);
    }
    assert_eq!(plain.stdout.lines().count(), 3, "{:?}", plain.stdout);

    // JSON keeps the real names, for programs.
    let json = ferry_with(server.addr, work.path(), &["--insecure"], &["ls", "--json"])
        .ok()
        .json();
    assert_eq!(json[0]["name"], "a\u{202E}gpj.exe");
}

#[test]
fn a_refused_hostile_name_is_reported_escaped() {
    let server = HostileServer::listing(&["a\u{202E}gpj.exe"]);
    let work = tempfile::tempdir().unwrap();
    // The client refuses to fetch a name that breaks the policy, and says so legibly.
    let run = ferry_with(
        server.addr,
        work.path(),
        &["--insecure"],
        &["get", "-r", "", "-o", "out"],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains(r"\u{202e}"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{202E}'), "{:?}", run.stderr);
    assert!(run.stderr.contains("unsafe name"), "{}", run.stderr);
    assert!(!work.path().join("out").exists(), "nothing was downloaded");
}
