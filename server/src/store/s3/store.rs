//! The S3 backend: files are objects in a bucket (under a prefix), shared by every node that
//! names the same bucket and prefix.
//!
//! ```text
//!  PREFIX/<name>                       visible files: an object exists only once complete
//!  PREFIX/.ferry-uploads/<hash(name)>  the name's upload: holder + lease, multipart id, parts,
//!                                      hash state at the last part (see `record`)
//!  PREFIX/.ferry-digests/<hash(name)>  digest of the stored version (tied to its ETag)
//! ```
//!
//! - **Visible only when whole**: data goes into a multipart upload (or, for a file that fits
//!   in one part, stays in memory), which is completed only after the client's digest matched;
//!   a name the client did not ask to overwrite is completed with `If-None-Match: *`.
//! - **One upload per name, across nodes**: a node holds a name by writing its upload record
//!   with a condition on the version it read, and renews the hold while the upload runs. A
//!   second client is refused with `InProgress` while the hold is fresh; the same client file
//!   (same tag) reconnecting to any node takes the upload over, and the old holder learns it on
//!   its next conditional write. Within one node the folder backend's name locks also apply.
//! - **Resume on any node**: after each part the record gets the part's ETag and the BLAKE3
//!   state at its end, so any node resumes from the last part without reading data back.
//! - **Downloads** are one ranged GET pinned to the version's ETag, streamed with a bounded
//!   buffer. **Listings** page through the bucket a thousand keys at a time.
//!
//! Unlike the folder backend, a name keeps one interrupted upload at a time: another client's
//! upload of the same name (once the first one's hold lapsed) replaces it.

use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag, validate_name};

use super::record::{DIGESTS_DIR, DigestRecord, UPLOADS_DIR, UploadRecord, record_key};
use super::upload;
use super::{ObjectInfo, PutCondition, S3Client, S3Config, S3Error};
use crate::config::ServerConfig;
use crate::store::error::StorageError;
use crate::store::locks::UploadLocks;
use crate::store::{Entry, FileContent, Held, OpenedFile, Store, Upload};

/// Keys asked for per listing request.
const LIST_PAGE: u16 = 1000;

/// Longest object key S3 accepts, in bytes.
const MAX_KEY_LEN: usize = 1024;

/// Largest record read back (they are a few hundred bytes).
const RECORD_LIMIT: usize = 64 * 1024;

/// How long past the idle timeout a node's hold on a name lasts without renewal: a node that
/// died holding a name blocks other clients' uploads of it this long.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Files in an S3-compatible bucket. Shared by every connection of a node.
#[derive(Debug)]
pub(crate) struct S3Store {
    client: S3Client,
    config: S3Config,
    /// Names with an upload under way on this node.
    pub(crate) locks: UploadLocks,
    /// This node's name in upload records' `owner` field.
    node: String,
    uploads: AtomicU64,
    /// How long a hold on a name lasts without renewal.
    pub(crate) lease: Duration,
    /// Bytes per part of a multipart upload.
    pub(crate) part_size: u64,
    /// This store itself, for the uploads it hands out to hold on to.
    me: Weak<S3Store>,
}

/// Milliseconds since the Unix epoch by this node's clock (nodes' clocks are assumed to agree
/// within a few seconds, as NTP keeps them).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl S3Store {
    /// Connects to the bucket of `s3` and checks that the keys may use it.
    pub(crate) fn open(config: &ServerConfig, s3: &S3Config) -> io::Result<Arc<S3Store>> {
        let client = S3Client::new(s3).map_err(io::Error::other)?;
        client.check_access().map_err(io::Error::other)?;
        let node = format!(
            "{:016x}",
            RandomState::new().hash_one((std::process::id(), now_ms()))
        );
        Ok(Arc::new_cyclic(|me| S3Store {
            client,
            config: s3.clone(),
            locks: UploadLocks::default(),
            node,
            uploads: AtomicU64::new(0),
            lease: config.idle_timeout + LEASE_MARGIN,
            part_size: config.s3_part_size.max(upload::MIN_PART_SIZE),
            me: me.clone(),
        }))
    }

    /// This store as the shared handle uploads keep.
    pub(crate) fn arc(&self) -> Result<Arc<S3Store>, StorageError> {
        self.me.upgrade().ok_or(StorageError::ShuttingDown)
    }

    /// The client, for uploads.
    pub(crate) fn client(&self) -> &S3Client {
        &self.client
    }

    /// The full key of a name or record.
    pub(crate) fn key(&self, name: &str) -> String {
        self.config.key(name)
    }

    /// A new holder name for one upload of this node.
    pub(crate) fn new_owner(&self) -> String {
        let n = self.uploads.fetch_add(1, Ordering::Relaxed);
        format!("{}/{n}", self.node)
    }

    /// The name's upload record and its ETag, if any; an unreadable record counts as a
    /// released one with nothing to resume (its ETag still guards its replacement).
    pub(crate) fn read_upload_record(
        &self,
        name: &str,
    ) -> Result<Option<(String, Option<UploadRecord>)>, StorageError> {
        let key = self.key(&record_key(UPLOADS_DIR, name));
        match self.client.get_small(&key, RECORD_LIMIT) {
            Ok(Some((object, bytes))) => match UploadRecord::decode(&bytes) {
                Ok(record) if record.name == name => Ok(Some((object.etag, Some(record)))),
                Ok(_) => Ok(Some((object.etag, None))),
                Err(error) => {
                    tracing::warn!(name, "ignoring an unreadable upload record: {error}");
                    Ok(Some((object.etag, None)))
                }
            },
            Ok(None) => Ok(None),
            Err(error) => Err(s3_error("reading an upload record")(error)),
        }
    }

    /// Writes the name's upload record if it still is the version `etag` (absent: `None`);
    /// returns the new ETag, or `None` when another writer got there first.
    pub(crate) fn write_upload_record(
        &self,
        record: &UploadRecord,
        etag: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        let key = self.key(&record_key(UPLOADS_DIR, &record.name));
        let condition = etag.map_or(PutCondition::IfAbsent, |etag| {
            PutCondition::IfMatch(etag.to_owned())
        });
        match self.client.put(&key, &record.encode(), condition) {
            Ok(etag) => Ok(Some(etag)),
            // S3 answers a failed If-Match on a deleted record with NotFound, SeaweedFS with
            // PreconditionFailed: either way another writer got there first.
            Err(S3Error::PreconditionFailed | S3Error::NotFound) => Ok(None),
            Err(error) => Err(s3_error("writing an upload record")(error)),
        }
    }

    /// Deletes the name's upload record if it still is the version `etag` (another node may
    /// have taken the name over meanwhile; its record stays).
    pub(crate) fn delete_upload_record(&self, name: &str, etag: &str) {
        let key = self.key(&record_key(UPLOADS_DIR, name));
        match self.client.head(&key) {
            Ok(Some(object)) if object.etag == etag => {}
            _ => return,
        }
        if let Err(error) = self.client.delete(&key) {
            tracing::warn!(name, "could not delete an upload record: {error}");
        }
    }

    /// Records the digest of the version `etag` of `name` (which may not exist yet: an upload
    /// records its digest just before completing, so no reader ever sees the file without it,
    /// and a failure here fails the commit, so that every visible file's digest is known: an
    /// identical re-upload is then confirmed without sending its bytes).
    pub(crate) fn write_digest(
        &self,
        name: &str,
        etag: &str,
        digest: &Digest,
    ) -> Result<(), S3Error> {
        let key = self.key(&record_key(DIGESTS_DIR, name));
        record_digest(&self.client, &key, name, etag, digest)
    }

    /// The digest recorded for the version `etag` of `name`, if any.
    pub(crate) fn read_digest(&self, name: &str, etag: &str) -> Option<Digest> {
        let key = self.key(&record_key(DIGESTS_DIR, name));
        read_digests(&self.client, &key, name)?.digest_of(etag)
    }

    /// The stored object of `name`, if any.
    pub(crate) fn head(&self, name: &str) -> Result<Option<ObjectInfo>, StorageError> {
        check_name(&self.config, name)?;
        self.client
            .head(&self.key(name))
            .map_err(s3_error("looking up a file"))
    }

    /// Refuses `name` where the folder store would: when a folder in it is a file, or it is a
    /// folder (other files' names start with `name/`). A bucket would take both, but then no
    /// client could download the tree to a disk.
    pub(crate) fn check_tree(&self, name: &str) -> Result<(), StorageError> {
        let bad = |reason| StorageError::BadName {
            name: name.to_owned(),
            reason,
        };
        for (end, _) in name.match_indices('/') {
            if self.head(&name[..end])?.is_some() {
                return Err(bad("a folder in the name is a file"));
            }
        }
        let inside = self
            .client
            .list_page(&self.key(&format!("{name}/")), None, 1)
            .map_err(s3_error("looking up a folder"))?;
        if !inside.objects.is_empty() {
            return Err(bad("the name is a folder"));
        }
        Ok(())
    }

    /// Whether a record's holder still holds it.
    pub(crate) fn is_held(&self, record: &UploadRecord) -> bool {
        let lease = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        record.owner.is_some() && now_ms().saturating_sub(record.renewed_ms) < lease
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.config.bucket, self.config.prefix, self.config.endpoint
        )
    }

    fn open_upload(
        &self,
        _config: &ServerConfig, // the part size and lease were taken at open
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        check_name(&self.config, &request.name)?;
        upload::begin(self, request)
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        let Some(object) = self.head(name)? else {
            return Err(StorageError::NotFound(name.to_owned()));
        };
        Ok(OpenedFile {
            size: object.size,
            digest: self.read_digest(name, &object.etag),
            content: Box::new(S3File {
                client: self.client.clone(),
                digest_key: self.key(&record_key(DIGESTS_DIR, name)),
                name: name.to_owned(),
                object,
            }),
        })
    }

    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        let Some(object) = self.head(name)? else {
            return Err(StorageError::NotFound(name.to_owned()));
        };
        self.client
            .delete(&object.key)
            .map_err(s3_error("removing a file"))?;
        let _ = self
            .client
            .delete(&self.key(&record_key(DIGESTS_DIR, name)));
        Ok(object.size)
    }

    /// Copy, then delete: see [`super::rename`] for what readers see meanwhile.
    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError> {
        check_name(&self.config, from)?;
        check_name(&self.config, to)?;
        super::rename::rename(self, from, to, overwrite)
    }

    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        let object = self.head(name)?;
        let digest = object
            .as_ref()
            .and_then(|object| self.read_digest(name, &object.etag));
        let partial = self
            .read_upload_record(name)?
            .and_then(|(_, record)| record)
            .filter(|record| record.tag == *tag && !record.parts.is_empty())
            .map(|record| record.offset());
        Ok(Held {
            stored_size: object.map(|object| object.size),
            stored_digest: digest,
            partial_offset: partial,
        })
    }

    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        let base = self.config.key_prefix();
        let full = format!("{base}{prefix}");
        let mut continuation: Option<String> = None;
        loop {
            let listed = self
                .client
                .list_page(&full, continuation.as_deref(), LIST_PAGE)
                .map_err(s3_error("listing the bucket"))?;
            let entries: Vec<Entry> = listed
                .objects
                .into_iter()
                .filter_map(|object| {
                    let name = object.key.strip_prefix(&base)?;
                    (!ferry_protocol::is_reserved(name) && validate_name(name).is_ok()).then(|| {
                        Entry {
                            name: name.to_owned(),
                            size: object.size,
                            modified_ms: object.modified_ms,
                        }
                    })
                })
                .collect();
            if !entries.is_empty() && page(&entries).is_break() {
                return Ok(());
            }
            match listed.next {
                Some(next) => continuation = Some(next),
                None => return Ok(()),
            }
        }
    }

    fn sweep_staging(&self, max_age: Duration) {
        let max_age = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let dir = self.key(&format!("{UPLOADS_DIR}/"));
        let mut continuation: Option<String> = None;
        loop {
            let Ok(listed) = self
                .client
                .list_page(&dir, continuation.as_deref(), LIST_PAGE)
            else {
                return;
            };
            for object in listed.objects {
                let Ok(Some((stored, bytes))) = self.client.get_small(&object.key, RECORD_LIMIT)
                else {
                    continue;
                };
                let record = UploadRecord::decode(&bytes).ok();
                let renewed = record.as_ref().map_or(object.modified_ms, |r| r.renewed_ms);
                // A record with nothing to resume (a discarded or finished-early upload) only
                // waits out its lease; one with parts, the partial uploads' age limit.
                let lease = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
                let keep_for = match &record {
                    Some(record) if record.parts.is_empty() => lease.min(max_age),
                    _ => max_age,
                };
                if record.as_ref().is_some_and(|r| self.is_held(r))
                    || now_ms().saturating_sub(renewed) < keep_for
                {
                    continue;
                }
                // Claim the stale record before dropping its data, so a resume starting now
                // either wins the record first (and the sweep leaves it) or finds it gone.
                let Some(record) = record else {
                    let _ = self.client.delete(&object.key);
                    continue;
                };
                let released = UploadRecord {
                    owner: None,
                    upload_id: None,
                    parts: Vec::new(),
                    checkpoint: HashCheckpoint::start(),
                    renewed_ms: now_ms(),
                    ..record.clone()
                };
                if let Ok(Some(etag)) = self.write_upload_record(&released, Some(&stored.etag)) {
                    if let Some(id) = &record.upload_id {
                        let _ = self.client.abort_multipart(&self.key(&record.name), id);
                    }
                    self.delete_upload_record(&record.name, &etag);
                    tracing::info!(name = record.name, "removed a stale partial upload");
                }
            }
            match listed.next {
                Some(next) => continuation = Some(next),
                None => break,
            }
        }
        self.sweep_orphans(max_age);
    }

    /// Each commit is a few requests to the object store: several at once overlap their
    /// round trips.
    fn commits_in_parallel(&self) -> bool {
        true
    }
}

impl S3Store {
    /// Aborts multipart uploads older than `max_age` that no upload record refers to (a node
    /// that died between creating one and recording it).
    fn sweep_orphans(&self, max_age: u64) {
        let base = self.config.key_prefix();
        let Ok(pending) = self.client.list_multipart_uploads(&base) else {
            return;
        };
        for upload in pending {
            let Some(name) = upload.key.strip_prefix(&base) else {
                continue;
            };
            if now_ms().saturating_sub(upload.initiated_ms) < max_age {
                continue;
            }
            let recorded = matches!(
                self.read_upload_record(name),
                Ok(Some((_, Some(record)))) if record.upload_id.as_ref() == Some(&upload.upload_id)
            );
            if !recorded {
                let _ = self.client.abort_multipart(&upload.key, &upload.upload_id);
                tracing::info!(name, "aborted an orphaned multipart upload");
            }
        }
    }
}

/// Refuses a name the protocol would refuse (the protocol machine already checked it; the
/// store checks again so that no key outside the namespace is ever formed), and one too long
/// for an object key once the prefix is added.
fn check_name(config: &S3Config, name: &str) -> Result<(), StorageError> {
    let bad = |reason| StorageError::BadName {
        name: name.to_owned(),
        reason,
    };
    validate_name(name).map_err(|_| bad("not an acceptable relative path"))?;
    if config.key(name).len() > MAX_KEY_LEN {
        return Err(bad(
            "too long for the object store (1024 bytes with its prefix)",
        ));
    }
    Ok(())
}

/// Wraps an S3 error with what was being done, logging its details (which the client does not
/// see).
pub(crate) fn s3_error(during: &'static str) -> impl FnOnce(S3Error) -> StorageError {
    move |source| {
        tracing::warn!("object store error while {during}: {source}");
        StorageError::ObjectStore {
            during,
            source: Box::new(source),
        }
    }
}

/// One version of a stored object, opened for download.
struct S3File {
    client: S3Client,
    digest_key: String,
    name: String,
    object: ObjectInfo,
}

impl FileContent for S3File {
    fn read_from(&mut self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        if offset >= self.object.size {
            return Ok(Box::new(io::empty()));
        }
        // Pinned to the ETag: a replacement of the name ends this download with an error
        // instead of mixing two versions (the client then resumes and checks the digest).
        let reader = self
            .client
            .get_range(&self.object.key, offset, Some(&self.object.etag))
            .map_err(io::Error::other)?;
        Ok(reader)
    }

    fn remember_digest(&self, digest: &Digest) {
        if let Err(error) = record_digest(
            &self.client,
            &self.digest_key,
            &self.name,
            &self.object.etag,
            digest,
        ) {
            tracing::warn!(
                name = self.name,
                "could not record a computed digest: {error}"
            );
        }
    }
}

/// The digest record of `name` at `key`, if there is a readable one.
fn read_digests(client: &S3Client, key: &str, name: &str) -> Option<DigestRecord> {
    let (_, bytes) = client.get_small(key, RECORD_LIMIT).ok()??;
    DigestRecord::decode(&bytes)
        .ok()
        .filter(|record| record.name == name)
}

/// Adds the version `etag` to the digest record of `name` at `key`. (Uploads of a name take
/// turns, so only a download remembering a digest can race with them; the loser's entry is
/// computed again by a later download.)
fn record_digest(
    client: &S3Client,
    key: &str,
    name: &str,
    etag: &str,
    digest: &Digest,
) -> Result<(), S3Error> {
    let mut record = read_digests(client, key, name).unwrap_or_else(|| DigestRecord {
        name: name.to_owned(),
        versions: Vec::new(),
    });
    record.add(etag, *digest);
    client
        .put(key, &record.encode(), PutCondition::Always)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_testkit::SeaweedFs;

    fn open(weed: &SeaweedFs, test: &str) -> Arc<S3Store> {
        let dir = std::env::temp_dir();
        S3Store::open(
            &ServerConfig::new(dir),
            &S3Config::seaweedfs(weed, &SeaweedFs::unique_prefix(test)),
        )
        .unwrap()
    }

    fn request(name: &str, tag: u8) -> PutRequest {
        PutRequest {
            name: name.into(),
            size: 10,
            overwrite: false,
            resume: true,
            tag: SourceTag([tag; 16]),
            eager: false,
            streamed: false,
        }
    }

    /// A record as a node that died holding `name` would have left it, with a multipart
    /// upload; `age` is how long ago it last renewed its hold.
    fn dead_holder(store: &S3Store, name: &str, age: Duration) -> String {
        let upload_id = store.client.create_multipart(&store.key(name)).unwrap();
        let renewed_ms = now_ms() - u64::try_from(age.as_millis()).unwrap();
        let record = UploadRecord {
            name: name.into(),
            tag: SourceTag([1; 16]),
            size: 10,
            owner: Some("dead-node/1".into()),
            renewed_ms,
            upload_id: Some(upload_id.clone()),
            parts: Vec::new(),
            checkpoint: HashCheckpoint::start(),
        };
        store.write_upload_record(&record, None).unwrap().unwrap();
        upload_id
    }

    fn pending_ids(store: &S3Store) -> Vec<String> {
        let uploads = store
            .client
            .list_multipart_uploads(&store.config.key_prefix())
            .unwrap();
        uploads.into_iter().map(|u| u.upload_id).collect()
    }

    #[test]
    fn the_etags_predicted_before_completion_are_the_ones_seaweedfs_gives() {
        let Some(weed) = SeaweedFs::for_tests() else {
            return;
        };
        let store = open(weed, "etags");
        let client = &store.client;
        let body = vec![7u8; 1000];
        let put = client
            .put(&store.key("one"), &body, PutCondition::Always)
            .unwrap();
        assert_eq!(put, super::super::record::single_etag(&body));
        let key = store.key("parts");
        let id = client.create_multipart(&key).unwrap();
        let parts: Vec<(u16, String)> = [(1u16, 5 << 20), (2, 1)]
            .into_iter()
            .map(|(n, len)| {
                (
                    n,
                    client
                        .upload_part(&key, &id, n, &vec![n as u8; len])
                        .unwrap(),
                )
            })
            .collect();
        let expected =
            super::super::record::multipart_etag(parts.iter().map(|(_, e)| e.as_str())).unwrap();
        let completed = client
            .complete_multipart(&key, &id, &parts, PutCondition::Always)
            .unwrap();
        assert_eq!(completed, expected);
    }

    #[test]
    fn listings_page_through_the_bucket_and_hide_the_records() {
        let Some(weed) = SeaweedFs::for_tests() else {
            return;
        };
        let store = open(weed, "paging");
        let names: Vec<String> = (0..1_003).map(|i| format!("f/{i:05}")).collect();
        std::thread::scope(|scope| {
            for chunk in names.chunks(251) {
                let store = &store;
                scope.spawn(move || {
                    for name in chunk {
                        let body = name.as_bytes();
                        store
                            .client
                            .put(&store.key(name), body, PutCondition::Always)
                            .unwrap();
                    }
                });
            }
        });
        dead_holder(&store, "f/held", Duration::ZERO);
        let mut pages = 0;
        let mut listed = Vec::new();
        store
            .list("", &mut |page| {
                pages += 1;
                listed.extend(page.iter().map(|entry| entry.name.clone()));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(listed, names, "every file once, in order, no records");
        assert!(pages >= 2, "{pages} pages");
        // A listing stopped by its reader stops asking.
        let mut seen = 0;
        store
            .list("f/", &mut |page| {
                seen += page.len();
                ControlFlow::Break(())
            })
            .unwrap();
        assert!(seen <= usize::from(LIST_PAGE));
    }

    #[test]
    fn a_dead_nodes_hold_blocks_others_until_its_lease_lapses() {
        let Some(weed) = SeaweedFs::for_tests() else {
            return;
        };
        let store = open(weed, "lease");
        let config = ServerConfig::new(std::env::temp_dir());
        dead_holder(&store, "fresh", Duration::from_secs(1));
        let refused = store.begin_upload(&config, &request("fresh", 2));
        assert!(
            matches!(refused, Err(StorageError::InProgress)),
            "{refused:?}"
        );

        let old_id = dead_holder(&store, "lapsed", store.lease + Duration::from_secs(1));
        let (upload, checkpoint) = store.begin_upload(&config, &request("lapsed", 2)).unwrap();
        assert_eq!(
            checkpoint.offset(),
            0,
            "another client's partial is not resumed"
        );
        assert!(
            !pending_ids(&store).contains(&old_id),
            "the lapsed holder's multipart upload was aborted"
        );
        drop(upload);
    }

    #[test]
    fn the_sweep_removes_stale_partials_and_orphans_but_spares_live_ones() {
        let Some(weed) = SeaweedFs::for_tests() else {
            return;
        };
        let store = open(weed, "sweep");
        let stale = dead_holder(&store, "stale", Duration::from_secs(3600));
        let live = dead_holder(&store, "live", Duration::ZERO);
        let orphan = store.client.create_multipart(&store.key("orphan")).unwrap();
        // A discarded upload's record (nothing to resume), past its lease: removed even by a
        // sweep that keeps partial uploads for a day.
        let empty = UploadRecord {
            name: "discarded".into(),
            tag: SourceTag([2; 16]),
            size: 10,
            owner: None,
            renewed_ms: now_ms() - u64::try_from((store.lease * 2).as_millis()).unwrap(),
            upload_id: None,
            parts: Vec::new(),
            checkpoint: HashCheckpoint::start(),
        };
        store.write_upload_record(&empty, None).unwrap().unwrap();
        store.sweep_staging(Duration::from_secs(24 * 3600));
        assert!(store.read_upload_record("discarded").unwrap().is_none());
        let left = pending_ids(&store);
        assert!(left.contains(&live), "a held upload is spared");
        assert!(
            left.contains(&orphan),
            "an orphan younger than the age limit stays"
        );
        store.sweep_staging(Duration::ZERO);
        let left = pending_ids(&store);
        assert!(left.contains(&live), "a held upload is spared");
        assert!(!left.contains(&stale), "a stale partial is aborted");
        assert!(
            !left.contains(&orphan),
            "an unrecorded multipart upload is aborted"
        );
        assert!(store.read_upload_record("stale").unwrap().is_none());
        assert!(store.read_upload_record("live").unwrap().is_some());
    }
}
