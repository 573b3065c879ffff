//! The walk over a store whose files fail in every way a scrub must tell apart.

use std::io::{self, Read};
use std::ops::ControlFlow;
use std::time::Duration;

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};

use super::Walk;
use crate::config::ServerConfig;
use crate::scrub::report::{Finding, FindingKind, Progress};
use crate::store::error::StorageError;
use crate::store::s3::S3Error;
use crate::store::{Entry, FileContent, Held, OpenedFile, Store, Upload};

/// How a file of the fake store misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Reads as it should.
    None,
    /// Gone between the listing and its opening.
    Removed,
    /// Opening it fails.
    OpenFails,
    /// Reading fails with an I/O error after its first half.
    ReadFails,
    /// Ends after half of its listed size.
    Short,
    /// Its version is replaced while it is read (the object store's pinned read fails).
    Replaced,
}

#[derive(Debug)]
struct FakeFile {
    name: &'static str,
    bytes: Vec<u8>,
    recorded: Option<Digest>,
    fault: Fault,
}

/// A store that only lists and opens, failing as told.
#[derive(Debug)]
struct FakeStore(Vec<FakeFile>);

impl Store for FakeStore {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn open_upload(
        &self,
        _: &ServerConfig,
        _: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        panic!("a scrub never uploads")
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        let not_found = || StorageError::NotFound(name.into());
        let file = self
            .0
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(not_found)?;
        match file.fault {
            Fault::Removed => return Err(not_found()),
            Fault::OpenFails => {
                return Err(StorageError::io("opening a file to send")(
                    io::ErrorKind::PermissionDenied.into(),
                ));
            }
            _ => {}
        }
        Ok(OpenedFile {
            size: file.bytes.len() as u64,
            digest: file.recorded,
            content: Box::new(FakeContent {
                bytes: file.bytes.clone(),
                fault: file.fault,
            }),
        })
    }

    fn remove(&self, _: &str) -> Result<u64, StorageError> {
        panic!("a scrub never removes")
    }

    fn rename(&self, _: &str, _: &str, _: bool) -> Result<(), StorageError> {
        panic!("a scrub never moves")
    }

    fn query(&self, _: &str, _: &SourceTag) -> Result<Held, StorageError> {
        panic!("a scrub never queries")
    }

    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        assert_eq!(prefix, "", "a scrub lists everything");
        let entries: Vec<Entry> = self
            .0
            .iter()
            .map(|f| Entry {
                name: f.name.into(),
                size: f.bytes.len() as u64,
                modified_ms: 0,
            })
            .collect();
        let _ = page(&entries);
        Ok(())
    }

    fn sweep_staging(&self, _: Duration) {
        panic!("a scrub never sweeps")
    }

    fn commits_in_parallel(&self) -> bool {
        false
    }
}

struct FakeContent {
    bytes: Vec<u8>,
    fault: Fault,
}

/// A reader that fails with `error` once reached.
struct Failing(fn() -> io::Error);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err((self.0)())
    }
}

impl FileContent for FakeContent {
    fn read_from(&mut self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        assert_eq!(offset, 0, "a scrub reads whole files");
        let half = io::Cursor::new(self.bytes[..self.bytes.len() / 2].to_vec());
        Ok(match self.fault {
            Fault::ReadFails => {
                Box::new(half.chain(Failing(|| io::Error::other("Input/output error"))))
            }
            Fault::Replaced => {
                Box::new(half.chain(Failing(|| io::Error::other(S3Error::PreconditionFailed))))
            }
            Fault::Short => Box::new(half),
            _ => Box::new(io::Cursor::new(self.bytes.clone())),
        })
    }

    fn remember_digest(&self, _: &Digest) {
        panic!("a scrub records nothing")
    }
}

fn file(name: &'static str, len: usize, recorded: Option<&[u8]>, fault: Fault) -> FakeFile {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let recorded = recorded.map(|r| Digest::of(if r.is_empty() { &bytes } else { r }));
    FakeFile {
        name,
        bytes,
        recorded,
        fault,
    }
}

#[test]
fn each_file_is_matched_or_found_for_what_it_is() {
    const BIG: usize = 600_000; // several read buffers
    let store = FakeStore(vec![
        file("a-ok", BIG, Some(b""), Fault::None),
        file("b-rotten", BIG, Some(b"what was stored"), Fault::None),
        file("c-unrecorded", 10, None, Fault::None),
        file("d-removed", 10, Some(b""), Fault::Removed),
        file("e-denied", 10, Some(b""), Fault::OpenFails),
        file("f-io-error", BIG, Some(b""), Fault::ReadFails),
        file("g-short", 10, Some(b""), Fault::Short),
        file("h-replaced", BIG, Some(b""), Fault::Replaced),
    ]);
    let mut last = Progress::default();
    let mut calls = 0;
    let report = Walk::new(&store, None, |p: &Progress| {
        assert!(p.bytes_done >= last.bytes_done && p.files_done >= last.files_done);
        last = *p;
        calls += 1;
    })
    .run()
    .unwrap();

    let kinds: Vec<(&str, FindingKind)> = report
        .findings
        .iter()
        .map(|Finding { name, kind, .. }| (name.as_str(), kind.clone()))
        .collect();
    let bytes_of = |name| &store.0.iter().find(|f| f.name == name).unwrap().bytes;
    assert_eq!(kinds.len(), 7, "{kinds:#?}");
    assert_eq!(
        kinds[0],
        (
            "b-rotten",
            FindingKind::Mismatch {
                recorded: Digest::of(b"what was stored"),
                computed: Digest::of(bytes_of("b-rotten")),
            }
        )
    );
    assert_eq!(
        kinds[1],
        (
            "c-unrecorded",
            FindingKind::NoDigest {
                computed: Digest::of(bytes_of("c-unrecorded")),
            }
        )
    );
    assert_eq!(kinds[2], ("d-removed", FindingKind::Vanished));
    let unreadable = |i: usize, name: &str, says: &str| match &kinds[i] {
        (n, FindingKind::Unreadable { error }) if *n == name => {
            assert!(error.contains(says), "{name}: {error}");
        }
        other => panic!("expected {name} unreadable, got {other:?}"),
    };
    unreadable(3, "e-denied", "permission denied");
    unreadable(4, "f-io-error", "Input/output error");
    unreadable(5, "g-short", "ended after 5 of its 10 bytes");
    assert_eq!(kinds[6], ("h-replaced", FindingKind::Vanished));

    assert_eq!((report.files, report.matched), (8, 1));
    assert!(!report.is_clean());
    assert_eq!(last.files_done, 8);
    assert_eq!(last.files_total, 8);
    assert_eq!(last.bytes_total, 4 * BIG as u64 + 40);
    assert_eq!(last.bytes_done, report.bytes);
    assert!(
        calls > 8,
        "progress is told within big files too ({calls} calls)"
    );
}
