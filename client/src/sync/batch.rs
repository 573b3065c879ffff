//! The small files of a sync sent together, pipelined on one connection ([`Client::put_files`],
//! [`Client::get_files`]): a tree of many small files costs a few round trips, not two per
//! file. Each file's outcome is what sending it alone would give (the pipeline settles anything
//! unusual one by one).

use std::path::PathBuf;

use crate::client::Client;
use crate::eager_window::EAGER_MAX;
use crate::options::{GetOptions, PutOptions};
use crate::sync::digest_cache::DigestCache;
use crate::sync::plan::{SyncAction, SyncDirection, SyncItem};
use crate::sync::run::{SyncObserver, SyncPlan, SyncReport, check_no_links, settle, stamp};

/// Whether `item` is sent in the pipelined batch: a send of a file small enough to go eagerly.
pub(super) fn in_batch(item: &SyncItem) -> bool {
    matches!(item.action, SyncAction::Send(_)) && item.size <= EAGER_MAX
}

impl Client {
    /// Sends every item of `batch` (sends of small files) pipelined, telling `observer` and
    /// `report` of each as it ends.
    pub(super) fn send_batch(
        &mut self,
        plan: &SyncPlan,
        batch: &[&SyncItem],
        cache: &mut DigestCache,
        observer: &mut dyn SyncObserver,
        report: &mut SyncReport,
    ) {
        let mut end = |item: &SyncItem, result| {
            observer.started(item);
            settle(item, result, observer, report);
        };
        match plan.direction {
            SyncDirection::Upload => {
                let files: Vec<(PathBuf, String)> = batch
                    .iter()
                    .map(|item| {
                        (
                            plan.local_path(&item.relative),
                            plan.remote_name(&item.relative),
                        )
                    })
                    .collect();
                let before: Vec<_> = files.iter().map(|(path, _)| stamp(path)).collect();
                let put = PutOptions {
                    overwrite: true,
                    ..PutOptions::default()
                };
                self.put_files(&files, &put, &mut |index, result| {
                    let item = batch[index];
                    let result = result.map(|sent| {
                        // Cached only if the file did not change while it was read.
                        if stamp(&files[index].0) == before[index] {
                            cache.record(&item.relative, before[index], sent.digest);
                        }
                        sent.bytes_sent
                    });
                    end(item, result);
                });
            }
            SyncDirection::Download => {
                let mut wanted = Vec::new();
                let mut files = Vec::new();
                for &item in batch {
                    match check_no_links(&plan.local, &item.relative) {
                        Ok(()) => {
                            wanted.push(item);
                            files.push((
                                plan.remote_name(&item.relative),
                                plan.local_path(&item.relative),
                            ));
                        }
                        Err(error) => end(item, Err(error)),
                    }
                }
                self.get_files(&files, &GetOptions::default(), &mut |index, result| {
                    let item = wanted[index];
                    let result = result.map(|got| {
                        cache.record(&item.relative, stamp(&files[index].1), got.digest);
                        got.bytes_received
                    });
                    end(item, result);
                });
            }
        }
    }
}
