//! What the in-memory store can be told to do wrong, and what each fault looks like to its
//! caller: a disk that fills up, a store that answers slowly, a store that is lost. (A power cut
//! is an event, not a standing fault: [`crate::store::memory::MemoryStore::crash`].)
//!
//! Every fault is deterministic: the same calls under the same plan fail at the same byte and
//! cost the same simulated time. Nothing here sleeps; a slow store reports the time its calls
//! would have taken ([`crate::store::memory::MemoryStore::poll_delay`]) and the simulator adds
//! it to its clock.

use std::io;
use std::time::Duration;

use crate::store::error::StorageError;

/// Bytes in a mebibyte, the unit of [`Faults::latency_per_mib`].
const MIB: u128 = 1024 * 1024;

/// The faults in force. Set them at any time with
/// [`crate::store::memory::MemoryStore::set_faults`]; the default is a healthy store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The disk fills up after this many more bytes of upload data: the write that crosses the
    /// line stores what fits and fails with [`StorageError::NoSpace`], as a full disk does for
    /// the folder store. Every write counts it down (read it back with
    /// [`crate::store::memory::MemoryStore::faults`]); `None` means no such limit.
    pub full_after: Option<u64>,
    /// Simulated time every call to the store costs.
    pub latency: Duration,
    /// Simulated time each mebibyte of file data written or read costs, on top of `latency`.
    pub latency_per_mib: Duration,
    /// The store is unreachable (a network share gone, a dead disk): every call fails with
    /// [`StorageError::Io`] saying so, and nothing it holds changes, until this is cleared.
    pub lost: bool,
}

impl Faults {
    /// The simulated time moving `bytes` bytes of file data costs, on top of the call's.
    pub(super) fn data_cost(&self, bytes: usize) -> Duration {
        let nanos = self
            .latency_per_mib
            .as_nanos()
            .saturating_mul(bytes as u128)
            / MIB;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// The error of a call to a store told it is lost.
pub(super) fn unreachable(during: &'static str) -> StorageError {
    StorageError::Io {
        during,
        source: unreachable_io(),
    }
}

/// The I/O error a read from a lost store gives.
pub(super) fn unreachable_io() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the storage is unreachable (the in-memory store was told it is lost); retry once it is back",
    )
}

/// The error of a call on an upload whose store crashed since the upload began.
pub(super) fn restarted(during: &'static str) -> StorageError {
    StorageError::Io {
        during,
        source: io::Error::other(
            "the storage restarted since this upload began; resume it with a new request",
        ),
    }
}

/// The error of a write that does not fit: the kind a full disk gives the folder store.
pub(super) fn no_space(during: &'static str) -> StorageError {
    StorageError::io(during)(io::Error::from(io::ErrorKind::StorageFull))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_costs_its_share_of_a_mebibyte() {
        let faults = Faults {
            latency_per_mib: Duration::from_millis(10),
            ..Faults::default()
        };
        assert_eq!(faults.data_cost(512 * 1024), Duration::from_millis(5));
        assert_eq!(faults.data_cost(0), Duration::ZERO);
        assert_eq!(Faults::default().data_cost(1 << 30), Duration::ZERO);
    }

    #[test]
    fn a_write_that_does_not_fit_is_the_folder_stores_no_space() {
        assert!(matches!(
            no_space("writing the staging file"),
            StorageError::NoSpace {
                during: "writing the staging file"
            }
        ));
    }
}
