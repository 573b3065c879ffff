//! Test-only crash points: ferryd aborts at a named step of a commit, so tests can show that a
//! crash there never changes a file a client was told is stored.
//!
//! In builds with debug assertions (the tests' builds), `FERRYD_CRASH_AT=<step>` makes the
//! process abort when it reaches that step: no destructor runs and nothing more reaches the
//! disk, as with `kill -9`. `FERRYD_COMMIT_BY_LINK=1` makes a commit that must not replace a
//! name take the path of file systems without `RENAME_NOREPLACE` (a hard link, then the staged
//! name removed), so its steps can be crashed at too. In release builds neither is read.

/// A step of a folder-store commit (or of a move), in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitStep {
    /// The digest record of the new file is written (on the staged file, or beside it).
    DigestRecorded,
    /// The staged data (and the record it holds) is durable.
    Synced,
    /// The staged file was renamed to its name.
    Renamed,
    /// The staged file was hard-linked to its name (file systems without `RENAME_NOREPLACE`).
    Linked,
    /// The staged name of a linked file was removed.
    StagedNameRemoved,
    /// The folder holding the new name is synced: the file is durable and visible.
    FolderSynced,
    /// A move wrote the digest records under the new names.
    MoveRecorded,
    /// A move renamed the file or folder.
    MoveRenamed,
    /// A move synced both folders: the new name is durable.
    MoveSynced,
}

impl CommitStep {
    /// The step's name, as `FERRYD_CRASH_AT` gives it (read only by debug builds).
    #[cfg(debug_assertions)]
    pub(crate) const fn name(self) -> &'static str {
        match self {
            CommitStep::Synced => "after-fsync",
            CommitStep::DigestRecorded => "after-digest",
            CommitStep::Renamed => "after-rename",
            CommitStep::Linked => "after-link",
            CommitStep::StagedNameRemoved => "after-unlink",
            CommitStep::FolderSynced => "after-folder-sync",
            CommitStep::MoveRecorded => "move-after-digest",
            CommitStep::MoveRenamed => "move-after-rename",
            CommitStep::MoveSynced => "move-after-sync",
        }
    }
}

/// Aborts the process here if a test asked to crash at `step`.
pub(crate) fn reach(step: CommitStep) {
    #[cfg(debug_assertions)]
    if std::env::var("FERRYD_CRASH_AT").is_ok_and(|at| at == step.name()) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// Whether a test asked for commits by hard link instead of `RENAME_NOREPLACE`.
pub(crate) fn commit_by_link() -> bool {
    cfg!(debug_assertions) && std::env::var_os("FERRYD_COMMIT_BY_LINK").is_some()
}
