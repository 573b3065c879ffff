//! When to try again after a connection fails, and when to give up: exponential backoff with
//! jitter. Sans-IO: the caller brings the randomness and does the waiting, so the library (the
//! OS's randomness, a sleeping thread) and the deterministic simulator (its seeded generator,
//! its virtual clock) run this same rule.

use std::time::Duration;

use crate::options::ClientOptions;

/// How many times, and after what pauses, a failed request is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The longest first pause; each later one may be twice as long as the one before.
    pub initial: Duration,
    /// No pause is longer.
    pub max: Duration,
}

impl RetryPolicy {
    /// The policy of a client with these options.
    pub fn of(options: &ClientOptions) -> RetryPolicy {
        RetryPolicy {
            retries: options.retries,
            initial: options.initial_backoff,
            max: options.max_backoff,
        }
    }

    /// The pause before retry number `retry` (1 for the first), or `None` once the retries
    /// are used up. The ceiling doubles with each retry up to [`RetryPolicy::max`]; the pause
    /// is drawn from its upper half by `jitter` (uniform in `[0, 1)`), so that clients cut off
    /// at the same moment do not all come back at the same moment, and none comes back at
    /// once.
    pub fn pause(&self, retry: u32, jitter: f64) -> Option<Duration> {
        if retry == 0 || retry > self.retries {
            return None;
        }
        let factor = 1u32 << (retry - 1).min(16);
        let ceiling = self.initial.saturating_mul(factor).min(self.max);
        Some(ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        }
    }

    #[test]
    fn pauses_double_up_to_the_cap_and_the_retries_run_out() {
        let p = policy();
        let ceilings: Vec<_> = (1..=5).map(|r| p.pause(r, 1.0).unwrap()).collect();
        let ms = |n| Duration::from_millis(n);
        // `jitter` just under 1 gives just under the ceiling; exactly 1 is clamped to it.
        assert_eq!(ceilings, vec![ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(p.pause(6, 0.5), None);
        assert_eq!(p.pause(0, 0.5), None);
    }

    #[test]
    fn jitter_spreads_a_pause_over_the_upper_half_of_its_ceiling() {
        let p = policy();
        assert_eq!(p.pause(2, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(p.pause(2, 0.5), Some(Duration::from_millis(150)));
        assert!(p.pause(2, 0.999).unwrap() < Duration::from_millis(200));
    }

    #[test]
    fn no_retries_means_none() {
        let p = RetryPolicy {
            retries: 0,
            ..policy()
        };
        assert_eq!(p.pause(1, 0.5), None);
    }
}
