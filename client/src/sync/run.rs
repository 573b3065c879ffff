//! Planning and running a sync with a [`Client`]: the digests asked for pipelined
//! (`stored_digests`), small files sent pipelined (`batch`), large ones one at a time with
//! their progress (`put_file`, `get_file`), then the deletions (`remove`).

use std::fs;
use std::path::{Path, PathBuf};

use ferry_protocol::validate_name;

use crate::client::{Client, check_name};
use crate::error::ClientError;
use crate::options::{GetOptions, Progress, PutOptions};
use crate::sync::batch::in_batch;
use crate::sync::digest_cache::{DigestCache, FileStamp};
use crate::sync::filter::Filter;
use crate::sync::local_tree::{self, LocalFile};
use crate::sync::plan::{self, SideFile, SyncAction, SyncDirection, SyncItem};

/// What a sync copies and how.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Remove files from the destination folder that the source folder does not have (and
    /// that the filter keeps: an excluded file is never deleted).
    pub delete: bool,
    /// Which files take part.
    pub filter: Filter,
}

/// What a sync will do: every file of both folders the filter keeps, with its action.
#[derive(Clone, Debug)]
pub struct SyncPlan {
    /// Which way it copies.
    pub direction: SyncDirection,
    /// The local folder.
    pub local: PathBuf,
    /// The server folder, without a trailing `/`.
    pub remote: String,
    /// Sends first, then skips, then deletions, each in path order.
    pub items: Vec<SyncItem>,
}

impl SyncPlan {
    /// The file `relative` on the server.
    pub fn remote_name(&self, relative: &str) -> String {
        format!("{}/{relative}", self.remote)
    }

    /// The file `relative` on the local disk.
    pub fn local_path(&self, relative: &str) -> PathBuf {
        self.local.join(relative)
    }

    /// How many items take each action: (send, skip, delete), and the bytes to send.
    pub fn counts(&self) -> (usize, usize, usize, u64) {
        let mut counts = (0, 0, 0, 0);
        for item in &self.items {
            match item.action {
                SyncAction::Send(_) => {
                    counts.0 += 1;
                    counts.3 += item.size;
                }
                SyncAction::Skip => counts.1 += 1,
                SyncAction::Delete => counts.2 += 1,
            }
        }
        counts
    }
}

/// Told about each file as a sync runs; every method does nothing by default.
pub trait SyncObserver {
    /// A send or deletion starts.
    fn started(&mut self, _item: &SyncItem) {}
    /// A send moved on.
    fn progress(&mut self, _item: &SyncItem, _progress: Progress) {}
    /// A send or deletion ended: `Ok` with the file bytes moved over the network.
    fn finished(&mut self, _item: &SyncItem, _result: &Result<u64, ClientError>) {}
}

/// An observer that ignores everything.
impl SyncObserver for () {}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Files sent (uploaded or downloaded).
    pub sent: usize,
    /// Files already the same on both sides.
    pub skipped: usize,
    /// Files deleted from the destination.
    pub deleted: usize,
    /// Files that failed, with why; the others went on.
    pub failed: Vec<(String, ClientError)>,
    /// Deletions not made because a send failed.
    pub deletions_held_back: usize,
    /// File bytes moved over the network.
    pub bytes_moved: u64,
    /// Local digests taken from the cache (files not read).
    pub digests_from_cache: u64,
    /// Local files read to compute their digest.
    pub files_hashed: u64,
}

impl Client {
    /// Compares the local folder `local` with the server folder `remote` and says what a sync
    /// in `direction` would do. Lists the server folder, and for each file of the same size on
    /// both sides asks the server for its digest and takes the local one from `cache` (hashing
    /// the file only when its size or modification time changed since it was cached). Sends
    /// and deletes nothing: run the plan with [`Client::run_sync`].
    pub fn plan_sync(
        &mut self,
        direction: SyncDirection,
        local: &Path,
        remote: &str,
        options: &SyncOptions,
        cache: &mut DigestCache,
    ) -> Result<SyncPlan, ClientError> {
        let remote = remote.trim_end_matches('/');
        check_name(remote)?;
        let local_files = local_tree::walk(local, &options.filter)?;
        let remote_files = self.remote_tree(remote, &options.filter)?;
        let local_side: Vec<SideFile> = local_files.iter().map(side).collect();
        let (source, destination) = match direction {
            SyncDirection::Upload => (&local_side, &remote_files),
            SyncDirection::Download => (&remote_files, &local_side),
        };
        let comparison = plan::compare(source, destination, options.delete);
        let mut items = comparison.decided;
        let by_path: std::collections::HashMap<&str, &LocalFile> = local_files
            .iter()
            .map(|f| (f.relative.as_str(), f))
            .collect();
        let asked: Vec<(String, u64)> = comparison
            .same_size
            .iter()
            .map(|file| (format!("{remote}/{}", file.relative), file.size))
            .collect();
        let stored = self.stored_digests(&asked)?;
        for (file, server) in comparison.same_size.into_iter().zip(stored) {
            let action = match (server, by_path.get(file.relative.as_str())) {
                (Some(server), Some(local)) => {
                    let digest = cache
                        .digest(&local.relative, &local.path, local.stamp)
                        .map_err(|source| ClientError::Local {
                            action: "cannot read",
                            path: local.path.clone(),
                            source,
                        })?;
                    plan::by_digest(Some(server), digest)
                }
                _ => SyncAction::Send(plan::SendReason::DigestUnknown),
            };
            items.push(SyncItem {
                relative: file.relative,
                size: file.size,
                action,
            });
        }
        // Local files this run had no reason to hash keep their cached digests.
        for file in &local_files {
            cache.keep(&file.relative);
        }
        plan::order(&mut items);
        Ok(SyncPlan {
            direction,
            local: local.to_path_buf(),
            remote: remote.to_owned(),
            items,
        })
    }

    /// The files under the server folder `remote` that `filter` keeps, relative to it.
    fn remote_tree(&mut self, remote: &str, filter: &Filter) -> Result<Vec<SideFile>, ClientError> {
        let prefix = format!("{remote}/");
        let mut files = Vec::new();
        for entry in self.list(&prefix)? {
            // Names become local paths: only valid names strictly inside the folder.
            let Some(relative) = entry.name.strip_prefix(&prefix) else {
                continue;
            };
            if relative.is_empty() {
                continue;
            }
            check_name(&entry.name)?;
            validate_name(relative).map_err(|source| ClientError::InvalidName {
                name: entry.name.clone(),
                source,
            })?;
            if filter.keeps_file(relative) {
                files.push(SideFile {
                    relative: relative.to_owned(),
                    size: entry.size,
                });
            }
        }
        Ok(files)
    }

    /// Runs `plan`: sends each file to send (replacing what is there), then, if every send
    /// succeeded, deletes each file to delete. A file that fails does not stop the others.
    /// Digests of files sent are recorded in `cache`; save it afterwards.
    ///
    /// Small files (up to [`EAGER_MAX`](crate::EAGER_MAX)) go first, pipelined on one
    /// connection: `observer` hears of each when it has ended (`started` then `finished`, no
    /// `progress`). Larger ones follow one at a time, with their progress.
    pub fn run_sync(
        &mut self,
        plan: &SyncPlan,
        cache: &mut DigestCache,
        observer: &mut dyn SyncObserver,
    ) -> SyncReport {
        let mut report = SyncReport::default();
        let batch: Vec<&SyncItem> = plan.items.iter().filter(|item| in_batch(item)).collect();
        self.send_batch(plan, &batch, cache, observer, &mut report);
        for item in plan.items.iter().filter(|item| !in_batch(item)) {
            match item.action {
                SyncAction::Skip => {
                    report.skipped += 1;
                    continue;
                }
                SyncAction::Delete if !report.failed.is_empty() => {
                    report.deletions_held_back += 1;
                    continue;
                }
                SyncAction::Send(_) | SyncAction::Delete => {}
            }
            observer.started(item);
            let result = match item.action {
                SyncAction::Delete => self.delete(plan, item),
                _ => self.send(plan, item, cache, observer),
            };
            settle(item, result, observer, &mut report);
        }
        report.digests_from_cache = cache.hits();
        report.files_hashed = cache.hashed();
        report
    }

    /// Sends one file the way the plan goes; returns the file bytes moved.
    fn send(
        &mut self,
        plan: &SyncPlan,
        item: &SyncItem,
        cache: &mut DigestCache,
        observer: &mut dyn SyncObserver,
    ) -> Result<u64, ClientError> {
        let name = plan.remote_name(&item.relative);
        let path = plan.local_path(&item.relative);
        let mut progress = |p: Progress| observer.progress(item, p);
        match plan.direction {
            SyncDirection::Upload => {
                let before = stamp(&path);
                let put = PutOptions {
                    overwrite: true,
                    ..PutOptions::default()
                };
                let report = self.put_file(&path, &name, &put, &mut progress)?;
                if stamp(&path) == before {
                    cache.record(&item.relative, before, report.digest);
                }
                Ok(report.bytes_sent)
            }
            SyncDirection::Download => {
                check_no_links(&plan.local, &item.relative)?;
                let report = self.get_file(&name, &path, &GetOptions::default(), &mut progress)?;
                cache.record(&item.relative, stamp(&path), report.digest);
                Ok(report.bytes_received)
            }
        }
    }

    /// Deletes one file from the destination.
    fn delete(&mut self, plan: &SyncPlan, item: &SyncItem) -> Result<u64, ClientError> {
        match plan.direction {
            SyncDirection::Upload => self.remove(&plan.remote_name(&item.relative))?,
            SyncDirection::Download => {
                check_no_links(&plan.local, &item.relative)?;
                let path = plan.local_path(&item.relative);
                fs::remove_file(&path).map_err(|source| ClientError::Local {
                    action: "cannot delete",
                    path: path.clone(),
                    source,
                })?;
                remove_empty_folders(&plan.local, &path);
            }
        }
        Ok(0)
    }
}

/// Tells `observer` how a send or deletion ended and counts it in `report`.
pub(super) fn settle(
    item: &SyncItem,
    result: Result<u64, ClientError>,
    observer: &mut dyn SyncObserver,
    report: &mut SyncReport,
) {
    observer.finished(item, &result);
    match result {
        Ok(bytes) => {
            report.bytes_moved += bytes;
            if item.action == SyncAction::Delete {
                report.deleted += 1;
            } else {
                report.sent += 1;
            }
        }
        Err(error) => report.failed.push((item.relative.clone(), error)),
    }
}

fn side(file: &LocalFile) -> SideFile {
    SideFile {
        relative: file.relative.clone(),
        size: file.size,
    }
}

pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    fs::symlink_metadata(path)
        .ok()
        .and_then(|m| FileStamp::of(&m))
}

/// Refuses a local path under `root` that passes through a symbolic link: a sync writes and
/// deletes only inside its folder.
pub(super) fn check_no_links(root: &Path, relative: &str) -> Result<(), ClientError> {
    let mut path = root.to_path_buf();
    let mut components = relative.split('/').peekable();
    while let Some(component) = components.next() {
        path.push(component);
        let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            return Err(ClientError::Local {
                action: "will not write through",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a symbolic link inside the synced folder; sync never follows links",
                ),
            });
        }
        if components.peek().is_none() {
            break;
        }
    }
    Ok(())
}

/// Removes the folders a deletion left empty, from the file's folder up to (not including)
/// `root`.
fn remove_empty_folders(root: &Path, file: &Path) {
    let mut folder = file.parent();
    while let Some(dir) = folder {
        if dir == root || !dir.starts_with(root) || fs::remove_dir(dir).is_err() {
            break;
        }
        folder = dir.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_path_through_a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("link")).unwrap();
        assert!(check_no_links(&root, "real/file").is_ok());
        assert!(check_no_links(&root, "new/deeper/file").is_ok());
        assert!(check_no_links(&root, "link/file").is_err());
        assert!(check_no_links(&root, "link").is_err());
    }

    #[test]
    fn emptied_folders_are_removed_up_to_the_root_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/keep"), b"").unwrap();
        remove_empty_folders(&root, &root.join("a/b/gone"));
        assert!(!root.join("a/b").exists());
        assert!(root.join("a/keep").exists());
        let lone = dir.path().join("lone");
        fs::create_dir_all(lone.join("x")).unwrap();
        remove_empty_folders(&lone, &lone.join("x/gone"));
        assert!(lone.exists(), "the root itself stays");
    }
}
