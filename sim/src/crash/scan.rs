//! The storage root read directly, as a user of the machine would see it: every visible file
//! (everything outside ferryd's own `.ferry*` folders), its inode and link count, and which
//! version sent to its name it holds, byte for byte.
//!
//! Files are hashed with BLAKE3 and compared with the digests of the versions sent to their
//! name that have their size. A file already matched is not read again while its identity
//! (device, inode, size, modification and change times) stays the same: any write changes the
//! times, and checks run while no server is writing. The final check reads every file anyway.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ferry_protocol::{Digest, FileHasher};

use super::ledger::UploadRecord;
use super::rules::{Match, show_one};
use crate::content::ContentId;

/// Files larger than this are not read whole to describe how they differ.
const DESCRIBE_MAX: u64 = 64 * 1024 * 1024;

/// Where a file is and what it is, as far as the file system says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified: i128,
    /// Change time, nanoseconds since the epoch.
    pub changed: i128,
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Self {
        let nanos = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            modified: nanos(meta.mtime(), meta.mtime_nsec()),
            changed: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One visible file.
#[derive(Clone, Debug)]
pub struct VisibleFile {
    /// Its identity.
    pub identity: Identity,
    /// Its hard-link count.
    pub links: u64,
    /// Not a regular file (a symbolic link, a socket, …).
    pub special: bool,
}

/// What the root holds.
#[derive(Clone, Debug, Default)]
pub struct RootState {
    /// Visible files by name (`/`-separated, relative to the root).
    pub visible: BTreeMap<String, VisibleFile>,
    /// Inodes of the files in ferryd's own folders, and their paths.
    pub private: HashMap<(u64, u64), PathBuf>,
}

/// Reads the root: its visible files and the inodes of ferryd's own files.
pub fn walk(root: &Path) -> io::Result<RootState> {
    let mut state = RootState::default();
    walk_into(root, "", &mut state)?;
    Ok(state)
}

fn walk_into(dir: &Path, prefix: &str, state: &mut RootState) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        let name = format!("{prefix}{file_name}");
        if file_name.starts_with(".ferry") {
            collect_private(&entry.path(), &meta, state)?;
        } else if meta.is_dir() {
            walk_into(&entry.path(), &format!("{name}/"), state)?;
        } else {
            state.visible.insert(
                name,
                VisibleFile {
                    identity: Identity::of(&meta),
                    links: meta.nlink(),
                    special: !meta.is_file(),
                },
            );
        }
    }
    Ok(())
}

fn collect_private(path: &Path, meta: &fs::Metadata, state: &mut RootState) -> io::Result<()> {
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            collect_private(&entry.path(), &entry.metadata()?, state)?;
        }
    } else {
        state
            .private
            .insert((meta.dev(), meta.ino()), path.to_path_buf());
    }
    Ok(())
}

/// Visible files that share their inode: with a file of ferryd's own folders (named), or
/// with something else (a link count above 1).
pub fn shared_inodes(state: &RootState) -> Vec<(String, String)> {
    state
        .visible
        .iter()
        .filter(|(_, file)| file.links > 1 && !file.special)
        .map(|(name, file)| {
            let key = (file.identity.dev, file.identity.ino);
            let detail = match state.private.get(&key) {
                Some(private) => format!(
                    "is the same inode as {} (link count {}): writing that staged file again \
                     would change this visible one",
                    private.display(),
                    file.links
                ),
                None => format!("has link count {}", file.links),
            };
            (name.clone(), detail)
        })
        .collect()
}

/// Matches visible files against the versions sent, remembering what it found.
#[derive(Debug, Default)]
pub struct Matcher {
    seen: HashMap<String, (Identity, Match)>,
    digests: HashMap<ContentId, Digest>,
}

impl Matcher {
    /// A matcher with nothing remembered.
    pub fn new() -> Self {
        Matcher::default()
    }

    /// What each visible file of `state` (under `root`) holds; with `reuse`, files whose
    /// identity did not change since the last call are not read again.
    pub fn match_all(
        &mut self,
        root: &Path,
        state: &RootState,
        records: &[UploadRecord],
        reuse: bool,
    ) -> io::Result<BTreeMap<String, Match>> {
        let mut by_name: HashMap<&str, BTreeSet<ContentId>> = HashMap::new();
        for record in records {
            by_name
                .entry(&record.name)
                .or_default()
                .insert(record.content);
        }
        let empty = BTreeSet::new();
        let mut out = BTreeMap::new();
        for (name, file) in &state.visible {
            if reuse
                && let Some((identity, found)) = self.seen.get(name)
                && *identity == file.identity
            {
                out.insert(name.clone(), found.clone());
                continue;
            }
            let sent = by_name.get(name.as_str()).unwrap_or(&empty);
            let found = if file.special {
                Match::Unknown("is not a regular file".into())
            } else {
                self.match_file(&root.join(name), file.identity.size, sent, records)?
            };
            self.seen
                .insert(name.clone(), (file.identity, found.clone()));
            out.insert(name.clone(), found);
        }
        Ok(out)
    }

    /// The digest of a version, computed once.
    pub fn digest(&mut self, content: &ContentId) -> Digest {
        *self
            .digests
            .entry(*content)
            .or_insert_with(|| content.digest())
    }

    fn match_file(
        &mut self,
        path: &Path,
        size: u64,
        sent: &BTreeSet<ContentId>,
        records: &[UploadRecord],
    ) -> io::Result<Match> {
        let digest = digest_file(path)?;
        let same: BTreeSet<ContentId> = sent
            .iter()
            .filter(|c| c.size == size)
            .filter(|c| self.digest(c) == digest)
            .copied()
            .collect();
        if !same.is_empty() {
            return Ok(Match::Versions(same));
        }
        // Another name's version?
        let foreign = records
            .iter()
            .filter(|r| r.content.size == size && !sent.contains(&r.content))
            .find(|r| self.digest(&r.content) == digest);
        if let Some(other) = foreign {
            return Ok(Match::Unknown(format!(
                "is {} sent to {:?}",
                show_one(&other.content),
                other.name
            )));
        }
        Ok(Match::Unknown(describe(path, size, sent)?))
    }
}

/// BLAKE3 of a file, read in pieces.
pub fn digest_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

/// Says how a file that is no version of its name relates to the closest one.
fn describe(path: &Path, size: u64, sent: &BTreeSet<ContentId>) -> io::Result<String> {
    if sent.is_empty() {
        return Ok(format!(
            "{size} bytes, but no upload was ever sent to this name"
        ));
    }
    if size > DESCRIBE_MAX {
        return Ok(format!(
            "{size} bytes, none of the {} versions sent",
            sent.len()
        ));
    }
    let data = fs::read(path)?;
    let (closest, common) = sent
        .iter()
        .map(|c| (c, c.first_difference(&data).unwrap_or(size)))
        .max_by_key(|(_, common)| *common)
        .map_or((None, 0), |(c, n)| (Some(c), n));
    Ok(match closest {
        Some(c) if common == size && size < c.size => format!(
            "{size} bytes: the first {size} bytes of {} (a truncated or partial file)",
            show_one(c)
        ),
        Some(c) => format!(
            "{size} bytes, none of the {} versions sent; the closest, {}, matches only its \
             first {common} bytes",
            sent.len(),
            show_one(c)
        ),
        None => format!("{size} bytes"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crash::ledger::{Origin, Outcome, Tick};

    fn record(name: &str, step: u32, size: u64) -> UploadRecord {
        UploadRecord {
            name: name.into(),
            content: ContentId {
                seed: 3,
                client: 1,
                step,
                size,
            },
            overwrite: true,
            origin: Origin::Load,
            started: Tick(u64::from(step)),
            outcome: Outcome::Pending,
        }
    }

    #[test]
    fn whole_truncated_foreign_and_linked_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = record("d/a", 1, 300_000);
        let b = record("b", 2, 1_000);
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(root.join(".ferry-staging")).unwrap();
        fs::write(root.join("d/a"), a.content.bytes()).unwrap();
        fs::write(root.join("cut"), &a.content.bytes()[..70_000]).unwrap();
        fs::write(root.join("b"), b.content.bytes()).unwrap();
        fs::hard_link(root.join("b"), root.join(".ferry-staging/k.part")).unwrap();
        let cut = record("cut", 1, 300_000);
        let records = [a.clone(), b, cut];

        let state = walk(root).unwrap();
        assert_eq!(
            state.visible.keys().collect::<Vec<_>>(),
            ["b", "cut", "d/a"],
            ".ferry* folders are not visible files"
        );
        let found = Matcher::new()
            .match_all(root, &state, &records, true)
            .unwrap();
        assert_eq!(found["d/a"], Match::Versions(BTreeSet::from([a.content])));
        let Match::Unknown(cut) = &found["cut"] else {
            panic!("a partial file matched a version: {:?}", found["cut"]);
        };
        assert!(cut.contains("truncated or partial"), "{cut}");
        let shared = shared_inodes(&state);
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].0, "b");
        assert!(shared[0].1.contains("k.part"), "{}", shared[0].1);
    }

    #[test]
    fn a_file_changed_in_place_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = record("a", 1, 5_000);
        let records = [a.clone()];
        fs::write(dir.path().join("a"), a.content.bytes()).unwrap();
        let mut matcher = Matcher::new();
        let state = walk(dir.path()).unwrap();
        let first = matcher
            .match_all(dir.path(), &state, &records, true)
            .unwrap();
        assert!(matches!(first["a"], Match::Versions(_)));
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.path().join("a"), vec![0u8; 5_000]).unwrap();
        let state = walk(dir.path()).unwrap();
        let second = matcher
            .match_all(dir.path(), &state, &records, true)
            .unwrap();
        assert!(
            matches!(second["a"], Match::Unknown(_)),
            "{:?}",
            second["a"]
        );
    }
}
