//! A move in the in-memory store: the folder store's rules (`store::moves`), applied to the
//! map of visible files under the machine's lock, so every reader sees the old names or the
//! new ones; durable at once, like a removal.

use crate::confined::Kind;
use crate::store::error::StorageError;
use crate::store::memory::{MemoryStore, disk::Disk};
use crate::store::moves::{check_names, check_target, is_at_or_under};

/// What `name` is on `disk`: a file, a folder (files under `name/`), or nothing.
fn kind_of(disk: &Disk, name: &str) -> Option<Kind> {
    if disk.files.contains_key(name) {
        return Some(Kind::File);
    }
    let folder = format!("{name}/");
    disk.files
        .range(folder.clone()..)
        .next()
        .is_some_and(|(other, _)| other.starts_with(&folder))
        .then_some(Kind::Folder)
}

/// Gives `from` (a file, or every file under the folder `from`) the name `to`.
pub(super) fn rename(
    store: &MemoryStore,
    from: &str,
    to: &str,
    overwrite: bool,
) -> Result<(), StorageError> {
    check_names(from, to)?;
    // Never the locks' mutex under the machine's: a sweep takes them the other way round.
    let locks = store.machine().locks.clone();
    let busy = |held: &str| is_at_or_under(held, from) || is_at_or_under(held, to);
    let moved = locks.unless_any(busy, || {
        let mut machine = store.enter("moving a file")?;
        let disk = &mut machine.disk;
        let moving = kind_of(disk, from).ok_or_else(|| StorageError::NotFound(from.to_owned()))?;
        if moving == Kind::File {
            disk.check_place(from)?;
        }
        let there = kind_of(disk, to);
        check_target(to, moving, there, overwrite)?;
        if there.is_none() {
            // A folder on the way that is a file.
            disk.check_place(to)?;
        }
        let names: Vec<String> = match moving {
            Kind::Folder => disk
                .files
                .range(format!("{from}/")..)
                .take_while(|(name, _)| name.starts_with(&format!("{from}/")))
                .map(|(name, _)| name.clone())
                .collect(),
            _ => vec![from.to_owned()],
        };
        let mut replaced = 0;
        for old in names {
            let new = format!("{to}{}", &old[from.len()..]);
            if let Some(file) = disk.files.remove(&old)
                && let Some(gone) = disk.files.insert(new, file)
            {
                replaced += gone.bytes.len() as u64;
            }
        }
        machine.usage.release(replaced);
        Ok(())
    });
    moved.ok_or(StorageError::InProgress)?
}
