//! What a sync will do, decided from the two sides' file lists: the rule, without the I/O.
//!
//! A file only on the source is sent; one whose size differs is sent; one of the same size is
//! compared by BLAKE3 digest (the caller looks the digests up: the source's and destination's)
//! and skipped only when both are known and equal. A file only on the destination is deleted
//! when asked to, and left alone otherwise.

use ferry_protocol::Digest;

/// Which way a sync copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncDirection {
    /// From a local folder to a server folder.
    Upload,
    /// From a server folder to a local folder.
    Download,
}

/// Why a file is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendReason {
    /// The destination has no such file.
    New,
    /// The destination's file has another size.
    SizeDiffers,
    /// Same size, another digest.
    DigestDiffers,
    /// Same size, but the server does not know its stored file's digest, so the two cannot
    /// be compared: sent to be sure.
    DigestUnknown,
}

/// What happens to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncAction {
    /// Copied from the source to the destination, replacing what is there.
    Send(SendReason),
    /// Already the same on both sides (size and digest): nothing is sent.
    Skip,
    /// Only on the destination, and `delete` was asked for: removed there.
    Delete,
}

/// One file of a sync: its path relative to both folders, its size on the source (on the
/// destination, for a deletion) and what happens to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncItem {
    /// Path relative to the synced folders, with `/`.
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
    /// What happens to it.
    pub action: SyncAction,
}

/// A file on one side, as the comparison needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideFile {
    /// Path relative to the synced folder.
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
}

/// The first look at a pair of file lists: actions decided by names and sizes alone, and the
/// files that need their digests compared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Files whose fate is already known.
    pub decided: Vec<SyncItem>,
    /// Files of the same size on both sides: compare their digests with [`by_digest`].
    pub same_size: Vec<SideFile>,
}

/// Compares the `source` and `destination` lists (each sorted by path or not; paths unique).
/// Files only on the destination become deletions if `delete`, else nothing.
pub fn compare(source: &[SideFile], destination: &[SideFile], delete: bool) -> Comparison {
    let on_destination: std::collections::HashMap<&str, u64> = destination
        .iter()
        .map(|f| (f.relative.as_str(), f.size))
        .collect();
    let mut comparison = Comparison::default();
    for file in source {
        let reason = match on_destination.get(file.relative.as_str()) {
            None => SendReason::New,
            Some(&size) if size != file.size => SendReason::SizeDiffers,
            Some(_) => {
                comparison.same_size.push(file.clone());
                continue;
            }
        };
        comparison.decided.push(SyncItem {
            relative: file.relative.clone(),
            size: file.size,
            action: SyncAction::Send(reason),
        });
    }
    if delete {
        let on_source: std::collections::HashSet<&str> =
            source.iter().map(|f| f.relative.as_str()).collect();
        comparison.decided.extend(
            destination
                .iter()
                .filter(|f| !on_source.contains(f.relative.as_str()))
                .map(|f| SyncItem {
                    relative: f.relative.clone(),
                    size: f.size,
                    action: SyncAction::Delete,
                }),
        );
    }
    comparison
}

/// The fate of a same-size file from the server's digest (`None`: unknown to it) and the
/// local one.
pub fn by_digest(server: Option<Digest>, local: Digest) -> SyncAction {
    match server {
        None => SyncAction::Send(SendReason::DigestUnknown),
        Some(server) if server == local => SyncAction::Skip,
        Some(_) => SyncAction::Send(SendReason::DigestDiffers),
    }
}

/// Puts sends first (in path order), then skips, then deletions: deletions only run once
/// every send has succeeded.
pub fn order(items: &mut [SyncItem]) {
    let rank = |item: &SyncItem| match item.action {
        SyncAction::Send(_) => 0,
        SyncAction::Skip => 1,
        SyncAction::Delete => 2,
    };
    items.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.relative.cmp(&b.relative)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(files: &[(&str, u64)]) -> Vec<SideFile> {
        files
            .iter()
            .map(|(relative, size)| SideFile {
                relative: (*relative).to_owned(),
                size: *size,
            })
            .collect()
    }

    #[test]
    fn new_and_resized_files_are_sent_and_same_sized_ones_wait_for_their_digests() {
        let source = side(&[("new", 1), ("grew", 5), ("same", 3)]);
        let destination = side(&[("grew", 4), ("same", 3), ("extra", 9)]);
        let comparison = compare(&source, &destination, false);
        let actions: Vec<_> = comparison
            .decided
            .iter()
            .map(|i| (i.relative.as_str(), i.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("new", SyncAction::Send(SendReason::New)),
                ("grew", SyncAction::Send(SendReason::SizeDiffers)),
            ]
        );
        assert_eq!(comparison.same_size, side(&[("same", 3)]));
    }

    #[test]
    fn files_only_on_the_destination_are_deleted_only_when_asked() {
        let source = side(&[("a", 1)]);
        let destination = side(&[("a", 1), ("gone", 2)]);
        assert!(compare(&source, &destination, false).decided.is_empty());
        let deleting = compare(&source, &destination, true);
        assert_eq!(
            deleting.decided,
            [SyncItem {
                relative: "gone".into(),
                size: 2,
                action: SyncAction::Delete
            }]
        );
    }

    #[test]
    fn a_same_size_file_is_skipped_only_when_both_digests_are_known_and_equal() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(by_digest(Some(a), a), SyncAction::Skip);
        assert_eq!(
            by_digest(Some(a), b),
            SyncAction::Send(SendReason::DigestDiffers)
        );
        assert_eq!(
            by_digest(None, a),
            SyncAction::Send(SendReason::DigestUnknown)
        );
    }

    #[test]
    fn sends_come_before_deletions() {
        let item = |relative: &str, action| SyncItem {
            relative: relative.into(),
            size: 0,
            action,
        };
        let mut items = vec![
            item("a", SyncAction::Delete),
            item("c", SyncAction::Skip),
            item("b", SyncAction::Send(SendReason::New)),
        ];
        order(&mut items);
        let names: Vec<_> = items.iter().map(|i| i.relative.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
    }
}
