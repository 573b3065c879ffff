//! Uploads against a real SeaweedFS whose multipart upload disappears under them, and the
//! part size rule.

use ferry_protocol::{FileHasher, SourceTag};

use super::*;
use crate::config::ServerConfig;
use crate::store::Store;
use crate::store::s3::S3Config;
use ferry_testkit::SeaweedFs;

/// An upload of `len` bytes with 5 MiB parts, fed until `stop` bytes; its multipart upload
/// is aborted behind its back once the first part is recorded.
struct Doomed {
    store: Arc<S3Store>,
    config: ServerConfig,
    request: PutRequest,
    body: Vec<u8>,
    hasher: FileHasher,
}

impl Doomed {
    fn start(weed: &SeaweedFs, test: &str, len: u32) -> (Doomed, Upload) {
        let mut config = ServerConfig::new(std::env::temp_dir());
        config.s3_part_size = MIN_PART_SIZE;
        let store = S3Store::open(
            &config,
            &S3Config::seaweedfs(weed, &SeaweedFs::unique_prefix(test)),
        )
        .unwrap();
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let request = PutRequest {
            name: "gone".into(),
            size: body.len() as u64,
            overwrite: false,
            resume: true,
            tag: SourceTag([4; 16]),
            eager: false,
            streamed: false,
        };
        let (upload, _) = store.begin_upload(&config, &request).unwrap();
        let doomed = Doomed {
            store,
            config,
            request,
            body,
            hasher: FileHasher::new(),
        };
        (doomed, upload)
    }

    /// Feeds bytes `from..to`; the first error ends it.
    fn feed(&mut self, upload: &mut Upload, from: usize, to: usize) -> Result<(), StorageError> {
        for chunk in self.body[from..to].chunks(256 * 1024) {
            upload.write(chunk)?;
            self.hasher.update(chunk);
            upload.note_progress(self.hasher.checkpoint());
            if upload.wants_checkpoint(0) {
                upload.start_checkpoint()?;
            }
        }
        Ok(())
    }

    fn record(&self) -> UploadRecord {
        self.store
            .read_upload_record("gone")
            .unwrap()
            .unwrap()
            .1
            .unwrap()
    }

    /// Waits for the first part to be recorded (parts are recorded as data keeps coming:
    /// empty writes stand for it), then aborts the multipart upload.
    fn abort_after_first_part(&self, upload: &mut Upload) {
        let started = std::time::Instant::now();
        while self.record().parts.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no part recorded"
            );
            std::thread::sleep(Duration::from_millis(10));
            upload.write(&[]).unwrap();
        }
        let id = self.record().upload_id.unwrap();
        let key = self.store.key("gone");
        self.store.client().abort_multipart(&key, &id).unwrap();
    }

    /// Nothing visible, nothing to resume, and a new attempt starts over.
    fn assert_starts_over(&self) {
        assert!(
            self.store.head("gone").unwrap().is_none(),
            "nothing visible"
        );
        let left = self.record();
        assert!(left.parts.is_empty() && left.owner.is_none(), "{left:?}");
        let (_, checkpoint) = self
            .store
            .begin_upload(&self.config, &self.request)
            .unwrap();
        assert_eq!(checkpoint.offset(), 0, "the retry starts over");
    }
}

#[test]
fn a_multipart_upload_gone_at_commit_fails_it_and_the_retry_starts_over() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let (mut doomed, mut upload) = Doomed::start(weed, "gone-at-commit", 7 << 20);
    doomed.feed(&mut upload, 0, 7 << 20).unwrap();
    doomed.abort_after_first_part(&mut upload);
    let failed = upload.commit(&doomed.hasher.finalize());
    assert!(failed.is_err(), "{failed:?}");
    doomed.assert_starts_over();
}

#[test]
fn a_multipart_upload_gone_mid_upload_ends_it_and_the_retry_starts_over() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let (mut doomed, mut upload) = Doomed::start(weed, "gone-midway", 16 << 20);
    doomed.feed(&mut upload, 0, 6 << 20).unwrap();
    doomed.abort_after_first_part(&mut upload);
    // The next part fails: the failure surfaces at a later write if that part's upload
    // ended by then, else at the commit, which waits for every part.
    match doomed.feed(&mut upload, 6 << 20, 16 << 20) {
        Err(_) => assert_eq!(upload.suspend(), Left::Removed, "nothing to resume"),
        Ok(()) => {
            let failed = upload.commit(&doomed.hasher.finalize());
            assert!(failed.is_err(), "{failed:?}");
        }
    }
    doomed.assert_starts_over();
}

#[test]
fn parts_are_whole_hash_units_and_never_more_than_s3_allows() {
    assert_eq!(part_size(8 << 20, 1), 8 << 20);
    assert_eq!(part_size(1, 1), MIN_PART_SIZE);
    let huge = 5u64 << 40; // 5 TiB, S3's largest object
    let size = part_size(8 << 20, huge);
    assert_eq!(size % HASH_UNIT_LEN, 0);
    assert!(huge.div_ceil(size) < MAX_PARTS);
}

#[test]
fn a_streams_parts_start_small_and_double_every_thousand_to_hold_a_terabyte() {
    assert_eq!(streamed_part_size(8 << 20, 1), 8 << 20);
    assert_eq!(streamed_part_size(8 << 20, 1000), 8 << 20);
    assert_eq!(streamed_part_size(8 << 20, 1001), 16 << 20);
    assert_eq!(streamed_part_size(1, 1), MIN_PART_SIZE);
    let holds: u64 = (1..MAX_PARTS as usize)
        .map(|n| streamed_part_size(MIN_PART_SIZE, n))
        .sum();
    assert!(holds > crate::config::DEFAULT_MAX_FILE_SIZE, "{holds}");
    assert!(
        (1..MAX_PARTS as usize)
            .all(|n| streamed_part_size(MIN_PART_SIZE, n).is_multiple_of(HASH_UNIT_LEN))
    );
}
