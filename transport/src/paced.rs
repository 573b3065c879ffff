//! Rate limits where bytes cross the socket: [`RateLimit`], a [`TokenBucket`] that several
//! streams can share, and [`Paced`], a stream that sleeps for what its limits say.
//!
//! A `Paced` reads at most one slice at a time and pays for what it read before returning it;
//! it pays for a slice before writing it (a write that then fails has still paid: the
//! connection is failing anyway). A slice is at most [`MAX_SLICE`] and at most a share of
//! [`SLICE_TIME`] worth of each rate, the share being one over the number of holders of that
//! limit: so a stream sharing a limit with others takes small turns, none of them starves the
//! rest (the bucket serves takers in the order they come), and a round of turns lasts about
//! `SLICE_TIME` however many streams share it. The buckets save up no burst: `B` bytes never pass in less than `B / rate`, which is
//! what a user who sets a limit expects to measure.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry_protocol::Timestamp;

use crate::rate::TokenBucket;

/// Most bytes one take asks for: a stream sharing a limit waits its turn after each.
pub const MAX_SLICE: usize = 64 * 1024;

/// Most time's worth of the rate one round of takes asks for (all holders of a limit taking one
/// slice each), so that slow or crowded limits still take quick turns.
pub const SLICE_TIME: Duration = Duration::from_millis(50);

/// A rate limit in bytes per second, shared by every stream handed a clone of it: their bytes
/// together pass at most at the rate. Clone it for streams that share; make a new one for a
/// stream of its own.
#[derive(Clone, Debug)]
pub struct RateLimit {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The bucket's clock starts here.
    epoch: Instant,
    bucket: Mutex<TokenBucket>,
}

impl RateLimit {
    /// A limit of `rate` bytes per second, starting empty now.
    pub fn new(rate: NonZeroU64) -> Self {
        RateLimit {
            inner: Arc::new(Shared {
                epoch: Instant::now(),
                bucket: Mutex::new(TokenBucket::new(rate, Duration::ZERO, Timestamp::ZERO)),
            }),
        }
    }

    /// The rate, in bytes per second.
    pub fn rate(&self) -> NonZeroU64 {
        self.lock().rate()
    }

    /// Takes `bytes` at `now`; returns how long to wait (see [`TokenBucket::take`]).
    #[must_use]
    pub fn take(&self, now: Instant, bytes: u64) -> Duration {
        let now = self.timestamp(now);
        self.lock().take(now, bytes)
    }

    /// Bytes one take of this limit asks for: [`SLICE_TIME`] worth of the rate split among its
    /// holders (every clone counts), at least one byte and at most [`MAX_SLICE`].
    fn slice(&self) -> usize {
        let holders = u128::try_from(Arc::strong_count(&self.inner)).unwrap_or(u128::MAX);
        slice_of(self.rate(), holders)
    }

    fn timestamp(&self, now: Instant) -> Timestamp {
        let micros = now.saturating_duration_since(self.inner.epoch).as_micros();
        Timestamp::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        // The bucket is left consistent by every take: a panic elsewhere cannot corrupt it.
        self.inner
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The limits of one stream, for a driver that cannot sleep (an event loop): it asks how many
/// bytes the next read or write may move, pays for them, and waits the time `pay` says before
/// moving more — the same slices and the same bucket as [`Paced`], which sleeps instead.
#[derive(Clone, Debug, Default)]
pub struct Pace {
    limits: Vec<RateLimit>,
}

impl Pace {
    /// A stream's pace under `limits` (none: unlimited).
    pub fn new(limits: Vec<RateLimit>) -> Self {
        Pace { limits }
    }

    /// Whether any limit applies.
    pub fn is_limited(&self) -> bool {
        !self.limits.is_empty()
    }

    /// Most bytes the next read or write moves (every byte when unlimited).
    pub fn slice(&self) -> usize {
        self.limits
            .iter()
            .map(RateLimit::slice)
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Pays for `bytes` at `now` in every limit; returns how long to wait before the next
    /// bytes move (a read's bytes are handed on after the wait, a write's bytes go after it).
    #[must_use]
    pub fn pay(&self, now: Instant, bytes: usize) -> Duration {
        if bytes == 0 {
            return Duration::ZERO;
        }
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.limits
            .iter()
            .map(|limit| limit.take(now, bytes))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// A stream whose reads and writes pass at most at the rate of each of its limits (none: it
/// passes straight through). Reads pay after reading, so a read may return early and then
/// wait; writes pay before writing.
#[derive(Debug)]
pub struct Paced<T> {
    inner: T,
    pace: Pace,
}

impl<T> Paced<T> {
    /// `inner` under `limits` (for example its own limit and one shared by all streams).
    pub fn new(inner: T, limits: Vec<RateLimit>) -> Self {
        Paced {
            inner,
            pace: Pace::new(limits),
        }
    }

    /// Most bytes the next read or write moves (every byte when unlimited).
    fn slice(&self) -> usize {
        self.pace.slice()
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The stream underneath; bytes moved through it directly are not counted.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The stream underneath, without its limits.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Pays for `bytes` in every limit and sleeps until all of them allow them.
    fn pay(&self, bytes: usize) {
        let wait = self.pace.pay(Instant::now(), bytes);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Bytes per take at `rate` among `holders`: their share of [`SLICE_TIME`] worth, at least one
/// byte and at most [`MAX_SLICE`].
fn slice_of(rate: NonZeroU64, holders: u128) -> usize {
    let worth = u128::from(rate.get()) * SLICE_TIME.as_micros() / 1_000_000 / holders.max(1);
    usize::try_from(worth)
        .unwrap_or(MAX_SLICE)
        .clamp(1, MAX_SLICE)
}

impl<T: Read> Read for Paced<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(self.slice());
        let n = self.inner.read(&mut buf[..len])?;
        self.pay(n);
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match bufs.iter_mut().find(|buf| !buf.is_empty()) {
            Some(buf) => self.read(buf),
            None => Ok(0),
        }
    }
}

impl<T: Write> Write for Paced<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(self.slice());
        self.pay(len);
        self.inner.write(&buf[..len])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.pace.is_limited() {
            return self.inner.write_vectored(bufs);
        }
        // The first slice's worth of the buffers, in as many pieces as it spans.
        let slice = self.slice();
        let mut left = slice;
        let mut pieces = Vec::with_capacity(bufs.len());
        for buf in bufs {
            if left == 0 {
                break;
            }
            let take = buf.len().min(left);
            pieces.push(IoSlice::new(&buf[..take]));
            left -= take;
        }
        let len = slice - left;
        self.pay(len);
        self.inner.write_vectored(&pieces)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rate(bytes_per_second: u64) -> NonZeroU64 {
        NonZeroU64::new(bytes_per_second).unwrap()
    }

    #[test]
    fn slices_are_fifty_milliseconds_worth_within_bounds() {
        assert_eq!(slice_of(rate(1 << 20), 1), 52_428);
        assert_eq!(slice_of(rate(10 << 30), 1), MAX_SLICE);
        assert_eq!(slice_of(rate(1), 1), 1);
    }

    #[test]
    fn holders_of_a_limit_split_a_round_of_slices() {
        let shared = RateLimit::new(rate(1 << 20));
        assert_eq!(shared.slice(), 52_428);
        let streams: Vec<_> = (0..4).map(|_| shared.clone()).collect();
        // Five holders: a round of one slice each is still about fifty milliseconds.
        assert_eq!(shared.slice(), 10_485);
        drop(streams);
        assert_eq!(shared.slice(), 52_428);
        assert_eq!(slice_of(rate(1 << 20), 100_000), 1);
    }

    #[test]
    fn an_unlimited_stream_passes_everything_at_once() {
        let mut paced = Paced::new(Vec::new(), Vec::new());
        assert_eq!(paced.write(&[7; 100_000]).unwrap(), 100_000);
        let mut source = Paced::new(&[1u8; 100_000][..], Vec::new());
        let mut buf = vec![0; 100_000];
        assert_eq!(source.read(&mut buf).unwrap(), 100_000);
    }

    #[test]
    fn a_limited_stream_moves_one_slice_per_call() {
        // A high rate, so the pay costs microseconds of sleep.
        let limit = RateLimit::new(rate(1 << 30));
        let mut paced = Paced::new(Vec::new(), vec![limit.clone()]);
        assert_eq!(paced.write(&[7; 100_000]).unwrap(), MAX_SLICE);
        let header = [1u8; 10];
        let body = [2u8; 100_000];
        let written = paced
            .write_vectored(&[IoSlice::new(&header), IoSlice::new(&body)])
            .unwrap();
        assert_eq!(written, MAX_SLICE);
        assert_eq!(paced.get_ref().len(), 2 * MAX_SLICE);
        assert_eq!(paced.get_ref()[MAX_SLICE..MAX_SLICE + 10], header);
    }
}
