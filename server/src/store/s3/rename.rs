//! A move in the S3 backend. S3 has no rename: a file is copied to its new name (CopyObject,
//! pinned to the version read, and refusing an existing name unless overwriting), its digest
//! record follows, then the old object is deleted.
//!
//! What a reader sees: the new name shows the old content or the new, whole (a copy appears at
//! once or not at all), but between the copy and the delete the file is under **both** names
//! (a listing shows it twice, a download of the old name still succeeds). A crash or an error
//! between the two leaves both names, never neither; moving again finishes the job. A folder
//! would be one copy and one delete per file, visible half-moved for as long as that takes,
//! so it is refused.

use crate::store::error::StorageError;
use crate::store::moves::{check_names, is_at_or_under};
use crate::store::s3::record::{DIGESTS_DIR, record_key};
use crate::store::s3::store::s3_error;
use crate::store::s3::{PutCondition, S3Error, S3Store};

/// Gives the file `from` the name `to`: copy, digest record, delete.
pub(super) fn rename(
    store: &S3Store,
    from: &str,
    to: &str,
    overwrite: bool,
) -> Result<(), StorageError> {
    check_names(from, to)?;
    let Some(object) = store.head(from)? else {
        // `from` may still be a folder: say why it does not move.
        let inside = store
            .client()
            .list_page(&store.key(&format!("{from}/")), None, 1)
            .map_err(s3_error("looking up a folder"))?;
        if !inside.objects.is_empty() {
            return Err(StorageError::Unsupported {
                what: "moving a folder",
                reason: "an object store has no rename, so its files would be copied one by \
                         one and seen half-moved; move the files one at a time",
            });
        }
        return Err(StorageError::NotFound(from.to_owned()));
    };
    store.check_tree(to)?;
    let target = store.head(to)?;
    if target.is_some() && !overwrite {
        return Err(StorageError::NameTaken {
            name: to.to_owned(),
            reason: "already exists; use --overwrite to replace it",
        });
    }
    // An upload under way to either name (on this node, or holding its record on another).
    for name in [from, to] {
        if let Some((_, Some(record))) = store.read_upload_record(name)?
            && store.is_held(&record)
        {
            return Err(StorageError::InProgress);
        }
    }
    let busy = |held: &str| is_at_or_under(held, from) || is_at_or_under(held, to);
    let condition = if overwrite {
        PutCondition::Always
    } else {
        PutCondition::IfAbsent
    };
    let copied = store.locks.unless_any(busy, || {
        store
            .client()
            .copy(&object.key, &object.etag, &store.key(to), condition)
    });
    let etag = match copied {
        None => return Err(StorageError::InProgress),
        Some(Ok(etag)) => etag,
        Some(Err(S3Error::PreconditionFailed)) if !overwrite => {
            return Err(StorageError::NameTaken {
                name: to.to_owned(),
                reason: "already exists (it appeared while moving); nothing was moved",
            });
        }
        Some(Err(S3Error::PreconditionFailed | S3Error::NotFound)) => {
            return Err(StorageError::NotFound(from.to_owned()));
        }
        Some(Err(error)) => return Err(s3_error("copying a file to its new name")(error)),
    };
    if let Some(digest) = store.read_digest(from, &object.etag)
        && let Err(error) = store.write_digest(to, &etag, &digest)
    {
        // Only a shortcut is lost: the next download computes the digest.
        tracing::warn!(name = to, "could not move a digest record: {error}");
    }
    store
        .client()
        .delete(&object.key)
        .map_err(s3_error("removing a moved file's old name"))?;
    let _ = store
        .client()
        .delete(&store.key(&record_key(DIGESTS_DIR, from)));
    Ok(())
}
