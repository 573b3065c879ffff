//! `ferry sync SOURCE DESTINATION`: make a server folder match a local one (`sync DIR :FOLDER`)
//! or a local folder match a server one (`sync :FOLDER DIR`), sending only files whose size or
//! digest differ; with `--delete`, removing what the source does not have.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use ferry_client::sync::{
    DigestCache, Filter, SendReason, SyncAction, SyncDirection, SyncItem, SyncObserver,
    SyncOptions, SyncPlan, SyncReport, cache_dir, cache_file_for,
};
use ferry_client::{Client, ClientError, Progress, display_name, display_text};
use serde::Serialize;

use crate::plan::Usage;
use crate::select::Selection;
use crate::show::{Display, Transfer};

/// Marks the server side of a sync: `:FOLDER`, as in rsync's `HOST:PATH` with the host
/// given by --server.
const REMOTE_MARK: char = ':';

/// `ferry sync`'s arguments.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Copy from here: a local folder, or `:FOLDER` for a folder on the server.
    pub source: String,
    /// To here: `:FOLDER` on the server, or a local folder (made if missing).
    pub destination: String,
    /// Delete files in the destination folder that the source does not have. Only files
    /// inside that folder, never through a symbolic link, never a file the filters exclude,
    /// and only when every file was sent without error.
    #[arg(long)]
    pub delete: bool,
    /// Which files, and whether to only print the plan.
    #[command(flatten)]
    pub select: Selection,
}

/// The two sides of a sync.
#[derive(Debug, PartialEq, Eq)]
struct Sides {
    direction: SyncDirection,
    local: PathBuf,
    remote: String,
}

/// Reads `SOURCE DESTINATION`: exactly one of them is `:FOLDER`.
fn sides(source: &str, destination: &str) -> anyhow::Result<Sides> {
    let remote = |side: &str| side.strip_prefix(REMOTE_MARK).map(str::to_owned);
    let (direction, local, remote) = match (remote(source), remote(destination)) {
        (None, Some(folder)) => (SyncDirection::Upload, source, folder),
        (Some(folder), None) => (SyncDirection::Download, destination, folder),
        (Some(_), Some(_)) => bail!(Usage(
            "both sides are server folders (:FOLDER); one side must be a local folder".into()
        )),
        (None, None) => bail!(Usage(
            "neither side is a server folder; write the server side as :FOLDER \
             (ferry sync photos :photos, or ferry sync :photos photos); a local path \
             starting with ':' can be written ./:name"
                .into()
        )),
    };
    let remote = remote.trim_end_matches('/').to_owned();
    if remote.is_empty() {
        bail!(Usage(
            "name a folder on the server (:FOLDER); sync does not take the whole server".into()
        ));
    }
    if local.is_empty() {
        bail!(Usage("name a local folder".into()));
    }
    Ok(Sides {
        direction,
        local: PathBuf::from(local),
        remote,
    })
}

/// The digest cache of the local folder: a file in the cache folder, or in memory when there
/// is no cache folder.
fn cache_for(local: &Path) -> DigestCache {
    match cache_dir() {
        Some(dir) => DigestCache::load(cache_file_for(&dir, local)),
        None => DigestCache::in_memory(),
    }
}

/// Plans the sync and runs it (or prints the plan, with `--dry-run`).
pub fn run(
    client: &mut Client,
    args: &SyncArgs,
    filter: Filter,
    json: bool,
    quiet: bool,
) -> anyhow::Result<i32> {
    let sides = sides(&args.source, &args.destination)?;
    let options = SyncOptions {
        delete: args.delete,
        filter,
    };
    let mut cache = cache_for(&sides.local);
    let plan = client.plan_sync(
        sides.direction,
        &sides.local,
        &sides.remote,
        &options,
        &mut cache,
    )?;
    let (sends, _, deletes, bytes) = plan.counts();
    let report = if args.select.dry_run {
        SyncReport {
            digests_from_cache: cache.hits(),
            files_hashed: cache.hashed(),
            ..SyncReport::default()
        }
    } else {
        let display = Display::new(quiet, json, sends + deletes).with_total_bytes(bytes);
        let mut observer = Shown {
            display: &display,
            plan: &plan,
            current: None,
            results: Vec::new(),
        };
        let report = client.run_sync(&plan, &mut cache, &mut observer);
        let results = std::mem::take(&mut observer.results);
        // Clears the bars, and prints the document with --json.
        display.finish(&document(&plan, &report, results, false));
        report
    };
    if let Err(error) = cache.save() {
        tracing::warn!(%error, "cannot save the digest cache; the next sync hashes again");
    }
    if args.select.dry_run {
        if json {
            let results = plan
                .items
                .iter()
                .filter(|item| item.action != SyncAction::Skip)
                .map(|item| ItemJson::planned(&plan, item))
                .collect();
            let document = document(&plan, &report, results, true);
            println!("{}", serde_json::to_string_pretty(&document)?);
        } else if !quiet {
            for item in &plan.items {
                if item.action != SyncAction::Skip {
                    println!("would {}", describe(&plan, item));
                }
            }
        }
    }
    if !json && !quiet {
        println!("{}", summary(&plan, &report, args.select.dry_run, &cache));
    }
    Ok(report
        .failed
        .first()
        .map_or(0, |(_, error)| error.exit_code()))
}

/// "send photos/a.jpg (12 bytes, new)" or "delete photos/b.jpg".
fn describe(plan: &SyncPlan, item: &SyncItem) -> String {
    let shown = shown_path(plan, item);
    match item.action {
        SyncAction::Send(reason) => {
            format!(
                "send {shown} ({} bytes, {})",
                item.size,
                reason_text(reason)
            )
        }
        SyncAction::Delete => format!("delete {shown}"),
        SyncAction::Skip => format!("skip {shown}"),
    }
}

/// The destination's copy of `item`: its name on the server, or its local path.
fn shown_path(plan: &SyncPlan, item: &SyncItem) -> String {
    match plan.direction {
        SyncDirection::Upload => display_name(&plan.remote_name(&item.relative)).into_owned(),
        SyncDirection::Download => {
            display_text(&plan.local_path(&item.relative).display().to_string()).into_owned()
        }
    }
}

fn reason_text(reason: SendReason) -> &'static str {
    match reason {
        SendReason::New => "new",
        SendReason::SizeDiffers => "size differs",
        SendReason::DigestDiffers => "content differs",
        SendReason::DigestUnknown => "server has no digest to compare",
        _ => "differs",
    }
}

/// The closing line: what was (or would be) done, bytes moved, and the cache's part.
fn summary(plan: &SyncPlan, report: &SyncReport, dry_run: bool, cache: &DigestCache) -> String {
    let cache_note = format!(
        "local digests: {} from the cache, {} files read{}",
        report.digests_from_cache,
        report.files_hashed,
        cache
            .path()
            .map(|p| format!(" (cache {})", display_text(&p.display().to_string())))
            .unwrap_or_default()
    );
    if dry_run {
        let (sends, skips, deletes, bytes) = plan.counts();
        return format!(
            "dry run: would send {sends} ({bytes} bytes), skip {skips}, delete {deletes}; \
             nothing was changed; {cache_note}"
        );
    }
    let mut line = format!(
        "sync: {} sent, {} skipped, {} deleted, {} failed; {} bytes moved; {cache_note}",
        report.sent,
        report.skipped,
        report.deleted,
        report.failed.len(),
        report.bytes_moved
    );
    if report.deletions_held_back > 0 {
        line.push_str(&format!(
            "; {} deletions held back because a file failed",
            report.deletions_held_back
        ));
    }
    line
}

/// Shows each send and deletion through [`Display`] and keeps its result for `--json`.
struct Shown<'a> {
    display: &'a Display,
    plan: &'a SyncPlan,
    current: Option<Transfer>,
    results: Vec<ItemJson>,
}

impl SyncObserver for Shown<'_> {
    fn started(&mut self, item: &SyncItem) {
        self.current = Some(self.display.start(&self.plan.remote_name(&item.relative)));
    }

    fn progress(&mut self, _item: &SyncItem, progress: Progress) {
        if let Some(current) = &mut self.current {
            current.update(progress);
        }
    }

    fn finished(&mut self, item: &SyncItem, result: &Result<u64, ClientError>) {
        if let Some(current) = self.current.take() {
            current.finish(result.is_ok());
        }
        match result {
            Ok(bytes) => {
                let done = describe(self.plan, item);
                let line = match item.action {
                    SyncAction::Delete => format!("deleted {}", shown_path(self.plan, item)),
                    _ => format!("{done}: {bytes} bytes moved").replacen("send", "sent", 1),
                };
                self.display.result(&line);
            }
            Err(error) => self
                .display
                .error(&format!("{}: {error}", shown_path(self.plan, item))),
        }
        let mut json = ItemJson::planned(self.plan, item);
        json.ok = result.is_ok();
        if let Err(error) = result {
            json.error = Some(error.to_string());
            json.exit_code = Some(error.exit_code());
        } else if let Ok(bytes) = result {
            json.bytes_moved = Some(*bytes);
        }
        self.results.push(json);
    }
}

/// One send or deletion, for `--json`.
#[derive(Serialize)]
struct ItemJson {
    name: String,
    local: PathBuf,
    /// `send` or `delete`.
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    size: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_moved: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
}

impl ItemJson {
    fn planned(plan: &SyncPlan, item: &SyncItem) -> ItemJson {
        let (action, reason) = match item.action {
            SyncAction::Send(reason) => ("send", Some(reason_text(reason))),
            SyncAction::Delete => ("delete", None),
            SyncAction::Skip => ("skip", None),
        };
        ItemJson {
            name: plan.remote_name(&item.relative),
            local: plan.local_path(&item.relative),
            action,
            reason,
            size: item.size,
            ok: true,
            bytes_moved: None,
            error: None,
            exit_code: None,
        }
    }
}

/// The counts of `--json`'s summary.
#[derive(Serialize)]
struct SummaryJson {
    sent: usize,
    skipped: usize,
    deleted: usize,
    failed: usize,
    deletions_held_back: usize,
    bytes_moved: u64,
    digests_from_cache: u64,
    files_hashed: u64,
}

/// The `--json` document: direction, summary and each send or deletion.
fn document(
    plan: &SyncPlan,
    report: &SyncReport,
    results: Vec<ItemJson>,
    dry_run: bool,
) -> serde_json::Value {
    let (sends, skips, deletes, _) = plan.counts();
    let summary = if dry_run {
        SummaryJson {
            sent: sends,
            skipped: skips,
            deleted: deletes,
            failed: 0,
            deletions_held_back: 0,
            bytes_moved: 0,
            digests_from_cache: report.digests_from_cache,
            files_hashed: report.files_hashed,
        }
    } else {
        SummaryJson {
            sent: report.sent,
            skipped: report.skipped,
            deleted: report.deleted,
            failed: report.failed.len(),
            deletions_held_back: report.deletions_held_back,
            bytes_moved: report.bytes_moved,
            digests_from_cache: report.digests_from_cache,
            files_hashed: report.files_hashed,
        }
    };
    let direction = match plan.direction {
        SyncDirection::Upload => "upload",
        SyncDirection::Download => "download",
    };
    serde_json::json!({
        "command": "sync",
        "ok": report.failed.is_empty(),
        "dry_run": dry_run,
        "direction": direction,
        "summary": summary,
        "results": results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_side_is_the_one_marked_with_a_colon() {
        assert_eq!(
            sides("photos", ":pics/").unwrap(),
            Sides {
                direction: SyncDirection::Upload,
                local: "photos".into(),
                remote: "pics".into()
            }
        );
        assert_eq!(
            sides(":pics", "back").unwrap().direction,
            SyncDirection::Download
        );
        for (a, b) in [(":a", ":b"), ("a", "b"), ("a", ":"), ("a", ":/")] {
            let error = sides(a, b).unwrap_err();
            assert!(error.is::<Usage>(), "{a} {b}: {error}");
        }
    }
}
