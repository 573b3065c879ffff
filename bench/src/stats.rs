//! Summaries of repeated measurements: median with min and max, and percentiles.

use std::time::{Duration, Instant};

/// One figure measured several times.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Every run's value, in the order measured.
    pub runs: Vec<f64>,
}

impl Figure {
    /// A figure from its runs' values.
    pub fn new(runs: Vec<f64>) -> Self {
        Figure { runs }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.runs.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The median run.
    pub fn median(&self) -> f64 {
        percentile(&self.sorted(), 50.0)
    }

    /// The lowest run.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    /// The highest run.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// The `p`th percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Wall time and the whole process's CPU time (every thread: in-process server and client, or
/// raw sender and receiver) over one timed transfer.
pub struct Stopwatch {
    wall: Instant,
    cpu: Option<f64>,
}

/// What a [`Stopwatch`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Wall time.
    pub wall: Duration,
    /// CPU seconds of the process, user and system (Linux only; 10 ms resolution).
    pub cpu: Option<f64>,
}

impl Stopwatch {
    /// Starts measuring now.
    pub fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// What was spent since the start.
    pub fn stop(&self) -> Timing {
        let wall = self.wall.elapsed();
        let cpu = match (self.cpu, process_cpu()) {
            (Some(before), Some(after)) => Some(after - before),
            _ => None,
        };
        Timing { wall, cpu }
    }
}

/// User and system CPU seconds of this process so far, all threads, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s).
fn process_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_of_odd_and_even_runs() {
        let odd = Figure::new(vec![3.0, 1.0, 2.0]);
        assert_eq!((odd.median(), odd.min(), odd.max()), (2.0, 1.0, 3.0));
        let even = Figure::new(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(even.median(), 2.0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
