//! What an upload that may not overwrite makes of a file already stored under its name.
//!
//! A `put` refused because the name exists has nothing left to do when the stored file holds
//! the same bytes: same size and same BLAKE3 digest. This is the usual case after a lost `ACK`
//! (the server committed, the client never heard) and the next run puts the same file again.
//! The rule lives here, apart from the socket: [`judge`] takes what `QUERY` reported and the
//! local size, and asks for the local digest (a full read of the file) only when the sizes
//! match and the server has a digest to compare it with.

use ferry_protocol::Digest;

use crate::error::ClientError;

/// What the server reported holding under a name (`QUERY_REPLY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredFile {
    /// Size of the stored file, if one is stored.
    pub(crate) size: Option<u64>,
    /// Its digest, if the server knows it for exactly this version.
    pub(crate) digest: Option<Digest>,
}

/// How the stored file compares with the one being uploaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Same size and digest: the upload's bytes are stored already.
    Identical(Digest),
    /// A different size or digest, or no file at all any more (removed since the refusal).
    Different,
    /// Same size, but the server knows no digest for it, so it cannot be confirmed identical.
    Unconfirmed,
}

/// Compares the stored file with a local one of `local_size` bytes. `local_digest` is called
/// at most once, and only when the sizes match and the server reported a digest.
pub(crate) fn judge(
    stored: StoredFile,
    local_size: u64,
    local_digest: impl FnOnce() -> Result<Digest, ClientError>,
) -> Result<Existing, ClientError> {
    if stored.size != Some(local_size) {
        return Ok(Existing::Different);
    }
    let Some(stored_digest) = stored.digest else {
        return Ok(Existing::Unconfirmed);
    };
    let local = local_digest()?;
    Ok(if local == stored_digest {
        Existing::Identical(local)
    } else {
        Existing::Different
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A local digest source that counts how often it is asked.
    fn counted(digest: Digest, calls: &Cell<u32>) -> impl FnOnce() -> Result<Digest, ClientError> {
        move || {
            calls.set(calls.get() + 1);
            Ok(digest)
        }
    }

    #[test]
    fn same_size_and_digest_is_identical() {
        let digest = Digest::of(b"hello");
        let calls = Cell::new(0);
        let stored = StoredFile {
            size: Some(5),
            digest: Some(digest),
        };
        assert_eq!(
            judge(stored, 5, counted(digest, &calls)).unwrap(),
            Existing::Identical(digest)
        );
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn same_size_and_another_digest_is_different() {
        let calls = Cell::new(0);
        let stored = StoredFile {
            size: Some(5),
            digest: Some(Digest::of(b"hello")),
        };
        assert_eq!(
            judge(stored, 5, counted(Digest::of(b"world"), &calls)).unwrap(),
            Existing::Different
        );
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn another_size_is_different_without_reading_the_local_file() {
        let calls = Cell::new(0);
        let stored = StoredFile {
            size: Some(4),
            digest: Some(Digest::of(b"hell")),
        };
        assert_eq!(
            judge(stored, 5, counted(Digest::of(b"hello"), &calls)).unwrap(),
            Existing::Different
        );
        assert_eq!(calls.get(), 0);
    }

    #[test]
    fn a_file_removed_since_the_refusal_is_different() {
        let calls = Cell::new(0);
        let stored = StoredFile {
            size: None,
            digest: None,
        };
        assert_eq!(
            judge(stored, 0, counted(Digest::of(b""), &calls)).unwrap(),
            Existing::Different
        );
        assert_eq!(calls.get(), 0);
    }

    #[test]
    fn same_size_without_a_stored_digest_is_unconfirmed_without_reading_the_local_file() {
        let calls = Cell::new(0);
        let stored = StoredFile {
            size: Some(5),
            digest: None,
        };
        assert_eq!(
            judge(stored, 5, counted(Digest::of(b"hello"), &calls)).unwrap(),
            Existing::Unconfirmed
        );
        assert_eq!(calls.get(), 0);
    }

    #[test]
    fn a_local_read_error_is_reported() {
        let stored = StoredFile {
            size: Some(5),
            digest: Some(Digest::of(b"hello")),
        };
        let result = judge(stored, 5, || {
            Err(ClientError::SourceChanged {
                name: "f".into(),
                reason: "it shrank".into(),
            })
        });
        assert!(
            matches!(result, Err(ClientError::SourceChanged { .. })),
            "{result:?}"
        );
    }
}
