//! `ferry get NAME -o -`: the file to standard output, byte for byte, and exit code 5 with a
//! message on stderr when the bytes do not match the server's digest.

use ferry_server::memory::Faults;

use crate::support::cli::ferry_with;
use crate::support::memory_server::MemoryServer;
use crate::support::pattern;

/// A hundred mebibytes.
const BIG: usize = 100 * 1024 * 1024;

#[test]
fn a_hundred_mebibytes_through_get_to_standard_output_arrive_byte_identical() {
    let server = MemoryServer::start();
    let data = pattern(BIG, 21);
    server.store.insert("big.iso", &data);
    let work = tempfile::tempdir().unwrap();
    let run = ferry_with(
        server.addr(),
        work.path(),
        &["--insecure"],
        &["get", "big.iso", "-o", "-"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout_bytes.len() == data.len(),
        "{} bytes",
        run.stdout_bytes.len()
    );
    assert!(run.stdout_bytes == data, "the bytes differ");
    assert!(run.stderr.contains("to standard output"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_dir(work.path())
            .unwrap()
            .filter(|e| !e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".ferry"))
            .count(),
        0,
        "no file is written"
    );
}

#[test]
fn a_digest_mismatch_on_standard_output_exits_5_and_says_to_discard_the_bytes() {
    let server = MemoryServer::start();
    let data = pattern(300_000, 22);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), &data).unwrap();
    // The store flips a byte after the digest check: it now serves bytes that miss the
    // digest it recorded.
    server.store.set_faults(Faults {
        corrupt_commits: true,
        ..Faults::default()
    });
    let put = ferry_with(server.addr(), work.path(), &["--insecure"], &["put", "f"]);
    assert_eq!(put.code, 0, "{}", put.stderr);
    server.store.set_faults(Faults::default());
    assert_ne!(
        server.stored("f").unwrap(),
        data,
        "the sabotage corrupted nothing"
    );

    let run = ferry_with(
        server.addr(),
        work.path(),
        &["--insecure", "--retries", "0"],
        &["get", "f", "-o", "-"],
    );
    assert_eq!(
        run.code,
        5,
        "stdout {} bytes, stderr {}",
        run.stdout_bytes.len(),
        run.stderr
    );
    assert!(run.stderr.contains("integrity"), "{}", run.stderr);
    assert!(run.stderr.contains("discard them"), "{}", run.stderr);
}

#[test]
fn standard_output_takes_one_name_without_json() {
    let server = MemoryServer::start();
    server.store.insert("a", b"a");
    server.store.insert("b", b"b");
    let work = tempfile::tempdir().unwrap();
    for args in [
        &["get", "a", "b", "-o", "-"][..],
        &["get", "-r", "a", "-o", "-"],
        &["--json", "get", "a", "-o", "-"],
    ] {
        let run = ferry_with(server.addr(), work.path(), &["--insecure"], args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}
