//! The promises a crash must not break, as exact rules over what the clients did (the
//! [`Ledger`](super::ledger::Ledger)) and what the storage root shows.
//!
//! Every visible file has been matched, byte for byte, against the versions sent to its name
//! (see [`scan`](super::scan)): it is either a [`Match::Versions`], the set of versions with
//! exactly its bytes (one, unless several versions are equal, as empty files are), or
//! [`Match::Unknown`]. An upload's commit, if it happened, lies between its `started` tick and
//! its end (acknowledged or refused); an interrupted or pending upload may commit at any time
//! after its start (its client may yet finish it). With that, for a name `N` and its visible
//! file `F`:
//!
//! - **[`Rule::NotAVersion`]**: `F` is a whole version some client sent to `N`, never a partial
//!   file, a mixture, another name's file or anything else.
//! - **[`Rule::RefusedVisible`]**: `F` is not a version whose every upload was refused as
//!   existing: those clients were told nothing was stored.
//! - **[`Rule::AckedLost`]**: if any upload of `N` was acknowledged, `N` is visible (the load
//!   never removes a file).
//! - **[`Rule::AckedReplacedByEarlier`]**: for every acknowledged upload `U` of `N` whose
//!   version `F` is not, some upload of `F` may have committed after `U` did: not every upload
//!   of `F` ended before `U` started. (An upload of `F` that *started* before `U` may well
//!   commit after it, by resuming after a cut: that is a legitimate overwrite, not a loss.)
//! - **[`Rule::NoOverwriteReplaced`]**: if every upload of `F` asked not to overwrite, no
//!   acknowledged upload `U` of another version of `N` was acknowledged before all of them
//!   started: a create-only upload cannot have committed over a file that already existed.
//!
//! Each rule reports a violation only when every way the visible bytes could have come about
//! breaks it, so a run without server bugs reports none, whatever the timing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::ledger::{Outcome, UploadRecord};
use crate::content::ContentId;

/// What a visible file was found to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// Exactly the bytes of these versions sent to its name (more than one only when their
    /// bytes are equal).
    Versions(BTreeSet<ContentId>),
    /// No version sent to its name; the text says what it resembles.
    Unknown(String),
}

/// Which promise a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Rule {
    /// A visible file is not one whole version sent to its name.
    NotAVersion,
    /// A visible file is a version whose every upload was refused.
    RefusedVisible,
    /// An acknowledged upload's name is not visible.
    AckedLost,
    /// An acknowledged upload was replaced by a version committed before it.
    AckedReplacedByEarlier,
    /// A create-only upload replaced a file that existed.
    NoOverwriteReplaced,
    /// A visible file shares its inode with another file (a staged upload, after a restart).
    SharedInode,
    /// The server's listing differs from the files in the root.
    ListingDiffers,
    /// A download through the server differs from the file in the root.
    ServedDiffers,
    /// An interrupted upload did not complete on its rerun, or left the wrong bytes.
    RerunFailed,
}

/// One broken promise, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The promise.
    pub rule: Rule,
    /// The file's name.
    pub name: String,
    /// What was found, in words.
    pub detail: String,
    /// When it was found ("after kill 17, before the restart", …).
    pub when: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VIOLATION {:?} {:?} ({}): {}",
            self.rule, self.name, self.when, self.detail
        )
    }
}

/// Checks the ledger's promises against the visible files (`visible`: every visible name and
/// what it holds). `when` labels the violations found.
pub fn judge(
    records: &[UploadRecord],
    visible: &BTreeMap<String, Match>,
    when: &str,
) -> Vec<Violation> {
    let mut by_name: BTreeMap<&str, Vec<&UploadRecord>> = BTreeMap::new();
    for record in records {
        by_name.entry(&record.name).or_default().push(record);
    }
    let mut violations = Vec::new();
    let mut violation = |rule, name: &str, detail: String| {
        violations.push(Violation {
            rule,
            name: name.to_owned(),
            detail,
            when: when.to_owned(),
        });
    };
    for (name, found) in visible {
        let uploads = by_name.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        let versions = match found {
            Match::Unknown(what) => {
                violation(Rule::NotAVersion, name, what.clone());
                continue;
            }
            Match::Versions(versions) => versions,
        };
        let of_file: Vec<&UploadRecord> = uploads
            .iter()
            .copied()
            .filter(|r| versions.contains(&r.content))
            .collect();
        if of_file.is_empty() {
            violation(
                Rule::NotAVersion,
                name,
                format!(
                    "holds {} but no upload of it was sent to this name",
                    show(versions)
                ),
            );
            continue;
        }
        if of_file
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Refused { .. }))
        {
            violation(
                Rule::RefusedVisible,
                name,
                format!(
                    "holds {}, whose {} upload(s) were all refused as existing",
                    show(versions),
                    of_file.len()
                ),
            );
        }
        for acked in uploads.iter().filter(|r| !versions.contains(&r.content)) {
            let Some(acked_at) = acked.acked_at() else {
                continue;
            };
            if of_file
                .iter()
                .all(|r| r.commit_deadline().is_some_and(|end| end < acked.started))
            {
                violation(
                    Rule::AckedReplacedByEarlier,
                    name,
                    format!(
                        "holds {}, every upload of which ended (last at tick {}) before the \
                         acknowledged upload of {} started (tick {}): that acknowledged file \
                         was lost",
                        show(versions),
                        of_file
                            .iter()
                            .filter_map(|r| r.commit_deadline())
                            .max()
                            .map_or(0, |t| t.0),
                        show_one(&acked.content),
                        acked.started.0
                    ),
                );
            }
            if of_file.iter().all(|r| !r.overwrite && acked_at < r.started) {
                violation(
                    Rule::NoOverwriteReplaced,
                    name,
                    format!(
                        "holds {}, uploaded without overwrite only, after {} was acknowledged \
                         (tick {}): a create-only upload replaced an existing file",
                        show(versions),
                        show_one(&acked.content),
                        acked_at.0
                    ),
                );
            }
        }
    }
    for (name, uploads) in &by_name {
        let acked = uploads.iter().filter(|r| r.acked_at().is_some()).count();
        if acked > 0 && !visible.contains_key(*name) {
            violation(
                Rule::AckedLost,
                name,
                format!("{acked} upload(s) of it were acknowledged, but no file has this name"),
            );
        }
    }
    violations
}

/// A version in words: its client, step and size.
pub fn show_one(content: &ContentId) -> String {
    format!(
        "version c{}/s{} ({} bytes)",
        content.client, content.step, content.size
    )
}

fn show(versions: &BTreeSet<ContentId>) -> String {
    match versions.len() {
        1 => versions.iter().map(show_one).collect(),
        n => format!(
            "one of {n} equal versions ({})",
            versions.iter().map(show_one).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::ledger::{Origin, Tick};

    fn content(step: u32) -> ContentId {
        ContentId {
            seed: 1,
            client: 0,
            step,
            size: 100 + u64::from(step),
        }
    }

    fn upload(step: u32, overwrite: bool, started: u64, outcome: Outcome) -> UploadRecord {
        UploadRecord {
            name: "n".into(),
            content: content(step),
            overwrite,
            origin: Origin::Load,
            started: Tick(started),
            outcome,
        }
    }

    fn acked(at: u64) -> Outcome {
        Outcome::Acked {
            at: Tick(at),
            resumed_from: 0,
            attempts: 1,
        }
    }

    fn interrupted(at: u64) -> Outcome {
        Outcome::Interrupted {
            at: Tick(at),
            error: "cut".into(),
        }
    }

    fn holding(step: u32) -> BTreeMap<String, Match> {
        BTreeMap::from([("n".into(), Match::Versions(BTreeSet::from([content(step)])))])
    }

    fn rules(records: &[UploadRecord], visible: &BTreeMap<String, Match>) -> Vec<Rule> {
        judge(records, visible, "test")
            .iter()
            .map(|v| v.rule)
            .collect()
    }

    #[test]
    fn the_last_acknowledged_overwrite_visible_breaks_nothing() {
        let records = [upload(1, true, 1, acked(2)), upload(2, true, 3, acked(4))];
        assert_eq!(rules(&records, &holding(2)), []);
    }

    #[test]
    fn an_earlier_version_back_after_a_later_ack_is_a_lost_ack() {
        let records = [upload(1, true, 1, acked(2)), upload(2, true, 3, acked(4))];
        assert_eq!(rules(&records, &holding(1)), [Rule::AckedReplacedByEarlier]);
    }

    #[test]
    fn an_interrupted_upload_that_started_first_may_commit_last() {
        // Version 1 started first, was cut, and its client may have resumed it after 2's ACK.
        let records = [
            upload(1, true, 1, interrupted(9)),
            upload(2, true, 3, acked(4)),
        ];
        assert_eq!(rules(&records, &holding(1)), []);
        // Acknowledged before 2 started, it cannot have committed after 2.
        let records = [upload(1, true, 1, acked(2)), upload(2, true, 3, acked(4))];
        assert_eq!(rules(&records, &holding(1)), [Rule::AckedReplacedByEarlier]);
    }

    #[test]
    fn a_create_only_upload_over_an_acknowledged_file_is_caught() {
        let records = [
            upload(1, true, 1, acked(2)),
            upload(2, false, 3, interrupted(5)),
        ];
        assert_eq!(rules(&records, &holding(2)), [Rule::NoOverwriteReplaced]);
        // Started before the ACK, it may have committed first (and then been replaced).
        let records = [
            upload(1, true, 2, acked(4)),
            upload(2, false, 1, interrupted(5)),
        ];
        assert_eq!(rules(&records, &holding(2)), []);
    }

    #[test]
    fn refused_versions_unknown_bytes_and_missing_names_are_caught() {
        let refused = Outcome::Refused {
            at: Tick(2),
            code: ferry_protocol::ErrorCode::AlreadyExists,
        };
        assert_eq!(
            rules(&[upload(1, false, 1, refused)], &holding(1)),
            [Rule::RefusedVisible]
        );
        let garbage = BTreeMap::from([("n".into(), Match::Unknown("short".into()))]);
        assert_eq!(
            rules(&[upload(1, true, 1, acked(2))], &garbage),
            [Rule::NotAVersion]
        );
        assert_eq!(
            rules(&[upload(1, true, 1, acked(2))], &BTreeMap::new()),
            [Rule::AckedLost]
        );
        assert_eq!(
            rules(&[upload(1, true, 1, acked(2))], &holding(7)),
            [Rule::NotAVersion]
        );
    }

    #[test]
    fn equal_versions_break_a_rule_only_if_all_of_them_do() {
        let mut records = [upload(1, true, 1, acked(2)), upload(2, true, 3, acked(4))];
        records[1].content.size = records[0].content.size;
        let both = BTreeSet::from([records[0].content, records[1].content]);
        let visible = BTreeMap::from([("n".into(), Match::Versions(both))]);
        // Both versions are acknowledged and visible bytes are both: nothing is lost.
        assert_eq!(rules(&records, &visible), []);
    }
}
