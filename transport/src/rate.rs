//! [`TokenBucket`]: a rate limit as pure logic. It is told the time ([`Timestamp`]) and the
//! bytes that pass, and answers how long the caller must wait; the caller sleeps (see
//! [`Paced`](crate::Paced)). So its tests jump the clock instead of sleeping.
//!
//! The bucket starts empty and is refilled at the rate, holding at most `burst`'s worth of
//! bytes while nobody takes. A take may overdraw it; the taker then waits until the debt is
//! paid, and a second taker arriving meanwhile waits for the first one's debt too: takers are
//! served in the order they come, which shares the rate fairly among takers of equal slices.
//! Hence the guarantee the tests rely on: with no burst, `B` bytes never get through in less
//! than `B / rate`.
//!
//! A taker that overdrew the bucket and comes back within [`KEEP_LOST`] of its debt being paid
//! keeps that time: the driver spent it handing the previous bytes on (a session's write, an
//! event loop's pool), not idling, and without it every slice would lose that much and a busy
//! stream would fall a few per cent short of its rate. Only time that really passed is kept,
//! so `B` bytes still never pass in less than `B / rate` from the first take; a longer pause
//! counts as idle and saves nothing beyond `burst`.

use std::num::NonZeroU64;
use std::time::Duration;

use ferry_protocol::Timestamp;

/// Microseconds per second: the bucket counts in byte-microseconds so that integer arithmetic
/// is exact at any rate.
const MICROS: u128 = 1_000_000;

/// The longest gap between a paid debt and the next take that still counts as the same busy
/// stream (see the module docs): about one slice of [`Paced`](crate::Paced).
pub const KEEP_LOST: Duration = Duration::from_millis(50);

/// A token bucket of bytes, refilled at `rate` bytes per second.
#[derive(Debug)]
pub struct TokenBucket {
    /// Bytes per second.
    rate: u128,
    /// Credit in byte-microseconds (bytes × 10⁶); negative while a take overdrew it.
    credit: i128,
    /// Most credit saved up, in byte-microseconds.
    cap: i128,
    /// When the credit was last brought up to date.
    last: Timestamp,
}

impl TokenBucket {
    /// An empty bucket refilled at `rate` bytes per second from `now`, saving up at most
    /// `burst` worth of bytes while idle.
    pub fn new(rate: NonZeroU64, burst: Duration, now: Timestamp) -> Self {
        let rate = u128::from(rate.get());
        let cap = rate.saturating_mul(burst.as_micros());
        TokenBucket {
            rate,
            credit: 0,
            cap: i128::try_from(cap).unwrap_or(i128::MAX),
            last: now,
        }
    }

    /// The rate, in bytes per second.
    pub fn rate(&self) -> NonZeroU64 {
        NonZeroU64::new(u64::try_from(self.rate).unwrap_or(u64::MAX)).unwrap_or(NonZeroU64::MIN)
    }

    /// Takes `bytes` at `now`; returns how long to wait before they may pass, or before more
    /// may (zero when the bucket had enough).
    #[must_use]
    pub fn take(&mut self, now: Timestamp, bytes: u64) -> Duration {
        let elapsed = now.saturating_since(self.last).as_micros();
        self.last = self.last.max(now);
        let refill = i128::try_from(elapsed.saturating_mul(self.rate)).unwrap_or(i128::MAX);
        let refilled = self.credit.saturating_add(refill);
        let kept =
            i128::try_from(self.rate.saturating_mul(KEEP_LOST.as_micros())).unwrap_or(i128::MAX);
        // In debt at the last take, and back within `KEEP_LOST` of paying it: busy, not idle.
        let busy = self.credit < 0 && refilled <= kept;
        self.credit = if busy {
            refilled
        } else {
            refilled.min(self.cap)
        };
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

    #[test]
    fn a_busy_taker_keeps_the_time_it_spent_between_takes_but_an_idle_one_does_not() {
        let mut bucket = TokenBucket::new(rate(1 << 20), Duration::ZERO, at_ms(0));
        // 64 KiB at 1 MiB/s: 62.5 ms of debt; back 3 ms after it is paid, then again.
        let wait = bucket.take(at_ms(0), 65_536);
        assert_eq!(wait, Duration::from_micros(62_500));
        let second = bucket.take(Timestamp::from_micros(62_500 + 3_000), 65_536);
        assert_eq!(second, Duration::from_micros(62_500 - 3_000));
        // A second of idleness saves nothing (no burst).
        let later = Timestamp::from_micros(62_500 + 3_000 + 59_500 + 1_000_000);
        assert_eq!(bucket.take(later, 65_536), Duration::from_micros(62_500));
    }

    #[test]
    fn a_busy_taker_never_beats_the_rate_from_its_first_take() {
        let mut bucket = TokenBucket::new(rate(1 << 20), Duration::ZERO, at_ms(0));
        let mut now = at_ms(0);
        // Each slice goes after its wait plus 3 ms of handing on; 160 × 64 KiB = 10 MiB.
        for _ in 0..160 {
            now = now + bucket.take(now, 65_536) + Duration::from_millis(3);
        }
        let elapsed = now.saturating_since(at_ms(0));
        assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(10_000 + 3), "{elapsed:?}");
    }

    /// The scrub's burst, for the tests that save credit.
    const BURST: Duration = Duration::from_millis(250);

    fn at_ms(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    fn rate(bytes_per_second: u64) -> NonZeroU64 {
        NonZeroU64::new(bytes_per_second).unwrap()
    }

    #[test]
    fn a_fresh_bucket_makes_the_first_take_wait_its_share() {
        let mut bucket = TokenBucket::new(rate(1000), BURST, at_ms(0));
        assert_eq!(bucket.take(at_ms(0), 1000), Duration::from_secs(1));
        // Once the wait is over the debt is paid: the next 500 bytes cost half a second.
        assert_eq!(bucket.take(at_ms(1000), 500), Duration::from_millis(500));
    }

    #[test]
    fn waits_add_up_to_bytes_over_rate_when_the_taker_sleeps_as_told() {
        let mut bucket = TokenBucket::new(rate(3_000_000), Duration::ZERO, at_ms(0));
        let mut now = at_ms(0);
        let mut total = 0u64;
        for read in [65_536u64, 1, 262_144, 7, 1_000_000, 4096] {
            now = now + bucket.take(now, read);
            total += read;
        }
        // The taker finished exactly when the last byte was paid for.
        let expected = Duration::from_micros((total * 1_000_000).div_ceil(3_000_000));
        let elapsed = now.saturating_since(at_ms(0));
        assert!(
            elapsed >= expected && elapsed <= expected + Duration::from_micros(6),
            "{elapsed:?} for {total} bytes, expected {expected:?}"
        );
    }

    #[test]
    fn a_steady_taker_that_oversleeps_loses_nothing_within_the_burst() {
        // Each sleep runs 100 µs long; a burst of 50 ms keeps the lost time as credit.
        let mut bucket = TokenBucket::new(rate(1 << 20), Duration::from_millis(50), at_ms(0));
        let mut now = at_ms(0);
        for _ in 0..160 {
            now = now + bucket.take(now, 65_536) + Duration::from_micros(100);
        }
        // 10 MiB at 1 MiB/s: ten seconds, plus at most the last oversleep.
        let elapsed = now.saturating_since(at_ms(0));
        assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(10_001), "{elapsed:?}");
    }

    #[test]
    fn idle_time_is_saved_only_up_to_the_burst() {
        let mut bucket = TokenBucket::new(rate(1000), BURST, at_ms(0));
        // Ten idle seconds save only 250 ms worth: 250 bytes go at once, the rest wait.
        assert_eq!(bucket.take(at_ms(10_000), 250), Duration::ZERO);
        assert_eq!(bucket.take(at_ms(10_000), 100), Duration::from_millis(100));
    }

    #[test]
    fn without_a_burst_idle_time_saves_nothing() {
        let mut bucket = TokenBucket::new(rate(1000), Duration::ZERO, at_ms(0));
        assert_eq!(bucket.take(at_ms(10_000), 100), Duration::from_millis(100));
    }

    #[test]
    fn takes_within_the_saved_credit_do_not_wait() {
        let mut bucket = TokenBucket::new(rate(1000), BURST, at_ms(0));
        assert_eq!(bucket.take(at_ms(100), 100), Duration::ZERO);
        assert_eq!(bucket.take(at_ms(200), 100), Duration::ZERO);
        assert_eq!(bucket.take(at_ms(300), 101), Duration::from_millis(1));
    }

    #[test]
    fn two_takers_of_equal_slices_share_the_rate_evenly() {
        // Two takers on one bucket, each taking 10 KB and sleeping as told, always the one
        // due first (a discrete-event simulation of two threads).
        let mut bucket = TokenBucket::new(rate(100_000), Duration::ZERO, at_ms(0));
        let mut due = [at_ms(0), at_ms(0)];
        let mut moved = [0u64; 2];
        let end = at_ms(10_000);
        loop {
            let who = usize::from(due[1] < due[0]);
            if due[who] >= end {
                break;
            }
            let wait = bucket.take(due[who], 10_000);
            due[who] = due[who] + wait;
            moved[who] += 10_000;
        }
        // 100 KB/s for ten seconds is 1 MB in all, half each (to one slice).
        assert!(moved[0].abs_diff(moved[1]) <= 10_000, "{moved:?}");
        assert!(moved[0] + moved[1] <= 1_000_000 + 20_000, "{moved:?}");
        assert!(moved[0] + moved[1] >= 1_000_000 - 20_000, "{moved:?}");
    }

    #[test]
    fn a_clock_going_backwards_gives_no_credit() {
        let mut bucket = TokenBucket::new(rate(1000), BURST, at_ms(5000));
        assert_eq!(bucket.take(at_ms(1000), 100), Duration::from_millis(100));
    }

    #[test]
    fn huge_rates_and_takes_do_not_overflow() {
        let mut bucket = TokenBucket::new(rate(u64::MAX), BURST, at_ms(0));
        // Long idle saves a quarter second's worth; the rest of a second's worth waits.
        assert_eq!(
            bucket.take(at_ms(u64::MAX / 1000), u64::MAX),
            Duration::from_millis(750)
        );
        let mut slow = TokenBucket::new(rate(1), BURST, at_ms(0));
        assert_eq!(
            slow.take(at_ms(0), u64::MAX),
            Duration::from_micros(u64::MAX)
        );
    }
}
