//! A store that times every call to the store it wraps and counts the failures, whatever the
//! backend (folder, S3, memory). The server wraps its store in one at start, so each backend
//! stays free of metrics.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::store::error::StorageError;
use crate::store::locks::Waker;
use crate::store::{Entry, Held, Left, OpenedFile, OwedSync, StagedUpload, Store, Upload};

/// `inner`, with each call's duration and failure counted in `metrics`.
#[derive(Debug)]
pub(crate) struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> TimedStore {
        TimedStore { inner, metrics }
    }
}

/// Runs `call`, counting its duration and whether it failed under `name`.
fn timed<T>(
    metrics: &Metrics,
    name: &'static str,
    call: impl FnOnce() -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let start = Instant::now();
    let result = call();
    metrics.handle_store_call(name, start.elapsed(), result.is_err());
    result
}

impl Store for TimedStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn open_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        let (upload, checkpoint) = timed(&self.metrics, "open_upload", || {
            self.inner.open_upload(config, request)
        })?;
        let Upload {
            name,
            start_offset,
            received,
            started,
            resumable,
            staged,
            stream_limit,
        } = upload;
        let staged = Box::new(TimedUpload {
            inner: staged,
            held: StagingHeld {
                metrics: Arc::clone(&self.metrics),
                bytes: 0,
            },
        });
        let upload = Upload {
            name,
            start_offset,
            received,
            started,
            resumable,
            staged,
            stream_limit,
        };
        Ok((upload, checkpoint))
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        timed(&self.metrics, "open_for_download", || {
            self.inner.open_for_download(name)
        })
    }

    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        timed(&self.metrics, "remove", || self.inner.remove(name))
    }

    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError> {
        timed(&self.metrics, "rename", || {
            self.inner.rename(from, to, overwrite)
        })
    }

    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        timed(&self.metrics, "query", || self.inner.query(name, tag))
    }

    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        timed(&self.metrics, "list", || self.inner.list(prefix, page))
    }

    fn sweep_staging(&self, max_age: Duration) {
        let start = Instant::now();
        self.inner.sweep_staging(max_age);
        self.metrics
            .handle_store_call("sweep_staging", start.elapsed(), false);
    }

    fn commits_in_parallel(&self) -> bool {
        self.inner.commits_in_parallel()
    }
}

/// An upload's staged data, with its writes, checkpoints and commit timed, and the bytes it
/// wrote counted as held in staging until it ends.
#[derive(Debug)]
struct TimedUpload {
    inner: Box<dyn StagedUpload>,
    held: StagingHeld,
}

/// Bytes an upload under way wrote to staging; they stop counting when it ends, however it
/// ends (dropped with its upload).
#[derive(Debug)]
struct StagingHeld {
    metrics: Arc<Metrics>,
    bytes: u64,
}

impl Drop for StagingHeld {
    fn drop(&mut self) {
        self.metrics.handle_unstaged(self.bytes);
    }
}

impl TimedUpload {
    /// Ends the upload with `end` (suspend or discard), timed under `name`.
    fn end(self, name: &'static str, end: fn(Box<dyn StagedUpload>) -> Left) -> Left {
        let TimedUpload { inner, held } = self;
        let start = Instant::now();
        let left = end(inner);
        held.metrics.handle_store_call(name, start.elapsed(), false);
        left
    }
}

impl StagedUpload for TimedUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        timed(&self.held.metrics, "upload_write", || {
            self.inner.write(data)
        })?;
        self.held.bytes += data.len() as u64;
        self.held.metrics.handle_staged(data.len() as u64);
        Ok(())
    }

    fn note_progress(&mut self, checkpoint: HashCheckpoint) {
        self.inner.note_progress(checkpoint);
    }

    fn wants_checkpoint(&self, interval: u64) -> bool {
        self.inner.wants_checkpoint(interval)
    }

    fn start_checkpoint(&mut self) -> Result<(), StorageError> {
        timed(&self.held.metrics, "checkpoint", || {
            self.inner.start_checkpoint()
        })
    }

    fn is_superseded(&self) -> bool {
        self.inner.is_superseded()
    }

    fn when_superseded(&self, wake: Waker) {
        self.inner.when_superseded(wake);
    }

    fn suspend(self: Box<Self>) -> Left {
        (*self).end("upload_suspend", StagedUpload::suspend)
    }

    fn discard(self: Box<Self>) -> Left {
        (*self).end("upload_discard", StagedUpload::discard)
    }

    fn commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        timed(&self.held.metrics, "commit", || self.inner.commit(digest))
    }

    fn commit_owing_sync(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<Box<dyn OwedSync>>, StorageError> {
        timed(&self.held.metrics, "commit", || {
            self.inner.commit_owing_sync(digest)
        })
    }
}
