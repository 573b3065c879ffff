//! A `put` without overwrite of a name that already holds the same bytes: done, not refused
//! (issue 16, "identical re-upload refused"). Against a real `ferry_server` on a folder and,
//! with SeaweedFS installed, on S3; over the in-memory store behind a logging relay where the
//! test must see which requests were made; and through the `ferry` binary.

use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use ferry_client::{
    Client, ClientError, ClientOptions, Digest, ErrorCode, PutOptions, PutOutcome, PutReport,
    Security, Trust,
};
use ferry_testkit::SeaweedFs;

use crate::support::cli::{TestServer, ferry, fingerprint, write_tree};
use crate::support::memory_server::MemoryServer;
use crate::support::pattern;
use crate::support::relay::Relay;

/// Size at which the client asks the server before `PUT` (the library's `PREHASH_MIN`).
const PREHASH_MIN: usize = 64 * 1024 * 1024;

fn options(security: Security) -> ClientOptions {
    ClientOptions {
        security,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..ClientOptions::default()
    }
}

/// A client of a [`TestServer`], trusting its pinned certificate.
fn connect(server: &TestServer) -> Client {
    let pinned = Security::Tls(Trust::Pinned(fingerprint().parse().unwrap()));
    Client::connect(server.addr(), options(pinned)).unwrap()
}

/// A plaintext client of the server (or relay) at `addr`.
fn connect_plain(addr: std::net::SocketAddr) -> Client {
    Client::connect(addr, options(Security::Insecure)).unwrap()
}

/// ferryd over the in-memory store, holding `data` as `name`: uploaded through the server, so
/// that it knows the digest as it would after any upload.
fn memory_server_holding(name: &str, data: &[u8]) -> MemoryServer {
    let server = MemoryServer::start();
    let (stored, _) = put_counting(&mut connect_plain(server.addr()), data, name);
    assert_eq!(stored.unwrap().outcome, PutOutcome::Uploaded);
    server
}

/// A source that counts the bytes read from it, to see when the client hashes it.
struct Counting<'a> {
    inner: Cursor<&'a [u8]>,
    read: u64,
}

impl<'a> Counting<'a> {
    fn new(data: &'a [u8]) -> Self {
        Counting {
            inner: Cursor::new(data),
            read: 0,
        }
    }
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for Counting<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

/// Puts `data` as `name` without overwrite; returns the result and the bytes read locally.
fn put_counting(
    client: &mut Client,
    data: &[u8],
    name: &str,
) -> (Result<PutReport, ClientError>, u64) {
    let mut source = Counting::new(data);
    let result = client.put_from(
        &mut source,
        data.len() as u64,
        name,
        &PutOptions::default(),
        &mut |_| {},
    );
    (result, source.read)
}

fn put_file(client: &mut Client, local: &Path, name: &str) -> Result<PutReport, ClientError> {
    client.put_file(local, name, &PutOptions::default(), &mut |_| {})
}

/// Inode, size and modification time of a stored file: what would change if it were written.
fn identity(path: &Path) -> (u64, u64, i64, i64) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec())
}

fn assert_refused_as_existing(result: Result<PutReport, ClientError>) -> ClientError {
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Refused {
                code: ErrorCode::AlreadyExists,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("use --overwrite"), "{error}");
    assert_eq!(error.exit_code(), 4);
    error
}

#[test]
fn an_identical_reupload_is_already_stored_and_leaves_the_stored_file_untouched() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("same.bin");
    let data = pattern(300_000, 31);
    std::fs::write(&local, &data).unwrap();
    let first = put_file(&mut connect(&server), &local, "dir/same.bin").unwrap();
    assert_eq!(first.outcome, PutOutcome::Uploaded);
    let stored = server.root.path().join("dir/same.bin");
    let before = identity(&stored);

    // A new run, as after a lost ACK: a fresh client puts the same file again.
    let again = put_file(&mut connect(&server), &local, "dir/same.bin").unwrap();
    assert_eq!(again.outcome, PutOutcome::AlreadyStored);
    assert_eq!(again.digest, Digest::of(&data));
    assert_eq!(again.size, data.len() as u64);
    assert_eq!(again.bytes_sent, 0);
    assert_eq!(
        identity(&stored),
        before,
        "the stored file was written again"
    );
    assert_eq!(server.stored("dir/same.bin"), data);
}

#[test]
fn an_identical_reupload_reads_the_local_file_once_and_an_empty_one_too() {
    let server = TestServer::start();
    let mut client = connect(&server);
    for (name, data) in [("full", pattern(70_000, 32)), ("empty", Vec::new())] {
        let (first, _) = put_counting(&mut client, &data, name);
        assert_eq!(first.unwrap().outcome, PutOutcome::Uploaded);
        let (again, read) = put_counting(&mut client, &data, name);
        assert_eq!(again.unwrap().outcome, PutOutcome::AlreadyStored, "{name}");
        assert_eq!(read, data.len() as u64, "{name}: local bytes read");
    }
}

#[test]
fn a_reupload_with_the_same_size_but_other_bytes_is_refused() {
    let server = TestServer::start();
    let mut client = connect(&server);
    let (first, _) = put_counting(&mut client, b"first", "f");
    first.unwrap();
    let before = identity(&server.root.path().join("f"));
    let (again, read) = put_counting(&mut client, b"other", "f");
    assert_refused_as_existing(again);
    assert_eq!(read, 5, "the local file is hashed once to compare");
    assert_eq!(identity(&server.root.path().join("f")), before);
    assert_eq!(server.stored("f"), b"first");
}

#[test]
fn a_reupload_of_another_size_is_refused_without_reading_the_local_file() {
    let server = TestServer::start();
    let mut client = connect(&server);
    put_counting(&mut client, b"first", "f").0.unwrap();
    let (again, read) = put_counting(&mut client, b"longer", "f");
    assert_refused_as_existing(again);
    assert_eq!(read, 0);
    assert_eq!(server.stored("f"), b"first");
}

#[test]
fn a_stored_file_without_a_digest_record_is_refused_saying_the_digest_is_unknown() {
    let server = TestServer::start();
    let mut client = connect(&server);
    let data = pattern(10_000, 33);
    put_counting(&mut client, &data, "nodigest").0.unwrap();
    // The same bytes written anew by someone else: a file with no record of its digest (a
    // record describes one version of a file, and is kept on that file where it can be).
    let stored = server.root.path().join("nodigest");
    std::fs::remove_file(&stored).unwrap();
    std::fs::write(&stored, &data).unwrap();

    let (again, read) = put_counting(&mut client, &data, "nodigest");
    let error = again.unwrap_err();
    assert!(
        matches!(error, ClientError::ExistsUnconfirmed { size: 10_000, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("a file of the same size (10000 bytes) is stored"),
        "{message}"
    );
    assert!(
        message.contains("its digest is unknown to the server"),
        "{message}"
    );
    assert!(
        message.contains("use --overwrite to replace it"),
        "{message}"
    );
    assert_eq!(error.exit_code(), 4);
    assert_eq!(read, 0, "nothing to compare a local digest with");
    // The connection stays usable, and --overwrite still replaces the file.
    let overwrite = PutOptions {
        overwrite: true,
        ..PutOptions::default()
    };
    let replaced = client
        .put_from(
            &mut Cursor::new(&data),
            data.len() as u64,
            "nodigest",
            &overwrite,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(replaced.outcome, PutOutcome::Uploaded);
}

#[test]
fn a_small_reupload_asks_only_after_the_refusal() {
    let server = MemoryServer::start();
    let relay = Relay::passing(server.addr());
    let mut client = connect_plain(relay.addr);
    put_counting(&mut client, b"new name", "n").0.unwrap();
    // A new name costs no query.
    assert_eq!(relay.log.requests(), ["put"]);
    let (again, _) = put_counting(&mut client, b"new name", "n");
    assert_eq!(again.unwrap().outcome, PutOutcome::AlreadyStored);
    assert_eq!(relay.log.requests(), ["put", "put", "query"]);
}

#[test]
fn a_large_identical_reupload_is_settled_by_the_resume_query_without_a_put() {
    let data = pattern(PREHASH_MIN + 100, 34);
    let server = memory_server_holding("large", &data);
    let relay = Relay::passing(server.addr());
    let mut client = connect_plain(relay.addr);
    let (result, read) = put_counting(&mut client, &data, "large");
    let report = result.unwrap();
    assert_eq!(report.outcome, PutOutcome::AlreadyStored);
    assert_eq!(report.bytes_sent, 0);
    assert_eq!(read, data.len() as u64);
    assert_eq!(relay.log.requests(), ["query"]);
}

#[test]
fn a_large_reupload_of_other_bytes_is_refused_and_hashed_only_once() {
    let data = pattern(PREHASH_MIN + 100, 35);
    let mut other = data.clone();
    other[PREHASH_MIN] ^= 1;
    let server = memory_server_holding("large", &other);
    let relay = Relay::passing(server.addr());
    let mut client = connect_plain(relay.addr);
    let (result, read) = put_counting(&mut client, &data, "large");
    assert_refused_as_existing(result);
    assert_eq!(read, data.len() as u64);
    assert_eq!(relay.log.requests(), ["query", "put", "query"]);
    assert!(
        server.stored("large").unwrap() == other,
        "the stored file changed"
    );
}

#[test]
fn an_identical_reupload_to_an_s3_store_is_already_stored() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = weed.config(&SeaweedFs::unique_prefix("client-reupload"));
    let server = TestServer::start_with(move |config| {
        config.object_store = Some(store);
        config.s3_part_size = 5 * 1024 * 1024;
    });
    let mut client = connect(&server);
    // One request, and a multipart upload (its ETag is not the MD5 of the whole file).
    for (name, data) in [
        ("one", pattern(1000, 36)),
        ("parts", pattern(11 * 1024 * 1024 + 3, 37)),
    ] {
        let (first, _) = put_counting(&mut client, &data, name);
        assert_eq!(first.unwrap().outcome, PutOutcome::Uploaded, "{name}");
        let (again, _) = put_counting(&mut client, &data, name);
        let again = again.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again.outcome, PutOutcome::AlreadyStored, "{name}");
        assert_eq!(again.digest, Digest::of(&data), "{name}");
        let mut changed = data.clone();
        changed[0] ^= 1;
        assert_refused_as_existing(put_counting(&mut client, &changed, name).0);
    }
}

#[test]
fn ferry_put_of_an_identical_file_exits_0_and_says_already_stored() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let data = pattern(5000, 38);
    std::fs::write(work.path().join("f"), &data).unwrap();
    ferry(server.addr(), work.path(), &["put", "f"]).ok();

    let again = ferry(server.addr(), work.path(), &["put", "f"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout.trim_end(),
        format!(
            "already stored: f (identical, 5000 bytes, blake3 {})",
            Digest::of(&data)
        )
    );
    let json = ferry(server.addr(), work.path(), &["--json", "put", "f"])
        .ok()
        .json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["results"][0]["status"], "already_stored");
    assert_eq!(json["results"][0]["digest"], Digest::of(&data).to_hex());
    assert_eq!(
        json["summary"],
        serde_json::json!({ "stored": 0, "already_stored": 1, "failed": 0 })
    );
}

#[test]
fn ferry_put_of_the_same_size_but_other_bytes_exits_4() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"first").unwrap();
    ferry(server.addr(), work.path(), &["put", "f"]).ok();
    std::fs::write(work.path().join("f"), b"other").unwrap();
    let refused = ferry(server.addr(), work.path(), &["--json", "put", "f"]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("server refused upload: name already exists; use --overwrite"),
        "{}",
        refused.stderr
    );
    let json = refused.json();
    assert_eq!(
        json["summary"],
        serde_json::json!({ "stored": 0, "already_stored": 0, "failed": 1 })
    );
    assert_eq!(server.stored("f"), b"first");
}

#[test]
fn ferry_put_r_of_a_folder_twice_reports_every_file_already_stored() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let tree: Vec<(String, Vec<u8>)> = vec![
        ("a.txt".into(), b"top".to_vec()),
        ("sub/b.bin".into(), pattern(70_000, 39)),
        ("sub/deeper/c".into(), Vec::new()),
    ];
    write_tree(&work.path().join("d"), &tree);
    let first = ferry(server.addr(), work.path(), &["put", "-r", "d"]).ok();
    assert!(
        first
            .stdout
            .contains("put 3 files: 3 stored, 0 already stored, 0 failed"),
        "{}",
        first.stdout
    );

    let json = ferry(
        server.addr(),
        work.path(),
        &["--json", "put", "-r", "d", "-j", "2"],
    )
    .ok()
    .json();
    assert_eq!(json["ok"], true);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        assert_eq!(result["status"], "already_stored", "{result}");
    }
    assert_eq!(
        json["summary"],
        serde_json::json!({ "stored": 0, "already_stored": 3, "failed": 0 })
    );
    let text = ferry(server.addr(), work.path(), &["put", "-r", "d"]).ok();
    assert!(
        text.stdout
            .contains("put 3 files: 0 stored, 3 already stored, 0 failed"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("already stored: d/sub/b.bin (identical"),
        "{}",
        text.stdout
    );
}
