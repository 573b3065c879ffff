//! Time as a value passed in by the driver: the machines never read a clock (PROTOCOL.md §9).

use std::ops::Add;
use std::time::Duration;

/// A point in time, in microseconds since an epoch the driver chooses (its start, say).
///
/// Drivers convert `Instant` at their boundary; the simulator and fuzzers build these from
/// integers, which keeps every run reproducible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, rhs: Duration) -> Timestamp {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addition_saturates_instead_of_overflowing() {
        let late = Timestamp::from_micros(u64::MAX - 1);
        assert_eq!(
            late + Duration::from_secs(1),
            Timestamp::from_micros(u64::MAX)
        );
        assert_eq!(Timestamp::ZERO.saturating_since(late), Duration::ZERO);
    }
}
