//! What the in-memory store can be told to do wrong, and what each fault looks like to its
//! caller: a disk that fills up, a store that answers slowly, a store that is lost. (A power cut
//! is an event, not a standing fault: [`crate::store::memory::MemoryStore::crash`].)
//!
//! Two more are sabotage, not faults of the world: they make the store break its own promises
//! ([`Faults::corrupt_commits`], [`Faults::volatile_commits`]), so the simulator's tests can show
//! that a store which lies to its clients is caught. Nothing else sets them.
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
    /// **Sabotage, for the simulator's tests only.** A commit flips the lowest bit of byte
    /// [`CORRUPTED_BYTE`] of the file (files longer than that) after its digest was checked: the
    /// client is told `ACK` and the store holds bytes it never sent.
    pub corrupt_commits: bool,
    /// **Sabotage, for the simulator's tests only.** A commit makes the file visible but not
    /// durable (the `ACK` goes out before the sync): the next
    /// [`crate::store::memory::MemoryStore::crash`] takes the name back to what it showed before.
    pub volatile_commits: bool,
}

/// The byte [`Faults::corrupt_commits`] flips: the first of the second hash unit, so a resumed
/// download can still start cleanly before it.
pub const CORRUPTED_BYTE: u64 = ferry_protocol::HASH_UNIT_LEN;

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

/// What [`Faults::corrupt_commits`] does to a file's bytes as it is committed.
pub(super) fn corrupt(data: &mut [u8]) {
    if let Some(byte) = usize::try_from(CORRUPTED_BYTE)
        .ok()
        .and_then(|at| data.get_mut(at))
    {
        *byte ^= 1;
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
    fn corruption_flips_one_bit_of_the_chosen_byte_and_spares_short_files() {
        let at = CORRUPTED_BYTE as usize;
        let mut long = vec![0u8; at + 2];
        corrupt(&mut long);
        assert_eq!(long.iter().filter(|b| **b != 0).count(), 1);
        assert_eq!(long[at], 1);
        let mut short = vec![0u8; at];
        corrupt(&mut short);
        assert!(short.iter().all(|b| *b == 0));
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
