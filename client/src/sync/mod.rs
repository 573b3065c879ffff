//! Syncing a local folder and a server folder, one way, like `rsync -r --checksum` or
//! `rclone sync`: files the destination already holds with the same size and BLAKE3 digest
//! are skipped without sending a byte; the others are sent whole (resumably, as every
//! transfer); with [`SyncOptions::delete`], files only on the destination are removed.
//!
//! ```text
//!   local_tree::walk ─┐                       ┌─ DigestCache (local digests by path, size, mtime)
//!                     ├─ plan::compare ─ same size? ─┤
//!   Client::list ─────┘                       └─ Client::stored_digests (the server's, pipelined)
//!                         │
//!                     SyncPlan ── Client::run_sync ─┬─ small files: put_files / get_files, pipelined
//!                                                   ├─ large files: put_file / get_file, one at a time
//!                                                   └─ remove, per file
//! ```
//!
//! Planning sends and deletes nothing, so a dry run is a plan that is not run. A local
//! digest is read from the disk at most once per (path, size, modification time): the
//! [`DigestCache`] keeps it in a small file in the cache folder ([`cache_dir`],
//! [`cache_file_for`]), so a second sync of an unchanged tree reads no file content.
//!
//! ```no_run
//! use std::path::Path;
//! use ferry_client::sync::{DigestCache, SyncDirection, SyncOptions, cache_dir, cache_file_for};
//! # fn main() -> Result<(), ferry_client::ClientError> {
//! # let mut client = ferry_client::Client::connect("127.0.0.1:7070", Default::default())?;
//! let local = Path::new("photos");
//! let mut cache = match cache_dir() {
//!     Some(dir) => DigestCache::load(cache_file_for(&dir, local)),
//!     None => DigestCache::in_memory(),
//! };
//! let options = SyncOptions { delete: true, ..SyncOptions::default() };
//! let plan = client.plan_sync(SyncDirection::Upload, local, "photos", &options, &mut cache)?;
//! let report = client.run_sync(&plan, &mut cache, &mut ());
//! let _ = cache.save();
//! println!("{} sent, {} skipped, {} deleted", report.sent, report.skipped, report.deleted);
//! # Ok(())
//! # }
//! ```

mod batch;
mod digest_cache;
mod filter;
mod local_tree;
mod plan;
mod run;

pub use digest_cache::{DigestCache, FileStamp, cache_dir, cache_file_for, hash_file};
pub use filter::{Filter, FilterError, RuleKind};
pub use local_tree::{LocalFile, walk};
pub use plan::{SendReason, SyncAction, SyncDirection, SyncItem};
pub use run::{SyncObserver, SyncOptions, SyncPlan, SyncReport};
