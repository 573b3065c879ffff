//! How many access tokens may be tried: caps on guesses per address and over the whole server,
//! decided before a presented token is looked at.
//!
//! Every attempt takes one guess from its address's budget and one from the server's before its
//! token is checked; a correct token gives back the guess it took, a wrong one keeps it spent.
//! Spent guesses come back with time only, one per [`Rate::interval`]: a correct token never
//! gives back more than its own guess, so neither a good login from the same address (an
//! attacker may hold a valid read-only token) nor one from elsewhere resets a budget. Taking the
//! guess before the check is what bounds parallel attempts: 60 connections at once from one
//! address get at most [`PER_ADDRESS`]`.burst` checks, the rest a refusal saying when to retry.
//!
//! A budget is kept in the GCRA form, as the moment it is full again: one timestamp an address,
//! no counters to age. Time is a value passed in, so tests run on a clock of integers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use ferry_protocol::Timestamp;

/// A rate of guesses: `burst` at once, then one more each `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Guesses that may be made at once from a full budget.
    pub(crate) burst: u32,
    /// Time for one spent guess to come back.
    pub(crate) interval: Duration,
}

impl Rate {
    /// How long a full budget takes to come back once spent.
    const fn window(self) -> Duration {
        self.interval.saturating_mul(self.burst)
    }
}

/// Guesses one address may make: ten at once leaves room for a person retyping a token and a
/// script retrying a stale one, then one every 2 s (1 800 an hour, nothing against a 128-bit
/// token) keeps any single address from searching even a weak one.
pub(crate) const PER_ADDRESS: Rate = Rate {
    burst: 10,
    interval: Duration::from_secs(2),
};

/// Guesses the whole server takes: 100 wrong tokens a second is far above what honest
/// mistakes produce, and bounds an attack spread over many addresses to 8.6 million guesses a
/// day. While it is spent every login waits, good or bad: the price of bounding such an attack.
pub(crate) const OVERALL: Rate = Rate {
    burst: 100,
    interval: Duration::from_millis(10),
};

/// Addresses whose budgets are remembered at most (about 40 bytes each), so a flood of
/// addresses cannot grow memory without bound. Budgets that are full again are dropped first;
/// past that the one nearest to full is. An address owes guesses for at most
/// `PER_ADDRESS.window()` after its last guess, and the server takes at most
/// `OVERALL.burst + PER_ADDRESS.window() / OVERALL.interval` guesses in that time (2 100), so
/// with these limits no address that still owes guesses is ever forgotten.
pub(crate) const MAX_ADDRESSES: usize = 4096;

const _: () = assert!(
    MAX_ADDRESSES as u128
        >= OVERALL.burst as u128 + PER_ADDRESS.window().as_millis() / OVERALL.interval.as_millis(),
    "MAX_ADDRESSES must hold every address the overall rate lets owe guesses"
);

/// The limits a [`GuessLimiter`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Guesses per address (an IPv6 address counts with its /64).
    pub(crate) per_address: Rate,
    /// Guesses over the whole server.
    pub(crate) overall: Rate,
    /// Addresses remembered at most.
    pub(crate) max_addresses: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_address: PER_ADDRESS,
            overall: OVERALL,
            max_addresses: MAX_ADDRESSES,
        }
    }
}

/// Why an attempt was refused before its token was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TooManyGuesses {
    /// The address spent its guesses.
    #[error(
        "too many wrong access tokens from your address; try again in {} s",
        whole_seconds(*retry_after)
    )]
    FromAddress {
        /// When the next guess is allowed.
        retry_after: Duration,
    },
    /// The server spent its guesses (many addresses are trying tokens).
    #[error(
        "too many wrong access tokens are being tried on this server; try again in {} s",
        whole_seconds(*retry_after)
    )]
    Overall {
        /// When the next guess is allowed.
        retry_after: Duration,
    },
}

/// An admitted attempt, to be reported to [`GuessLimiter::handle_correct`] or
/// [`GuessLimiter::handle_wrong`] once its token is checked.
#[must_use = "report how the attempt ended"]
#[derive(Debug)]
pub(crate) struct Guess {
    source: Source,
}

/// The guess budgets of every address and of the server.
#[derive(Debug, Default)]
pub(crate) struct GuessLimiter {
    limits: Limits,
    overall: Budget,
    sources: HashMap<Source, Budget>,
}

impl GuessLimiter {
    /// A limiter applying `limits`, every budget full.
    #[cfg(test)]
    pub(crate) fn new(limits: Limits) -> GuessLimiter {
        GuessLimiter {
            limits,
            overall: Budget::default(),
            sources: HashMap::new(),
        }
    }

    /// Takes one guess for an attempt from `ip` at `now`, or refuses it (taking nothing) with
    /// the time to wait.
    pub(crate) fn admit(&mut self, ip: IpAddr, now: Timestamp) -> Result<Guess, TooManyGuesses> {
        let source = Source::of(ip);
        let budget = self.sources.get(&source).copied().unwrap_or_default();
        let address = budget
            .after_guess(now, self.limits.per_address)
            .map_err(|retry_after| TooManyGuesses::FromAddress { retry_after })?;
        let overall = self
            .overall
            .after_guess(now, self.limits.overall)
            .map_err(|retry_after| TooManyGuesses::Overall { retry_after })?;
        if !self.sources.contains_key(&source) {
            self.make_room(now);
        }
        self.sources.insert(source, address);
        self.overall = overall;
        Ok(Guess { source })
    }

    /// The attempt's token was correct: its guess comes back (and only its own).
    pub(crate) fn handle_correct(&mut self, guess: Guess, now: Timestamp) {
        self.overall.give_back(self.limits.overall);
        if let Some(budget) = self.sources.get_mut(&guess.source) {
            budget.give_back(self.limits.per_address);
            if budget.is_full(now) {
                self.sources.remove(&guess.source);
            }
        }
    }

    /// The attempt's token was wrong: its guess stays spent. Returns the guesses its address
    /// has left at `now`.
    pub(crate) fn handle_wrong(&mut self, guess: Guess, now: Timestamp) -> u32 {
        let rate = self.limits.per_address;
        self.sources
            .get(&guess.source)
            .map_or(rate.burst, |budget| budget.left(now, rate))
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Makes room for one more address: drops every full budget, then, if the table is still
    /// full, the budget nearest to full.
    fn make_room(&mut self, now: Timestamp) {
        if self.sources.len() < self.limits.max_addresses {
            return;
        }
        self.sources.retain(|_, budget| !budget.is_full(now));
        while self.sources.len() >= self.limits.max_addresses.max(1) {
            let nearest = self
                .sources
                .iter()
                .min_by_key(|(_, budget)| budget.full_at)
                .map(|(source, _)| *source);
            match nearest {
                Some(source) => self.sources.remove(&source),
                None => break,
            };
        }
    }
}

/// Who a guess counts against: an IPv4 address, or an IPv6 /64 (what one host or one
/// customer usually holds, so changing the low bits gives no fresh budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                Source(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => Source(v4),
        }
    }
}

/// A guess budget, as the moment it is full again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Budget {
    full_at: Timestamp,
}

impl Budget {
    /// The budget after one more guess at `now`, or how long until that guess is allowed.
    fn after_guess(self, now: Timestamp, rate: Rate) -> Result<Budget, Duration> {
        let full_at = self.full_at.max(now) + rate.interval;
        let owed = full_at.saturating_since(now);
        let allowed = rate.window();
        if owed > allowed {
            Err(owed - allowed)
        } else {
            Ok(Budget { full_at })
        }
    }

    /// Gives one guess back.
    fn give_back(&mut self, rate: Rate) {
        let micros = u64::try_from(rate.interval.as_micros()).unwrap_or(u64::MAX);
        self.full_at = Timestamp::from_micros(self.full_at.as_micros().saturating_sub(micros));
    }

    fn is_full(self, now: Timestamp) -> bool {
        self.full_at <= now
    }

    /// Guesses left at `now`.
    fn left(self, now: Timestamp, rate: Rate) -> u32 {
        let owed = self.full_at.saturating_since(now);
        let spent = owed.as_nanos().div_ceil(rate.interval.as_nanos().max(1));
        rate.burst
            .saturating_sub(u32::try_from(spent).unwrap_or(u32::MAX))
    }
}

/// A wait in whole seconds, rounded up, at least 1 (a client told "0 s" would retry at once).
fn whole_seconds(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ALICE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const BOB: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_micros(millis * 1000)
    }

    /// Wrong guesses from `ip` at `now` until one is refused; returns how many were admitted.
    fn guess_until_refused(limiter: &mut GuessLimiter, ip: IpAddr, now: Timestamp) -> u32 {
        let mut admitted = 0;
        while let Ok(guess) = limiter.admit(ip, now) {
            let _ = limiter.handle_wrong(guess, now);
            admitted += 1;
            assert!(admitted <= 1000, "never refused");
        }
        admitted
    }

    #[test]
    fn an_address_gets_its_burst_then_one_guess_per_interval() {
        let mut limiter = GuessLimiter::default();
        assert_eq!(guess_until_refused(&mut limiter, ALICE, at(0)), 10);
        assert_eq!(
            limiter.admit(ALICE, at(0)).unwrap_err(),
            TooManyGuesses::FromAddress {
                retry_after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            limiter.admit(ALICE, at(1500)).unwrap_err(),
            TooManyGuesses::FromAddress {
                retry_after: Duration::from_millis(500)
            }
        );
        assert_eq!(guess_until_refused(&mut limiter, ALICE, at(2000)), 1);
        assert_eq!(guess_until_refused(&mut limiter, ALICE, at(8000)), 3);
    }

    #[test]
    fn parallel_attempts_are_capped_before_any_of_them_is_checked() {
        let mut limiter = GuessLimiter::default();
        let mut pending = Vec::new();
        let mut refused = 0;
        for _ in 0..60 {
            match limiter.admit(ALICE, at(0)) {
                Ok(guess) => pending.push(guess),
                Err(TooManyGuesses::FromAddress { .. }) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((pending.len(), refused), (10, 50));
        for guess in pending {
            let _ = limiter.handle_wrong(guess, at(0));
        }
    }

    #[test]
    fn a_correct_token_after_failures_does_not_reset_the_failures() {
        let mut limiter = GuessLimiter::default();
        for _ in 0..9 {
            let guess = limiter.admit(ALICE, at(0)).unwrap();
            let _ = limiter.handle_wrong(guess, at(0));
        }
        // A good login from the same address, and one from elsewhere, give back only their own.
        let good = limiter.admit(ALICE, at(0)).unwrap();
        limiter.handle_correct(good, at(0));
        let elsewhere = limiter.admit(BOB, at(0)).unwrap();
        limiter.handle_correct(elsewhere, at(0));
        let last = limiter.admit(ALICE, at(0)).unwrap();
        assert_eq!(limiter.handle_wrong(last, at(0)), 0);
        assert!(matches!(
            limiter.admit(ALICE, at(0)),
            Err(TooManyGuesses::FromAddress { .. })
        ));
    }

    #[test]
    fn correct_tokens_cost_no_guesses() {
        let mut limiter = GuessLimiter::default();
        for _ in 0..1000 {
            let guess = limiter.admit(ALICE, at(0)).unwrap();
            limiter.handle_correct(guess, at(0));
        }
        assert_eq!(limiter.tracked(), 0);
        assert_eq!(guess_until_refused(&mut limiter, ALICE, at(0)), 10);
    }

    #[test]
    fn failures_decay_with_time_only() {
        let mut limiter = GuessLimiter::default();
        assert_eq!(guess_until_refused(&mut limiter, ALICE, at(0)), 10);
        let almost = PER_ADDRESS.window() - Duration::from_millis(1);
        let now = at(u64::try_from(almost.as_millis()).unwrap());
        assert_eq!(guess_until_refused(&mut limiter, ALICE, now), 9);
        let later = at(60_000);
        assert_eq!(guess_until_refused(&mut limiter, ALICE, later), 10);
    }

    #[test]
    fn one_address_out_of_guesses_does_not_lock_out_another() {
        let mut limiter = GuessLimiter::default();
        assert_eq!(guess_until_refused(&mut limiter, ALICE, at(0)), 10);
        let guess = limiter.admit(BOB, at(0)).unwrap();
        assert_eq!(limiter.handle_wrong(guess, at(0)), 9);
    }

    #[test]
    fn the_server_wide_cap_holds_across_addresses() {
        let mut limiter = GuessLimiter::default();
        let mut admitted = 0;
        for n in 0..200u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            admitted += guess_until_refused(&mut limiter, ip, at(0));
        }
        assert_eq!(admitted, OVERALL.burst);
        let fresh = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            limiter.admit(fresh, at(0)).unwrap_err(),
            TooManyGuesses::Overall {
                retry_after: OVERALL.interval
            }
        );
        // One guess a tick comes back for the whole server.
        assert_eq!(guess_until_refused(&mut limiter, fresh, at(10)), 1);
        assert_eq!(guess_until_refused(&mut limiter, fresh, at(15)), 0);
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_budget() {
        let mut limiter = GuessLimiter::default();
        let mut admitted = 0;
        for host in 0..50u128 {
            let ip = IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) | host));
            admitted += guess_until_refused(&mut limiter, ip, at(0));
        }
        assert_eq!(admitted, 10);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of(ALICE));
    }

    #[test]
    fn a_full_table_forgets_a_forgiven_address_before_one_that_owes() {
        let limits = Limits {
            max_addresses: 3,
            ..Limits::default()
        };
        let mut limiter = GuessLimiter::new(limits);
        let carol: IpAddr = [10, 0, 0, 3].into();
        let dave: IpAddr = [10, 0, 0, 4].into();
        for (ip, millis) in [(ALICE, 0), (BOB, 5_000), (carol, 5_000), (dave, 6_000)] {
            let guess = limiter.admit(ip, at(millis)).unwrap();
            let _ = limiter.handle_wrong(guess, at(millis));
        }
        assert_eq!(limiter.tracked(), 3);
        // Bob still owes the guess he made at 5 s: one of two spent at 6 s.
        let guess = limiter.admit(BOB, at(6_000)).unwrap();
        assert_eq!(limiter.handle_wrong(guess, at(6_000)), 8);
    }

    #[test]
    fn a_flood_of_addresses_keeps_the_table_bounded_and_the_newest_remembered() {
        let limits = Limits {
            overall: Rate {
                burst: 1_000_000,
                interval: Duration::from_micros(1),
            },
            max_addresses: 100,
            ..Limits::default()
        };
        let mut limiter = GuessLimiter::new(limits);
        let flooder = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0000 + n));
        for n in 0..10_000u32 {
            let now = at(u64::from(n));
            let guess = limiter.admit(flooder(n), now).unwrap();
            let _ = limiter.handle_wrong(guess, now);
            assert!(limiter.tracked() <= 100);
        }
        // The newest address still owes its guess: the flood did not reset it.
        let now = at(10_000);
        let guess = limiter.admit(flooder(9_999), now).unwrap();
        assert_eq!(limiter.handle_wrong(guess, now), 8);
    }

    #[test]
    fn waits_are_told_in_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::from_millis(10)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        let refusal = TooManyGuesses::FromAddress {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(
            refusal.to_string(),
            "too many wrong access tokens from your address; try again in 2 s"
        );
    }
}
