//! The in-memory store's time: a value its owner hands in, never the operating system's clock,
//! so a simulated run gives the same listing dates and the same staging sweeps every time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_protocol::Timestamp;

/// Where a [`crate::store::memory::MemoryStore`] reads the time: microseconds since an epoch
/// its owner chooses (listings report it as milliseconds since the Unix epoch).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// A clock a test or a simulator sets by hand. Clones share one time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start.as_micros())))
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::Acquire))
    }

    /// Sets the time.
    pub fn set(&self, now: Timestamp) {
        self.0.store(now.as_micros(), Ordering::Release);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }

    /// A [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        let shared = self.clone();
        Arc::new(move || shared.now())
    }
}
