//! Scrubbing: re-reading every stored file, recomputing its BLAKE3 digest and comparing it
//! with the digest recorded when ferryd stored it, so that bit rot is found before a user
//! downloads the file (`ferryd scrub`).
//!
//! ```text
//!  open the store read-only ─► list("") to count ─► list("") again, a page at a time:
//!                                                    open_for_download(name) ─► size, recorded
//!                                                    read ─► rate limit ─► FileHasher ─► compare
//! ```
//!
//! Each file either matches or becomes a [`Finding`] ([`FindingKind`]): a mismatch, no digest
//! recorded for this version, unreadable, or vanished during the scrub (not a problem).
//! Memory is bounded (one read buffer, the hasher's small state, the findings).
//!
//! A scrub changes nothing, so it may run beside a live server on the same store: the folder
//! store is opened read-only (no staging repair or sweep, no folder made, no digest recorded,
//! see `Storage::open_read_only`), and the object store is only read (no janitor runs, no
//! record is written). What a digest record covers decides what a changed byte looks like:
//!
//! - **Folder store**: a record names the file's inode, size and modification time. A byte
//!   that rots in place keeps all three, so the record still applies and the scrub reports a
//!   mismatch. A file changed through the file system gets a new modification time: the record
//!   no longer applies and the scrub reports no digest for this version.
//! - **Object store**: a record names the object's ETag. Bytes that rot inside the object
//!   store keep their ETag (a mismatch); an object overwritten behind ferryd's back gets a new
//!   ETag (no digest for this version).

mod report;
mod walk;

use std::io;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;

pub use report::{Finding, FindingKind, Progress, ScrubReport};

use crate::config::ServerConfig;
use crate::store::Store;
use crate::store::error::StorageError;
use crate::store::folder::Storage;
use crate::store::s3::S3Store;

/// How to scrub.
#[derive(Debug, Clone, Default)]
pub struct ScrubOptions {
    /// Most bytes read per second, all files together; `None` reads as fast as the store
    /// answers. A limited scrub may read a quarter second's worth ahead after a pause.
    pub limit_rate: Option<NonZeroU64>,
}

/// Why a scrub could not run to its end (a file that cannot be read is a [`Finding`], not an
/// error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrubError {
    /// The storage root could not be opened.
    #[error(
        "cannot open the storage root {}: {source} (check --root, and that this user may read it)",
        path.display()
    )]
    Root {
        /// The root given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The object store could not be reached or refused the keys.
    #[error(
        "cannot open the object store {location}: {source} (check --store, --s3-endpoint and \
         the keys)"
    )]
    ObjectStore {
        /// The bucket, prefix and endpoint.
        location: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Listing the files failed: the scrub is incomplete.
    #[error("listing the stored files failed ({0}); the scrub is incomplete: run it again")]
    List(#[source] StorageError),
}

/// Scrubs the store `config` names (its folder root, or its object store when
/// [`ServerConfig::object_store`] is set), telling `progress` after every file and every read
/// (callers that print should throttle). Changes nothing in the store.
///
/// ```no_run
/// use ferry_server::{ScrubOptions, ServerConfig, scrub};
///
/// let report = scrub(&ServerConfig::new("./ferry-data"), &ScrubOptions::default(), |_| {})?;
/// for problem in report.problems() {
///     println!("{problem}");
/// }
/// println!("{report}");
/// # Ok::<(), ferry_server::ScrubError>(())
/// ```
///
/// # Errors
///
/// When the store cannot be opened or listed ([`ScrubError`]).
pub fn scrub(
    config: &ServerConfig,
    options: &ScrubOptions,
    progress: impl FnMut(&Progress),
) -> Result<ScrubReport, ScrubError> {
    let store = open_store(config)?;
    walk::Walk::new(store.as_ref(), options.limit_rate, progress)
        .run()
        .map_err(ScrubError::List)
}

/// Opens the store of `config` for reading only.
fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, ScrubError> {
    let Some(s3) = &config.object_store else {
        let storage = Storage::open_read_only(config).map_err(|source| ScrubError::Root {
            path: config.root.clone(),
            source,
        })?;
        return Ok(storage);
    };
    // `S3Store::open` only checks access; the janitor runs in `Server::start`, never here.
    let store = S3Store::open(config, s3).map_err(|source| ScrubError::ObjectStore {
        location: format!("s3://{}/{} at {}", s3.bucket, s3.prefix, s3.endpoint),
        source,
    })?;
    Ok(store)
}
