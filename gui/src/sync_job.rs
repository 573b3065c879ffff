//! "Sync this folder": a worker runs one sync through the client library (plan, then send
//! what differs), with the local digests cached as the `ferry sync` command caches them.

use std::path::{Path, PathBuf};

use ferry_client::Client;
use ferry_client::sync::{DigestCache, SyncDirection, SyncOptions, SyncReport, cache_file_for};

use crate::model::Session;

/// One folder to sync, which way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// Which way the files go.
    pub direction: SyncDirection,
    /// The local folder.
    pub local: PathBuf,
    /// The server folder (no trailing `/`).
    pub remote: String,
}

impl SyncRequest {
    /// "photos -> server photos/" or "server photos/ -> /home/me/photos", for messages.
    pub fn describe(&self) -> String {
        let remote = format!("server {}/", ferry_client::display_name(&self.remote));
        let local = self.local.display().to_string();
        match self.direction {
            SyncDirection::Upload => format!("{local} -> {remote}"),
            _ => format!("{remote} -> {local}"),
        }
    }
}

/// Runs the sync of `request` on a connection of its own; `cache` is the folder holding the
/// digest caches (`None`: in memory only). Returns the summary in words, or why it failed.
pub fn run(
    session: &Session,
    request: &SyncRequest,
    cache: Option<&Path>,
) -> Result<String, String> {
    let mut client = Client::connect(session.addr.as_str(), session.options.clone())
        .map_err(|e| e.to_string())?;
    let mut digests = match cache {
        Some(dir) => DigestCache::load(cache_file_for(dir, &request.local)),
        None => DigestCache::in_memory(),
    };
    let plan = client
        .plan_sync(
            request.direction,
            &request.local,
            &request.remote,
            &SyncOptions::default(),
            &mut digests,
        )
        .map_err(|e| e.to_string())?;
    let report = client.run_sync(&plan, &mut digests, &mut ());
    // The cache only saves work: a sync that cannot save it still succeeded.
    let _ = digests.save();
    Ok(summary(request, &report))
}

/// "Synced photos -> server photos/: 3 sent, 97 skipped, 0 failed (12 KiB moved)." plus the
/// first failure, if any.
fn summary(request: &SyncRequest, report: &SyncReport) -> String {
    let mut text = format!(
        "Synced {}: {} sent, {} skipped, {} failed ({} moved).",
        request.describe(),
        report.sent,
        report.skipped,
        report.failed.len(),
        crate::format::size(report.bytes_moved)
    );
    if let Some((name, error)) = report.failed.first() {
        text.push_str(&format!("\n{}: {error}", ferry_client::display_name(name)));
    }
    text
}
