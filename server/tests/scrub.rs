//! `ferryd scrub`: files stored through a real server, then changed behind its back the way bit
//! rot changes them (a byte flipped in place, the file's date kept; an object's bytes changed
//! under the same ETag), found by the real binary; a clean store found clean; a scrub beside a
//! live server leaving its upload in progress alone; the rate limit holding.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_protocol::{ClientEvent, Digest};
use ferry_server::{FindingKind, S3Config, ScrubOptions, ServerConfig, scrub};
use ferry_testkit::SeaweedFs;
use rusty_s3::S3Action as _;
use serde_json::{Value, json};

use crate::support::ferryd::s3_env;
use crate::support::{TestServer, data, snapshot, tag};

const MIB: usize = 1024 * 1024;

/// What `ferryd scrub` printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// The `--json` report.
    fn report(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs the real `ferryd scrub` with `args` and the environment `env`.
fn ferryd_scrub(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .arg("scrub")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        took: started.elapsed(),
    }
}

/// Scrubs the folder store at `root` with the real binary, with `--json` and `extra` flags.
fn scrub_root(root: &Path, extra: &[&str]) -> Run {
    let root = root.to_str().unwrap();
    let mut args = vec!["--root", root, "--json"];
    args.extend_from_slice(extra);
    ferryd_scrub(&args, &[])
}

/// A server's root holding `files`, uploaded through the server, which is then stopped.
fn stored(files: &[(&str, Vec<u8>)]) -> TestServer {
    let mut server = TestServer::start(|_| {});
    let mut client = server.client();
    for (name, bytes) in files {
        client.put_new(name, bytes);
    }
    drop(client);
    server.handle.take().unwrap().shutdown();
    server
}

/// Three files: empty, small, and several hash units long in a folder.
fn three_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("notes.txt", b"a few bytes".to_vec()),
        ("photos/big.raw", data(3 * MIB + 12_345, 1)),
    ]
}

/// Flips one bit of the byte at `offset` in place, then puts the file's modification time
/// back: what bit rot looks like to the file system.
fn flip_byte_keeping_date(path: &Path, offset: u64) {
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut byte).unwrap();
    byte[0] ^= 0x10;
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&byte).unwrap();
    file.set_modified(modified).unwrap();
    file.sync_all().unwrap();
    drop(file);
    assert_eq!(fs::metadata(path).unwrap().modified().unwrap(), modified);
}

#[test]
fn a_clean_root_scrubs_clean_exits_0_and_is_left_as_it_was() {
    let files = three_files();
    let server = stored(&files);
    let before = snapshot(&server.root());
    let run = scrub_root(&server.root(), &[]);
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let report = run.report();
    assert_eq!(report["files"], 3);
    assert_eq!(report["matched"], 3);
    assert_eq!(report["findings"], json!([]));
    let total: usize = files.iter().map(|(_, bytes)| bytes.len()).sum();
    assert_eq!(report["bytes"], total);
    assert!(
        run.stderr.contains("3/3 files"),
        "progress on stderr: {}",
        run.stderr
    );
    assert_eq!(
        snapshot(&server.root()),
        before,
        "the scrub changed the root"
    );
}

#[test]
fn a_byte_flipped_in_place_with_its_date_kept_is_a_mismatch_with_both_digests() {
    let files = three_files();
    let server = stored(&files);
    let path = server.root().join("photos/big.raw");
    flip_byte_keeping_date(&path, 2 * MIB as u64 + 7);
    let rotten = fs::read(&path).unwrap();
    assert_ne!(rotten, files[2].1);

    let run = scrub_root(&server.root(), &[]);
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let report = run.report();
    assert_eq!(report["matched"], 2);
    assert_eq!(
        report["findings"],
        json!([{
            "name": "photos/big.raw",
            "size": files[2].1.len(),
            "finding": "mismatch",
            "recorded": Digest::of(&files[2].1).to_hex(),
            "computed": Digest::of(&rotten).to_hex(),
        }])
    );

    // Without --json: one line for the problem, then the summary.
    let text = ferryd_scrub(&["--root", server.root().to_str().unwrap()], &[]);
    assert_eq!(text.code, 1);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(
        lines[0].starts_with("MISMATCH \"photos/big.raw\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(&Digest::of(&rotten).to_hex()),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("2 matched, 1 mismatched"), "{}", lines[1]);
}

#[test]
fn files_put_or_changed_outside_ferryd_are_reported_without_a_digest() {
    let files = three_files();
    let server = stored(&files);
    let root = server.root();
    fs::write(root.join("by-hand.txt"), b"copied in with cp").unwrap();
    // Changed through the file system: its date moves, so its record no longer applies.
    let changed = root.join("notes.txt");
    fs::write(&changed, b"a few bytez").unwrap();
    let later = fs::metadata(&changed).unwrap().modified().unwrap() + Duration::from_secs(1);
    fs::File::options()
        .write(true)
        .open(&changed)
        .unwrap()
        .set_modified(later)
        .unwrap();

    let run = scrub_root(&root, &[]);
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let report = run.report();
    assert_eq!(report["files"], 4);
    assert_eq!(report["matched"], 2);
    assert_eq!(
        report["findings"],
        json!([
            {
                "name": "by-hand.txt",
                "size": 17,
                "finding": "no_digest",
                "computed": Digest::of(b"copied in with cp").to_hex(),
            },
            {
                "name": "notes.txt",
                "size": 11,
                "finding": "no_digest",
                "computed": Digest::of(b"a few bytez").to_hex(),
            },
        ])
    );
}

#[test]
fn a_file_removed_during_the_scrub_is_vanished_and_no_problem() {
    let server = stored(&[("a", b"first".to_vec()), ("b", b"second".to_vec())]);
    let root = server.root();
    let mut removed = false;
    let report = scrub(
        &ServerConfig::new(&root),
        &ScrubOptions::default(),
        |progress| {
            // Between the check of "a" and that of "b".
            if progress.files_done == 1 && !removed {
                fs::remove_file(root.join("b")).unwrap();
                removed = true;
            }
        },
    )
    .unwrap();
    assert!(removed);
    assert_eq!(report.matched, 1);
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].name, "b");
    assert_eq!(report.findings[0].kind, FindingKind::Vanished);
    assert!(report.is_clean());
}

#[test]
fn a_scrub_beside_a_running_server_leaves_its_upload_in_progress_alone() {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    client.put_new("done", &data(100_000, 2));
    let body = data(2 * MIB, 3);
    let ready = client.put_request("coming", body.len() as u64, false, true, tag(1));
    assert_eq!(ready, ClientEvent::PutReady { offset: 0 });
    client.send_data(&body[..MIB]);
    client.sync();
    assert!(
        !server.staged_files().is_empty(),
        "the upload's data is staged"
    );
    let before = snapshot(&server.root());

    // A partial-upload age of zero: a scrub that ran the server's start-up repair and sweep
    // would delete the upload under way.
    let mut config = ServerConfig::new(server.root());
    config.staging_max_age = Duration::ZERO;
    let report = scrub(&config, &ScrubOptions::default(), |_| {}).unwrap();
    assert_eq!((report.files, report.matched), (1, 1), "{report:?}");
    assert_eq!(
        snapshot(&server.root()),
        before,
        "the scrub changed the root"
    );

    client.send_data(&body[MIB..]);
    assert_eq!(
        client.finish_upload(Digest::of(&body)).unwrap(),
        ClientEvent::PutStored
    );
    assert_eq!(client.get("coming").unwrap(), body);
}

#[test]
fn a_rate_limited_scrub_reads_no_faster_than_its_limit() {
    let files = [("one", data(MIB, 4)), ("two", data(MIB + MIB / 2, 5))];
    let server = stored(&files);
    let total = (MIB + MIB + MIB / 2) as f64;
    let run = scrub_root(&server.root(), &["--limit-rate", "1M"]);
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert_eq!(run.report()["matched"], 2);
    // The limiter starts empty, so B bytes take at least B / rate (a lower bound only).
    let least = Duration::from_secs_f64(total / MIB as f64);
    assert!(
        run.took >= least,
        "read {total} bytes in {:?}, less than {least:?}",
        run.took
    );
}

/// Replaces the object of `name` in the bucket directly, as something other than ferryd would.
fn put_behind_ferryds_back(store: &S3Config, name: &str, body: &[u8]) {
    let bucket = rusty_s3::Bucket::new(
        store.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        store.bucket.clone(),
        store.region.clone(),
    )
    .unwrap();
    let credentials = rusty_s3::Credentials::new(&store.access_key, &store.secret_key);
    let url = bucket
        .put_object(Some(&credentials), &store.key(name))
        .sign(Duration::from_secs(60));
    let response = ureq::put(url.as_str()).send(body).unwrap();
    assert!(response.status().is_success(), "{response:?}");
}

/// A bucket prefix of its own holding `files`, uploaded through a ferryd node.
fn stored_in_bucket(weed: &SeaweedFs, test: &str, files: &[(&str, Vec<u8>)]) -> S3Config {
    let store = weed.config(&SeaweedFs::unique_prefix(test));
    let node = {
        let store = store.clone();
        TestServer::start(move |config| config.object_store = Some(store))
    };
    let mut client = node.client();
    for (name, bytes) in files {
        client.put_new(name, bytes);
    }
    store
}

/// Scrubs the bucket prefix of `store` with the real binary and `--json`.
fn scrub_bucket(store: &S3Config) -> Run {
    let location = format!("s3://{}/{}", store.bucket, store.prefix);
    ferryd_scrub(
        &[
            "--store",
            &location,
            "--s3-endpoint",
            &store.endpoint,
            "--json",
        ],
        &s3_env(store),
    )
}

/// Two different 128-byte messages with the same MD5 (Wang and Yu, 2004): an object's
/// single-part ETag is the MD5 of its bytes, so swapping one for the other changes the bytes
/// and keeps the ETag, as bit rot inside an object store would.
fn md5_twins() -> (Vec<u8>, Vec<u8>) {
    let hex = |text: &str| -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    };
    let one = hex(concat!(
        "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89",
        "55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b",
        "d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0",
        "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70",
    ));
    let two = hex(concat!(
        "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89",
        "55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b",
        "d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0",
        "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70",
    ));
    assert_ne!(one, two);
    assert_eq!(
        <md5::Md5 as md5::Digest>::digest(&one),
        <md5::Md5 as md5::Digest>::digest(&two)
    );
    (one, two)
}

#[test]
fn s3_a_clean_bucket_scrubs_clean_and_exits_0() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = stored_in_bucket(weed, "scrub-clean", &three_files());
    let run = scrub_bucket(&store);
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let report = run.report();
    assert_eq!(
        (report["files"].clone(), report["matched"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(report["findings"], json!([]));
}

#[test]
fn s3_changed_bytes_under_the_same_etag_are_a_mismatch_and_an_overwrite_has_no_digest() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let (original, rotten) = md5_twins();
    let mut files = three_files();
    files.push(("twin", original.clone()));
    let store = stored_in_bucket(weed, "scrub-flip", &files);
    assert_eq!(scrub_bucket(&store).code, 0);

    put_behind_ferryds_back(&store, "twin", &rotten);
    let overwritten = b"replaced without ferryd".to_vec();
    put_behind_ferryds_back(&store, "notes.txt", &overwritten);

    let run = scrub_bucket(&store);
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let report = run.report();
    assert_eq!(report["matched"], 2);
    assert_eq!(
        report["findings"],
        json!([
            {
                "name": "notes.txt",
                "size": overwritten.len(),
                "finding": "no_digest",
                "computed": Digest::of(&overwritten).to_hex(),
            },
            {
                "name": "twin",
                "size": 128,
                "finding": "mismatch",
                "recorded": Digest::of(&original).to_hex(),
                "computed": Digest::of(&rotten).to_hex(),
            },
        ])
    );
}
