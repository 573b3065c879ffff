//! The local digest cache: each local file's BLAKE3 digest, remembered with the size and
//! modification time it had when it was hashed, so that a sync of an unchanged tree reads no
//! file's content. One small JSON file per synced local folder, in the user's cache folder
//! ([`cache_dir`]); a file whose size or modification time moved is hashed again.
//!
//! Like rsync's quick check, this trusts size and modification time: a file rewritten with the
//! same size and its old modification time put back is taken as unchanged.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_protocol::{Digest, FileHasher};
use serde::{Deserialize, Serialize};

/// Folder of the per-folder cache files, inside [`cache_dir`].
const SUBFOLDER: &str = "sync-digests";

/// Read buffer for hashing a local file.
const READ_BUF_LEN: usize = 256 * 1024;

/// Version of the file's layout; a file of another version is ignored (and rewritten).
const VERSION: u32 = 1;

/// The user's ferry cache folder: `FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ferry`, else
/// `~/.cache/ferry` (`%LOCALAPPDATA%\ferry` on Windows). `None` when none of those is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("FERRY_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("ferry")))
        .or_else(|| var("HOME").map(|p| p.join(".cache/ferry")))
        .or_else(|| var("LOCALAPPDATA").map(|p| p.join("ferry")))
}

/// Where the digests of the files under the local folder `root` are cached inside `cache`:
/// `sync-digests/<BLAKE3 of the folder's absolute path, 32 hex digits>.json`.
pub fn cache_file_for(cache: &Path, root: &Path) -> PathBuf {
    let absolute = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let hash = blake3::hash(absolute.as_os_str().as_encoded_bytes());
    let hex = hash.to_hex();
    cache.join(SUBFOLDER).join(format!("{}.json", &hex[..32]))
}

/// What identifies a version of a local file: its size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u128,
}

impl FileStamp {
    /// The stamp of a file from its metadata; `None` when its modification time is unknown
    /// or before 1970 (such a file is hashed every time).
    pub fn of(metadata: &fs::Metadata) -> Option<FileStamp> {
        let modified = metadata.modified().ok()?;
        Some(FileStamp {
            size: metadata.len(),
            modified_ns: since_epoch(modified)?,
        })
    }
}

fn since_epoch(time: SystemTime) -> Option<u128> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_nanos())
}

/// One cached digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    stamp: FileStamp,
    digest: String,
}

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// By path relative to the synced folder.
    files: BTreeMap<String, Entry>,
}

/// The digests of one local folder's files, and how often they were found or computed.
#[derive(Debug, Default)]
pub struct DigestCache {
    /// Where it is saved; `None` keeps it in memory only.
    path: Option<PathBuf>,
    /// What the file held when loaded.
    loaded: BTreeMap<String, Entry>,
    /// What this run looked up or recorded: what is saved (files gone since are forgotten).
    seen: BTreeMap<String, Entry>,
    hits: u64,
    hashed: u64,
}

impl DigestCache {
    /// A cache kept in memory only: every file is hashed once per run.
    pub fn in_memory() -> DigestCache {
        DigestCache::default()
    }

    /// Loads the cache saved at `path`. A missing, unreadable or damaged file starts an
    /// empty cache: the cache only ever saves work, so losing it costs hashing, nothing else.
    pub fn load(path: PathBuf) -> DigestCache {
        let loaded = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|file| file.version == VERSION)
            .map(|file| file.files)
            .unwrap_or_default();
        DigestCache {
            path: Some(path),
            loaded,
            ..DigestCache::default()
        }
    }

    /// Where the cache is saved, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Digests found in the cache so far (files not read).
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Files hashed so far (read from the disk).
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// The digest of the file at `path` (`relative` in the folder) whose metadata is
    /// `stamp`: from the cache if it was hashed at this very stamp, else by reading it.
    pub fn digest(
        &mut self,
        relative: &str,
        path: &Path,
        stamp: Option<FileStamp>,
    ) -> io::Result<Digest> {
        let cached = self.lookup(relative, stamp);
        if let Some(digest) = cached {
            self.hits += 1;
            return Ok(digest);
        }
        let digest = hash_file(path)?;
        self.hashed += 1;
        // Only if the file did not change while it was read.
        let after = fs::metadata(path).ok().and_then(|m| FileStamp::of(&m));
        if stamp.is_some() && after == stamp {
            self.record(relative, stamp, digest);
        }
        Ok(digest)
    }

    /// The cached digest of `relative` at `stamp`, if any.
    fn lookup(&mut self, relative: &str, stamp: Option<FileStamp>) -> Option<Digest> {
        let stamp = stamp?;
        let entry = self
            .seen
            .get(relative)
            .or_else(|| self.loaded.get(relative))
            .filter(|entry| entry.stamp == stamp)?
            .clone();
        let digest = Digest::from_hex(&entry.digest)?;
        self.seen.insert(relative.to_owned(), entry);
        Some(digest)
    }

    /// Remembers that `relative`, at `stamp`, has `digest` (known from an upload or a
    /// download that verified it). Without a stamp nothing is remembered.
    pub fn record(&mut self, relative: &str, stamp: Option<FileStamp>, digest: Digest) {
        if let Some(stamp) = stamp {
            self.seen.insert(
                relative.to_owned(),
                Entry {
                    stamp,
                    digest: digest.to_hex(),
                },
            );
        }
    }

    /// Keeps the cached digest of `relative` for the next run without looking at it (a file
    /// this run had no reason to hash, still there).
    pub fn keep(&mut self, relative: &str) {
        if let Some(entry) = self.loaded.get(relative)
            && !self.seen.contains_key(relative)
        {
            self.seen.insert(relative.to_owned(), entry.clone());
        }
    }

    /// Writes what this run saw to the cache file (atomically: a temporary file renamed into
    /// place). Does nothing for an in-memory cache.
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = CacheFile {
            version: VERSION,
            files: self.seen.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
        let temporary = path.with_extension("json.tmp");
        let mut out = File::create(&temporary)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        drop(out);
        fs::rename(&temporary, path)
    }
}

/// The BLAKE3 digest of a local file, read from its start.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; READ_BUF_LEN];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp_of(path: &Path) -> Option<FileStamp> {
        FileStamp::of(&fs::metadata(path).unwrap())
    }

    #[test]
    fn a_second_run_over_an_unchanged_file_takes_the_digest_from_the_saved_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"hello").unwrap();
        let cache_path = dir.path().join("cache/x.json");

        let mut first = DigestCache::load(cache_path.clone());
        let digest = first.digest("f", &file, stamp_of(&file)).unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        assert_eq!((first.hits(), first.hashed()), (0, 1));
        first.save().unwrap();

        let mut second = DigestCache::load(cache_path);
        assert_eq!(second.digest("f", &file, stamp_of(&file)).unwrap(), digest);
        assert_eq!((second.hits(), second.hashed()), (1, 0));
    }

    #[test]
    fn a_file_whose_size_or_time_moved_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"hello").unwrap();
        let mut cache = DigestCache::in_memory();
        cache.digest("f", &file, stamp_of(&file)).unwrap();
        fs::write(&file, b"hello, world").unwrap();
        let digest = cache.digest("f", &file, stamp_of(&file)).unwrap();
        assert_eq!(digest, Digest::of(b"hello, world"));
        assert_eq!(cache.hashed(), 2);
    }

    #[test]
    fn a_damaged_cache_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        fs::write(&path, b"{ not json").unwrap();
        let mut cache = DigestCache::load(path);
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        cache.digest("f", &file, stamp_of(&file)).unwrap();
        assert_eq!(cache.hashed(), 1);
        cache.save().unwrap();
    }

    #[test]
    fn files_not_seen_in_a_run_are_forgotten_and_kept_ones_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let stamp = Some(FileStamp {
            size: 1,
            modified_ns: 5,
        });
        let mut first = DigestCache::load(path.clone());
        first.record("kept", stamp, Digest::of(b"k"));
        first.record("gone", stamp, Digest::of(b"g"));
        first.save().unwrap();
        let mut second = DigestCache::load(path.clone());
        second.keep("kept");
        second.save().unwrap();
        let third = DigestCache::load(path);
        assert!(third.loaded.contains_key("kept"));
        assert!(!third.loaded.contains_key("gone"));
    }

    #[test]
    fn cache_files_differ_per_folder() {
        let cache = Path::new("/cache");
        assert_ne!(
            cache_file_for(cache, Path::new("/a")),
            cache_file_for(cache, Path::new("/b"))
        );
    }
}
