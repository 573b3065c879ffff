//! Space accounting: the quota over everything stored (the disk's free space is asked of the
//! root folder itself, [`crate::confined::Folder::free_space`]).
//!
//! `used` counts the bytes of every visible file and every partial upload on disk, plus, for
//! each upload under way, the bytes it has yet to receive (reserved when it was accepted). So
//! two uploads accepted at once can never together pass the quota.

use std::sync::{Mutex, PoisonError};

use crate::store::error::StorageError;

/// The quota's ledger.
#[derive(Debug)]
pub(crate) struct Usage {
    used: Mutex<u64>,
    quota: Option<u64>,
}

impl Usage {
    /// A ledger starting at `used` bytes.
    pub(crate) fn new(used: u64, quota: Option<u64>) -> Self {
        Usage {
            used: Mutex::new(used),
            quota,
        }
    }

    /// Bytes counted now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `need` more bytes if the quota allows them once `credit` bytes (a file the new
    /// one will replace) are freed.
    pub(crate) fn reserve(&self, need: u64, credit: u64) -> Result<(), StorageError> {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(quota) = self.quota
            && used.saturating_add(need).saturating_sub(credit) > quota
        {
            return Err(StorageError::OverQuota {
                need,
                used: *used,
                quota,
            });
        }
        *used = used.saturating_add(need);
        Ok(())
    }

    /// Counts `bytes` more whatever the quota (a file placed from outside the server).
    #[cfg(any(test, feature = "memory-store"))]
    pub(crate) fn add(&self, bytes: u64) {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_add(bytes);
    }

    /// Stops counting `bytes` (removed, or reserved and never written).
    pub(crate) fn release(&self, bytes: u64) {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(bytes);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_quota() {
        let usage = Usage::new(10, Some(100));
        assert!(usage.reserve(90, 0).is_ok());
        assert!(matches!(
            usage.reserve(1, 0),
            Err(StorageError::OverQuota { used: 100, .. })
        ));
        usage.release(50);
        assert!(usage.reserve(50, 0).is_ok());
        assert_eq!(usage.used(), 100);
        assert!(
            usage.reserve(30, 30).is_ok(),
            "a replaced file's bytes are credited"
        );
    }

    #[test]
    fn no_quota_means_no_limit() {
        let usage = Usage::new(0, None);
        assert!(usage.reserve(u64::MAX, 0).is_ok());
    }
}
