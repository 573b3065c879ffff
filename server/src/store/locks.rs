//! One upload per name at a time, and how a reconnecting client takes its own upload back.
//!
//! A second upload to a name that is being uploaded is refused with `InProgress`, unless it
//! comes from the same client file (same name and source tag): then it is almost surely the
//! same client reconnecting after a network cut the server has not noticed yet (no FIN, no
//! RST, so the old connection would otherwise hold the name until its idle timeout). The old
//! connection is asked to stand down; it checkpoints and releases the name, and the new one
//! resumes from that checkpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::store::PartialKey;
use crate::store::error::StorageError;

/// A way to wake a connection's driver (which may be waiting for input that never comes).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug)]
struct Holder {
    key: PartialKey,
    stand_down: Arc<StandDown>,
}

/// A newer connection's request that the holder stand down, and how to wake the holder.
#[derive(Default)]
struct StandDown {
    asked: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl std::fmt::Debug for StandDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandDown")
            .field("asked", &self.asked)
            .finish_non_exhaustive()
    }
}

impl StandDown {
    fn ask(&self) {
        self.asked.store(true, Ordering::Release);
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(wake) = waker {
            wake();
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    held: Mutex<HashMap<String, Holder>>,
    released: Condvar,
}

/// The names with an upload under way.
#[derive(Debug, Default, Clone)]
pub(crate) struct UploadLocks {
    inner: Arc<Inner>,
}

/// While held, no other upload to the same name can start. Released when dropped.
#[derive(Debug)]
pub(crate) struct NameLock {
    inner: Arc<Inner>,
    name: String,
    stand_down: Arc<StandDown>,
}

impl NameLock {
    /// Whether a newer connection for the same client file asked this upload to stop.
    pub(crate) fn is_superseded(&self) -> bool {
        self.stand_down.asked.load(Ordering::Acquire)
    }

    /// Calls `wake` when a newer connection asks this upload to stop (at once if one has).
    pub(crate) fn when_superseded(&self, wake: Waker) {
        *self
            .stand_down
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&wake));
        if self.is_superseded() {
            wake();
        }
    }
}

impl Drop for NameLock {
    fn drop(&mut self) {
        let mut held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.name);
        self.inner.released.notify_all();
    }
}

impl UploadLocks {
    fn held(&self) -> MutexGuard<'_, HashMap<String, Holder>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `name` for an upload of the partial `key`. If an upload of the same key holds it,
    /// asks that one to stand down and waits up to `takeover` for it; any other holder means
    /// `InProgress`.
    pub(crate) fn lock(
        &self,
        name: &str,
        key: &PartialKey,
        takeover: Duration,
    ) -> Result<NameLock, StorageError> {
        let end = Instant::now() + takeover;
        let mut held = self.held();
        loop {
            match held.get(name) {
                None => {
                    let stand_down = Arc::new(StandDown::default());
                    held.insert(
                        name.to_owned(),
                        Holder {
                            key: key.clone(),
                            stand_down: Arc::clone(&stand_down),
                        },
                    );
                    return Ok(NameLock {
                        inner: Arc::clone(&self.inner),
                        name: name.to_owned(),
                        stand_down,
                    });
                }
                Some(holder) if holder.key == *key => {
                    holder.stand_down.ask();
                    let Some(left) = end.checked_duration_since(Instant::now()) else {
                        return Err(StorageError::InProgress);
                    };
                    held = self
                        .inner
                        .released
                        .wait_timeout(held, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                Some(_) => return Err(StorageError::InProgress),
            }
        }
    }

    /// How many names are held now.
    #[cfg(any(test, feature = "memory-store"))]
    pub(crate) fn held_count(&self) -> usize {
        self.held().len()
    }

    /// Runs `f` unless an upload holds a name for which `busy` is true, with no upload able to
    /// start meanwhile (a move holds this while it renames); returns what `f` returned, or
    /// `None` if such an upload is under way.
    pub(crate) fn unless_any<T>(
        &self,
        busy: impl Fn(&str) -> bool,
        f: impl FnOnce() -> T,
    ) -> Option<T> {
        let held = self.held();
        if held.keys().any(|name| busy(name)) {
            None
        } else {
            let result = f();
            drop(held);
            Some(result)
        }
    }

    /// Runs `f` unless an upload is using the partial `key`, with no upload able to start
    /// meanwhile; returns what `f` returned, or `None` if the partial is in use.
    pub(crate) fn unless_busy<T>(&self, key: &PartialKey, f: impl FnOnce() -> T) -> Option<T> {
        let held = self.held();
        if held.values().any(|holder| holder.key == *key) {
            None
        } else {
            let result = f();
            drop(held);
            Some(result)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_protocol::SourceTag;

    #[test]
    fn another_file_is_refused_while_the_name_is_held() {
        let locks = UploadLocks::default();
        let a = PartialKey::new("n", &SourceTag([1; 16]));
        let b = PartialKey::new("n", &SourceTag([2; 16]));
        let held = locks.lock("n", &a, Duration::ZERO).unwrap();
        assert!(matches!(
            locks.lock("n", &b, Duration::ZERO),
            Err(StorageError::InProgress)
        ));
        assert!(!held.is_superseded());
        drop(held);
        assert!(locks.lock("n", &b, Duration::ZERO).is_ok());
    }

    #[test]
    fn the_same_file_takes_the_name_over_once_the_holder_stands_down() {
        let locks = UploadLocks::default();
        let key = PartialKey::new("n", &SourceTag([1; 16]));
        let held = locks.lock("n", &key, Duration::ZERO).unwrap();
        let holder = std::thread::spawn(move || {
            while !held.is_superseded() {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(held);
        });
        assert!(locks.lock("n", &key, Duration::from_secs(20)).is_ok());
        holder.join().unwrap();
    }

    #[test]
    fn a_move_waits_for_no_upload_but_is_refused_by_one_under_way() {
        let locks = UploadLocks::default();
        let key = PartialKey::new("d/x", &SourceTag([1; 16]));
        let held = locks.lock("d/x", &key, Duration::ZERO).unwrap();
        assert_eq!(locks.unless_any(|name| name.starts_with("d/"), || 1), None);
        assert_eq!(locks.unless_any(|name| name == "e", || 2), Some(2));
        drop(held);
        assert_eq!(
            locks.unless_any(|name| name.starts_with("d/"), || 3),
            Some(3)
        );
    }

    #[test]
    fn busy_partials_are_spared() {
        let locks = UploadLocks::default();
        let key = PartialKey::new("n", &SourceTag([1; 16]));
        let _held = locks.lock("n", &key, Duration::ZERO).unwrap();
        assert_eq!(locks.unless_busy(&key, || 1), None);
        let other = PartialKey::new("m", &SourceTag([1; 16]));
        assert_eq!(locks.unless_busy(&other, || 1), Some(1));
    }
}
