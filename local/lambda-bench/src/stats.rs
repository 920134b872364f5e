//! Order statistics over a run's samples.

use std::time::Duration;

/// Median, 95th percentile (nearest rank) and extremes of a non-empty sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: Duration,
    pub median: Duration,
    pub p95: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        Some(Summary {
            min: sorted[0],
            median,
            p95: sorted[nearest_rank(n, 95)],
            max: sorted[n - 1],
        })
    }
}

/// The 0-based index of the `pct`th percentile by the nearest-rank method.
fn nearest_rank(n: usize, pct: usize) -> usize {
    (pct * n).div_ceil(100).clamp(1, n) - 1
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn median_and_p95_by_nearest_rank() {
        // 1..=20 shuffled: the median is between 10 and 11; p95 is the 19th value.
        let samples = ms_list(&[
            7, 20, 1, 13, 2, 19, 3, 18, 4, 17, 5, 16, 6, 15, 8, 14, 9, 12, 10, 11,
        ]);
        let s = Summary::of(&samples).unwrap();
        assert_eq!(s.min, Duration::from_millis(1));
        assert_eq!(s.median, Duration::from_micros(10_500));
        assert_eq!(s.p95, Duration::from_millis(19));
        assert_eq!(s.max, Duration::from_millis(20));
    }

    #[test]
    fn small_samples() {
        assert_eq!(Summary::of(&[]), None);
        let one = Summary::of(&ms_list(&[5])).unwrap();
        assert_eq!(
            (one.median, one.p95),
            (Duration::from_millis(5), Duration::from_millis(5))
        );
        let three = Summary::of(&ms_list(&[3, 1, 2])).unwrap();
        assert_eq!(
            (three.median, three.p95),
            (Duration::from_millis(2), Duration::from_millis(3))
        );
    }
}
