//! `ferry put - --as NAME`: an upload read from standard input, its size told at the end
//! (protocol version 3's streamed upload), against a real ferryd on a folder. A hundred
//! mebibytes go through `put -` and come back through `get -o -` byte-identical; the limits,
//! the usage rules and a cut connection leave nothing behind.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ferry_protocol::Digest;

use crate::support::cli::{TestServer, ferry, ferry_command, fingerprint};
use crate::support::relay::{Direction, Relay};

/// A hundred mebibytes.
const BIG: u64 = 100 * 1024 * 1024;

/// Piece in which the test writes and reads the streams: the stream is never held whole.
const PIECE: usize = 1024 * 1024;

/// Reproducible, incompressible-looking bytes, made a piece at a time (xorshift).
struct Pattern {
    state: u64,
    left: u64,
}

impl Pattern {
    fn new(len: u64, seed: u64) -> Pattern {
        Pattern {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
        }
    }

    /// The next piece (empty at the end).
    fn next_piece(&mut self) -> Vec<u8> {
        let len = self.left.min(PIECE as u64) as usize;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            out.extend_from_slice(&self.state.to_le_bytes());
        }
        out.truncate(len);
        self.left -= len as u64;
        out
    }

    /// Length and BLAKE3 digest of the whole pattern.
    fn digest(len: u64, seed: u64) -> (u64, Digest) {
        let mut pattern = Pattern::new(len, seed);
        let mut hasher = blake3::Hasher::new();
        loop {
            let piece = pattern.next_piece();
            if piece.is_empty() {
                return (len, Digest(*hasher.finalize().as_bytes()));
            }
            hasher.update(&piece);
        }
    }
}

/// `ferry put -` (with `args` after it) spawned with a pipe on its standard input.
fn spawn_put(addr: std::net::SocketAddr, dir: &Path, args: &[&str]) -> Child {
    let mut full = vec!["put", "-"];
    full.extend_from_slice(args);
    ferry_command(addr, dir, &["--fingerprint", &fingerprint()], &full)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a finished `ferry` said: exit code, stdout, stderr.
fn wait(child: Child) -> (i32, String, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ferry put - args…` fed `len` bytes of the pattern `seed` on its standard input.
fn put_stream(
    server: &TestServer,
    dir: &Path,
    args: &[&str],
    len: u64,
    seed: u64,
) -> (i32, String, String) {
    let mut child = spawn_put(server.addr(), dir, args);
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let mut pattern = Pattern::new(len, seed);
        loop {
            let piece = pattern.next_piece();
            // A refused upload stops reading: its pipe breaks, which is fine here.
            if piece.is_empty() || stdin.write_all(&piece).is_err() {
                return;
            }
        }
    });
    let ended = wait(child);
    writer.join().unwrap();
    ended
}

/// Nothing visible under `name`, and nothing staged on the server.
fn assert_nothing_left(server: &TestServer, name: &str) {
    assert!(!server.root.path().join(name).exists(), "{name} is visible");
    let staging = server.root.path().join(".ferry-staging");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let staged: Vec<_> = std::fs::read_dir(&staging)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if staged.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left staged: {staged:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_hundred_mebibytes_piped_through_put_and_get_come_back_byte_identical() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = put_stream(&server, work.path(), &["--as", "big.bin"], BIG, 31);
    assert_eq!(code, 0, "put: {stderr}");
    let (len, digest) = Pattern::digest(BIG, 31);
    assert!(
        stdout.contains(&format!("stored big.bin ({len} bytes, blake3 {digest})")),
        "{stdout}"
    );
    let put_took = started.elapsed();

    let mut get = ferry_command(
        server.addr(),
        work.path(),
        &["--fingerprint", &fingerprint()],
        &["get", "big.bin", "-o", "-"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = get.stdout.take().unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut received = 0u64;
    let mut piece = vec![0; PIECE];
    loop {
        let n = stdout.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&piece[..n]);
        received += n as u64;
    }
    let (code, _, stderr) = wait(get);
    assert_eq!(code, 0, "get: {stderr}");
    assert_eq!(received, BIG);
    assert_eq!(
        Digest(*hasher.finalize().as_bytes()),
        digest,
        "the bytes differ"
    );
    eprintln!(
        "100 MiB: put - in {put_took:?}, put and get in {:?}",
        started.elapsed()
    );
}

#[test]
fn an_empty_standard_input_stores_an_empty_file_and_json_reports_it() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) =
        put_stream(&server, work.path(), &["--as", "empty", "--json"], 0, 1);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.stored("empty"), b"");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["command"], "put");
    assert_eq!(json["ok"], true);
    assert_eq!(json["summary"]["stored"], 1);
    let result = &json["results"][0];
    assert_eq!(result["name"], "empty");
    assert_eq!(result["local"], "-");
    assert_eq!(result["status"], "stored");
    assert_eq!(result["size"], 0);
    assert_eq!(result["digest"], Digest::of(b"").to_hex());
}

#[test]
fn put_dash_needs_as_and_stands_alone() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("other"), b"x").unwrap();
    for (args, says) in [
        (&["put", "-"][..], "--as NAME"),
        (&["put", "-", "other", "--as", "dir/"], "on its own"),
        (&["put", "-r", "-", "--as", "x"], "-r"),
        (&["put", "-", "--as", "dir/"], "names a folder"),
    ] {
        let run = ferry(server.addr(), work.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert!(
        std::fs::read_dir(server.root.path())
            .unwrap()
            .flatten()
            .all(|e| e.file_name().to_string_lossy().starts_with(".ferry")),
        "something was stored"
    );
}

#[test]
fn an_existing_name_is_refused_unless_overwrite() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let args = ["--as", "notes"];
    assert_eq!(put_stream(&server, work.path(), &args, 1000, 2).0, 0);
    let first = server.stored("notes");
    let (code, _, stderr) = put_stream(&server, work.path(), &args, 1000, 2);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("use --overwrite"), "{stderr}");
    assert_eq!(server.stored("notes"), first);
    let (code, _, stderr) = put_stream(
        &server,
        work.path(),
        &["--as", "notes", "--overwrite"],
        500,
        3,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.stored("notes").len(), 500);
}

#[test]
fn a_stream_past_the_servers_file_limit_is_refused_and_nothing_is_stored() {
    let server = TestServer::start_with(|config| config.max_file_size = 1_000_000);
    let work = tempfile::tempdir().unwrap();
    let (code, _, stderr) = put_stream(&server, work.path(), &["--as", "big"], 5_000_000, 4);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("limit of 1000000 bytes") && stderr.contains("nothing of the upload"),
        "{stderr}"
    );
    assert_nothing_left(&server, "big");
}

#[test]
fn a_connection_cut_mid_stream_says_standard_input_cannot_be_re_read_and_stores_nothing() {
    let server = TestServer::start();
    let relay = Relay::start(server.addr(), Direction::Upstream, 3_000_000);
    let work = tempfile::tempdir().unwrap();
    let mut child = ferry_command(
        relay.addr,
        work.path(),
        &["--fingerprint", &fingerprint()],
        &["put", "-", "--as", "cut"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let mut pattern = Pattern::new(20_000_000, 5);
        loop {
            let piece = pattern.next_piece();
            if piece.is_empty() || stdin.write_all(&piece).is_err() {
                return;
            }
        }
    });
    let (code, _, stderr) = wait(child);
    writer.join().unwrap();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("standard input cannot be re-read")
            && stderr.contains("the upload was not stored"),
        "{stderr}"
    );
    assert_nothing_left(&server, "cut");
}
