//! The scrub's rate limit: a token bucket over bytes read, so that a scrub can run beside live
//! traffic without taking the whole disk or network.
//!
//! Sans-IO like the protocol machines: the bucket is told the time ([`Timestamp`]) and answers
//! how long the caller must wait; the walk sleeps. So its tests jump the clock instead of
//! sleeping.
//!
//! The bucket starts empty and is refilled at the rate, holding at most [`BURST`]'s worth of
//! bytes while the reader is idle. A read may overdraw it; the caller then waits until the
//! debt is paid. Hence the guarantee the tests rely on: `B` bytes never get through in less
//! than `B / rate`.

use std::num::NonZeroU64;
use std::time::Duration;

use ferry_protocol::Timestamp;

/// Most idle time the bucket saves up: after a pause (a slow listing, a small file's open),
/// reading may go this much ahead of the rate, and no further.
pub(crate) const BURST: Duration = Duration::from_millis(250);

/// Microseconds per second: the bucket counts in byte-microseconds so that integer arithmetic
/// is exact at any rate.
const MICROS: u128 = 1_000_000;

/// A token bucket of bytes, refilled at `rate` bytes per second.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Bytes per second.
    rate: u128,
    /// Credit in byte-microseconds (bytes × 10⁶); negative while a read overdrew it.
    credit: i128,
    /// Most credit saved up, in byte-microseconds.
    cap: i128,
    /// When the credit was last brought up to date.
    last: Timestamp,
}

impl RateLimiter {
    /// An empty bucket refilled at `rate` bytes per second from `now`.
    pub(crate) fn new(rate: NonZeroU64, now: Timestamp) -> Self {
        let rate = u128::from(rate.get());
        let cap = rate.saturating_mul(BURST.as_micros());
        RateLimiter {
            rate,
            credit: 0,
            cap: i128::try_from(cap).unwrap_or(i128::MAX),
            last: now,
        }
    }

    /// Takes `bytes` just read at `now`; returns how long to wait before reading more (zero
    /// when the bucket had enough).
    #[must_use]
    pub(crate) fn handle_read(&mut self, bytes: u64, now: Timestamp) -> Duration {
        let elapsed = now.saturating_since(self.last).as_micros();
        self.last = self.last.max(now);
        let refill = i128::try_from(elapsed.saturating_mul(self.rate)).unwrap_or(i128::MAX);
        self.credit = self.credit.saturating_add(refill).min(self.cap);
        let taken = i128::from(bytes).saturating_mul(MICROS as i128);
        self.credit = self.credit.saturating_sub(taken);
        if self.credit >= 0 {
            return Duration::ZERO;
        }
        // Paying back the debt takes debt / rate microseconds, rounded up.
        let debt = self.credit.unsigned_abs();
        let wait = debt.div_ceil(self.rate);
        Duration::from_micros(u64::try_from(wait).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    fn rate(bytes_per_second: u64) -> NonZeroU64 {
        NonZeroU64::new(bytes_per_second).unwrap()
    }

    #[test]
    fn a_fresh_bucket_makes_the_first_read_wait_its_share() {
        let mut bucket = RateLimiter::new(rate(1000), at_ms(0));
        assert_eq!(bucket.handle_read(1000, at_ms(0)), Duration::from_secs(1));
        // Once the wait is over the debt is paid: the next 500 bytes cost half a second.
        assert_eq!(
            bucket.handle_read(500, at_ms(1000)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn waits_add_up_to_bytes_over_rate_when_the_reader_sleeps_as_told() {
        let mut bucket = RateLimiter::new(rate(3_000_000), at_ms(0));
        let mut now = at_ms(0);
        let mut total = 0u64;
        for read in [65_536u64, 1, 262_144, 7, 1_000_000, 4096] {
            now = now + bucket.handle_read(read, now);
            total += read;
        }
        // The reader finished exactly when the last byte was paid for.
        let expected = Duration::from_micros((total * 1_000_000).div_ceil(3_000_000));
        let elapsed = now.saturating_since(at_ms(0));
        assert!(
            elapsed >= expected && elapsed <= expected + Duration::from_micros(6),
            "{elapsed:?} for {total} bytes, expected {expected:?}"
        );
    }

    #[test]
    fn idle_time_is_saved_only_up_to_the_burst() {
        let mut bucket = RateLimiter::new(rate(1000), at_ms(0));
        // Ten idle seconds save only 250 ms worth: 250 bytes go at once, the rest wait.
        assert_eq!(bucket.handle_read(250, at_ms(10_000)), Duration::ZERO);
        assert_eq!(
            bucket.handle_read(100, at_ms(10_000)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn reads_within_the_saved_credit_do_not_wait() {
        let mut bucket = RateLimiter::new(rate(1000), at_ms(0));
        assert_eq!(bucket.handle_read(100, at_ms(100)), Duration::ZERO);
        assert_eq!(bucket.handle_read(100, at_ms(200)), Duration::ZERO);
        assert_eq!(
            bucket.handle_read(101, at_ms(300)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn a_clock_going_backwards_gives_no_credit() {
        let mut bucket = RateLimiter::new(rate(1000), at_ms(5000));
        assert_eq!(
            bucket.handle_read(100, at_ms(1000)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn huge_rates_and_reads_do_not_overflow() {
        let mut bucket = RateLimiter::new(rate(u64::MAX), at_ms(0));
        // Long idle saves a quarter second's worth; the rest of a second's worth waits.
        assert_eq!(
            bucket.handle_read(u64::MAX, at_ms(u64::MAX / 1000)),
            Duration::from_millis(750)
        );
        let mut slow = RateLimiter::new(rate(1), at_ms(0));
        assert_eq!(
            slow.handle_read(u64::MAX, at_ms(0)),
            Duration::from_micros(u64::MAX)
        );
    }
}
