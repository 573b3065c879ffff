//! What a crash run counts, and its printed table.

use std::fmt::Write as _;

use serde::Serialize;

use super::ledger::{Origin, Outcome, UploadRecord};
use super::rules::Violation;

/// The figures of a crash run, and every violation found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CrashSummary {
    /// The run's seed.
    pub seed: u64,
    /// Client threads.
    pub clients: u32,
    /// `SIGKILL`s of the server under load.
    pub kills: u32,
    /// Kills that found at least one upload under way.
    pub kills_mid_upload: u32,
    /// Uploads under way at the kills, summed over all kills.
    pub in_flight_at_kills: u64,
    /// Uploads the load started (resends included, reruns not).
    pub uploads: u64,
    /// Of those, sends again of a version not acknowledged.
    pub resends: u64,
    /// Uploads of the load acknowledged.
    pub acked: u64,
    /// Uploads of the load refused because the name existed (without overwrite).
    pub refused: u64,
    /// Uploads of the load interrupted: the library gave up, the upload may or may not be
    /// stored.
    pub interrupted: u64,
    /// Acknowledged uploads of the load whose last attempt resumed past byte 0.
    pub resumed_in_load: u64,
    /// Interrupted uploads run again at the end.
    pub reruns: u64,
    /// Reruns acknowledged.
    pub rerun_acked: u64,
    /// Reruns for which the server held a partial upload (past byte 0) beforehand.
    pub rerun_partials_kept: u64,
    /// Reruns that resumed past byte 0 (a partial upload survived the kills).
    pub rerun_resumed: u64,
    /// Create-only reruns refused because their very bytes were already stored under the name
    /// (an earlier attempt committed but its acknowledgement was lost).
    pub rerun_refused_already_stored: u64,
    /// Create-only reruns refused because another version holds the name.
    pub rerun_refused_name_taken: u64,
    /// Checks of the root made (after each kill, after each restart, at the end).
    pub checks: u32,
    /// Times a visible file was found sharing its inode with a staged file right after a
    /// kill (before the restart had a chance to repair it).
    pub shared_inodes_before_restart: u64,
    /// Visible files at the end.
    pub files_at_end: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Every broken promise.
    pub violations: Vec<Violation>,
}

impl CrashSummary {
    /// Whether no promise was broken.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Fills the upload counts from the ledger.
    pub fn count(&mut self, records: &[UploadRecord]) {
        for record in records {
            let rerun = record.origin == Origin::Rerun;
            if rerun {
                continue;
            }
            self.uploads += 1;
            self.resends += u64::from(record.origin == Origin::Resend);
            match record.outcome {
                Outcome::Acked { resumed_from, .. } => {
                    self.acked += 1;
                    self.resumed_in_load += u64::from(resumed_from > 0);
                }
                Outcome::Refused { .. } => self.refused += 1,
                Outcome::Interrupted { .. } | Outcome::Pending => self.interrupted += 1,
            }
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(out, "  {label:<46} {value}");
        };
        row("seed", self.seed.to_string());
        row("clients", self.clients.to_string());
        row("kills (SIGKILL under load)", self.kills.to_string());
        row(
            "kills with uploads under way / uploads hit",
            format!("{} / {}", self.kills_mid_upload, self.in_flight_at_kills),
        );
        row(
            "uploads started (resends)",
            format!("{} ({})", self.uploads, self.resends),
        );
        row("acknowledged", self.acked.to_string());
        row("refused as existing", self.refused.to_string());
        row(
            "interrupted (library gave up)",
            self.interrupted.to_string(),
        );
        row(
            "acknowledged after resuming mid-file",
            self.resumed_in_load.to_string(),
        );
        row(
            "reruns: acknowledged / partial kept / resumed",
            format!(
                "{} of {} / {} / {}",
                self.rerun_acked, self.reruns, self.rerun_partials_kept, self.rerun_resumed
            ),
        );
        row(
            "reruns refused: already stored / name taken",
            format!(
                "{} / {}",
                self.rerun_refused_already_stored, self.rerun_refused_name_taken
            ),
        );
        row("checks of the root", self.checks.to_string());
        row(
            "staged inode visible right after a kill",
            self.shared_inodes_before_restart.to_string(),
        );
        row("visible files at the end", self.files_at_end.to_string());
        row("seconds", format!("{:.1}", self.seconds));
        row(
            "violations",
            if self.passed() {
                "0 (PASS)".into()
            } else {
                format!("{} (FAIL)", self.violations.len())
            },
        );
        out
    }
}
