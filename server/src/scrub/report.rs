//! What a scrub found: a [`ScrubReport`] of every file that did not simply match, its text
//! lines for people and its JSON form for scripts, and the [`Progress`] told along the way.

use std::fmt;

use ferry_protocol::Digest;
use serde::{Serialize, Serializer};

/// The outcome of a whole scrub. Files that matched their recorded digest are only counted;
/// every other file has a [`Finding`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    /// Where the files are: a folder path or an `s3://` location.
    pub store: String,
    /// Files checked (including those that vanished during the scrub).
    pub files: u64,
    /// Bytes read and hashed.
    pub bytes: u64,
    /// Files whose content matched their recorded digest.
    pub matched: u64,
    /// Every file that did not match, in name order.
    pub findings: Vec<Finding>,
    /// How long the scrub took, in milliseconds.
    pub elapsed_ms: u64,
}

impl ScrubReport {
    /// Whether every file still present matched its recorded digest (a file removed during the
    /// scrub is no problem).
    pub fn is_clean(&self) -> bool {
        self.problems().next().is_none()
    }

    /// The findings that need an operator: mismatches, missing digests, unreadable files.
    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.kind.is_problem())
    }

    fn count(&self, which: fn(&FindingKind) -> bool) -> usize {
        self.findings.iter().filter(|f| which(&f.kind)).count()
    }
}

/// The summary line: what was read and how many of each finding.
impl fmt::Display for ScrubReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scrubbed {} files ({} bytes) of {} in {:.1} s: {} matched, {} mismatched, {} \
             without a recorded digest, {} unreadable, {} vanished during the scrub",
            self.files,
            self.bytes,
            self.store,
            self.elapsed_ms as f64 / 1000.0,
            self.matched,
            self.count(|k| matches!(k, FindingKind::Mismatch { .. })),
            self.count(|k| matches!(k, FindingKind::NoDigest { .. })),
            self.count(|k| matches!(k, FindingKind::Unreadable { .. })),
            self.count(|k| matches!(k, FindingKind::Vanished)),
        )
    }
}

/// One file that did not simply match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file's name in the store.
    pub name: String,
    /// Its size in bytes, as listed.
    pub size: u64,
    /// What was found.
    #[serde(flatten)]
    pub kind: FindingKind,
}

/// What a scrub found about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// The content no longer hashes to the digest recorded for exactly this version: its
    /// bytes changed without its size, date (folder store) or ETag (object store) changing,
    /// which is what bit rot looks like.
    Mismatch {
        /// The digest recorded when the file was stored (what the client sent).
        #[serde(serialize_with = "hex")]
        recorded: Digest,
        /// The digest of what is stored now.
        #[serde(serialize_with = "hex")]
        computed: Digest,
    },
    /// No digest is recorded for this version: the file was put there or changed outside
    /// ferryd (a folder file's size or date, an object's ETag, no longer match the record), or
    /// its record was lost. Nothing says whether its content is right.
    NoDigest {
        /// The digest of what is stored now, to compare with a copy (`b3sum`).
        #[serde(serialize_with = "hex")]
        computed: Digest,
    },
    /// The file could not be opened or read to its end.
    Unreadable {
        /// What failed.
        error: String,
    },
    /// The file was removed or replaced between the listing and its reading: not checked, and
    /// not a problem (a later scrub checks the new version).
    Vanished,
}

impl FindingKind {
    /// Whether this finding needs an operator (everything but [`FindingKind::Vanished`]).
    pub fn is_problem(&self) -> bool {
        !matches!(self, FindingKind::Vanished)
    }
}

/// One line per finding, with what to do about it.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Finding { name, size, kind } = self;
        match kind {
            FindingKind::Mismatch { recorded, computed } => write!(
                f,
                "MISMATCH {name:?} ({size} bytes): recorded {}, computed {}: its bytes changed \
                 since ferryd verified them; restore it from a good copy",
                recorded.to_hex(),
                computed.to_hex()
            ),
            FindingKind::NoDigest { computed } => write!(
                f,
                "NO DIGEST {name:?} ({size} bytes): none recorded for this version (put there \
                 or changed outside ferryd); computed {}: compare it with a copy",
                computed.to_hex()
            ),
            FindingKind::Unreadable { error } => {
                write!(f, "UNREADABLE {name:?} ({size} bytes): {error}")
            }
            FindingKind::Vanished => write!(
                f,
                "vanished {name:?}: removed or replaced during the scrub; not checked"
            ),
        }
    }
}

/// How far a scrub has got, told to the caller's progress function after every read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Files finished.
    pub files_done: u64,
    /// Files listed at the start.
    pub files_total: u64,
    /// Bytes read so far.
    pub bytes_done: u64,
    /// Bytes listed at the start.
    pub bytes_total: u64,
}

/// Progress as one line: `12/40 files, 1.5/10.0 MiB`.
impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: f64 = (1u64 << 20) as f64;
        write!(
            f,
            "{}/{} files, {:.1}/{:.1} MiB",
            self.files_done,
            self.files_total,
            self.bytes_done as f64 / MIB,
            self.bytes_total as f64 / MIB
        )
    }
}

/// A digest in JSON: lowercase hex, as `b3sum` prints it.
fn hex<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&digest.to_hex())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(findings: Vec<Finding>) -> ScrubReport {
        ScrubReport {
            store: "/srv/ferry".into(),
            files: 3,
            bytes: 30,
            matched: 3 - findings.len() as u64,
            findings,
            elapsed_ms: 1500,
        }
    }

    #[test]
    fn only_vanished_files_leave_a_report_clean() {
        let vanished = Finding {
            name: "gone".into(),
            size: 1,
            kind: FindingKind::Vanished,
        };
        assert!(report(vec![]).is_clean());
        assert!(report(vec![vanished.clone()]).is_clean());
        let unrecorded = Finding {
            name: "stray".into(),
            size: 1,
            kind: FindingKind::NoDigest {
                computed: Digest::of(b"x"),
            },
        };
        assert!(!report(vec![vanished, unrecorded]).is_clean());
    }

    #[test]
    fn json_names_the_finding_and_spells_digests_in_hex() {
        let recorded = Digest::of(b"good");
        let computed = Digest::of(b"rotten");
        let finding = Finding {
            name: "a/b".into(),
            size: 4,
            kind: FindingKind::Mismatch { recorded, computed },
        };
        let json = serde_json::to_value(report(vec![finding])).unwrap();
        assert_eq!(
            json["findings"][0],
            serde_json::json!({
                "name": "a/b",
                "size": 4,
                "finding": "mismatch",
                "recorded": recorded.to_hex(),
                "computed": computed.to_hex(),
            })
        );
        assert_eq!(json["matched"], 2);
        assert_eq!(json["store"], "/srv/ferry");
    }

    #[test]
    fn the_summary_counts_each_kind() {
        let findings = vec![
            Finding {
                name: "m".into(),
                size: 1,
                kind: FindingKind::Mismatch {
                    recorded: Digest::of(b"1"),
                    computed: Digest::of(b"2"),
                },
            },
            Finding {
                name: "v".into(),
                size: 1,
                kind: FindingKind::Vanished,
            },
        ];
        assert_eq!(
            report(findings).to_string(),
            "scrubbed 3 files (30 bytes) of /srv/ferry in 1.5 s: 1 matched, 1 mismatched, \
             0 without a recorded digest, 0 unreadable, 1 vanished during the scrub"
        );
    }
}
